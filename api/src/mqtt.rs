//! MQTT ingest: subscribes (QoS 1, optionally as a shared subscription so replicas split the
//! load) to agents' events, snapshots, evidence-clip chunks and agent status, and acknowledges each message only
//! after what it carries is committed. A database outage stalls acknowledgement (the broker
//! keeps the messages) instead of losing anything. Connection settings (URL, credentials,
//! TLS for `mqtts://`) come from the shared `roadsight-mqtt-link` crate.

use std::time::Duration;

use roadsight_events::topics::{self, Topic};
use roadsight_events::Event;
use roadsight_mqtt_link::{BrokerSettings, BrokerUrl, TlsError, TlsFile, TlsFiles};
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, Outgoing, Packet, Publish, QoS, SubscribeReasonCode};
use tokio::sync::{mpsc, watch};

use crate::cli::MqttTlsArgs;
use crate::ingest::{parse_event, Ingestor};
use crate::clips::{Chunk, ClipError, ClipStore};
use crate::snapshots::SnapshotStore;

/// Where the media an agent sends besides events go.
#[derive(Clone)]
pub struct Media {
    pub snapshots: SnapshotStore,
    pub clips: ClipStore,
}

#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub broker: BrokerSettings,
    /// `$share/<group>/…` subscriptions when set.
    pub share_group: Option<String>,
}

impl MqttSettings {
    /// From `mqtt://[user:pass@]host[:port]` (port 1883) or `mqtts://…` (TLS, port 8883) and
    /// the `--mqtt-ca/--mqtt-cert/--mqtt-key` files.
    pub fn from_url(url: &str, client_id: &str, share_group: Option<String>, tls: &MqttTlsArgs) -> anyhow::Result<Self> {
        let url = BrokerUrl::parse(url).map_err(|e| anyhow::anyhow!("MQTT URL {e}"))?;
        let files = TlsFiles { ca: tls.ca.clone(), client_cert: tls.cert.clone(), client_key: tls.key.clone() };
        let tls = files.client_config(url.tls).map_err(|errors| {
            let each: Vec<String> = errors.into_iter().map(|e| format!("{} {e}", flag(&e))).collect();
            anyhow::anyhow!("{}", each.join("; "))
        })?;
        Ok(MqttSettings { broker: BrokerSettings::new(url, client_id, tls), share_group })
    }

    fn filter(&self, f: &str) -> String {
        match &self.share_group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f.to_owned(),
        }
    }
}

/// The command-line flag of the file a TLS error is about.
fn flag(e: &TlsError) -> &'static str {
    match e.file() {
        Some(TlsFile::Ca) => "--mqtt-ca",
        Some(TlsFile::ClientCert) => "--mqtt-cert",
        Some(TlsFile::ClientKey) => "--mqtt-key",
        None => "--mqtt",
    }
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
pub async fn run(settings: MqttSettings, ingestor: Ingestor, media: Media, mut shutdown: watch::Receiver<bool>) {
    let mut opts = settings.broker.mqtt_options();
    // A persistent session: while this replica is down (or between a message's delivery and
    // its acknowledgement) the broker keeps what is addressed to it and redelivers it.
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::unbounded_channel::<Publish>();
    let mut worker = tokio::spawn(commit_loop(rx, client.clone(), ingestor, media, shutdown.clone()));
    let filters = [topics::ALL_EVENTS, topics::ALL_SNAPSHOTS, topics::ALL_CLIP_CHUNKS, topics::ALL_AGENT_STATUS].map(|f| settings.filter(f));
    let broker = settings.broker.address();
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
                tracing::info!(%broker, client_id = %settings.broker.client_id, session_present = ack.session_present, "MQTT connected");
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
    media: Media,
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
        if commit(&batch, &ingestor, &media, &mut shutdown).await == Committed::Abandoned {
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
async fn commit(batch: &[Publish], ingestor: &Ingestor, media: &Media, shutdown: &mut watch::Receiver<bool>) -> Committed {
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
                while let Err(e) = media.snapshots.save(ingestor.store(), snapshot_id, site, camera, &p.payload).await {
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
            Some(Topic::ClipChunk { site, camera, clip_id, index, count }) => {
                let mut delay = Duration::from_millis(200);
                loop {
                    let chunk = Chunk { clip_id, site, camera, index, count };
                    match media.clips.save_chunk(ingestor.store(), chunk, &p.payload).await {
                        Ok(Some(clip)) => {
                            tracing::info!(site, camera, clip = clip.clip_id, bytes = clip.bytes, "evidence clip assembled");
                            break;
                        }
                        Ok(None) => break,
                        Err(ClipError::Invalid(e)) => {
                            ingestor.metrics().rejected("mqtt");
                            tracing::warn!(topic = %p.topic, "rejected clip chunk: {e}");
                            break;
                        }
                        Err(e) => {
                            tracing::error!("storing clip {clip_id} chunk {index}: {e}; retrying");
                            if !backoff(&mut delay, shutdown).await {
                                return Committed::Abandoned;
                            }
                        }
                    }
                }
            }
            Some(Topic::AgentStatus { site, agent }) => {
                tracing::info!(site, agent, "agent {}", String::from_utf8_lossy(&p.payload));
            }
            Some(Topic::CameraStatus { .. } | Topic::SignalPhase { .. }) | None => {}
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
        let b = &s.broker;
        let credentials = Some(roadsight_mqtt_link::Credentials::new("u", "p"));
        assert_eq!((b.host.as_str(), b.port, b.credentials.clone()), ("broker.local", 1884, credentials));
        assert!(!format!("{s:?}").contains("\"p\""));
        let s = MqttSettings::from_url("mqtt://127.0.0.1", "c", Some("g".into()), &plain).expect("url");
        assert_eq!(s.broker.port, 1883);
        assert!(s.broker.tls.is_none());
        assert_eq!(s.filter("a/b"), "$share/g/a/b");
        let err = MqttSettings::from_url("http://u:secret@x", "c", None, &plain).expect_err("scheme");
        assert!(!err.to_string().contains("secret"), "{err}");
        // Needs the machine's root certificates (Debian: ca-certificates).
        let s = MqttSettings::from_url("mqtts://broker", "c", None, &plain).expect("url");
        assert_eq!((s.broker.port, s.broker.tls.is_some()), (8883, true));
        let ca = MqttTlsArgs { ca: Some("/nonexistent/ca.pem".into()), ..MqttTlsArgs::default() };
        assert!(MqttSettings::from_url("mqtt://broker", "c", None, &ca).is_err());
        let err = MqttSettings::from_url("mqtts://broker", "c", None, &ca).expect_err("missing CA");
        assert!(format!("{err:#}").contains("--mqtt-ca /nonexistent/ca.pem"), "{err:#}");
    }
}
