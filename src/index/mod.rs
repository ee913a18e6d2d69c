//! The SQLite index: every SQL statement in Custos lives in this module.
//!
//! Invariants (see docs/design/schema.md):
//! - The database is in WAL mode with `synchronous=FULL`, foreign keys on and
//!   `secure_delete` on, so deleted rows leave no readable remains in the file.
//! - A fresh database is created from `schema.sql`; an older one is brought up
//!   to date by the steps in `upgrade.rs`, each in its own transaction. A
//!   database newer than this binary is refused, never written.
//! - A segment row exists before its file does (state `Recording`), and is
//!   marked `Complete` only after its file is durable. Start-up recovery
//!   therefore needs only the few rows that are not complete.
//! - Every connection waits up to [`BUSY_TIMEOUT`] for a lock; a transaction
//!   whose COMMIT fails is rolled back, never left open.

mod activity;
mod alerts;
mod audit;
mod breach;
mod evidence;
mod inbox;
mod metrics;
mod redaction;
mod requests;
mod retention;
mod upgrade;
mod vault;

use activity::activity_blob;
pub use activity::{SegmentActivity, add_activity};
pub use alerts::AlertRow;
pub use audit::{AUDIT_GENESIS_HASH, AuditAnchor, AuditEntry, AuditFilter, AuditRecord};
pub use breach::{BreachNote, BreachRow, BreachUpdate};
pub use evidence::{CaseRow, CopyRow, DisclosureRow, HoldRow, NewCase, NewCopy, NewDisclosure};
pub use inbox::{DeviceFileRow, NewDeviceFile};
pub use metrics::{DeletionTotal, OutageTotal};
pub use redaction::{NewRedaction, RedactionRow, RedactionState};
pub use requests::{
    CorrectionRow, FootageSpan, NewRequest, RequestEvent, RequestRow, RestrictionRow,
};
pub use vault::{VaultCount, VaultDeletion, VaultObjectRow, VaultState};

pub use retention::{
    Candidate, Cursor, DeletionReason, DeletionRow, NewDeletion, Overdue, Protection, UsageRow,
};

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};

use crate::error::{Error, Result};

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 1 + upgrade::STEPS.len() as i64;

/// The longest a segment may last. Overlap queries rely on it to turn
/// "starts before `to` and ends after `from`" into a bounded index range scan.
pub const MAX_SEGMENT_US: i64 = 15 * 60 * 1_000_000 + 10_000_000;

/// The longest a device file's recording may last (a dash camera's parked
/// night). Its camera's `longest_us` grows to it, so range queries find it.
pub const MAX_DEVICE_FILE_US: i64 = 12 * 3600 * 1_000_000;

const FRESH_SCHEMA: &str = include_str!("schema.sql");

/// How long every connection waits for another one's write lock before a
/// statement fails with "database is locked": longer than any one batch of
/// the reaper or the finisher holds it.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Row id of a camera in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraId(pub i64);

/// Row id of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub i64);

/// Row id of an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutageId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentState {
    /// Being written, or cut off by a crash and not yet recovered.
    Recording = 0,
    Complete = 1,
    /// Marked for destruction; the file may or may not still exist.
    Doomed = 2,
}

impl SegmentState {
    fn from_i64(v: i64) -> Result<Self> {
        match v {
            0 => Ok(SegmentState::Recording),
            1 => Ok(SegmentState::Complete),
            2 => Ok(SegmentState::Doomed),
            _ => Err(Error::internal(format!("index: unknown segment state {v}"))),
        }
    }
}

/// Where a segment's wall-clock times came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The recording server's clock when the first frame arrived.
    Local,
    /// The camera's NTP time from RTCP sender reports.
    Rtcp,
    /// A device file's `mvhd` creation time, read in the device's zone.
    Metadata,
    /// A device file's name, through its inbox's pattern, in the device's zone.
    FileName,
}

impl TimeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Local => "local",
            TimeSource::Rtcp => "rtcp",
            TimeSource::Metadata => "metadata",
            TimeSource::FileName => "file_name",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(TimeSource::Local),
            "rtcp" => Ok(TimeSource::Rtcp),
            "metadata" => Ok(TimeSource::Metadata),
            "file_name" => Ok(TimeSource::FileName),
            _ => Err(Error::internal(format!("index: unknown time source {s:?}"))),
        }
    }
}

/// What is known of a segment when its file is about to be created.
#[derive(Debug, Clone)]
pub struct NewSegment<'a> {
    pub camera: CameraId,
    pub zone: &'a str,
    pub root: &'a str,
    pub path: &'a str,
    pub start_us: i64,
    pub time_source: TimeSource,
    pub clock_offset_us: Option<i64>,
}

/// What is known of a segment once its file is durable.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSummary {
    pub end_us: i64,
    pub bytes: u64,
    pub frames: u64,
    pub key_frames: u64,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub sha256: [u8; 32],
    /// Set if the start-up recovery pass (not the recorder) completed it.
    pub recovered: bool,
    /// Bytes of non-key video frames in each second from the segment's
    /// start (see [`add_activity`]); how much moved, without decoding.
    pub activity: Vec<u32>,
}

/// A segment row as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentRow {
    pub id: i64,
    pub camera: String,
    pub zone: String,
    pub root: String,
    pub path: String,
    pub state: SegmentState,
    pub start_us: i64,
    pub end_us: Option<i64>,
    pub bytes: Option<u64>,
    pub frames: Option<u64>,
    pub key_frames: Option<u64>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    #[serde(serialize_with = "hex_opt")]
    pub sha256: Option<[u8; 32]>,
    pub time_source: TimeSource,
    pub clock_offset_us: Option<i64>,
    pub recovered: bool,
}

fn hex_opt<S: serde::Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(h) => s.serialize_str(&hex::encode(h)),
        None => s.serialize_none(),
    }
}

/// An outage row: a gap in a camera's recording.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutageRow {
    pub id: i64,
    pub camera: String,
    pub from_us: i64,
    pub to_us: Option<i64>,
    pub reason: String,
}

/// An open connection to the index database.
pub struct Index {
    conn: Connection,
}

const SEGMENT_COLUMNS: &str = "s.id, c.name, s.zone, s.root, s.path, s.state, s.start_us, \
     s.end_us, s.bytes, s.frames, s.key_frames, s.video_codec, s.audio_codec, s.sha256, \
     s.time_source, s.clock_offset_us, s.recovered";

const INSERT_CAMERA: &str =
    "INSERT INTO camera (name) VALUES (:name) ON CONFLICT (name) DO NOTHING";
const SELECT_CAMERA: &str = "SELECT id FROM camera WHERE name = :name";
const INSERT_SEGMENT: &str = "INSERT INTO segment \
     (camera_id, zone, root, path, state, start_us, time_source, clock_offset_us) \
     VALUES (:camera, :zone, :root, :path, 0, :start, :source, :offset)";
const COMPLETE_SEGMENT: &str = "UPDATE segment SET state = 1, end_us = :end, bytes = :bytes, \
     frames = :frames, key_frames = :key_frames, video_codec = :video, audio_codec = :audio, \
     sha256 = :sha, recovered = :recovered, activity = :activity WHERE id = :id AND state = 0";
const RETIME_SEGMENT: &str = "UPDATE segment SET start_us = :start, time_source = :source, \
     clock_offset_us = :offset WHERE id = :id AND state = 0";
const DELETE_SEGMENT: &str = "DELETE FROM segment WHERE id = :id";
const INSERT_OUTAGE: &str =
    "INSERT INTO outage (camera_id, from_us, reason) VALUES (:camera, :from, :reason)";
const CLOSE_OUTAGE: &str = "UPDATE outage SET to_us = :to WHERE id = :id AND to_us IS NULL";

impl Index {
    /// Opens (creating if missing) the index at `path` and brings its schema
    /// up to date.
    pub fn open(path: &Path) -> Result<Index> {
        make_private(path)?;
        let conn = Connection::open(path).map_err(|e| {
            Error::unavailable(format!(
                "cannot open the index database {}: {e}",
                path.display()
            ))
        })?;
        let mut index = Index { conn };
        index.configure()?;
        index.migrate(path)?;
        Ok(index)
    }

    /// Opens an existing index for reading only (API queries, tools).
    pub fn open_read_only(path: &Path) -> Result<Index> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot open the index database {}: {e}",
                path.display()
            ))
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let index = Index { conn };
        let version = index.schema_version()?;
        if version != SCHEMA_VERSION {
            return Err(Error::unavailable(format!(
                "the index {} has schema version {version}, this binary reads version \
                 {SCHEMA_VERSION}; start custosd once to upgrade it, or use a matching custos",
                path.display()
            )));
        }
        Ok(index)
    }

    /// Creates the index at `path` with the schema of version 1, for tests of
    /// the upgrade path.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn create_v1_for_tests(path: &Path) -> Result<()> {
        let conn = Connection::open(path)?;
        conn.execute_batch(include_str!("v1.sql"))?;
        conn.pragma_update(None, "user_version", 1)?;
        Ok(())
    }

    fn configure(&mut self) -> Result<()> {
        // First, so that even switching to WAL waits for another writer.
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::unavailable(format!(
                "the index database could not enter WAL mode (it is in {mode} mode); \
                 is it on a network filesystem?"
            )));
        }
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", true)?;
        self.conn.pragma_update(None, "secure_delete", true)?;
        Ok(())
    }

    /// The database file, if it is not in memory.
    pub fn path(&self) -> Option<PathBuf> {
        self.conn
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// `PRAGMA user_version`: 0 for an empty database.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self, path: &Path) -> Result<()> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(Error::unavailable(format!(
                "the index {} has schema version {version}, newer than this custos \
                 (version {}, schema {SCHEMA_VERSION}); it was written by a newer release. \
                 Install that release again, or restore a backup of the index made for this one",
                path.display(),
                env!("CARGO_PKG_VERSION"),
            )));
        }
        if version == 0 {
            let tx = self.conn.transaction()?;
            tx.execute_batch(FRESH_SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
            return Ok(());
        }
        for (i, step) in upgrade::STEPS.iter().enumerate().skip(version as usize - 1) {
            let to = i as i64 + 2;
            let tx = self.conn.transaction()?;
            tx.execute_batch(step).map_err(|e| {
                Error::internal(format!("upgrading the index to schema {to} failed: {e}"))
            })?;
            // A step that edits sqlite_schema in place must bump the schema
            // cookie, which its SQL cannot (the pragma takes a literal); for
            // any other step the bump costs one re-read of the schema.
            let cookie: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
            tx.pragma_update(None, "schema_version", cookie + 1)?;
            tx.pragma_update(None, "user_version", to)?;
            tx.commit()?;
            tracing::info!(schema = to, "upgraded the index");
        }
        Ok(())
    }

    /// Runs `f` in one transaction: all of its changes land, or none.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Index) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    // A failed COMMIT (disk full, I/O error, a deferred
                    // constraint) leaves the transaction open: the next
                    // statements would join it and land, or not, with it.
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(e.into())
                }
            },
            Err(e) => {
                // The rollback can only fail if there is no transaction left.
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The id of the camera named `name`, adding it if it is new.
    pub fn camera_id(&self, name: &str) -> Result<CameraId> {
        self.conn
            .prepare_cached(INSERT_CAMERA)?
            .execute(named_params! {":name": name})?;
        let id = self
            .conn
            .prepare_cached(SELECT_CAMERA)?
            .query_row(named_params! {":name": name}, |r| r.get(0))?;
        Ok(CameraId(id))
    }

    /// Records a segment about to be written (state `Recording`).
    pub fn begin_segment(&self, s: &NewSegment) -> Result<SegmentId> {
        self.conn
            .prepare_cached(INSERT_SEGMENT)?
            .execute(named_params! {
                ":camera": s.camera.0,
                ":zone": s.zone,
                ":root": s.root,
                ":path": s.path,
                ":start": s.start_us,
                ":source": s.time_source.as_str(),
                ":offset": s.clock_offset_us,
            })?;
        Ok(SegmentId(self.conn.last_insert_rowid()))
    }

    /// Marks a recording segment complete with what its file holds.
    pub fn complete_segment(&self, id: SegmentId, s: &SegmentSummary) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(COMPLETE_SEGMENT)?
            .execute(named_params! {
                ":id": id.0,
                ":end": s.end_us,
                ":bytes": s.bytes as i64,
                ":frames": s.frames as i64,
                ":key_frames": s.key_frames as i64,
                ":video": s.video_codec,
                ":audio": s.audio_codec,
                ":sha": &s.sha256[..],
                ":recovered": s.recovered,
                ":activity": activity_blob(&s.activity),
            })?;
        if n != 1 {
            return Err(Error::internal(format!(
                "index: segment {} is not recording and cannot be completed",
                id.0
            )));
        }
        Ok(())
    }

    /// Corrects a recording segment's start and time source (the camera's
    /// clock became known after the row was written).
    pub fn retime_segment(
        &self,
        id: SegmentId,
        start_us: i64,
        source: TimeSource,
        clock_offset_us: Option<i64>,
    ) -> Result<()> {
        self.conn
            .prepare_cached(RETIME_SEGMENT)?
            .execute(named_params! {
                ":id": id.0,
                ":start": start_us,
                ":source": source.as_str(),
                ":offset": clock_offset_us,
            })?;
        Ok(())
    }

    /// Removes a segment row (a recording whose file holds no frame).
    pub fn remove_segment(&self, id: SegmentId) -> Result<()> {
        self.conn
            .prepare_cached(DELETE_SEGMENT)?
            .execute(named_params! {":id": id.0})?;
        Ok(())
    }

    /// Segments that are not complete: being recorded, cut off, or doomed.
    pub fn unfinished_segments(&self) -> Result<Vec<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE s.state <> 1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], segment_row)?;
        // Sorted here, not in SQL: an ORDER BY id makes SQLite walk the whole
        // table in rowid order instead of the small partial index.
        let mut rows = collect(rows)?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// How SQLite plans a query, for tests that keep hot queries on an index.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn query_plan_of_unfinished(&self) -> Result<String> {
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT {SEGMENT_COLUMNS} FROM segment s \
             JOIN camera c ON c.id = s.camera_id WHERE s.state <> 1"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(3))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
    }

    /// One segment by id.
    pub fn segment(&self, id: SegmentId) -> Result<Option<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE s.id = :id"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id.0}, segment_row)
            .optional()?)
    }

    /// Segments of `camera` overlapping `[from_us, to_us)`, oldest first.
    pub fn segments(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<SegmentRow>> {
        self.segments_page(camera, from_us, to_us, None)
    }

    /// Complete segments with an id above `after_id`, by id, at most `limit`
    /// (the integrity sweep's walk over all footage).
    pub fn complete_segments_after(&self, after_id: i64, limit: usize) -> Result<Vec<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE s.id > :after AND s.state = 1 ORDER BY s.id LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {":after": after_id, ":limit": limit as i64},
            segment_row,
        )?;
        collect(rows)
    }

    /// [`Index::segments`], at most `limit` of them (the first by start).
    pub fn segments_page(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
        limit: Option<u32>,
    ) -> Result<Vec<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE c.name = :camera AND s.start_us >= :from - c.longest_us AND s.start_us < :to \
               AND (s.end_us IS NULL OR s.end_us > :from) \
             ORDER BY s.start_us LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {
                ":camera": camera,
                ":from": from_us,
                ":to": to_us,
                // SQLite reads a negative limit as none.
                ":limit": limit.map_or(-1, i64::from),
            },
            segment_row,
        )?;
        collect(rows)
    }

    /// Of `ids`, the segments still complete, in that order: one doomed or
    /// gone since the ids were read is left out (read them again after
    /// taking a lease, and only what the lease covers is used).
    pub fn complete_segments(&self, ids: &[SegmentId]) -> Result<Vec<SegmentRow>> {
        let mut rows = Vec::new();
        for id in ids {
            if let Some(r) = self.segment(*id)?
                && r.state == SegmentState::Complete
            {
                rows.push(r);
            }
        }
        Ok(rows)
    }

    /// Opens an outage of `camera` from `from_us`.
    pub fn begin_outage(&self, camera: CameraId, from_us: i64, reason: &str) -> Result<OutageId> {
        self.conn
            .prepare_cached(INSERT_OUTAGE)?
            .execute(named_params! {
                ":camera": camera.0,
                ":from": from_us,
                ":reason": reason,
            })?;
        Ok(OutageId(self.conn.last_insert_rowid()))
    }

    /// Closes an open outage at `to_us`.
    pub fn end_outage(&self, id: OutageId, to_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(CLOSE_OUTAGE)?
            .execute(named_params! {":id": id.0, ":to": to_us})?;
        Ok(())
    }

    /// Outages of `camera` overlapping `[from_us, to_us)`, oldest first;
    /// an open outage overlaps everything after its start.
    pub fn outages(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<OutageRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, c.name, o.from_us, o.to_us, o.reason \
             FROM outage o JOIN camera c ON c.id = o.camera_id \
             WHERE c.name = :camera AND o.from_us < :to AND (o.to_us IS NULL OR o.to_us > :from) \
             ORDER BY o.from_us",
        )?;
        let rows = stmt.query_map(
            named_params! {":camera": camera, ":from": from_us, ":to": to_us},
            |r| {
                Ok(OutageRow {
                    id: r.get(0)?,
                    camera: r.get(1)?,
                    from_us: r.get(2)?,
                    to_us: r.get(3)?,
                    reason: r.get(4)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Outages left open by a crash: the daemon was not running, so it was
    /// not recording either. Closes them at `to_us` and returns how many.
    pub fn end_open_outages(&self, to_us: i64) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE outage SET to_us = max(from_us, :to) WHERE to_us IS NULL",
            named_params! {":to": to_us},
        )?)
    }

    /// The end of the last complete segment of `camera`, if any.
    pub fn last_segment_end(&self, camera: CameraId) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT end_us FROM segment WHERE camera_id = :camera AND state = 1 \
                 ORDER BY start_us DESC LIMIT 1",
            )?
            .query_row(named_params! {":camera": camera.0}, |r| r.get(0))
            .optional()?)
    }

    /// The schema as SQLite describes it, for comparing two databases.
    #[doc(hidden)]
    pub fn describe_schema(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut objects = self.conn.prepare(
            "SELECT type, name, tbl_name FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )?;
        let objects: Vec<(String, String, String)> = objects
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (kind, name, table) in objects {
            out.push(format!("{kind} {name} on {table}"));
            let pragmas: &[&str] = match kind.as_str() {
                "table" => &["table_xinfo", "foreign_key_list", "index_list"],
                "index" => &["index_xinfo"],
                _ => &[],
            };
            for pragma in pragmas {
                let mut stmt = self.conn.prepare(&format!("PRAGMA {pragma}(\"{name}\")"))?;
                let n = stmt.column_count();
                let rows = stmt.query_map([], |r| {
                    let cols = (0..n)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(cols.join(","))
                })?;
                for row in rows {
                    out.push(format!("  {pragma}: {}", row?));
                }
            }
        }
        Ok(out)
    }
}

fn segment_row(r: &rusqlite::Row) -> rusqlite::Result<SegmentRow> {
    let state: i64 = r.get(5)?;
    let source: String = r.get(14)?;
    let sha: Option<Vec<u8>> = r.get(13)?;
    let conv = |e: Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e))
    };
    Ok(SegmentRow {
        id: r.get(0)?,
        camera: r.get(1)?,
        zone: r.get(2)?,
        root: r.get(3)?,
        path: r.get(4)?,
        state: SegmentState::from_i64(state).map_err(conv)?,
        start_us: r.get(6)?,
        end_us: r.get(7)?,
        bytes: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        frames: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        key_frames: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
        video_codec: r.get(11)?,
        audio_codec: r.get(12)?,
        sha256: sha.and_then(|v| v.try_into().ok()),
        time_source: TimeSource::parse(&source).map_err(conv)?,
        clock_offset_us: r.get(15)?,
        recovered: r.get(16)?,
    })
}

fn collect(
    rows: rusqlite::MappedRows<'_, impl FnMut(&rusqlite::Row) -> rusqlite::Result<SegmentRow>>,
) -> Result<Vec<SegmentRow>> {
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Creates the database file owner-only (0600) before SQLite opens it, and
/// takes group and other access from an existing one and its `-wal` and
/// `-shm` (SQLite creates those with the database file's mode). The index
/// holds the audit log, cases and the disclosure register: it is the
/// daemon's alone, whatever umask the process inherited.
fn make_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::storage::FILE_MODE)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("cannot create the index database", path, e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if !file.exists() {
            continue;
        }
        if let Some(was) = crate::storage::close_to_others(file)? {
            tracing::warn!(file = %file.display(), "index file was mode {was:04o}; now owner-only");
        }
    }
    Ok(())
}

/// One read-write connection shared by the recorder's threads (cameras,
/// finishers), the reaper and evidence: each call is one statement or one
/// Serializes a SHA-256 as hex (the rows' `serialize_with`).
fn hex32<S: serde::Serializer>(v: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// transaction under the lock.
#[derive(Clone)]
pub struct SharedIndex(std::sync::Arc<std::sync::Mutex<Index>>);

impl SharedIndex {
    pub fn new(index: Index) -> Self {
        SharedIndex(std::sync::Arc::new(std::sync::Mutex::new(index)))
    }

    /// Locks the index. A panic while it was held cannot leave SQLite in a
    /// half-written state (each call is a statement or a transaction), so a
    /// poisoned lock is still usable.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
