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
    // 2 -> 3: retention (usage totals, holds, restrictions, deletion journal).
    r#"
-- Oldest-first deletion under disk pressure, per storage root, and age
-- deletion per zone: both are range scans on start_us.
CREATE INDEX segment_root_start ON segment (root, start_us);
CREATE INDEX segment_zone_start ON segment (zone, start_us);

-- Bytes and segments per (root, zone, camera), kept by triggers so a
-- root's use against its budget costs a few rows, not a scan of every
-- segment. Rows of every state count: a file uses its bytes until it is gone.
CREATE TABLE usage (
  root TEXT NOT NULL,
  zone TEXT NOT NULL,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  segments INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (root, zone, camera_id)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER segment_usage_insert AFTER INSERT ON segment BEGIN
  INSERT INTO usage (root, zone, camera_id, segments, bytes)
    VALUES (NEW.root, NEW.zone, NEW.camera_id, 1, coalesce(NEW.bytes, 0))
    ON CONFLICT (root, zone, camera_id) DO UPDATE
    SET segments = segments + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER segment_usage_bytes AFTER UPDATE OF bytes ON segment BEGIN
  UPDATE usage SET bytes = bytes - coalesce(OLD.bytes, 0) + coalesce(NEW.bytes, 0)
    WHERE root = NEW.root AND zone = NEW.zone AND camera_id = NEW.camera_id;
END;
CREATE TRIGGER segment_usage_delete AFTER DELETE ON segment BEGIN
  UPDATE usage SET segments = segments - 1, bytes = bytes - coalesce(OLD.bytes, 0)
    WHERE root = OLD.root AND zone = OLD.zone AND camera_id = OLD.camera_id;
END;

-- Footage held for a case (filled in by the evidence issue). Active while
-- released_us is NULL; a held segment is never deleted.
CREATE TABLE hold (
  id INTEGER PRIMARY KEY,
  case_id TEXT NOT NULL,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  released_us INTEGER
) STRICT;
CREATE INDEX hold_camera_from ON hold (camera_id, from_us);

-- Footage whose processing a data subject restricted (004 §30). Active while
-- lifted_us is NULL; a restricted segment is never deleted.
CREATE TABLE restriction (
  id INTEGER PRIMARY KEY,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  reason TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  lifted_us INTEGER
) STRICT;
CREATE INDEX restriction_camera_from ON restriction (camera_id, from_us);

-- The deletion journal: what was deleted, when, why and by whom; never the
-- content. One row per camera per batch of one pass, written in the same
-- transaction that marks the segments doomed.
CREATE TABLE deletion (
  id INTEGER PRIMARY KEY,
  at_us INTEGER NOT NULL,            -- when the segments were marked
  pass_us INTEGER NOT NULL,          -- start of the pass (groups its rows)
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  zone TEXT NOT NULL,
  root TEXT NOT NULL,
  from_us INTEGER NOT NULL,          -- start of the oldest segment deleted
  to_us INTEGER NOT NULL,            -- end of the newest segment deleted
  segments INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('retention', 'disk_pressure', 'erasure', 'case_closed')),
  actor TEXT NOT NULL                -- 'reaper', or the user who asked
) STRICT;
CREATE INDEX deletion_at ON deletion (at_us);
    INSERT INTO usage (root, zone, camera_id, segments, bytes)
      SELECT root, zone, camera_id, count(*), coalesce(sum(bytes), 0)
      FROM segment GROUP BY root, zone, camera_id;
    "#,
    // 3 -> 4: the audit log of the admin API.
    r#"
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,           -- 1, 2, ... with no gaps; never reused
  at_us INTEGER NOT NULL,
  uid INTEGER NOT NULL,              -- caller's uid (SO_PEERCRED)
  user TEXT NOT NULL,                -- its user name, or 'uid N'
  pid INTEGER NOT NULL,              -- caller's pid (SO_PEERCRED)
  role TEXT NOT NULL,                -- role that allowed it, or 'none'
  action TEXT NOT NULL,              -- e.g. 'recordings.list'
  target TEXT NOT NULL,              -- camera, time range, case; '-' if none
  reason TEXT NOT NULL,              -- stated purpose of access; '' if none
  outcome TEXT NOT NULL,             -- 'ok' or an error kind
  prev_hash BLOB NOT NULL,           -- hash of entry seq - 1 (or the anchor)
  hash BLOB NOT NULL                 -- SHA-256 of the canonical encoding
) STRICT;
CREATE INDEX audit_at ON audit (at_us);

-- Where the stored chain starts once old entries were purged: the seq and
-- hash of the last purged entry. At most one row.
CREATE TABLE audit_anchor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  purged_us INTEGER NOT NULL         -- entries before this time were purged
) STRICT;
    "#,
    // 4 -> 5: evidence (cases, review extensions, case-linked copies) and the
    // disclosure register of exports.
    r#"
CREATE TABLE evidence_case (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  authority TEXT NOT NULL,
  authority_ref TEXT NOT NULL,
  legal_basis TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  review_us INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  closed_us INTEGER,
  close_reason TEXT
) STRICT;

CREATE TABLE case_review (
  id INTEGER PRIMARY KEY,
  case_id TEXT NOT NULL REFERENCES evidence_case (id),
  at_us INTEGER NOT NULL,
  by_user TEXT NOT NULL,
  old_review_us INTEGER NOT NULL,
  new_review_us INTEGER NOT NULL,
  reason TEXT NOT NULL
) STRICT;

CREATE TABLE evidence_copy (
  id INTEGER PRIMARY KEY,
  case_id TEXT NOT NULL REFERENCES evidence_case (id),
  hold_id INTEGER NOT NULL REFERENCES hold (id),
  source_path TEXT NOT NULL,
  source_sha256 BLOB NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  copy_path TEXT NOT NULL,
  sha256 BLOB NOT NULL,
  bytes INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  destroyed_us INTEGER
) STRICT;
CREATE INDEX evidence_copy_case ON evidence_copy (case_id);

CREATE TABLE disclosure (
  id INTEGER PRIMARY KEY,
  at_us INTEGER NOT NULL,
  case_id TEXT,
  camera_id INTEGER NOT NULL REFERENCES camera (id),
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  recipient TEXT NOT NULL,
  legal_basis TEXT NOT NULL,
  reason TEXT NOT NULL,
  by_user TEXT NOT NULL,
  by_uid INTEGER NOT NULL,
  files TEXT NOT NULL,
  manifest_sha256 BLOB NOT NULL
) STRICT;
CREATE INDEX disclosure_camera_at ON disclosure (camera_id, at_us);
    "#,
    // 5 -> 6: the audit anchor carries the node key's signature, so a purge
    // cannot be forged by rewriting the table. NULL on an anchor written
    // before: verification reports it as unsigned until the next purge.
    r#"
ALTER TABLE audit_anchor ADD COLUMN signature BLOB;
    "#,
    // 6 -> 7: data-subject requests; restrictions and erasures name theirs.
    r#"
-- Data-subject requests (docs/design/requests.md): the register, the cameras
-- each names, and what was done for it. Requester, contact and description
-- are personal data: set to NULL (and purged_us set) once the register's own
-- retention after closing has passed. The rest stays as the record of the
-- answer (GDPR Art. 5(2)).
CREATE TABLE subject_request (
  id TEXT PRIMARY KEY,               -- 'R-2026-0001': year received, number
  kind TEXT NOT NULL CHECK (kind IN ('access', 'copy', 'rectification', 'erasure',
                                     'restriction', 'objection')),
  reference TEXT,                    -- the controller's own file number
  received_us INTEGER NOT NULL,
  due_date TEXT NOT NULL,            -- last day to answer (YYYY-MM-DD, site zone)
  extended_to TEXT,                  -- last day after an extension
  extension_reason TEXT,
  extension_told TEXT,               -- date the requester was told of it
  requester TEXT,
  contact TEXT,
  description TEXT,                  -- how to recognise the requester
  identity_check TEXT NOT NULL,      -- how identity was verified (never a copy)
  verified_by TEXT NOT NULL,
  from_us INTEGER NOT NULL,          -- the event's window
  to_us INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'refused', 'withdrawn')),
  closed_us INTEGER,
  answer TEXT,
  created_by TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  purged_us INTEGER
) STRICT;

CREATE TABLE request_camera (
  request_id TEXT NOT NULL REFERENCES subject_request (id),
  camera TEXT NOT NULL,              -- the config's camera id
  PRIMARY KEY (request_id, camera)
) STRICT, WITHOUT ROWID;

-- What was done for a request, in order: extension, erasure (and what it
-- could not erase), restriction and its lifting, an objection's decision, a
-- rectification. `detail` is JSON; never footage, never the requester.
CREATE TABLE request_event (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL REFERENCES subject_request (id),
  at_us INTEGER NOT NULL,
  by_user TEXT NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL
) STRICT;
CREATE INDEX request_event_request ON request_event (request_id, id);

-- A wrong date or time in footage, noted without touching the files:
-- the recorded time plus offset_us is the true time, per the note.
CREATE TABLE time_correction (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL REFERENCES subject_request (id),
  camera TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  offset_us INTEGER NOT NULL,
  note TEXT NOT NULL,
  at_us INTEGER NOT NULL,
  by_user TEXT NOT NULL
) STRICT;
CREATE INDEX time_correction_camera ON time_correction (camera, from_us);

ALTER TABLE restriction ADD COLUMN request_id TEXT REFERENCES subject_request (id);
ALTER TABLE restriction ADD COLUMN lifted_by TEXT;
ALTER TABLE restriction ADD COLUMN lift_reason TEXT;
ALTER TABLE deletion ADD COLUMN request_id TEXT;
    "#,
    // 7 -> 8: the breach register.
    r#"
-- The breach register (docs/design/breaches.md): suspected personal-data
-- breaches, opened by the daemon when it detects one (or by the DPO), with
-- the 4-hour clock to the DPO (004 §22; 001 §36) and the 72-hour clock to
-- the authority (GDPR Art. 33(1)); every breach documented (Art. 33(5)).
CREATE TABLE breach (
  id INTEGER PRIMARY KEY,
  detected_us INTEGER NOT NULL,
  kind TEXT NOT NULL,                -- audit_chain, evidence_changed, refused_access, reported
  subject TEXT NOT NULL,             -- what it concerns: 'audit', 'case C', 'uid N', ...
  what TEXT NOT NULL,                -- what was detected, in words
  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  dpo_informed_us INTEGER,           -- the DPO took it up (4-hour clock)
  assessment TEXT,
  actions TEXT,
  authority_notified_us INTEGER,     -- the supervisory authority was notified (72 h)
  not_notified_reason TEXT,          -- or why it was not
  closed_us INTEGER,
  closed_by TEXT,
  close_note TEXT
) STRICT;
-- One open record per thing detected: a detection that repeats adds nothing.
CREATE UNIQUE INDEX breach_open_subject ON breach (kind, subject) WHERE status = 'open';

CREATE TABLE breach_note (
  id INTEGER PRIMARY KEY,
  breach_id INTEGER NOT NULL REFERENCES breach (id),
  at_us INTEGER NOT NULL,
  by_user TEXT NOT NULL,
  text TEXT NOT NULL
) STRICT;
CREATE INDEX breach_note_breach ON breach_note (breach_id, id);
    "#,
    // 8 -> 9: the alert queue.
    r#"
-- Alerts waiting to be sent, and sent (docs/design/alerts.md): one row per
-- alert and channel, so a restart loses none and a sent one is never sent
-- again.
CREATE TABLE alert (
  id INTEGER PRIMARY KEY,
  created_us INTEGER NOT NULL,
  key TEXT NOT NULL,                 -- what it is about, e.g. 'camera_down:gate'
  event TEXT NOT NULL,               -- camera_down, storage, clock, breach, request, review, test
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
  recipient TEXT NOT NULL,           -- addresses, or the URL
  state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try_us INTEGER NOT NULL,
  sent_us INTEGER,
  last_error TEXT
) STRICT;
CREATE INDEX alert_pending ON alert (next_try_us) WHERE state = 'pending';
CREATE INDEX alert_key ON alert (key, created_us);
    "#,
    // 9 -> 10: device files (footage of mobile cameras from an inbox).
    r#"
-- ---------------------------------------------------------------------------
-- Device files (schema 10, docs/design/inbox.md): footage of a mobile camera
-- taken from an inbox. Its segment row is a camera's (camera.name = the
-- device id), so retention, holds and export treat it alike; this row is the
-- ingest's record and outlives the segment (no foreign key: the reaper
-- removes segment rows). State 0 while the file is being stored (its segment
-- is then `recording` too), 1 once stored; the inbox file is removed only
-- after that.
CREATE TABLE device_file (
  id INTEGER PRIMARY KEY,
  segment_id INTEGER NOT NULL,
  device TEXT NOT NULL,              -- the config's device id
  state INTEGER NOT NULL CHECK (state IN (0, 1)),
  sha256 BLOB NOT NULL UNIQUE,       -- of the file as it arrived (and as stored)
  original_name TEXT NOT NULL,       -- path relative to the inbox
  original_bytes INTEGER NOT NULL,
  inbox TEXT NOT NULL,               -- the inbox's path
  owner_uid INTEGER NOT NULL,        -- who owned the file in the inbox
  ingested_us INTEGER NOT NULL,
  time_source TEXT NOT NULL CHECK (time_source IN ('metadata', 'file_name')),
  mtime_offset_us INTEGER            -- end by the device's clock minus the file's mtime
) STRICT;
CREATE INDEX device_file_segment ON device_file (segment_id);
CREATE INDEX device_file_ingested ON device_file (ingested_us);
    "#,
    // 10 -> 11: the activity summary (review: custosctl activity).
    r#"
-- Bytes of non-key video frames per second of each segment, counted by the
-- recorder (docs/design/review.md): an activity query reads the index, not
-- the files. NULL for segments recorded before this step.
ALTER TABLE segment ADD COLUMN activity BLOB;
    "#,
    // 11 -> 12: a segment names a device file's time source itself.
    r#"
-- The segment table's CHECK widens to the device clocks (metadata, file
-- name). Widening a CHECK leaves every stored row valid, so the table's
-- text is edited in place (sqlite.org/lang_altertable.html section 7)
-- rather than rebuilt under every table that refers to it; `migrate`
-- bumps the schema cookie after the step.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
  SET sql = replace(sql, 'CHECK (time_source IN (''local'', ''rtcp''))',
                    'CHECK (time_source IN (''local'', ''rtcp'', ''metadata'', ''file_name''))')
  WHERE type = 'table' AND name = 'segment';
PRAGMA writable_schema = RESET;
UPDATE segment
  SET time_source = (SELECT d.time_source FROM device_file d WHERE d.segment_id = segment.id)
  WHERE id IN (SELECT segment_id FROM device_file);
    "#,
    // 12 -> 13: device files longer than a camera's segment.
    r#"
-- How far back a range query scans for a camera's segments (schema.sql).
ALTER TABLE camera ADD COLUMN longest_us INTEGER NOT NULL DEFAULT 910000000;
    "#,
    // 13 -> 14: the evidence vault.
    r#"
-- ---------------------------------------------------------------------------
-- The evidence vault (schema 14, docs/design/vault.md): one row per evidence
-- copy sent to the S3 bucket with Object Lock. Queued (pending) when the copy
-- exists, stored once a HEAD of its version confirmed checksum, legal hold
-- and retention; after its case closes, expiring (legal hold lifted, locked
-- until locked_until_us) or deleted; skipped if the case closed before it
-- was stored. The row outlives its copy (copies are destroyed at close).
CREATE TABLE vault_object (
  id INTEGER PRIMARY KEY,
  copy_id INTEGER NOT NULL UNIQUE REFERENCES evidence_copy (id),
  case_id TEXT NOT NULL REFERENCES evidence_case (id),
  key TEXT NOT NULL,                 -- PREFIX/CASE/FILE in the bucket
  sha256 BLOB NOT NULL,
  bytes INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'stored', 'expiring', 'deleted', 'skipped')),
  mode TEXT NOT NULL CHECK (mode IN ('governance', 'compliance')),
  version_id TEXT,                   -- the store's, once uploaded
  retain_until_us INTEGER NOT NULL,  -- the retention wanted (the case's review date)
  locked_until_us INTEGER,           -- the retention the store confirmed
  legal_hold INTEGER NOT NULL DEFAULT 0,  -- as last confirmed
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try_us INTEGER NOT NULL,
  last_error TEXT,
  queued_us INTEGER NOT NULL,
  stored_us INTEGER,
  done_us INTEGER,                   -- deleted or skipped
  journaled INTEGER NOT NULL DEFAULT 0    -- its deletion is in the journal
) STRICT;
CREATE INDEX vault_object_case ON vault_object (case_id);
CREATE INDEX vault_object_open ON vault_object (state, next_try_us)
  WHERE state IN ('pending', 'stored', 'expiring');
-- What the vault's journal rows say was done (deleted, or kept locked).
ALTER TABLE deletion ADD COLUMN note TEXT;
    "#,
    // 14 -> 15: redacted copies for data subjects.
    r#"
-- ---------------------------------------------------------------------------
-- Redacted copies for data subjects (schema 15, docs/design/redaction.md):
-- one row per redaction job of a request's camera and range. It detects
-- (faces found, frames_done of frames counts the frames looked at), waits
-- for the reviewer's choice (choosing), renders (frames_done counts frames
-- encoded), waits for a second DPO's approval (review), and is released as
-- a signed package. The files (detections, tracks, sheets, the copy) are in
-- the daemon's state directory under redactions/ID; the row says what they
-- are and who did what.
CREATE TABLE redaction (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL REFERENCES subject_request (id),
  camera TEXT NOT NULL,
  from_us INTEGER NOT NULL,
  to_us INTEGER NOT NULL,
  detect_width INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('detecting', 'choosing', 'rendering', 'review',
                                       'approved', 'released', 'cancelled', 'failed',
                                       'purged')),
  frames_done INTEGER NOT NULL DEFAULT 0,
  frames INTEGER NOT NULL DEFAULT 0,
  tracks INTEGER,                    -- found, once detection is done
  error TEXT,                        -- why it failed
  created_us INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  created_uid INTEGER NOT NULL,
  choice TEXT,                       -- JSON: tracks kept, manual masks, modes
  chosen_us INTEGER,
  chosen_by TEXT,
  chosen_uid INTEGER,
  record TEXT,                       -- JSON: what the rendered copy is and how it was made
  approved_us INTEGER,
  approved_by TEXT,
  approved_uid INTEGER,
  released_us INTEGER,
  updated_us INTEGER NOT NULL
) STRICT;
CREATE INDEX redaction_request ON redaction (request_id);
CREATE INDEX redaction_work ON redaction (state) WHERE state IN ('detecting', 'rendering');
    "#,
];
