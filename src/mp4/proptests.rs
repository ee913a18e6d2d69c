//! Property tests of the reader against damaged files: our own fragmented
//! segments and progressive exports, cut off, with bytes flipped, box sizes
//! set to 0, 1, huge or past their parent, and table counts made huge. The
//! reader must never panic, and must either fail with an MP4 error of kind
//! invalid input or return samples that all lie in the bytes it was given.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::read::{self, MAX_SAMPLES, Mp4Info};
use super::test_util;
use crate::ErrorKind;

/// Boxes whose payload is only child boxes.
const CONTAINERS: &[&[u8; 4]] = &[
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf",
];

/// Full boxes whose entry count is the u32 at this payload offset; `stsz`
/// has its uniform size before the count.
const COUNTS: &[(&[u8; 4], usize)] = &[
    (b"stts", 4),
    (b"ctts", 4),
    (b"stsc", 4),
    (b"stco", 4),
    (b"co64", 4),
    (b"stss", 4),
    (b"stsz", 4),
    (b"stsz", 8),
    (b"elst", 4),
    (b"stsd", 4),
    (b"trun", 4),
];

/// A box in a base file: where its header starts and where its parent (or
/// the file) ends.
#[derive(Debug, Clone)]
struct BoxAt {
    fourcc: [u8; 4],
    start: usize,
    parent_end: usize,
}

struct Base {
    bytes: Vec<u8>,
    boxes: Vec<BoxAt>,
}

fn walk(bytes: &[u8], from: usize, to: usize, out: &mut Vec<BoxAt>) {
    let mut pos = from;
    while pos + 8 <= to {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let fourcc: [u8; 4] = bytes[pos + 4..pos + 8].try_into().unwrap();
        if size < 8 || pos + size > to {
            return;
        }
        out.push(BoxAt {
            fourcc,
            start: pos,
            parent_end: to,
        });
        if CONTAINERS.contains(&&fourcc) {
            walk(bytes, pos + 8, pos + size, out);
        }
        pos += size;
    }
}

fn base(bytes: Vec<u8>) -> Base {
    let mut boxes = Vec::new();
    walk(&bytes, 0, bytes.len(), &mut boxes);
    assert!(boxes.iter().any(|b| &b.fourcc == b"moov"));
    Base { bytes, boxes }
}

/// A recorder's segment and a progressive export of the same footage.
fn bases() -> &'static [Base; 2] {
    static BASES: OnceLock<[Base; 2]> = OnceLock::new();
    BASES.get_or_init(|| {
        let samples = test_util::synthetic_recording(1, 0);
        let fragmented = test_util::write_fragmented(&samples, 250).bytes;
        let mut progressive = Vec::new();
        test_util::write_progressive(&mut progressive, &test_util::h264_aac_tracks(), &samples);
        [base(fragmented), base(progressive)]
    })
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep only this fraction (per mille) of the file.
    Truncate(u16),
    /// XOR the byte at this fraction (per mille, then the index) with a value.
    Flip(u16, usize, u8),
    /// Set the size field of the n-th box (modulo their number).
    BoxSize(usize, SizeKind),
    /// Set the n-th table count (modulo the tables present) to a value.
    Count(usize, u32),
}

#[derive(Debug, Clone)]
enum SizeKind {
    Zero,
    One,
    /// Size 1 with a 64-bit size after it (over the next 8 bytes).
    Large(u64),
    Huge,
    /// Larger than what is left of its parent, by this many bytes.
    PastParent(u16),
    Random(u32),
}

fn size_kind() -> impl Strategy<Value = SizeKind> {
    prop_oneof![
        Just(SizeKind::Zero),
        Just(SizeKind::One),
        any::<u64>().prop_map(SizeKind::Large),
        Just(SizeKind::Huge),
        (1u16..64).prop_map(SizeKind::PastParent),
        any::<u32>().prop_map(SizeKind::Random),
    ]
}

fn huge_count() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(MAX_SAMPLES as u32 + 1),
        Just(0),
        Just(1),
        any::<u32>(),
        0u32..10_000,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0u16..1000).prop_map(Mutation::Truncate),
        (0u16..1000, 0usize..64, 1u8..=255).prop_map(|(at, i, x)| Mutation::Flip(at, i, x)),
        (any::<usize>(), size_kind()).prop_map(|(n, k)| Mutation::BoxSize(n, k)),
        (any::<usize>(), huge_count()).prop_map(|(n, v)| Mutation::Count(n, v)),
    ]
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    if let Some(b) = bytes.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Applies `m` to `bytes`, a copy of `base` (box positions are the base's;
/// after a truncation some lie past the end and are skipped).
fn apply(base: &Base, bytes: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Truncate(per_mille) => {
            let keep = base.bytes.len() * usize::from(*per_mille) / 1000;
            bytes.truncate(keep);
        }
        Mutation::Flip(per_mille, i, x) => {
            if !bytes.is_empty() {
                let at = (bytes.len() * usize::from(*per_mille) / 1000 + i) % bytes.len();
                bytes[at] ^= x;
            }
        }
        Mutation::BoxSize(n, kind) => {
            let b = &base.boxes[n % base.boxes.len()];
            let v = match kind {
                SizeKind::Zero => 0,
                SizeKind::One => 1,
                SizeKind::Large(large) => {
                    if let Some(s) = bytes.get_mut(b.start + 8..b.start + 16) {
                        s.copy_from_slice(&large.to_be_bytes());
                    }
                    1
                }
                SizeKind::Huge => u32::MAX,
                SizeKind::PastParent(by) => {
                    (b.parent_end - b.start + usize::from(*by)).min(u32::MAX as usize) as u32
                }
                SizeKind::Random(v) => *v,
            };
            put_u32(bytes, b.start, v);
        }
        Mutation::Count(n, v) => {
            let fields: Vec<usize> = base
                .boxes
                .iter()
                .flat_map(|b| {
                    COUNTS
                        .iter()
                        .filter(|(t, _)| **t == b.fourcc)
                        .map(move |(_, at)| b.start + 8 + at)
                })
                .collect();
            put_u32(bytes, fields[n % fields.len()], *v);
        }
    }
}

/// What the reader must do with any input.
fn check(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
    match read::parse(bytes) {
        Ok(info) => check_info(&info, bytes),
        Err(e) => {
            prop_assert_eq!(e.kind, ErrorKind::InvalidInput, "{}", e);
            prop_assert!(e.message.starts_with("MP4 "), "unclear error: {}", e);
            Ok(())
        }
    }
}

fn check_info(info: &Mp4Info, bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
    prop_assert!(info.complete_len <= bytes.len() as u64);
    prop_assert_eq!(info.truncated, info.complete_len < bytes.len() as u64);
    prop_assert!(info.samples.len() as u64 <= MAX_SAMPLES);
    for s in &info.samples {
        prop_assert!(
            s.end() <= info.complete_len,
            "{:?} past {}",
            s,
            info.complete_len
        );
        prop_assert!(info.sample_data(bytes, s).is_some());
        prop_assert!(
            info.track(s.track).is_some(),
            "sample of unknown track {:?}",
            s
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic(
        which in 0usize..2,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes.clone();
        for m in &mutations {
            apply(base, &mut bytes, m);
        }
        check(&bytes)?;
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        which in 0usize..2,
        keep in 0usize..2000,
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes[..keep.min(base.bytes.len())].to_vec();
        bytes.extend_from_slice(&tail);
        check(&bytes)?;
    }
}

#[test]
fn every_truncation_of_both_kinds_of_file_is_read_or_refused() {
    for base in bases() {
        for cut in 0..=base.bytes.len() {
            let bytes = &base.bytes[..cut];
            if let Err(e) = check(bytes) {
                panic!("cut at {cut}: {e}");
            }
        }
        let whole = read::parse(&base.bytes).unwrap();
        assert!(!whole.truncated && !whole.samples.is_empty());
    }
}

#[test]
fn a_run_claiming_more_samples_than_the_budget_is_refused_before_it_is_walked() {
    let base = &bases()[0];
    let mut bytes = base.bytes.clone();
    let moof = base.boxes.iter().find(|b| &b.fourcc == b"moof").unwrap();
    let trun = base.boxes.iter().find(|b| &b.fourcc == b"trun").unwrap();
    // Only a data offset, no per-sample fields: the default sample size (0)
    // for every sample, so a few bytes claim any number of empty samples.
    put_u32(&mut bytes, trun.start + 8, 0x00_0001);
    put_u32(&mut bytes, trun.start + 12, MAX_SAMPLES as u32 + 1);
    // Enough file for that many (a count above the file's length is refused
    // on its own).
    bytes.resize(bytes.len() + MAX_SAMPLES as usize + 2, 0);
    let info = read::parse(&bytes).unwrap();
    assert!(info.samples.is_empty(), "{} samples", info.samples.len());
    assert_eq!(info.complete_len, moof.start as u64);
}
