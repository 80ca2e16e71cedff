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
//! Connection settings (URL, credentials, TLS for `mqtts://`) come from the shared
//! `roadsight-mqtt-link` crate; this module adds the agent's session, last will and status.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roadsight_events::topics;
use roadsight_mqtt_link::BrokerSettings;
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::outbox::Outbox;
use super::signals::SignalBoard;
use super::telemetry::Telemetry;

/// What delivery over MQTT needs: the broker, and the agent's retained status topic (`online`,
/// `offline`, and the last will).
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub broker: BrokerSettings,
    pub status_topic: String,
    pub site_id: String,
    /// Where the site's controller signal phases go (subscribed on every connection).
    pub signals: Option<Arc<SignalBoard>>,
}

impl MqttSettings {
    pub fn new(broker: BrokerSettings, site_id: &str, agent_id: &str) -> Self {
        MqttSettings { broker, status_topic: topics::agent_status(site_id, agent_id), site_id: site_id.to_owned(), signals: None }
    }

    pub fn with_signals(mut self, board: Arc<SignalBoard>) -> Self {
        self.signals = Some(board);
        self
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
    let mut o = s.broker.mqtt_options();
    o.set_clean_session(true);
    o.set_last_will(LastWill::new(s.status_topic.clone(), "offline", QoS::AtLeastOnce, true));
    o
}

/// One line on why a connection failed. TLS failures name the certificate problem and the
/// keys to check, since they are mostly set-up mistakes. rumqttc's errors never carry the
/// credentials, so this never prints the password.
fn describe(e: &ConnectionError) -> String {
    if let ConnectionError::ConnectionRefused(code @ (rumqttc::ConnectReturnCode::NotAuthorized | rumqttc::ConnectReturnCode::BadUserNamePassword)) = e {
        return format!(
            "the broker refused the agent's credentials ({code:?}): check mqtt.username and mqtt.password \
             (`ioc-api agents create` prints them), or the agent was revoked; events stay in the outbox"
        );
    }
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
    let broker = s.broker.address();
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
                let broker = self.settings.broker.address();
                tracing::info!(broker, "MQTT connected; {} messages waiting", self.outbox.depth().unwrap_or(0));
                self.conn
                    .client
                    .try_publish(self.settings.status_topic.clone(), QoS::AtLeastOnce, true, "online")
                    .map_err(|e| e.to_string())?;
                self.flight.handed.push_back(STATUS);
                if self.settings.signals.is_some() {
                    // A clean session: subscribe on every connection (the retained phases come at once).
                    let filter = topics::site_signal_phases(&self.settings.site_id);
                    self.conn.client.try_subscribe(filter, QoS::AtLeastOnce).map_err(|e| e.to_string())?;
                }
            }
            Event::Incoming(Packet::Publish(p)) => {
                if let Some(board) = &self.settings.signals {
                    match board.accept(&self.settings.site_id, &p.topic, &p.payload) {
                        Ok((signal, phase)) => tracing::info!(signal, ?phase, "signal controller phase"),
                        Err(e) => tracing::warn!("ignored controller message: {e}"),
                    }
                }
            }
            Event::Incoming(Packet::SubAck(ack)) if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) => {
                tracing::warn!("the broker refused the signal-controller subscription (its ACL): controller phases will not arrive");
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
                s.conn.close(settings.status_topic.clone()).await;
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
