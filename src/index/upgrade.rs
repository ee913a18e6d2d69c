//! Ordered upgrade steps. Step `i` takes a database from version `i + 1` to
//! `i + 2`; each runs in its own transaction together with the version bump,
//! so a crash mid-upgrade leaves the database at the version before the step.

/// SQL of each step, in order. Append only; never edit a released step.
pub(super) const STEPS: &[&str] = &[
    // 1 -> 2: outages, and a mark on segments completed by crash recovery.
    r#"
    ALTER TABLE segment ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX segment_unfinished ON segment (state) WHERE state <> 1;
    CREATE TABLE outage (
      id INTEGER PRIMARY KEY,
      camera_id INTEGER NOT NULL REFERENCES camera (id),
      from_us INTEGER NOT NULL,
      to_us INTEGER,
      reason TEXT NOT NULL
    ) STRICT;
    CREATE INDEX outage_camera_from ON outage (camera_id, from_us);
    "#,
];
