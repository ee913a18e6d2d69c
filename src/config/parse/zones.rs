//! `[[zone]]`: retention, purposes, legal basis and audio policy per zone, and
//! the storage root each records to.

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::units::check_slug;

use super::controller::RawController;
use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    id: String,
    name: String,
    storage: Option<String>,
    retention_days: u32,
    purposes: Vec<String>,
    legal_basis: String,
    processor: String,
    audio: Option<AudioPolicy>,
    controller: Option<RawController>,
}

impl Builder<'_, '_> {
    pub(super) fn read_zones(&mut self) {
        let storage_ids = self.peek_ids("storage");
        let max = self.daemon.max_retention_days;
        let max_where = match self
            .src
            .line_of_path(&root().key("daemon").key("max_retention_days"))
        {
            Some(l)
                if self
                    .src
                    .get(&root().key("daemon").key("max_retention_days"))
                    .is_some() =>
            {
                format!("daemon.max_retention_days at line {l}")
            }
            _ => format!("the default of daemon.max_retention_days ({DEFAULT_MAX_RETENTION_DAYS})"),
        };
        let mut seen: HashMap<String, KeyPath> = HashMap::new();
        for at in self.elements(&root(), "zone") {
            let Some(raw) = self.src.de::<RawZone>(&at, &mut self.errors) else {
                continue;
            };
            if let Err(m) = check_slug(&raw.id, "zone") {
                self.err(&at.key("id"), m);
            } else if let Some(first) = seen.get(&raw.id) {
                let first_line = self.line(&first.key("id"));
                self.err(
                    &at.key("id"),
                    format!("duplicate zone id \"{}\"; first defined at line {first_line} ({first}); zone ids must be unique", raw.id),
                );
            } else {
                seen.insert(raw.id.clone(), at.clone());
            }
            self.non_empty(
                &at.key("name"),
                &raw.name,
                "give the zone's name as printed on notices",
            );
            let storage = match raw.storage {
                Some(s) => {
                    if !storage_ids.contains(&s) {
                        let defined = if storage_ids.is_empty() {
                            "no [[storage]] roots are defined".to_owned()
                        } else {
                            format!("defined storage roots are: {}", list(&storage_ids))
                        };
                        self.err(
                            &at.key("storage"),
                            format!("unknown storage root \"{s}\"; {defined}"),
                        );
                    }
                    s
                }
                None if storage_ids.len() == 1 => storage_ids[0].clone(),
                None => {
                    if storage_ids.len() > 1 {
                        self.err(
                            &at.key("storage"),
                            format!(
                                "is required when there is more than one storage root; set storage = one of: {}",
                                list(&storage_ids)
                            ),
                        );
                    }
                    String::new()
                }
            };
            if raw.retention_days == 0 {
                self.err(
                    &at.key("retention_days"),
                    format!(
                        "must be at least 1 (days), not 0; give 1 to {max} days: it is the longest \
                         footage is kept in this zone (004 §9), e.g. 10 for school premises, 14 for \
                         public spaces (001 §17)"
                    ),
                );
            } else if raw.retention_days > max {
                self.err(
                    &at.key("retention_days"),
                    format!(
                        "{} days exceeds the maximum of {max} days set by {max_where}; lower it, or raise \
                         daemon.max_retention_days if your rules allow a longer period (003 §24.2 allows one month)",
                        raw.retention_days
                    ),
                );
            }
            if raw.purposes.is_empty() {
                self.err(
                    &at.key("purposes"),
                    "is empty; list why this zone is recorded, e.g. [\"safety of pupils and staff\"] (004 §13)",
                );
            }
            for (i, p) in raw.purposes.iter().enumerate() {
                self.non_empty(
                    &at.key("purposes").index(i),
                    p,
                    "describe the purpose or remove the entry",
                );
            }
            self.non_empty(
                &at.key("legal_basis"),
                &raw.legal_basis,
                "give the legal basis, e.g. \"GDPR Art. 6(1)(e)\"",
            );
            self.non_empty(
                &at.key("processor"),
                &raw.processor,
                "name who operates this zone's cameras",
            );
            let controller = raw
                .controller
                .map(|c| self.controller(c, &at.key("controller")));
            let zone = Zone {
                id: raw.id,
                name: raw.name,
                storage,
                retention_days: raw.retention_days,
                purposes: raw.purposes,
                legal_basis: raw.legal_basis,
                processor: raw.processor,
                audio: raw.audio.unwrap_or(DEFAULT_AUDIO_POLICY),
                controller,
            };
            self.zones.push((index_of(&at), zone));
        }
    }

    pub(super) fn zones_message(&self, zone_ids: &[String]) -> String {
        if zone_ids.is_empty() {
            "no [[zone]] is defined".to_owned()
        } else {
            format!("defined zones are: {}", list(zone_ids))
        }
    }
}
