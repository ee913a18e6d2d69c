//! Checks against an independent implementation: GStreamer's `qtdemux` and
//! real decoders must read what our writers produce, frame for frame.
//!
//! Sources are real encoder output (x264, x265, voaacenc) muxed by `mp4mux`,
//! which also exercises our reader on progressive files we did not write.
//! Everything used here comes with the packages `scripts/setup` installs.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::read::{self, Mp4Info};
use super::test_util::{self, TestSample};
use super::{Codec, TrackSpec};

/// A buffer as an appsink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Buffer {
    size: u32,
    dts_ns: Option<u64>,
    pts_ns: Option<u64>,
    keyframe: bool,
}

/// Runs a `gst-launch`-style pipeline to EOS and returns what each appsink
/// named `s0`, `s1`, ... (`sinks` of them) received. Panics on a pipeline
/// error, naming it.
fn run(description: &str, sinks: usize) -> Vec<Vec<Buffer>> {
    gst::init().expect("GStreamer initialises");
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let collected: Vec<Arc<Mutex<Vec<Buffer>>>> = (0..sinks).map(|_| Arc::default()).collect();
    for (i, out) in collected.iter().enumerate() {
        let sink = pipeline
            .by_name(&format!("s{i}"))
            .expect("appsink in pipeline");
        let sink = sink.downcast::<gst_app::AppSink>().unwrap();
        let out = Arc::clone(out);
        let callbacks = gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                out.lock().unwrap().push(Buffer {
                    size: buffer.size() as u32,
                    dts_ns: buffer.dts().map(|t| t.nseconds()),
                    pts_ns: buffer.pts().map(|t| t.nseconds()),
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build();
        sink.set_callbacks(callbacks);
    }
    pipeline
        .set_state(gst::State::Playing)
        .expect("pipeline starts");
    let bus = pipeline.bus().unwrap();
    let mut outcome = Err("timed out after 60 s".to_owned());
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                outcome = Ok(());
                break;
            }
            gst::MessageView::Error(e) => {
                outcome = Err(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    if let Err(e) = outcome {
        panic!("{description}: {e}");
    }
    collected
        .iter()
        .map(|c| std::mem::take(&mut *c.lock().unwrap()))
        .collect()
}

/// Demuxes `path` with qtdemux; for each named stream ("video_0", ...) the
/// buffers it produced, after `decoder` (e.g. "h264parse ! openh264dec") if given.
fn demux(path: &Path, streams: &[(&str, Option<&str>)]) -> Vec<Vec<Buffer>> {
    let mut pipeline = format!("filesrc location={} ! qtdemux name=d", path.display());
    for (i, (stream, decoder)) in streams.iter().enumerate() {
        let decoder = decoder.map(|d| format!("{d} !")).unwrap_or_default();
        pipeline += &format!(" d.{stream} ! queue ! {decoder} appsink name=s{i} sync=false");
    }
    run(&pipeline, streams.len())
}

/// What qtdemux should emit for `samples` of a track with `timescale`, when
/// the file has no edit list that shifts it.
fn expected_buffers(samples: &[TestSample], track: u32, timescale: u32) -> Vec<Buffer> {
    let ns = |t: i64| (t as i128 * 1_000_000_000 / i128::from(timescale)) as u64;
    samples
        .iter()
        .filter(|s| s.track == track)
        .map(|s| Buffer {
            size: s.data.len() as u32,
            dts_ns: Some(ns(s.decode_time as i64)),
            pts_ns: Some(ns(s.decode_time as i64 + i64::from(s.composition_offset))),
            keyframe: s.keyframe,
        })
        .collect()
}

/// `info`'s tracks as specs, and its samples renumbered to match (1-based
/// positions), each track in decode order.
fn rewritable(info: &Mp4Info, file: &[u8]) -> (Vec<TrackSpec>, Vec<TestSample>) {
    let specs = info.tracks.iter().map(|t| t.to_spec()).collect();
    let mut samples = test_util::samples_of(info, file);
    for s in &mut samples {
        s.track = info.tracks.iter().position(|t| t.id == s.track).unwrap() as u32 + 1;
    }
    (specs, samples)
}

fn write_progressive(path: &Path, tracks: &[TrackSpec], samples: &[TestSample]) {
    let file = std::fs::File::create(path).unwrap();
    test_util::write_progressive(file, tracks, samples);
}

/// Our reader must see exactly `samples` in the file at `path`.
fn assert_reads_back(path: &Path, samples: &[TestSample]) {
    let bytes = std::fs::read(path).unwrap();
    let info = read::scan_file(path).unwrap();
    assert!(!info.truncated, "{}", path.display());
    let got = test_util::samples_of(&info, &bytes);
    assert_eq!(got.len(), samples.len(), "{}", path.display());
    for (i, (got, want)) in got.iter().zip(samples).enumerate() {
        // Compare without dumping kilobytes of payload on failure.
        let brief = |s: &TestSample| {
            (
                s.track,
                s.decode_time,
                s.duration,
                s.composition_offset,
                s.keyframe,
                s.data.len(),
            )
        };
        assert_eq!(brief(got), brief(want), "sample {i} of {}", path.display());
        assert!(
            got.data == want.data,
            "bytes of sample {i} of {}",
            path.display()
        );
    }
}

#[test]
fn x264_and_aac_from_mp4mux_rewritten_read_the_same_in_qtdemux() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("mp4mux.mp4");
    // High profile with B-frames, so composition offsets (ctts) are real.
    run(
        &format!(
            "videotestsrc num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1,format=I420 \
         ! x264enc key-int-max=25 bframes=2 ! h264parse ! video/x-h264,stream-format=avc,alignment=au \
         ! mp4mux name=mux ! filesink location={} \
         audiotestsrc num-buffers=50 samplesperbuffer=1920 ! audio/x-raw,rate=48000,channels=1 \
         ! voaacenc ! aacparse ! mux.",
            source.display()
        ),
        0,
    );

    // Our reader on a progressive file we did not write.
    let bytes = std::fs::read(&source).unwrap();
    let info = read::scan_file(&source).unwrap();
    assert_eq!(
        (info.complete_len, info.truncated),
        (bytes.len() as u64, false)
    );
    let (tracks, samples) = rewritable(&info, &bytes);
    assert_eq!(tracks.len(), 2);
    let (video, audio) = (&info.tracks[0], &info.tracks[1]);
    assert!(
        matches!(&video.codec, Codec::H264 { avcc } if avcc[1] == 100),
        "{:?}",
        video.codec
    );
    assert_eq!(
        (video.timescale, video.width, video.height),
        (tracks[0].timescale, 320, 240)
    );
    assert_eq!(info.frame_count(video.id), 50);
    assert_eq!(info.keyframe_count(video.id), 2);
    assert!(
        samples.iter().any(|s| s.composition_offset != 0),
        "x264 with B-frames gave no ctts"
    );
    assert!(
        matches!(&audio.codec, Codec::Aac { asc } if asc.len() >= 2),
        "{:?}",
        audio.codec
    );
    assert_eq!((audio.sample_rate, audio.channels), (48_000, 1));
    let audio_frames = info.frame_count(audio.id);
    assert!(
        (90..=95).contains(&audio_frames),
        "{audio_frames} AAC frames for 2 s"
    );
    let source_demuxed = demux(&source, &[("video_0", None), ("audio_0", None)]);
    let sizes = |b: &[Buffer]| b.iter().map(|b| b.size).collect::<Vec<_>>();
    let expected_video = expected_buffers(&samples, 1, tracks[0].timescale);
    let expected_audio = expected_buffers(&samples, 2, tracks[1].timescale);
    assert_eq!(sizes(&source_demuxed[0]), sizes(&expected_video));
    assert_eq!(sizes(&source_demuxed[1]), sizes(&expected_audio));

    // Rewritten, fragmented and progressive.
    let fragmented = dir.path().join("fragmented.mp4");
    let written = test_util::write_fragmented_tracks(tracks.clone(), &samples, 500);
    std::fs::write(&fragmented, &written.bytes).unwrap();
    let exported = dir.path().join("progressive.mp4");
    write_progressive(&exported, &tracks, &samples);

    // Real decoders: our files must decode to as many frames as the source.
    let decoders = [
        ("video_0", Some("h264parse ! openh264dec")),
        ("audio_0", Some("aacparse ! faad")),
    ];
    let decoded_source: Vec<usize> = demux(&source, &decoders).iter().map(Vec::len).collect();
    assert_eq!(decoded_source[0], 50);
    for path in [&fragmented, &exported] {
        assert_reads_back(path, &samples);
        let demuxed = demux(path, &[("video_0", None), ("audio_0", None)]);
        assert_eq!(
            demuxed[0],
            expected_video,
            "qtdemux video of {}",
            path.display()
        );
        assert_eq!(
            demuxed[1],
            expected_audio,
            "qtdemux audio of {}",
            path.display()
        );
        let decoded: Vec<usize> = demux(path, &decoders).iter().map(Vec::len).collect();
        assert_eq!(
            decoded,
            decoded_source,
            "decoded video and audio frames of {}",
            path.display()
        );
    }

    // A crash part-way into the third fragment; recovery cuts the file at
    // complete_len and what is left decodes to the first two fragments' frames.
    let crashed = dir.path().join("crashed.mp4");
    let torn = written.fragments[1].end as usize + 1000;
    std::fs::write(&crashed, &written.bytes[..torn]).unwrap();
    let info = read::scan_file(&crashed).unwrap();
    assert!(info.truncated);
    assert_eq!(info.complete_len, written.fragments[1].end);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&crashed)
        .unwrap();
    file.set_len(info.complete_len).unwrap();
    let frames = info.frame_count(1);
    assert_eq!(frames, 25, "two half-second fragments");
    let decoded = demux(&crashed, &decoders[..1]);
    assert_eq!(decoded[0].len(), frames);
}

#[test]
fn fragmented_file_cut_anywhere_plays_its_complete_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let samples = test_util::synthetic_recording(1, 0);
    let tracks = test_util::h264_aac_tracks();
    let written = test_util::write_fragmented_tracks(tracks.clone(), &samples, 250);
    let video = |n: usize| {
        written.in_file_order[..n]
            .iter()
            .filter(|s| s.track == 1)
            .count()
    };
    let path = dir.path().join("cut.mp4");
    for (i, fragment) in written.fragments.iter().enumerate().take(3) {
        // At a fragment's end, and (as after a crash) part-way into the next.
        for cut in [fragment.end, fragment.end + 200] {
            std::fs::write(&path, &written.bytes[..cut as usize]).unwrap();
            let info = read::scan_file(&path).unwrap();
            assert_eq!(info.complete_len, fragment.end);
            assert_eq!(info.samples.len(), fragment.samples_through);
            let demuxed = demux(&path, &[("video_0", None)]);
            let expected = &expected_buffers(&written.in_file_order, 1, tracks[0].timescale)
                [..video(fragment.samples_through)];
            assert!(
                demuxed[0].starts_with(expected),
                "fragment {i}, cut at {cut}: {:?}",
                demuxed[0]
            );
            if cut == fragment.end {
                assert_eq!(
                    demuxed[0].len(),
                    expected.len(),
                    "fragment {i}, cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn x265_from_mp4mux_rewritten_fragmented_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("h265.mp4");
    run(
        &format!(
            "videotestsrc num-buffers=30 ! video/x-raw,width=352,height=288,framerate=25/1,format=I420 \
         ! x265enc speed-preset=ultrafast key-int-max=15 ! h265parse \
         ! video/x-h265,stream-format=hvc1,alignment=au ! mp4mux ! filesink location={}",
            source.display()
        ),
        0,
    );
    let bytes = std::fs::read(&source).unwrap();
    let info = read::scan_file(&source).unwrap();
    let (tracks, samples) = rewritable(&info, &bytes);
    assert!(
        matches!(tracks[0].codec, Codec::H265 { .. }),
        "{:?}",
        tracks[0].codec
    );
    assert_eq!((info.tracks[0].width, info.tracks[0].height), (352, 288));
    assert_eq!(
        tracks[0].display_size(),
        (352, 288),
        "size parsed from the hvcC's SPS"
    );
    assert_eq!(samples.len(), 30);

    let fragmented = dir.path().join("fragmented.mp4");
    let written = test_util::write_fragmented_tracks(tracks.clone(), &samples, 500);
    std::fs::write(&fragmented, &written.bytes).unwrap();
    let exported = dir.path().join("progressive.mp4");
    write_progressive(&exported, &tracks, &samples);
    for path in [&fragmented, &exported] {
        assert_reads_back(path, &samples);
        let demuxed = demux(path, &[("video_0", None)]);
        assert_eq!(
            demuxed[0],
            expected_buffers(&samples, 1, tracks[0].timescale),
            "{}",
            path.display()
        );
        let decoded = demux(path, &[("video_0", Some("h265parse ! libde265dec"))]);
        assert_eq!(decoded[0].len(), 30, "decoded frames of {}", path.display());
    }
}

#[test]
fn g711_tracks_decode_to_the_right_length() {
    let dir = tempfile::tempdir().unwrap();
    let tracks = vec![
        TrackSpec::audio(Codec::Pcma, 8000, 1),
        TrackSpec::audio(Codec::Pcmu, 8000, 1),
    ];
    // One second of each in 20 ms packets, as RTP delivers G.711.
    let mut samples = Vec::new();
    for track in [1, 2] {
        for i in 0..50u64 {
            let data = (0..160).map(|j| (i as usize * 3 + j) as u8).collect();
            let s = TestSample {
                track,
                decode_time: i * 160,
                duration: 160,
                keyframe: true,
                data,
                ..Default::default()
            };
            samples.push(s);
        }
    }
    let fragmented = dir.path().join("fragmented.mp4");
    let written = test_util::write_fragmented_tracks(tracks.clone(), &samples, 500);
    std::fs::write(&fragmented, &written.bytes).unwrap();
    let exported = dir.path().join("progressive.mp4");
    write_progressive(&exported, &tracks, &samples);
    for path in [&fragmented, &exported] {
        assert_reads_back(path, &samples);
        let decoded = demux(
            path,
            &[("audio_0", Some("alawdec")), ("audio_1", Some("mulawdec"))],
        );
        for stream in decoded {
            // 8000 samples of 16-bit PCM, ending at 1 s.
            assert_eq!(
                stream.iter().map(|b| b.size).sum::<u32>(),
                16_000,
                "{}",
                path.display()
            );
            let last = stream.last().unwrap();
            assert_eq!(last.pts_ns, Some(980_000_000), "{}", path.display());
        }
    }
}
