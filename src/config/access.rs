//! `[access]`: which Unix users and groups hold which roles (000 §22;
//! 001 §24.2-24.3, §25-27; 004 §12). Only what a grant names is allowed:
//! roles do not imply one another, and a viewer sees only the zones listed
//! in its grant. Removing a grant and reloading revokes it (001 §27).
//!
//! ```toml
//! [[access.grant]]
//! group = "mokykla-budetojai"     # or user = "anna", or user = 1001 (a uid)
//! roles = ["viewer"]
//! zones = ["school-indoor"]       # required with "viewer", not allowed without it
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

/// What a person may do. Each role is granted on its own.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch live and recorded video of the zones in the grant.
    Viewer,
    /// See camera and recording health, and enable, disable or restart
    /// cameras; no footage.
    Operator,
    /// Make and manage case-linked evidence copies and exports for
    /// authorities (001 §22-23, §31; 004 §18-19), in every zone.
    Evidence,
    /// Handle data-subject requests, restrictions and erasure, read the audit
    /// journal (004 §17, §24-31), in every zone.
    Dpo,
    /// Run the daemon: its configuration, cameras, status, the audit log's
    /// verification. No footage, cases or exports by itself: those need a
    /// footage role granted for a duty (001 §24-26; 004 §12).
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Evidence,
        Role::Dpo,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Evidence => "evidence",
            Role::Dpo => "dpo",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom a grant is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// `user = "anna"`.
    User(String),
    /// `user = 1001`: a numeric uid, for accounts without a name.
    Uid(u32),
    /// `group = "security"`: every member of the group, by name.
    Group(String),
}

/// One `[[access.grant]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub principal: Principal,
    /// Never empty.
    pub roles: BTreeSet<Role>,
    /// Zones the viewer role covers: non-empty iff `roles` holds
    /// [`Role::Viewer`], empty otherwise.
    pub zones: BTreeSet<String>,
}

/// All grants, in file order. An empty `Access` grants nothing to anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub grants: Vec<Grant>,
}

impl Access {
    /// The roles of a caller, and the zones its viewer role covers: the union
    /// of every grant that names the caller's uid, user name, or one of its
    /// groups (by name).
    pub fn roles_for<S: AsRef<str>>(
        &self,
        uid: u32,
        user_name: Option<&str>,
        groups: &[S],
    ) -> (BTreeSet<Role>, BTreeSet<String>) {
        let mut roles = BTreeSet::new();
        let mut zones = BTreeSet::new();
        for g in &self.grants {
            let applies = match &g.principal {
                Principal::Uid(u) => *u == uid,
                Principal::User(name) => user_name == Some(name.as_str()),
                Principal::Group(name) => groups.iter().any(|x| x.as_ref() == name),
            };
            if applies {
                roles.extend(g.roles.iter().copied());
                if g.roles.contains(&Role::Viewer) {
                    zones.extend(g.zones.iter().cloned());
                }
            }
        }
        (roles, zones)
    }
}

/// `user = "name"` or `user = 1001`.
#[derive(Debug)]
pub(crate) enum RawUser {
    Name(String),
    Uid(u32),
}

impl<'de> Deserialize<'de> for RawUser {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawUser;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user name in quotes or a numeric uid")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawUser, E> {
                Ok(RawUser::Name(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawUser, E> {
                u32::try_from(v).map(RawUser::Uid).map_err(|_| {
                    E::custom(format!("uid {v} is out of range; a uid is 0 to 4294967295"))
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawUser, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrant {
    pub user: Option<RawUser>,
    pub group: Option<String>,
    pub roles: Vec<Role>,
    pub zones: Option<Vec<String>>,
}

/// A plausible Unix user or group name (not checked against the system: a
/// grant for an account created later is harmless).
pub(crate) fn check_unix_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a Unix user or group name; use the account's login name (ASCII letters, digits, '_', '-', '.')"
        ))
    }
}
