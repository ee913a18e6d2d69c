//! Putting complete segments straight into a real index and storage root,
//! for policy tests (retention, evidence) that need footage but no camera.

use std::path::Path;

use custos::index::SharedIndex;
use custos::index::{NewSegment, SegmentId, SegmentSummary, TimeSource};
use custos::storage;
use sha2::{Digest, Sha256};

/// A complete segment of `camera` in `zone` over `[start_us, end_us)`: a real
/// file under `root` holding `content`, and its row with the real hash.
pub fn put_segment(
    index: &SharedIndex,
    root: &Path,
    camera: &str,
    zone: &str,
    start_us: i64,
    end_us: i64,
    content: &[u8],
) -> SegmentId {
    let rel = storage::segment_path(zone, camera, start_us).unwrap();
    let mut file = storage::create_segment_file(root, &rel).unwrap();
    std::io::Write::write_all(&mut file, content).unwrap();
    let index = index.lock();
    let cam = index.camera_id(camera).unwrap();
    let id = index
        .begin_segment(&NewSegment {
            camera: cam,
            zone,
            root: "main",
            path: &rel,
            start_us,
            time_source: TimeSource::Local,
            clock_offset_us: None,
        })
        .unwrap();
    index
        .complete_segment(
            id,
            &SegmentSummary {
                end_us,
                bytes: content.len() as u64,
                frames: 1,
                key_frames: 1,
                video_codec: "h264".into(),
                audio_codec: None,
                sha256: Sha256::digest(content).into(),
                recovered: false,
                activity: Vec::new(),
            },
        )
        .unwrap();
    id
}
