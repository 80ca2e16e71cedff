//! `ioc-api`: the IOC server (ingest, storage, REST, live stream, dashboard). Skeleton: the
//! server is built in its own issue; it depends on `roadsight-events` only, never on `pipeline`.
fn main() {
    eprintln!("ioc-api {}: not built yet (wire schema v{})", env!("CARGO_PKG_VERSION"), roadsight_events::SCHEMA_VERSION);
    std::process::exit(2);
}
