//! Test kit shared by the cross-crate integration tests: real servers (Mosquitto, PostgreSQL)
//! spawned on free loopback ports, each owned by a guard that stops it when dropped, and
//! `ioc-api` in-process for HTTP tests.

pub mod events;
pub mod ioc;
pub mod mosquitto;
pub mod net;
pub mod postgres;
