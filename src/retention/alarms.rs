//! Storage alarms: a root short of space with only protected footage left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::UnixMicros;

/// A storage root short of space with nothing left that may be deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StorageAlarm {
    pub root: String,
    pub state: String,
    pub since_us: UnixMicros,
    /// Bytes still to free to meet `min_free` and `budget`.
    pub short_bytes: u64,
}

/// The alarms of every root, shared with the status API; `raised` counts
/// how often an alarm was raised, for metrics.
#[derive(Debug, Default)]
pub struct StorageAlarms {
    active: Mutex<BTreeMap<String, StorageAlarm>>,
    raised: AtomicU64,
}

impl StorageAlarms {
    pub fn new() -> Arc<StorageAlarms> {
        Arc::new(StorageAlarms::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, StorageAlarm>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn raise(&self, root: &str, now_us: UnixMicros, short_bytes: u64, leased: u64) {
        let state = if leased > 0 {
            format!("full: only protected or leased footage left ({leased} leased segments)")
        } else {
            "full: only protected footage left".to_owned()
        };
        let mut active = self.lock();
        let new = !active.contains_key(root);
        let alarm = active
            .entry(root.to_owned())
            .or_insert_with(|| StorageAlarm {
                root: root.to_owned(),
                state: state.clone(),
                since_us: now_us,
                short_bytes,
            });
        alarm.state = state;
        alarm.short_bytes = short_bytes;
        if new {
            self.raised.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                root,
                short_bytes,
                "storage root is full and only protected footage is left; recording continues \
                 while space lasts. Release holds that are no longer needed, or add storage"
            );
        }
    }

    pub(super) fn clear(&self, root: &str) {
        if self.lock().remove(root).is_some() {
            tracing::info!(root, "storage root has room again; alarm cleared");
        }
    }

    /// The active alarms.
    pub fn snapshot(&self) -> Vec<StorageAlarm> {
        self.lock().values().cloned().collect()
    }

    /// The alarm of `root`, if any.
    pub fn get(&self, root: &str) -> Option<StorageAlarm> {
        self.lock().get(root).cloned()
    }

    /// How many times an alarm was raised since start.
    pub fn raised_total(&self) -> u64 {
        self.raised.load(Ordering::Relaxed)
    }
}
