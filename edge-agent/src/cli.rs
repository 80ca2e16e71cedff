//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edge-agent",
    version,
    about = "Roadsight edge agent: traffic cameras → detections → tracks → counts and incidents → events",
    long_about = "Roadsight edge agent.\n\nDecodes clips and RTSP cameras (GStreamer), detects vehicles with an ONNX model, \
tracks them (ByteTrack), counts them on lines and zones, and writes wire-contract v1 events.\n\n\
Run scripts/setup.sh once: it installs ONNX Runtime and the models where edge-agent finds them \
(override with ROADSIGHT_ORT_LIB and ROADSIGHT_MODELS_DIR).",
    after_help = "Examples:\n  edge-agent detect --model deimv2_femto --input clip.mp4 --out detections.csv\n  \
edge-agent run --config samples/intersection_day_960x540.toml --events events.jsonl\n  \
edge-agent eval --gt truth.csv --pred detections.csv --merge car,truck,bus"
)]
pub struct Cli {
    /// Log filter (e.g. `info`, `edge_agent=debug`); also RUST_LOG.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    /// Path to libonnxruntime (default: $ROADSIGHT_ORT_LIB, else the one scripts/setup.sh installed).
    #[arg(long, global = true)]
    pub onnxruntime: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect objects on every frame of a clip; one CSV row per detection.
    Detect(DetectCmd),
    /// Run the cameras of a config file; write events as JSON lines.
    Run(RunCmd),
    /// Score detections against ground truth (AP50, AP, precision, recall).
    Eval(EvalCmd),
    /// Draw a camera's lines and zones (and detections) over one of its frames, as PNG.
    Preview(PreviewCmd),
    /// Serve a clip as a simulated RTSP camera (looped, real-time), for demos and tests.
    SimulateCamera(SimulateCmd),
    /// List the bundled models and where their files are.
    Models,
}

#[derive(Debug, Args)]
pub struct DetectCmd {
    /// Bundled model name (see `edge-agent models`) or path to an .onnx with a .toml manifest beside it.
    #[arg(long, default_value = "yolox_nano")]
    pub model: String,
    /// Video file, image, or URI.
    #[arg(long)]
    pub input: String,
    /// CSV output (default: stdout). Columns: frame,x,y,w,h,label,score (source pixels).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Minimum score (default: the model's manifest).
    #[arg(long)]
    pub score: Option<f32>,
    /// Model input size WxH, for models that accept several (e.g. 960x544).
    #[arg(long, value_parser = parse_size)]
    pub input_size: Option<(u32, u32)>,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct RunCmd {
    /// Agent config (TOML): site, cameras, lines, zones.
    #[arg(long)]
    pub config: PathBuf,
    /// Write events to this file (JSON lines, appended) instead of the config's MQTT broker
    /// (or stdout when the config has none).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// On shutdown, how long to keep delivering what is left in the outbox.
    #[arg(long, default_value_t = 10)]
    pub drain_timeout_secs: u64,
    /// Folder for persistent state (outbox, per-camera sequence numbers); overrides the config.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Reconnect a live camera after this many seconds without a frame.
    #[arg(long, default_value_t = 10)]
    pub stall_timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct EvalCmd {
    /// Ground truth CSV: frame,x,y,w,h,label.
    #[arg(long)]
    pub gt: PathBuf,
    /// Predictions CSV from `edge-agent detect` (frame,x,y,w,h,label,score).
    #[arg(long)]
    pub pred: PathBuf,
    /// Comma-separated labels merged into one class (others dropped), e.g. car,truck,bus.
    #[arg(long, value_delimiter = ',')]
    pub merge: Vec<String>,
    /// Class-agnostic NMS IoU applied to predictions after merging.
    #[arg(long, default_value_t = 0.5)]
    pub merged_nms_iou: f32,
    /// Ignore boxes lower than this many pixels (both sides).
    #[arg(long, default_value_t = 0.0)]
    pub min_height: f32,
    /// Score threshold for the precision/recall figures.
    #[arg(long, default_value_t = 0.3)]
    pub score: f32,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PreviewCmd {
    #[arg(long)]
    pub config: PathBuf,
    /// Camera id (default: the first camera).
    #[arg(long)]
    pub camera: Option<String>,
    /// Decoded frame index to draw on.
    #[arg(long, default_value_t = 0)]
    pub frame: u64,
    /// Also run the camera's detector and draw its boxes.
    #[arg(long)]
    pub detect: bool,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SimulateCmd {
    /// Clip to serve (looped forever).
    #[arg(long)]
    pub input: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// Port (0: any free port).
    #[arg(long, default_value_t = 8554)]
    pub port: u16,
    /// Path of the stream.
    #[arg(long, default_value = "/cam")]
    pub mount: String,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("expected WxH, e.g. 960x544")?;
    let w = w.parse().map_err(|_| format!("bad width '{w}'"))?;
    let h = h.parse().map_err(|_| format!("bad height '{h}'"))?;
    Ok((w, h))
}
