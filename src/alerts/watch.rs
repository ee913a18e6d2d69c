//! What to alert, looked at every few seconds: cameras not recording for
//! `camera_down_after`, storage and clock alarms, open breach records,
//! data-subject requests due or overdue, evidence reviews overdue, an
//! evidence vault that is not usable or has copies waiting over an hour.

use std::collections::HashMap;

use super::Alert;
use crate::clock::{ClockAlarm, UnixMicros};
use crate::config::Config;
use crate::error::Result;
use crate::index::Index;
use crate::ingest::CameraState;
use crate::ingest::control::CameraStatuses;
use crate::requests::Standing;
use crate::retention::StorageAlarm;

/// Evidence copies waiting longer than this for the vault are alerted.
const VAULT_BACKLOG_US: i64 = 3_600_000_000;

/// The alarms the daemon's parts hold, as the watcher reads them.
#[derive(Debug, Clone, Copy)]
pub struct Alarms<'a> {
    pub storage: &'a [StorageAlarm],
    pub clock: Option<&'a ClockAlarm>,
    /// Why the vault's bucket is not usable, if it is not.
    pub vault: Option<&'a str>,
}

/// Remembers since when each camera has not been recording.
#[derive(Debug, Default)]
pub struct Watcher {
    down_since: HashMap<String, UnixMicros>,
}

impl Watcher {
    /// The alerts due at `now_us` (each then rate-limited by `raise`).
    pub fn check(
        &mut self,
        ix: &Index,
        config: &Config,
        cameras: &CameraStatuses,
        alarms: &Alarms<'_>,
        now_us: UnixMicros,
    ) -> Result<Vec<Alert>> {
        let Alarms {
            storage: storage_alarms,
            clock: clock_alarm,
            vault: vault_error,
        } = *alarms;
        let mut out = Vec::new();
        let statuses = cameras.read().unwrap_or_else(|p| p.into_inner()).clone();
        let after = config.alerts.camera_down_after.as_micros() as i64;
        for c in config.cameras.iter().filter(|c| c.enabled) {
            let snap = statuses.get(&c.id).map(|s| s.snapshot());
            let recording = snap
                .as_ref()
                .is_some_and(|s| s.state == CameraState::Recording);
            if recording {
                self.down_since.remove(&c.id);
                continue;
            }
            let since = *self.down_since.entry(c.id.clone()).or_insert(now_us);
            if now_us - since >= after {
                let why = snap
                    .as_ref()
                    .and_then(|s| s.last_error.clone())
                    .unwrap_or_else(|| "no error reported".into());
                out.push(Alert {
                    key: format!("camera_down:{}", c.id),
                    event: "camera_down",
                    subject: format!("Camera {} is not recording", c.name),
                    body: format!(
                        "Camera {} ({}, zone {}) has not been recording for {} (state: {}). \
                         Last error: {why}.\nRecording is continuous except during equipment \
                         failure (001 §20). Check it with: custosctl cameras {}",
                        c.name,
                        c.area,
                        c.zone,
                        humantime::format_duration(std::time::Duration::from_secs(
                            ((now_us - since) / 1_000_000) as u64
                        )),
                        snap.map_or_else(|| "not started".into(), |s| format!("{:?}", s.state)),
                        c.id
                    ),
                });
            }
        }
        self.down_since
            .retain(|id, _| config.cameras.iter().any(|c| &c.id == id && c.enabled));

        for a in storage_alarms {
            out.push(Alert {
                key: format!("storage:{}", a.root),
                event: "storage",
                subject: format!("Storage root {} is full of protected footage", a.root),
                body: format!(
                    "{}\nNew footage may not fit. Add space or review the holds and \
                     restrictions (custosctl retention status).",
                    a.state
                ),
            });
        }
        if let Some(c) = clock_alarm {
            out.push(Alert {
                key: "clock".into(),
                event: "clock",
                subject: "The wall clock is doubted: nothing is being deleted".into(),
                body: format!(
                    "{}\nRetention passes and the audit purge are suspended until the clock \
                     is plausible again (custosctl status).",
                    c.state
                ),
            });
        }
        for b in crate::breach::list(ix, now_us)?
            .into_iter()
            .filter(|b| b.breach.status == "open")
        {
            let r = &b.breach;
            out.push(Alert {
                key: format!("breach:{}", r.id),
                event: "breach",
                subject: format!("Suspected breach {}: {}", r.id, r.kind),
                body: format!(
                    "{}\nThe data protection officer takes it up within 4 hours (004 §22; \
                     001 §36); the authority is notified within 72 hours unless there is no \
                     risk (GDPR Art. 33). custosctl breach show {}",
                    r.what, r.id
                ),
            });
        }
        for r in ix.requests()?.into_iter().filter(|r| r.status == "open") {
            let Ok(day) = r.last_day().parse::<jiff::civil::Date>() else {
                continue;
            };
            let (key, subject) = match Standing::of(day, &config.timezone, now_us)? {
                Standing::Overdue { .. } => (
                    format!("request_overdue:{}", r.id),
                    format!("Data-subject request {} is past its last day {day}", r.id),
                ),
                Standing::DueSoon { days_left } => (
                    format!("request_due:{}", r.id),
                    format!(
                        "Data-subject request {} is due in {days_left} day(s), by {day}",
                        r.id
                    ),
                ),
                Standing::InTime { .. } => continue,
            };
            out.push(Alert {
                key,
                event: "request",
                subject,
                body: format!(
                    "A {} request received on the register must be answered within one month \
                     (004 §32). custosctl request show {}",
                    r.kind, r.id
                ),
            });
        }
        for case in ix.overdue_cases(now_us)? {
            out.push(Alert {
                key: format!("review:{case}"),
                event: "review",
                subject: format!("Evidence case {case} is past its review date"),
                body: format!(
                    "Evidence is kept only while its purpose lasts (001 §18, §31): extend the \
                     review with a reason or close the case. custosctl case show {case}"
                ),
            });
        }
        if let Some(vault) = &config.vault {
            let waiting = ix
                .vault_counts()?
                .into_iter()
                .find(|c| c.state == crate::index::VaultState::Pending)
                .map_or(0, |c| c.objects);
            if let Some(e) = vault_error {
                out.push(Alert {
                    key: "vault".into(),
                    event: "vault",
                    subject: format!("The evidence vault (bucket {}) is not usable", vault.bucket),
                    body: format!(
                        "{e}\nUntil it is fixed, evidence copies are kept on this server only \
                         and wait for the vault ({waiting} now). custosctl vault status"
                    ),
                });
            } else if let Some(q) = ix.vault_oldest_pending()?
                && now_us - q > VAULT_BACKLOG_US
            {
                let last = ix
                    .vault_last_error()?
                    .map_or_else(|| "none".to_owned(), |(k, e)| format!("{k}: {e}"));
                out.push(Alert {
                    key: "vault_backlog".into(),
                    event: "vault",
                    subject: format!(
                        "{waiting} evidence cop(ies) have waited over an hour for the vault"
                    ),
                    body: format!(
                        "The oldest was queued at {} and is not yet confirmed by bucket {}. \
                         Last error: {last}. custosctl vault status",
                        crate::clock::format_utc(q),
                        vault.bucket
                    ),
                });
            }
        }
        Ok(out)
    }
}
