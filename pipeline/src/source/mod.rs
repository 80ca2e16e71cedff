//! Video sources: the only module that knows GStreamer.
//!
//! `uridecodebin` (files, `rtsp://` via `rtspsrc`) → `videoconvert` (to I420; a no-op for
//! the usual decoder output) → `appsink`; the I420 planes are mapped read-only (honouring
//! their strides) and converted to packed RGB by [`crate::colour`] with the stream's own
//! matrix and range — by the puller for files read frame by frame, at first view for live
//! frames (never for frames skipped or dropped) — into a buffer recycled through a small
//! per-source pool.
//! Audio streams are never exposed (`expose-all-streams=false` with video-only caps).
//! A puller thread moves samples from the appsink into a [`BoundedQueue`] whose full-policy
//! is the source's [`Pacing`]: file replay blocks (every frame, in order, deterministic), live
//! keeps the latest frame and counts drops. Downstream of the conversion frames are never
//! copied: a [`Frame`] owns its RGB buffer, which goes back to the pool when it is dropped.

pub mod evidence;
mod network;
pub use evidence::{EvidenceRing, EvidenceSpec};
pub use network::ReturnWatch;
pub mod rtsp_server;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gst::prelude::*;
use gst_video::prelude::*;

use crate::colour;
use crate::frame::{FrameTime, FrameView};
use crate::queue::{BoundedQueue, FullPolicy, Popped};

/// How frames are handed to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Every decoded frame, in order; decoding waits for the consumer (clips, evaluation).
    EveryFrame,
    /// Only the freshest frame; older ones are dropped and counted (live cameras).
    Latest,
}

#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// A URI (`file:///…`, `rtsp://…`) or a local path.
    pub location: String,
    pub pacing: Pacing,
    /// RTSP jitter-buffer latency.
    pub rtsp_latency: Duration,
    /// Keep a ring of the encoded stream for evidence clips (H.264/H.265 sources).
    pub evidence: Option<EvidenceSpec>,
}

impl SourceSpec {
    pub fn new(location: impl Into<String>, pacing: Pacing) -> Self {
        SourceSpec { location: location.into(), pacing, rtsp_latency: Duration::from_millis(200), evidence: None }
    }

    pub fn with_evidence(mut self, evidence: Option<EvidenceSpec>) -> Self {
        self.evidence = evidence;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{location}: file not found")]
    NotFound { location: String },
    #[error("{location}: GStreamer is not usable: {message}")]
    Init { location: String, message: String },
    #[error("{location}: {message}")]
    Stream { location: String, message: String },
}

/// One decoded frame plus its stream position. It holds the decoder's I420 buffer mapped
/// read-only and its packed RGB conversion: made by the source's thread for
/// [`Pacing::EveryFrame`] (in parallel with the consumer), at the first view for live frames
/// (frames skipped by `max_detect_fps` or dropped by the queue are never converted). The RGB
/// buffer returns to the source's pool when the frame is dropped.
pub struct Frame {
    yuv: gst_video::VideoFrame<gst_video::video_frame::Readable>,
    matrix: colour::Matrix,
    range: colour::Range,
    rgb: std::sync::OnceLock<Vec<u8>>,
    pool: Arc<BufferPool>,
    pub time: FrameTime,
}

impl Frame {
    pub fn view(&self) -> FrameView<'_> {
        let (width, height) = (self.yuv.width(), self.yuv.height());
        let row = width as usize * 3;
        let data = self.rgb.get_or_init(|| {
            let planes = self.planes().expect("sample_to_frame admits only frames with their three I420 planes");
            let mut rgb = self.pool.take(row * height as usize);
            colour::i420_to_rgb(&planes, self.matrix, self.range, &mut rgb, row);
            rgb
        });
        FrameView { width, height, stride: row, format: crate::frame::PixelFormat::Rgb, data }
    }

    fn planes(&self) -> Option<colour::I420<'_>> {
        let strides = self.yuv.plane_stride();
        Some(colour::I420 {
            width: self.yuv.width(),
            height: self.yuv.height(),
            y: self.yuv.plane_data(0).ok()?,
            y_stride: strides[0] as usize,
            u: self.yuv.plane_data(1).ok()?,
            u_stride: strides[1] as usize,
            v: self.yuv.plane_data(2).ok()?,
            v_stride: strides[2] as usize,
        })
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if let Some(rgb) = self.rgb.take() {
            self.pool.give_back(rgb);
        }
    }
}

/// Recycled RGB buffers of one source: frames in flight are few (the queue, the detector and
/// the tracker hold at most a handful), so after the first frames no buffer is allocated.
#[derive(Default)]
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// Buffers kept for reuse; more in flight than this are freed when they come back.
    const KEEP: usize = 6;

    fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    fn give_back(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < Self::KEEP && buf.capacity() > 0 {
            free.push(buf);
        }
    }
}

/// What [`VideoSource::next`] yields.
pub enum SourceEvent {
    Frame(Frame),
    /// No frame within the timeout (a live camera may have stalled).
    Timeout,
    /// End of stream.
    Eos,
}

enum Item {
    Frame(Frame),
    Error(String),
}

/// An open, playing video source.
pub struct VideoSource {
    pipeline: gst::Pipeline,
    queue: BoundedQueue<Item>,
    stop: Arc<AtomicBool>,
    puller: Option<JoinHandle<()>>,
    location: String,
    failed: Arc<Mutex<Option<String>>>,
    evidence: Option<EvidenceRing>,
}

/// Replaces `user:password@` in a URI with `***@`, so credentials never reach logs or events.
pub fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let host_start = scheme_end + 3;
            // Only redact when the '@' is inside the authority (before the first '/').
            let authority_end = uri[host_start..].find('/').map_or(uri.len(), |i| host_start + i);
            if at < authority_end {
                format!("{}***@{}", &uri[..host_start], &uri[at + 1..])
            } else {
                uri.to_owned()
            }
        }
        _ => uri.to_owned(),
    }
}

fn to_uri(location: &str) -> Result<String, SourceError> {
    if location.contains("://") {
        return Ok(location.to_owned());
    }
    let path = Path::new(location);
    if !path.exists() {
        return Err(SourceError::NotFound { location: location.to_owned() });
    }
    let abs = path.canonicalize().map_err(|e| SourceError::Stream { location: location.into(), message: e.to_string() })?;
    gst::glib::filename_to_uri(&abs, None)
        .map(|u| u.to_string())
        .map_err(|e| SourceError::Stream { location: location.into(), message: e.to_string() })
}

impl VideoSource {
    /// Builds and starts the pipeline. Errors that only show once data flows (a file that is
    /// not a video, a refused connection) arrive from [`VideoSource::next`].
    pub fn open(spec: &SourceSpec) -> Result<Self, SourceError> {
        let location = redact_uri(&spec.location);
        let init_err = |message: String| SourceError::Init { location: location.clone(), message };
        gst::init().map_err(|e| init_err(e.to_string()))?;
        let uri = to_uri(&spec.location)?;

        let pipeline = gst::Pipeline::new();
        let decode = gst::ElementFactory::make("uridecodebin")
            .property("uri", &uri)
            .property("caps", gst::Caps::from_str("video/x-raw(ANY)").map_err(|e| init_err(e.to_string()))?)
            .property("expose-all-streams", false)
            .build()
            .map_err(|e| init_err(format!("uridecodebin: {e}")))?;
        let convert = gst::ElementFactory::make("videoconvert").build().map_err(|e| init_err(format!("videoconvert: {e}")))?;
        let caps = gst_video::VideoCapsBuilder::new().format(gst_video::VideoFormat::I420).build();
        // A file read in live mode plays at its own pace (clock-synced), like a camera would;
        // network streams arrive in real time already, and file mode decodes as fast as it can.
        let replay_live = spec.pacing == Pacing::Latest && uri.starts_with("file://");
        let appsink = gst_app::AppSink::builder().caps(&caps).max_buffers(2).drop(false).sync(replay_live).build();
        pipeline
            .add_many([&decode, &convert, appsink.upcast_ref()])
            .map_err(|e| init_err(e.to_string()))?;
        convert.link(&appsink).map_err(|e| init_err(e.to_string()))?;

        let latency_ms = spec.rtsp_latency.as_millis() as u32;
        decode.connect("source-setup", false, move |values| {
            if let Ok(src) = values[1].get::<gst::Element>() {
                if src.factory().is_some_and(|f| f.name() == "rtspsrc") {
                    // Media interleaved on the RTSP connection (as Frigate and most NVRs do
                    // for analytics): no UDP loss artefacts, it passes NAT and firewalls, and
                    // a camera that goes away resets the connection that carries its frames,
                    // so the drop is seen at once (over UDP only the stall watchdog sees it).
                    src.set_property_from_str("protocols", "tcp");
                    src.set_property("latency", latency_ms);
                    src.set_property("tcp-timeout", 5_000_000u64);
                    src.set_property("timeout", 5_000_000u64);
                }
            }
            None
        });
        let convert_weak = convert.downgrade();
        decode.connect_pad_added(move |_, pad| {
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                .unwrap_or(false);
            let Some(convert) = convert_weak.upgrade() else { return };
            if let Some(sink) = convert.static_pad("sink") {
                if is_video && !sink.is_linked() {
                    let _ = pad.link(&sink);
                }
            }
        });

        // Before the pipeline plays, so the parser decodebin adds is seen.
        let evidence = spec.evidence.map(EvidenceRing::new);
        if let Some(ring) = &evidence {
            ring.attach(pipeline.upcast_ref());
        }
        let queue_policy = match spec.pacing {
            Pacing::EveryFrame => FullPolicy::Block,
            Pacing::Latest => FullPolicy::KeepLatest,
        };
        // Capacity 2 in both modes: enough to decode the next frame while one is processed.
        let queue = BoundedQueue::new(2, queue_policy);
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(None));
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            let msg = first_bus_error(&pipeline).unwrap_or_else(|| "could not start the pipeline".into());
            SourceError::Stream { location: location.clone(), message: network::explain(&location, msg) }
        })?;
        let puller = spawn_puller(appsink, pipeline.clone(), queue.clone(), Arc::clone(&stop), location.clone(), spec.pacing);
        Ok(VideoSource { pipeline, queue, stop, puller: Some(puller), location, failed, evidence })
    }

    /// The ring of the encoded stream (when [`SourceSpec::evidence`] asked for one; it fills
    /// only for H.264/H.265 streams).
    pub fn evidence(&self) -> Option<&EvidenceRing> {
        self.evidence.as_ref()
    }

    /// The redacted location, for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The next frame, a timeout, end of stream, or the stream's error.
    pub fn next(&mut self, timeout: Duration) -> Result<SourceEvent, SourceError> {
        if let Some(msg) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(SourceError::Stream { location: self.location.clone(), message: msg });
        }
        match self.queue.pop(timeout) {
            Popped::Item(Item::Frame(f)) => Ok(SourceEvent::Frame(f)),
            Popped::Item(Item::Error(msg)) => {
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
                Err(SourceError::Stream { location: self.location.clone(), message: msg })
            }
            Popped::Timeout => Ok(SourceEvent::Timeout),
            Popped::Closed => Ok(SourceEvent::Eos),
        }
    }

    /// The stream's duration, when the container knows it (files; not live streams).
    pub fn duration(&self) -> Option<Duration> {
        self.pipeline.query_duration::<gst::ClockTime>().map(|d| Duration::from_nanos(d.nseconds()))
    }

    /// Frames dropped by the keep-latest policy (always 0 for [`Pacing::EveryFrame`]).
    pub fn dropped_frames(&self) -> u64 {
        self.queue.dropped()
    }
}

impl Drop for VideoSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.queue.close();
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(p) = self.puller.take() {
            let _ = p.join();
        }
    }
}

fn first_bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(describe_error(err.error(), err.debug().as_deref()));
        }
    }
    None
}

/// Turns a GStreamer error into a sentence a user can act on.
fn describe_error(err: gst::glib::Error, debug: Option<&str>) -> String {
    let text = redact_uri(err.message());
    let debug = debug.unwrap_or("");
    let not_video = matches!(
        err.kind::<gst::StreamError>(),
        Some(
            gst::StreamError::TypeNotFound
                | gst::StreamError::WrongType
                | gst::StreamError::Demux
                | gst::StreamError::Decode
                | gst::StreamError::Format
        )
    ) || debug.contains("not-linked");
    if err.kind::<gst::CoreError>() == Some(gst::CoreError::MissingPlugin) || text.contains("missing a plug-in") {
        return format!("{text} (run scripts/setup.sh to install the GStreamer plugins)");
    }
    if not_video {
        return format!("not a decodable video ({text})");
    }
    text
}

fn spawn_puller(
    appsink: gst_app::AppSink,
    pipeline: gst::Pipeline,
    queue: BoundedQueue<Item>,
    stop: Arc<AtomicBool>,
    location: String,
    pacing: Pacing,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("source-puller".into())
        .spawn(move || {
            let bus = pipeline.bus();
            let mut index = 0u64;
            let mut last_pts: Option<Duration> = None;
            let mut info: Option<(gst::Caps, gst_video::VideoInfo)> = None;
            let pool = Arc::new(BufferPool::default());
            while !stop.load(Ordering::Relaxed) {
                // Drain the bus every turn: unread messages would pile up over weeks of running.
                if let Some(error) = bus.as_ref().and_then(drain_bus) {
                    queue.push(Item::Error(network::explain(&location, error)));
                    break;
                }
                let Some(sample) = appsink.try_pull_sample(gst::ClockTime::from_mseconds(50)) else {
                    if appsink.is_eos() {
                        break;
                    }
                    continue;
                };
                match sample_to_frame(&sample, &mut info, &pool, index, &mut last_pts) {
                    Ok(frame) => {
                        // Every frame will be used: convert it here, in parallel with the
                        // consumer. Live frames convert at first view (skipped and dropped
                        // ones never do).
                        if pacing == Pacing::EveryFrame {
                            let _ = frame.view();
                        }
                        index += 1;
                        if !queue.push(Item::Frame(frame)) {
                            break;
                        }
                    }
                    Err(msg) => {
                        tracing::warn!(source = %location, "skipping undecodable sample: {msg}");
                    }
                }
            }
            queue.close();
        })
        .expect("spawning a thread")
}

/// Reads all pending bus messages; returns the first error, logs warnings.
fn drain_bus(bus: &gst::Bus) -> Option<String> {
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(err) => return Some(describe_error(err.error(), err.debug().as_deref())),
            gst::MessageView::Warning(w) => tracing::debug!("gstreamer warning: {}", redact_uri(&w.error().to_string())),
            _ => {}
        }
    }
    None
}

/// Some streams repeat or reorder timestamps (MPEG-4 in AVI with B-frames, RTP of H.264 with
/// B-frames). Stream time must strictly increase for tracking and dwell times: a PTS that does
/// not advance becomes the previous one plus the frame's duration (or 1 ms).
fn monotonic_pts(pts: Duration, duration: Option<Duration>, last: &mut Option<Duration>) -> Duration {
    let fixed = match *last {
        Some(prev) if pts <= prev => prev + duration.filter(|d| !d.is_zero()).unwrap_or(Duration::from_millis(1)),
        _ => pts,
    };
    *last = Some(fixed);
    fixed
}

fn sample_to_frame(
    sample: &gst::Sample,
    info: &mut Option<(gst::Caps, gst_video::VideoInfo)>,
    pool: &Arc<BufferPool>,
    index: u64,
    last_pts: &mut Option<Duration>,
) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let stale = info.as_ref().is_none_or(|(c, _)| c.as_ref() != caps);
    if stale {
        let vi = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
        *info = Some((caps.to_owned(), vi));
    }
    let (_, vi) = info.as_ref().ok_or("no video info")?;
    let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
    let raw = buffer.pts().map_or(Duration::ZERO, |t| Duration::from_nanos(t.nseconds()));
    let duration = buffer.duration().map(|d| Duration::from_nanos(d.nseconds()));
    let pts = monotonic_pts(raw, duration, last_pts);
    let yuv = gst_video::VideoFrame::from_buffer_readable(buffer, vi).map_err(|_| "cannot map buffer".to_string())?;
    if yuv.format() != gst_video::VideoFormat::I420 {
        return Err(format!("expected I420 frames, got {:?}", yuv.format()));
    }
    let (matrix, range) = colorimetry(vi);
    let frame = Frame { yuv, matrix, range, rgb: std::sync::OnceLock::new(), pool: Arc::clone(pool), time: FrameTime { index, pts } };
    if frame.planes().is_none() {
        return Err("an I420 frame without its three planes".to_owned());
    }
    Ok(frame)
}

/// The stream's YUV matrix and range; what GStreamer filled in when the stream says nothing
/// (BT.601 for SD, BT.709 for HD, limited range).
fn colorimetry(vi: &gst_video::VideoInfo) -> (colour::Matrix, colour::Range) {
    let c = vi.colorimetry();
    let matrix = match c.matrix() {
        gst_video::VideoColorMatrix::Bt709 => colour::Matrix::Bt709,
        gst_video::VideoColorMatrix::Bt2020 => colour::Matrix::Bt2020,
        _ => colour::Matrix::Bt601,
    };
    let range = match c.range() {
        gst_video::VideoColorRange::Range0_255 => colour::Range::Full,
        _ => colour::Range::Limited,
    };
    (matrix, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_that_do_not_advance_are_repaired() {
        let ms = Duration::from_millis;
        let mut last = None;
        let got: Vec<Duration> =
            [0, 120, 160, 160, 240, 280, 280].iter().map(|&p| monotonic_pts(ms(p), Some(ms(40)), &mut last)).collect();
        assert_eq!(got, [0, 120, 160, 200, 240, 280, 320].map(ms));
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_uri("rtsp://admin:secret@10.0.0.5:554/s1"), "rtsp://***@10.0.0.5:554/s1");
        assert_eq!(redact_uri("rtsp://10.0.0.5/s1"), "rtsp://10.0.0.5/s1");
        assert_eq!(redact_uri("rtsp://10.0.0.5/a@b"), "rtsp://10.0.0.5/a@b");
        assert_eq!(redact_uri("/tmp/clip.mp4"), "/tmp/clip.mp4");
    }
}
