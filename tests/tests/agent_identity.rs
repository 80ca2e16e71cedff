//! Who may speak to the IOC as an agent: over MQTT, against a real Mosquitto: the embedded broker that
//! `ioc-api serve` runs, and an external one fed with the files of `ioc-api broker export`.
//! Agents sign in with the credential of `ioc-api agents create --site S --name N`; the
//! broker refuses anonymous clients and wrong passwords, drops an agent's publish outside its
//! own site (nothing is stored), and refuses a revoked agent within seconds. The real
//! `edge-agent` delivers through its outbox with its credential. Over HTTP the same secret
//! ingests for its own site only (403 for another's, nothing stored). Every wait polls an
//! observable condition with a deadline; no assertion rests on a sleep.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ioc_api::store::{EventFilter, Store};
use roadsight_events::topics;
use roadsight_tests::events::line_crossing;
use roadsight_tests::mosquitto::Mosquitto;
use roadsight_tests::net::{free_port, wait_listening};
use rumqttc::{AsyncClient, ConnAck, ConnectReturnCode, ConnectionError, Event as MqttEvent, MqttOptions, Packet, QoS};

const PATIENCE: Duration = Duration::from_secs(60);

fn ioc_api_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe.parent().and_then(Path::parent).expect("target/<profile>").join("ioc-api");
    assert!(bin.exists(), "{} not built: run `cargo build --workspace --bins` before the tests", bin.display());
    bin
}

fn ioc_api(args: &[&str], data_dir: &Path) -> Output {
    let o = Command::new(ioc_api_bin()).args(args).arg("--data-dir").arg(data_dir).output().expect("running ioc-api");
    assert!(o.status.success(), "ioc-api {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// An agent credential as `ioc-api agents create` prints it: (key id, user name, password).
struct Credential {
    key_id: String,
    username: String,
    password: String,
}

fn create_agent(data_dir: &Path, site: &str, name: &str) -> Credential {
    let o = ioc_api(&["agents", "create", "--site", site, "--name", name], data_dir);
    let out = String::from_utf8(o.stdout).expect("utf8");
    let value = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {k} in {out:?}"))
            .to_owned()
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    let key_id = stderr.split("(key ").nth(1).and_then(|r| r.split(',').next()).expect("key id in the message").to_owned();
    Credential { key_id, username: value("username"), password: value("password") }
}

/// `ioc-api serve` as its own process.
struct Ioc {
    child: Child,
    http: SocketAddr,
}

impl Ioc {
    fn start(data_dir: &Path, mqtt: &[&str]) -> Ioc {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(ioc_api_bin())
            .args(["serve", "--listen", &http.to_string()])
            .args(mqtt)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running ioc-api serve");
        assert!(wait_listening(http, PATIENCE), "ioc-api did not listen on {http}");
        Ioc { child, http }
    }
}

impl Drop for Ioc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(id: &str, port: u16, credential: Option<(&str, &str)>) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    if let Some((u, p)) = credential {
        o.set_credentials(u, p);
    }
    o
}

/// The broker's answer to a CONNECT with these options.
async fn connack(o: MqttOptions) -> Result<ConnAck, ConnectionError> {
    let (_client, mut eventloop) = AsyncClient::new(o, 10);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await? {
                MqttEvent::Incoming(Packet::ConnAck(c)) => return Ok(c),
                _ => continue,
            }
        }
    })
    .await
    .expect("the broker answers a CONNECT within 10 s")
}

fn refused(r: &Result<ConnAck, ConnectionError>) -> bool {
    matches!(r, Err(ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword)))
}

/// A connected client whose event loop runs in a task; `publish` waits for the PUBACK.
struct Publisher {
    client: AsyncClient,
    acks: tokio::sync::mpsc::Receiver<()>,
    task: tokio::task::JoinHandle<Option<ConnectionError>>,
}

impl Publisher {
    async fn connect(o: MqttOptions) -> Publisher {
        let (client, mut eventloop) = AsyncClient::new(o, 100);
        let (ack_tx, acks) = tokio::sync::mpsc::channel(100);
        let (up_tx, up) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut up_tx = Some(up_tx);
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        if let Some(t) = up_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                        let _ = ack_tx.send(()).await;
                    }
                    Ok(_) => {}
                    // The broker closed the connection (or refused it): report why, stop.
                    Err(e) => return Some(e),
                }
            }
        });
        tokio::time::timeout(PATIENCE, up).await.expect("connected in time").expect("CONNACK");
        Publisher { client, acks, task }
    }

    async fn publish(&mut self, topic: &str, payload: Vec<u8>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("queue publish");
        tokio::time::timeout(PATIENCE, self.acks.recv()).await.expect("PUBACK in time").expect("event loop alive");
    }
}

async fn stored(store: &Store, site: &str) -> Vec<serde_json::Value> {
    let filter = EventFilter { site_id: Some(site.into()), limit: 10_000, ..Default::default() };
    store.list_events(&filter).await.expect("listing events").into_iter().map(|r| r.event).collect()
}

async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn json(e: &roadsight_events::Event) -> Vec<u8> {
    serde_json::to_vec(e).expect("event JSON")
}

/// What both brokers must do with the same identity files: refuse strangers, keep each agent
/// to its site, store what a credentialed agent sends, refuse it once revoked. Returns how
/// long the broker took to refuse the revoked agent.
async fn check_identities(data_dir: &Path, broker_port: u16, agent_a: &Credential, reload: impl Fn()) -> Duration {
    let store = Store::connect(&format!("sqlite://{}/ioc.sqlite", data_dir.display())).await.expect("the IOC's database");

    // Strangers are refused: no credentials, a wrong password, a made-up user.
    assert!(refused(&connack(options("anonymous", broker_port, None)).await), "anonymous client refused");
    let wrong = connack(options("wrong", broker_port, Some((&agent_a.username, "not-the-secret")))).await;
    assert!(refused(&wrong), "wrong password refused: {wrong:?}");
    let nobody = connack(options("nobody", broker_port, Some(("nobody", &agent_a.password)))).await;
    assert!(refused(&nobody), "unknown user refused: {nobody:?}");

    // Agent A may publish for site-a only. Its forged site-b incident (on site-b's topic) is
    // dropped by the broker; one with a site-b payload on its own topic is rejected by ingest;
    // its own event, published last on the same connection, is stored.
    let mut a = Publisher::connect(options("box-a", broker_port, Some((&agent_a.username, &agent_a.password)))).await;
    let forged = line_crossing("site-b", "cam9", "box-a", 1);
    a.publish(&topics::events("site-b", "cam9"), json(&forged)).await;
    let smuggled = line_crossing("site-b", "cam1", "box-a", 2);
    a.publish(&topics::events("site-a", "cam1"), json(&smuggled)).await;
    let good = line_crossing("site-a", "cam1", "box-a", 3);
    a.publish(&topics::events("site-a", "cam1"), json(&good)).await;
    let good_id = good.event_id.to_string();
    wait_until("agent A's own event is stored", PATIENCE, || async {
        stored(&store, "site-a").await.iter().any(|e| e["event_id"] == good_id.as_str()).then_some(())
    })
    .await;
    assert!(stored(&store, "site-b").await.is_empty(), "nothing of another site is stored");
    assert_eq!(stored(&store, "site-a").await.len(), 1, "only agent A's own event");

    // Revoked: the broker drops the live connection and refuses a new one within seconds.
    ioc_api(&["agents", "revoke", &agent_a.key_id], data_dir);
    let revoked_at = Instant::now();
    reload();
    let took = wait_until("the broker refuses the revoked agent", Duration::from_secs(15), || async {
        refused(&connack(options("box-a-again", broker_port, Some((&agent_a.username, &agent_a.password)))).await)
            .then(|| revoked_at.elapsed())
    })
    .await;
    let dropped = tokio::time::timeout(Duration::from_secs(15), &mut a.task).await;
    assert!(matches!(dropped, Ok(Ok(Some(_)))), "the revoked agent's open connection is closed: {dropped:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_admits_only_credentialed_agents_for_their_own_site() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ioc");
    let agent_a = create_agent(&data, "site-a", "box-a");
    let broker_port = free_port();
    let _ioc = Ioc::start(&data, &["--embedded-broker", &format!("127.0.0.1:{broker_port}")]);
    assert!(wait_listening(SocketAddr::from(([127, 0, 0, 1], broker_port)), PATIENCE), "embedded broker listens");
    // ioc-api notices the revocation by itself (no reload from outside).
    let took = check_identities(&data, broker_port, &agent_a, || {}).await;
    eprintln!("embedded broker refused the revoked agent {took:?} after `ioc-api agents revoke`");
    assert!(took < Duration::from_secs(5), "refused within seconds: {took:?}");

    // A second agent created while the server runs can sign in at once (files rewritten).
    let agent_b = create_agent(&data, "site-b", "box-b");
    wait_until("the new agent is admitted", Duration::from_secs(15), || async {
        connack(options("box-b", broker_port, Some((&agent_b.username, &agent_b.password)))).await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_mosquitto_with_exported_files_enforces_the_same_identities() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ioc");
    let auth = dir.path().join("broker-auth");
    let ioc_password = dir.path().join("ioc-mqtt-password");
    let agent_a = create_agent(&data, "site-a", "box-a");
    let export = |data: &Path| {
        ioc_api(
            &["broker", "export", "--dir", &auth.display().to_string(), "--ioc-password-file", &ioc_password.display().to_string()],
            data,
        )
    };
    export(&data);
    let passwd = format!("password_file {}/passwd", auth.display());
    let acl = format!("acl_file {}/acl", auth.display());
    // Written after the kit's `allow_anonymous true`: the last one wins.
    let broker = Mosquitto::start_with(&[&passwd, &acl, "allow_anonymous false"]);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let _ioc = Ioc::start(&data, &["--mqtt", &url, "--mqtt-password-file", &ioc_password.display().to_string()]);
    let took = check_identities(&data, broker.port, &agent_a, || {
        export(&data);
        broker.reload();
    })
    .await;
    eprintln!("external broker refused the revoked agent {took:?} after export + SIGHUP");
}

/// The real agent, configured with its credential, delivers a clip's events through its
/// outbox to the embedded broker, and ioc-api stores them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentialed_edge_agent_delivers_everything_to_the_embedded_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ioc");
    let agent = create_agent(&data, "site-a", "edge-01");
    let broker_port = free_port();
    let _ioc = Ioc::start(&data, &["--embedded-broker", &format!("127.0.0.1:{broker_port}")]);
    assert!(wait_listening(SocketAddr::from(([127, 0, 0, 1], broker_port)), PATIENCE), "embedded broker listens");
    let config = dir.path().join("agent.toml");
    let clip = common::sample("highway_cdnet_320x240.avi");
    std::fs::write(
        &config,
        format!(
            "site_id = \"site-a\"\nagent_id = \"edge-01\"\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\n\
             username = \"{}\"\npassword = \"{}\"\n\n[[cameras]]\nid = \"highway\"\nsource = \"{}\"\ncounts_interval_secs = 5\n\n\
             [[cameras.lines]]\nid = \"count_line\"\npoints = [[0.0, 0.5], [1.0, 0.5]]\nforward = \"towards_camera\"\nbackward = \"away_from_camera\"\n",
            agent.username,
            agent.password,
            clip.display()
        ),
    )
    .expect("agent config");
    let out = Command::new(common::edge_agent_bin())
        .args(["run", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("agent-state"))
        .output()
        .expect("running edge-agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "edge-agent run: {stderr}");
    assert!(!stderr.contains(&agent.password), "the agent never logs its password");
    let outbox = Store::connect(&format!("sqlite://{}/ioc.sqlite", data.display())).await.expect("the IOC's database");
    // The agent exits once its outbox is flushed (every event acknowledged by the broker).
    let sent: usize = stderr
        .lines()
        .find_map(|l| l.strip_prefix("camera highway: "))
        .and_then(|l| l.split(", ").find_map(|p| p.strip_suffix(" events")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no event count in the agent's summary:\n{stderr}"));
    assert!(sent > 10, "the clip gives events: {sent}");
    let n = wait_until(&format!("all {sent} events are stored"), PATIENCE, || async {
        let n = stored(&outbox, "site-a").await.len();
        (n >= sent).then_some(n)
    })
    .await;
    assert_eq!(n, sent, "each event stored once");
}

/// The same credential over HTTP: an agent posting (or uploading a snapshot) for another
/// site gets 403 naming that site, and nothing of the request is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_is_limited_to_the_agents_site() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ioc");
    let agent = create_agent(&data, "site-a", "box-a");
    let ioc = Ioc::start(&data, &["--no-mqtt"]);
    let http = reqwest::Client::new();
    let post = |body: Vec<roadsight_events::Event>| {
        http.post(format!("http://{}/api/v1/events", ioc.http)).header("X-Api-Key", &agent.password).json(&body).send()
    };
    let own = line_crossing("site-a", "cam1", "box-a", 1);
    let other = line_crossing("site-b", "cam9", "box-a", 1);
    let r = post(vec![own.clone(), other]).await.expect("POST");
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.expect("JSON error");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("events[1]") && msg.contains("site-b") && msg.contains("site-a"), "{body}");
    let jpeg = vec![0xff, 0xd8, 0xff, 0xd9];
    let r = http
        .put(format!("http://{}/api/v1/snapshots/{}?site=site-b&camera=cam9", ioc.http, uuid::Uuid::now_v7()))
        .header("X-Api-Key", &agent.password)
        .header("content-type", "image/jpeg")
        .body(jpeg)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN, "another site's snapshot");
    let store = Store::connect(&format!("sqlite://{}/ioc.sqlite", data.display())).await.expect("the IOC's database");
    assert!(stored(&store, "site-a").await.is_empty() && stored(&store, "site-b").await.is_empty(), "nothing of the request stored");
    let r = post(vec![own]).await.expect("POST");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "its own site: {:?}", r.text().await);
    assert_eq!(stored(&store, "site-a").await.len(), 1);
}
