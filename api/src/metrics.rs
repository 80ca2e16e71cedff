//! Prometheus metrics (`/metrics`): ingest rate by transport, duplicates, rejected messages,
//! ingest lag (event time → stored), database latency.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: String,
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    accepted: Family<TransportLabel, Counter>,
    duplicates: Family<TransportLabel, Counter>,
    rejected: Family<TransportLabel, Counter>,
    lag: Histogram,
    db: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("roadsight_ioc");
        let accepted = Family::<TransportLabel, Counter>::default();
        let duplicates = Family::<TransportLabel, Counter>::default();
        let rejected = Family::<TransportLabel, Counter>::default();
        let lag = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        let db = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register("events_accepted", "Events stored", accepted.clone());
        registry.register("events_duplicate", "Events already stored (same event_id), ignored", duplicates.clone());
        registry.register("messages_rejected", "Messages that were not valid events", rejected.clone());
        registry.register("ingest_lag_seconds", "Event time to stored", lag.clone());
        registry.register("db_operation_seconds", "Database operation latency", db.clone());
        Metrics { inner: Arc::new(Inner { registry, accepted, duplicates, rejected, lag, db }) }
    }

    fn label(transport: &str) -> TransportLabel {
        TransportLabel { transport: transport.to_owned() }
    }

    pub fn ingested(&self, transport: &str, accepted: u64, duplicates: u64) {
        self.inner.accepted.get_or_create(&Self::label(transport)).inc_by(accepted);
        self.inner.duplicates.get_or_create(&Self::label(transport)).inc_by(duplicates);
    }

    pub fn rejected(&self, transport: &str) {
        self.inner.rejected.get_or_create(&Self::label(transport)).inc();
    }

    pub fn lag(&self, seconds: f64) {
        self.inner.lag.observe(seconds);
    }

    pub fn db_latency(&self) -> Arc<dyn Fn(std::time::Duration) + Send + Sync> {
        let h = self.inner.db.clone();
        Arc::new(move |d| h.observe(d.as_secs_f64()))
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}
