//! Bad input gets one clear line naming the cause, a non-zero exit, and no panic.

#[path = "common/mod.rs"]
mod common;

use common::{edge_agent, repo_root, sample, stderr};

fn assert_clean_failure(o: &std::process::Output, must_contain: &[&str]) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for needle in must_contain {
        assert!(err.contains(needle), "'{needle}' missing from: {err}");
    }
    err
}

#[test]
fn missing_clip() {
    let o = edge_agent(&["detect", "--input", "/nonexistent/clip.mp4"]);
    assert_clean_failure(&o, &["/nonexistent/clip.mp4", "not found"]);
}

#[test]
fn a_file_that_is_not_video() {
    let dir = tempfile::tempdir().expect("tmp");
    let bogus = dir.path().join("notes.mp4");
    std::fs::write(&bogus, "this is not a video\n".repeat(100)).expect("write");
    let o = edge_agent(&["detect", "--input", bogus.to_str().expect("utf8")]);
    assert_clean_failure(&o, &["notes.mp4", "not a decodable video"]);
    // Random bytes with a video extension.
    let noise = dir.path().join("noise.avi");
    std::fs::write(&noise, (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<u8>>()).expect("write");
    let o = edge_agent(&["detect", "--input", noise.to_str().expect("utf8")]);
    assert_clean_failure(&o, &["noise.avi", "not a decodable video"]);
}

#[test]
fn a_model_whose_manifest_disagrees_with_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    // The deimv2 ONNX file with a yolox manifest (sha256 edited to match, so the I/O check speaks).
    let onnx = dir.path().join("mislabelled.onnx");
    let real = roadsight_models::ModelManifest::resolve("deimv2_atto").expect("set-up installed deimv2_atto");
    std::fs::copy(&real.path, &onnx).expect("copy");
    let manifest = std::fs::read_to_string(repo_root().join("models/yolox_nano.toml"))
        .expect("manifest")
        .replace("695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14", &real.sha256)
        .replace("name = \"yolox_nano\"", "name = \"mislabelled\"");
    std::fs::write(dir.path().join("mislabelled.toml"), manifest).expect("write");
    let clip = sample("intersection_day_960x540.mp4");
    let o = edge_agent(&["detect", "--model", onnx.to_str().expect("utf8"), "--input", clip.to_str().expect("utf8")]);
    assert_clean_failure(&o, &["mislabelled", "inputs", "manifest"]);

    // The right manifest but a corrupted file: the sha256 check names it.
    let corrupt = dir.path().join("corrupt.onnx");
    let mut bytes = std::fs::read(&real.path).expect("read");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, bytes).expect("write");
    std::fs::copy(repo_root().join("models/deimv2_atto.toml"), dir.path().join("corrupt.toml")).expect("copy");
    let o = edge_agent(&["detect", "--model", corrupt.to_str().expect("utf8"), "--input", clip.to_str().expect("utf8")]);
    assert_clean_failure(&o, &["deimv2_atto", "sha256"]);
}

#[test]
fn unknown_model_name() {
    let clip = sample("intersection_day_960x540.mp4");
    let o = edge_agent(&["detect", "--model", "yolo_v99", "--input", clip.to_str().expect("utf8")]);
    assert_clean_failure(&o, &["yolo_v99", "yolox_nano"]);
}

#[test]
fn an_invalid_config_reports_every_error_with_its_key_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        r#"
site_id = "s"
[[cameras]]
id = "cam 1"
source = "missing.mp4"
[cameras.detector]
score_threshold = 2.0
[[cameras.lines]]
id = "l"
points = [[0.1, 0.5], [1.5, 0.5]]
forward = "in"
backward = "out"
"#,
    )
    .expect("write");
    let o = edge_agent(&["run", "--config", cfg.to_str().expect("utf8")]);
    let err = assert_clean_failure(
        &o,
        &["bad.toml", "cameras[0].id", "cameras[0].source", "cameras[0].detector.score_threshold", "cameras[0].lines[0].points[1][0]"],
    );
    assert!(err.contains("4 error(s)"), "{err}");
}

#[test]
fn a_config_with_a_typo_in_a_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("typo.toml");
    std::fs::write(&cfg, "site_id = \"s\"\n[[cameras]]\nid = \"c\"\nsource = \"x.mp4\"\nsorce_typo = 1\n").expect("write");
    let o = edge_agent(&["run", "--config", cfg.to_str().expect("utf8")]);
    assert_clean_failure(&o, &["typo.toml", "sorce_typo"]);
}
