//! A real RTSP server on loopback (gst-rtsp-server), serving a clip for source tests.

use gst::glib;
use gst_rtsp_server::prelude::*;

pub struct RtspServer {
    pub port: u16,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RtspServer {
    /// Serves an H.264 MP4 at `rtsp://127.0.0.1:<port>/clip` on a free port.
    pub fn serve_mp4(path: &std::path::Path) -> Self {
        gst::init().expect("gstreamer");
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( filesrc location={} ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )",
            path.display()
        ));
        factory.set_shared(true);
        server.mount_points().expect("mount points").add_factory("/clip", factory);
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let source = server.attach(Some(&ctx)).expect("RTSP server attaches (port free)");
        let port = server.bound_port() as u16;
        let thread = {
            let main_loop = main_loop.clone();
            std::thread::spawn(move || {
                ctx.with_thread_default(|| main_loop.run()).expect("thread-default context");
                drop(source);
                drop(server);
            })
        };
        RtspServer { port, main_loop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/clip", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
