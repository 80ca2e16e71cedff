//! `edge-agent run` delivering over MQTT end to end: a shared clip served over real RTSP (or
//! read from the file), the real `edge-agent` binary, a real Mosquitto and a real subscriber.
//! Faults are real too: the broker is stopped for 30 s, the agent is SIGKILLed and restarted,
//! the broker sits behind a slow link (a delaying TCP proxy).
//!
//! The tests share the 2-core machine with the agent's detector and the RTSP encoder,
//! so they run one at a time (a process-wide lock) to keep timings predictable.

#[path = "common/mod.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt_kit;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{repo_root, sample};
use edge_agent::run::outbox::Outbox;
use mqtt_kit::{agent_status, events, is_status, json_on, serial, AgentProcess, Received, Subscriber, AGENT, CAMERA, CLIP, SITE};
use roadsight_events::topics;
use roadsight_pipeline::source::rtsp_server::SimulatedCamera;
use roadsight_tests::mosquitto::Mosquitto;
use rumqttc::MqttOptions;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// A real MQTT subscriber on `roadsight/v1/#` (the shared kit's), on the plain listener.

/// A persistent (`clean_session` false, stable id) subscriber keeps its session in the broker
/// across broker restarts.
fn subscriber(port: u16, client_id: &str, persistent: bool) -> Subscriber {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_clean_session(!persistent);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(16 << 20, 16 << 20);
    Subscriber::start(options)
}

// ---------------------------------------------------------------------------------------------
// What the subscriber got, sorted out.

fn count(all: &[Received], pred: impl Fn(&Value) -> bool) -> usize {
    events(all).iter().filter(|e| pred(e)).count()
}

fn seq(e: &Value) -> u64 {
    e["seq"].as_u64().expect("seq is an integer")
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(roadsight_events::EVENT_SCHEMA_JSON).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("valid schema")
}

/// Every event validates against the published schema and parses as an [`roadsight_events::Event`]
/// of this site, camera and agent.
fn assert_valid(events: &[Value]) {
    let v = validator();
    for e in events {
        let errors: Vec<String> = v.iter_errors(e).map(|x| x.to_string()).collect();
        assert!(errors.is_empty(), "{e} does not validate against event-v1.schema.json: {errors:?}");
        let parsed: roadsight_events::Event = serde_json::from_value(e.clone()).expect("parses as an Event");
        assert_eq!((parsed.site_id.as_str(), parsed.camera_id.as_str(), parsed.agent_id.as_str()), (SITE, CAMERA, AGENT));
    }
}

/// The at-least-once contract, per camera: the first arrival of each `seq` comes in order and
/// covers 1..=max with no gap; a `seq` that arrives again is the very same event (same
/// `event_id`, same bytes). Returns the events by `seq` and how many arrived again.
fn assert_complete_in_order(events: &[Value]) -> (BTreeMap<u64, Value>, usize) {
    let mut by_seq: BTreeMap<u64, Value> = BTreeMap::new();
    let mut first_arrivals = Vec::new();
    let mut duplicates = 0;
    for e in events {
        let s = seq(e);
        match by_seq.get(&s) {
            Some(earlier) => {
                assert_eq!(earlier, e, "seq {s} arrived twice as two different events (a reused seq)");
                duplicates += 1;
            }
            None => {
                first_arrivals.push(s);
                by_seq.insert(s, e.clone());
            }
        }
    }
    let max = first_arrivals.iter().copied().max().expect("at least one event");
    assert_eq!(first_arrivals, (1..=max).collect::<Vec<_>>(), "events lost or out of order ({duplicates} duplicates seen)");
    eprintln!("{max} events, seq 1..={max} complete and in order, {duplicates} duplicates with identical ids");
    (by_seq, duplicates)
}

// ---------------------------------------------------------------------------------------------
// The agent: its config and its process.

fn spawn_agent(config: &Path, state: &Path, log: &Path) -> AgentProcess {
    AgentProcess::spawn(config, state, log, 30, "edge_agent=info")
}

/// The sample config of the clip (its lines, location, model), pointed at `source` in `mode`,
/// with steady counts and a `[mqtt]` section for the test broker.
fn write_config(dir: &Path, source: &str, mode: &str, counts_secs: f64, mqtt_port: u16) -> PathBuf {
    write_config_with(dir, source, mode, counts_secs, mqtt_port, "")
}

/// A zone over the whole picture where cars are not allowed: a `lane_restriction` incident
/// (and its evidence clip) for every car that stays a second — ten a minute after the flood
/// control — on the dense sample junction.
const NO_CARS_ZONE: &str = "\n[[cameras.zones]]\nid = \"no_cars\"\npolygon = [[0, 0], [1, 0], [1, 1], [0, 1]]\n\
                            lane = { not_allowed = [\"car\"], after_secs = 1.0 }\n";

/// As [`write_config`], with `camera_extra` (TOML) appended to the camera.
fn write_config_with(dir: &Path, source: &str, mode: &str, counts_secs: f64, mqtt_port: u16, camera_extra: &str) -> PathBuf {
    let template = std::fs::read_to_string(repo_root().join("samples/intersection_day_960x540.toml")).expect("sample config");
    assert!(template.contains(&format!("site_id = \"{SITE}\"")) && template.contains(&format!("agent_id = \"{AGENT}\"")));
    assert!(template.contains(&format!("id = \"{CAMERA}\"")));
    let mut out = String::new();
    let (mut has_source, mut has_counts) = (false, false);
    for line in template.lines() {
        if line.starts_with("[[cameras]]") {
            out.push_str(&format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\nkeep_alive_secs = 5\n\n"));
        }
        if line.starts_with("source = ") {
            has_source = true;
            out.push_str(&format!("source = {source:?}\nmode = \"{mode}\"\n"));
        } else if line.starts_with("counts_interval_secs = ") {
            has_counts = true;
            out.push_str(&format!("counts_interval_secs = {counts_secs}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(has_source && has_counts, "the sample config changed shape");
    out.push_str(camera_extra);
    let path = dir.join("agent.toml");
    std::fs::write(&path, out).expect("write config");
    path
}

/// A loopback TCP proxy that delays every byte by `delay` in each direction: a broker at the
/// far end of a slow link (a camera site on a mobile uplink), without touching the host's
/// network settings.
struct DelayProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    fn start(target: SocketAddr, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(target) {
                            Self::pipe(&client, &server, delay);
                            Self::pipe(&server, &client, delay);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        DelayProxy { port, stop }
    }

    /// Copies `from` to `to`, each chunk written `delay` after it was read.
    fn pipe(from: &TcpStream, to: &TcpStream, delay: Duration) {
        let (mut from, mut to) = (from.try_clone().expect("clone socket"), to.try_clone().expect("clone socket"));
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for (due, bytes) in rx {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if to.write_all(&bytes).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn outbox_depth(state: &Path) -> i64 {
    // Opening it from here is safe while the agent runs: SQLite WAL allows other readers.
    Outbox::open(&state.join("outbox.sqlite"), 1 << 30).expect("open the agent's outbox").depth().expect("outbox depth")
}

fn occurred_at(e: &Value) -> DateTime<Utc> {
    e["occurred_at"].as_str().expect("occurred_at").parse().expect("RFC 3339 occurred_at")
}

// ---------------------------------------------------------------------------------------------

/// Acceptance 1: RTSP in, real Mosquitto out. Every event reaches a real subscriber, valid
/// against the schema, seq 1..n in order; the camera's retained status and the agent's
/// `online` status are published; SIGKILL makes the broker publish the last will `offline`,
/// which stays retained for late subscribers.
#[test]
fn rtsp_camera_events_reach_a_real_subscriber_with_retained_status_and_last_will() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let camera = SimulatedCamera::start(&sample(CLIP), "127.0.0.1", 0, "/e2e").expect("serve the clip over RTSP");
    let broker = Mosquitto::start();
    let sub = subscriber(broker.port, "e2e-sub-rtsp", false);
    let config = write_config(dir.path(), &camera.url("127.0.0.1"), "live", 1.0, broker.port);
    let log = dir.path().join("agent.log");
    let mut agent = spawn_agent(&config, &dir.path().join("state"), &log);

    let camera_status_topic = topics::camera_status(SITE, CAMERA);
    let all = sub.wait_until("running status, 3 counts, agent online, retained camera status", Duration::from_secs(120), &log, |all| {
        count(all, |e| is_status(e, "running")) >= 1
            && count(all, |e| e["type"] == "counts") >= 3
            && agent_status(all).iter().any(|s| s == "online")
            && all.iter().any(|m| m.topic == camera_status_topic)
    });
    agent.sigkill();

    let evs = events(&all);
    assert_valid(&evs);
    let seqs: Vec<u64> = evs.iter().map(seq).collect();
    assert_eq!(seqs, (1..=evs.len() as u64).collect::<Vec<_>>(), "a healthy broker gets every event once, in order");
    assert!(is_status(&evs[0], "connecting"), "the first event is the camera connecting: {}", evs[0]);
    let counts: Vec<&Value> = evs.iter().filter(|e| e["type"] == "counts").collect();
    for c in &counts {
        assert_eq!(c["interval_ms"], 1000, "counts every counts_interval_secs: {c}");
    }
    // A live camera's time is the wall clock (not a file's fixed epoch).
    let age = Utc::now() - occurred_at(&evs[0]);
    assert!(age > chrono::Duration::zero() && age < chrono::Duration::minutes(3), "live occurred_at {} is not now", evs[0]["occurred_at"]);

    // Each camera status is also published on the camera's status topic, same event.
    let status_copies: Vec<&Received> = all.iter().filter(|m| m.topic == camera_status_topic).collect();
    for m in &status_copies {
        let e = m.json();
        assert_valid(std::slice::from_ref(&e));
        assert_eq!(e["type"], "camera_status");
        assert!(evs.contains(&e), "status copy {e} is not one of the events");
    }

    // The last will: the broker says the agent went offline.
    let all = sub.wait_until("the last will (agent offline)", Duration::from_secs(30), &log, |all| {
        agent_status(all).last().map(String::as_str) == Some("offline")
    });
    assert_eq!(agent_status(&all).first().map(String::as_str), Some("online"));

    // A subscriber arriving now is told both, retained.
    let late = subscriber(broker.port, "e2e-sub-late", false);
    let retained = late.wait_until("retained agent and camera status", Duration::from_secs(10), &log, |all| {
        all.iter().any(|m| m.topic == camera_status_topic) && !agent_status(all).is_empty()
    });
    let agent_msg = retained.iter().find(|m| m.topic == topics::agent_status(SITE, AGENT)).expect("agent status");
    assert!(agent_msg.retain && agent_msg.payload == b"offline", "agent status retained offline: {agent_msg:?}");
    let cam_msg = retained.iter().find(|m| m.topic == camera_status_topic).expect("camera status");
    assert!(cam_msg.retain, "camera status is retained");
    let evs = events(&all);
    let last_status = evs.iter().rev().find(|e| e["type"] == "camera_status").expect("a camera status event");
    assert_eq!(&cam_msg.json(), last_status, "the retained camera status is the latest one");
    drop(camera);
}

/// Acceptance 2: the broker is stopped for 30 s while the camera keeps producing events. The
/// agent's outbox holds them; after the broker returns the subscriber has every `seq`, in
/// order, with no gap, including the ones produced during the outage — and the evidence clips
/// cut during the outage arrive whole, each hashing to what its incident event says.
#[test]
fn a_30_second_broker_outage_loses_no_event() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let camera = SimulatedCamera::start(&sample(CLIP), "127.0.0.1", 0, "/outage").expect("serve the clip over RTSP");
    let mut broker = Mosquitto::start();
    let sub = subscriber(broker.port, "e2e-sub-outage", true);
    let config = write_config_with(dir.path(), &camera.url("127.0.0.1"), "live", 1.0, broker.port, NO_CARS_ZONE);
    let log = dir.path().join("agent.log");
    let state = dir.path().join("state");
    let mut agent = spawn_agent(&config, &state, &log);

    sub.wait_until("3 counts before the outage", Duration::from_secs(120), &log, |all| count(all, |e| e["type"] == "counts") >= 3);
    broker.stop();
    let down_at = Utc::now();
    let before = events(&sub.all()).len();
    // The outage itself: 30 s of wall time by definition. What it proves is checked after.
    std::thread::sleep(Duration::from_secs(30));
    let held = outbox_depth(&state);
    assert!(held >= 20, "after 30 s without a broker the outbox holds only {held} messages; log:\n{}", agent.log_text());
    broker.restart();
    let up_at = Utc::now();

    sub.wait_until("2 counts after the broker came back", Duration::from_secs(60), &log, |all| {
        count(all, |e| e["type"] == "counts" && occurred_at(e) > up_at) >= 2
    });
    agent.interrupt();
    let status = agent.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "edge-agent failed: {status}; log:\n{}", agent.log_text());
    assert_eq!(outbox_depth(&state), 0, "the agent drained its outbox before exiting");
    let all = sub.wait_until("the camera's final stopped status", Duration::from_secs(30), &log, |all| {
        count(all, |e| is_status(e, "stopped")) >= 1
    });

    let evs = events(&all);
    assert_valid(&evs);
    let (by_seq, _) = assert_complete_in_order(&evs);
    let last = by_seq.values().next_back().expect("events");
    assert!(is_status(last, "stopped"), "the highest seq is the final status, nothing after it is missing: {last}");
    // Events decided while the broker was down arrived (with a margin for clock anchoring).
    let margin = chrono::Duration::seconds(2);
    let during = by_seq.values().filter(|e| occurred_at(e) > down_at + margin && occurred_at(e) < up_at - margin).count();
    assert!(during >= 20, "only {during} events from the 30 s outage arrived");
    assert!(evs.len() > before + during, "events arrived after the outage");
    let clips = clips_arrived_whole(&all, &evs);
    let cut_during = clips.iter().filter(|at| **at > down_at + margin && **at < up_at - margin).count();
    assert!(cut_during >= 1, "no evidence clip was cut during the outage ({} clips in all)", clips.len());
    drop(camera);
}

/// Every clip an incident event announces arrived as all its chunks, which put together hash
/// to the event's `sha256` and form an MP4; returns when each clip's event was decided.
fn clips_arrived_whole(all: &[Received], evs: &[Value]) -> Vec<DateTime<Utc>> {
    use sha2::Digest;
    let mut decided = Vec::new();
    for e in evs.iter().filter(|e| e["type"] == "incident" && e["clip"].is_object()) {
        let clip = &e["clip"];
        let (id, chunks) = (clip["clip_id"].as_str().expect("clip id"), clip["chunks"].as_u64().expect("chunk count") as u32);
        let mut bytes = Vec::new();
        for i in 0..chunks {
            let topic = topics::clip_chunk(SITE, CAMERA, id, i, chunks);
            let chunk = all.iter().find(|m| m.topic == topic).unwrap_or_else(|| panic!("chunk {i} of {chunks} of clip {id} never arrived"));
            bytes.extend_from_slice(&chunk.payload);
        }
        assert_eq!(bytes.len() as u64, clip["bytes"].as_u64().expect("bytes"), "clip {id}");
        assert_eq!(&bytes[4..8], b"ftyp", "clip {id} is an MP4");
        let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, clip["sha256"].as_str().expect("sha256"), "clip {id} hashes to what its event says");
        decided.push(occurred_at(e));
    }
    decided
}

/// Acceptance 3: the agent is SIGKILLed mid-run (once with the broker up, once with events
/// waiting in its outbox because the broker is down) and restarted with the same state dir:
/// no event is lost, a re-sent event keeps its id, and `seq` continues (never reused).
///
/// The agent reaches the broker through a 400 ms (each way) link, so the first kill, made as
/// soon as the subscriber sees an event, lands before that event's PUBACK is back at the
/// agent: the restarted agent sends it again, and the subscriber must get the same event.
#[test]
fn sigkill_and_restart_lose_no_event_and_never_reuse_a_seq() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let mut broker = Mosquitto::start();
    let sub = subscriber(broker.port, "e2e-sub-kill", true);
    let proxy = DelayProxy::start(broker.addr(), Duration::from_millis(400));
    let clip = sample(CLIP);
    let config = write_config(dir.path(), clip.to_str().expect("utf8 path"), "file", 0.25, proxy.port);
    let log = dir.path().join("agent.log");
    let state = dir.path().join("state");
    let connecting = |all: &[Received]| count(all, |e| is_status(e, "connecting"));

    // Run A: killed mid-run with the broker up.
    let mut a = spawn_agent(&config, &state, &log);
    sub.wait_until("5 events of run A", Duration::from_secs(120), &log, |all| events(all).len() >= 5);
    a.sigkill();

    // Run B: the broker goes away, events pile up in the outbox, then the agent is killed.
    let mut b = spawn_agent(&config, &state, &log);
    sub.wait_until("run B's first events", Duration::from_secs(120), &log, |all| {
        connecting(all) >= 2 && events(all).iter().skip_while(|e| !is_status(e, "connecting") || seq(e) == 1).count() >= 3
    });
    broker.stop();
    // Nothing reaches the subscriber while the broker is down.
    let delivered_before_kill = events(&sub.all()).iter().map(seq).max().expect("events");
    let deadline = Instant::now() + Duration::from_secs(60);
    while outbox_depth(&state) < 5 {
        assert!(Instant::now() < deadline, "run B stored no events while the broker was down; log:\n{}", b.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    b.sigkill();
    let held = outbox_depth(&state);
    assert!(held >= 5, "{held}");

    // Run C: the broker is back; the clip runs to its end and the outbox is drained.
    broker.restart();
    let mut c = spawn_agent(&config, &state, &log);
    let status = c.wait_exit(Duration::from_secs(180));
    assert!(status.success(), "run C failed: {status}; log:\n{}", c.log_text());
    assert_eq!(outbox_depth(&state), 0, "run C drained the outbox");
    let all = sub.wait_until("run C's final stopped status", Duration::from_secs(30), &log, |all| {
        count(all, |e| is_status(e, "stopped")) >= 1
    });

    let evs = events(&all);
    assert_valid(&evs);
    let (by_seq, duplicates) = assert_complete_in_order(&evs);
    assert!(duplicates >= 1, "the kill in flight made no re-sent event: the duplicate check proved nothing");
    let starts: Vec<u64> = by_seq.values().filter(|e| is_status(e, "connecting")).map(seq).collect();
    assert_eq!(starts.len(), 3, "three runs, three connecting statuses: {starts:?}");
    assert_eq!(starts[0], 1);
    let last = by_seq.values().next_back().expect("events");
    assert!(is_status(last, "stopped"), "the highest seq is run C's final status: {last}");
    // Each run's events form one block of fresh seqs: a file replays from PTS 0, so within a
    // run the stream time never goes back, and each later run starts after every seq issued
    // before it.
    for w in [starts[0]..starts[1], starts[1]..starts[2], starts[2]..seq(last) + 1] {
        let pts: Vec<u64> = w.clone().map(|s| by_seq[&s]["pts_ms"].as_u64().expect("pts")).collect();
        assert!(pts.windows(2).all(|p| p[1] >= p[0]), "seqs {w:?} mix two runs (pts {pts:?})");
    }
    // Run B's events that were only in the outbox when it was killed arrived after the restart.
    assert!(
        starts[2] - 1 > delivered_before_kill,
        "the kill left nothing undelivered (delivered up to {delivered_before_kill}, run C starts at {})",
        starts[2]
    );
    let ids: std::collections::HashSet<&str> = by_seq.values().map(|e| e["event_id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), by_seq.len(), "every seq has its own event_id");
}

/// A broker far away: 150 ms each way (300 ms round trip) between the agent and Mosquitto.
/// The agent still connects, delivers every event of the clip in order, and says `online`,
/// then `offline` when it exits normally.
#[test]
fn a_broker_300_ms_away_gets_every_event() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let broker = Mosquitto::start();
    let sub = subscriber(broker.port, "e2e-sub-far", false);
    let proxy = DelayProxy::start(broker.addr(), Duration::from_millis(150));
    let clip = sample(CLIP);
    let config = write_config(dir.path(), clip.to_str().expect("utf8 path"), "file", 1.0, proxy.port);
    let log = dir.path().join("agent.log");
    let state = dir.path().join("state");
    let mut agent = spawn_agent(&config, &state, &log);
    let status = agent.wait_exit(Duration::from_secs(180));
    assert!(status.success(), "edge-agent failed: {status}; log:\n{}", agent.log_text());
    assert_eq!(outbox_depth(&state), 0, "every message was acknowledged before the agent exited; log:\n{}", agent.log_text());
    let all = sub.wait_until("the final stopped status and offline", Duration::from_secs(30), &log, |all| {
        count(all, |e| is_status(e, "stopped")) >= 1 && agent_status(all).last().map(String::as_str) == Some("offline")
    });
    let evs = events(&all);
    assert_valid(&evs);
    let seqs: Vec<u64> = evs.iter().map(seq).collect();
    assert_eq!(seqs, (1..=evs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    assert!(is_status(evs.last().expect("events"), "stopped"));
    assert!(evs.iter().filter(|e| e["type"] == "counts").count() >= 8, "the 8.4 s clip has 8 full counts intervals");
    assert_eq!(agent_status(&all), ["online", "offline"]);
}

/// A signal controller: publishes `phase` retained on the signal's topic and returns once the
/// broker acknowledged it.
fn controller_publishes(port: u16, signal: &str, phase: &str) {
    let mut options = MqttOptions::new(format!("controller-{phase}"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = rumqttc::Client::new(options, 10);
    let payload = format!("{{\"phase\":\"{phase}\"}}");
    client.publish(topics::signal_phase(SITE, signal), rumqttc::QoS::AtLeastOnce, true, payload).expect("queue the phase");
    for event in connection.iter() {
        match event.expect("the controller reaches the broker") {
            rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) => break,
            _ => continue,
        }
    }
    let _ = client.disconnect();
}

/// Where a signal controller publishes its phase, the agent takes it (`controller = true`
/// instead of a lamp region) and the red-light rule follows it: the looping junction's
/// runners are violations while the controller says red, and none while it says green.
#[test]
fn a_signal_controllers_phase_over_mqtt_drives_the_red_light_rule() {
    const JUNCTION: &str = "motorbikes_vn_intersection_1006x720.mp4";
    const JUNCTION_CAMERA: &str = "motorbikes_vn_intersection";
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let broker = Mosquitto::start();
    let camera = SimulatedCamera::start(&sample(JUNCTION), "127.0.0.1", 0, "/junction").expect("serve the clip over RTSP");
    let sub = subscriber(broker.port, "e2e-sub-controller", false);
    controller_publishes(broker.port, "near_main", "red");

    let template = std::fs::read_to_string(repo_root().join("samples/motorbikes_vn_intersection_1006x720.toml")).expect("sample config");
    let mut config = String::new();
    let mut replaced = 0;
    for line in template.lines() {
        if line.starts_with("[[cameras]]") {
            config.push_str(&format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nkeep_alive_secs = 5\n\n", broker.port));
        }
        if line.starts_with("source = ") {
            config.push_str(&format!("source = {:?}\nmode = \"live\"\n", camera.url("127.0.0.1")));
            replaced += 1;
        } else if line.starts_with("region = [0.970") {
            config.push_str("controller = true\n");
            replaced += 1;
        } else if line.starts_with("counts_interval_secs") {
            config.push_str("counts_interval_secs = 1\n");
            replaced += 1;
        } else {
            config.push_str(line);
            config.push('\n');
        }
    }
    assert_eq!(replaced, 3, "the sample config changed shape");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config).expect("write config");
    let log = dir.path().join("agent.log");
    let mut agent = spawn_agent(&path, &dir.path().join("state"), &log);

    let junction = |all: &[Received]| json_on(all, &topics::events(SITE, JUNCTION_CAMERA));
    let phase_seq = |evs: &[Value], phase: &str| {
        evs.iter().find(|e| e["type"] == "signal_phase" && e["source"] == "controller" && e["phase"] == phase).map(seq)
    };
    let red_lights_after = |evs: &[Value], from: u64| {
        evs.iter().filter(|e| e["type"] == "incident" && e["kind"] == "red_light" && e["state"] == "started" && seq(e) > from).count()
    };
    let all = sub.wait_until("a red-light violation after the controller's red", Duration::from_secs(120), &log, |all| {
        let evs = junction(all);
        phase_seq(&evs, "red").is_some_and(|red| red_lights_after(&evs, red) >= 1)
    });
    let evs = junction(&all);
    let red = phase_seq(&evs, "red").expect("red");
    assert_eq!(red_lights_after(&evs, 0), red_lights_after(&evs, red), "no violation before the agent knew the phase");

    controller_publishes(broker.port, "near_main", "green");
    let green = sub.wait_until("the controller's green taken", Duration::from_secs(60), &log, |all| phase_seq(&junction(all), "green").is_some());
    let green_event = junction(&green).into_iter().find(|e| e["type"] == "signal_phase" && e["phase"] == "green").expect("green");
    let green_pts = green_event["pts_ms"].as_u64().expect("pts");
    // Two loops of the 7.1 s clip on stream time, each with its two runners.
    let all = sub.wait_until("two loops of the clip after green", Duration::from_secs(120), &log, |all| {
        junction(all).iter().any(|e| e["pts_ms"].as_u64().is_some_and(|p| p > green_pts + 15_000))
    });
    let evs = junction(&all);
    assert_eq!(red_lights_after(&evs, seq(&green_event)), 0, "no red-light violation while the controller says green");
    agent.interrupt();
    assert!(agent.wait_exit(Duration::from_secs(60)).success(), "edge-agent failed; log:\n{}", agent.log_text());
    drop(camera);
}
