//! Device files (schema 10): the record of each file taken from an inbox,
//! stored beside the segment row that makes it footage like a camera's.
//! See docs/design/inbox.md for the order of rows and files.

use rusqlite::{OptionalExtension, named_params};

use super::{Index, NewSegment, SegmentId, SegmentSummary, TimeSource};
use crate::error::{Error, Result};

/// A device file about to be moved into the storage layout.
#[derive(Debug, Clone)]
pub struct NewDeviceFile<'a> {
    pub device: &'a str,
    pub zone: &'a str,
    pub root: &'a str,
    /// Relative to the storage root.
    pub path: &'a str,
    pub start_us: i64,
    pub sha256: [u8; 32],
    /// Relative to the inbox.
    pub original_name: &'a str,
    pub original_bytes: u64,
    pub inbox: &'a str,
    pub owner_uid: u32,
    pub ingested_us: i64,
    pub time_source: TimeSource,
    pub mtime_offset_us: Option<i64>,
}

/// A device file as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceFileRow {
    pub segment_id: i64,
    pub device: String,
    /// False while the file is being stored.
    pub stored: bool,
    #[serde(serialize_with = "super::hex32")]
    pub sha256: [u8; 32],
    pub original_name: String,
    pub original_bytes: u64,
    pub inbox: String,
    pub owner_uid: u32,
    pub ingested_us: i64,
    pub time_source: TimeSource,
    pub mtime_offset_us: Option<i64>,
}

const INSERT: &str = "INSERT INTO device_file (segment_id, device, state, sha256, original_name, \
     original_bytes, inbox, owner_uid, ingested_us, time_source, mtime_offset_us) VALUES \
     (:segment, :device, 0, :sha, :name, :bytes, :inbox, :uid, :at, :source, :offset)";
const STORED: &str = "UPDATE device_file SET state = 1 WHERE segment_id = :segment AND state = 0";
// A device file longer than any of its camera's segments so far widens the
// range queries' look-back for that camera (`camera.longest_us`).
const LONGEST: &str = "UPDATE camera SET longest_us = max(longest_us, \
     (SELECT end_us - start_us FROM segment WHERE id = :segment)) \
     WHERE id = (SELECT camera_id FROM segment WHERE id = :segment)";
const BY_HASH: &str = "SELECT segment_id, device, state, sha256, original_name, original_bytes, \
     inbox, owner_uid, ingested_us, time_source, mtime_offset_us FROM device_file WHERE sha256 = :sha";
const STORING: &str = "SELECT segment_id, device, state, sha256, original_name, original_bytes, \
     inbox, owner_uid, ingested_us, time_source, mtime_offset_us FROM device_file \
     WHERE segment_id = :segment AND state = 0";
const DROP_STORING: &str = "DELETE FROM device_file WHERE segment_id = :segment AND state = 0";
const RECENT: &str = "SELECT segment_id, device, state, sha256, original_name, original_bytes, \
     inbox, owner_uid, ingested_us, time_source, mtime_offset_us FROM device_file \
     WHERE state = 1 ORDER BY ingested_us DESC, id DESC LIMIT :limit";
const TOTALS: &str =
    "SELECT count(*), coalesce(sum(original_bytes), 0) FROM device_file WHERE state = 1";

fn row(r: &rusqlite::Row) -> rusqlite::Result<(DeviceFileRow, String)> {
    let sha: Vec<u8> = r.get(3)?;
    let mut sha256 = [0u8; 32];
    if sha.len() == 32 {
        sha256.copy_from_slice(&sha);
    }
    let source: String = r.get(9)?;
    Ok((
        DeviceFileRow {
            segment_id: r.get(0)?,
            device: r.get(1)?,
            stored: r.get::<_, i64>(2)? == 1,
            sha256,
            original_name: r.get(4)?,
            original_bytes: r.get::<_, i64>(5)? as u64,
            inbox: r.get(6)?,
            owner_uid: r.get::<_, i64>(7)? as u32,
            ingested_us: r.get(8)?,
            time_source: TimeSource::Metadata,
            mtime_offset_us: r.get(10)?,
        },
        source,
    ))
}

fn finish(parts: (DeviceFileRow, String)) -> Result<DeviceFileRow> {
    let (mut row, source) = parts;
    row.time_source = TimeSource::parse(&source)?;
    Ok(row)
}

impl Index {
    /// Records a device file about to be moved into place: its segment row
    /// (`recording`) and its device-file row (storing), in one transaction.
    /// A file with the same hash is a conflict.
    pub fn begin_device_file(&mut self, f: &NewDeviceFile) -> Result<SegmentId> {
        self.transaction(|ix| {
            let camera = ix.camera_id(f.device)?;
            let id = ix.begin_segment(&NewSegment {
                camera,
                zone: f.zone,
                root: f.root,
                path: f.path,
                start_us: f.start_us,
                time_source: f.time_source,
                clock_offset_us: None,
            })?;
            ix.conn
                .prepare_cached(INSERT)?
                .execute(named_params! {
                    ":segment": id.0,
                    ":device": f.device,
                    ":sha": &f.sha256[..],
                    ":name": f.original_name,
                    ":bytes": f.original_bytes as i64,
                    ":inbox": f.inbox,
                    ":uid": f.owner_uid as i64,
                    ":at": f.ingested_us,
                    ":source": f.time_source.as_str(),
                    ":offset": f.mtime_offset_us,
                })
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(c, _)
                        if c.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        Error::conflict(format!(
                            "a file with SHA-256 {} is already stored",
                            hex::encode(f.sha256)
                        ))
                    }
                    e => e.into(),
                })?;
            Ok(id)
        })
    }

    /// Marks a device file stored once its file is durable in place: the
    /// segment complete and the device-file row stored, in one transaction.
    pub fn complete_device_file(&mut self, id: SegmentId, s: &SegmentSummary) -> Result<()> {
        self.transaction(|ix| {
            ix.complete_segment(id, s)?;
            let n = ix
                .conn
                .prepare_cached(STORED)?
                .execute(named_params! {":segment": id.0})?;
            if n != 1 {
                return Err(Error::internal(format!(
                    "index: segment {} has no device file being stored",
                    id.0
                )));
            }
            ix.conn
                .prepare_cached(LONGEST)?
                .execute(named_params! {":segment": id.0})?;
            Ok(())
        })
    }

    /// The device file with this hash, stored or being stored.
    pub fn device_file_by_hash(&self, sha256: &[u8; 32]) -> Result<Option<DeviceFileRow>> {
        let r = self
            .conn
            .prepare_cached(BY_HASH)?
            .query_row(named_params! {":sha": &sha256[..]}, row)
            .optional()?;
        r.map(finish).transpose()
    }

    /// The device file being stored as segment `id`, if that segment is one.
    pub fn storing_device_file(&self, id: SegmentId) -> Result<Option<DeviceFileRow>> {
        let r = self
            .conn
            .prepare_cached(STORING)?
            .query_row(named_params! {":segment": id.0}, row)
            .optional()?;
        r.map(finish).transpose()
    }

    /// Forgets a device file whose storing a crash cut off (its inbox file
    /// is still there): both rows go, in one transaction.
    pub fn drop_storing_device_file(&mut self, id: SegmentId) -> Result<()> {
        self.transaction(|ix| {
            ix.conn
                .prepare_cached(DROP_STORING)?
                .execute(named_params! {":segment": id.0})?;
            ix.remove_segment(id)
        })
    }

    /// The newest stored device files, newest first.
    pub fn recent_device_files(&self, limit: u32) -> Result<Vec<DeviceFileRow>> {
        let mut stmt = self.conn.prepare_cached(RECENT)?;
        let rows = stmt.query_map(named_params! {":limit": limit as i64}, row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(finish(r?)?);
        }
        Ok(out)
    }

    /// Files stored and their bytes, over all time.
    pub fn device_file_totals(&self) -> Result<(u64, u64)> {
        let (n, b): (i64, i64) = self
            .conn
            .prepare_cached(TOTALS)?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((n as u64, b as u64))
    }
}
