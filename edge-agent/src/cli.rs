//! Command-line interface.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

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
edge-agent eval --gt truth.csv --pred detections.csv --merge car,truck,bus\n  \
edge-agent track --config samples/intersection_day_960x540.toml --out tracks.csv\n  \
edge-agent eval --mot-gt gt.txt --mot-pred tracks.csv\n  \
edge-agent eval --counts-gt samples/intersection_day_960x540.counts.csv --events events.jsonl\n  \
edge-agent eval --counts-sweep --config samples/highway_cdnet_320x240.toml --counts-gt samples/highway_cdnet_320x240.counts.csv"
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
    /// Score detections (AP50, AP, precision, recall), tracks (MOTA, IDF1, ID switches) and
    /// line counts against ground truth.
    #[command(after_help = EVAL_EXAMPLES)]
    Eval(EvalCmd),
    /// Track one camera of a config file over its clip; one CSV row per confirmed track per
    /// frame (input for `eval --mot-pred`).
    Track(TrackCmd),
    /// Draw a camera's lines and zones (and detections) over one of its frames, as PNG.
    Preview(PreviewCmd),
    /// Serve a clip as a simulated RTSP camera (looped, real-time), for demos and tests.
    SimulateCamera(SimulateCmd),
    /// Measure throughput and per-stage latency on a clip: N streams, decode-only and
    /// inference-only baselines, in one run.
    #[command(long_about = BENCH_ABOUT, after_help = BENCH_EXAMPLES)]
    Bench(BenchCmd),
    /// List the bundled models and where their files are.
    Models,
}

const EVAL_EXAMPLES: &str = "Examples:\n  \
edge-agent eval --gt truth.csv --pred detections.csv --merge car,truck,bus --min-height 12\n  \
edge-agent eval --mot-gt gt.txt --mot-pred tracks.csv --iou 0.5\n  \
edge-agent eval --counts-gt samples/intersection_day_960x540.counts.csv --events events.jsonl\n\n\
The three parts are independent; give any of them (or several) in one run.";

const BENCH_ABOUT: &str = "Measure how fast this machine runs the pipeline, and where the time goes.\n\n\
One run, three phases, on the same clip, model and ONNX Runtime thread settings:\n\
  1. decode only: N sources decode the clip (every frame), nothing else;\n\
  2. inference only: N detectors run on one pre-decoded frame in a loop (one thread each);\n\
  3. pipeline: N independent cameras, each a source thread decoding in file mode feeding a worker \
that runs preprocess → inference → decode/NMS → tracking → analytics, as `edge-agent run` does \
(events are counted, not stored or sent).\n\n\
Reported: frames/s in total and per stream; p50/p99 per stage (decode wait, preprocess, inference, \
post-process/NMS, tracking + analytics); frame → events latency (from the source handing a frame over \
to its events being produced); dropped frames; process CPU (100 % = one core) and peak RSS; the \
pipelined bound min(decode only, inference only) and how close the pipeline gets to it.\n\n\
Without --config, analytics runs a built-in scene (one counting line, one zone, counts every 5 s). \
Figures depend on what else the machine is doing: compare runs made under the same load.";

const BENCH_EXAMPLES: &str = "Examples:\n  \
edge-agent bench --input ../shared/samples/intersection_day_960x540.mp4\n  \
edge-agent bench --input clip.mp4 --streams 4 --frames 300 --json bench.json --plot stages.svg\n  \
edge-agent bench --input clip.mp4 --config samples/intersection_day_960x540.toml --threads 1";

#[derive(Debug, Args)]
pub struct BenchCmd {
    /// Clip to replay; every stream decodes its own copy, every frame (file mode).
    #[arg(long)]
    pub input: String,
    /// Bundled model name or path to an .onnx with a .toml manifest beside it
    /// (default: the config camera's model, else yolox_nano).
    #[arg(long)]
    pub model: Option<String>,
    /// Independent cameras to run at once, each with its own source, detector and tracker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub streams: u16,
    /// Frames per stream (default: the whole clip).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: Option<u64>,
    /// ONNX Runtime intra-op threads per detector (default: the config camera's, else 1;
    /// `--threads 2` is the set-up before one-thread workers became the default).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: Option<u64>,
    /// Let ONNX Runtime's intra-op threads spin while idle (default: off, or the config's).
    #[arg(long)]
    pub spinning: bool,
    /// Take tracker, classes, lines, zones and detector settings from this agent config.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Camera of --config to use (default: the first).
    #[arg(long, requires = "config")]
    pub camera: Option<String>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also draw per-stage p50/p99 time as an SVG bar chart here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DetectCmd {
    /// Bundled model name (see `edge-agent models`) or path to an .onnx with a .toml manifest
    /// beside it (default: the --config camera's, else yolox_nano).
    #[arg(long)]
    pub model: Option<String>,
    /// Video file, image, or URI (default: the --config camera's source).
    #[arg(long, required_unless_present = "config")]
    pub input: Option<String>,
    /// Detect as this agent config's camera does: its model and detector settings (input
    /// size, tiles, region of interest, lowest class threshold); the flags below override them.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Camera of --config (default: the first).
    #[arg(long, requires = "config")]
    pub camera: Option<String>,
    /// CSV output (default: stdout). Columns: frame,x,y,w,h,label,score (source pixels).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Minimum score (default: the model's manifest).
    #[arg(long)]
    pub score: Option<f32>,
    /// Model input size WxH, for models that accept several (e.g. 960x544).
    #[arg(long, value_parser = parse_size, conflicts_with = "input_long_side")]
    pub input_size: Option<(u32, u32)>,
    /// Aspect-matched input for models that take any multiple of 32: this long side, never
    /// above the frame's own size (e.g. 1280: 1280×720 → 1280×736).
    #[arg(long)]
    pub input_long_side: Option<u32>,
    /// ONNX Runtime threads (default: the --config camera's, else 1).
    #[arg(long)]
    pub threads: Option<usize>,
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
    /// Serve `/metrics` (Prometheus) and `/health` (JSON) on this address, e.g.
    /// 127.0.0.1:9108; overrides the config's `http_listen`.
    #[arg(long)]
    pub http_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("part").required(true).multiple(true).args(["gt", "mot_gt", "counts_gt", "incidents_gt", "signals_gt"])))]
pub struct EvalCmd {
    /// Detection ground truth CSV: frame,x,y,w,h,label.
    #[arg(long, requires = "pred")]
    pub gt: Option<PathBuf>,
    /// Predictions CSV from `edge-agent detect` (frame,x,y,w,h,label,score).
    #[arg(long, requires = "gt")]
    pub pred: Option<PathBuf>,
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
    /// MOT ground truth: frame,track_id,x,y,w,h[,…] (header optional, extra columns ignored;
    /// MOTChallenge gt.txt reads as is).
    #[arg(long, requires = "mot_pred")]
    pub mot_gt: Option<PathBuf>,
    /// Tracks to score, same format (e.g. from `edge-agent track`).
    #[arg(long, requires = "mot_gt")]
    pub mot_pred: Option<PathBuf>,
    /// Score only the frames the track CSV has rows for (a track CSV made at a reduced
    /// `--max-detect-fps` has none for the frames it skipped).
    #[arg(long, requires = "mot_gt")]
    pub mot_pred_frames_only: bool,
    /// Score only frames FIRST-LAST (inclusive), e.g. the span a ground truth covers.
    #[arg(long, value_parser = parse_frame_span, requires = "mot_gt")]
    pub mot_frames: Option<(u64, u64)>,
    /// Score only boxes whose bottom centre lies in X1,Y1,X2,Y2 (pixels), on both sides.
    #[arg(long, value_parser = parse_region, requires = "mot_gt")]
    pub mot_region: Option<[f32; 4]>,
    /// Least IoU for a track box to match a ground-truth box (MOT metrics).
    #[arg(long, default_value_t = 0.5)]
    pub iou: f32,
    /// Hand counts CSV: line_id,direction,class,count (class `all`, `two_wheeler` or one
    /// traffic class); scored against `--events`, or against each rate of `--counts-sweep`.
    #[arg(long)]
    pub counts_gt: Option<PathBuf>,
    /// Events (JSON lines) from `edge-agent run --events`: its line_crossing events are
    /// counted (`--counts-gt`), its incidents scored (`--incidents-gt`).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Hand-made incident ground truth CSV: kind,from_frame,to_frame,x,y,w,h,class,note
    /// (normalised box); precision and recall per kind of `--events`' incidents.
    #[arg(long, requires_all = ["events", "clip_size", "clip_fps"])]
    pub incidents_gt: Option<PathBuf>,
    /// The clip's frame size WIDTHxHEIGHT (to place the ground truth's normalised boxes).
    #[arg(long, value_parser = parse_frame_size, requires = "incidents_gt")]
    pub clip_size: Option<FrameSize>,
    /// The clip's frame rate (the ground truth counts frames).
    #[arg(long, requires = "incidents_gt")]
    pub clip_fps: Option<f64>,
    /// Hand-labelled signal phases (`samples/*.signals.toml`): the lamp classifier's accuracy
    /// on every frame of the clip it names.
    #[arg(long)]
    pub signals_gt: Option<PathBuf>,
    /// The clip of `--signals-gt` (default: its `clip` in ../../shared/samples beside it).
    #[arg(long, requires = "signals_gt")]
    pub signals_clip: Option<PathBuf>,
    /// Count only this camera's events (needed when the events file holds several cameras);
    /// with `--counts-sweep`, the config's camera to sweep (default: its first).
    #[arg(long)]
    pub camera: Option<String>,
    /// Line counts of `--config`'s camera at each of `--rates` against `--counts-gt`: the clip
    /// is detected once (every frame), then replayed at each rate's `max_detect_fps` schedule.
    #[arg(long, requires_all = ["config", "counts_gt"], conflicts_with = "events")]
    pub counts_sweep: bool,
    /// Agent config (TOML) whose camera `--counts-sweep` runs (its source must be a file).
    #[arg(long, requires = "counts_sweep")]
    pub config: Option<PathBuf>,
    /// Detection rates of the sweep: `all` (every frame) or detected frames per second.
    #[arg(long, value_delimiter = ',', default_value = "all,12.5,5,2.5", value_parser = crate::eval::sweep::Rate::parse, requires = "counts_sweep")]
    pub rates: Vec<crate::eval::sweep::Rate>,
    /// Keep the sweep's detections in this file and reuse them while the camera's source and
    /// detector set-up are unchanged (re-running after a tracker change takes seconds).
    #[arg(long, requires = "counts_sweep")]
    pub detections_cache: Option<PathBuf>,
    /// Also write the report as JSON here ({"detection", "mot", "counts"}, the parts asked for).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrackCmd {
    /// Agent config (TOML): the camera's source, model, classes, tracker and detection rules
    /// are used as `edge-agent run` uses them.
    #[arg(long)]
    pub config: PathBuf,
    /// Camera id (default: the first camera). Its source must be a file.
    #[arg(long)]
    pub camera: Option<String>,
    /// CSV output: frame,track_id,x,y,w,h,class,score (source pixels, decoded frame index from 0).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many decoded frames (default: the whole clip).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: Option<u64>,
    /// Detect (and track) at most this many frames a second of stream time, overriding the
    /// camera's `max_detect_fps` (rows are written for the detected frames only).
    #[arg(long, value_parser = parse_detect_fps)]
    pub max_detect_fps: Option<f64>,
}

/// A frame size, `WIDTHxHEIGHT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
}

fn parse_frame_size(s: &str) -> Result<FrameSize, String> {
    let (w, h) = s.split_once('x').ok_or_else(|| format!("'{s}' is not WIDTHxHEIGHT"))?;
    let n = |v: &str| v.trim().parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| format!("'{s}' is not WIDTHxHEIGHT"));
    Ok(FrameSize { width: n(w)?, height: n(h)? })
}

fn parse_frame_span(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or("expected FIRST-LAST, e.g. 8-67")?;
    let a: u64 = a.trim().parse().map_err(|_| format!("bad first frame '{a}'"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("bad last frame '{b}'"))?;
    if a > b {
        return Err(format!("first frame {a} is after last frame {b}"));
    }
    Ok((a, b))
}

fn parse_region(s: &str) -> Result<[f32; 4], String> {
    let v: Vec<f32> = s.split(',').map(|x| x.trim().parse::<f32>().map_err(|_| format!("bad number '{x}'"))).collect::<Result<_, _>>()?;
    match v[..] {
        [x1, y1, x2, y2] if v.iter().all(|x| x.is_finite()) && x1 < x2 && y1 < y2 => Ok([x1, y1, x2, y2]),
        _ => Err(format!("'{s}' is not X1,Y1,X2,Y2 with X1 < X2 and Y1 < Y2")),
    }
}

fn parse_detect_fps(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && (0.1..=240.0).contains(&f) => Ok(f),
        _ => Err(format!("'{s}' is not a detection rate in frames per second (0.1–240)")),
    }
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
    /// Send the clip's own H.264 without re-encoding (almost no CPU; the clip must be H.264).
    #[arg(long)]
    pub passthrough: bool,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("expected WxH, e.g. 960x544")?;
    let w = w.parse().map_err(|_| format!("bad width '{w}'"))?;
    let h = h.parse().map_err(|_| format!("bad height '{h}'"))?;
    Ok((w, h))
}
