//! MQTT over TLS end to end: a CA, a server certificate (SAN `localhost`, `127.0.0.1`) and a
//! client certificate generated here (rcgen), a real Mosquitto with a TLS listener, the real
//! `edge-agent` binary on a file camera, and ioc-api's ingest.
//!
//! (a) password over TLS, (b) client certificate on a `require_certificate true` listener,
//! (c) a wrong CA: nothing is delivered, the log names the certificate problem (never the
//! password) and the outbox keeps the events until a restart with the right CA,
//! (d) ioc-api ingests over TLS with its `--mqtt-ca/--mqtt-cert/--mqtt-key` flags.
//!
//! Every wait polls an observable condition with a generous deadline.

#[path = "common/mod.rs"]
mod common;
#[path = "common/mqtt.rs"]
mod mqtt_kit;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{repo_root, sample};
use edge_agent::run::outbox::Outbox;
use ioc_api::cli::{DbArgs, MqttTlsArgs, ServeArgs};
use ioc_api::store::{EventFilter, Store};
use mqtt_kit::{agent_status, events, is_status, serial, AgentProcess, Subscriber, AGENT, CAMERA, CLIP, SITE};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use roadsight_events::topics;
use roadsight_events::Event as RsEvent;
use roadsight_tests::mosquitto::Mosquitto;
use roadsight_tests::net::free_port;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::Value;

const USER: &str = "edge-box-7";
/// Distinctive, so that finding it in a log cannot be a coincidence.
const PASSWORD: &str = "pw-Zq83-never-logged";

const PATIENCE: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Certificates

/// PEM files of a test PKI: the IOC's CA, the broker's certificate signed by it, a client
/// certificate signed by it, and an unrelated CA (the "wrong" one).
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    other_ca: PathBuf,
    /// Signed by `ca`, for `broker.test` only.
    other_host_cert: PathBuf,
    other_host_key: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert, Issuer::new(params, key))
}

fn leaf(issuer: &Issuer<'_, KeyPair>, cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("signed leaf");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("temp dir for certificates");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write PEM");
        p
    };
    let (ca_cert, issuer) = ca("Roadsight test IOC CA");
    let (server_cert, server_key) =
        leaf(&issuer, "broker.test", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(&issuer, AGENT, &[], ExtendedKeyUsagePurpose::ClientAuth);
    let (other_cert, _) = ca("Somebody else's CA");
    let (other_host_cert, other_host_key) = leaf(&issuer, "broker.test", &["broker.test"], ExtendedKeyUsagePurpose::ServerAuth);
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
        other_ca: write("other-ca.pem", &other_cert.pem()),
        other_host_cert: write("other-host.pem", &other_host_cert),
        other_host_key: write("other-host.key", &other_host_key),
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------------------
// The broker

/// Mosquitto with a TLS listener (its plain listener stays unused); `require_certificate`
/// for mutual TLS, `password` to refuse clients without `USER`/`PASSWORD`. `log` receives
/// the broker's log, subscriptions included.
fn tls_broker(pki: &Pki, require_certificate: bool, password: bool, log: &Path) -> Mosquitto {
    let mut listener = vec![
        format!("cafile {}", pki.ca.display()),
        format!("certfile {}", pki.server_cert.display()),
        format!("keyfile {}", pki.server_key.display()),
    ];
    if require_certificate {
        listener.push("require_certificate true".into());
    }
    let mut global = vec![format!("log_dest file {}", log.display()), "log_type subscribe".into(), "log_type notice".into()];
    if password {
        let file = log.with_file_name("passwords");
        let ok = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg("-c")
            .arg(&file)
            .args([USER, PASSWORD])
            .status()
            .expect("running mosquitto_passwd");
        assert!(ok.success(), "mosquitto_passwd failed");
        // Written after the kit's `allow_anonymous true`: the last one wins.
        global.push(format!("password_file {}", file.display()));
        global.push("allow_anonymous false".into());
    }
    let listener: Vec<&str> = listener.iter().map(String::as_str).collect();
    let global: Vec<&str> = global.iter().map(String::as_str).collect();
    Mosquitto::start_tls(&listener, &global)
}

/// As [`tls_broker`] (no client certificate, no password), with a certificate from the
/// right CA that names another host (`broker.test` only).
fn tls_broker_for_another_host(pki: &Pki, log: &Path) -> Mosquitto {
    let listener = [
        format!("cafile {}", pki.ca.display()),
        format!("certfile {}", pki.other_host_cert.display()),
        format!("keyfile {}", pki.other_host_key.display()),
    ];
    let listener: Vec<&str> = listener.iter().map(String::as_str).collect();
    let global = format!("log_dest file {}", log.display());
    Mosquitto::start_tls(&listener, &[global.as_str()])
}

// ---------------------------------------------------------------------------------------------
// A TLS MQTT client (the test's own: rumqttc's `Simple` TLS set-up, nothing from the agent)

#[derive(Clone, Default)]
struct ClientAuth {
    ca: PathBuf,
    cert_key: Option<(PathBuf, PathBuf)>,
    password: bool,
}

fn tls_options(client_id: &str, port: u16, auth: &ClientAuth) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(16 << 20, 16 << 20);
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let client_auth = auth.cert_key.as_ref().map(|(c, k)| (read(c), read(k)));
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple { ca: read(&auth.ca), alpn: None, client_auth }));
    if auth.password {
        o.set_credentials(USER, PASSWORD);
    }
    o
}

/// Connects once and returns the first connection outcome: `Ok` on CONNACK.
async fn try_connect(client_id: &str, port: u16, auth: &ClientAuth) -> Result<(), ConnectionError> {
    let (_client, mut eventloop) = AsyncClient::new(tls_options(client_id, port, auth), 4);
    loop {
        match tokio::time::timeout(Duration::from_secs(30), eventloop.poll()).await.expect("an answer within 30 s") {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
}

fn try_connect_blocking(client_id: &str, port: u16, auth: &ClientAuth) -> Result<(), ConnectionError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(try_connect(client_id, port, auth))
}

/// Every event validates against the published schema, is of this site/camera/agent, and
/// the seqs are 1..=n in order, each once.
fn assert_valid_and_complete(events: &[Value]) {
    let schema: Value = serde_json::from_str(roadsight_events::EVENT_SCHEMA_JSON).expect("schema is JSON");
    let v = jsonschema::validator_for(&schema).expect("valid schema");
    for e in events {
        let errors: Vec<String> = v.iter_errors(e).map(|x| x.to_string()).collect();
        assert!(errors.is_empty(), "{e} does not validate against event-v1.schema.json: {errors:?}");
        let parsed: RsEvent = serde_json::from_value(e.clone()).expect("parses as an Event");
        assert_eq!((parsed.site_id.as_str(), parsed.camera_id.as_str(), parsed.agent_id.as_str()), (SITE, CAMERA, AGENT));
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "every event once, in order");
}

// ---------------------------------------------------------------------------------------------
// The agent

/// The clip's sample config as a file camera, with `mqtt` as its `[mqtt]` section.
fn write_config(dir: &Path, mqtt: &str) -> PathBuf {
    let template = std::fs::read_to_string(repo_root().join("samples/intersection_day_960x540.toml")).expect("sample config");
    assert!(template.contains(&format!("site_id = \"{SITE}\"")) && template.contains(&format!("agent_id = \"{AGENT}\"")));
    let clip = sample(CLIP);
    let mut out = String::new();
    let mut has_source = false;
    for line in template.lines() {
        if line.starts_with("[[cameras]]") {
            out.push_str(&format!("[mqtt]\n{mqtt}\nkeep_alive_secs = 5\n\n"));
        }
        if line.starts_with("source = ") {
            has_source = true;
            out.push_str(&format!("source = {:?}\nmode = \"file\"\n", clip.display().to_string()));
        } else if line.starts_with("counts_interval_secs = ") {
            out.push_str("counts_interval_secs = 1.0\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(has_source, "the sample config changed shape");
    let path = dir.join("agent.toml");
    std::fs::write(&path, out).expect("write config");
    path
}

fn mqtt_section(url: &str, ca: &Path, extra: &str) -> String {
    format!("url = \"{url}\"\nca_file = {:?}\n{extra}", ca.display().to_string())
}

/// Debug logs too: the password must not appear at any level.
fn spawn_agent(config: &Path, state: &Path, log: &Path, drain_secs: u64) -> AgentProcess {
    AgentProcess::spawn(config, state, log, drain_secs, "info,edge_agent=debug,rumqttc=trace")
}

fn outbox(state: &Path) -> Outbox {
    // Safe while the agent runs: SQLite WAL allows other readers.
    Outbox::open(&state.join("outbox.sqlite"), 1 << 30).expect("open the agent's outbox")
}

/// Runs the clip to its end and checks that everything arrived over TLS.
fn run_and_check_delivery(mqtt: &str, sub: &Subscriber) {
    let dir = tempfile::tempdir().expect("tmp");
    let config = write_config(dir.path(), mqtt);
    let (state, log) = (dir.path().join("state"), dir.path().join("agent.log"));
    let mut agent = spawn_agent(&config, &state, &log, 30);
    let status = agent.wait_exit(PATIENCE);
    assert!(status.success(), "edge-agent failed: {status}; log:\n{}", agent.log_text());
    assert_eq!(outbox(&state).depth().expect("depth"), 0, "every message acknowledged; log:\n{}", agent.log_text());
    sub.wait_until("the final stopped status and offline", Duration::from_secs(30), &log, |all| {
        events(all).iter().any(|e| is_status(e, "stopped")) && agent_status(all).last().map(String::as_str) == Some("offline")
    });
    let events = events(&sub.all());
    assert!(events.iter().filter(|e| e["type"] == "counts").count() >= 3, "counts every second of an 8 s clip");
    assert_valid_and_complete(&events);
    assert!(agent_status(&sub.all()).iter().any(|s| s == "online"), "the agent said online");
    assert!(!agent.log_text().contains(PASSWORD), "the password is in the agent's log");
}

// ---------------------------------------------------------------------------------------------
// (a) username/password over TLS

#[test]
fn agent_delivers_over_tls_with_username_and_password() {
    let _serial = serial();
    let pki = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let broker = tls_broker(&pki, false, true, &dir.path().join("mosquitto.log"));
    let port = broker.tls_port.expect("TLS port");
    let with_password = ClientAuth { ca: pki.ca.clone(), password: true, ..ClientAuth::default() };
    // The broker really wants the password: an anonymous TLS client is refused.
    let anonymous = ClientAuth { password: false, ..with_password.clone() };
    let refused = try_connect_blocking("anon", port, &anonymous).expect_err("anonymous client refused");
    assert!(matches!(refused, ConnectionError::ConnectionRefused(_)), "{refused:?}");

    let sub = Subscriber::start(tls_options("tls-sub-password", port, &with_password));
    let mqtt = mqtt_section(&broker.tls_url(), &pki.ca, &format!("username = \"{USER}\"\npassword = \"{PASSWORD}\""));
    run_and_check_delivery(&mqtt, &sub);
}

// ---------------------------------------------------------------------------------------------
// (b) client certificate (mutual TLS)

#[test]
fn agent_delivers_with_a_client_certificate_to_a_broker_that_requires_one() {
    let _serial = serial();
    let pki = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let broker = tls_broker(&pki, true, false, &dir.path().join("mosquitto.log"));
    let port = broker.tls_port.expect("TLS port");
    let with_cert = ClientAuth { ca: pki.ca.clone(), cert_key: Some((pki.client_cert.clone(), pki.client_key.clone())), password: false };
    // The broker really wants a certificate: a client without one gets no session.
    let without = ClientAuth { cert_key: None, ..with_cert.clone() };
    assert!(try_connect_blocking("no-cert", port, &without).is_err(), "a client without a certificate was accepted");

    let sub = Subscriber::start(tls_options("tls-sub-cert", port, &with_cert));
    let mqtt = mqtt_section(
        &broker.tls_url(),
        &pki.ca,
        &format!("client_cert_file = {:?}\nclient_key_file = {:?}", pki.client_cert.display().to_string(), pki.client_key.display().to_string()),
    );
    run_and_check_delivery(&mqtt, &sub);
}

// ---------------------------------------------------------------------------------------------
// (c) wrong CA

#[test]
fn wrong_ca_delivers_nothing_names_the_certificate_problem_and_keeps_the_outbox() {
    let _serial = serial();
    let pki = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let broker = tls_broker(&pki, false, true, &dir.path().join("mosquitto.log"));
    let port = broker.tls_port.expect("TLS port");
    let with_password = ClientAuth { ca: pki.ca.clone(), password: true, ..ClientAuth::default() };
    let sub = Subscriber::start(tls_options("tls-sub-wrong-ca", port, &with_password));
    let credentials = format!("username = \"{USER}\"\npassword = \"{PASSWORD}\"");
    let (state, log) = (dir.path().join("state"), dir.path().join("agent.log"));

    // Run 1: the agent trusts another CA. The clip runs to its end, the outbox fills, the
    // drain time runs out and the agent exits with its events still in the outbox.
    let config = write_config(dir.path(), &mqtt_section(&broker.tls_url(), &pki.other_ca, &credentials));
    let mut agent = spawn_agent(&config, &state, &log, 5);
    agent.wait_exit(PATIENCE);
    let text = agent.log_text();
    let reason = text
        .lines()
        .find(|l| l.contains("MQTT") && l.contains("certificate"))
        .unwrap_or_else(|| panic!("no MQTT certificate error in the agent's log:\n{text}"));
    eprintln!("wrong CA, the agent says: {reason}");
    assert!(reason.contains("failed verification") && reason.contains("mqtt.ca_file"), "unclear reason: {reason}");
    assert!(reason.contains("UnknownIssuer"), "not named as an unknown issuer: {reason}");
    assert!(!text.contains(PASSWORD), "the password is in the agent's log");
    assert!(events(&sub.all()).is_empty(), "an agent that does not trust the broker delivered events");
    let held: HashSet<String> = outbox(&state)
        .next_batch(0, 1_000_000)
        .expect("outbox contents")
        .iter()
        .filter(|m| m.topic == topics::events(SITE, CAMERA))
        .map(|m| {
            let e: Value = serde_json::from_slice(&m.payload).expect("JSON event in the outbox");
            e["event_id"].as_str().expect("event_id").to_owned()
        })
        .collect();
    assert!(held.len() >= 5, "the outbox kept only {} events", held.len());

    // Run 2: the right CA. The events of run 1 are delivered (then the clip's new ones).
    let config = write_config(dir.path(), &mqtt_section(&broker.tls_url(), &pki.ca, &credentials));
    let mut agent = spawn_agent(&config, &state, &log, 30);
    let status = agent.wait_exit(PATIENCE);
    assert!(status.success(), "edge-agent failed: {status}; log:\n{}", agent.log_text());
    assert_eq!(outbox(&state).depth().expect("depth"), 0, "the outbox was drained");
    sub.wait_until("run 1's held events", Duration::from_secs(30), &log, |all| {
        let got: HashSet<String> = events(all).iter().map(|e| e["event_id"].as_str().expect("event_id").to_owned()).collect();
        held.is_subset(&got)
    });
    assert!(!agent.log_text().contains(PASSWORD), "the password is in the agent's log");
}

/// A broker whose certificate (from the right CA) names another host: the agent refuses it
/// and says so in one line.
#[test]
fn hostname_mismatch_is_named_in_one_line() {
    let _serial = serial();
    let pki = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let broker = tls_broker_for_another_host(&pki, &dir.path().join("mosquitto.log"));
    let config = write_config(dir.path(), &mqtt_section(&broker.tls_url(), &pki.ca, ""));
    let (state, log) = (dir.path().join("state"), dir.path().join("agent.log"));
    let agent = spawn_agent(&config, &state, &log, 5);
    let deadline = Instant::now() + PATIENCE;
    let reason = loop {
        if let Some(l) = agent.log_text().lines().find(|l| l.contains("MQTT") && l.contains("certificate")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "no MQTT certificate error in the agent's log:\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("hostname mismatch, the agent says: {reason}");
    assert!(reason.contains("failed verification") && reason.contains("not valid for name"), "unclear reason: {reason}");
    assert!(reason.contains("mqtt.url"), "no hint at the key to check: {reason}");
    assert!(!agent.log_text().contains("MQTT connected"), "the agent connected to a broker with another host's certificate");
}

// ---------------------------------------------------------------------------------------------
// (d) ioc-api ingest over TLS

fn event(seq: u64) -> RsEvent {
    roadsight_tests::events::line_crossing("site-tls", "cam-tls", "agent-tls", seq)
}

async fn poll<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ioc_api_ingests_over_tls_with_ca_client_certificate_and_password() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let broker_log = dir.path().join("mosquitto.log");
    let broker = tls_broker(&pki, true, true, &broker_log);
    let port = broker.tls_port.expect("TLS port");
    let data_dir = dir.path().join("ioc");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let args = ServeArgs {
        listen: http,
        db: DbArgs { database: None, data_dir: data_dir.clone() },
        mqtt: Some(format!("mqtts://{USER}:{PASSWORD}@127.0.0.1:{port}")),
        mqtt_tls: MqttTlsArgs { ca: Some(pki.ca.clone()), cert: Some(pki.client_cert.clone()), key: Some(pki.client_key.clone()) },
        embedded_broker: None,
        no_mqtt: false,
        mqtt_client_id: Some("ioc-tls".into()),
        mqtt_share_group: "ioc-api".into(),
        mqtt_password_file: None,
        clip_budget_mb_per_camera: 1024,
        http: Default::default(),
        sessions: Default::default(),
    };
    let db_url = args.db.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        ioc_api::server::serve(args, shutdown).await
    });
    // Subscribed (Mosquitto logs the SUBSCRIBE): a message published earlier would be lost.
    let wanted = format!(": ioc-tls 1 $share/ioc-api/{}", topics::ALL_EVENTS);
    poll("ioc-api subscribed over TLS", || async {
        let log = std::fs::read_to_string(&broker_log).unwrap_or_default();
        log.lines().any(|l| l.ends_with(wanted.as_str())).then_some(())
    })
    .await;

    let auth = ClientAuth { ca: pki.ca.clone(), cert_key: Some((pki.client_cert.clone(), pki.client_key.clone())), password: true };
    let (client, mut eventloop) = AsyncClient::new(tls_options("tls-publisher", port, &auth), 64);
    let sent: Vec<RsEvent> = (1..=20).map(event).collect();
    for e in &sent {
        let topic = topics::events(&e.site_id, &e.camera_id);
        client.publish(topic, QoS::AtLeastOnce, false, serde_json::to_vec(e).expect("JSON")).await.expect("queue PUBLISH");
    }
    let mut acked = 0;
    while acked < sent.len() {
        match tokio::time::timeout(Duration::from_secs(60), eventloop.poll()).await.expect("broker answers") {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => panic!("publisher over TLS: {e}"),
        }
    }

    let store = Store::connect(&db_url).await.expect("open ioc-api's database");
    let expected: HashSet<String> = sent.iter().map(|e| e.event_id.to_string()).collect();
    let stored = poll("the 20 events in ioc-api's database", || async {
        let rows = store
            .list_events(&EventFilter { camera_id: Some("cam-tls".into()), limit: 1000, ..Default::default() })
            .await
            .expect("list events");
        let ids: HashSet<String> = rows.iter().map(|r| r.event["event_id"].as_str().expect("event_id").to_owned()).collect();
        (ids.len() >= expected.len()).then_some(ids)
    })
    .await;
    assert_eq!(stored, expected, "stored events differ from the published ones");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("ioc-api stops")
        .expect("ioc-api task")
        .expect("ioc-api ran without error");
}
