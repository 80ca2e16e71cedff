//! MQTT ingest: subscribes (QoS 1, optionally as a shared subscription so replicas split the
//! load) to agents' events, snapshots and agent status, and acknowledges each message only
//! after what it carries is committed. A database outage stalls acknowledgement (the broker
//! keeps the messages) instead of losing anything.

use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, Publish, QoS};
use roadsight_events::topics::{self, Topic};
use tokio::sync::mpsc;

use crate::ingest::{parse_event, Ingestor};
use crate::snapshots::SnapshotStore;

#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// `$share/<group>/…` subscriptions when set.
    pub share_group: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl MqttSettings {
    /// Parses `mqtt://[user:pass@]host[:port]`.
    pub fn from_url(url: &str, client_id: &str, share_group: Option<String>) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("mqtt://").ok_or_else(|| anyhow::anyhow!("MQTT URL '{url}' must start with mqtt://"))?;
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| anyhow::anyhow!("MQTT URL: bad port '{p}'"))?),
            None => (hostport.to_owned(), 1883),
        };
        let (username, password) = match auth.map(|a| a.split_once(':').unwrap_or((a, ""))) {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (None, None),
        };
        Ok(MqttSettings { host, port, client_id: client_id.to_owned(), share_group, username, password })
    }

    fn filter(&self, f: &str) -> String {
        match &self.share_group {
            Some(g) => format!("$share/{g}/{f}"),
            None => f.to_owned(),
        }
    }
}

/// Messages handed from the network task to the committing task. Full-policy: block (the
/// network task stops reading; the broker holds the rest).
const PIPE_CAPACITY: usize = 256;
const BATCH: usize = 64;

/// Runs until `shutdown` resolves.
pub async fn run(settings: MqttSettings, ingestor: Ingestor, snapshots: SnapshotStore, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut opts = MqttOptions::new(settings.client_id.clone(), settings.host.clone(), settings.port);
    opts.set_keep_alive(Duration::from_secs(15));
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    opts.set_max_packet_size(16 << 20, 16 << 20);
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        opts.set_credentials(u.clone(), p.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::channel::<Publish>(PIPE_CAPACITY);
    let worker = tokio::spawn(commit_loop(rx, client.clone(), ingestor, snapshots));
    let filters = [topics::ALL_EVENTS, topics::ALL_SNAPSHOTS, topics::ALL_AGENT_STATUS].map(|f| settings.filter(f));
    loop {
        let polled = tokio::select! {
            _ = shutdown.changed() => break,
            p = eventloop.poll() => p,
        };
        match polled {
            Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(broker = %format!("{}:{}", settings.host, settings.port), session_present = ack.session_present, "MQTT connected");
                for f in &filters {
                    if let Err(e) = client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                        tracing::error!("subscribing to {f}: {e}");
                    }
                }
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                if tx.send(p).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("MQTT {}:{}: {e}; reconnecting", settings.host, settings.port);
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    drop(tx);
    let _ = worker.await;
    let _ = client.disconnect().await;
}

async fn commit_loop(mut rx: mpsc::Receiver<Publish>, client: AsyncClient, ingestor: Ingestor, snapshots: SnapshotStore) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        commit(&batch, &ingestor, &snapshots).await;
        for p in batch.drain(..) {
            if let Err(e) = client.ack(&p).await {
                tracing::warn!("MQTT ack: {e}");
            }
        }
    }
}

/// Commits what a batch carries; retries (without acknowledging) while the store fails.
async fn commit(batch: &[Publish], ingestor: &Ingestor, snapshots: &SnapshotStore) {
    let mut events = Vec::new();
    for p in batch {
        match topics::parse(&p.topic) {
            Some(Topic::Events { .. }) => {
                match serde_json::from_slice(&p.payload).map_err(|e| e.to_string()).and_then(parse_event) {
                    Ok(e) => events.push(e),
                    Err(err) => {
                        ingestor.metrics().rejected("mqtt");
                        tracing::warn!(topic = %p.topic, "rejected message: {err}");
                    }
                }
            }
            Some(Topic::Snapshot { site, camera, snapshot_id }) => {
                let mut delay = Duration::from_millis(200);
                while let Err(e) = snapshots.save(ingestor.store(), snapshot_id, site, camera, &p.payload).await {
                    if matches!(e, crate::snapshots::SnapshotError::Invalid(_)) {
                        ingestor.metrics().rejected("mqtt");
                        tracing::warn!(topic = %p.topic, "rejected snapshot: {e}");
                        break;
                    }
                    tracing::error!("storing snapshot {snapshot_id}: {e}; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
            Some(Topic::AgentStatus { site, agent }) => {
                tracing::info!(site, agent, "agent {}", String::from_utf8_lossy(&p.payload));
            }
            Some(Topic::CameraStatus { .. }) | None => {}
        }
    }
    if events.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(200);
    loop {
        match ingestor.ingest(events.clone(), "mqtt").await {
            Ok(_) => return,
            Err(crate::ingest::IngestError::Invalid(e)) => {
                tracing::warn!("rejected batch: {e}");
                return;
            }
            Err(e) => {
                tracing::error!("storing {} events: {e}; retrying, not acknowledged", events.len());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let s = MqttSettings::from_url("mqtt://u:p@broker.local:1884", "c", None).expect("url");
        assert_eq!((s.host.as_str(), s.port, s.username.as_deref(), s.password.as_deref()), ("broker.local", 1884, Some("u"), Some("p")));
        let s = MqttSettings::from_url("mqtt://127.0.0.1", "c", Some("g".into())).expect("url");
        assert_eq!(s.port, 1883);
        assert_eq!(s.filter("a/b"), "$share/g/a/b");
        assert!(MqttSettings::from_url("http://x", "c", None).is_err());
    }
}
