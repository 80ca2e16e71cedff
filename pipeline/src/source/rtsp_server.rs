//! A simulated RTSP camera: serves a clip, looped forever, at real-time pace, as H.264 over
//! RTSP on loopback (gst-rtsp-server). For demos and tests — the agent cannot tell it from a
//! real camera.
//!
//! A reader pipeline decodes the clip to raw video at clock pace and seeks back to the start
//! at EOS; each RTSP session's media takes the frames through an `appsrc`, re-encodes them
//! with x264 (zerolatency: no B-frames, so timestamps stay simple) and payloads them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

use super::SourceError;

pub struct SimulatedCamera {
    port: u16,
    mount: String,
    reader: gst::Pipeline,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    looper: Option<std::thread::JoinHandle<()>>,
}

fn err(location: &Path, message: impl std::fmt::Display) -> SourceError {
    SourceError::Stream { location: location.display().to_string(), message: message.to_string() }
}

/// How long start-up waits for the clip's first decoded frame.
const FIRST_FRAME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl SimulatedCamera {
    /// Serves `clip` at `rtsp://<address>:<port><mount>`; port 0 picks a free one.
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
        gst::init().map_err(|e| err(clip, e))?;
        if !clip.exists() {
            return Err(SourceError::NotFound { location: clip.display().to_string() });
        }
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
                            *caps_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(caps.to_owned());
                        }
                        if let Some(buffer) = sample.buffer() {
                            let mut out = buffer.copy();
                            {
                                let b = out.make_mut();
                                b.set_pts(gst::ClockTime::NONE);
                                b.set_dts(gst::ClockTime::NONE);
                            }
                            let srcs = outputs.lock().unwrap_or_else(|p| p.into_inner());
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
                                first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| {
                                    format!("{} ({})", e.error(), e.debug().map(|d| d.to_string()).unwrap_or_default())
                                });
                            }
                            _ => {}
                        }
                    }
                })
                .map_err(|e| err(clip, e))?
        };

        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(address);
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(
            "( appsrc name=src is-live=true do-timestamp=true format=time ! videoconvert ! \
             x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=2000 ! \
             video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )",
        );
        factory.set_shared(true);
        if let Some((user, password)) = credentials {
            require_basic_auth(&server, &factory, user, password);
        }
        {
            let outputs = Arc::clone(&outputs);
            let caps_slot = Arc::clone(&caps_slot);
            factory.connect_media_configure(move |_, media| {
                let element = media.element();
                let Some(src) = element
                    .downcast_ref::<gst::Bin>()
                    .and_then(|b| b.by_name_recurse_up("src"))
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                else {
                    return;
                };
                src.set_caps(caps_slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref());
                let list = Arc::clone(&outputs);
                let weak = src.downgrade();
                media.connect_unprepared(move |_| {
                    if let Some(s) = weak.upgrade() {
                        list.lock().unwrap_or_else(|p| p.into_inner()).retain(|x| x != &s);
                    }
                });
                outputs.lock().unwrap_or_else(|p| p.into_inner()).push(src);
            });
        }
        server.mount_points().ok_or_else(|| err(clip, "no mount points"))?.add_factory(mount, factory);
        let ctx = glib::MainContext::new();
        let source = server
            .attach(Some(&ctx))
            .map_err(|e| err(clip, format!("cannot serve RTSP on {address}:{port} ({e}; is the port in use?)")))?;
        let bound = server.bound_port();
        reader.set_state(gst::State::Playing).map_err(|e| err(clip, e))?;
        // Sessions need the raw caps for their appsrc: wait for the first decoded frame, or the
        // reader's error. The deadline is generous: a loaded or cold machine can take seconds.
        let deadline = std::time::Instant::now() + FIRST_FRAME_TIMEOUT;
        while caps_slot.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            let failed = first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(message) = failed {
                stop.store(true, Ordering::Relaxed);
                let _ = reader.set_state(gst::State::Null);
                return Err(err(clip, format!("cannot decode the clip: {message}")));
            }
            if std::time::Instant::now() > deadline {
                stop.store(true, Ordering::Relaxed);
                let _ = reader.set_state(gst::State::Null);
                return Err(err(clip, format!("no frame decoded within {} s", FIRST_FRAME_TIMEOUT.as_secs())));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let thread = {
            let main_loop = main_loop.clone();
            std::thread::Builder::new()
                .name("rtsp-sim".into())
                .spawn(move || {
                    let _ = ctx.with_thread_default(|| main_loop.run());
                    drop(source);
                    drop(server);
                })
                .map_err(|e| err(clip, e))?
        };
        Ok(SimulatedCamera {
            port: bound as u16,
            mount: mount.to_owned(),
            reader,
            main_loop,
            thread: Some(thread),
            stop,
            looper: Some(looper),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, host: &str) -> String {
        format!("rtsp://{host}:{}{}", self.port, self.mount)
    }
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
        let _ = self.reader.set_state(gst::State::Null);
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
