//! `edge-agent run`: every configured camera on its own worker thread, one event sink.
//!
//! Start-up loads every camera's model first, so a wrong model file fails the command before
//! anything streams. A failing camera never stops the others. Shutdown (Ctrl-C / SIGTERM, or
//! all file sources ended) stops the sources, lets each camera emit its last counts and
//! `stopped` status, then drains and flushes the sink.

pub mod camera;
pub mod processor;
pub mod sink;
pub mod stamp;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::config::AgentConfig;
use crate::model::load_detector;
use camera::{CameraSummary, CameraWorker, Shared};
use sink::EventSink;

pub struct RunOptions {
    pub stall_timeout: Duration,
}

/// Runs all cameras to completion (file sources) or until `stop` is set.
pub fn run(
    config: &AgentConfig,
    sink: Box<dyn EventSink>,
    stop: Arc<AtomicBool>,
    options: &RunOptions,
) -> anyhow::Result<Vec<(String, anyhow::Result<CameraSummary>)>> {
    let mut detectors = Vec::new();
    for cam in &config.cameras {
        let det = load_detector(&cam.model, &cam.detector, &config.ort_lib)
            .with_context(|| format!("camera {}", cam.id))?;
        detectors.push(det);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(sink::EVENT_CHANNEL_CAPACITY);
    let shared = Shared {
        site_id: config.site_id.clone(),
        agent_id: config.agent_id.clone(),
        state_dir: config.state_dir.clone(),
        events: tx,
        stop,
        stall_timeout: options.stall_timeout,
    };
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {percent:>3}% {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let sink_thread = std::thread::Builder::new()
        .name("event-sink".into())
        .spawn(move || sink::drain_into(rx, sink))
        .context("starting the event sink")?;
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = config
            .cameras
            .iter()
            .zip(detectors)
            .map(|(cam, detector)| {
                let bar = bars.add(ProgressBar::new(0).with_style(style.clone()).with_prefix(cam.id.clone()));
                let shared = &shared;
                let handle = std::thread::Builder::new()
                    .name(format!("cam-{}", cam.id))
                    .spawn_scoped(scope, move || CameraWorker::new(cam, shared, detector, bar)?.run());
                (cam.id.clone(), handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(id, h)| {
                let r = match h {
                    Ok(h) => h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("camera worker panicked"))),
                    Err(e) => Err(anyhow::Error::from(e).context("starting camera worker")),
                };
                (id, r)
            })
            .collect::<Vec<_>>()
    });
    drop(shared); // closes the channel: the sink drains and flushes
    let written = sink_thread.join().map_err(|_| anyhow::anyhow!("event sink panicked"))??;
    tracing::info!("{written} events written");
    Ok(results)
}
