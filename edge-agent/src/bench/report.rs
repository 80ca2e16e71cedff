//! The bench report: serialised as JSON (`--json`) and printed as text.

use std::fmt::Write as _;

use serde::Serialize;

use super::stats::LatencySummary;

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub clip: String,
    pub model: String,
    /// Model input `[width, height]`.
    pub model_input: [u32; 2],
    /// Decoded frame `[width, height]`.
    pub frame_size: [u32; 2],
    pub streams: usize,
    /// ONNX Runtime intra-op threads per detector.
    pub threads: usize,
    /// Frames per stream asked for (`None`: the whole clip).
    pub frames_limit: Option<u64>,
    /// Cores this process may use.
    pub cores: usize,
    /// Where the analytics settings came from (a config file's camera, or the built-in scene).
    pub analytics: String,
    pub pipeline: PipelineReport,
    pub decode_only: ThroughputReport,
    pub inference_only: ThroughputReport,
    pub bound: BoundReport,
    /// Peak resident memory of the whole bench process (VmHWM), MiB.
    pub peak_rss_mib: f64,
}

/// The full pipeline, all streams at once.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub frames: u64,
    pub dropped: u64,
    pub events: u64,
    pub wall_secs: f64,
    pub fps_total: f64,
    pub per_stream: Vec<StreamReport>,
    /// Process CPU over the phase, % of one core (2 busy cores = 200 %).
    pub cpu_percent: f64,
    /// Per-stage latency, in pipeline order.
    pub stages: Vec<StageReport>,
    /// From a frame handed over by its source to its events produced (every frame).
    pub frame_to_event: LatencySummary,
    /// The same, only over frames that produced at least one event.
    pub frame_to_event_with_events: LatencySummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub stream: usize,
    pub frames: u64,
    pub dropped: u64,
    pub events: u64,
    pub fps: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    #[serde(flatten)]
    pub latency: LatencySummary,
}

/// One isolated phase (decode only, or inference only), all streams at once.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    pub frames: u64,
    pub wall_secs: f64,
    pub fps_total: f64,
    pub fps_per_stream: Vec<f64>,
    pub cpu_percent: f64,
}

/// What a perfectly pipelined run could reach: decoding and inference overlap, so the slower
/// of the two sets the pace.
#[derive(Debug, Clone, Serialize)]
pub struct BoundReport {
    /// min(decode-only, inference-only) total fps for this many streams.
    pub fps_total: f64,
    /// `"decode"` or `"inference"`.
    pub limited_by: String,
    /// Achieved pipeline fps / bound.
    pub ratio: f64,
}

impl BoundReport {
    pub fn new(achieved: f64, decode: f64, inference: f64) -> Self {
        let (fps_total, limited_by) = if decode <= inference { (decode, "decode") } else { (inference, "inference") };
        let ratio = if fps_total > 0.0 { achieved / fps_total } else { 0.0 };
        BoundReport { fps_total, limited_by: limited_by.to_owned(), ratio }
    }
}

fn per_stream(v: &[f64]) -> String {
    v.iter().map(|f| format!("{f:.1}")).collect::<Vec<_>>().join(" / ")
}

impl BenchReport {
    /// The human-readable report `edge-agent bench` prints.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let p = &self.pipeline;
        let _ = writeln!(
            s,
            "bench: {} ({}×{}), model {} ({}×{}), {} stream(s), {} ORT thread(s) each, {} core(s)",
            self.clip,
            self.frame_size[0],
            self.frame_size[1],
            self.model,
            self.model_input[0],
            self.model_input[1],
            self.streams,
            self.threads,
            self.cores
        );
        let _ = writeln!(s, "analytics: {}", self.analytics);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "pipeline      {:>8.1} fps total   per stream: {}   ({} frames in {:.2} s, {} dropped, {} events)",
            p.fps_total,
            per_stream(&p.per_stream.iter().map(|r| r.fps).collect::<Vec<_>>()),
            p.frames,
            p.wall_secs,
            p.dropped,
            p.events
        );
        let _ = writeln!(
            s,
            "decode only   {:>8.1} fps total   per stream: {}",
            self.decode_only.fps_total,
            per_stream(&self.decode_only.fps_per_stream)
        );
        let _ = writeln!(
            s,
            "inference only{:>8.1} fps total   per stream: {}",
            self.inference_only.fps_total,
            per_stream(&self.inference_only.fps_per_stream)
        );
        let _ = writeln!(
            s,
            "bound         {:>8.1} fps total   (limited by {}); achieved / bound = {:.2}",
            self.bound.fps_total, self.bound.limited_by, self.bound.ratio
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<22} {:>9} {:>9} {:>9} {:>9}", "stage (ms per frame)", "p50", "p99", "mean", "max");
        let rows = p.stages.iter().map(|st| (st.stage.as_str(), &st.latency)).chain([
            ("frame → events", &p.frame_to_event),
            ("  (frames with events)", &p.frame_to_event_with_events),
        ]);
        for (name, l) in rows {
            let _ = writeln!(s, "{name:<22} {:>9.3} {:>9.3} {:>9.3} {:>9.3}", l.p50_ms, l.p99_ms, l.mean_ms, l.max_ms);
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "CPU: pipeline {:.0} %, decode only {:.0} %, inference only {:.0} % (100 % = one core)   peak RSS {:.0} MiB",
            p.cpu_percent, self.decode_only.cpu_percent, self.inference_only.cpu_percent, self.peak_rss_mib
        );
        s
    }
}
