//! ioc-api's MQTT ingest against a real Mosquitto (and, for several replicas, a real
//! PostgreSQL): events arrive exactly once, shared subscriptions split the load between
//! replicas, messages are acknowledged only after their commit (none lost while ioc-api is
//! down or crashes), malformed messages are rejected without blocking the rest, snapshot
//! JPEGs published on their topic are served back, and evidence clips published in chunks (in
//! any order, repeated) are assembled and served by range — only when they hash to what their
//! incident event promised.
//!
//! Every wait below polls an observable condition with a generous deadline; no assertion
//! depends on a sleep.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioc_api::cli::{DbArgs, ServeArgs};
use ioc_api::store::{EventFilter, Role, Store};
use roadsight_events::topics;
use roadsight_events::Event;
use roadsight_tests::mosquitto::Mosquitto;
use roadsight_tests::net::free_port;
use roadsight_tests::postgres::Postgres;
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use uuid::Uuid;

/// Deadline for anything that should happen "soon" on a quiet machine; generous because the
/// machine is shared.
const PATIENCE: Duration = Duration::from_secs(60);

const SITE: &str = "site-t";

// ---------------------------------------------------------------------------------------------
// Events

fn event(camera: &str, seq: u64) -> Event {
    roadsight_tests::events::line_crossing(SITE, camera, "agent-t", seq)
}

fn events(camera: &str, n: u64) -> Vec<Event> {
    (1..=n).map(|seq| event(camera, seq)).collect()
}

fn ids(events: &[Event]) -> HashSet<String> {
    events.iter().map(|e| e.event_id.to_string()).collect()
}

fn json(e: &Event) -> Vec<u8> {
    serde_json::to_vec(e).expect("an event serialises")
}

// ---------------------------------------------------------------------------------------------
// The broker, with its subscription log (how a test knows a replica is subscribed before it
// publishes: a message published earlier would have no subscriber and be dropped).

struct Broker {
    mosquitto: Mosquitto,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Broker {
    fn start(extra_conf: &[&str]) -> Broker {
        let log_dir = tempfile::tempdir().expect("temp dir for the mosquitto log");
        let log = log_dir.path().join("mosquitto.log");
        let dest = format!("log_dest file {}", log.display());
        let mut conf = vec![dest.as_str(), "log_type subscribe"];
        conf.extend_from_slice(extra_conf);
        Broker { mosquitto: Mosquitto::start_with(&conf), log, _log_dir: log_dir }
    }

    fn url(&self) -> String {
        self.mosquitto.url()
    }

    /// Waits until `client_id` subscribed to the events, snapshot and clip filters of `group`
    /// (Mosquitto logs `<client> <qos> <filter>` while it handles the SUBSCRIBE, so a
    /// message published after the line appears finds the subscription).
    async fn wait_subscribed(&self, client_id: &str, group: &str) {
        let wanted: Vec<String> = [topics::ALL_EVENTS, topics::ALL_SNAPSHOTS, topics::ALL_CLIP_CHUNKS]
            .iter()
            .map(|f| format!(": {client_id} 1 $share/{group}/{f}"))
            .collect();
        wait_until(&format!("{client_id} subscribed on the broker"), || async {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            wanted.iter().all(|w| log.lines().any(|l| l.ends_with(w.as_str()))).then_some(())
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// A publishing agent: rumqttc, QoS 1, counts the broker's PUBACKs.

struct Publisher {
    client: AsyncClient,
    sent: usize,
    acked: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    async fn connect(broker: &Broker, client_id: &str) -> Publisher {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", broker.mosquitto.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 256);
        let acked = Arc::new(AtomicUsize::new(0));
        let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            let mut connected_tx = Some(connected_tx);
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        if let Some(tx) = connected_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("test publisher lost the broker: {e}"),
                }
            }
        });
        tokio::time::timeout(PATIENCE, connected_rx).await.expect("publisher connects").expect("publisher task alive");
        Publisher { client, sent: 0, acked, task }
    }

    async fn publish(&mut self, topic: String, payload: Vec<u8>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("publish request");
        self.sent += 1;
    }

    async fn publish_event(&mut self, e: &Event) {
        self.publish(topics::events(&e.site_id, &e.camera_id), json(e)).await;
    }

    /// Waits until the broker acknowledged everything published so far: from then on the
    /// messages are the broker's responsibility.
    async fn wait_acked(&self) {
        let sent = self.sent;
        wait_until(&format!("the broker acknowledged {sent} publishes"), || async {
            (self.acked.load(Ordering::SeqCst) >= sent).then_some(())
        })
        .await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting

async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {PATIENCE:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// ioc-api replicas: in-process `serve`, or the `ioc-api` binary (to crash it for real).

struct Config {
    mqtt_url: String,
    client_id: String,
    share_group: String,
    database: Option<String>,
    data_dir: PathBuf,
}

impl Config {
    fn args(&self, http: SocketAddr) -> ServeArgs {
        ServeArgs {
            listen: http,
            db: DbArgs { database: self.database.clone(), data_dir: self.data_dir.clone() },
            mqtt: Some(self.mqtt_url.clone()),
            embedded_broker: None,
            no_mqtt: false,
            mqtt_client_id: Some(self.client_id.clone()),
            mqtt_share_group: self.share_group.clone(),
            mqtt_tls: Default::default(),
            mqtt_password_file: None,
            clip_budget_mb_per_camera: 1024,
            http: Default::default(),
            sessions: Default::default(),
        }
    }

    fn db_url(&self) -> String {
        self.args(SocketAddr::from(([127, 0, 0, 1], 0))).db.url()
    }
}

/// One running ioc-api in this process.
struct Replica {
    http: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(cfg: &Config) -> Replica {
        std::fs::create_dir_all(&cfg.data_dir).expect("replica data dir");
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let args = cfg.args(http);
        let name = cfg.client_id.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = ioc_api::server::serve(args, shutdown).await {
                panic!("ioc-api replica {name} failed: {e:#}");
            }
        });
        wait_http(http).await;
        Replica { http, stop: Some(stop), task }
    }

    /// Graceful stop: HTTP closes, the last batch is committed and acknowledged, MQTT
    /// disconnects (the persistent session stays on the broker).
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("ioc-api stops within the deadline")
            .expect("ioc-api replica task ended cleanly");
    }

    async fn counter(&self, name: &str) -> u64 {
        mqtt_counter(self.http, name).await
    }
}

async fn wait_http(http: SocketAddr) {
    let client = reqwest::Client::new();
    wait_until(&format!("ioc-api answers /health on {http}"), || async {
        let r = client.get(format!("http://{http}/health")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// `roadsight_ioc_<name>_total{transport="mqtt"}` from a replica's /metrics (0 before the
/// first increment).
async fn mqtt_counter(http: SocketAddr, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("/metrics body");
    let prefix = format!("roadsight_ioc_{name}_total{{transport=\"mqtt\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("metric {prefix}: bad value '{v}'")))
        .unwrap_or(0)
}

/// Messages of an events topic a replica has finished with: stored, duplicate or rejected.
async fn processed(http: SocketAddr) -> u64 {
    mqtt_counter(http, "events_accepted").await
        + mqtt_counter(http, "events_duplicate").await
        + mqtt_counter(http, "messages_rejected").await
}

async fn stored_ids(store: &Store, camera: &str) -> HashSet<String> {
    let rows = store
        .list_events(&EventFilter { camera_id: Some(camera.into()), limit: 100_000, ..Default::default() })
        .await
        .expect("listing events");
    let n = rows.len();
    let ids: HashSet<String> =
        rows.into_iter().map(|r| r.event["event_id"].as_str().expect("stored event_id").to_owned()).collect();
    assert_eq!(ids.len(), n, "camera {camera}: an event_id is stored more than once");
    ids
}

/// Waits until `camera` holds `expected.len()` events, then checks they are exactly those.
async fn wait_stored_exactly(store: &Store, camera: &str, expected: &HashSet<String>) {
    let n = expected.len();
    let got = wait_until(&format!("{n} events of camera {camera} are stored"), || async {
        let got = stored_ids(store, camera).await;
        (got.len() >= n).then_some(got)
    })
    .await;
    assert_eq!(&got, expected, "camera {camera}: stored events differ from the published ones");
}

async fn connect_store(url: &str) -> Store {
    Store::connect(url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

fn sqlite_config(broker: &Broker, dir: &Path, client_id: &str) -> Config {
    Config {
        mqtt_url: broker.url(),
        client_id: client_id.into(),
        share_group: "ioc-api".into(),
        database: None,
        data_dir: dir.to_path_buf(),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Exactly once, although every event is published twice.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_published_twice_is_stored_once() {
    let broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = sqlite_config(&broker, dir.path(), "ioc-once");
    let replica = Replica::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-once").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;

    let sent = events("cam-once", 150);
    // Twice each: once in a row, then the whole run again, as an agent re-sending after a
    // lost PUBACK would.
    for e in sent.iter().chain(sent.iter()) {
        publisher.publish_event(e).await;
    }
    publisher.wait_acked().await;

    let store = connect_store(&cfg.db_url()).await;
    wait_stored_exactly(&store, "cam-once", &ids(&sent)).await;
    wait_until("ioc-api processed every copy", || async {
        (replica.counter("events_duplicate").await >= 150).then_some(())
    })
    .await;
    assert_eq!(replica.counter("events_accepted").await, 150, "each event stored once");
    assert_eq!(replica.counter("events_duplicate").await, 150, "each event's second copy is a duplicate");
    assert_eq!(replica.counter("messages_rejected").await, 0);

    // The REST API (operator key) shows them once each too.
    let (_, secret) = store.create_key("test-operator", Role::Operator, "test").await.expect("operator key");
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{}/api/v1/events?camera=cam-once&limit=1000", replica.http))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("GET /api/v1/events")
        .error_for_status()
        .expect("GET /api/v1/events status")
        .json()
        .await
        .expect("event page JSON");
    let listed: Vec<String> = page["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect();
    assert_eq!(listed.len(), 150, "REST lists each event once");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), ids(&sent));
    replica.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Two replicas, one shared subscription, one PostgreSQL database.

/// Replicas `ioc-a` and `ioc-b` of one share group on database `db`, both subscribed.
async fn two_replicas(broker: &Broker, db: &str, dir: &Path) -> ((Config, Replica), (Config, Replica)) {
    let cfg = |id: &str| Config {
        mqtt_url: broker.url(),
        client_id: id.into(),
        share_group: "ioc-replicas".into(),
        database: Some(db.to_owned()),
        data_dir: dir.join(id),
    };
    let (a, b) = (cfg("ioc-a"), cfg("ioc-b"));
    let ra = Replica::start(&a).await;
    let rb = Replica::start(&b).await;
    broker.wait_subscribed(&a.client_id, &a.share_group).await;
    broker.wait_subscribed(&b.client_id, &b.share_group).await;
    ((a, ra), (b, rb))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_a_shared_subscription_store_each_event_once() {
    let broker = Broker::start(&[]);
    let pg = Postgres::start();
    let db = pg.new_database("shared_sub");
    let dir = tempfile::tempdir().expect("temp dir");
    let ((_, ra), (_, rb)) = two_replicas(&broker, &db, dir.path()).await;
    let mut publisher = Publisher::connect(&broker, "agent-shared").await;

    // Several cameras, every event twice (the copies may go to different replicas, which
    // then race on the same event_id in the database).
    let cams = ["cam-s1", "cam-s2", "cam-s3"];
    let sent: Vec<Vec<Event>> = cams.iter().map(|c| events(c, 100)).collect();
    for _copy in 0..2 {
        for i in 0..100 {
            for evs in &sent {
                publisher.publish_event(&evs[i]).await;
            }
        }
    }
    publisher.wait_acked().await;
    let total = 2 * 3 * 100u64;

    let store = connect_store(&db).await;
    for (cam, evs) in cams.iter().zip(&sent) {
        wait_stored_exactly(&store, cam, &ids(evs)).await;
    }
    // Every copy was handled by exactly one replica.
    let shares = wait_until("the replicas processed every copy", || async {
        let now = [processed(ra.http).await, processed(rb.http).await];
        (now[0] + now[1] >= total).then_some(now)
    })
    .await;
    eprintln!("shared subscription split {total} messages: ioc-a {}, ioc-b {}", shares[0], shares[1]);
    assert_eq!(shares[0] + shares[1], total, "each message went to exactly one replica");
    assert!(shares[0] > 0 && shares[1] > 0, "both replicas received a share: {shares:?}");
    let accepted = [ra.counter("events_accepted").await, rb.counter("events_accepted").await];
    assert_eq!(accepted[0] + accepted[1], 300, "300 distinct events stored once between the replicas: {accepted:?}");
    assert!(accepted[0] > 0 && accepted[1] > 0, "both replicas stored events: {accepted:?}");
    assert_eq!(ra.counter("messages_rejected").await + rb.counter("messages_rejected").await, 0);
    ra.stop().await;
    rb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_replica_keeps_its_share_queued_and_stores_it_when_it_returns() {
    // Mosquitto 2.0 keeps round-robining a shared subscription over every member whose
    // persistent session exists, connected or not: what falls to a stopped replica waits in
    // its session (it is not handed to the running one). Nothing may be lost for that.
    let broker = Broker::start(&[]);
    let pg = Postgres::start();
    let db = pg.new_database("offline_share");
    let dir = tempfile::tempdir().expect("temp dir");
    let ((_, ra), (b, rb)) = two_replicas(&broker, &db, dir.path()).await;
    rb.stop().await;

    let mut publisher = Publisher::connect(&broker, "agent-offline").await;
    let sent = events("cam-offline", 100);
    for e in &sent {
        publisher.publish_event(e).await;
    }
    publisher.wait_acked().await;

    let rb = Replica::start(&b).await;
    let store = connect_store(&db).await;
    wait_stored_exactly(&store, "cam-offline", &ids(&sent)).await;
    let accepted = [ra.counter("events_accepted").await, rb.counter("events_accepted").await];
    eprintln!("while ioc-b was down: ioc-a stored {}, ioc-b stored {} on its return", accepted[0], accepted[1]);
    assert_eq!(accepted[0] + accepted[1], 100, "each event stored once: {accepted:?}");
    ra.stop().await;
    rb.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Ack after commit: nothing is lost while ioc-api is down, crashed or fed garbage.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_ioc_api_is_down_arrive_when_it_returns() {
    let broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    // A shared subscription, as deployed: the suspicion was that Mosquitto 2.0 with MQTT
    // 3.1.1 does not queue shared-subscription messages for an offline persistent session.
    let cfg = sqlite_config(&broker, dir.path(), "ioc-downtime");
    let replica = Replica::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-downtime").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;
    replica.stop().await;

    let sent = events("cam-down", 200);
    for e in &sent {
        publisher.publish_event(e).await;
    }
    publisher.wait_acked().await;

    let replica = Replica::start(&cfg).await;
    let store = connect_store(&cfg.db_url()).await;
    wait_stored_exactly(&store, "cam-down", &ids(&sent)).await;
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_beyond_ingest_buffers_drains_with_an_unlimited_inflight_window() {
    // The broker sends as many unacknowledged messages as it has (no in-flight limit; the
    // last `max_inflight_messages` line wins). ioc-api acknowledges only after commit, so it
    // holds them all at once: its pipeline must not stall.
    let broker = Broker::start(&["max_inflight_messages 0"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = sqlite_config(&broker, dir.path(), "ioc-backlog");
    let replica = Replica::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-backlog").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;
    replica.stop().await;

    let sent = events("cam-backlog", 3000);
    for e in &sent {
        publisher.publish_event(e).await;
    }
    publisher.wait_acked().await;

    // Stop it again as soon as the backlog starts flowing: shutdown must neither hang (the
    // commit task's acknowledgements still need the event loop) nor lose what was received.
    let replica = Replica::start(&cfg).await;
    let store = connect_store(&cfg.db_url()).await;
    wait_until("the backlog starts to be stored", || async {
        (!stored_ids(&store, "cam-backlog").await.is_empty()).then_some(())
    })
    .await;
    replica.stop().await;
    eprintln!("stopped with {} of 3000 backlog events stored", stored_ids(&store, "cam-backlog").await.len());

    let replica = Replica::start(&cfg).await;
    wait_stored_exactly(&store, "cam-backlog", &ids(&sent)).await;
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_rejected_acknowledged_and_do_not_block_good_ones() {
    let broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = sqlite_config(&broker, dir.path(), "ioc-malformed");
    let replica = Replica::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-malformed").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;

    let topic = topics::events(SITE, "cam-bad");
    let mut wrong_schema = serde_json::to_value(event("cam-bad", 1)).expect("event JSON");
    wrong_schema["schema"] = 99.into();
    let bad: Vec<Vec<u8>> = vec![
        b"this is not JSON".to_vec(),
        b"{\"schema\":1}".to_vec(),
        serde_json::to_vec(&wrong_schema).expect("JSON"),
        // A valid event of another camera on this camera's topic.
        json(&event("cam-other", 1)),
    ];
    let good = events("cam-bad", 20);
    for (i, e) in good.iter().enumerate() {
        if let Some(b) = bad.get(i) {
            publisher.publish(topic.clone(), b.clone()).await;
        }
        publisher.publish_event(e).await;
    }
    publisher.wait_acked().await;

    let store = connect_store(&cfg.db_url()).await;
    wait_stored_exactly(&store, "cam-bad", &ids(&good)).await;
    assert_eq!(replica.counter("messages_rejected").await, bad.len() as u64, "every malformed message is counted");
    assert!(stored_ids(&store, "cam-other").await.is_empty(), "an event on another camera's topic is not stored");

    // Rejected messages were acknowledged: after a restart on the same persistent session the
    // broker redelivers nothing of them (it would resend them before anything new).
    replica.stop().await;
    let replica = Replica::start(&cfg).await;
    let after = event("cam-bad", 21);
    publisher.publish_event(&after).await;
    publisher.wait_acked().await;
    let mut expected = ids(&good);
    expected.insert(after.event_id.to_string());
    wait_stored_exactly(&store, "cam-bad", &expected).await;
    assert_eq!(replica.counter("messages_rejected").await, 0, "a rejected message came back: it was not acknowledged");
    assert_eq!(replica.counter("events_duplicate").await, 0, "a committed message came back: it was not acknowledged");
    replica.stop().await;
}

/// The `ioc-api` binary next to this test (`cargo build --workspace --bins`).
fn ioc_api_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe.parent().and_then(Path::parent).expect("target/<profile>").join("ioc-api");
    assert!(bin.exists(), "{} not built: run `cargo build --workspace --bins` before the tests", bin.display());
    bin
}

struct Process {
    child: Child,
}

impl Process {
    async fn start(cfg: &Config) -> Process {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new(ioc_api_bin());
        cmd.args(["serve", "--listen", &http.to_string(), "--mqtt", &cfg.mqtt_url]);
        cmd.args(["--mqtt-client-id", &cfg.client_id, "--mqtt-share-group", &cfg.share_group]);
        cmd.arg("--data-dir").arg(&cfg.data_dir);
        if let Some(db) = &cfg.database {
            cmd.args(["--database", db]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("running ioc-api");
        wait_http(http).await;
        Process { child }
    }

    /// SIGKILL: no commit, no acknowledgement, no DISCONNECT — a crash.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL ioc-api");
        self.child.wait().expect("reaping ioc-api");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_received_but_not_committed_when_ioc_api_crashes_are_redelivered() {
    use sqlx::Connection;

    let broker = Broker::start(&[]);
    let pg = Postgres::start();
    let db = pg.new_database("crash");
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = Config {
        mqtt_url: broker.url(),
        client_id: "ioc-crash".into(),
        share_group: "ioc-api".into(),
        database: Some(db.clone()),
        data_dir: dir.path().to_path_buf(),
    };
    let ioc = Process::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-crash").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;

    // Hold the events table: ioc-api receives the messages but cannot commit them.
    let mut lock = sqlx::PgConnection::connect(&db).await.expect("test connection to PostgreSQL");
    let mut tx = lock.begin().await.expect("BEGIN");
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE").execute(&mut *tx).await.expect("LOCK TABLE events");

    let sent = events("cam-crash", 50);
    for e in &sent {
        publisher.publish_event(e).await;
    }
    publisher.wait_acked().await;
    let mut watcher = sqlx::PgConnection::connect(&db).await.expect("second test connection");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO events%'",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "ioc-api never waited on the locked events table");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    ioc.kill();
    tx.rollback().await.expect("ROLLBACK releases the lock");
    let store = connect_store(&db).await;
    assert!(stored_ids(&store, "cam-crash").await.is_empty(), "nothing was committed before the crash");

    // Same client id: the broker redelivers every message that was never acknowledged.
    let ioc = Process::start(&cfg).await;
    wait_stored_exactly(&store, "cam-crash", &ids(&sent)).await;
    drop(ioc);
}

// ---------------------------------------------------------------------------------------------
// 4. Snapshots

fn jpeg(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).expect("encoding a JPEG");
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_published_on_its_topic_is_served_back() {
    let broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = sqlite_config(&broker, dir.path(), "ioc-snapshots");
    let replica = Replica::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-snapshots").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;
    let store = connect_store(&cfg.db_url()).await;
    let (_, secret) = store.create_key("test-operator", Role::Operator, "test").await.expect("operator key");

    // A payload that is not a JPEG is rejected; the snapshot after it is still stored.
    let not_jpeg = Uuid::now_v7();
    publisher.publish(topics::snapshot(SITE, "cam-snap", &not_jpeg.to_string()), b"GIF89a...".to_vec()).await;
    let id = Uuid::now_v7();
    let bytes = jpeg(7);
    publisher.publish(topics::snapshot(SITE, "cam-snap", &id.to_string()), bytes.clone()).await;
    publisher.wait_acked().await;

    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v1/snapshots/{id}", replica.http);
    let resp = wait_until("the snapshot is served", || async {
        let r = http.get(&url).bearer_auth(&secret).send().await.expect("GET snapshot");
        r.status().is_success().then_some(r)
    })
    .await;
    assert_eq!(
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("image/jpeg")
    );
    assert_eq!(resp.bytes().await.expect("snapshot body").as_ref(), bytes.as_slice(), "served bytes differ");
    assert_eq!(replica.counter("messages_rejected").await, 1, "the non-JPEG payload is counted as rejected");
    let missing = http
        .get(format!("http://{}/api/v1/snapshots/{not_jpeg}", replica.http))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("GET rejected snapshot");
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    replica.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Evidence clips

/// `len` bytes that start like an MP4 (the IOC checks the `ftyp` box, not the rest).
fn mp4_like(len: usize, seed: u8) -> Vec<u8> {
    let mut b: Vec<u8> = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    b.extend((0..len - b.len()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    b
}

async fn publish_chunks(publisher: &mut Publisher, camera: &str, clip: Uuid, bytes: &[u8], order: &[usize]) {
    let chunks: Vec<&[u8]> = bytes.chunks(roadsight_events::clip::CHUNK_BYTES).collect();
    for &i in order {
        let topic = topics::clip_chunk(SITE, camera, &clip.to_string(), i as u32, chunks.len() as u32);
        publisher.publish(topic, chunks[i].to_vec()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_published_in_chunks_is_assembled_checked_and_served_by_range() {
    use roadsight_events::IncidentState;
    let broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = sqlite_config(&broker, dir.path(), "ioc-clips");
    let replica = Replica::start(&cfg).await;
    let mut publisher = Publisher::connect(&broker, "agent-clips").await;
    broker.wait_subscribed(&cfg.client_id, &cfg.share_group).await;
    let store = connect_store(&cfg.db_url()).await;
    let (_, secret) = store.create_key("test-operator", Role::Operator, "test").await.expect("operator key");
    let http = reqwest::Client::new();
    let get = |path: String| http.get(format!("http://{}{path}", replica.http)).bearer_auth(&secret);

    // Three chunks, sent out of order and one twice; the incident's start arrives between
    // them, the update announcing the clip before the last chunk.
    let (incident, clip) = (Uuid::now_v7(), Uuid::now_v7());
    let bytes = mp4_like(2 * roadsight_events::clip::CHUNK_BYTES + 12_345, 1);
    publish_chunks(&mut publisher, "cam-clip", clip, &bytes, &[2, 0, 0]).await;
    let start = roadsight_tests::events::incident(SITE, "cam-clip", "agent-t", 1, incident, IncidentState::Started, None);
    let update = roadsight_tests::events::incident(SITE, "cam-clip", "agent-t", 2, incident, IncidentState::Updated, Some((clip, &bytes)));
    publisher.publish_event(&start).await;
    publisher.publish_event(&update).await;
    publisher.wait_acked().await;
    let row: serde_json::Value = wait_until("the incident names its clip", || async {
        let r: serde_json::Value = get(format!("/api/v1/incidents/{incident}")).send().await.ok()?.json().await.ok()?;
        (r["clip_id"] == clip.to_string()).then_some(r)
    })
    .await;
    assert_eq!(row["clip_available"], false, "two of three chunks: not yet servable");
    assert_eq!(row["severity"], "critical", "the clip's update changed nothing else");
    assert_eq!(get(format!("/api/v1/clips/{clip}")).send().await.expect("GET clip").status(), reqwest::StatusCode::NOT_FOUND);

    publish_chunks(&mut publisher, "cam-clip", clip, &bytes, &[1]).await;
    publisher.wait_acked().await;
    let whole = wait_until("the assembled clip is served", || async {
        let r = get(format!("/api/v1/clips/{clip}")).send().await.ok()?;
        r.status().is_success().then_some(r)
    })
    .await;
    assert_eq!(whole.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("video/mp4"));
    assert_eq!(whole.bytes().await.expect("clip body").as_ref(), bytes.as_slice(), "the assembled clip differs");
    let part = get(format!("/api/v1/clips/{clip}")).header(reqwest::header::RANGE, "bytes=300000-300099").send().await.expect("range");
    assert_eq!(part.status(), reqwest::StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok()),
        Some(format!("bytes 300000-300099/{}", bytes.len()).as_str())
    );
    assert_eq!(part.bytes().await.expect("range body").as_ref(), &bytes[300_000..300_100]);
    let row: serde_json::Value = get(format!("/api/v1/incidents/{incident}")).send().await.expect("GET").json().await.expect("json");
    assert_eq!(row["clip_available"], true);

    // A clip whose bytes do not hash to what its incident promised is never served; a chunk
    // of the wrong size is rejected.
    let (lying, forged) = (Uuid::now_v7(), Uuid::now_v7());
    let promised = mp4_like(1000, 2);
    let sent = mp4_like(1000, 3);
    let claim = roadsight_tests::events::incident(SITE, "cam-clip", "agent-t", 3, lying, IncidentState::Started, Some((forged, &promised)));
    publisher.publish_event(&claim).await;
    publish_chunks(&mut publisher, "cam-clip", forged, &sent, &[0]).await;
    let bad = topics::clip_chunk(SITE, "cam-clip", &Uuid::now_v7().to_string(), 0, 2);
    publisher.publish(bad, vec![0u8; 10]).await;
    publisher.wait_acked().await;
    wait_until("the short first chunk is rejected", || async { (replica.counter("messages_rejected").await >= 1).then_some(()) }).await;
    wait_until("the forged clip is stored", || async { store.clip_exists(&forged.to_string()).await.ok()?.then_some(()) }).await;
    assert_eq!(get(format!("/api/v1/clips/{forged}")).send().await.expect("GET").status(), reqwest::StatusCode::NOT_FOUND);
    let row: serde_json::Value = get(format!("/api/v1/incidents/{lying}")).send().await.expect("GET").json().await.expect("json");
    assert_eq!(row["clip_available"], false, "a clip that does not match its incident's SHA-256 is not available");
    replica.stop().await;
}
