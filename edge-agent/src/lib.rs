//! The Roadsight edge agent as a library: the `edge-agent` binary is a thin shell over
//! [`app::dispatch`], and integration tests call these modules directly.

pub mod app;
pub mod bench;
pub mod cli;
pub mod clip;
pub mod config;
pub mod detect_cmd;
pub mod draw;
pub mod eval;
pub mod model;
pub mod preview;
pub mod run;
pub mod track_cmd;
