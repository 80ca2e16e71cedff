//! `edge-agent detect`: one CSV row per detection on every decoded frame of a clip.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use roadsight_pipeline::detect::DetectorOptions;
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};

use crate::model::load_detector;

pub struct DetectArgs<'a> {
    pub model: &'a str,
    pub input: &'a str,
    pub out: Option<&'a Path>,
    pub options: DetectorOptions,
    pub ort_lib: &'a Path,
}

pub struct DetectSummary {
    pub frames: u64,
    pub detections: u64,
    pub elapsed: Duration,
}

pub fn detect(args: DetectArgs<'_>) -> anyhow::Result<DetectSummary> {
    let mut detector = load_detector(args.model, &args.options, args.ort_lib)?;
    let mut source = VideoSource::open(&SourceSpec::new(args.input, Pacing::EveryFrame))?;
    let mut out: Box<dyn Write> = match args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    writeln!(out, "frame,x,y,w,h,label,score")?;
    let bar = ProgressBar::new(source.duration().map_or(0, |d| d.as_millis() as u64));
    bar.set_style(ProgressStyle::with_template("detect [{bar:30}] {percent:>3}% {msg}").expect("template").progress_chars("=> "));
    let labels = detector.labels().to_vec();
    let started = Instant::now();
    let (mut frames, mut count) = (0u64, 0u64);
    loop {
        let frame = match source.next(Duration::from_secs(30))? {
            SourceEvent::Frame(f) => f,
            SourceEvent::Eos => break,
            SourceEvent::Timeout => anyhow::bail!("{}: no frame decoded for 30 s", source.location()),
        };
        let view = frame.view();
        for d in detector.detect(&view)? {
            let [x, y, w, h] = d.bbox.xywh();
            writeln!(out, "{},{x:.2},{y:.2},{w:.2},{h:.2},{},{:.4}", frame.time.index, labels.get(d.class_id as usize).map_or("?", String::as_str), d.score)?;
            count += 1;
        }
        frames += 1;
        bar.set_position(frame.time.pts.as_millis() as u64);
        bar.set_message(format!("{frames} frames"));
    }
    out.flush()?;
    bar.finish_and_clear();
    if frames == 0 {
        anyhow::bail!("{}: no video frame decoded", source.location());
    }
    Ok(DetectSummary { frames, detections: count, elapsed: started.elapsed() })
}
