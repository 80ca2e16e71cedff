//! Shared kit of the MQTT end-to-end tests (`agent_mqtt`, `mqtt_tls`): a real subscriber on
//! `roadsight/v1/#`, the spawned `edge-agent run` process, and helpers to sort out what the
//! subscriber got. Include it after `common`:
//! `#[path = "common/mod.rs"] mod common;` then `#[path = "common/mqtt.rs"] mod mqtt_kit;`.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use super::common::edge_agent_bin;
use roadsight_events::topics;

/// Site, agent and camera ids of `samples/intersection_day_960x540.toml`, the config whose
/// lines both suites reuse, and its clip.
pub const SITE: &str = "samples";
pub const AGENT: &str = "sample-agent";
pub const CAMERA: &str = "intersection_day";
pub const CLIP: &str = "intersection_day_960x540.mp4";

/// The agent tests share the 2-core machine with the agent's detector (and the RTSP encoder),
/// so they run one at a time within a test binary to keep timings predictable.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// A real MQTT subscriber on `roadsight/v1/#`, recording every message it gets.

#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| panic!("{}: payload is not JSON: {e}", self.topic))
    }
}

pub struct Subscriber {
    messages: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects with `options` (plain or TLS, built by the caller), subscribes to
    /// `roadsight/v1/#` at QoS 1 and waits for the SUBACK. It subscribes on every CONNACK
    /// without a session: always for a clean session; for a persistent one (clean_session
    /// false, stable id) only when the broker kept no session across a restart.
    pub fn start(options: MqttOptions) -> Subscriber {
        let (client_id, (host, port)) = (options.client_id(), options.broker_address());
        let messages: Arc<Mutex<Vec<Received>>> = Arc::default();
        let subscribed = Arc::new(AtomicBool::new(false));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let (messages, subscribed) = (Arc::clone(&messages), Arc::clone(&subscribed));
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
                rt.block_on(async move {
                    let (client, mut eventloop) = AsyncClient::new(options, 16);
                    loop {
                        // Only cancelled at shutdown, when losing a message no longer matters.
                        let event = tokio::select! {
                            _ = &mut stop_rx => break,
                            e = eventloop.poll() => e,
                        };
                        match event {
                            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                                if !ack.session_present {
                                    client.try_subscribe("roadsight/v1/#", QoS::AtLeastOnce).expect("queue SUBSCRIBE");
                                }
                            }
                            Ok(Event::Incoming(Packet::SubAck(_))) => subscribed.store(true, Ordering::SeqCst),
                            Ok(Event::Incoming(Packet::Publish(p))) => {
                                let r = Received { topic: p.topic.to_string(), payload: p.payload.to_vec(), retain: p.retain };
                                messages.lock().expect("messages").push(r);
                            }
                            Ok(_) => {}
                            // rumqttc retries at once when polled again: pace it (broker down).
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    }
                });
            })
        };
        // Generous: a TLS handshake on the shared, busy machine can be slow.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !subscribed.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "subscriber {client_id} got no SUBACK from {host}:{port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Subscriber { messages, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Everything received so far, in arrival order.
    pub fn all(&self) -> Vec<Received> {
        self.messages.lock().expect("messages").clone()
    }

    /// Polls until `done` holds for what was received so far and returns that; panics after
    /// `timeout`, naming `what` and showing the agent's log.
    pub fn wait_until(&self, what: &str, timeout: Duration, agent_log: &Path, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.all();
            if done(&all) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; {} messages received; agent log:\n{}",
                all.len(),
                std::fs::read_to_string(agent_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the subscriber got, sorted out.

/// The messages on `topic`, as JSON, in arrival order.
pub fn json_on(all: &[Received], topic: &str) -> Vec<Value> {
    all.iter().filter(|m| m.topic == topic).map(Received::json).collect()
}

/// The messages on `topic`, as text, in arrival order.
pub fn text_on(all: &[Received], topic: &str) -> Vec<String> {
    all.iter().filter(|m| m.topic == topic).map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect()
}

/// The sample camera's events-topic messages, as JSON, in arrival order.
pub fn events(all: &[Received]) -> Vec<Value> {
    json_on(all, &topics::events(SITE, CAMERA))
}

/// The sample agent's status messages (`online`, `offline`), in arrival order.
pub fn agent_status(all: &[Received]) -> Vec<String> {
    text_on(all, &topics::agent_status(SITE, AGENT))
}

pub fn is_status(e: &Value, state: &str) -> bool {
    e["type"] == "camera_status" && e["state"] == state
}

// ---------------------------------------------------------------------------------------------
// The agent's process.

/// A running `edge-agent run`, its stderr appended to a log file; killed when dropped.
pub struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    /// `edge-agent run` on `config` and `state`, waiting up to `drain_secs` for the broker's
    /// acknowledgements at exit, logging at `rust_log` into `log`.
    pub fn spawn(config: &Path, state: &Path, log: &Path, drain_secs: u64, rust_log: &str) -> AgentProcess {
        let child = Command::new(edge_agent_bin())
            .args(["run", "--config"])
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .args(["--drain-timeout-secs", &drain_secs.to_string()])
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::options().create(true).append(true).open(log).expect("agent log"))
            .spawn()
            .expect("spawn edge-agent");
        AgentProcess { child, log: log.to_path_buf() }
    }

    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL edge-agent");
        self.child.wait().expect("reap edge-agent");
    }

    /// Ctrl-C: the agent stops its cameras and drains its outbox before exiting.
    pub fn interrupt(&self) {
        let ok = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status().expect("kill -INT");
        assert!(ok.success(), "kill -INT failed");
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "edge-agent still running after {timeout:?}; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
