//! `edge-agent preview`: a camera's lines and zones (and optionally detections) drawn over one
//! of its frames, to check a config by eye. The arrow on each line points to the side a
//! `forward` crossing ends on.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use image::Rgb;
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};

use crate::config::AgentConfig;
use crate::draw;
use crate::model::load_detector;

pub fn preview(config: &AgentConfig, camera: Option<&str>, frame_index: u64, detect: bool, out: &Path) -> anyhow::Result<()> {
    let cam = config.camera(camera)?;
    let mut source = VideoSource::open(&SourceSpec::new(cam.source.clone(), Pacing::EveryFrame))?;
    let frame = loop {
        match source.next(Duration::from_secs(30))? {
            SourceEvent::Frame(f) if f.time.index >= frame_index => break f,
            SourceEvent::Frame(_) => continue,
            SourceEvent::Eos => anyhow::bail!("{}: the stream ended before frame {frame_index}", cam.display_source()),
            SourceEvent::Timeout => anyhow::bail!("{}: no frame for 30 s", cam.display_source()),
        }
    };
    let view = frame.view();
    let mut img = draw::to_image(&view);
    let (w, h) = (view.width as f32, view.height as f32);
    if detect {
        let mut detector = load_detector(&cam.model, &cam.detector, &config.ort_lib)?;
        for d in detector.detect(&view)?.to_vec() {
            draw::rect(&mut img, &d.bbox, Rgb([0, 200, 255]), 1);
        }
    }
    for z in &cam.analytics.zones {
        let pts: Vec<(f32, f32)> = z.polygon.iter().map(|p| (p.0 * w, p.1 * h)).collect();
        draw::polygon(&mut img, &pts, Rgb([255, 220, 0]), 2);
    }
    for l in &cam.analytics.lines {
        draw::counting_line(&mut img, (l.from.0 * w, l.from.1 * h), (l.to.0 * w, l.to.1 * h), Rgb([255, 40, 40]));
    }
    img.save(out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
