//! What an operator of the edge box can see: Prometheus metrics and per-camera health,
//! shared by the camera workers (writers) and the local HTTP endpoint (reader).
//!
//! Metrics (prefix `roadsight_agent_`): frames processed / dropped and reconnects per camera,
//! current fps per camera, stage latency histograms (preprocess, inference, post-process on
//! the detector; tracking + analytics on the camera), frame→event latency, outbox depth and
//! bytes. Labels carry camera ids only — never URLs, so never credentials.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use roadsight_events::IncidentKind;
use serde::Serialize;

use super::camera::Health;

/// Stage histogram buckets: fine around the real-time budgets (a 25 fps frame is 40 ms; the
/// live frame → event target is 150 ms).
const STAGE_BUCKETS_SECS: [f64; 18] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabel {
    camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IncidentKindLabel {
    camera: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    camera: String,
    stage: &'static str,
}

/// Stages timed per frame.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// The worker waiting for the decoder's next frame (high: the camera or decode is the
    /// bottleneck; decoding itself runs in GStreamer's threads).
    DecodeWait,
    Preprocess,
    Inference,
    Postprocess,
    /// Tracking and analytics (lines, zones, incidents).
    Analytics,
    /// From the frame leaving the decoder to its events stored in the outbox.
    FrameToEvents,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::DecodeWait => "decode_wait",
            Stage::Preprocess => "preprocess",
            Stage::Inference => "inference",
            Stage::Postprocess => "postprocess",
            Stage::Analytics => "analytics",
            Stage::FrameToEvents => "frame_to_events",
        }
    }
}

/// One camera's health as `/health` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CameraHealth {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_in_secs: Option<f64>,
    pub fps: f64,
    pub frames: u64,
    pub dropped: u64,
    pub reconnects: u64,
    /// Seconds since the last processed frame (absent before the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_frame_age_secs: Option<f64>,
    #[serde(skip)]
    last_frame: Option<Instant>,
}

/// Where events go and whether that works now, as `/health` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryHealth {
    /// `mqtt` or `json_lines`.
    pub transport: &'static str,
    /// MQTT: connected to the broker now.
    pub connected: bool,
    /// MQTT: why the last connection failed or dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub delivered: u64,
}

pub struct Telemetry {
    registry: Registry,
    frames: Family<CameraLabel, Counter>,
    dropped: Family<CameraLabel, Counter>,
    reconnects: Family<CameraLabel, Counter>,
    fps: Family<CameraLabel, Gauge<f64, AtomicU64>>,
    stages: Family<StageLabel, Histogram>,
    incidents_folded: Family<IncidentKindLabel, Counter>,
    evidence_ring_bytes: Family<CameraLabel, Gauge>,
    evidence_clips: Family<CameraLabel, Counter>,
    outbox_depth: Gauge,
    outbox_bytes: Gauge,
    outbox_fill: Gauge<f64, AtomicU64>,
    delivered: Counter,
    broker_connected: Gauge,
    cameras: Mutex<BTreeMap<String, CameraHealth>>,
    delivery: Mutex<DeliveryHealth>,
}

impl Telemetry {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("roadsight_agent");
        let frames = Family::<CameraLabel, Counter>::default();
        let dropped = Family::<CameraLabel, Counter>::default();
        let reconnects = Family::<CameraLabel, Counter>::default();
        let fps = Family::<CameraLabel, Gauge<f64, AtomicU64>>::default();
        let stages = Family::<StageLabel, Histogram>::new_with_constructor(|| Histogram::new(STAGE_BUCKETS_SECS.iter().copied()));
        let incidents_folded = Family::<IncidentKindLabel, Counter>::default();
        let evidence_ring_bytes = Family::<CameraLabel, Gauge>::default();
        let evidence_clips = Family::<CameraLabel, Counter>::default();
        let outbox_depth = Gauge::default();
        let outbox_bytes = Gauge::default();
        let outbox_fill = Gauge::<f64, AtomicU64>::default();
        let delivered = Counter::default();
        let broker_connected = Gauge::default();
        registry.register("frames_processed", "Frames run through detection and analytics", frames.clone());
        registry.register("frames_dropped", "Frames a live camera skipped because processing was busy", dropped.clone());
        registry.register("camera_reconnects", "Times a camera's stream was reopened", reconnects.clone());
        registry.register("camera_fps", "Frames processed per second (last few seconds)", fps.clone());
        registry.register("stage_seconds", "Time per frame in each pipeline stage", stages.clone());
        registry.register(
            "incidents_folded",
            "Incident starts the flood control folded into an update of an open incident",
            incidents_folded.clone(),
        );
        registry.register(
            "evidence_ring_bytes",
            "Encoded stream a camera holds for evidence clips (bounded by [cameras.evidence] ring_max_mb)",
            evidence_ring_bytes.clone(),
        );
        registry.register("evidence_clips", "Evidence clips cut and stored for delivery", evidence_clips.clone());
        registry.register("outbox_depth", "Messages stored and not yet delivered", outbox_depth.clone());
        registry.register("outbox_bytes", "Bytes stored in the outbox", outbox_bytes.clone());
        registry.register(
            "outbox_fill_ratio",
            "Outbox bytes over its cap (alert above 0.8: at 1 the cameras block)",
            outbox_fill.clone(),
        );
        registry.register("messages_delivered", "Messages the broker acknowledged (or written to the file)", delivered.clone());
        registry.register("broker_connected", "1 while connected to the MQTT broker", broker_connected.clone());
        let cameras = BTreeMap::new();
        Arc::new(Telemetry {
            registry,
            frames,
            dropped,
            reconnects,
            fps,
            stages,
            incidents_folded,
            evidence_ring_bytes,
            evidence_clips,
            outbox_depth,
            outbox_bytes,
            outbox_fill,
            delivered,
            broker_connected,
            cameras: Mutex::new(cameras),
            delivery: Mutex::new(DeliveryHealth::default()),
        })
    }

    /// A camera starts: it shows as `connecting` until its worker says otherwise.
    pub fn register(&self, camera: &str) {
        let health = CameraHealth {
            state: "connecting",
            reason: None,
            attempt: None,
            next_retry_in_secs: None,
            fps: 0.0,
            frames: 0,
            dropped: 0,
            reconnects: 0,
            last_frame_age_secs: None,
            last_frame: None,
        };
        self.cameras.lock().unwrap_or_else(|p| p.into_inner()).entry(camera.to_owned()).or_insert(health);
    }

    /// A camera removed by a reload leaves `/health` and its gauges.
    pub fn forget(&self, camera: &str) {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner()).remove(camera);
        self.fps.remove(&Self::label(camera));
        self.evidence_ring_bytes.remove(&Self::label(camera));
    }

    /// The camera's evidence ring now holds `bytes`.
    pub fn evidence_ring(&self, camera: &str, bytes: usize) {
        self.evidence_ring_bytes.get_or_create(&Self::label(camera)).set(bytes as i64);
    }

    /// `n` more evidence clips were stored for delivery.
    pub fn evidence_clips(&self, camera: &str, n: u64) {
        if n > 0 {
            self.evidence_clips.get_or_create(&Self::label(camera)).inc_by(n);
        }
    }

    fn label(camera: &str) -> CameraLabel {
        CameraLabel { camera: camera.to_owned() }
    }

    fn with_camera(&self, camera: &str, f: impl FnOnce(&mut CameraHealth)) {
        let mut cameras = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cameras.get_mut(camera) {
            f(c);
        }
    }

    pub fn frame(&self, camera: &str) {
        self.frames.get_or_create(&Self::label(camera)).inc();
        self.with_camera(camera, |c| {
            c.frames += 1;
            c.last_frame = Some(Instant::now());
        });
    }

    pub fn dropped(&self, camera: &str, n: u64) {
        if n > 0 {
            self.dropped.get_or_create(&Self::label(camera)).inc_by(n);
            self.with_camera(camera, |c| c.dropped += n);
        }
    }

    /// `n` more incident starts of `kind` folded by the camera's flood control.
    pub fn incidents_folded(&self, camera: &str, kind: IncidentKind, n: u64) {
        if n > 0 {
            self.incidents_folded.get_or_create(&IncidentKindLabel { camera: camera.to_owned(), kind: kind.as_str() }).inc_by(n);
        }
    }

    pub fn fps(&self, camera: &str, fps: f64) {
        self.fps.get_or_create(&Self::label(camera)).set(fps);
        self.with_camera(camera, |c| c.fps = fps);
    }

    pub fn stage(&self, camera: &str, stage: Stage, took: Duration) {
        self.stages.get_or_create(&StageLabel { camera: camera.to_owned(), stage: stage.name() }).observe(took.as_secs_f64());
    }

    pub fn health(&self, camera: &str, health: &Health) {
        if matches!(health, Health::Retrying { .. }) {
            self.reconnects.get_or_create(&Self::label(camera)).inc();
        }
        if !matches!(health, Health::Running) {
            self.fps.get_or_create(&Self::label(camera)).set(0.0);
        }
        self.with_camera(camera, |c| {
            (c.reason, c.attempt, c.next_retry_in_secs) = (None, None, None);
            c.state = match health {
                Health::Connecting => "connecting",
                Health::Running => "running",
                Health::Retrying { reason, attempt, next_in } => {
                    c.reconnects += 1;
                    (c.reason, c.attempt, c.next_retry_in_secs) =
                        (Some(reason.clone()), Some(*attempt), Some(next_in.as_secs_f64()));
                    "retrying"
                }
                Health::Stopped { reason } => {
                    c.reason = reason.clone();
                    "stopped"
                }
            };
            if c.state != "running" {
                c.fps = 0.0;
            }
        });
    }

    /// The delivery transport in use (`mqtt`, `json_lines`).
    pub fn delivery_transport(&self, transport: &'static str) {
        self.delivery.lock().unwrap_or_else(|p| p.into_inner()).transport = transport;
    }

    pub fn delivered(&self, n: u64) {
        self.delivered.inc_by(n);
        self.delivery.lock().unwrap_or_else(|p| p.into_inner()).delivered += n;
    }

    /// The broker connection is up (`None`) or was lost (`Some(reason)`).
    pub fn broker(&self, lost: Option<String>) {
        self.broker_connected.set(i64::from(lost.is_none()));
        let mut d = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        d.connected = lost.is_none();
        if lost.is_some() {
            d.last_error = lost;
        }
    }

    pub fn broker_connected(&self) -> bool {
        self.broker_connected.get() == 1
    }

    pub fn delivery(&self) -> DeliveryHealth {
        self.delivery.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn outbox(&self, depth: i64, bytes: i64, capacity: i64) {
        self.outbox_depth.set(depth);
        self.outbox_bytes.set(bytes);
        self.outbox_fill.set(bytes as f64 / capacity.max(1) as f64);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Every camera's health, with the age of its last frame.
    pub fn cameras(&self) -> BTreeMap<String, CameraHealth> {
        let mut cameras = self.cameras.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for c in cameras.values_mut() {
            c.last_frame_age_secs = c.last_frame.map(|t| (t.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        }
        cameras
    }
}
