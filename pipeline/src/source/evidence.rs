//! Evidence clips without re-encoding: a ring of the camera's own encoded stream (the H.264 /
//! H.265 access units its parser hands the decoder) and the MP4 cut of an incident from it.
//!
//! The ring holds the parser's buffers by reference (no copy); it is bounded twice — in stream
//! time (the newest `keep` plus the GOP that reaches back to it) and in bytes (`max_bytes`).
//! Full-policy: the oldest GOP is evicted (a rolling window by design; a clip asking for more
//! pre-roll than is kept starts at the oldest keyframe held and says so). A cut starts at the
//! keyframe at or before its pre-roll and is muxed as it came (`h264parse` only reframes
//! byte-stream as length-prefixed NAL units; the NAL payloads are untouched) by `mp4mux`
//! with the index first (`faststart`), so a browser plays it while it loads.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;
use sha2::{Digest, Sha256};

/// What the ring keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvidenceSpec {
    /// Stream time kept behind the newest access unit (at least the clips' pre-roll).
    pub keep: Duration,
    /// Bytes of encoded stream held at most.
    pub max_bytes: usize,
}

/// The codecs a clip can be cut from (what `mp4mux` takes without re-encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    fn parser(self) -> &'static str {
        match self {
            Codec::H264 => "h264parse",
            Codec::H265 => "h265parse",
        }
    }

    fn of_parser(factory: &str) -> Option<Codec> {
        match factory {
            "h264parse" => Some(Codec::H264),
            "h265parse" => Some(Codec::H265),
            _ => None,
        }
    }
}

struct Unit {
    buffer: gst::Buffer,
    pts: Duration,
    dts: Option<Duration>,
    key: bool,
}

impl Unit {
    /// Decode order position (DTS when the stream has B-frames, else PTS).
    fn decode_time(&self) -> Duration {
        self.dts.unwrap_or(self.pts)
    }
}

#[derive(Default)]
struct Ring {
    stream: Option<(Codec, gst::Caps)>,
    /// The parser's output pad: its caps complete what a depayloader leaves out (size, rate).
    parser_out: Option<gst::Pad>,
    units: VecDeque<Unit>,
    bytes: usize,
    peak_bytes: usize,
    evicted_units: u64,
}

/// The shared ring of one source (the parser's streaming thread pushes, the camera worker cuts).
#[derive(Clone)]
pub struct EvidenceRing {
    spec: EvidenceSpec,
    ring: Arc<Mutex<Ring>>,
}

/// Memory figures of a ring.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RingStats {
    pub bytes: usize,
    /// The most it ever held (never above the cap).
    pub peak_bytes: usize,
    pub units: usize,
    pub evicted_units: u64,
    /// The stream time it spans (first to newest access unit).
    pub span: Duration,
}

/// Access units of one cut, starting at a keyframe, in decode order.
pub struct EncodedClip {
    codec: Codec,
    caps: gst::Caps,
    units: Vec<Unit>,
    /// PTS of the first (key) frame, of the last frame.
    pub first_pts: Duration,
    pub last_pts: Duration,
    /// True when the ring no longer held the whole pre-roll asked for.
    pub preroll_short: bool,
}

/// A muxed clip.
#[derive(Debug, Clone)]
pub struct Mp4Clip {
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
    /// Stream time the clip covers (first PTS to the end of its last frame).
    pub duration: Duration,
    pub frames: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("writing the evidence clip: {0}")]
    Mux(String),
    #[error("evidence clip file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn lock(ring: &Mutex<Ring>) -> std::sync::MutexGuard<'_, Ring> {
    ring.lock().unwrap_or_else(|p| p.into_inner())
}

impl EvidenceRing {
    pub fn new(spec: EvidenceSpec) -> Self {
        EvidenceRing { spec, ring: Arc::default() }
    }

    /// Adds the parser's next access unit. A change of stream (codec or caps: a new resolution)
    /// starts the ring afresh — one MP4 holds one stream. Units without a PTS are skipped.
    pub fn push(&self, codec: Codec, caps: &gst::Caps, buffer: gst::Buffer) {
        let Some(pts) = buffer.pts() else { return };
        let unit = Unit {
            pts: Duration::from_nanos(pts.nseconds()),
            dts: buffer.dts().map(|d| Duration::from_nanos(d.nseconds())),
            key: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            buffer,
        };
        let mut r = lock(&self.ring);
        if r.stream.as_ref().is_none_or(|(c, k)| *c != codec || k != caps) {
            r.units.clear();
            r.bytes = 0;
            r.stream = Some((codec, caps.clone()));
        }
        if r.units.is_empty() && !unit.key {
            return; // a clip can only start at a keyframe
        }
        r.bytes += unit.buffer.size();
        r.units.push_back(unit);
        self.evict(&mut r);
        r.peak_bytes = r.peak_bytes.max(r.bytes);
    }

    /// Drops whole GOPs from the front while the next GOP still reaches back `keep`, and
    /// access units while over the byte cap (then up to the next keyframe).
    fn evict(&self, r: &mut Ring) {
        let newest = r.units.back().map_or(Duration::ZERO, |u| u.pts);
        let horizon = newest.saturating_sub(self.spec.keep);
        loop {
            let next_key = r.units.iter().skip(1).position(|u| u.key).map(|i| i + 1);
            let over_time = next_key.is_some_and(|k| r.units[k].pts <= horizon);
            if !over_time && r.bytes <= self.spec.max_bytes {
                break;
            }
            let n = next_key.unwrap_or(r.units.len());
            for u in r.units.drain(..n) {
                r.bytes -= u.buffer.size();
                r.evicted_units += 1;
            }
            if r.units.is_empty() {
                break;
            }
        }
    }

    /// PTS of the newest access unit held.
    pub fn newest_pts(&self) -> Option<Duration> {
        lock(&self.ring).units.back().map(|u| u.pts)
    }

    pub fn stats(&self) -> RingStats {
        let r = lock(&self.ring);
        let span = match (r.units.front(), r.units.back()) {
            (Some(a), Some(b)) => b.pts.saturating_sub(a.pts),
            _ => Duration::ZERO,
        };
        RingStats { bytes: r.bytes, peak_bytes: r.peak_bytes, units: r.units.len(), evicted_units: r.evicted_units, span }
    }

    /// The access units from the keyframe at or before `from` up to `to` (in decode order;
    /// the buffers are shared, not copied). `None` when the ring holds no keyframe before `to`.
    pub fn cut(&self, from: Duration, to: Duration) -> Option<EncodedClip> {
        let r = lock(&self.ring);
        let (codec, caps) = r.stream.clone()?;
        let caps = complete_caps(caps, r.parser_out.as_ref().and_then(|p| p.current_caps()));
        let start = r.units.iter().rposition(|u| u.key && u.pts <= from);
        let preroll_short = start.is_none();
        let start = start.or_else(|| r.units.iter().position(|u| u.key && u.pts <= to))?;
        let mut units: Vec<Unit> = r
            .units
            .iter()
            .skip(start)
            .take_while(|u| u.decode_time() <= to)
            .map(|u| Unit { buffer: u.buffer.clone(), pts: u.pts, dts: u.dts, key: u.key })
            .collect();
        // With B-frames a reference frame shown after `to` is decoded before `to`: the last
        // ones in decode order are dropped (nothing kept depends on a later-decoded frame).
        while units.len() > 1 && units.last().is_some_and(|u| u.pts > to) {
            units.pop();
        }
        let first_pts = units.first()?.pts;
        let last_pts = units.iter().map(|u| u.pts).max().unwrap_or(first_pts);
        Some(EncodedClip { codec, caps, units, first_pts, last_pts, preroll_short })
    }

    /// Feeds the ring from the stream's parser inside `bin` (a `decodebin`'s `h264parse` /
    /// `h265parse`): a probe on its sink pad takes each access unit by reference as the
    /// demuxer or depayloader delivers it — the camera's own bytes (the parser's output would
    /// carry parameter sets it inserts).
    pub fn attach(&self, bin: &gst::Bin) {
        let ring = self.clone();
        bin.connect_deep_element_added(move |_, _, element| {
            let Some(codec) = element.factory().and_then(|f| Codec::of_parser(f.name().as_str())) else { return };
            let Some(pad) = element.static_pad("sink") else { return };
            lock(&ring.ring).parser_out = element.static_pad("src");
            let ring = ring.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                if let (Some(buffer), Some(caps)) = (info.buffer(), pad.current_caps()) {
                    ring.push(codec, &caps, buffer.clone());
                }
                gst::PadProbeReturn::Ok
            });
        });
    }
}

impl EncodedClip {
    pub fn frames(&self) -> usize {
        self.units.len()
    }

    /// Encoded bytes (before muxing).
    pub fn payload_bytes(&self) -> usize {
        self.units.iter().map(|u| u.buffer.size()).sum()
    }

    /// Ends the clip early so its access units total at most `max` bytes (the first is always
    /// kept). True when it was cut.
    pub fn limit_bytes(&mut self, max: usize) -> bool {
        let mut total = 0;
        let keep = self.units.iter().position(|u| {
            total += u.buffer.size();
            total > max
        });
        match keep {
            Some(n) => {
                self.units.truncate(n.max(1));
                self.last_pts = self.units.iter().map(|u| u.pts).max().unwrap_or(self.first_pts);
                true
            }
            None => false,
        }
    }

    /// Muxes the access units into MP4 (timestamps rebased to start at 0; payloads as they
    /// came) in `scratch` (a temporary file there, removed), returning its bytes and SHA-256.
    pub fn to_mp4(&self, scratch: &Path) -> Result<Mp4Clip, ClipError> {
        let file = scratch.join(format!(".clip-{}.mp4", uuid::Uuid::now_v7()));
        let result = self.mux_to(&file).and_then(|()| {
            std::fs::read(&file).map_err(|source| ClipError::Io { path: file.display().to_string(), source })
        });
        let _ = std::fs::remove_file(&file);
        let bytes = result?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let last_frame = self.durations().last().copied().unwrap_or_default();
        Ok(Mp4Clip { bytes, sha256, duration: self.last_pts - self.first_pts + last_frame, frames: self.units.len() })
    }

    fn mux_to(&self, path: &Path) -> Result<(), ClipError> {
        let mux_err = |e: &dyn std::fmt::Display| ClipError::Mux(e.to_string());
        gst::init().map_err(|e| mux_err(&e))?;
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder().caps(&self.caps).format(gst::Format::Time).is_live(false).build();
        let make = |name: &str| gst::ElementFactory::make(name).build().map_err(|e| ClipError::Mux(format!("{name}: {e}")));
        // Length-prefixed access units (`avc`, `hvc1`/`hev1`, as demuxers and depayloaders
        // give them) go to the muxer as they are; Annex-B byte-stream (or NAL-aligned buffers)
        // needs the parser to reframe.
        let field = |name: &str| self.caps.structure(0).and_then(|s| s.get::<String>(name).ok());
        let framed = field("stream-format").is_some_and(|f| f != "byte-stream") && field("alignment").is_none_or(|a| a == "au");
        // Timescales fixed (video's usual 90 kHz, the movie in ms): left automatic, a stream
        // without a frame rate in its caps (RTP) gets a ~1 GHz timescale and its 32-bit
        // durations wrap after 3.5 s.
        let mux = gst::ElementFactory::make("mp4mux")
            .property("faststart", true)
            .property("movie-timescale", 1000u32)
            .property("faststart-file", scratch_file(path))
            .build()
            .map_err(|e| ClipError::Mux(format!("mp4mux: {e}")))?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", path.display().to_string())
            .build()
            .map_err(|e| ClipError::Mux(format!("filesink: {e}")))?;
        pipeline.add_many([src.upcast_ref(), &mux, &sink]).map_err(|e| mux_err(&e))?;
        mux.link(&sink).map_err(|e| mux_err(&e))?;
        let video = mux.request_pad_simple("video_%u").ok_or_else(|| ClipError::Mux("mp4mux gave no video pad".into()))?;
        video.set_property("trak-timescale", 90_000u32);
        let feed = if framed {
            src.static_pad("src")
        } else {
            let parse = make(self.codec.parser())?;
            pipeline.add(&parse).map_err(|e| mux_err(&e))?;
            src.link(&parse).map_err(|e| mux_err(&e))?;
            parse.static_pad("src")
        };
        feed.ok_or_else(|| ClipError::Mux("no source pad".into()))?.link(&video).map_err(|e| mux_err(&e))?;
        pipeline.set_state(gst::State::Playing).map_err(|e| mux_err(&e))?;
        let result = self.push_all(&src).and_then(|()| wait_eos(&pipeline));
        let _ = pipeline.set_state(gst::State::Null);
        let _ = std::fs::remove_file(scratch_file(path));
        result
    }

    /// Each access unit's duration: as the stream gave it, else (RTP gives none) the step to
    /// the next one in decode order, the last one repeating the step before it — so the muxer
    /// keeps the last frame instead of ending the track on a frame of no length.
    fn durations(&self) -> Vec<Duration> {
        let steps: Vec<Duration> = self.units.windows(2).map(|w| w[1].decode_time().saturating_sub(w[0].decode_time())).collect();
        self.units
            .iter()
            .enumerate()
            .map(|(i, u)| match u.buffer.duration() {
                Some(d) => Duration::from_nanos(d.nseconds()),
                None => steps.get(i).or(steps.last()).copied().unwrap_or_default(),
            })
            .collect()
    }

    fn push_all(&self, src: &gst_app::AppSrc) -> Result<(), ClipError> {
        let base = self.units.iter().map(|u| u.decode_time().min(u.pts)).min().unwrap_or_default();
        let at = |d: Duration| gst::ClockTime::from_nseconds((d - base).as_nanos() as u64);
        for (u, duration) in self.units.iter().zip(self.durations()) {
            // A new buffer header over the same memory: only the timestamps change.
            let mut b = u.buffer.copy();
            let m = b.make_mut();
            m.set_pts(at(u.pts));
            m.set_dts(u.dts.map(at));
            m.set_duration(gst::ClockTime::from_nseconds(duration.as_nanos() as u64));
            src.push_buffer(b).map_err(|e| ClipError::Mux(format!("pushing an access unit: {e:?}")))?;
        }
        src.end_of_stream().map_err(|e| ClipError::Mux(format!("ending the clip: {e:?}")))?;
        Ok(())
    }
}

/// The stream's caps with the picture fields a muxer needs (`width`, `height`, `framerate`,
/// `pixel-aspect-ratio`) taken from the parser's output when the demuxer or depayloader did
/// not state them (RTP caps carry no size).
fn complete_caps(caps: gst::Caps, parsed: Option<gst::Caps>) -> gst::Caps {
    let Some(parsed) = parsed else { return caps };
    let Some(from) = parsed.structure(0) else { return caps };
    let mut caps = caps;
    if let Some(to) = caps.make_mut().structure_mut(0) {
        for field in ["width", "height", "framerate", "pixel-aspect-ratio"] {
            if !to.has_field(field) {
                if let Ok(v) = from.value(field) {
                    to.set_value(field, v.clone());
                }
            }
        }
    }
    caps
}

fn scratch_file(path: &Path) -> String {
    format!("{}.moov", path.display())
}

fn wait_eos(pipeline: &gst::Pipeline) -> Result<(), ClipError> {
    let bus = pipeline.bus().ok_or_else(|| ClipError::Mux("pipeline without a bus".into()))?;
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos, gst::MessageType::Error])
        .ok_or_else(|| ClipError::Mux("muxing took over 30 s".into()))?;
    match msg.view() {
        gst::MessageView::Error(e) => Err(ClipError::Mux(e.error().to_string())),
        _ => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> gst::Caps {
        gst::init().expect("gstreamer");
        gst::Caps::builder("video/x-h264").field("stream-format", "avc").field("alignment", "au").build()
    }

    fn unit(i: u64, key: bool, size: usize) -> gst::Buffer {
        let mut b = gst::Buffer::with_size(size).expect("buffer");
        let m = b.get_mut().expect("writable");
        m.set_pts(gst::ClockTime::from_mseconds(i * 40));
        m.set_duration(gst::ClockTime::from_mseconds(40));
        if !key {
            m.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        b
    }

    /// Ten minutes of a 25 fps stream (GOP of 50, keyframes 8× the size of the rest): the ring
    /// never holds more than its cap, keeps `keep` behind the newest frame when the cap allows,
    /// and always starts at a keyframe.
    #[test]
    fn ring_stays_within_its_cap_and_keeps_its_window() {
        let caps = caps();
        let spec = EvidenceSpec { keep: Duration::from_secs(5), max_bytes: 2_000_000 };
        let ring = EvidenceRing::new(spec);
        for i in 0..15_000u64 {
            let key = i % 50 == 0;
            let size = if key { 40_000 } else { 5_000 + (i as usize * 7919) % 2_000 };
            ring.push(Codec::H264, &caps, unit(i, key, size));
            let s = ring.stats();
            assert!(s.bytes <= spec.max_bytes, "frame {i}: {} bytes over the cap", s.bytes);
            if i > 400 {
                assert!(s.span >= spec.keep, "frame {i}: spans only {:?}", s.span);
                assert!(s.span < spec.keep + Duration::from_secs(2) + Duration::from_millis(40), "frame {i}: {:?}", s.span);
            }
        }
        let s = ring.stats();
        assert!(s.peak_bytes <= spec.max_bytes && s.evicted_units > 14_000, "{s:?}");
        let clip = ring.cut(Duration::from_secs(590), Duration::from_secs(600)).expect("a cut");
        assert_eq!(clip.first_pts, Duration::from_secs(594), "the keyframe at or before the oldest kept pre-roll");
        assert!(clip.preroll_short);
        assert!(clip.units[0].key);

        // A byte cap tighter than the window (two GOPs of 85 kB): whole GOPs go, the ring
        // still starts at a keyframe.
        let small = EvidenceRing::new(EvidenceSpec { keep: Duration::from_secs(5), max_bytes: 200_000 });
        for i in 0..1_000u64 {
            small.push(Codec::H264, &caps, unit(i, i % 10 == 0, if i % 10 == 0 { 40_000 } else { 5_000 }));
            assert!(small.stats().bytes <= 200_000);
        }
        assert!(small.stats().span < Duration::from_secs(1), "{:?}", small.stats());
        let cut = small.cut(Duration::from_secs(30), Duration::from_secs(40)).expect("a cut");
        assert!(cut.units[0].key && cut.preroll_short);
    }

    #[test]
    fn a_cut_starts_at_the_keyframe_at_or_before_the_preroll_and_ends_at_the_post_roll() {
        let caps = caps();
        let ring = EvidenceRing::new(EvidenceSpec { keep: Duration::from_secs(20), max_bytes: 10 << 20 });
        // The ring starts at a keyframe: leading delta units are skipped.
        ring.push(Codec::H264, &caps, unit(0, false, 100));
        for i in 1..500u64 {
            ring.push(Codec::H264, &caps, unit(i, i % 30 == 1, 100));
        }
        let clip = ring.cut(Duration::from_millis(5_000), Duration::from_millis(15_000)).expect("a cut");
        // Keyframes at 1, 31, 61, … → 121 (4.84 s) is the last at or before 5 s.
        assert_eq!(clip.first_pts, Duration::from_millis(121 * 40));
        assert_eq!(clip.last_pts, Duration::from_millis(15_000));
        assert!(!clip.preroll_short);
        assert_eq!(clip.frames(), 375 - 121 + 1);
        // A new stream (other caps) starts the ring afresh.
        let other = gst::Caps::builder("video/x-h264").field("stream-format", "byte-stream").build();
        ring.push(Codec::H264, &other, unit(500, true, 100));
        assert_eq!(ring.stats().units, 1);
        assert!(ring.cut(Duration::ZERO, Duration::from_secs(1)).is_none(), "nothing before the new stream's first unit");
    }
}
