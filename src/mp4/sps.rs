//! Picture size from the H.264/H.265 sequence parameter set in a decoder
//! configuration record, so `tkhd` and the sample entry state what the
//! bitstream really holds rather than what the caps claimed.
//!
//! Parsing is best effort: anything unexpected yields `None` and the caller
//! falls back to the size it was given. Only the SPS fields that precede the
//! size (and the cropping window) are read.

/// Width and height of the first SPS in an AVCDecoderConfigurationRecord.
pub(crate) fn avcc_dimensions(avcc: &[u8]) -> Option<(u16, u16)> {
    // configurationVersion, profile, compat, level, lengthSizeMinusOne,
    // then numOfSequenceParameterSets in the low 5 bits.
    let count = avcc.get(5)? & 0x1f;
    if count == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]));
    let nal = avcc.get(8..8 + len)?;
    h264_sps_dimensions(nal)
}

/// Width and height of the first SPS (NAL type 33) in an
/// HEVCDecoderConfigurationRecord.
pub(crate) fn hvcc_dimensions(hvcc: &[u8]) -> Option<(u16, u16)> {
    let arrays = *hvcc.get(22)?;
    let mut pos = 23;
    for _ in 0..arrays {
        let nal_type = hvcc.get(pos)? & 0x3f;
        let n = u16::from_be_bytes([*hvcc.get(pos + 1)?, *hvcc.get(pos + 2)?]);
        pos += 3;
        for _ in 0..n {
            let len = usize::from(u16::from_be_bytes([*hvcc.get(pos)?, *hvcc.get(pos + 1)?]));
            let nal = hvcc.get(pos + 2..pos + 2 + len)?;
            if nal_type == 33 {
                return h265_sps_dimensions(nal);
            }
            pos += 2 + len;
        }
    }
    None
}

/// H.264 SPS (7.3.2.1.1), NAL header included.
fn h264_sps_dimensions(nal: &[u8]) -> Option<(u16, u16)> {
    let rbsp = unescape(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.skip(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.skip(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.flag()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        // Crop units per Table 6-1: ChromaArrayType 0 (monochrome or separate
        // planes) counts luma samples.
        let (sub_w, sub_h) = match (separate_colour_plane, chroma_format_idc) {
            (true, _) | (_, 0) => (1, 1),
            (_, 1) => (2, 2),
            (_, 2) => (2, 1),
            _ => (1, 1),
        };
        crop_x = sub_w * (left + right);
        crop_y = sub_h * field_factor * (top + bottom);
    }
    let height_factor = if frame_mbs_only { 1 } else { 2 };
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = (height_map_units * 16 * height_factor).checked_sub(crop_y)?;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// H.265 SPS (7.3.2.2.1), 2-byte NAL header included.
fn h265_sps_dimensions(nal: &[u8]) -> Option<(u16, u16)> {
    let rbsp = unescape(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.skip(1)?; // sps_temporal_id_nesting_flag
    // profile_tier_level(1, max_sub_layers_minus1): the general part is 88
    // bits of profile plus 8 of level.
    r.skip(96)?;
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1) {
        *p = (r.flag()?, r.flag()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    let mut separate_colour_plane = false;
    if chroma_format_idc == 3 {
        separate_colour_plane = r.flag()?;
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.flag()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match (separate_colour_plane, chroma_format_idc) {
            (true, _) | (_, 0) | (_, 3) => (1, 1),
            (_, 1) => (2, 2),
            _ => (2, 1),
        };
        width = width.checked_sub(sub_w * (left + right))?;
        height = height.checked_sub(sub_h * (top + bottom))?;
    }
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

/// Removes emulation-prevention bytes (the 0x03 in 0x00 0x00 0x03).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits MSB-first; every method returns `None` past the end.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn flag(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.flag()?);
        }
        Some(v)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Unsigned Exp-Golomb; values beyond 32 bits are treated as corrupt.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest)).try_into().ok()
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::test_util;

    #[test]
    fn hand_written_baseline_sps_is_320x240() {
        assert_eq!(
            avcc_dimensions(&test_util::avcc_320x240()),
            Some((320, 240))
        );
    }

    #[test]
    fn x264_high_profile_sps_with_cropping() {
        // From x264 (High, 4:2:0) for 320x240, as GStreamer's caps carried it.
        let avcc = hex::decode(
            "01640014ffe1001d67640014acd94141fb016a0c0c0d4a000003000200000300651e28532c01000568ebecb22c",
        )
        .unwrap();
        assert_eq!(avcc_dimensions(&avcc), Some((320, 240)));
        // 1080p needs the cropping window: 1088 coded lines, 8 cropped
        // (x264 ultrafast, constrained baseline).
        let sps_1080 =
            hex::decode("6742c028da01e0089f97016a02020280000003008000001e478c1950").unwrap();
        assert_eq!(h264_sps_dimensions(&sps_1080), Some((1920, 1080)));
    }

    #[test]
    fn x265_sps_with_conformance_window() {
        assert_eq!(
            hvcc_dimensions(&test_util::hvcc_1920x1080()),
            Some((1920, 1080))
        );
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 1) as u8).collect();
            let _ = avcc_dimensions(&junk);
            let _ = hvcc_dimensions(&junk);
            let _ = h264_sps_dimensions(&junk);
            let _ = h265_sps_dimensions(&junk);
        }
        assert_eq!(
            avcc_dimensions(&[1, 66, 0, 30, 0xff, 0xe1, 0, 50, 0x67]),
            None
        );
    }
}
