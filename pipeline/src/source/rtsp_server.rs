//! A simulated RTSP camera: serves a clip, looped forever, at real-time pace, as H.264 over
//! RTSP on loopback (gst-rtsp-server). For demos and tests — the agent cannot tell it from a
//! real camera.
//!
//! Two ways to serve:
//! - **Re-encoding** ([`SimulatedCamera::start`]): a reader pipeline decodes the clip to raw
//!   video at clock pace and seeks back to the start at EOS; the (shared) RTSP media takes the
//!   frames through an `appsrc`, re-encodes them with x264 (zerolatency: no B-frames, so
//!   timestamps stay simple) and payloads them. Any decodable clip works; costs ≈ 0.2 core
//!   per 720p camera.
//! - **Pass-through** ([`SimulatedCamera::start_passthrough`]): the clip's own H.264 access
//!   units are sent as they are, so the simulator costs almost nothing (performance runs then
//!   measure the agent, not an encoder). Each RTSP session gets its own media and its own
//!   reader (`filesrc ! parsebin ! h264parse config-interval=-1 ! appsink sync=true`), started
//!   at the clip's first IDR when the session's media starts playing, so a client never joins
//!   mid-GOP (the shared clips have one IDR per clip). Timestamps are rebuilt on one continuous
//!   timeline across loops: DTS follows the media's running time, PTS = DTS + the clip's own
//!   PTS−DTS offset, so B-frames keep their presentation order. A clip whose video is not
//!   H.264 is refused with an error naming the clip and its codec — no silent fallback to
//!   re-encoding, which would defeat the purpose; serve it re-encoded instead.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

use super::SourceError;

pub struct SimulatedCamera {
    port: u16,
    mount: String,
    /// The shared decoding reader (re-encoding mode only).
    reader: Option<gst::Pipeline>,
    /// The per-session readers of the pass-through mode that are running.
    session_readers: Arc<Mutex<Vec<gst::Pipeline>>>,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    looper: Option<std::thread::JoinHandle<()>>,
}

fn err(location: &Path, message: impl std::fmt::Display) -> SourceError {
    SourceError::Stream { location: location.display().to_string(), message: message.to_string() }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long start-up waits for the clip's first decoded frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// GStreamer initialised and the clip present.
fn ready_to_serve(clip: &Path) -> Result<(), SourceError> {
    gst::init().map_err(|e| err(clip, e))?;
    if !clip.exists() {
        return Err(SourceError::NotFound { location: clip.display().to_string() });
    }
    Ok(())
}

impl SimulatedCamera {
    /// Serves `clip` at `rtsp://<address>:<port><mount>`, re-encoded; port 0 picks a free one.
    pub fn start(clip: &Path, address: &str, port: u16, mount: &str) -> Result<Self, SourceError> {
        Self::start_with_credentials(clip, address, port, mount, None)
    }

    /// As [`SimulatedCamera::start`], but the camera demands HTTP Basic credentials
    /// (`user`, `password`) like a real one: a client without them gets `401 Unauthorized`.
    pub fn start_with_credentials(
        clip: &Path,
        address: &str,
        port: u16,
        mount: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, SourceError> {
        ready_to_serve(clip)?;
        let uri = gst::glib::filename_to_uri(clip.canonicalize().map_err(|e| err(clip, e))?, None).map_err(|e| err(clip, e))?;
        let reader = gst::parse::launch(&format!(
            "uridecodebin uri=\"{uri}\" caps=\"video/x-raw(ANY)\" expose-all-streams=false ! videoconvert ! \
             video/x-raw,format=I420 ! appsink name=frames sync=true max-buffers=2 drop=true"
        ))
        .map_err(|e| err(clip, e))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| err(clip, "reader is not a pipeline"))?;
        let appsink = reader
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| err(clip, "no appsink"))?;

        // The appsrcs of the current RTSP sessions' media.
        let outputs: Arc<Mutex<Vec<gst_app::AppSrc>>> = Arc::default();
        let caps_slot: Arc<Mutex<Option<gst::Caps>>> = Arc::default();
        {
            let outputs = Arc::clone(&outputs);
            let caps_slot = Arc::clone(&caps_slot);
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let Some(caps) = sample.caps() {
                            *lock(&caps_slot) = Some(caps.to_owned());
                        }
                        if let Some(buffer) = sample.buffer() {
                            let mut out = buffer.copy();
                            {
                                let b = out.make_mut();
                                b.set_pts(gst::ClockTime::NONE);
                                b.set_dts(gst::ClockTime::NONE);
                            }
                            let srcs = lock(&outputs);
                            for src in srcs.iter() {
                                let _ = src.push_buffer(out.clone());
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        // Loop: seek back to the start at end of stream.
        let bus = reader.bus().ok_or_else(|| err(clip, "no bus"))?;
        let stop = Arc::new(AtomicBool::new(false));
        // The reader's first error, so start-up can name it instead of timing out.
        let first_error: Arc<Mutex<Option<String>>> = Arc::default();
        let looper = {
            let reader = reader.clone();
            let stop = Arc::clone(&stop);
            let first_error = Arc::clone(&first_error);
            let clip_name = clip.display().to_string();
            std::thread::Builder::new()
                .name("rtsp-sim-loop".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else { continue };
                        match msg.view() {
                            gst::MessageView::Eos(_) => {
                                let _ = reader.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, gst::ClockTime::ZERO);
                            }
                            gst::MessageView::Error(e) => {
                                tracing::error!("simulated camera {clip_name}: {}", e.error());
                                lock(&first_error).get_or_insert_with(|| {
                                    format!("{} ({})", e.error(), e.debug().map(|d| d.to_string()).unwrap_or_default())
                                });
                            }
                            _ => {}
                        }
                    }
                })
                .map_err(|e| err(clip, e))?
        };

        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(
            "( appsrc name=src is-live=true do-timestamp=true format=time ! videoconvert ! \
             x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=2000 ! \
             video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )",
        );
        factory.set_shared(true);
        {
            let outputs = Arc::clone(&outputs);
            let caps_slot = Arc::clone(&caps_slot);
            factory.connect_media_configure(move |_, media| {
                let Some(src) = media_appsrc(media) else { return };
                src.set_caps(lock(&caps_slot).as_ref());
                let list = Arc::clone(&outputs);
                let weak = src.downgrade();
                media.connect_unprepared(move |_| {
                    if let Some(s) = weak.upgrade() {
                        lock(&list).retain(|x| x != &s);
                    }
                });
                lock(&outputs).push(src);
            });
        }
        let attached = Attached::new(clip, address, port, mount, credentials, factory)?;
        reader.set_state(gst::State::Playing).map_err(|e| err(clip, e))?;
        // Sessions need the raw caps for their appsrc: wait for the first decoded frame, or the
        // reader's error. The deadline is generous: a loaded or cold machine can take seconds.
        let deadline = Instant::now() + FIRST_FRAME_TIMEOUT;
        while lock(&caps_slot).is_none() {
            let failed = lock(&first_error).clone();
            if let Some(message) = failed {
                stop.store(true, Ordering::Relaxed);
                let _ = reader.set_state(gst::State::Null);
                return Err(err(clip, format!("cannot decode the clip: {message}")));
            }
            if Instant::now() > deadline {
                stop.store(true, Ordering::Relaxed);
                let _ = reader.set_state(gst::State::Null);
                return Err(err(clip, format!("no frame decoded within {} s", FIRST_FRAME_TIMEOUT.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let port = attached.port;
        let (main_loop, thread) = attached.run(clip)?;
        Ok(SimulatedCamera {
            port,
            mount: mount.to_owned(),
            reader: Some(reader),
            session_readers: Arc::default(),
            main_loop,
            thread: Some(thread),
            stop,
            looper: Some(looper),
        })
    }

    /// Serves `clip` like [`SimulatedCamera::start_with_credentials`], but sends the clip's
    /// own H.264 without decoding or re-encoding it (see the module documentation). Fails,
    /// naming the clip and its codec, when the clip's video is not H.264.
    pub fn start_passthrough(
        clip: &Path,
        address: &str,
        port: u16,
        mount: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, SourceError> {
        ready_to_serve(clip)?;
        let clip = clip.to_path_buf();
        // Check the clip once (H.264? readable?) and learn the caps the sessions' appsrc get.
        let caps = probe_h264(&clip)?;

        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch("( appsrc name=src is-live=true format=time ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )");
        // One media (and reader) per session: each client starts at the clip's first IDR.
        factory.set_shared(false);
        let session_readers: Arc<Mutex<Vec<gst::Pipeline>>> = Arc::default();
        {
            let clip = clip.clone();
            let readers = Arc::clone(&session_readers);
            factory.connect_media_configure(move |_, media| {
                let Some(src) = media_appsrc(media) else { return };
                match session_reader(&clip, &caps, &src) {
                    Ok(reader) => {
                        lock(&readers).push(reader.clone());
                        let readers = Arc::clone(&readers);
                        media.connect_unprepared(move |_| {
                            let _ = reader.set_state(gst::State::Null);
                            lock(&readers).retain(|r| r != &reader);
                        });
                    }
                    Err(e) => tracing::error!("simulated camera: {e}"),
                }
            });
        }
        let attached = Attached::new(&clip, address, port, mount, credentials, factory)?;
        let port = attached.port;
        let (main_loop, thread) = attached.run(&clip)?;
        Ok(SimulatedCamera {
            port,
            mount: mount.to_owned(),
            reader: None,
            session_readers,
            main_loop,
            thread: Some(thread),
            stop: Arc::new(AtomicBool::new(false)),
            looper: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, host: &str) -> String {
        format!("rtsp://{host}:{}{}", self.port, self.mount)
    }
}

/// The `appsrc` named `src` in a media's bin.
fn media_appsrc(media: &gst_rtsp_server::RTSPMedia) -> Option<gst_app::AppSrc> {
    media
        .element()
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name_recurse_up("src"))
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
}

/// An RTSP server bound to its port, not yet serving (its main loop is not running).
struct Attached {
    server: gst_rtsp_server::RTSPServer,
    ctx: glib::MainContext,
    port: u16,
}

impl Attached {
    fn new(
        clip: &Path,
        address: &str,
        port: u16,
        mount: &str,
        credentials: Option<(&str, &str)>,
        factory: gst_rtsp_server::RTSPMediaFactory,
    ) -> Result<Self, SourceError> {
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(address);
        server.set_service(&port.to_string());
        if let Some((user, password)) = credentials {
            require_basic_auth(&server, &factory, user, password);
        }
        server.mount_points().ok_or_else(|| err(clip, "no mount points"))?.add_factory(mount, factory);
        let ctx = glib::MainContext::new();
        // The server's source lives in `ctx` (its id is not needed: the context goes with it).
        server
            .attach(Some(&ctx))
            .map_err(|e| err(clip, format!("cannot serve RTSP on {address}:{port} ({e}; is the port in use?)")))?;
        let port = server.bound_port() as u16;
        Ok(Attached { server, ctx, port })
    }

    /// Runs the server's main loop on its own thread.
    fn run(self, clip: &Path) -> Result<(glib::MainLoop, std::thread::JoinHandle<()>), SourceError> {
        let main_loop = glib::MainLoop::new(Some(&self.ctx), false);
        let (l, Attached { server, ctx, .. }) = (main_loop.clone(), self);
        let thread = std::thread::Builder::new()
            .name("rtsp-sim".into())
            .spawn(move || {
                let _ = ctx.with_thread_default(|| l.run());
                drop(server);
            })
            .map_err(|e| err(clip, e))?;
        Ok((main_loop, thread))
    }
}

/// A human name for the codec of compressed video caps.
fn codec_name(caps: &gst::CapsRef) -> String {
    let Some(s) = caps.structure(0) else { return "unknown".into() };
    let name = match s.name().as_str() {
        "video/x-h264" => "H.264",
        "video/x-h265" => "H.265/HEVC",
        "video/mpeg" => match s.get::<i32>("mpegversion") {
            Ok(4) => "MPEG-4 Part 2",
            Ok(2) => "MPEG-2",
            Ok(1) => "MPEG-1",
            _ => "MPEG video",
        },
        "video/x-divx" | "video/x-xvid" => "MPEG-4 Part 2 (DivX/Xvid)",
        "video/x-h263" => "H.263",
        "video/x-vp8" => "VP8",
        "video/x-vp9" => "VP9",
        "video/x-av1" => "AV1",
        "image/jpeg" => "Motion JPEG",
        "video/x-raw" => "uncompressed video",
        other => other,
    };
    let profile = s.get::<&str>("profile").map(|p| format!(" {p}")).unwrap_or_default();
    format!("{name}{profile} ({})", s.name())
}

/// A reader of the clip's H.264 access units, in byte-stream with SPS/PPS before every IDR,
/// paced by the clock (`appsink sync=true`). The caps of any video stream that is not H.264
/// land in the returned slot (that stream is left unlinked). Audio is ignored.
struct H264Reader {
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
    /// The caps of a video stream that is not H.264, once seen.
    other_video: Arc<Mutex<Option<gst::Caps>>>,
}

fn h264_reader(clip: &Path) -> Result<H264Reader, SourceError> {
    let make = |factory: &str| gst::ElementFactory::make(factory).build().map_err(|e| err(clip, format!("{factory}: {e}")));
    let pipeline = gst::Pipeline::new();
    let filesrc = gst::ElementFactory::make("filesrc")
        .property("location", clip.to_string_lossy().as_ref())
        .build()
        .map_err(|e| err(clip, format!("filesrc: {e}")))?;
    let parsebin = make("parsebin")?;
    let parse = gst::ElementFactory::make("h264parse")
        .property("config-interval", -1i32)
        .build()
        .map_err(|e| err(clip, format!("h264parse: {e} (run scripts/setup.sh to install the GStreamer plugins)")))?;
    let caps = gst::Caps::builder("video/x-h264").field("stream-format", "byte-stream").field("alignment", "au").build();
    let appsink = gst_app::AppSink::builder().caps(&caps).sync(true).max_buffers(4).drop(false).build();
    pipeline
        .add_many([&filesrc, &parsebin, &parse, appsink.upcast_ref()])
        .map_err(|e| err(clip, e))?;
    filesrc.link(&parsebin).map_err(|e| err(clip, e))?;
    parse.link(&appsink).map_err(|e| err(clip, e))?;
    let other_video: Arc<Mutex<Option<gst::Caps>>> = Arc::default();
    let parse_weak = parse.downgrade();
    let other = Arc::clone(&other_video);
    parsebin.connect_pad_added(move |_, pad| {
        let Some(caps) = pad.current_caps().or_else(|| Some(pad.query_caps(None))) else { return };
        let Some(name) = caps.structure(0).map(|s| s.name().to_string()) else { return };
        let Some(parse) = parse_weak.upgrade() else { return };
        let Some(sink) = parse.static_pad("sink") else { return };
        if name == "video/x-h264" {
            if !sink.is_linked() {
                let _ = pad.link(&sink);
            }
        } else if (name.starts_with("video/") || name == "image/jpeg") && !sink.is_linked() {
            lock(&other).get_or_insert(caps);
        }
    });
    Ok(H264Reader { pipeline, appsink, other_video })
}

/// Checks that `clip` has H.264 video that can be read; returns the access units' caps.
fn probe_h264(clip: &Path) -> Result<gst::Caps, SourceError> {
    let H264Reader { pipeline, appsink, other_video } = h264_reader(clip)?;
    let not_h264 = |caps: &gst::Caps| {
        err(
            clip,
            format!(
                "cannot serve this clip without re-encoding: its video is {}, pass-through needs H.264 \
                 (serve it re-encoded, without --passthrough)",
                codec_name(caps)
            ),
        )
    };
    let stop = |p: &gst::Pipeline| {
        let _ = p.set_state(gst::State::Null);
    };
    // PAUSED prerolls the first access unit without waiting for the clock.
    if pipeline.set_state(gst::State::Paused).is_err() {
        stop(&pipeline);
        return Err(err(clip, "cannot start reading the clip"));
    }
    let bus = pipeline.bus().ok_or_else(|| err(clip, "no bus"))?;
    let deadline = Instant::now() + FIRST_FRAME_TIMEOUT;
    let result = loop {
        if let Some(sample) = appsink.try_pull_preroll(gst::ClockTime::ZERO) {
            break sample.caps().map(|c| c.to_owned()).ok_or_else(|| err(clip, "first access unit without caps"));
        }
        if let Some(caps) = lock(&other_video).clone() {
            break Err(not_h264(&caps));
        }
        if Instant::now() > deadline {
            break Err(err(clip, format!("no H.264 access unit read within {} s", FIRST_FRAME_TIMEOUT.as_secs())));
        }
        let msg = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(20), &[gst::MessageType::Error, gst::MessageType::Eos]);
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => {
                // A non-H.264 video stream ends as "not-linked": name the codec instead.
                if let Some(caps) = lock(&other_video).clone() {
                    break Err(not_h264(&caps));
                }
                break Err(err(clip, format!("cannot read the clip: {}", e.error())));
            }
            Some(gst::MessageView::Eos(_)) => break Err(err(clip, "the clip has no H.264 video stream")),
            _ => {}
        }
    };
    stop(&pipeline);
    result
}

/// Rebuilds the timestamps of one session's access units on one continuous timeline.
struct Retimer {
    /// Running time of the media minus continuous DTS (set at the first access unit).
    anchor: Option<gst::ClockTime>,
    /// Added to the clip's DTS: the length of the loops played so far.
    loop_offset: gst::ClockTime,
    last_dts: Option<gst::ClockTime>,
    /// Continuous DTS where the next access unit is due (last DTS + its duration).
    next_dts: gst::ClockTime,
    /// An IDR has been sent: until then, access units are dropped.
    started: bool,
    caps: Option<gst::Caps>,
}

impl Retimer {
    /// The (DTS, PTS) to send `buffer` with, or `None` to drop it. `now` is the media's
    /// running time.
    fn retime(&mut self, buffer: &gst::BufferRef, now: gst::ClockTime) -> Option<(gst::ClockTime, gst::ClockTime)> {
        let dts = buffer.dts().or(buffer.pts())?;
        let pts = buffer.pts().unwrap_or(dts);
        let new_loop = self.last_dts.is_some_and(|last| dts < last);
        if new_loop {
            // The seek back to the start: continue the timeline where the last loop ended.
            self.loop_offset = self.next_dts.saturating_sub(dts);
        }
        let frame = buffer.duration().filter(|d| !d.is_zero()).unwrap_or(gst::ClockTime::from_mseconds(33));
        let cdts = dts + self.loop_offset;
        self.last_dts = Some(dts);
        self.next_dts = cdts + frame;
        if !self.started {
            if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return None;
            }
            self.started = true;
        }
        // Follow the media's clock: anchor at the first access unit, and at each loop start
        // (an IDR, so a forward jump cannot reorder frames) absorb the time the seek took.
        let anchor = *self.anchor.get_or_insert_with(|| now.saturating_sub(cdts));
        if new_loop {
            let due = anchor + cdts;
            if now > due {
                self.anchor = Some(anchor + (now - due));
            }
        }
        let out_dts = self.anchor.unwrap_or(anchor) + cdts;
        Some((out_dts, out_dts + pts.saturating_sub(dts)))
    }
}

/// The reader of one session: pushes the clip's access units, retimed, into the session's
/// `appsrc`, from the moment the media plays, looping at EOS.
fn session_reader(clip: &Path, caps: &gst::Caps, src: &gst_app::AppSrc) -> Result<gst::Pipeline, SourceError> {
    let H264Reader { pipeline: reader, appsink, .. } = h264_reader(clip)?;
    src.set_caps(Some(caps));
    let mut retimer = Retimer {
        anchor: None,
        loop_offset: gst::ClockTime::ZERO,
        last_dts: None,
        next_dts: gst::ClockTime::ZERO,
        started: false,
        caps: Some(caps.clone()),
    };
    let weak_src = src.downgrade();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(src) = weak_src.upgrade() else { return Err(gst::FlowError::Flushing) };
                let (Some(buffer), Some(now)) = (sample.buffer(), src.current_running_time()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Some((dts, pts)) = retimer.retime(buffer, now) else { return Ok(gst::FlowSuccess::Ok) };
                if let Some(caps) = sample.caps() {
                    if retimer.caps.as_ref().is_none_or(|c| c.as_ref() != caps) {
                        let caps = caps.to_owned();
                        src.set_caps(Some(&caps));
                        retimer.caps = Some(caps);
                    }
                }
                let mut out = buffer.copy();
                {
                    let b = out.make_mut();
                    b.set_dts(dts);
                    b.set_pts(pts);
                    b.unset_flags(gst::BufferFlags::DISCONT);
                }
                let _ = src.push_buffer(out);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    // Loop at EOS (the seek runs off the streaming thread); log errors.
    let bus = reader.bus().ok_or_else(|| err(clip, "no bus"))?;
    let weak_reader = reader.downgrade();
    let clip_name = clip.display().to_string();
    bus.set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                if let Some(reader) = weak_reader.upgrade() {
                    reader.call_async(|r| {
                        let _ = r.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, gst::ClockTime::ZERO);
                    });
                }
            }
            gst::MessageView::Error(e) => tracing::error!("simulated camera {clip_name}: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
    // Start reading when the media plays (a live appsrc asks for data only then), so the
    // first access unit — the clip's first IDR — is stamped with a valid running time.
    let started = AtomicBool::new(false);
    let weak_reader = reader.downgrade();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |_, _| {
                if !started.swap(true, Ordering::Relaxed) {
                    if let Some(reader) = weak_reader.upgrade() {
                        reader.call_async(|r| {
                            let _ = r.set_state(gst::State::Playing);
                        });
                    }
                }
            })
            .build(),
    );
    Ok(reader)
}

/// Only `user:password` may open (and construct) the factory's media.
fn require_basic_auth(
    server: &gst_rtsp_server::RTSPServer,
    factory: &gst_rtsp_server::RTSPMediaFactory,
    user: &str,
    password: &str,
) {
    const ROLE: &str = "viewer";
    let auth = gst_rtsp_server::RTSPAuth::new();
    let token = gst_rtsp_server::RTSPToken::builder()
        .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(), ROLE)
        .build();
    auth.add_basic(gst_rtsp_server::RTSPAuth::make_basic(user, password).as_str(), &token);
    server.set_auth(Some(&auth));
    let permissions = gst::Structure::builder(ROLE)
        .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(), true)
        .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(), true)
        .build();
    factory.add_role_from_structure(&permissions);
}

impl Drop for SimulatedCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.looper.take() {
            let _ = t.join();
        }
        if let Some(reader) = &self.reader {
            let _ = reader.set_state(gst::State::Null);
        }
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let readers = std::mem::take(&mut *lock(&self.session_readers));
        for reader in readers {
            let _ = reader.set_state(gst::State::Null);
        }
    }
}
