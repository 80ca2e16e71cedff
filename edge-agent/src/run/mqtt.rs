//! Delivery of outbox messages to an MQTT broker (MQTT 3.1.1, QoS 1, rumqttc).
//!
//! A message leaves the outbox only on its PUBACK. Each connection starts from a fresh client
//! (rumqttc's in-memory queue is never trusted: it drops in-flight messages on reconnect), and
//! everything not yet acknowledged is sent again, in outbox order — so after an outage the
//! broker gets every event, in `seq` order per camera, duplicates only with the same bytes.
//! The agent's retained status topic says `online`; the last will says `offline`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use roadsight_events::topics;

use super::outbox::Outbox;

#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive: Duration,
    pub site_id: String,
    pub agent_id: String,
}

impl MqttSettings {
    /// `mqtt://host[:port]` (credentials go in their own config keys, never in logs).
    pub fn parse_url(url: &str) -> Result<(String, u16), String> {
        let rest = url.strip_prefix("mqtt://").ok_or_else(|| format!("'{url}' must start with mqtt://"))?;
        if rest.contains('@') {
            return Err("put credentials in mqtt.username / mqtt.password, not in the URL".into());
        }
        let rest = rest.trim_end_matches('/');
        match rest.rsplit_once(':') {
            Some((h, p)) => Ok((h.to_owned(), p.parse().map_err(|_| format!("bad port '{p}'"))?)),
            None => Ok((rest.to_owned(), 1883)),
        }
    }
}

/// Messages handed to rumqttc and not yet acknowledged, per connection.
const WINDOW: usize = 100;

/// Publishes until `stop` is set; then keeps delivering for up to `drain` so the outbox
/// empties, and returns (anything left is sent at the next start).
pub fn run(settings: &MqttSettings, outbox: &Outbox, stop: &AtomicBool, drain: Duration) -> anyhow::Result<u64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(deliver(settings, outbox, stop, drain))
}

fn options(s: &MqttSettings) -> MqttOptions {
    let mut o = MqttOptions::new(s.client_id.clone(), s.host.clone(), s.port);
    o.set_keep_alive(s.keep_alive);
    o.set_clean_session(true);
    o.set_max_packet_size(16 << 20, 16 << 20);
    o.set_last_will(LastWill::new(topics::agent_status(&s.site_id, &s.agent_id), "offline", QoS::AtLeastOnce, true));
    if let Some(u) = &s.username {
        o.set_credentials(u.clone(), s.password.clone().unwrap_or_default());
    }
    o
}

async fn deliver(s: &MqttSettings, outbox: &Outbox, stop: &AtomicBool, drain: Duration) -> anyhow::Result<u64> {
    let mut delivered = 0u64;
    let mut stop_deadline: Option<Instant> = None;
    let broker = format!("{}:{}", s.host, s.port);
    let mut failures = 0u32;
    loop {
        if stop.load(Ordering::Relaxed) {
            let deadline = *stop_deadline.get_or_insert_with(|| Instant::now() + drain);
            if outbox.depth()? == 0 || Instant::now() >= deadline {
                break;
            }
        }
        let (client, mut eventloop) = AsyncClient::new(options(s), WINDOW * 2);
        let mut connected = false;
        // Outbox ids handed to rumqttc, waiting for their packet id; -1 marks our own messages.
        let mut sent: VecDeque<i64> = VecDeque::new();
        let mut inflight: HashMap<u16, i64> = HashMap::new();
        let mut last_sent = 0i64;
        let outcome: Result<(), String> = loop {
            if stop.load(Ordering::Relaxed) {
                let deadline = *stop_deadline.get_or_insert_with(|| Instant::now() + drain);
                if (outbox.depth().unwrap_or(0) == 0 && inflight.is_empty()) || Instant::now() >= deadline {
                    let _ = client.try_publish(topics::agent_status(&s.site_id, &s.agent_id), QoS::AtLeastOnce, true, "offline");
                    let _ = client.try_disconnect();
                    // Let the disconnect go out.
                    let _ = tokio::time::timeout(Duration::from_millis(300), async {
                        while eventloop.poll().await.is_ok() {}
                    })
                    .await;
                    break Ok(());
                }
            }
            if connected && sent.len() + inflight.len() < WINDOW {
                let room = WINDOW - sent.len() - inflight.len();
                let mut failed = None;
                for m in outbox.next_batch(last_sent, room)? {
                    if let Err(e) = client.try_publish(m.topic, QoS::AtLeastOnce, m.retain, m.payload) {
                        failed = Some(e.to_string());
                        break;
                    }
                    sent.push_back(m.id);
                    last_sent = m.id;
                }
                if let Some(e) = failed {
                    break Err(e);
                }
            }
            let polled = tokio::select! {
                p = eventloop.poll() => Some(p),
                _ = tokio::time::sleep(Duration::from_millis(50)) => None,
            };
            let mut acked = Vec::new();
            match polled {
                None => {}
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    failures = 0;
                    tracing::info!(broker, "MQTT connected; {} messages waiting", outbox.depth().unwrap_or(0));
                    if let Err(e) = client.try_publish(topics::agent_status(&s.site_id, &s.agent_id), QoS::AtLeastOnce, true, "online") {
                        break Err(e.to_string());
                    }
                    sent.push_back(-1);
                }
                Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                    if let Some(id) = sent.pop_front() {
                        inflight.insert(pkid, id);
                    }
                }
                Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if let Some(id) = inflight.remove(&ack.pkid) {
                        if id >= 0 {
                            acked.push(id);
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.to_string()),
            }
            if !acked.is_empty() {
                outbox.remove(&acked)?;
                delivered += acked.len() as u64;
            }
        };
        match outcome {
            Ok(()) => break,
            Err(e) => {
                failures += 1;
                let wait = Duration::from_millis((250u64 << failures.min(5)).min(5000));
                if failures == 1 || failures % 20 == 0 {
                    tracing::warn!(broker, "MQTT: {e}; retrying ({} messages kept in the outbox)", outbox.depth().unwrap_or(0));
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(MqttSettings::parse_url("mqtt://10.0.0.2:1884"), Ok(("10.0.0.2".into(), 1884)));
        assert_eq!(MqttSettings::parse_url("mqtt://broker"), Ok(("broker".into(), 1883)));
        assert!(MqttSettings::parse_url("mqtt://u:p@broker").is_err());
        assert!(MqttSettings::parse_url("tcp://broker").is_err());
    }
}
