//! `edge-agent run`: every configured camera on its own worker thread, one event sink.
//!
//! Start-up loads every camera's model first, so a wrong model file fails the command before
//! anything streams. A failing camera never stops the others. Shutdown (Ctrl-C / SIGTERM, or
//! all file sources ended) stops the sources, lets each camera emit its last counts and
//! `stopped` status, then drains and flushes the sink.

pub mod camera;
pub mod detection;
pub mod mqtt;
pub mod outbox;
pub mod processor;
pub mod sink;
pub mod stamp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::config::AgentConfig;
use camera::{CameraSummary, CameraWorker, Shared};
use outbox::Outbox;

/// Where delivered events go.
pub enum Delivery {
    /// JSON lines to this file (appended), or stdout.
    JsonLines(Option<std::path::PathBuf>),
    Mqtt(mqtt::MqttSettings),
}

pub struct RunOptions {
    pub stall_timeout: Duration,
    pub delivery: Delivery,
    /// How long shutdown waits for the broker to take what is left in the outbox.
    pub drain_timeout: Duration,
}

/// Runs all cameras to completion (file sources) or until `stop` is set, then delivers what
/// is left in the outbox (files: all of it; MQTT: for up to `drain_timeout`).
pub fn run(
    config: &AgentConfig,
    stop: Arc<AtomicBool>,
    options: &RunOptions,
) -> anyhow::Result<Vec<(String, anyhow::Result<CameraSummary>)>> {
    // One detector worker for every camera (models load now: a wrong model fails the command
    // before anything streams).
    let (detector_worker, detectors) = detection::DetectorWorker::start(config)?;
    let outbox = Arc::new(Outbox::open(&config.state_dir.join("outbox.sqlite"), config.outbox_max_bytes)?);
    let shared = Shared {
        site_id: config.site_id.clone(),
        agent_id: config.agent_id.clone(),
        outbox: Arc::clone(&outbox),
        stop: Arc::clone(&stop),
        stall_timeout: options.stall_timeout,
    };
    // Delivery stops after the cameras: it drains what they stored.
    let delivery_stop = Arc::new(AtomicBool::new(false));
    let delivery = {
        let outbox = Arc::clone(&outbox);
        let dstop = Arc::clone(&delivery_stop);
        let drain = options.drain_timeout;
        let target = match &options.delivery {
            Delivery::JsonLines(Some(p)) => Ok(sink::JsonLinesSink::file(p)?),
            Delivery::JsonLines(None) => Ok(sink::JsonLinesSink::stdout()),
            Delivery::Mqtt(settings) => Err(settings.clone()),
        };
        std::thread::Builder::new()
            .name("delivery".into())
            .spawn(move || match target {
                Ok(file) => file.run(&outbox, &dstop),
                Err(settings) => mqtt::run(&settings, &outbox, &dstop, drain),
            })
            .context("starting event delivery")?
    };
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {percent:>3}% {msg}")
        .expect("valid template")
        .progress_chars("=> ");
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
    // Every camera handle is gone: the detector worker ends.
    detector_worker.join();
    delivery_stop.store(true, Ordering::Relaxed);
    let delivered = delivery.join().map_err(|_| anyhow::anyhow!("event delivery panicked"))??;
    let left = outbox.depth()?;
    tracing::info!("{delivered} messages delivered, {left} left in the outbox");
    if left > 0 {
        eprintln!("{left} messages are still in the outbox; they are delivered at the next start");
    }
    Ok(results)
}
