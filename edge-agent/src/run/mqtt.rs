//! Delivery of outbox messages to an MQTT broker (MQTT 3.1.1, QoS 1, rumqttc).
//!
//! A message leaves the outbox only on its PUBACK. Each connection starts from a fresh client
//! (rumqttc's in-memory queue is never trusted: it drops in-flight messages on reconnect), and
//! everything not yet acknowledged is sent again, in outbox order — so after an outage the
//! broker gets every event, in `seq` order per camera, duplicates only with the same bytes.
//! The agent's retained status topic says `online` on every connection and `offline` on a
//! clean exit; the last will says `offline` when the agent dies or loses the broker.
//!
//! rumqttc's event loop is polled in its own task and never cancelled: a `poll()` cut short
//! abandons a CONNECT waiting for its CONNACK (a broker more than one timer tick away would
//! never be connected) or a PUBLISH waiting for socket room (its packet id then stays in
//! flight forever, and rumqttc stalls once packet ids wrap around to it).
//!
//! `mqtts://` connects over TLS (rustls with the `ring` provider, chosen here rather than
//! installed process-wide): the broker is checked against `mqtt.ca_file` or the system roots,
//! and `mqtt.client_cert_file` + `mqtt.client_key_file` authenticate the agent (mutual TLS).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roadsight_events::topics;
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, TlsError, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::outbox::Outbox;
use super::telemetry::Telemetry;

#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive: Duration,
    pub site_id: String,
    pub agent_id: String,
    /// Set for `mqtts://` (see [`tls_config`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// By hand, so that the password never reaches a log through `{:?}`.
impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Where a URL points: host, port, and whether it is `mqtts://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttSettings {
    /// `mqtt://host[:port]` (default 1883) or `mqtts://host[:port]` (TLS, default 8883).
    /// Credentials go in their own config keys, never in the URL (it is logged).
    pub fn parse_url(url: &str) -> Result<BrokerUrl, String> {
        let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("mqtts://") {
            (r, true, 8883)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (r, false, 1883)
        } else {
            return Err(format!("'{url}' must start with mqtt:// or mqtts://"));
        };
        if rest.contains('@') {
            return Err("put credentials in mqtt.username / mqtt.password, not in the URL".into());
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| format!("bad port '{p}'"))?),
            None => (rest.to_owned(), default_port),
        };
        if host.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        Ok(BrokerUrl { host, port, tls })
    }

    fn status_topic(&self) -> String {
        topics::agent_status(&self.site_id, &self.agent_id)
    }
}

/// Messages handed to rumqttc and not yet acknowledged, per connection.
const WINDOW: usize = 100;

/// How often the publisher looks for new outbox messages when nothing else happens.
const TICK: Duration = Duration::from_millis(50);

/// Marks our own `online` status in the in-flight bookkeeping (it has no outbox row).
const STATUS: i64 = -1;

/// Publishes until `stop` is set; then keeps delivering for up to `drain` so the outbox
/// empties, and returns the number of messages delivered (anything left is sent at the next
/// start).
pub fn run(settings: &MqttSettings, outbox: &Outbox, stop: &AtomicBool, drain: Duration, telemetry: &Telemetry) -> anyhow::Result<u64> {
    telemetry.delivery_transport("mqtt");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(deliver(settings, outbox, stop, drain, telemetry))
}

fn options(s: &MqttSettings) -> MqttOptions {
    let mut o = MqttOptions::new(s.client_id.clone(), s.host.clone(), s.port);
    o.set_keep_alive(s.keep_alive);
    o.set_clean_session(true);
    o.set_max_packet_size(16 << 20, 16 << 20);
    o.set_last_will(LastWill::new(s.status_topic(), "offline", QoS::AtLeastOnce, true));
    if let Some(u) = &s.username {
        o.set_credentials(u.clone(), s.password.clone().unwrap_or_default());
    }
    if let Some(tls) = &s.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
    }
    o
}

/// What [`tls_config`] could not use, by the config key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{0}")]
    Ca(String),
    #[error("{0}")]
    SystemRoots(String),
    #[error("{0}")]
    ClientAuth(String),
}

/// The certificates of a PEM file's text; an error when it holds none.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(certs)
}

/// The private key of a PEM file's text (PKCS#8, PKCS#1 or SEC1).
pub fn pem_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no usable PEM private key in it ({e})"))
}

/// rustls client set-up for `mqtts://`: trusts `ca` (the IOC's CA) or, when `None`, the
/// system's roots; presents `client` (certificate chain, key) when given. The `ring`
/// provider is passed here rather than installed process-wide, so nothing depends on which
/// crypto back-end another crate happens to enable.
pub fn tls_config(
    ca: Option<Vec<CertificateDer<'static>>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(certs) => {
            for c in certs {
                roots.add(c).map_err(|e| TlsSetupError::Ca(format!("not a usable CA certificate: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(TlsSetupError::SystemRoots(format!("not set, and no system root certificates were found{why}: set it to the broker's CA")));
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Ca(e.to_string()))?
        .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| TlsSetupError::ClientAuth(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// One line on why a connection failed. TLS failures name the certificate problem and the
/// keys to check, since they are mostly set-up mistakes. rumqttc's errors never carry the
/// credentials, so this never prints the password.
fn describe(e: &ConnectionError) -> String {
    let ConnectionError::Tls(t) = e else { return e.to_string() };
    let rustls_err = match t {
        TlsError::TLS(r) => Some(r),
        TlsError::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match rustls_err {
        Some(rustls::Error::InvalidCertificate(c)) => {
            let hint = match c {
                rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => {
                    "is mqtt.ca_file (or, without it, the system roots) the CA that signed it?"
                }
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "the host in mqtt.url must be one the certificate names"
                }
                _ => "check mqtt.ca_file and the broker's certificate",
            };
            format!("TLS: the broker's certificate failed verification: {c} ({hint})")
        }
        Some(rustls::Error::AlertReceived(a)) => format!(
            "TLS: the broker refused the handshake ({a:?}; if it requires client certificates, check mqtt.client_cert_file and mqtt.client_key_file)"
        ),
        Some(r) => format!("TLS: {r}"),
        None => format!("TLS: {t}"),
    }
}

/// When delivery ends: once `stop` is set, as soon as everything is delivered, or when the
/// drain time is up.
struct Shutdown<'a> {
    stop: &'a AtomicBool,
    drain: Duration,
    deadline: Option<Instant>,
}

impl Shutdown<'_> {
    /// True when delivery should end now; `all_delivered` is only asked once stopping.
    fn due(&mut self, all_delivered: impl FnOnce() -> bool) -> bool {
        if !self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let drain = self.drain;
        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + drain);
        Instant::now() >= deadline || all_delivered()
    }

    /// `wait`, shortened so a stopping agent does not overstay its drain time.
    fn cap(&self, wait: Duration) -> Duration {
        match self.deadline {
            Some(d) => wait.min(d.saturating_duration_since(Instant::now())),
            None => wait,
        }
    }
}

async fn deliver(s: &MqttSettings, outbox: &Outbox, stop: &AtomicBool, drain: Duration, telemetry: &Telemetry) -> anyhow::Result<u64> {
    let broker = format!("{}:{}", s.host, s.port);
    let mut shutdown = Shutdown { stop, drain, deadline: None };
    let mut delivered = 0u64;
    let mut failures = 0u32;
    loop {
        if shutdown.due(|| outbox.depth().is_ok_and(|d| d == 0)) {
            return Ok(delivered);
        }
        match session(s, outbox, &mut shutdown, &mut delivered, &mut failures, telemetry).await? {
            SessionEnd::Done => {
                telemetry.broker(Some("stopped".into()));
                return Ok(delivered);
            }
            SessionEnd::Lost(e) => {
                telemetry.broker(Some(e.clone()));
                failures += 1;
                let wait = Duration::from_millis((250u64 << failures.min(5)).min(5000));
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(broker, "MQTT: {e}; retrying ({} messages kept in the outbox)", outbox.depth().unwrap_or(0));
                }
                tokio::time::sleep(shutdown.cap(wait)).await;
            }
        }
    }
}

enum SessionEnd {
    /// Stopped (everything delivered, or the drain time is up).
    Done,
    /// The connection failed or dropped; unacknowledged messages stay in the outbox.
    Lost(String),
}

/// One broker connection: rumqttc's client, and the events of its event loop, which a task of
/// its own polls (see the module notes).
struct Connection {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, ConnectionError>>,
    pump: JoinHandle<()>,
}

impl Connection {
    fn open(s: &MqttSettings) -> Connection {
        let (client, mut eventloop) = AsyncClient::new(options(s), WINDOW * 2);
        let (tx, events) = mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                // A failed event loop would reconnect by itself on the next poll, with the
                // in-memory queue we do not trust: this connection is over instead.
                if tx.send(event).is_err() || failed {
                    break;
                }
            }
        });
        Connection { client, events, pump }
    }

    /// The next event, or `None` when nothing happened within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Result<Event, String>> {
        match tokio::time::timeout(wait, self.events.recv()).await {
            Err(_) => None,
            Ok(Some(event)) => Some(event.map_err(|e| describe(&e))),
            Ok(None) => Some(Err("MQTT event loop ended".into())),
        }
    }

    /// An event that is already there, without waiting.
    fn ready(&mut self) -> Option<Result<Event, String>> {
        match self.events.try_recv() {
            Ok(event) => Some(event.map_err(|e| describe(&e))),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Err("MQTT event loop ended".into())),
        }
    }

    /// Retained `offline`, then DISCONNECT (so the broker drops the last will), and waits
    /// briefly for the broker to close the connection.
    async fn close(mut self, status_topic: String) {
        let _ = self.client.try_publish(status_topic, QoS::AtLeastOnce, true, "offline");
        let _ = self.client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.events.recv().await {}
        })
        .await;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// What one connection has handed to rumqttc and not seen acknowledged yet.
#[derive(Default)]
struct InFlight {
    /// Outbox ids (or [`STATUS`]) handed to rumqttc, in order, waiting for their packet id.
    handed: VecDeque<i64>,
    /// Packet id → outbox id, waiting for the PUBACK.
    by_pkid: HashMap<u16, i64>,
    /// The newest outbox id handed over on this connection.
    last_id: i64,
}

impl InFlight {
    fn len(&self) -> usize {
        self.handed.len() + self.by_pkid.len()
    }
}

/// One connection's delivery state.
struct Session<'a> {
    settings: &'a MqttSettings,
    outbox: &'a Outbox,
    conn: Connection,
    connected: bool,
    flight: InFlight,
}

impl Session<'_> {
    /// Hands the next outbox messages to rumqttc, oldest first, up to the window.
    fn hand_over(&mut self) -> anyhow::Result<Result<(), String>> {
        if !self.connected || self.flight.len() >= WINDOW {
            return Ok(Ok(()));
        }
        for m in self.outbox.next_batch(self.flight.last_id, WINDOW - self.flight.len())? {
            if let Err(e) = self.conn.client.try_publish(m.topic, QoS::AtLeastOnce, m.retain, m.payload) {
                return Ok(Err(e.to_string()));
            }
            self.flight.handed.push_back(m.id);
            self.flight.last_id = m.id;
        }
        Ok(Ok(()))
    }

    /// Books one event of the connection; acknowledged outbox ids go to `acked`.
    fn on_event(&mut self, event: Event, acked: &mut Vec<i64>) -> Result<(), String> {
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                self.connected = true;
                let broker = format!("{}:{}", self.settings.host, self.settings.port);
                tracing::info!(broker, "MQTT connected; {} messages waiting", self.outbox.depth().unwrap_or(0));
                self.conn
                    .client
                    .try_publish(self.settings.status_topic(), QoS::AtLeastOnce, true, "online")
                    .map_err(|e| e.to_string())?;
                self.flight.handed.push_back(STATUS);
            }
            // rumqttc sends requests in the order they were handed over.
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(id) = self.flight.handed.pop_front() {
                    self.flight.by_pkid.insert(pkid, id);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                acked.extend(self.flight.by_pkid.remove(&ack.pkid).filter(|&id| id != STATUS));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Connects, says `online`, and publishes the outbox in order until the connection is lost or
/// delivery is over.
async fn session(
    settings: &MqttSettings,
    outbox: &Outbox,
    shutdown: &mut Shutdown<'_>,
    delivered: &mut u64,
    failures: &mut u32,
    telemetry: &Telemetry,
) -> anyhow::Result<SessionEnd> {
    let mut s = Session { settings, outbox, conn: Connection::open(settings), connected: false, flight: InFlight::default() };
    loop {
        if shutdown.due(|| outbox.depth().is_ok_and(|d| d == 0)) {
            if s.connected {
                s.conn.close(settings.status_topic()).await;
            }
            return Ok(SessionEnd::Done);
        }
        if let Err(e) = s.hand_over()? {
            return Ok(SessionEnd::Lost(e));
        }
        let Some(first) = s.conn.next(shutdown.cap(TICK)).await else { continue };
        // Take whatever else is ready too, so a burst of PUBACKs is one outbox transaction.
        let mut acked = Vec::new();
        let mut next = Some(first);
        let mut lost = None;
        while let Some(event) = next {
            if let Err(e) = event.and_then(|e| s.on_event(e, &mut acked)) {
                lost = Some(e);
                break;
            }
            next = if acked.len() < 1000 { s.conn.ready() } else { None };
        }
        // Acknowledged before any failure: delivered all the same.
        outbox.remove(&acked)?;
        *delivered += acked.len() as u64;
        telemetry.delivered(acked.len() as u64);
        if s.connected && !telemetry.broker_connected() {
            telemetry.broker(None);
        }
        if s.connected {
            *failures = 0;
        }
        if let Some(e) = lost {
            return Ok(SessionEnd::Lost(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = |host: &str, port, tls| Ok(BrokerUrl { host: host.into(), port, tls });
        assert_eq!(MqttSettings::parse_url("mqtt://10.0.0.2:1884"), url("10.0.0.2", 1884, false));
        assert_eq!(MqttSettings::parse_url("mqtt://broker"), url("broker", 1883, false));
        assert_eq!(MqttSettings::parse_url("mqtts://broker"), url("broker", 8883, true));
        assert_eq!(MqttSettings::parse_url("mqtts://broker:18883/"), url("broker", 18883, true));
        assert!(MqttSettings::parse_url("mqtt://u:p@broker").is_err());
        assert!(MqttSettings::parse_url("mqtts://u:p@broker").is_err());
        assert!(MqttSettings::parse_url("tcp://broker").is_err());
        assert!(MqttSettings::parse_url("mqtts://:8883").is_err());
    }

    #[test]
    fn password_not_in_debug() {
        let s = MqttSettings {
            host: "h".into(),
            port: 1,
            client_id: "c".into(),
            username: Some("u".into()),
            password: Some("s3cr3t-pw".into()),
            keep_alive: Duration::from_secs(5),
            site_id: "s".into(),
            agent_id: "a".into(),
            tls: None,
        };
        assert!(!format!("{s:?}").contains("s3cr3t-pw"));
    }

    #[test]
    fn pem_parsing() {
        assert!(pem_certs(b"").is_err());
        assert!(pem_certs(b"hello").is_err());
        assert!(pem_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }
}
