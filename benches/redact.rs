//! Face detection cost (issue 18): CenterFace run by tract on this
//! machine's CPU, per frame, at the input sizes a 1080p camera's frames can
//! be scaled to, against real time (25 frames per second) and against the
//! plain cost of turning the frame into the network's input in the same
//! run.
//!
//!     cargo bench --locked --bench redact
//!     REDACT_BENCH_FRAMES=5 cargo bench --locked --bench redact
//!
//! Needs the model and the test face that scripts/setup installs (in
//! `$CUSTOS_MODEL_DIR`, default /var/cache/custos/models). Each size: the
//! detector is loaded and optimised for it (timed apart), one warm-up
//! frame, then `REDACT_BENCH_FRAMES` (default 20) frames of the astronaut
//! picture scaled to it; the figure is the median. One thread (tract runs
//! a plan on the calling thread). Outside the timing, every run must find
//! exactly her one face.

use std::time::Instant;

use custos::redact::{DEFAULT_THRESHOLD, Detector, MODEL_FILE, frames, model_dir};

/// What a 1080p frame can be scaled to, keeping 16:9 within the 32-pixel
/// grid; the last is full resolution (1080 padded to 1088).
const SIZES: [(u32, u32); 4] = [(640, 352), (960, 544), (1280, 736), (1920, 1088)];
const REAL_TIME_FPS: f64 = 25.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let frames_n: usize = std::env::var("REDACT_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let model = model_dir().join(MODEL_FILE);
    let face = model_dir().join("test").join("astronaut.png");
    println!(
        "| input | load + optimise (s) | input tensor (ms) | detection (ms/frame) | frames/s | x real time (25 fps) |"
    );
    println!("|---|---|---|---|---|---|");
    for (w, h) in SIZES {
        let t = Instant::now();
        let d = Detector::load(&model, w, h).expect("the model (scripts/setup installs it)");
        let load = t.elapsed().as_secs_f64();
        let rgb = frames::still_rgb(&face, w, h).expect("the test face");
        // Baseline in the same run: only the conversion to planar floats
        // that every detection starts with.
        let mut convert = Vec::new();
        for _ in 0..frames_n {
            let t = Instant::now();
            let planar: Vec<f32> = (0..3)
                .flat_map(|c| rgb.iter().skip(c).step_by(3).map(|&v| f32::from(v)))
                .collect();
            std::hint::black_box(&planar);
            convert.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(d.detect(&rgb, DEFAULT_THRESHOLD).unwrap().len(), 1);
        let mut times = Vec::new();
        for _ in 0..frames_n {
            let t = Instant::now();
            let faces = d.detect(&rgb, DEFAULT_THRESHOLD).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(faces.len(), 1, "{w}x{h}: {faces:?}");
        }
        let ms = median(times);
        let fps = 1000.0 / ms;
        println!(
            "| {w}x{h} | {load:.2} | {:.2} | {ms:.1} | {fps:.1} | {:.2} |",
            median(convert),
            fps / REAL_TIME_FPS
        );
    }
}
