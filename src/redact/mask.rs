//! Masks burned into pixels: a box grown by a margin, then filled solid.
//! A fill is not reversible as blurring and pixelation are: the pixels are
//! replaced, not transformed.
//!
//! Invariant: a filled box covers every pixel the box touches (its edges
//! rounded outwards), so a face's edge is never left showing by rounding.

use super::detect::FaceBox;

/// The fill colour of masks: black.
pub const FILL: [u8; 3] = [0, 0, 0];
/// Default margin around a face box, on each side, as a fraction of the
/// box's width and height.
pub const DEFAULT_MARGIN: f32 = 0.25;

/// `b` grown by `margin` of its width and height on each side, within the
/// frame.
pub fn grown(b: &FaceBox, margin: f32) -> FaceBox {
    let (mx, my) = (b.width() * margin, b.height() * margin);
    FaceBox {
        x0: (b.x0 - mx).max(0.0),
        y0: (b.y0 - my).max(0.0),
        x1: (b.x1 + mx).min(1.0),
        y1: (b.y1 + my).min(1.0),
        score: b.score,
    }
}

/// The pixel rectangle `[x0, x1) × [y0, y1)` a box touches in a `w`×`h`
/// frame.
pub fn pixels(b: &FaceBox, w: u32, h: u32) -> (u32, u32, u32, u32) {
    // Outwards, past float noise: an edge within a thousandth of a pixel
    // of a pixel boundary is on it.
    let px = |v: f32, n: u32, up: bool| {
        let p = v.clamp(0.0, 1.0) * n as f32;
        (if up {
            (p - 1e-3).ceil()
        } else {
            (p + 1e-3).floor()
        }) as u32
    };
    (
        px(b.x0, w, false),
        px(b.y0, h, false),
        px(b.x1, w, true).min(w),
        px(b.y1, h, true).min(h),
    )
}

/// Fills box `b` of a packed RGB frame of `w`×`h` with `colour`.
pub fn fill(rgb: &mut [u8], w: u32, h: u32, b: &FaceBox, colour: [u8; 3]) {
    let (x0, y0, x1, y1) = pixels(b, w, h);
    for y in y0..y1 {
        let row = (y * w) as usize * 3;
        for x in x0..x1 {
            let i = row + x as usize * 3;
            rgb[i..i + 3].copy_from_slice(&colour);
        }
    }
}

/// Fills everything of a packed RGB frame of `w`×`h` outside the boxes
/// `keep` with `colour` ("keep only": the safest choice in a crowd). With
/// no box to keep, the whole frame is filled.
pub fn fill_outside(rgb: &mut [u8], w: u32, h: u32, keep: &[FaceBox], colour: [u8; 3]) {
    let kept: Vec<(u32, u32, u32, u32)> = keep.iter().map(|b| pixels(b, w, h)).collect();
    for y in 0..h {
        let row = (y * w) as usize * 3;
        for x in 0..w {
            let inside = kept
                .iter()
                .any(|&(x0, y0, x1, y1)| x >= x0 && x < x1 && y >= y0 && y < y1);
            if !inside {
                let i = row + x as usize * 3;
                rgb[i..i + 3].copy_from_slice(&colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_box_with_its_margin_is_solid_and_nothing_outside_changes() {
        let (w, h) = (64u32, 48u32);
        let mut rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8 + 1).collect();
        let before = rgb.clone();
        let face = FaceBox {
            x0: 0.30,
            y0: 0.21,
            x1: 0.47,
            y1: 0.52,
            score: 0.9,
        };
        let masked = grown(&face, DEFAULT_MARGIN);
        assert!(masked.x0 < face.x0 && masked.x1 > face.x1);
        fill(&mut rgb, w, h, &masked, FILL);
        let (x0, y0, x1, y1) = pixels(&masked, w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                let inside = x >= x0 && x < x1 && y >= y0 && y < y1;
                if inside {
                    assert_eq!(rgb[i..i + 3], FILL, "({x}, {y})");
                } else {
                    assert_eq!(rgb[i..i + 3], before[i..i + 3], "({x}, {y})");
                }
                // Every pixel the face box itself touches is inside.
                let (fx, fy) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
                if fx >= face.x0 && fx <= face.x1 && fy >= face.y0 && fy <= face.y1 {
                    assert!(inside, "({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn a_margin_stops_at_the_frame_edge() {
        let b = grown(
            &FaceBox {
                x0: 0.0,
                y0: 0.9,
                x1: 0.1,
                y1: 1.0,
                score: 1.0,
            },
            0.5,
        );
        assert_eq!((b.x0, b.y1), (0.0, 1.0));
        assert_eq!(pixels(&b, 100, 100), (0, 85, 15, 100));
    }

    #[test]
    fn keep_only_fills_all_but_the_kept_boxes() {
        let (w, h) = (40u32, 30u32);
        let mut rgb = vec![200u8; (w * h * 3) as usize];
        let keep = FaceBox {
            x0: 0.25,
            y0: 0.2,
            x1: 0.5,
            y1: 0.6,
            score: 1.0,
        };
        fill_outside(&mut rgb, w, h, &[keep], FILL);
        let (x0, y0, x1, y1) = pixels(&keep, w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                let inside = x >= x0 && x < x1 && y >= y0 && y < y1;
                let want = if inside { [200; 3] } else { FILL };
                assert_eq!(rgb[i..i + 3], want, "({x}, {y})");
            }
        }
        let mut all = vec![200u8; (w * h * 3) as usize];
        fill_outside(&mut all, w, h, &[], FILL);
        assert!(all.iter().all(|&v| v == 0));
    }
}
