//! The one path every event takes into the IOC, whichever transport brought it: validate,
//! store exactly once (commit), then publish the new ones to live subscribers.

use std::sync::Arc;

/// Parses and checks one event; the error names the field at fault.
pub use roadsight_events::decode::decode as parse_event;
use roadsight_events::decode::{validate, DecodeError};
use roadsight_events::{Event, EventType};
use tokio::sync::broadcast;

use crate::metrics::Metrics;
use crate::store::{IngestOutcome, Store, StoreError};

/// An event as live subscribers see it.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub kind: EventType,
    pub site_id: String,
    pub camera_id: String,
    /// `incident` events: their kind (`wrong_way`, …).
    pub incident_kind: Option<String>,
    pub json: Arc<str>,
}

/// Capacity of the live fan-out. Full-policy: a subscriber that falls this far behind skips
/// ahead (and is told how many it missed); ingest never waits for a slow client.
pub const LIVE_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The id rule of the wire contract (site, camera), for ids given on the command line.
pub(crate) fn check_id(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("{what} '{v}' must be 1–128 letters, digits, '-' or '_'"));
    }
    Ok(())
}

#[derive(Clone)]
pub struct Ingestor {
    store: Store,
    live: broadcast::Sender<LiveEvent>,
    metrics: Metrics,
}

impl Ingestor {
    pub fn new(store: Store, metrics: Metrics) -> Self {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Ingestor { store, live, metrics }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// Stores a batch (one transaction) and fans out the events that were new.
    pub async fn ingest(&self, events: Vec<Event>, transport: &str) -> Result<IngestOutcome, IngestError> {
        for e in &events {
            validate(e)?;
        }
        let (outcome, fresh) = self.store.ingest(&events).await?;
        self.metrics.ingested(transport, outcome.accepted, outcome.duplicates);
        let now = chrono::Utc::now().timestamp_millis();
        for (e, is_new) in events.iter().zip(fresh) {
            if !is_new {
                continue;
            }
            self.metrics.lag((now - e.occurred_at.timestamp_millis()).max(0) as f64 / 1000.0);
            let incident_kind = match &e.body {
                roadsight_events::EventBody::Incident(i) => {
                    serde_json::to_value(i.kind).ok().and_then(|v| v.as_str().map(String::from))
                }
                _ => None,
            };
            let json: Arc<str> = serde_json::to_string(e).unwrap_or_default().into();
            // No receivers is fine: nobody is watching.
            let _ = self.live.send(LiveEvent {
                kind: e.kind(),
                site_id: e.site_id.clone(),
                camera_id: e.camera_id.clone(),
                incident_kind,
                json,
            });
        }
        Ok(outcome)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
