//! Who is calling and what they may do. Identity is the peer's credentials
//! on the Unix socket (SO_PEERCRED), never something the client says; the
//! roles come from `[access]` in the current config (001 §24-27; 004 §12).
//! root and the daemon's own user are admin, and admin runs the system but
//! reaches no footage by itself: footage needs a footage role (viewer,
//! evidence, dpo) granted like anyone else's. Roles do not imply one another:
//! each action lists the roles that allow it, in [`Action::allowed`].

use std::collections::BTreeSet;
use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

use crate::config::{Config, Role};
use crate::error::{Error, ErrorKind};

/// The caller's identity as the kernel reports it, resolved to names once
/// per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    /// The passwd name, or `None` if the uid has no entry.
    pub name: Option<String>,
    /// Names of the primary and supplementary groups that have a name.
    pub groups: Vec<String>,
}

impl Peer {
    /// Looks up the user's name and groups (NSS: may block).
    pub fn resolve(uid: u32, gid: u32, pid: i32) -> Peer {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let name = user.as_ref().map(|u| u.name.clone());
        let mut gids = vec![Gid::from_raw(gid)];
        if let Some(u) = &user
            && let Ok(c) = CString::new(u.name.clone())
            && let Ok(list) = nix::unistd::getgrouplist(&c, u.gid)
        {
            gids.extend(list);
        }
        let mut groups: Vec<String> = gids
            .into_iter()
            .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
            .collect();
        groups.sort();
        groups.dedup();
        Peer {
            uid,
            gid,
            pid,
            name,
            groups,
        }
    }

    /// `anna` or `uid 1001`.
    pub fn user_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("uid {}", self.uid))
    }

    /// `user anna (uid 1001)`, as used in messages.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("user {n} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// A peer with the roles the current config grants it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub peer: Peer,
    pub roles: BTreeSet<Role>,
    /// Zones the viewer role covers.
    pub zones: BTreeSet<String>,
}

impl Caller {
    /// Maps `peer` to roles under `config`; `daemon_uid` (the daemon's own
    /// euid) and root are admin whatever the grants say.
    pub fn new(peer: Peer, config: &Config, daemon_uid: u32) -> Caller {
        let (mut roles, zones) =
            config
                .access
                .roles_for(peer.uid, peer.name.as_deref(), &peer.groups);
        if peer.uid == 0 || peer.uid == daemon_uid {
            roles.insert(Role::Admin);
        }
        Caller { peer, roles, zones }
    }

    /// Whether the caller sees every zone's cameras (any role other than
    /// viewer alone). Seeing a camera is not seeing its footage.
    pub fn all_zones(&self) -> bool {
        self.roles.iter().any(|r| *r != Role::Viewer)
    }

    /// Whether the caller holds a footage role for every zone (evidence or
    /// dpo; admin is not one).
    pub fn footage_everywhere(&self) -> bool {
        self.roles
            .iter()
            .any(|r| matches!(r, Role::Evidence | Role::Dpo))
    }

    /// Whether the caller may see footage (or its listing) recorded under
    /// `zone`: the zone stored with the footage, not its camera's zone today.
    pub fn may_see_zone(&self, zone: &str) -> bool {
        self.footage_everywhere()
            || (self.roles.contains(&Role::Viewer) && self.zones.contains(zone))
    }

    /// The role the caller uses for `action`: the least powerful that
    /// allows it. A refusal says what the caller has and what is needed.
    pub fn authorize(&self, action: Action) -> Result<Role, Error> {
        if let Some(r) = action.allowed().iter().find(|r| self.roles.contains(r)) {
            return Ok(*r);
        }
        let needed = if action.allowed().len() == Role::ALL.len() {
            "any role".to_owned()
        } else {
            let list: Vec<&str> = action.allowed().iter().map(|r| r.as_str()).collect();
            format!("role {}", list.join(" or "))
        };
        let has = if self.roles.is_empty() {
            "has no role in Custos".to_owned()
        } else {
            let list: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
            format!(
                "has role{} {}",
                if list.len() > 1 { "s" } else { "" },
                list.join(", ")
            )
        };
        let hint = if self.roles.is_empty() {
            "; ask the administrator to add a grant for this account under [access] in the \
             configuration"
        } else {
            ""
        };
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} {has}; {} needs {needed}{hint}",
                self.peer.describe(),
                action.describe()
            ),
        ))
    }
}

/// Everything the API can be asked to do; one per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Status,
    Cameras,
    Recordings,
    CameraControl,
    RetentionStatus,
    RetentionPlan,
    Deletions,
    AuditRead,
    AuditVerify,
    Reload,
    Metrics,
    CaseRead,
    CaseWrite,
    CaseClose,
    Disclosures,
    Export,
    KeyShow,
    RequestRead,
    RequestWrite,
    RequestErase,
    Compliance,
    BreachRead,
    BreachWrite,
    AlertsRead,
    AlertsTest,
    View,
    LiveView,
    InboxStatus,
    InboxRetry,
    Activity,
    Sheet,
    VaultStatus,
    VaultList,
    RedactionRead,
    RedactionWrite,
    RedactionApprove,
    RedactionRelease,
}

impl Action {
    pub const ALL: [Action; 37] = [
        Action::Status,
        Action::Cameras,
        Action::Recordings,
        Action::CameraControl,
        Action::RetentionStatus,
        Action::RetentionPlan,
        Action::Deletions,
        Action::AuditRead,
        Action::AuditVerify,
        Action::Reload,
        Action::Metrics,
        Action::CaseRead,
        Action::CaseWrite,
        Action::CaseClose,
        Action::Disclosures,
        Action::Export,
        Action::KeyShow,
        Action::RequestRead,
        Action::RequestWrite,
        Action::RequestErase,
        Action::Compliance,
        Action::BreachRead,
        Action::BreachWrite,
        Action::AlertsRead,
        Action::AlertsTest,
        Action::View,
        Action::LiveView,
        Action::InboxStatus,
        Action::InboxRetry,
        Action::Activity,
        Action::Sheet,
        Action::VaultStatus,
        Action::VaultList,
        Action::RedactionRead,
        Action::RedactionWrite,
        Action::RedactionApprove,
        Action::RedactionRelease,
    ];

    /// The roles that allow this action, least powerful first. This table
    /// is the permission matrix of docs/api.md.
    pub fn allowed(self) -> &'static [Role] {
        use Role::*;
        match self {
            // Everyone with a role may see what is recorded and whether it
            // works; a viewer alone sees only the cameras of its zones.
            Action::Status | Action::Cameras => &[Viewer, Operator, Evidence, Dpo, Admin],
            // Footage and what leads to it is reached for a duty, never by
            // rank (001 §24-26; 004 §12): viewers for their zones; evidence
            // and the DPO find footage for cases and data-subject requests.
            // admin runs the system and holds no footage role by itself.
            Action::Recordings => &[Viewer, Evidence, Dpo],
            // Facts about the system and its records, no footage.
            Action::RetentionStatus
            | Action::RetentionPlan
            | Action::Deletions
            | Action::AuditRead
            | Action::AuditVerify => &[Dpo, Admin],
            Action::Reload => &[Admin],
            // Enable, disable, restart: keeping cameras running.
            Action::CameraControl => &[Operator, Admin],
            // Camera health and storage figures, no footage: the operator's job.
            Action::Metrics => &[Operator, Admin],
            // Cases, holds and their evidence copies are the evidence
            // officer's; the DPO may read them and the disclosure register
            // (004 §25.2).
            Action::CaseRead | Action::Disclosures => &[Evidence, Dpo],
            Action::CaseWrite | Action::CaseClose => &[Evidence],
            // Handing footage to a recipient (001 §22-23; 004 §17-19): the
            // evidence officer's act, checked against the legal basis.
            Action::Export => &[Evidence],
            // The public key is public.
            Action::KeyShow => &[Viewer, Operator, Evidence, Dpo, Admin],
            // The register of data-subject requests holds requesters'
            // names and contacts; answering them, erasure included, is the
            // DPO's duty (001 §32-35; 004 §24-32).
            Action::RequestRead | Action::RequestWrite | Action::RequestErase => &[Dpo],
            // The report for an auditor gathers the above: the DPO's to give.
            Action::Compliance => &[Dpo],
            // Suspected breaches reach the DPO, who documents them
            // (004 §22; 001 §36; GDPR Art. 33(5)).
            Action::BreachRead | Action::BreachWrite => &[Dpo],
            // Setting up and checking notification: whoever runs the
            // system, and the DPO who receives it.
            Action::AlertsRead | Action::AlertsTest => &[Dpo, Admin],
            // Looking at footage is access to it, for a duty (001 §24-26;
            // 004 §12-13): as listing it, never admin by rank.
            Action::View | Action::LiveView => &[Viewer, Evidence, Dpo],
            // Device files waiting, set aside or taken: names, owners and
            // reasons, no footage; keeping the inboxes flowing is the
            // operator's job, like camera health.
            Action::InboxStatus | Action::InboxRetry => &[Operator, Admin],
            // What moved when, and a picture per interval: footage too.
            Action::Activity | Action::Sheet => &[Viewer, Evidence, Dpo],
            // Whether the vault works and how much waits: counts and
            // errors, no case content; what a case has there is the
            // evidence officer's and the DPO's, like the case itself.
            Action::VaultStatus => &[Operator, Evidence, Dpo, Admin],
            Action::VaultList => &[Evidence, Dpo],
            // A redacted copy for a data subject (004 §27): prepared by
            // the DPO or the evidence officer who finds the footage;
            // approved by a second DPO and handed over by the DPO, who
            // answers the request.
            Action::RedactionRead | Action::RedactionWrite => &[Evidence, Dpo],
            Action::RedactionApprove | Action::RedactionRelease => &[Dpo],
        }
    }

    /// The name stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Status => "status",
            Action::Cameras => "cameras.list",
            Action::Recordings => "recordings.list",
            Action::CameraControl => "camera.control",
            Action::RetentionStatus => "retention.status",
            Action::RetentionPlan => "retention.plan",
            Action::Deletions => "deletions.list",
            Action::AuditRead => "audit.list",
            Action::AuditVerify => "audit.verify",
            Action::Reload => "config.reload",
            Action::Metrics => "metrics",
            Action::CaseRead => "cases.read",
            Action::CaseWrite => "cases.write",
            Action::CaseClose => "cases.close",
            Action::Disclosures => "disclosures.list",
            Action::Export => "export",
            Action::KeyShow => "key.show",
            Action::RequestRead => "requests.read",
            Action::RequestWrite => "requests.write",
            Action::RequestErase => "requests.erase",
            Action::Compliance => "compliance.report",
            Action::BreachRead => "breaches.read",
            Action::BreachWrite => "breaches.write",
            Action::AlertsRead => "alerts.list",
            Action::AlertsTest => "alerts.test",
            Action::View => "view",
            Action::LiveView => "view.live",
            Action::InboxStatus => "inbox.status",
            Action::InboxRetry => "inbox.retry",
            Action::Activity => "activity",
            Action::Sheet => "sheet",
            Action::VaultStatus => "vault.status",
            Action::VaultList => "vault.list",
            Action::RedactionRead => "redactions.read",
            Action::RedactionWrite => "redactions.write",
            Action::RedactionApprove => "redactions.approve",
            Action::RedactionRelease => "redactions.release",
        }
    }

    /// What it is, for messages: "reloading the configuration needs role admin".
    pub fn describe(self) -> &'static str {
        match self {
            Action::Status => "reading the daemon's status",
            Action::Cameras => "listing cameras",
            Action::Recordings => "listing recordings",
            Action::CameraControl => "enabling, disabling or restarting a camera",
            Action::RetentionStatus => "reading the retention status",
            Action::RetentionPlan => "reading the retention plan",
            Action::Deletions => "reading the deletion journal",
            Action::AuditRead => "reading the audit log",
            Action::AuditVerify => "verifying the audit log",
            Action::Reload => "reloading the configuration",
            Action::Metrics => "reading the metrics",
            Action::CaseRead => "reading evidence cases",
            Action::CaseWrite => "opening a case, placing a hold or moving a review date",
            Action::CaseClose => "closing a case and destroying its evidence copies",
            Action::Disclosures => "reading the disclosure register",
            Action::Export => "exporting footage for a recipient",
            Action::KeyShow => "reading the node's public key",
            Action::RequestRead => "reading the register of data-subject requests",
            Action::RequestWrite => {
                "registering or answering a data-subject request, or restricting its footage"
            }
            Action::RequestErase => "erasing footage for a data-subject request",
            Action::Compliance => "reading the compliance report",
            Action::BreachRead => "reading the breach register",
            Action::BreachWrite => "recording, documenting or closing a breach",
            Action::AlertsRead => "reading the alert queue",
            Action::AlertsTest => "sending a test alert",
            Action::View => "viewing footage",
            Action::LiveView => "viewing a camera live",
            Action::InboxStatus => "reading the inboxes' status",
            Action::InboxRetry => "taking a quarantined inbox file back",
            Action::Activity => "reading a camera's activity (what moved when)",
            Action::Sheet => "making a contact sheet of footage",
            Action::VaultStatus => "reading the evidence vault's status",
            Action::VaultList => "listing a case's objects in the evidence vault",
            Action::RedactionRead => "reading redactions of footage for data subjects",
            Action::RedactionWrite => "preparing a redacted copy for a data subject",
            Action::RedactionApprove => "approving a redacted copy someone else prepared",
            Action::RedactionRelease => "releasing an approved redacted copy to its data subject",
        }
    }
}
