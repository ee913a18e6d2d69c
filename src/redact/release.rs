//! Releasing an approved redacted copy to its data subject: a package as
//! an export's (the clip, `README.txt`, `manifest.json` with the
//! redaction record, `manifest.sig`), checked by `custosctl verify` alike.
//!
//! Invariants:
//! - Only an approved copy is released, and only the bytes the record
//!   names: the copy is re-hashed against it before a byte is sent.
//! - The disclosure register row (recipient: the data subject of the
//!   request), the request's event and the job's release are written in
//!   one transaction, before the package is finished: a requester never
//!   holds a complete package the register does not list.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::job::{COPY_FILE, work_dir};
use super::record::Record;
use crate::config::Config;
use crate::export::manifest::{
    self, CameraInfo, ControllerInfo, Exporter, OutputFile, Range, RecordingBasis, Software,
    TimeInfo,
};
use crate::export::{
    Manifest, NodeKey, PackageSink, compact, hashed_file, instant, key, sent_files, sign_manifest,
    small_file,
};
use crate::index::{NewDisclosure, RedactionRow, RedactionState, SharedIndex};
use crate::{Error, Result};

/// The legal basis of handing a data subject a copy of their data.
pub const LEGAL_BASIS: &str = "GDPR Art. 15(3); 004 §27";

/// The recipient as the disclosure register names it.
pub fn recipient(request: &str) -> String {
    format!("the data subject of request {request}")
}

/// Writes the package of job `job` into `sink`, signed with `key`, and
/// registers it. `by` releases it.
pub fn release(
    index: &SharedIndex,
    config: &Config,
    key: &NodeKey,
    job: &RedactionRow,
    by: &Exporter,
    sink: &mut dyn PackageSink,
    now_us: i64,
) -> Result<Manifest> {
    if !matches!(
        job.state,
        RedactionState::Approved | RedactionState::Released
    ) {
        return Err(Error::conflict(format!(
            "redaction {} is {}; a copy is released only once a second DPO has approved it \
             (custosctl redaction approve {})",
            job.id,
            job.state.as_str(),
            job.id
        )));
    }
    let record: Record = serde_json::from_str(job.record.as_deref().unwrap_or("null"))
        .map_err(|e| Error::internal(format!("redaction {}'s record is damaged: {e}", job.id)))?;
    let copy = work_dir(&config.daemon.state_dir, job.id).join(COPY_FILE);
    let (bytes, sha) = crate::storage::hash_file(&copy)?;
    if hex::encode(sha) != record.output.sha256 || bytes != record.output.bytes {
        return Err(Error::internal(format!(
            "{} is not the copy that was reviewed (its SHA-256 differs from the record's); \
             it is not released: render it again (custosctl redaction choose)",
            copy.display()
        )));
    }
    let tz = &config.timezone;
    let camera = config.footage_source(&job.camera);
    let zone = camera.as_ref().and_then(|c| config.zone(&c.zone));
    let name = format!(
        "{}_{}_{}_redacted.mp4",
        job.camera,
        compact(record.from.unix_us),
        compact(record.to.unix_us)
    );
    sink.begin(&[(name.clone(), bytes)])?;
    let (written, sha) = hashed_file(sink, &name, bytes, &mut |w| {
        let mut f = std::fs::File::open(&copy).map_err(|e| Error::io("cannot open", &copy, e))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| Error::io("cannot read", &copy, e))?;
            if n == 0 {
                return Ok(());
            }
            w.write_all(&buf[..n])
                .map_err(|e| Error::unavailable(format!("sending the copy: {e}")))?;
        }
    })?;
    let mut files = vec![OutputFile {
        name: name.clone(),
        bytes: written,
        sha256: hex::encode(sha),
        from: Some(record.from.clone()),
        to: Some(record.to.clone()),
        video_frames: Some(record.output.frames),
        audio_frames: None,
    }];
    let fingerprint = key::fingerprint(&key.public());
    let readme = readme(&job.request_id, &name, &fingerprint);
    let (rb, rs) = small_file(sink, manifest::README_FILE, readme.as_bytes())?;
    files.push(OutputFile {
        name: manifest::README_FILE.into(),
        bytes: rb,
        sha256: hex::encode(rs),
        from: None,
        to: None,
        video_frames: None,
        audio_frames: None,
    });
    let controller = zone.map(|z| config.zone_controller(z).clone());
    let mut recorded_under: Vec<RecordingBasis> = Vec::new();
    for s in &record.sources {
        if recorded_under.iter().all(|r| r.zone != s.zone) {
            let z = config.zone(&s.zone);
            recorded_under.push(RecordingBasis {
                zone: s.zone.clone(),
                zone_name: z.map(|z| z.name.clone()).unwrap_or_default(),
                legal_basis: z.map_or_else(
                    || "(zone no longer configured)".into(),
                    |z| z.legal_basis.clone(),
                ),
                purposes: z.map(|z| z.purposes.clone()).unwrap_or_default(),
            });
        }
    }
    let mut time_sources: Vec<String> = record
        .sources
        .iter()
        .map(|s| s.time_source.clone())
        .collect();
    time_sources.sort();
    time_sources.dedup();
    let mut redaction =
        serde_json::to_value(&record).map_err(|e| Error::internal(format!("the record: {e}")))?;
    redaction["approved_by"] = serde_json::json!({
        "user": job.approved_by,
        "uid": job.approved_uid,
        "at": job.approved_us.map(|us| instant(us, tz)),
    });
    let m = Manifest {
        format: "custos-redacted-copy/1".into(),
        software: Software {
            name: "custos".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        controller: controller.map_or_else(
            || ControllerInfo {
                name: String::new(),
                registration_code: String::new(),
                address: String::new(),
                email: String::new(),
            },
            |c| ControllerInfo {
                name: c.name,
                registration_code: c.registration_code,
                address: c.address,
                email: c.email,
            },
        ),
        case: None,
        recipient: recipient(&job.request_id),
        reason: format!(
            "a copy of footage of the data subject (request {}), everyone else made \
             unidentifiable (004 §27)",
            job.request_id
        ),
        legal_basis: LEGAL_BASIS.into(),
        recorded_under,
        exporter: by.clone(),
        exported_at: instant(now_us, tz),
        camera: CameraInfo {
            id: job.camera.clone(),
            name: camera.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
            zone: zone.map(|z| z.id.clone()).unwrap_or_default(),
            zone_name: zone.map(|z| z.name.clone()).unwrap_or_default(),
            area: camera.map(|c| c.area).unwrap_or_default(),
        },
        requested: Range {
            from: instant(job.from_us, tz),
            to: instant(job.to_us, tz),
            duration_us: job.to_us - job.from_us,
        },
        actual: Range {
            from: record.from.clone(),
            to: record.to.clone(),
            duration_us: record.to.unix_us - record.from.unix_us,
        },
        gaps: Vec::new(),
        time: TimeInfo {
            timezone: config.timezone_name.clone(),
            sources: time_sources,
            max_clock_offset_us: record
                .sources
                .iter()
                .filter_map(|s| s.clock_offset_us)
                .max_by_key(|o| o.abs()),
            corrections: Vec::new(),
        },
        sources: record.sources.clone(),
        files,
        public_key: hex::encode(key.public().as_bytes()),
        key_fingerprint: fingerprint,
        redaction: Some(redaction),
    };
    let json = sign_manifest(sink, key, &m)?;
    let manifest_sha: [u8; 32] = Sha256::digest(&json).into();
    index.lock().transaction(|ix| {
        ix.open_request(&job.request_id)?;
        if !ix.redaction_released(job.id, now_us)? {
            return Err(Error::conflict(format!(
                "redaction {} is no longer approved",
                job.id
            )));
        }
        let disclosure = ix.record_disclosure(&NewDisclosure {
            at_us: now_us,
            case_id: None,
            camera: &job.camera,
            from_us: record.from.unix_us,
            to_us: record.to.unix_us,
            recipient: &m.recipient,
            legal_basis: LEGAL_BASIS,
            reason: &m.reason,
            by_user: &by.user,
            by_uid: by.uid,
            files: &sent_files(&m),
            manifest_sha256: &manifest_sha,
        })?;
        ix.add_request_event(
            &job.request_id,
            now_us,
            &by.user,
            "redaction_released",
            &serde_json::json!({"redaction": job.id, "disclosure": disclosure,
                                "sha256": record.output.sha256}),
        )
        .map(|_| ())
    })?;
    sink.finish()?;
    Ok(m)
}

fn readme(request: &str, clip: &str, fingerprint: &str) -> String {
    format!(
        "COPY OF VIDEO SURVEILLANCE FOOTAGE OF YOU\n\
         ========================================\n\n\
         You asked for a copy of footage of yourself (request {request}). This\n\
         directory holds it. Everyone else in it has been made unidentifiable:\n\
         their faces (and whatever else the reviewer marked) are covered by solid\n\
         black boxes burned into the picture, which cannot be undone. The sound\n\
         was removed unless {MANIFEST} says it was kept.\n\n\
         Files\n-----\n\
         \x20 {clip}  the video (standard MP4, H.264): it opens in VLC, mpv and\n\
         \x20                web browsers.\n\
         \x20 {MANIFEST}  what the copy is: the recording it was made from, when,\n\
         \x20                how it was redacted (\"redaction\"), who prepared and who\n\
         \x20                approved it, and the SHA-256 of every file.\n\
         \x20 {SIGNATURE}   the recording server's Ed25519 signature of {MANIFEST}.\n\n\
         How to verify\n-------------\n\
         With Custos: custosctl verify <this directory>. By hand: compare each\n\
         file's SHA-256 (sha256sum FILE) with {MANIFEST}, and check the signature\n\
         in {SIGNATURE} over the exact bytes of {MANIFEST} with the public key\n\
         given there. The key's fingerprint is {fingerprint}.\n",
        MANIFEST = manifest::MANIFEST_FILE,
        SIGNATURE = manifest::SIGNATURE_FILE,
    )
}
