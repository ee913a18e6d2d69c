//! `[[inbox]]`: directories where device files arrive, how a file's device
//! and time are found (a fixed device, a sub-directory per device, or a
//! file-name pattern), how long a file must be unchanged before it is
//! taken, and where invalid files are set aside.

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInbox {
    path: PathBuf,
    device: Option<String>,
    pattern: Option<String>,
    settle: Option<String>,
    poll: Option<String>,
    quarantine: PathBuf,
}

/// The placeholders a pattern may hold.
pub(crate) const PATTERN_FIELDS: &[&str] =
    &["{serial}", "{device}", "{YYYYMMDD}", "{HHMMSS}", "{any}"];

/// Checks a file-name pattern: known placeholders only, and no two
/// placeholders side by side (where one would end is unknowable).
fn check_pattern(p: &str) -> Result<(), String> {
    let mut rest = p;
    let mut last_was_field = false;
    if p.is_empty() {
        return Err(
            "is empty; write a pattern such as \"{serial}_{YYYYMMDD}_{HHMMSS}.mp4\", or remove it"
                .into(),
        );
    }
    while !rest.is_empty() {
        if rest.starts_with('{') {
            let Some(f) = PATTERN_FIELDS.iter().find(|f| rest.starts_with(**f)) else {
                let end = rest.find('}').map_or(rest.len(), |e| e + 1);
                return Err(format!(
                    "\"{p}\": unknown placeholder {}; use {}",
                    &rest[..end],
                    PATTERN_FIELDS.join(", ")
                ));
            };
            let fixed_width = matches!(*f, "{YYYYMMDD}" | "{HHMMSS}");
            if last_was_field && !fixed_width {
                return Err(format!(
                    "\"{p}\": {f} follows another placeholder directly; put a separator such as '_' between them"
                ));
            }
            last_was_field = !fixed_width;
            rest = &rest[f.len()..];
        } else {
            last_was_field = false;
            let n = rest.chars().next().map_or(1, char::len_utf8);
            rest = &rest[n..];
        }
        if rest.contains('/') {
            return Err(format!(
                "\"{p}\" contains '/'; a pattern matches a file name, not a path"
            ));
        }
    }
    Ok(())
}

impl Builder<'_, '_> {
    pub(super) fn read_inboxes(&mut self) {
        let device_ids: Vec<String> = self.devices.iter().map(|d| d.id.clone()).collect();
        let peeked = self.peek_ids("device");
        let mut taken: Vec<(PathBuf, KeyPath)> = Vec::new();
        for r in &self.storage {
            taken.push((
                r.1.path.clone(),
                root().key("storage").index(r.0).key("path"),
            ));
        }
        if let Some(e) = &self.evidence {
            taken.push((e.path.clone(), root().key("evidence").key("path")));
        }
        taken.push((
            self.daemon.state_dir.clone(),
            root().key("daemon").key("state_dir"),
        ));
        for at in self.elements(&root(), "inbox") {
            let Some(raw) = self.src.de::<RawInbox>(&at, &mut self.errors) else {
                continue;
            };
            let path = self.path_value(&at.key("path"), &raw.path);
            let quarantine = self.path_value(&at.key("quarantine"), &raw.quarantine);
            for (other, other_at) in taken.clone() {
                for (p, key) in [(&path, "path"), (&quarantine, "quarantine")] {
                    if overlaps(p, &other) {
                        let line = self.line(&other_at);
                        self.err(
                            &at.key(key),
                            format!(
                                "{} overlaps {other_at} ({}, line {line}); an inbox and its quarantine are \
                                 written by others and must lie apart from the daemon's own directories",
                                p.display(),
                                other.display()
                            ),
                        );
                    }
                }
            }
            if overlaps(&path, &quarantine) {
                self.err(
                    &at.key("quarantine"),
                    format!(
                        "{} overlaps the inbox {}; put the quarantine beside the inbox, e.g. {}",
                        quarantine.display(),
                        path.display(),
                        path.with_extension("quarantine").display()
                    ),
                );
            }
            if let Some(d) = &raw.device
                && !device_ids.contains(d)
                && !peeked.contains(d)
            {
                let known = if device_ids.is_empty() {
                    "no [[device]] is defined".to_owned()
                } else {
                    format!("defined devices are: {}", list(&device_ids))
                };
                self.err(
                    &at.key("device"),
                    format!("unknown device \"{d}\"; {known}"),
                );
            }
            if let Some(p) = &raw.pattern
                && let Err(m) = check_pattern(p)
            {
                self.err(&at.key("pattern"), m);
            }
            let settle = self.duration(
                &at.key("settle"),
                raw.settle.as_deref(),
                DEFAULT_INBOX_SETTLE,
                INBOX_SETTLE_RANGE,
            );
            let poll = self.duration(
                &at.key("poll"),
                raw.poll.as_deref(),
                DEFAULT_INBOX_POLL,
                INBOX_POLL_RANGE,
            );
            taken.push((path.clone(), at.key("path")));
            taken.push((quarantine.clone(), at.key("quarantine")));
            self.inboxes.push(Inbox {
                path,
                device: raw.device,
                pattern: raw.pattern,
                settle,
                poll,
                quarantine,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_pattern;

    #[test]
    fn patterns_name_known_fields_with_separators() {
        assert!(check_pattern("{serial}_{YYYYMMDD}_{HHMMSS}.mp4").is_ok());
        assert!(check_pattern("{YYYYMMDD}{HHMMSS}_{any}.MOV").is_ok());
        assert!(
            check_pattern("{serial}{any}.mp4")
                .unwrap_err()
                .contains("separator")
        );
        assert!(
            check_pattern("{date}.mp4")
                .unwrap_err()
                .contains("unknown placeholder {date}")
        );
    }
}
