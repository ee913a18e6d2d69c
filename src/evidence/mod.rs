//! Evidence: cases, the holds they place on footage, the case-linked copies
//! of held segments, and closing a case (001 §18, §31; 004 §9).
//!
//! Invariants:
//! - A case id is safe as one directory name (see [`validate_case_id`]): it
//!   names `<evidence root>/<case>/` and can never reach outside it.
//! - Every case has a review date, at most `evidence.review_days_max` days
//!   ahead; moving it needs a reason and leaves a `case_review` row.
//! - A hold makes the case's own copy of each overlapping segment: reflinked
//!   where the filesystem can, else copied byte by byte, hashed while written
//!   and compared with the index's hash, fsynced, made read-only (0444),
//!   renamed into place and the directory fsynced, and only then recorded.
//!   A hard link is never used: overwrite-mode destruction of the original
//!   would zero the evidence through the shared inode. A crash mid-copy
//!   leaves a `.tmp` file, or a copy in place without its row; the next hold
//!   of the range copies it again (a copy is skipped only if the case has a
//!   live row for it), and closing destroys either.
//! - A hold and each copy row are written in transactions that check the
//!   case is open; closing reads, marks and releases every copy and hold of
//!   the case inside its own transaction. So once a close commits, no hold
//!   of the case is active and no copy row live, and a hold racing the
//!   close fails with a conflict after destroying what it wrote.
//! - The hold row protects the originals from retention while it is active
//!   (checked in retention's candidate queries); the copy is what the case
//!   keeps, so releasing a hold never loses evidence of an open case.
//! - Closing destroys the copies first (idempotently: a file already gone
//!   counts), then in one transaction marks them destroyed, releases the
//!   holds, writes `case_closed` rows to the deletion journal and closes the
//!   case. A crash in between leaves an open case whose close can be re-run.
//!   After the commit it destroys what is left in the directory (partial
//!   copies, and copies a racing hold put there) and removes it; a crash
//!   right after the commit can leave those files (nothing sweeps them yet).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, Destruction};
use crate::index::SharedIndex;
use crate::index::{CaseRow, CopyRow, DeletionReason, NewCase, NewCopy, NewDeletion, SegmentId};
use crate::retention::{Leases, days_after};
use crate::{Error, ErrorKind, Result, failpoint};

/// Longest case id, in bytes.
pub const MAX_CASE_ID_LEN: usize = 64;
/// Mode of a finished evidence copy: read-only, the daemon's alone.
pub const COPY_MODE: u32 = 0o400;

/// Checks that `id` is safe as a single directory name: 1 to
/// [`MAX_CASE_ID_LEN`] ASCII letters, digits, `-`, `_` and `.`, starting
/// with a letter or digit (so never `.`, `..` or hidden), with no slash,
/// control character or space.
pub fn validate_case_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "case id {id:?} {why}; use letters, digits, '-', '_' and '.', starting with a \
             letter or digit, at most {MAX_CASE_ID_LEN} characters (e.g. 2026-0042)"
        )))
    };
    if id.is_empty() {
        return bad("is empty");
    }
    if id.len() > MAX_CASE_ID_LEN {
        return bad("is too long");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return bad(&format!("contains {c:?}"));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit");
    }
    Ok(())
}

/// A case to open.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CaseRequest {
    pub id: String,
    pub title: String,
    /// The requesting authority (police, court, insurer, data subject).
    pub authority: String,
    /// Its reference (file number).
    pub authority_ref: String,
    pub legal_basis: String,
    /// Days until review; default `evidence.review_days_default`.
    pub review_days: Option<u32>,
}

/// A case with its derived state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseStatus {
    #[serde(flatten)]
    pub case: CaseRow,
    /// Open and past its review date: a violation in the retention report.
    pub review_overdue: bool,
    pub holds: Vec<crate::index::HoldRow>,
    pub copies: usize,
    pub copy_bytes: u64,
}

/// Opens a case.
pub fn create_case(
    index: &SharedIndex,
    config: &Config,
    req: &CaseRequest,
    by_user: &str,
    now_us: i64,
) -> Result<CaseRow> {
    validate_case_id(&req.id)?;
    for (what, v) in [
        ("title", &req.title),
        ("authority", &req.authority),
        ("authority_ref", &req.authority_ref),
        ("legal_basis", &req.legal_basis),
    ] {
        if v.trim().is_empty() {
            return Err(Error::invalid(format!("a case needs a {what}")));
        }
    }
    let days = req
        .review_days
        .unwrap_or(config.evidence.review_days_default);
    check_review_days(config, days)?;
    let index = index.lock();
    index.insert_case(&NewCase {
        id: &req.id,
        title: &req.title,
        authority: &req.authority,
        authority_ref: &req.authority_ref,
        legal_basis: &req.legal_basis,
        created_by: by_user,
        created_us: now_us,
        review_us: days_after(now_us, days)?,
    })?;
    index
        .case(&req.id)?
        .ok_or_else(|| Error::internal("case vanished after insert"))
}

fn check_review_days(config: &Config, days: u32) -> Result<()> {
    let max = config.evidence.review_days_max;
    if days == 0 || days > max {
        return Err(Error::invalid(format!(
            "review in {days} days: must be 1 to {max} days (evidence.review_days_max)"
        )));
    }
    Ok(())
}

/// Moves an open case's review date to `days` from now; needs a reason.
pub fn extend_review(
    index: &SharedIndex,
    config: &Config,
    case_id: &str,
    days: u32,
    reason: &str,
    by_user: &str,
    now_us: i64,
) -> Result<CaseRow> {
    if reason.trim().is_empty() {
        return Err(Error::invalid("extending a review date needs a reason"));
    }
    check_review_days(config, days)?;
    let mut index = index.lock();
    index.transaction(|ix| {
        ix.extend_review(case_id, days_after(now_us, days)?, reason, by_user, now_us)
    })?;
    index
        .case(case_id)?
        .ok_or_else(|| Error::not_found(format!("no case {case_id}")))
}

/// A case with its holds and copies.
pub fn case_status(index: &SharedIndex, case_id: &str, now_us: i64) -> Result<CaseStatus> {
    let index = index.lock();
    let case = index
        .case(case_id)?
        .ok_or_else(|| Error::not_found(format!("no case {case_id}")))?;
    let copies = index.case_copies(case_id)?;
    Ok(CaseStatus {
        review_overdue: case.status == "open" && case.review_us < now_us,
        holds: index.case_holds(case_id)?,
        copies: copies.len(),
        copy_bytes: copies.iter().map(|c| c.bytes).sum(),
        case,
    })
}

/// What a new hold did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HoldReport {
    pub hold_id: i64,
    pub copies: Vec<CopyRow>,
    /// Stretches of the range with no footage (never recorded, or already
    /// deleted), as `[from_us, to_us)`.
    pub missing: Vec<(i64, i64)>,
}

/// Where a case's copies live.
pub fn case_dir(config: &Config, case_id: &str) -> Result<PathBuf> {
    validate_case_id(case_id)?;
    Ok(config.evidence.path.join(case_id))
}

/// A hold to place: `[from_us, to_us)` of `camera` for case `case_id`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct HoldRequest {
    pub case_id: String,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
}

/// Holds the requested range for an open case and makes the case-linked
/// copies of the segments overlapping it.
pub fn add_hold(
    index: &SharedIndex,
    config: &Config,
    leases: &Arc<Leases>,
    req: &HoldRequest,
    now_us: i64,
) -> Result<HoldReport> {
    let (case_id, camera) = (req.case_id.as_str(), req.camera.as_str());
    let (from_us, to_us) = (req.from_us, req.to_us);
    let dir = case_dir(config, case_id)?;
    if config.footage_zone(camera).is_none() {
        return Err(Error::not_found(format!(
            "no camera {camera:?} in the configuration"
        )));
    }
    if from_us >= to_us {
        return Err(Error::invalid("the hold's range ends before it starts"));
    }
    let ids: Vec<SegmentId> = {
        let ix = index.lock();
        ix.open_case(case_id)?;
        ix.segments(camera, from_us, to_us)?
            .iter()
            .map(|s| SegmentId(s.id))
            .collect()
    };
    // Lease, then re-read: a segment doomed meanwhile is gone for us. The
    // case is checked again in the hold's own transaction: a close that
    // committed meanwhile refuses the hold, one that commits later releases it.
    let _lease = leases.acquire(&ids);
    let (hold_id, rows) = index.lock().transaction(|ix| {
        ix.open_case(case_id)?;
        let rows = ix.complete_segments(&ids)?;
        if rows.is_empty() {
            return Err(Error::not_found(format!(
                "no footage of camera {camera} in the requested range: it was never recorded \
                 or has already been deleted under the retention period; nothing is held"
            )));
        }
        let hold_id = ix.add_hold(case_id, ix.camera_id(camera)?, from_us, to_us, now_us)?;
        Ok((hold_id, rows))
    })?;

    let mut missing = Vec::new();
    let mut covered = from_us;
    for r in &rows {
        if r.start_us > covered {
            missing.push((covered, r.start_us.min(to_us)));
        }
        covered = covered.max(r.end_us.unwrap_or(r.start_us));
    }
    if covered < to_us {
        missing.push((covered, to_us));
    }

    match copy_segments(index, config, &dir, case_id, hold_id, &rows, now_us) {
        Ok(copies) => Ok(HoldReport {
            hold_id,
            copies,
            missing,
        }),
        Err(e) => {
            // A close that committed while we copied released this hold
            // and swept the directory before our files were all there:
            // what we left must go the way of the case's other copies.
            // Only a case known to be closed loses files here.
            match index.lock().open_case(case_id) {
                Err(closed) if closed.kind == ErrorKind::Conflict => {}
                _ => return Err(e),
            }
            destroy_case_files(&dir, evidence_destruction(config), true)?;
            remove_case_dir(config, &dir)?;
            Err(Error::conflict(format!(
                "case {case_id} was closed while this hold was being made; the hold is \
                 released and its copies are destroyed with the case"
            )))
        }
    }
}

/// Makes the case's copies of `rows` for `hold_id`, each durable in its
/// directory before its row commits (in a transaction that checks the case
/// is still open). A segment the case already has a live copy of is
/// skipped; a file left by a crash before its row is replaced.
fn copy_segments(
    index: &SharedIndex,
    config: &Config,
    dir: &Path,
    case_id: &str,
    hold_id: i64,
    rows: &[crate::index::SegmentRow],
    now_us: i64,
) -> Result<Vec<CopyRow>> {
    create_dir(&config.evidence.path, dir)?;
    let have: Vec<String> = index
        .lock()
        .case_copies(case_id)?
        .into_iter()
        .map(|c| c.copy_path)
        .collect();
    let mut copies = Vec::new();
    for r in rows {
        let root = config.storage_root(&r.root).ok_or_else(|| {
            Error::internal(format!(
                "segment {} is on unknown storage {}",
                r.path, r.root
            ))
        })?;
        let src = crate::storage::absolute(&root.path, &r.path);
        let camera = &r.camera;
        let name = format!("{camera}_{}_{}.mp4", r.start_us, r.id);
        let rel = format!("{case_id}/{name}");
        if have.contains(&rel) {
            continue; // already copied by an earlier, overlapping hold
        }
        let dest = dir.join(&name);
        let expected = r.sha256.ok_or_else(|| {
            Error::internal(format!("segment {} has no hash in the index", r.path))
        })?;
        let (bytes, sha) = copy_verified(&src, &dest, &expected)?;
        // The name must survive a crash before the row says it exists.
        crate::storage::fsync_dir(dir);
        failpoint::abort_at("evidence-copy-before-row");
        let mut ix = index.lock();
        let id = ix.transaction(|ix| {
            ix.open_case(case_id)?;
            ix.insert_copy(&NewCopy {
                case_id,
                hold_id,
                source_path: &r.path,
                source_sha256: &expected,
                start_us: r.start_us,
                end_us: r.end_us.unwrap_or(r.start_us),
                copy_path: &rel,
                sha256: &sha,
                bytes,
                created_us: now_us,
            })
        })?;
        copies.extend(ix.case_copies(case_id)?.into_iter().filter(|c| c.id == id));
    }
    Ok(copies)
}

fn create_dir(root: &Path, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    crate::storage::create_private_dir_all(root)?;
    match fs::DirBuilder::new()
        .mode(crate::storage::DIR_MODE)
        .create(dir)
    {
        Ok(()) => {}
        // Made by a hold of the same case running beside this one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io("cannot create", dir, e)),
    }
    crate::storage::fsync_dir(root);
    Ok(())
}

/// Copies `src` to `dest` (reflink if possible), checks the copy's SHA-256
/// against `expected`, and leaves it read-only and durable.
fn copy_verified(src: &Path, dest: &Path, expected: &[u8; 32]) -> Result<(u64, [u8; 32])> {
    let tmp = dest.with_extension("mp4.tmp");
    let _ = fs::remove_file(&tmp);
    let input = File::open(src).map_err(|e| Error::io("cannot open segment", src, e))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("cannot create", &tmp, e))?;
    // FICLONE: the copy shares blocks copy-on-write, so destroying the
    // original later cannot touch it. Fall back to copying bytes.
    let cloned = {
        use std::os::fd::AsRawFd;
        // SAFETY: both descriptors are open for the duration of the call.
        unsafe { libc::ioctl(out.as_raw_fd(), libc::FICLONE, input.as_raw_fd()) == 0 }
    };
    if !cloned {
        let mut input = &input;
        std::io::copy(&mut input, &mut out).map_err(|e| Error::io("cannot copy to", &tmp, e))?;
    }
    crate::storage::fsync_file(&out, &tmp);
    drop(out);
    // Verify what is on disk, not what we meant to write.
    let (bytes, sha) = crate::storage::hash_file(&tmp)?;
    if &sha != expected {
        let _ = fs::remove_file(&tmp);
        return Err(Error::internal(format!(
            "{} does not match the hash recorded when it was written; it was altered or \
             damaged and cannot serve as evidence",
            src.display()
        )));
    }
    // Read-only, and the daemon's alone like every recording.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(COPY_MODE))
        .map_err(|e| Error::io("cannot chmod", &tmp, e))?;
    fs::rename(&tmp, dest).map_err(|e| Error::io("cannot rename to", dest, e))?;
    Ok((bytes, sha))
}

/// Verifies a case's copies against their recorded hashes; returns the
/// relative paths of those missing or changed.
pub fn verify_copies(index: &SharedIndex, config: &Config, case_id: &str) -> Result<Vec<String>> {
    let copies = index.lock().case_copies(case_id)?;
    let mut bad = Vec::new();
    for c in copies {
        let path = config.evidence.path.join(&c.copy_path);
        match crate::storage::hash_file(&path) {
            Ok((bytes, sha)) if bytes == c.bytes && sha == c.sha256 => {}
            _ => bad.push(c.copy_path),
        }
    }
    Ok(bad)
}

/// What closing a case did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CloseReport {
    pub holds_released: usize,
    pub copies_destroyed: usize,
    pub bytes_destroyed: u64,
    pub destruction: Destruction,
}

/// The destruction mode for evidence copies: the most thorough one any
/// storage root uses (the evidence directory has no setting of its own).
pub fn evidence_destruction(config: &Config) -> Destruction {
    if config
        .storage
        .iter()
        .any(|s| s.destruction == Destruction::Overwrite)
    {
        Destruction::Overwrite
    } else {
        Destruction::Unlink
    }
}

/// Closes an open case: destroys its copies, releases its holds, journals
/// the destruction as `case_closed` by `actor`.
pub fn close_case(
    index: &SharedIndex,
    config: &Config,
    case_id: &str,
    reason: &str,
    actor: &str,
    now_us: i64,
) -> Result<CloseReport> {
    if reason.trim().is_empty() {
        return Err(Error::invalid("closing a case needs a reason"));
    }
    let dir = case_dir(config, case_id)?;
    index.lock().open_case(case_id)?;
    let mode = evidence_destruction(config);
    // Destroy the copies first, so a crash before the transaction leaves an
    // open case whose close can be run again. Partial copies wait for the
    // commit: one may be a hold's copy in progress, which would otherwise
    // fail for a case that is still open.
    destroy_case_files(&dir, mode, false)?;
    // Everything the case holds is read and settled in the closing
    // transaction itself: a hold or copy made since the destruction above
    // is released or marked here, and one attempted after the commit finds
    // the case closed and refuses.
    let report = index.lock().transaction(|ix| {
        ix.open_case(case_id)?;
        let copies = ix.case_copies(case_id)?;
        let holds = ix.case_holds(case_id)?;
        for c in &copies {
            ix.mark_copy_destroyed(c.id, now_us)?;
        }
        let mut released = 0;
        for h in holds.iter().filter(|h| h.released_us.is_none()) {
            ix.release_hold(h.id, now_us)?;
            released += 1;
        }
        // One journal row per camera, like a retention pass.
        let mut cameras: Vec<&str> = holds.iter().map(|h| h.camera.as_str()).collect();
        cameras.sort();
        cameras.dedup();
        for cam in cameras {
            let mine: Vec<&CopyRow> = copies
                .iter()
                .filter(|c| holds.iter().any(|h| h.id == c.hold_id && h.camera == cam))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let zone = config.footage_zone(cam).unwrap_or("-");
            ix.record_deletion(&NewDeletion {
                at_us: now_us,
                pass_us: now_us,
                camera: ix.camera_id(cam)?,
                zone,
                root: "evidence",
                from_us: mine.iter().map(|c| c.start_us).min().unwrap_or(now_us),
                to_us: mine.iter().map(|c| c.end_us).max().unwrap_or(now_us),
                segments: mine.len() as u64,
                bytes: mine.iter().map(|c| c.bytes).sum(),
                reason: DeletionReason::CaseClosed,
                actor,
                request: None,
                note: None,
            })?;
        }
        ix.close_case(case_id, reason, now_us)?;
        Ok(CloseReport {
            holds_released: released,
            copies_destroyed: copies.len(),
            bytes_destroyed: copies.iter().map(|c| c.bytes).sum(),
            destruction: mode,
        })
    })?;
    // Partial copies, and copies a racing hold put in place before the commit.
    destroy_case_files(&dir, mode, true)?;
    remove_case_dir(config, &dir)?;
    Ok(report)
}

/// Destroys the copies in a case's directory by `mode`, with the `.tmp`
/// files of partial ones if `partial`, and makes the removals durable.
fn destroy_case_files(dir: &Path, mode: Destruction, partial: bool) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot read", dir, e)),
    };
    for e in entries.flatten() {
        let path = e.path();
        if !partial && path.extension().is_some_and(|x| x == "tmp") {
            continue;
        }
        // Overwriting needs write permission on the read-only copy.
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
        crate::retention::destroy::destroy_file(&path, mode)?;
    }
    crate::storage::fsync_dir(dir);
    Ok(())
}

/// Removes a closed case's (empty) directory. A hold racing the close may
/// still be writing in it: that hold finds the case closed, destroys what it
/// wrote and removes the directory itself.
fn remove_case_dir(config: &Config, dir: &Path) -> Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => crate::storage::fsync_dir(&config.evidence.path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
            tracing::info!(dir = %dir.display(), "a hold racing the case's close is still \
                writing; it removes its own files");
        }
        Err(e) => return Err(Error::io("cannot remove", dir, e)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_case_ids_are_refused() {
        for ok in ["2026-0042", "A", "case_7.b", &"x".repeat(MAX_CASE_ID_LEN)] {
            validate_case_id(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc",
            "a/../../b",
            "a/b",
            "/abs",
            "a\\b",
            ".hidden",
            "-rf",
            "tab\there",
            "nl\n",
            "nul\0",
            "esc\x1b[2J",
            "del\x7f",
            "space here",
            "ąčę",
            &"x".repeat(MAX_CASE_ID_LEN + 1),
        ] {
            let e = validate_case_id(bad).expect_err(bad);
            assert_eq!(e.kind, crate::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
