//! `[[storage]]` roots and `[evidence]`: where footage and evidence copies live;
//! no two of those directories overlap.

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::units::{check_slug, parse_size};

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    id: String,
    path: PathBuf,
    create: Option<bool>,
    min_free: Option<String>,
    budget: Option<String>,
    destruction: Option<Destruction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    path: PathBuf,
    create: Option<bool>,
    review_days_default: Option<u32>,
    review_days_max: Option<u32>,
}

impl Builder<'_, '_> {
    pub(super) fn read_storage(&mut self) {
        let paths = self.elements(&root(), "storage");
        if paths.is_empty() && self.src.get(&root().key("storage")).is_none() {
            self.err(
                &root().key("storage"),
                "no [[storage]] root defined; add one, e.g. [[storage]] id = \"main\" path = \"/var/lib/custos/recordings\"",
            );
        }
        let mut seen: HashMap<String, KeyPath> = HashMap::new();
        for at in paths {
            let Some(raw) = self.src.de::<RawStorage>(&at, &mut self.errors) else {
                continue;
            };
            let index = index_of(&at);
            if let Err(m) = check_slug(&raw.id, "storage") {
                self.err(&at.key("id"), m);
            } else if let Some(first) = seen.get(&raw.id) {
                let first_line = self.line(&first.key("id"));
                self.err(
                    &at.key("id"),
                    format!("duplicate storage id \"{}\"; first defined at line {first_line} ({first}); ids must be unique", raw.id),
                );
            } else {
                seen.insert(raw.id.clone(), at.clone());
            }
            let path = self.path_value(&at.key("path"), &raw.path);
            let min_free = self.size(&at.key("min_free"), raw.min_free.as_deref());
            let budget = self.size(&at.key("budget"), raw.budget.as_deref());
            if budget == Some(0) {
                self.err(
                    &at.key("budget"),
                    "is 0, which leaves no room to record; remove it for no budget",
                );
            }
            let storage_root = StorageRoot {
                id: raw.id,
                path,
                create: raw.create.unwrap_or(DEFAULT_CREATE),
                min_free,
                budget,
                destruction: raw.destruction.unwrap_or(DEFAULT_DESTRUCTION),
            };
            for (other_index, other) in &self.storage {
                if overlaps(&storage_root.path, &other.path) {
                    let other_at = root().key("storage").index(*other_index);
                    let e = self.src.error(
                        &at.key("path"),
                        format!(
                            "{} overlaps storage root \"{}\" ({}, line {}); each root must be its own directory",
                            storage_root.path.display(),
                            other.id,
                            other.path.display(),
                            self.line(&other_at.key("path"))
                        ),
                    );
                    self.errors.push(e);
                }
            }
            self.storage.push((index, storage_root));
        }
    }

    /// A size key, 0 to [`MAX_SIZE`] bytes.
    pub(super) fn size(&mut self, at: &KeyPath, raw: Option<&str>) -> Option<u64> {
        let raw = raw?;
        match parse_size(raw) {
            Ok(n) if n <= MAX_SIZE => Some(n),
            Ok(n) => {
                self.err(
                    at,
                    format!("\"{raw}\" ({n} bytes) is out of range; give at most 1 EiB ({MAX_SIZE} bytes)"),
                );
                None
            }
            Err(m) => {
                self.err(at, m);
                None
            }
        }
    }

    pub(super) fn read_evidence(&mut self) {
        let at = root().key("evidence");
        if self.src.get(&at).is_none() {
            self.err(
                &at,
                "missing [evidence] section: give the directory for evidence copies, e.g. \
                 [evidence] path = \"/var/lib/custos/evidence\" (001 §18; 004 §9)",
            );
            return;
        }
        let Some(raw) = self.section::<RawEvidence>("evidence") else {
            return;
        };
        let path = self.path_value(&at.key("path"), &raw.path);
        let max = raw.review_days_max.unwrap_or(DEFAULT_REVIEW_DAYS_MAX);
        let default = raw.review_days_default.unwrap_or(DEFAULT_REVIEW_DAYS);
        let (lo, hi) = REVIEW_DAYS_MAX_RANGE;
        if !(lo..=hi).contains(&max) {
            self.err(
                &at.key("review_days_max"),
                format!("{max} is out of range; give {lo} to {hi} (days; default {DEFAULT_REVIEW_DAYS_MAX})"),
            );
        } else if default == 0 || default > max {
            self.err(
                &at.key("review_days_default"),
                format!("{default} must be from 1 to review_days_max ({max}) days"),
            );
        }
        for (i, r) in &self.storage {
            if overlaps(&path, &r.path) {
                let root_line = self.line(&root().key("storage").index(*i).key("path"));
                let e = self.src.error(
                    &at.key("path"),
                    format!(
                        "{} overlaps storage root \"{}\" ({}, line {root_line}); evidence must live apart \
                         from recordings so retention can never delete it",
                        path.display(),
                        r.id,
                        r.path.display()
                    ),
                );
                self.errors.push(e);
            }
        }
        self.evidence = Some(EvidenceConfig {
            path,
            create: raw.create.unwrap_or(DEFAULT_CREATE),
            review_days_default: default,
            review_days_max: max,
        });
    }
}
