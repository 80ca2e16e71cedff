//! MQTT ingest: subscribes (QoS 1, optionally as a shared subscription so replicas split the
//! load) to agents' events, snapshots and agent status, and acknowledges each message only
//! after what it carries is committed. A database outage stalls acknowledgement (the broker
//! keeps the messages) instead of losing anything. `mqtts://` connects over TLS (rustls,
//! `ring` provider), optionally with a client certificate.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use roadsight_events::topics::{self, Topic};
use roadsight_events::Event;
use rumqttc::{
    AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeReasonCode, TlsConfiguration,
    Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, watch};

use crate::cli::MqttTlsArgs;
use crate::ingest::{parse_event, Ingestor};
use crate::snapshots::SnapshotStore;

#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// `$share/<group>/…` subscriptions when set.
    pub share_group: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Set for `mqtts://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// By hand, so that the password never reaches a log through `{:?}`.
impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("share_group", &self.share_group)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl MqttSettings {
    /// Parses `mqtt://[user:pass@]host[:port]` (port 1883) or `mqtts://…` (TLS, port 8883).
    pub fn from_url(url: &str, client_id: &str, share_group: Option<String>, tls: &MqttTlsArgs) -> anyhow::Result<Self> {
        let (rest, secure) = match (url.strip_prefix("mqtts://"), url.strip_prefix("mqtt://")) {
            (Some(r), _) => (r, true),
            (None, Some(r)) => (r, false),
            _ => anyhow::bail!("MQTT URL '{}' must start with mqtt:// or mqtts://", redact(url)),
        };
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| anyhow::anyhow!("MQTT URL: bad port '{p}'"))?),
            None => (hostport.to_owned(), if secure { 8883 } else { 1883 }),
        };
        let (username, password) = match auth.map(|a| a.split_once(':').unwrap_or((a, ""))) {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (None, None),
        };
        let tls = if secure {
            Some(tls_config(tls)?)
        } else {
            anyhow::ensure!(tls.ca.is_none() && tls.cert.is_none() && tls.key.is_none(), "--mqtt-ca/--mqtt-cert/--mqtt-key need an mqtts:// URL");
            None
        };
        Ok(MqttSettings { host, port, client_id: client_id.to_owned(), share_group, username, password, tls })
    }

    fn filter(&self, f: &str) -> String {
        match &self.share_group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f.to_owned(),
        }
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// rustls client set-up (the `ring` provider, passed rather than installed process-wide);
/// the agent builds the same in edge-agent `run/mqtt.rs`.
fn tls_config(files: &MqttTlsArgs) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let read = |flag: &str, p: &Path| std::fs::read(p).with_context(|| format!("{flag} {}", p.display()));
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(p) => {
            let certs = CertificateDer::pem_slice_iter(&read("--mqtt-ca", p)?).collect::<Result<Vec<_>, _>>();
            let certs = certs.with_context(|| format!("--mqtt-ca {}: bad PEM", p.display()))?;
            anyhow::ensure!(!certs.is_empty(), "--mqtt-ca {}: no PEM certificate in it", p.display());
            for c in certs {
                roots.add(c).with_context(|| format!("--mqtt-ca {}: not a usable CA certificate", p.display()))?;
            }
        }
        None => {
            let (added, _) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            anyhow::ensure!(added > 0, "mqtts:// without --mqtt-ca: no system root certificates found");
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(Arc::new(match (&files.cert, &files.key) {
        (Some(c), Some(k)) => {
            let chain = CertificateDer::pem_slice_iter(&read("--mqtt-cert", c)?).collect::<Result<Vec<_>, _>>();
            let chain = chain.with_context(|| format!("--mqtt-cert {}: bad PEM", c.display()))?;
            anyhow::ensure!(!chain.is_empty(), "--mqtt-cert {}: no PEM certificate in it", c.display());
            let key = PrivateKeyDer::from_pem_slice(&read("--mqtt-key", k)?).with_context(|| format!("--mqtt-key {}: no PEM private key", k.display()))?;
            builder.with_client_auth_cert(chain, key).with_context(|| format!("--mqtt-key {} with --mqtt-cert {}", k.display(), c.display()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("--mqtt-cert and --mqtt-key go together"),
    }))
}

/// Largest batch committed in one transaction.
const BATCH: usize = 64;

/// How long shutdown waits for the last acknowledgements and the DISCONNECT to be written.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until `shutdown` resolves.
///
/// Two tasks: this one turns rumqttc's event loop (the only thing that writes to the socket,
/// acknowledgements included), the commit task stores batches and then acknowledges them.
/// The hand-over between them is unbounded on purpose: with manual acknowledgement the broker
/// never has more unacknowledged QoS 1 messages out to this client than its in-flight window
/// (`max_inflight_messages`), so that window bounds what is held here. A bounded hand-over
/// that blocked this task would also stop the event loop from writing the commit task's
/// PUBACKs — both tasks would wait on each other forever once the broker's window exceeded
/// the hand-over plus rumqttc's request channel.
pub async fn run(settings: MqttSettings, ingestor: Ingestor, snapshots: SnapshotStore, mut shutdown: watch::Receiver<bool>) {
    let mut opts = MqttOptions::new(settings.client_id.clone(), settings.host.clone(), settings.port);
    opts.set_keep_alive(Duration::from_secs(15));
    // A persistent session: while this replica is down (or between a message's delivery and
    // its acknowledgement) the broker keeps what is addressed to it and redelivers it.
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    opts.set_max_packet_size(16 << 20, 16 << 20);
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        opts.set_credentials(u.clone(), p.clone());
    }
    if let Some(tls) = &settings.tls {
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::unbounded_channel::<Publish>();
    let mut worker = tokio::spawn(commit_loop(rx, client.clone(), ingestor, snapshots, shutdown.clone()));
    let filters = [topics::ALL_EVENTS, topics::ALL_SNAPSHOTS, topics::ALL_AGENT_STATUS].map(|f| settings.filter(f));
    let broker = format!("{}:{}", settings.host, settings.port);
    // Subscriptions still to hand to the event loop. `try_subscribe`, never `subscribe().await`:
    // only this task drains rumqttc's request channel, so waiting here for room in it could
    // wait forever. What does not fit now is retried after the next poll.
    let mut unsubscribed: Vec<String> = Vec::new();
    loop {
        unsubscribed.retain(|f| match client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
            Ok(()) => false,
            Err(e) => {
                tracing::debug!("subscribing to {f}: {e}; retrying");
                true
            }
        });
        let polled = tokio::select! {
            _ = shutdown.changed() => break,
            p = eventloop.poll() => p,
        };
        match polled {
            Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(%broker, client_id = %settings.client_id, session_present = ack.session_present, "MQTT connected");
                // Subscribe on every connection: harmless when the session kept the
                // subscriptions, and needed when the broker lost the session.
                unsubscribed = filters.to_vec();
            }
            Ok(MqttEvent::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                    tracing::error!(%broker, "MQTT subscription refused by the broker (check its ACL for {filters:?})");
                }
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                if tx.send(p).is_err() {
                    tracing::error!("MQTT commit task ended unexpectedly; stopping ingest");
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("MQTT {broker}: {e}; reconnecting");
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    drop(tx);
    drain(&mut eventloop, &mut worker).await;
    disconnect(&client, &mut eventloop, &broker).await;
}

/// Keeps the event loop turning until the commit task has committed (and acknowledged) what
/// it holds: its PUBACKs only reach the broker through `poll()`. Messages arriving meanwhile
/// are neither stored nor acknowledged; the broker redelivers them to the session later.
async fn drain(eventloop: &mut EventLoop, worker: &mut tokio::task::JoinHandle<()>) {
    loop {
        tokio::select! {
            _ = &mut *worker => return,
            p = eventloop.poll() => {
                if p.is_err() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Sends DISCONNECT after the acknowledgements queued before it, so the broker neither
/// redelivers committed messages nor publishes a will.
async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop, broker: &str) {
    if client.try_disconnect().is_err() {
        return;
    }
    let flushed = tokio::time::timeout(FLUSH_TIMEOUT, async {
        loop {
            match eventloop.poll().await {
                Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    if flushed.is_err() {
        tracing::warn!("MQTT {broker}: disconnect not written within {FLUSH_TIMEOUT:?}");
    }
}

/// Waits until shutdown was requested (immediately when it already was).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        // The sender is gone: nobody can ask to stop any more.
        std::future::pending::<()>().await;
    }
}

async fn commit_loop(
    mut rx: mpsc::UnboundedReceiver<Publish>,
    client: AsyncClient,
    ingestor: Ingestor,
    snapshots: SnapshotStore,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if commit(&batch, &ingestor, &snapshots, &mut shutdown).await == Committed::Abandoned {
            tracing::warn!("stopping with {} MQTT messages not stored; the broker will redeliver them", batch.len());
            return;
        }
        // Only now, after the commit: a crash before this line makes the broker redeliver.
        for p in batch.drain(..) {
            if let Err(e) = client.ack(&p).await {
                tracing::warn!("MQTT ack: {e}");
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Committed {
    /// Everything is stored, or was rejected for good: acknowledge the whole batch.
    Done,
    /// Shutdown came while the store was failing: acknowledge nothing.
    Abandoned,
}

/// Commits what a batch carries; retries (without acknowledging) while the store fails.
/// Messages that can never be stored (malformed, wrong topic) are counted as rejected and
/// reported as done so that they are acknowledged: otherwise the broker would redeliver
/// them forever.
async fn commit(batch: &[Publish], ingestor: &Ingestor, snapshots: &SnapshotStore, shutdown: &mut watch::Receiver<bool>) -> Committed {
    let mut events = Vec::new();
    for p in batch {
        match topics::parse(&p.topic) {
            Some(Topic::Events { site, camera }) => match event_from(&p.payload, site, camera) {
                Ok(e) => events.push(e),
                Err(err) => {
                    ingestor.metrics().rejected("mqtt");
                    tracing::warn!(topic = %p.topic, "rejected message: {err}");
                }
            },
            Some(Topic::Snapshot { site, camera, snapshot_id }) => {
                let mut delay = Duration::from_millis(200);
                while let Err(e) = snapshots.save(ingestor.store(), snapshot_id, site, camera, &p.payload).await {
                    if matches!(e, crate::snapshots::SnapshotError::Invalid(_)) {
                        ingestor.metrics().rejected("mqtt");
                        tracing::warn!(topic = %p.topic, "rejected snapshot: {e}");
                        break;
                    }
                    tracing::error!("storing snapshot {snapshot_id}: {e}; retrying");
                    if !backoff(&mut delay, shutdown).await {
                        return Committed::Abandoned;
                    }
                }
            }
            Some(Topic::AgentStatus { site, agent }) => {
                tracing::info!(site, agent, "agent {}", String::from_utf8_lossy(&p.payload));
            }
            Some(Topic::CameraStatus { .. }) | None => {}
        }
    }
    if events.is_empty() {
        return Committed::Done;
    }
    let mut delay = Duration::from_millis(200);
    loop {
        match ingestor.ingest(events.clone(), "mqtt").await {
            Ok(_) => return Committed::Done,
            Err(crate::ingest::IngestError::Invalid(e)) => {
                // Cannot happen for events that passed `event_from`; never retried.
                tracing::warn!("rejected batch: {e}");
                return Committed::Done;
            }
            Err(e) => {
                tracing::error!("storing {} events: {e}; retrying, not acknowledged", events.len());
                if !backoff(&mut delay, shutdown).await {
                    return Committed::Abandoned;
                }
            }
        }
    }
}

/// Sleeps `delay` (then doubles it, up to 10 s); false when shutdown came first.
async fn backoff(delay: &mut Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = stopping(shutdown) => false,
        _ = tokio::time::sleep(*delay) => true,
    };
    *delay = (*delay * 2).min(Duration::from_secs(10));
    slept
}

/// Parses an event received on the events topic of `site`/`camera`. An event must travel on
/// its own camera's topic: broker ACLs grant agents topics, so an event claiming another
/// camera is refused rather than stored under it.
fn event_from(payload: &[u8], site: &str, camera: &str) -> Result<Event, String> {
    let value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let e = parse_event(&value).map_err(|e| e.to_string())?;
    if e.site_id != site || e.camera_id != camera {
        return Err(format!(
            "event of camera {}/{} on the topic of camera {site}/{camera}",
            e.site_id, e.camera_id
        ));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let plain = MqttTlsArgs::default();
        let s = MqttSettings::from_url("mqtt://u:p@broker.local:1884", "c", None, &plain).expect("url");
        assert_eq!((s.host.as_str(), s.port, s.username.as_deref(), s.password.as_deref()), ("broker.local", 1884, Some("u"), Some("p")));
        assert!(!format!("{s:?}").contains("\"p\""));
        let s = MqttSettings::from_url("mqtt://127.0.0.1", "c", Some("g".into()), &plain).expect("url");
        assert_eq!(s.port, 1883);
        assert!(s.tls.is_none());
        assert_eq!(s.filter("a/b"), "$share/g/a/b");
        let err = MqttSettings::from_url("http://u:secret@x", "c", None, &plain).expect_err("scheme");
        assert!(!err.to_string().contains("secret"), "{err}");
        // Needs the machine's root certificates (Debian: ca-certificates).
        let s = MqttSettings::from_url("mqtts://broker", "c", None, &plain).expect("url");
        assert_eq!((s.port, s.tls.is_some()), (8883, true));
        let ca = MqttTlsArgs { ca: Some("/nonexistent/ca.pem".into()), ..MqttTlsArgs::default() };
        assert!(MqttSettings::from_url("mqtt://broker", "c", None, &ca).is_err());
        let err = MqttSettings::from_url("mqtts://broker", "c", None, &ca).expect_err("missing CA");
        assert!(format!("{err:#}").contains("--mqtt-ca /nonexistent/ca.pem"), "{err:#}");
    }
}
