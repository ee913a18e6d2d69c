//! A jitter buffer that buffers nothing, for RTP over TCP: rtpbin gets it
//! through its `request-jitterbuffer` signal instead of `rtpjitterbuffer`.
//!
//! Why: over TCP packets arrive in order and complete, so reordering is
//! never needed, but `rtpjitterbuffer` still queues every packet and pushes
//! it from its own thread: a futex wake and a context switch per RTP packet,
//! most of what recording cost. This element stamps each packet and pushes
//! it on, on rtspsrc's reading thread.
//!
//! Invariants, as `rtpjitterbuffer` with `mode=none` gives them:
//! - PTS (and DTS) = arrival time of the first packet + the RTP timestamp's
//!   advance since it, so frame durations are exact to the RTP clock's tick
//!   whatever the network did. The 32-bit RTP timestamp is unwrapped.
//! - A jump of the RTP timestamp by more than `RESYNC_AFTER` between two
//!   packets (the sender restarted its clock) starts a new base at that
//!   packet's arrival, marked DISCONT.
//! - Once an RTCP sender report arrived, every packet carries the sender's
//!   NTP time as a `timestamp/x-ntp` reference-timestamp meta.
//!
//! It offers what rtpbin uses of a jitter buffer: `sink` and `src` pads, a
//! `sink_rtcp` request pad, a `latency` property and a `handle-sync` signal
//! (never emitted: stream lip-sync needs `ts-offset`, which Custos does not
//! use since it records each track's own timestamps).

use gstreamer as gst;
use gstreamer::glib;

glib::wrapper! {
    /// See the module documentation.
    pub struct RtpTimestamper(ObjectSubclass<imp::RtpTimestamper>)
        @extends gst::Element, gst::Object;
}

impl RtpTimestamper {
    pub fn new() -> RtpTimestamper {
        glib::Object::new()
    }
}

impl Default for RtpTimestamper {
    fn default() -> Self {
        Self::new()
    }
}

/// The RTP timestamp moving this far between consecutive packets is a
/// restart of the sender's clock, not time passing.
const RESYNC_AFTER_SECS: u64 = 30;

/// The timestamp arithmetic, apart from the element so it can be tested.
#[derive(Debug, Default)]
pub(super) struct Timing {
    clock_rate: Option<u32>,
    /// Extended RTP timestamp of the last packet.
    last_ext: Option<i64>,
    /// Extended RTP timestamp and arrival time (ns) of the first packet.
    base: Option<(i64, u64)>,
    /// Extended RTP timestamp and NTP time (ns since 1900) of the last
    /// sender report.
    sender_report: Option<(i64, u64)>,
}

/// What `Timing::stamp` decided for one packet.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    pub pts_ns: u64,
    pub ntp_ns: Option<u64>,
    pub discont: bool,
}

impl Timing {
    pub(super) fn with_clock_rate(rate: u32) -> Timing {
        Timing {
            clock_rate: (rate > 0).then_some(rate),
            ..Timing::default()
        }
    }

    fn reset(&mut self) {
        *self = Timing {
            clock_rate: self.clock_rate,
            ..Timing::default()
        };
    }

    /// Unwraps `ts` near `last` (the first one starts at 2^32 so going
    /// backwards cannot underflow).
    fn extend(last: Option<i64>, ts: u32) -> i64 {
        match last {
            None => i64::from(ts) + (1 << 32),
            Some(last) => last + i64::from(ts.wrapping_sub(last as u32) as i32),
        }
    }

    /// `ticks` of the RTP clock in nanoseconds (negative allowed).
    fn ns(&self, ticks: i64, rate: u32) -> i64 {
        (i128::from(ticks) * 1_000_000_000 / i128::from(rate)) as i64
    }

    /// Timestamps an RTP packet with RTP timestamp `ts` that arrived at
    /// `arrival_ns`; `None` before the clock rate is known.
    pub(super) fn stamp(&mut self, ts: u32, arrival_ns: u64) -> Option<Stamp> {
        let rate = self.clock_rate?;
        let ext = Timing::extend(self.last_ext, ts);
        let jumped = self
            .last_ext
            .is_some_and(|last| (ext - last).unsigned_abs() > RESYNC_AFTER_SECS * u64::from(rate));
        self.last_ext = Some(ext);
        let discont = jumped || self.base.is_none();
        if discont {
            self.base = Some((ext, arrival_ns));
            self.sender_report = None;
        }
        let (base_ext, base_ns) = self.base.expect("set above");
        let pts_ns = (base_ns as i64 + self.ns(ext - base_ext, rate)).max(0) as u64;
        let ntp_ns = self
            .sender_report
            .map(|(sr_ext, sr_ntp)| (sr_ntp as i64 + self.ns(ext - sr_ext, rate)) as u64);
        Some(Stamp {
            pts_ns,
            ntp_ns,
            discont: jumped,
        })
    }

    /// Records a sender report: RTP timestamp `ts` was NTP time `ntp` (32.32
    /// fixed point seconds since 1900). Ignored before the first packet.
    pub(super) fn sender_report(&mut self, ts: u32, ntp: u64) {
        if self.clock_rate.is_none() || self.last_ext.is_none() {
            return;
        }
        let ext = Timing::extend(self.last_ext, ts);
        let ntp_ns = (ntp >> 32) * 1_000_000_000 + (((ntp & 0xffff_ffff) * 1_000_000_000) >> 32);
        self.sender_report = Some((ext, ntp_ns));
    }
}

/// The RTP timestamp of an RTP packet, if it is one.
fn rtp_timestamp(data: &[u8]) -> Option<u32> {
    if data.len() < 12 || data[0] >> 6 != 2 {
        return None;
    }
    Some(u32::from_be_bytes(data[4..8].try_into().ok()?))
}

/// The (SSRC, NTP time, RTP timestamp) of the first sender report in a
/// compound RTCP packet.
fn sender_report(data: &[u8]) -> Option<(u32, u64, u32)> {
    let mut rest = data;
    while rest.len() >= 8 {
        if rest[0] >> 6 != 2 {
            return None;
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if rest.len() < len {
            return None;
        }
        if rest[1] == 200 && len >= 28 {
            let word = |i: usize| u32::from_be_bytes(rest[i..i + 4].try_into().unwrap());
            let ntp = (u64::from(word(8)) << 32) | u64::from(word(12));
            return Some((word(4), ntp, word(16)));
        }
        rest = &rest[len..];
    }
    None
}

mod imp {
    use std::sync::{LazyLock, Mutex};

    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::prelude::*;
    use gstreamer::subclass::prelude::*;

    use super::Timing;

    static NTP_CAPS: LazyLock<gst::Caps> =
        LazyLock::new(|| gst::Caps::new_empty_simple("timestamp/x-ntp"));

    pub struct RtpTimestamper {
        sinkpad: gst::Pad,
        srcpad: gst::Pad,
        timing: Mutex<Timing>,
        /// Accepted because rtpbin sets it; nothing is buffered.
        latency_ms: Mutex<u32>,
        /// SSRC of the RTP packets seen, to match sender reports.
        ssrc: Mutex<Option<u32>>,
    }

    impl RtpTimestamper {
        fn sink_chain(&self, mut buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let header = {
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                super::rtp_timestamp(&map).zip(
                    map.get(8..12)
                        .map(|s| u32::from_be_bytes(s.try_into().expect("four bytes"))),
                )
            };
            let Some((ts, ssrc)) = header else {
                // Not RTP: rtpbin's session already validated packets.
                return self.srcpad.push(buffer);
            };
            *self.ssrc.lock().unwrap() = Some(ssrc);
            let arrival = buffer.dts().or(buffer.pts()).map_or(0, |t| t.nseconds());
            let stamp = self.timing.lock().unwrap().stamp(ts, arrival);
            if let Some(stamp) = stamp {
                let b = buffer.make_mut();
                let t = gst::ClockTime::from_nseconds(stamp.pts_ns);
                b.set_pts(t);
                b.set_dts(t);
                if stamp.discont {
                    b.set_flags(gst::BufferFlags::DISCONT);
                }
                if let Some(ntp) = stamp.ntp_ns {
                    gst::ReferenceTimestampMeta::add(
                        b,
                        &NTP_CAPS,
                        gst::ClockTime::from_nseconds(ntp),
                        gst::ClockTime::NONE,
                    );
                }
            }
            self.srcpad.push(buffer)
        }

        fn sink_event(&self, event: gst::Event) -> bool {
            match event.view() {
                gst::EventView::Caps(c) => {
                    let rate = c
                        .caps()
                        .structure(0)
                        .and_then(|s| s.get::<i32>("clock-rate").ok())
                        .and_then(|r| u32::try_from(r).ok())
                        .filter(|&r| r > 0);
                    self.timing.lock().unwrap().clock_rate = rate;
                }
                gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) => {
                    self.timing.lock().unwrap().reset();
                }
                _ => {}
            }
            self.srcpad.push_event(event)
        }

        fn rtcp_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let Ok(map) = buffer.map_readable() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            if let Some((ssrc, ntp, ts)) = super::sender_report(&map)
                && *self.ssrc.lock().unwrap() == Some(ssrc)
            {
                self.timing.lock().unwrap().sender_report(ts, ntp);
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RtpTimestamper {
        const NAME: &'static str = "CustosRtpTimestamper";
        type Type = super::RtpTimestamper;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
                .chain_function(|_, parent, buffer| {
                    RtpTimestamper::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |this| this.sink_chain(buffer),
                    )
                })
                .event_function(|_, parent, event| {
                    RtpTimestamper::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.sink_event(event),
                    )
                })
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
                .event_function(|_, parent, event| {
                    RtpTimestamper::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.sinkpad.push_event(event),
                    )
                })
                .query_function(|_, parent, query| {
                    RtpTimestamper::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.sinkpad.peer_query(query),
                    )
                })
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            RtpTimestamper {
                sinkpad,
                srcpad,
                timing: Mutex::default(),
                latency_ms: Mutex::new(0),
                ssrc: Mutex::new(None),
            }
        }
    }

    impl ObjectImpl for RtpTimestamper {
        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.add_pad(&self.sinkpad).expect("adding the sink pad");
            obj.add_pad(&self.srcpad).expect("adding the src pad");
        }

        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecUInt::builder("latency")
                        .nick("Latency (ms)")
                        .blurb("Accepted for rtpbin; nothing is buffered")
                        .build(),
                ]
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            if pspec.name() == "latency" {
                *self.latency_ms.lock().unwrap() = value.get().unwrap_or(0);
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            match pspec.name() {
                "latency" => self.latency_ms.lock().unwrap().to_value(),
                other => unreachable!("no property {other}"),
            }
        }

        fn signals() -> &'static [glib::subclass::Signal] {
            static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
                vec![
                    glib::subclass::Signal::builder("handle-sync")
                        .param_types([gst::Structure::static_type()])
                        .build(),
                ]
            });
            SIGNALS.as_ref()
        }
    }

    impl GstObjectImpl for RtpTimestamper {}

    impl ElementImpl for RtpTimestamper {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "RTP timestamper",
                    "Filter/Network/RTP",
                    "Timestamps in-order RTP packets from their RTP timestamps without buffering",
                    "Custos",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let rtp = gst::Caps::new_empty_simple("application/x-rtp");
                let rtcp = gst::Caps::new_empty_simple("application/x-rtcp");
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &rtp,
                    )
                    .unwrap(),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &rtp,
                    )
                    .unwrap(),
                    gst::PadTemplate::new(
                        "sink_rtcp",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Request,
                        &rtcp,
                    )
                    .unwrap(),
                ]
            });
            TEMPLATES.as_ref()
        }

        fn request_new_pad(
            &self,
            templ: &gst::PadTemplate,
            _name: Option<&str>,
            _caps: Option<&gst::Caps>,
        ) -> Option<gst::Pad> {
            if templ.name_template() != "sink_rtcp" || self.obj().static_pad("sink_rtcp").is_some()
            {
                return None;
            }
            let pad = gst::Pad::builder_from_template(templ)
                .name("sink_rtcp")
                .chain_function(|_, parent, buffer| {
                    RtpTimestamper::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |this| this.rtcp_chain(buffer),
                    )
                })
                .build();
            pad.set_active(true).ok()?;
            self.obj().add_pad(&pad).ok()?;
            Some(pad)
        }

        fn release_pad(&self, pad: &gst::Pad) {
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(pad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            clock_rate: Some(90_000),
            ..Timing::default()
        }
    }

    #[test]
    fn pts_follows_rtp_time_from_the_first_arrival() {
        let mut t = timing();
        let first = t.stamp(1000, 5_000_000_000).unwrap();
        assert_eq!(first.pts_ns, 5_000_000_000);
        assert!(!first.discont);
        // One frame at 30 fps later, whatever the arrival jitter.
        let next = t.stamp(4000, 5_040_000_000).unwrap();
        assert_eq!(next.pts_ns, 5_033_333_333);
    }

    #[test]
    fn the_rtp_timestamp_wraps() {
        let mut t = timing();
        t.stamp(u32::MAX - 2999, 1_000_000_000).unwrap();
        let after = t.stamp(3000, 1_066_000_000).unwrap();
        assert_eq!(after.pts_ns, 1_000_000_000 + 66_666_666);
    }

    #[test]
    fn a_clock_jump_starts_a_new_base() {
        let mut t = timing();
        t.stamp(0, 1_000_000_000).unwrap();
        let jumped = t.stamp(90_000 * 3600, 1_040_000_000).unwrap();
        assert!(jumped.discont);
        assert_eq!(jumped.pts_ns, 1_040_000_000);
    }

    #[test]
    fn sender_reports_give_ntp_time() {
        let mut t = timing();
        assert!(t.stamp(9000, 0).unwrap().ntp_ns.is_none());
        // RTP 18000 was 2.5 s after the NTP epoch.
        t.sender_report(18_000, (2 << 32) | (1 << 31));
        let s = t.stamp(27_000, 100).unwrap();
        assert_eq!(s.ntp_ns, Some(2_600_000_000));
    }

    #[test]
    fn no_clock_rate_no_stamp() {
        assert!(Timing::default().stamp(0, 0).is_none());
    }

    #[test]
    fn parses_rtp_and_sender_reports() {
        let mut rtp = vec![0x80, 96, 0, 1];
        rtp.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        rtp.extend_from_slice(&[0; 4]);
        assert_eq!(rtp_timestamp(&rtp), Some(0x0102_0304));
        assert_eq!(rtp_timestamp(&rtp[..8]), None);

        // RR (empty) then SR.
        let mut rtcp = vec![0x80, 201, 0, 1, 0, 0, 0, 7];
        rtcp.extend_from_slice(&[0x80, 200, 0, 6]);
        for w in [42u32, 1, 2, 3, 0, 0] {
            rtcp.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(sender_report(&rtcp), Some((42, (1 << 32) | 2, 3)));
    }
}
