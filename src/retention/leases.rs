//! Read leases: segments being read (an export, a hold) that the reaper
//! must not delete meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::index::SegmentId;

/// Segments being read right now (export, playback). In memory: a lease
/// lives only as long as the reader's process, and the reaper skips leased
/// segments, retrying them next pass. A reader takes the lease *then* reads
/// the rows; a row already doomed is gone for it.
#[derive(Debug, Default)]
pub struct Leases {
    held: Mutex<HashMap<i64, u32>>,
}

/// Holds a lease on some segments until dropped.
#[derive(Debug)]
pub struct LeaseGuard {
    leases: Arc<Leases>,
    ids: Vec<i64>,
}

impl Leases {
    pub fn new() -> Arc<Leases> {
        Arc::new(Leases::default())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<i64, u32>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases `ids` until the guard is dropped. Leases nest.
    pub fn acquire(self: &Arc<Self>, ids: &[SegmentId]) -> LeaseGuard {
        let mut held = self.lock();
        for id in ids {
            *held.entry(id.0).or_insert(0) += 1;
        }
        LeaseGuard {
            leases: self.clone(),
            ids: ids.iter().map(|i| i.0).collect(),
        }
    }

    pub fn is_leased(&self, id: SegmentId) -> bool {
        self.lock().contains_key(&id.0)
    }

    /// How many segments are leased.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        for id in &self.ids {
            if let Some(n) = held.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    held.remove(id);
                }
            }
        }
    }
}
