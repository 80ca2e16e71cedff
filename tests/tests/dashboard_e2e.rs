//! The operator dashboard end to end in headless Chromium (Debian's package, driven by
//! playwright-core from `tests/e2e/`): a real `ioc-api` process serves the page; the browser
//! signs in as a user made with `ioc-api users create`, sees a live incident (pushed over HTTP
//! by an agent made with `ioc-api agents create`, while the page is open) arrive with its
//! snapshot thumbnail, acknowledges it through the UI, checks that the audit trail names the
//! user and that no request URL held a secret (password, session token, agent key), sees the
//! count chart, opens the incident's evidence clip (cut from a shared H.264 clip by the agent's
//! own code, uploaded by the agent) and plays it, takes a screenshot
//! (`target/dashboard-e2e.png`) and signs out.

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

/// `ioc-api users create`, the password from a file (never the command line).
fn create_user(data_dir: &Path, name: &str, role: &str, password: &str) {
    let file = data_dir.with_file_name(format!("{name}.password"));
    std::fs::write(&file, format!("{password}\n")).expect("password file");
    let o: Output = Command::new(ioc_api_bin())
        .args(["users", "create", "--name", name, "--role", role, "--password-file"])
        .arg(&file)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("running ioc-api users create");
    assert!(o.status.success(), "users create: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(password) && !String::from_utf8_lossy(&o.stderr).contains(password));
}

/// `ioc-api agents create`: returns the agent's secret (its MQTT password and HTTP API key).
fn create_agent(data_dir: &Path, site: &str, name: &str) -> String {
    let o: Output = Command::new(ioc_api_bin())
        .args(["agents", "create", "--site", site, "--name", name, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("running ioc-api agents create");
    assert!(o.status.success(), "agents create: {}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).expect("utf8");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("password = \"").and_then(|rest| rest.strip_suffix('"')))
        .unwrap_or_else(|| panic!("a `password = \"…\"` line in {out:?}"))
        .to_owned();
    assert!(!secret.is_empty() && !secret.contains(char::is_whitespace), "{secret:?}");
    secret
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

/// An evidence clip as the agent cuts it: the source's own H.264 from a keyframe, in MP4.
fn write_clip(path: &Path) {
    use roadsight_pipeline::source::{EvidenceSpec, Pacing, SourceEvent, SourceSpec, VideoSource};
    let spec = SourceSpec::new(common::sample("intersection_day_960x540.mp4").display().to_string(), Pacing::EveryFrame)
        .with_evidence(Some(EvidenceSpec { keep: Duration::from_secs(30), max_bytes: 32 << 20 }));
    let mut src = VideoSource::open(&spec).expect("open the sample");
    while let SourceEvent::Frame(_) = src.next(Duration::from_secs(10)).expect("decoding") {}
    let cut = src.evidence().expect("ring").cut(Duration::from_secs(2), Duration::from_secs(6)).expect("a cut");
    let mp4 = cut.to_mp4(path.parent().expect("folder")).expect("mux");
    std::fs::write(path, mp4.bytes).expect("write the clip");
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
    std::fs::create_dir_all(&data).expect("data dir");
    let (user, password) = ("linh.tran", "nhanh-nhu-chop 2026!");
    create_user(&data, user, "operator", password);
    let agent = create_agent(&data, "e2e", "agent-e2e");
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
    let clip = dir.path().join("clip.mp4");
    write_clip(&clip);
    let screenshot = repo_root().join("target/dashboard-e2e.png");
    let _ = std::fs::remove_file(&screenshot);
    let o = Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .current_dir(&e2e)
        .env("IOC_URL", format!("http://127.0.0.1:{port}"))
        .env("USER_NAME", user)
        .env("USER_PASSWORD", password)
        .env("AGENT_KEY", &agent)
        .env("SNAPSHOT_JPEG", &jpeg)
        .env("CLIP_MP4", &clip)
        .env("SCREENSHOT", &screenshot)
        .output()
        .expect("running node (scripts/setup.sh installs nodejs)");
    drop(server);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("incident_id"), "the script reports the incident it acknowledged: {stdout}");
    assert!(stdout.contains(&format!("\"audit_actor\":\"user {user}\"")), "the audit trail names the user: {stdout}");
    assert!(stdout.contains("\"clip_played\""), "the evidence clip played: {stdout}");
    let shot = image::open(&screenshot).expect("the screenshot is a PNG");
    assert!(shot.width() >= 1400 && shot.height() >= 900, "full-page screenshot, got {}x{}", shot.width(), shot.height());
}
