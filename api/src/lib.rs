//! `ioc-api`: the Intelligent Operations Centre server. Ingests events from edge agents (MQTT
//! with acknowledgement after commit, or HTTP), stores them (SQLite or PostgreSQL), serves
//! REST under `/api/v1`, a live stream, and the operator dashboard. Depends on the wire
//! contract (`roadsight-events`) only — never on the video pipeline.

pub mod broker;
pub mod broker_auth;
pub mod cli;
pub mod clips;
pub mod commands;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod mqtt;
pub mod server;
pub mod snapshots;
pub mod store;
