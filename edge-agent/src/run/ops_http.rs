//! The agent's local operations endpoint (`http_listen` in the config, or `--http-listen`):
//! `GET /metrics` (Prometheus text) and `GET /health` (JSON: every camera's state, fps,
//! frames, drops, reconnects, last-frame age; the outbox). Read-only, no credentials in it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::outbox::Outbox;
use super::telemetry::{CameraHealth, DeliveryHealth, Telemetry};

#[derive(Clone)]
struct Ops {
    telemetry: Arc<Telemetry>,
    outbox: Arc<Outbox>,
    site_id: String,
    agent_id: String,
}

impl Ops {
    fn refresh_outbox(&self) -> OutboxHealth {
        let depth = self.outbox.depth().unwrap_or(-1);
        let bytes = self.outbox.stored_bytes();
        let capacity = self.outbox.capacity_bytes();
        self.telemetry.outbox(depth, bytes, capacity);
        let fill_percent = (bytes as f64 * 1000.0 / capacity.max(1) as f64).round() / 10.0;
        OutboxHealth { depth, bytes, fill_percent, full: self.outbox.is_full() }
    }
}

#[derive(Serialize)]
struct OutboxHealth {
    depth: i64,
    bytes: i64,
    /// Bytes stored as a percentage of `outbox_max_mb`.
    fill_percent: f64,
    full: bool,
}

#[derive(Serialize)]
struct AgentHealth {
    /// `ok` when every camera is running, the broker connected and the outbox has room,
    /// else `degraded`.
    status: &'static str,
    site_id: String,
    agent_id: String,
    outbox: OutboxHealth,
    delivery: DeliveryHealth,
    cameras: std::collections::BTreeMap<String, CameraHealth>,
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    ops.refresh_outbox();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], ops.telemetry.render())
}

async fn health(State(ops): State<Ops>) -> Json<AgentHealth> {
    let outbox = ops.refresh_outbox();
    let cameras = ops.telemetry.cameras();
    let delivery = ops.telemetry.delivery();
    let broker_ok = delivery.transport != "mqtt" || delivery.connected;
    let healthy = !outbox.full && broker_ok && cameras.values().all(|c| c.state == "running");
    Json(AgentHealth {
        status: if healthy { "ok" } else { "degraded" },
        site_id: ops.site_id.clone(),
        agent_id: ops.agent_id.clone(),
        outbox,
        delivery,
        cameras,
    })
}

/// Serves until `stop` is set. Binds before returning, so a port in use fails the start.
pub fn start(
    listen: SocketAddr,
    telemetry: Arc<Telemetry>,
    outbox: Arc<Outbox>,
    site_id: &str,
    agent_id: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("http_listen: cannot listen on {listen}"))?;
    let ops = Ops { telemetry, outbox, site_id: site_id.to_owned(), agent_id: agent_id.to_owned() };
    let app = Router::new().route("/metrics", get(metrics)).route("/health", get(health)).with_state(ops);
    tracing::info!("operations endpoint on http://{listen} (/metrics, /health)");
    std::thread::Builder::new()
        .name("ops-http".into())
        .spawn(move || {
            let shutdown = async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            if let Err(e) = rt.block_on(async { axum::serve(listener, app).with_graceful_shutdown(shutdown).await }) {
                tracing::error!("operations endpoint: {e}");
            }
        })
        .context("starting the operations endpoint")
}
