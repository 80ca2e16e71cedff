//! `edge-agent run`: every configured camera on its own worker thread, one shared detector
//! worker, one delivery thread (MQTT or JSON lines) draining the durable outbox.
//!
//! Start-up loads every camera's model first, so a wrong model file fails the command before
//! anything streams. A failing camera never stops the others. A reload (SIGHUP or a change of
//! the file) starts, stops or restarts only the cameras whose config changed. Shutdown
//! (SIGINT / SIGTERM, or all file sources ended) stops the sources, lets each camera emit its
//! last counts and `stopped` status, then drains and flushes the sink.

pub mod camera;
pub mod cameras;
pub mod detect_cap;
pub mod detection;
pub mod evidence;
pub mod mqtt;
pub mod ops_http;
pub mod outbox;
pub mod processor;
pub mod reload;
pub mod signals;
pub mod sink;
pub mod stamp;
pub mod telemetry;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::AgentConfig;
use camera::{CameraSummary, Shared};
use cameras::CameraSet;
use outbox::Outbox;

/// Where delivered events go.
pub enum Delivery {
    /// JSON lines to this file (appended), or stdout.
    JsonLines(Option<std::path::PathBuf>),
    /// To this broker (the agent's status topic comes from the config).
    Mqtt(roadsight_mqtt_link::BrokerSettings),
}

pub struct RunOptions {
    pub stall_timeout: Duration,
    pub delivery: Delivery,
    /// How long shutdown waits for the broker to take what is left in the outbox.
    pub drain_timeout: Duration,
    /// Serve `/metrics` and `/health` here.
    pub http_listen: Option<std::net::SocketAddr>,
    /// Hot reload: re-reads the config on SIGHUP (`hangup` set) or when the file changes.
    pub reload: Option<Reload>,
}

/// How to re-read the config for a hot reload.
pub struct Reload {
    pub path: std::path::PathBuf,
    pub hangup: Arc<AtomicBool>,
    /// Loads and validates the config as the command line did (same overrides).
    pub load: Box<dyn Fn() -> anyhow::Result<AgentConfig> + Send>,
}

/// Runs all cameras to completion (file sources) or until `stop` is set, then delivers what
/// is left in the outbox (files: all of it; MQTT: for up to `drain_timeout`).
pub fn run(
    config: &AgentConfig,
    stop: Arc<AtomicBool>,
    options: &RunOptions,
) -> anyhow::Result<Vec<(String, anyhow::Result<CameraSummary>)>> {
    let outbox = Arc::new(Outbox::open(&config.state_dir.join("outbox.sqlite"), config.outbox_max_bytes)?);
    let telemetry = telemetry::Telemetry::new();
    // The operations endpoint stops with the agent (or when every file camera has ended).
    let ops_stop = Arc::new(AtomicBool::new(false));
    let ops = match options.http_listen {
        Some(addr) => Some(ops_http::start(
            addr,
            Arc::clone(&telemetry),
            Arc::clone(&outbox),
            &config.site_id,
            &config.agent_id,
            Arc::clone(&ops_stop),
        )?),
        None => None,
    };
    let signal_board = Arc::new(signals::SignalBoard::default());
    let clip_scratch = config.state_dir.join("clips");
    std::fs::create_dir_all(&clip_scratch).with_context(|| format!("creating {}", clip_scratch.display()))?;
    let shared = Arc::new(Shared {
        site_id: config.site_id.clone(),
        agent_id: config.agent_id.clone(),
        outbox: Arc::clone(&outbox),
        clip_scratch,
        signals: Arc::clone(&signal_board),
        stall_timeout: options.stall_timeout,
        telemetry,
    });
    // Every camera's model loads now: a wrong model fails the command before anything streams.
    let workers = config.detector_workers.unwrap_or_else(detection::DetectorPool::default_workers);
    let mut cameras = CameraSet::new(Arc::clone(&shared), config.ort_lib.clone(), workers, config.cameras.len())?;
    for cam in &config.cameras {
        if let Err(e) = cameras.start(cam.clone()) {
            // Cameras stop on their own flags (set by `finish`); the endpoint on its own.
            cameras.finish();
            ops_stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    }
    // Delivery stops after the cameras: it drains what they stored.
    let delivery_stop = Arc::new(AtomicBool::new(false));
    let delivery = {
        let outbox = Arc::clone(&outbox);
        let dstop = Arc::clone(&delivery_stop);
        let telemetry = Arc::clone(&shared.telemetry);
        let drain = options.drain_timeout;
        let target = match &options.delivery {
            Delivery::JsonLines(Some(p)) => Ok(sink::JsonLinesSink::file(p)?),
            Delivery::JsonLines(None) => Ok(sink::JsonLinesSink::stdout()),
            Delivery::Mqtt(broker) => {
                Err(mqtt::MqttSettings::new(broker.clone(), &config.site_id, &config.agent_id).with_signals(Arc::clone(&signal_board)))
            }
        };
        std::thread::Builder::new()
            .name("delivery".into())
            .spawn(move || match target {
                Ok(file) => file.run(&outbox, &dstop, &telemetry),
                Err(settings) => mqtt::run(&settings, &outbox, &dstop, drain, &telemetry),
            })
            .context("starting event delivery")?
    };
    let mut watch = options.reload.as_ref().map(|r| reload::ReloadWatch::new(r.path.clone(), Arc::clone(&r.hangup)));
    while !stop.load(Ordering::Relaxed) && cameras.reap() {
        if let (Some(w), Some(r)) = (watch.as_mut(), options.reload.as_ref()) {
            if w.due() {
                apply_reload(config, r, &mut cameras);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let results = cameras.finish();
    ops_stop.store(true, Ordering::Relaxed);
    if let Some(ops) = ops {
        let _ = ops.join();
    }
    delivery_stop.store(true, Ordering::Relaxed);
    let delivered = delivery.join().map_err(|_| anyhow::anyhow!("event delivery panicked"))??;
    let left = outbox.depth()?;
    tracing::info!("{delivered} messages delivered, {left} left in the outbox");
    if left > 0 {
        eprintln!("{left} messages are still in the outbox; they are delivered at the next start");
    }
    Ok(results)
}

/// Re-reads the config and applies its camera list; a config that does not validate changes
/// nothing (every error is logged). Agent-wide settings need a restart.
fn apply_reload(running: &AgentConfig, reload: &Reload, cameras: &mut CameraSet) {
    let new = match (reload.load)() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload of {}: {e:#}; keeping the running config", reload.path.display());
            return;
        }
    };
    if changes_need_restart(&new, running) {
        tracing::warn!(
            "reload: site_id, agent_id, state_dir, http_listen, detector_workers and [mqtt] changes take effect at the next restart"
        );
    }
    let done = cameras.reconcile(new.cameras);
    tracing::info!(
        added = ?done.added, removed = ?done.removed, restarted = ?done.restarted, failed = done.failed.len(),
        "reloaded {}", reload.path.display()
    );
}

/// Whether `new` changes settings that only a restart applies (site, agent, state, endpoint,
/// workers, broker connection).
fn changes_need_restart(new: &AgentConfig, running: &AgentConfig) -> bool {
    // Debug text stands in for equality (the settings hold no PartialEq; passwords print redacted).
    new.site_id != running.site_id
        || new.agent_id != running.agent_id
        || new.state_dir != running.state_dir
        || new.http_listen != running.http_listen
        || new.detector_workers != running.detector_workers
        || format!("{:?}", new.mqtt) != format!("{:?}", running.mqtt)
        // A new password alone (redacted in the Debug text) is a change too.
        || new.mqtt.as_ref().map(|m| &m.credentials) != running.mqtt.as_ref().map(|m| &m.credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_broker_password_alone_needs_a_restart() {
        let config = |password: &str, cameras: &str| {
            let text = format!("site_id = \"s\"\nagent_id = \"a\"\n[mqtt]\nurl = \"mqtt://broker\"\nusername = \"u\"\npassword = \"{password}\"\n{cameras}");
            crate::config::parse(&text, std::path::Path::new("agent.toml")).expect("valid")
        };
        let cam = |id: &str| format!("[[cameras]]\nid = \"{id}\"\nsource = \"rtsp://10.0.0.1/s\"\n");
        let running = config("old-secret", &cam("c1"));
        assert!(changes_need_restart(&config("new-secret", &cam("c1")), &running));
        assert!(!changes_need_restart(&config("old-secret", &(cam("c1") + &cam("c2"))), &running), "cameras reload live");
    }
}
