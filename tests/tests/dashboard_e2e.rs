//! The operator dashboard end to end in headless Chromium (Debian's package, driven by
//! playwright-core from `tests/e2e/`): a real `ioc-api` process serves the page; the browser
//! logs in with an operator key, sees a live incident (pushed by an agent key over HTTP while
//! the page is open) arrive with its snapshot thumbnail, acknowledges it through the UI, sees
//! the count chart, and takes a screenshot (`target/dashboard-e2e.png`).

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::repo_root;
use roadsight_tests::net::{free_port, wait_listening};

fn ioc_api_bin() -> PathBuf {
    let bin = common::edge_agent_bin().with_file_name("ioc-api");
    assert!(bin.exists(), "{} not built: run `cargo build --workspace --bins` first", bin.display());
    bin
}

/// `ioc-api keys create` — the way an operator makes keys; prints the secret once.
fn create_key(data_dir: &Path, role: &str) -> String {
    let o: Output = Command::new(ioc_api_bin())
        .args(["keys", "create", "--role", role, "--name", &format!("e2e-{role}"), "--sites", "e2e", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("running ioc-api keys create");
    assert!(o.status.success(), "keys create: {}", String::from_utf8_lossy(&o.stderr));
    let key = String::from_utf8(o.stdout).expect("utf8").trim().to_owned();
    assert!(!key.is_empty() && !key.contains(char::is_whitespace), "one key printed, got {key:?}");
    key
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small real JPEG (the snapshot the incident links to).
fn write_jpeg(path: &Path) {
    let img = image::RgbImage::from_fn(320, 180, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 120]));
    img.save(path).expect("write JPEG");
}

#[test]
fn operator_sees_and_acknowledges_a_live_incident() {
    let e2e = repo_root().join("tests/e2e");
    assert!(
        e2e.join("node_modules/playwright-core/package.json").exists(),
        "playwright-core missing in tests/e2e (scripts/setup.sh installs it)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ioc");
    let operator = create_key(&data, "operator");
    let agent = create_key(&data, "agent");
    let port = free_port();
    let server = Server(
        Command::new(ioc_api_bin())
            .args(["serve", "--no-mqtt", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting ioc-api"),
    );
    assert!(wait_listening(([127, 0, 0, 1], port).into(), Duration::from_secs(20)), "ioc-api did not listen");

    let jpeg = dir.path().join("snapshot.jpg");
    write_jpeg(&jpeg);
    let screenshot = repo_root().join("target/dashboard-e2e.png");
    let _ = std::fs::remove_file(&screenshot);
    let o = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .current_dir(&e2e)
        .env("IOC_URL", format!("http://127.0.0.1:{port}"))
        .env("OPERATOR_KEY", &operator)
        .env("AGENT_KEY", &agent)
        .env("SNAPSHOT_JPEG", &jpeg)
        .env("SCREENSHOT", &screenshot)
        .output()
        .expect("running node (scripts/setup.sh installs nodejs)");
    drop(server);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("incident_id"), "the script reports the incident it acknowledged: {stdout}");
    let shot = image::open(&screenshot).expect("the screenshot is a PNG");
    assert!(shot.width() >= 1400 && shot.height() >= 900, "full-page screenshot, got {}x{}", shot.width(), shot.height());
}
