//! Export packages for a recipient (police, a data subject, an insurer):
//! one standard MP4 per continuous stretch of recording, `manifest.json`
//! describing it, `manifest.sig` (the node key's Ed25519 signature of the
//! manifest) and `README.txt`; and [`verify`], which checks a package
//! offline.
//!
//! Invariants:
//! - Clips are stream copies of the recorded samples (nothing is decoded or
//!   re-encoded): they start at the key frame at or before the requested
//!   start and end with the first frame that reaches the requested end.
//! - Consecutive segments of one connection are joined without losing or
//!   duplicating a frame. Where recording has a gap (segments not contiguous
//!   within [`GAP_US`], or a change of codec) the export is split into one
//!   clip per stretch and the gap is listed in the manifest: never bridged.
//! - Source segments are leased (so the reaper cannot delete them mid-read)
//!   and re-hashed against the index before a byte is exported; a mismatch
//!   fails the export rather than shipping footage the index cannot vouch for.
//! - The manifest is written after every file it lists, and signed last;
//!   the disclosure register row is written once the package is complete.
//!   Durability: each file is fsynced, then the directory; a crash leaves a
//!   package without `manifest.sig`, which [`verify`] rejects.

mod clips;
pub mod key;
pub mod manifest;
mod readme;
pub mod stream;
mod verify;

use clips::open_sources;
pub(crate) use clips::{Clip, Source, open_unverified, plan_clips};
pub use key::NodeKey;
pub use manifest::Manifest;
pub use verify::{Problem, VerifyReport, verify, verify_received};

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::index::SharedIndex;
use crate::index::{NewDisclosure, SegmentId};
use crate::mp4::progressive::{self, SourceFiles};
use crate::retention::Leases;
use crate::{Error, Result};
use manifest::{
    CameraInfo, ControllerInfo, Exporter, Gap, Instant, OutputFile, Range, RecordingBasis,
    Software, SourceSegment, TimeInfo,
};

/// Segments further apart than this are a gap in recording (a segment
/// boundary of one connection is exact to the tick).
pub const GAP_US: i64 = 500_000;

/// Longest range one export may cover.
pub const MAX_RANGE_US: i64 = 24 * 3600 * 1_000_000;

/// What to export, for whom and why.
#[derive(Debug, Clone)]
pub struct Request {
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub case: Option<String>,
    pub recipient: String,
    pub reason: String,
    /// Default: the case's legal basis; without a case, the basis the
    /// footage was recorded on.
    pub legal_basis: Option<String>,
    pub exporter: Exporter,
}

/// Writes an export package for `req` into `out` (created if missing; must
/// be empty) and returns its manifest.
pub fn export(
    index: &SharedIndex,
    config: &Config,
    leases: &Arc<Leases>,
    key: &NodeKey,
    req: &Request,
    out: &Path,
    now_us: i64,
) -> Result<Manifest> {
    let prepared = prepare(index, Arc::new(config.clone()), leases, req)?;
    prepare_dir(out)?;
    prepared.write(index, key, &mut DirSink::new(out), now_us)
}

/// Where a package's files go: a directory ([`DirSink`]) or a stream to
/// `custosctl` ([`stream::StreamSink`]). Files come one after the other,
/// clips first, then `README.txt`, `manifest.json` and `manifest.sig`.
pub trait PackageSink {
    /// Announces the clips (name, bytes) before any is written.
    fn begin(&mut self, clips: &[(String, u64)]) -> Result<()>;
    /// Writes the file `name` of exactly `len` bytes, which `body` produces;
    /// returns the bytes written and their SHA-256 (each file is hashed
    /// once, by the sink, for the manifest and for the wire alike).
    fn file(
        &mut self,
        name: &str,
        len: u64,
        body: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<(u64, [u8; 32])>;
    /// The package is complete and registered.
    fn finish(&mut self) -> Result<()>;
}

/// Writes a package into a directory, each file fsynced, then the directory.
pub struct DirSink<'a> {
    dir: &'a Path,
}

impl<'a> DirSink<'a> {
    /// `dir` must exist and be empty (see [`prepare_dir`]).
    pub fn new(dir: &'a Path) -> Self {
        DirSink { dir }
    }
}

impl PackageSink for DirSink<'_> {
    fn begin(&mut self, _clips: &[(String, u64)]) -> Result<()> {
        Ok(())
    }

    fn file(
        &mut self,
        name: &str,
        _len: u64,
        body: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<(u64, [u8; 32])> {
        let path = self.dir.join(name);
        let mut f = create_file(&path)?;
        let mut hashing = HashingWriter::new(&mut f);
        body(&mut hashing)?;
        let written = hashing.finish();
        crate::storage::fsync_file(&f, &path);
        Ok(written)
    }

    fn finish(&mut self) -> Result<()> {
        crate::storage::fsync_dir(self.dir);
        Ok(())
    }
}

/// An export checked and planned, its sources leased: everything that can
/// be refused has been, and the size of every clip is known.
pub struct Prepared {
    config: Arc<Config>,
    req: Request,
    sources: Vec<Source>,
    clips: Vec<Clip>,
    layouts: Vec<progressive::Layout<(usize, u64)>>,
    outages: Vec<crate::index::OutageRow>,
    corrections: Vec<crate::index::CorrectionRow>,
    /// The legal basis of the request's case, if it has one.
    case_basis: Option<String>,
    _lease: crate::retention::LeaseGuard,
}

/// Checks `req`, leases and re-hashes its source segments and lays out its
/// clips. Nothing is written.
pub fn prepare(
    index: &SharedIndex,
    config: Arc<Config>,
    leases: &Arc<Leases>,
    req: &Request,
) -> Result<Prepared> {
    let camera = config.footage_source(&req.camera).ok_or_else(|| {
        Error::not_found(format!("no camera {:?} in the configuration", req.camera))
    })?;
    if req.to_us <= req.from_us {
        return Err(Error::invalid("the export range ends before it starts"));
    }
    if req.to_us - req.from_us > MAX_RANGE_US {
        return Err(Error::invalid(
            "an export may cover at most 24 hours; split the request",
        ));
    }
    for (what, v) in [("recipient", &req.recipient), ("reason", &req.reason)] {
        if v.trim().is_empty() {
            return Err(Error::invalid(format!("an export needs a {what}")));
        }
    }
    let case_basis = match &req.case {
        Some(case) => match index.lock().case(case)? {
            Some(c) if c.status == "open" => Some(c.legal_basis),
            Some(_) => return Err(Error::conflict(format!("case {case} is closed"))),
            None => return Err(Error::not_found(format!("no case {case}"))),
        },
        None => None,
    };

    // Lease, then read the rows: a segment doomed before the lease is gone.
    let ids: Vec<SegmentId> = index
        .lock()
        .segments(&camera.id, req.from_us, req.to_us)?
        .iter()
        .map(|s| SegmentId(s.id))
        .collect();
    let lease = leases.acquire(&ids);
    let (rows, outages, corrections) = {
        let index = index.lock();
        let rows = index.complete_segments(&ids)?;
        (
            rows,
            index.outages(&camera.id, req.from_us, req.to_us)?,
            index.time_corrections(&camera.id, req.from_us, req.to_us)?,
        )
    };
    if rows.is_empty() {
        return Err(Error::not_found(format!(
            "no footage of camera {} between {} and {}: it was never recorded or has been \
             deleted under the retention period",
            camera.id,
            utc(req.from_us),
            utc(req.to_us)
        )));
    }
    let sources = open_sources(&config, rows)?;
    let clips = plan_clips(&sources, req.from_us, req.to_us)?;
    if clips.is_empty() {
        return Err(Error::not_found(format!(
            "no complete frame of camera {} in the requested range",
            camera.id
        )));
    }
    let layouts = clips
        .iter()
        .map(|c| {
            progressive::Layout::plan(
                &c.specs,
                c.samples.iter().cloned(),
                (c.from_us.max(0) / 1_000_000) as u64,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Prepared {
        req: req.clone(),
        sources,
        clips,
        layouts,
        outages,
        corrections,
        case_basis,
        _lease: lease,
        config,
    })
}

impl Prepared {
    /// The clips' names and sizes, in the order they will be written.
    pub fn clips(&self) -> Vec<(String, u64)> {
        self.clips
            .iter()
            .zip(&self.layouts)
            .map(|(c, l)| (self.clip_name(c), l.bytes()))
            .collect()
    }

    fn clip_name(&self, clip: &Clip) -> String {
        format!(
            "{}_{}_{}.mp4",
            self.req.camera,
            compact(clip.from_us),
            compact(clip.to_us)
        )
    }

    /// Writes the package into `sink`, signs its manifest with `key` and
    /// records the disclosure in `index`; the sink is finished only then.
    pub fn write(
        self,
        index: &SharedIndex,
        key: &NodeKey,
        sink: &mut dyn PackageSink,
        now_us: i64,
    ) -> Result<Manifest> {
        let config = &*self.config;
        let req = &self.req;
        let camera = config
            .footage_source(&req.camera)
            .ok_or_else(|| Error::internal(format!("camera {} is gone", req.camera)))?;
        let zone = config
            .zone(&camera.zone)
            .ok_or_else(|| Error::internal(format!("camera {} has no zone", camera.id)))?;
        let (sources, clips) = (&self.sources, &self.clips);
        let tz = &config.timezone;
        let at = |us: i64| instant(us, tz);
        sink.begin(&self.clips())?;
        let mut files = Vec::new();
        let mut files_read = SourceFiles::new();
        for (clip, layout) in clips.iter().zip(&self.layouts) {
            let name = self.clip_name(clip);
            let (bytes, sha) = hashed_file(sink, &name, layout.bytes(), &mut |w| {
                layout.write(w, |s, buf| {
                    files_read.read_at(&sources[s.source.0].path, s.source.1, buf)
                })?;
                Ok(())
            })?;
            files.push(OutputFile {
                name,
                bytes,
                sha256: hex::encode(sha),
                from: Some(at(clip.from_us)),
                to: Some(at(clip.to_us)),
                video_frames: Some(clip.video_frames),
                audio_frames: (clip.specs.len() > 1).then_some(clip.audio_frames),
            });
        }

        let mut gaps = Vec::new();
        let mut edges = vec![req.from_us];
        for c in clips {
            edges.push(c.from_us);
            edges.push(c.to_us);
        }
        edges.push(req.to_us);
        for w in edges.chunks(2) {
            let (from, to) = (w[0], w[1]);
            if to - from > GAP_US {
                let reason = self
                    .outages
                    .iter()
                    .find(|o| o.from_us < to && o.to_us.is_none_or(|t| t > from))
                    .map(|o| o.reason.clone());
                gaps.push(Gap {
                    from: at(from),
                    to: at(to),
                    duration_us: to - from,
                    reason,
                });
            }
        }

        let controller = config.zone_controller(zone);
        let readme = readme::text(&camera.id, &files, &key::fingerprint(&key.public()));
        let (bytes, sha) = small_file(sink, manifest::README_FILE, readme.as_bytes())?;
        files.push(OutputFile {
            name: manifest::README_FILE.into(),
            bytes,
            sha256: hex::encode(sha),
            from: None,
            to: None,
            video_frames: None,
            audio_frames: None,
        });

        let time_source = |s: &Source| s.row.time_source.as_str().to_string();
        let mut time_sources: Vec<String> = sources.iter().map(time_source).collect();
        time_sources.sort();
        time_sources.dedup();
        let actual_from = clips[0].from_us;
        let actual_to = clips[clips.len() - 1].to_us;
        let mut recorded_under: Vec<RecordingBasis> = Vec::new();
        for s in sources {
            if recorded_under.iter().all(|r| r.zone != s.row.zone) {
                recorded_under.push(match config.zone(&s.row.zone) {
                    Some(z) => RecordingBasis {
                        zone: z.id.clone(),
                        zone_name: z.name.clone(),
                        legal_basis: z.legal_basis.clone(),
                        purposes: z.purposes.clone(),
                    },
                    None => RecordingBasis {
                        zone: s.row.zone.clone(),
                        zone_name: String::new(),
                        legal_basis: "(zone no longer configured)".into(),
                        purposes: Vec::new(),
                    },
                });
            }
        }
        let m = Manifest {
            format: "custos-export/1".into(),
            software: Software {
                name: "custos".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            controller: ControllerInfo {
                name: controller.name.clone(),
                registration_code: controller.registration_code.clone(),
                address: controller.address.clone(),
                email: controller.email.clone(),
            },
            case: req.case.clone(),
            recipient: req.recipient.clone(),
            reason: req.reason.clone(),
            legal_basis: req
                .legal_basis
                .clone()
                .or_else(|| self.case_basis.clone())
                .unwrap_or_else(|| recorded_under[0].legal_basis.clone()),
            recorded_under,
            exporter: req.exporter.clone(),
            exported_at: at(now_us),
            camera: CameraInfo {
                id: camera.id.clone(),
                name: camera.name.clone(),
                zone: zone.id.clone(),
                zone_name: zone.name.clone(),
                area: camera.area.clone(),
            },
            requested: Range {
                from: at(req.from_us),
                to: at(req.to_us),
                duration_us: req.to_us - req.from_us,
            },
            actual: Range {
                from: at(actual_from),
                to: at(actual_to),
                duration_us: actual_to - actual_from,
            },
            gaps,
            time: TimeInfo {
                timezone: config.timezone_name.clone(),
                sources: time_sources,
                max_clock_offset_us: sources
                    .iter()
                    .filter_map(|s| s.row.clock_offset_us)
                    .max_by_key(|o| o.abs()),
                corrections: self
                    .corrections
                    .iter()
                    .map(|c| manifest::TimeCorrection {
                        from: at(c.from_us),
                        to: at(c.to_us),
                        offset_us: c.offset_us,
                        note: c.note.clone(),
                        request: c.request_id.clone(),
                        noted_at: at(c.at_us),
                    })
                    .collect(),
            },
            sources: sources
                .iter()
                .map(|s| SourceSegment {
                    path: s.row.path.clone(),
                    zone: s.row.zone.clone(),
                    start: at(s.row.start_us),
                    end: at(s.row.end_us.unwrap_or(s.row.start_us)),
                    bytes: s.row.bytes.unwrap_or(0),
                    sha256: s.row.sha256.map(hex::encode).unwrap_or_default(),
                    time_source: time_source(s),
                    clock_offset_us: s.row.clock_offset_us,
                })
                .collect(),
            files,
            public_key: hex::encode(key.public().as_bytes()),
            key_fingerprint: key::fingerprint(&key.public()),
            redaction: None,
        };
        let json = sign_manifest(sink, key, &m)?;

        // The disclosure register (004 §25.2): who received what, on what
        // basis. Written before the sink is finished: a recipient never holds
        // a complete package the register does not list.
        let manifest_sha: [u8; 32] = Sha256::digest(&json).into();
        index.lock().record_disclosure(&NewDisclosure {
            at_us: now_us,
            case_id: req.case.as_deref(),
            camera: &camera.id,
            from_us: actual_from,
            to_us: actual_to,
            recipient: &req.recipient,
            legal_basis: &m.legal_basis,
            reason: &req.reason,
            by_user: &req.exporter.user,
            by_uid: req.exporter.uid,
            files: &sent_files(&m),
            manifest_sha256: &manifest_sha,
        })?;
        sink.finish()?;
        Ok(m)
    }
}

/// Writes `m` as `manifest.json`, then its signature by `key` as
/// `manifest.sig`, into `sink`; returns the manifest's exact bytes.
pub(crate) fn sign_manifest(
    sink: &mut dyn PackageSink,
    key: &NodeKey,
    m: &Manifest,
) -> Result<Vec<u8>> {
    let mut json = serde_json::to_vec_pretty(m)
        .map_err(|e| Error::internal(format!("serialising the manifest: {e}")))?;
    json.push(b'\n');
    small_file(sink, manifest::MANIFEST_FILE, &json)?;
    let sig = key.sign(&json);
    let sig_text = manifest::render_signature(&json, &sig.to_bytes());
    small_file(sink, manifest::SIGNATURE_FILE, sig_text.as_bytes())?;
    Ok(json)
}

/// The files of a package as the disclosure register keeps them: a JSON
/// array of name, SHA-256 and bytes.
pub(crate) fn sent_files(m: &Manifest) -> String {
    let sent: Vec<_> = m
        .files
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "sha256": f.sha256, "bytes": f.bytes}))
        .collect();
    serde_json::Value::from(sent).to_string()
}

/// Writes one file through `sink` and checks it came out as laid out.
pub(crate) fn hashed_file(
    sink: &mut dyn PackageSink,
    name: &str,
    len: u64,
    body: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<(u64, [u8; 32])> {
    let result = sink.file(name, len, body)?;
    if result.0 != len {
        return Err(Error::internal(format!(
            "{name}: wrote {} bytes where {len} were laid out",
            result.0
        )));
    }
    Ok(result)
}

pub(crate) fn small_file(
    sink: &mut dyn PackageSink,
    name: &str,
    bytes: &[u8],
) -> Result<(u64, [u8; 32])> {
    hashed_file(sink, name, bytes.len() as u64, &mut |w| {
        w.write_all(bytes)
            .map_err(|e| Error::internal(format!("writing {name}: {e}")))
    })
}

/// Creates `out` if missing; refuses one that holds anything, so a package
/// never mixes with other files. The directory is made owner-only (0700)
/// and every file in it 0600: a package is footage, for its recipient only.
pub fn prepare_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(|e| Error::io("cannot list", out, e))?;
        if entries.next().is_some() {
            return Err(Error::conflict(format!(
                "{} is not empty; export into a new directory",
                out.display()
            )));
        }
    }
    crate::storage::make_private_dir(out)?;
    Ok(())
}

fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::storage::FILE_MODE)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))
}

/// `us` in UTC and local time.
pub fn instant(us: i64, tz: &jiff::tz::TimeZone) -> Instant {
    let ts = jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Instant {
        unix_us: us,
        utc: utc(us),
        local: ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string(),
    }
}

fn utc(us: i64) -> String {
    let ts = jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `20261123T015200Z`, for file names.
pub(crate) fn compact(us: i64) -> String {
    let ts = jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Hashes and counts what passes through.
struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hash: Sha256,
    bytes: u64,
}

impl<'a> HashingWriter<'a> {
    fn new(inner: &'a mut dyn Write) -> Self {
        HashingWriter {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.bytes, self.hash.finalize().into())
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
