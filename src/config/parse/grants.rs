//! `[access]`: the `[[access.grant]]` entries: who holds which roles and, for
//! viewers, which zones.

use std::collections::BTreeSet;

use crate::config::access::{Grant, Principal, RawGrant, RawUser, Role, check_unix_name};

use super::*;

impl Builder<'_, '_> {
    pub(super) fn read_access(&mut self) {
        let at = root().key("access");
        let Some(value) = self.src.get(&at) else {
            return;
        };
        let DeValue::Table(t) = value.get_ref() else {
            self.err(&at, "expected a table of [[access.grant]] entries");
            return;
        };
        let unknown: Vec<String> = t
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .filter(|k| k != "grant")
            .collect();
        for k in unknown {
            self.err(
                &at.key(&k),
                format!("unknown key `{k}`; expected `grant` ([[access.grant]])"),
            );
        }
        let zone_ids = self.peek_ids("zone");
        for g in self.elements(&at, "grant") {
            let Some(raw) = self.src.de::<RawGrant>(&g, &mut self.errors) else {
                continue;
            };
            let principal = match (raw.user, raw.group) {
                (Some(_), Some(_)) => {
                    self.err(
                        &g.key("group"),
                        "a grant names either user or group, not both; split it into two grants",
                    );
                    continue;
                }
                (None, None) => {
                    // A `user` that failed to parse was reported already.
                    if self.src.get(&g.key("user")).is_none() {
                        self.err(&g, "names nobody; add user = \"NAME\" (or a numeric uid) or group = \"NAME\"");
                    }
                    continue;
                }
                (Some(RawUser::Uid(u)), None) => Principal::Uid(u),
                (Some(RawUser::Name(n)), None) => {
                    if let Err(m) = check_unix_name(&n) {
                        self.err(&g.key("user"), m);
                    }
                    Principal::User(n)
                }
                (None, Some(n)) => {
                    if let Err(m) = check_unix_name(&n) {
                        self.err(&g.key("group"), m);
                    }
                    Principal::Group(n)
                }
            };
            let roles: BTreeSet<Role> = raw.roles.iter().copied().collect();
            if roles.is_empty() {
                let all = Role::ALL.map(|r| r.as_str()).join(", ");
                self.err(
                    &g.key("roles"),
                    format!("is empty; grant at least one of: {all}"),
                );
            }
            let zones: BTreeSet<String> =
                raw.zones.clone().unwrap_or_default().into_iter().collect();
            if roles.contains(&Role::Viewer) {
                if zones.is_empty() {
                    let m = format!(
                        "a grant with the viewer role must list the zones it may view, e.g. zones = [\"{}\"] (004 §12); {}",
                        zone_ids.first().map_or("school-indoor", String::as_str),
                        self.zones_message(&zone_ids)
                    );
                    self.err(&g.key("zones"), m);
                }
            } else if raw.zones.is_some() {
                self.err(
                    &g.key("zones"),
                    "zones limit only the viewer role; remove zones, or add \"viewer\" to roles",
                );
            }
            for (i, z) in raw.zones.iter().flatten().enumerate() {
                if !zone_ids.contains(z) {
                    let m = format!("unknown zone \"{z}\"; {}", self.zones_message(&zone_ids));
                    self.err(&g.key("zones").index(i), m);
                }
            }
            self.access.grants.push(Grant {
                principal,
                roles,
                zones,
            });
        }
    }
}
