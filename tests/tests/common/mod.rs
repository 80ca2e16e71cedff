//! Shared helpers: where the repository, the shared data and the built binary are.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `../shared/samples/<name>`; panics with a clear message when the shared data is missing.
pub fn sample(name: &str) -> PathBuf {
    let p = repo_root().join("../shared/samples").join(name);
    assert!(p.exists(), "shared sample {} missing (the tests need ../shared beside the repository)", p.display());
    p
}

/// The `edge-agent` binary built next to this test (cargo builds workspace binaries first).
pub fn edge_agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = dir.join("edge-agent");
    assert!(bin.exists(), "{} not built: run `cargo build --workspace --bins` before the tests", bin.display());
    bin
}

pub fn edge_agent(args: &[&str]) -> Output {
    Command::new(edge_agent_bin()).args(args).output().expect("running edge-agent")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
