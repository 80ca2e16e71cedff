//! `edge-agent track` and `edge-agent eval`'s MOT and line-count parts on a real clip.
//!
//! No shared clip has MOT ground truth, so the MOT checks evaluate the track CSV against
//! itself (the formats round-trip: MOTA 1, IDF1 1) and against a copy with one track renamed
//! half-way (exactly one ID switch and the IDF1 that implies). The counts check runs
//! `edge-agent run` and compares with the hand counts, as the README documents them.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{edge_agent, repo_root, stderr};
use serde_json::Value;

const CONFIG: &str = "samples/intersection_day_960x540.toml";

/// One `tracks.csv` row.
#[derive(Debug, Clone)]
struct Row {
    frame: u64,
    id: u64,
    rest: Vec<String>,
}

fn config() -> String {
    repo_root().join(CONFIG).to_str().expect("utf8").to_owned()
}

fn track(dir: &Path) -> (PathBuf, Vec<Row>) {
    let out = dir.join("tracks.csv");
    let o = edge_agent(&["track", "--config", &config(), "--out", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "track failed: {}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("tracks CSV");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("frame,track_id,x,y,w,h,class,score"));
    let rows: Vec<Row> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "row '{l}'");
            Row { frame: f[0].parse().expect("frame"), id: f[1].parse().expect("track id"), rest: f[2..].iter().map(|s| s.to_string()).collect() }
        })
        .collect();
    assert!(rows.len() > 100, "the clip has cars in every frame: {} rows", rows.len());
    (out, rows)
}

fn write_rows(path: &Path, rows: &[Row]) {
    let mut text = String::from("frame,track_id,x,y,w,h,class,score\n");
    for r in rows {
        text.push_str(&format!("{},{},{}\n", r.frame, r.id, r.rest.join(",")));
    }
    std::fs::write(path, text).expect("write CSV");
}

/// `edge-agent eval ARGS --json …` → (stdout, the JSON report).
fn eval(dir: &Path, tag: &str, args: &[&str]) -> (String, Value) {
    let json = dir.join(format!("{tag}.json"));
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", json.to_str().expect("utf8")]);
    let o = edge_agent(&all);
    assert!(o.status.success(), "eval {args:?} failed: {}", stderr(&o));
    let report = serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report")).expect("JSON");
    (String::from_utf8_lossy(&o.stdout).into_owned(), report)
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn track_csv_scores_perfectly_against_itself_and_a_renamed_track_is_one_switch() {
    let dir = tempfile::tempdir().expect("tmp");
    let (tracks, rows) = track(dir.path());
    let p = tracks.to_str().expect("utf8");

    let (stdout, report) = eval(dir.path(), "self", &["--mot-gt", p, "--mot-pred", p]);
    eprintln!("{stdout}");
    let mot = &report["mot"];
    assert!(report.get("detection").is_none() && report.get("counts").is_none(), "only the part asked for: {report}");
    assert_eq!(num(mot, "gt_boxes") as usize, rows.len());
    assert_eq!(num(mot, "matches") as usize, rows.len());
    for key in ["false_negatives", "false_positives", "id_switches", "idfp", "idfn"] {
        assert_eq!(num(mot, key), 0.0, "{key}: {mot}");
    }
    for key in ["mota", "motp", "idf1"] {
        assert_eq!(num(mot, key), 1.0, "{key}: {mot}");
    }

    // The longest track gets a new id from the middle of its life on: one ID switch; the best
    // global id mapping loses the shorter half.
    let mut per_track: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in &rows {
        per_track.entry(r.id).or_default().push(r.frame);
    }
    let (&longest, frames) = per_track.iter().max_by_key(|(id, f)| (f.len(), std::cmp::Reverse(**id))).expect("tracks");
    let cut = frames[frames.len() / 2];
    let renamed: Vec<Row> = rows
        .iter()
        .map(|r| Row { id: if r.id == longest && r.frame >= cut { 1_000_000 } else { r.id }, ..r.clone() })
        .collect();
    let renamed_path = dir.path().join("renamed.csv");
    write_rows(&renamed_path, &renamed);
    let (stdout, report) = eval(dir.path(), "renamed", &["--mot-gt", p, "--mot-pred", renamed_path.to_str().expect("utf8"), "--iou", "0.5"]);
    eprintln!("{stdout}");
    let mot = &report["mot"];
    let n = rows.len() as f64;
    let lost = frames.iter().filter(|&&f| f < cut).count().min(frames.iter().filter(|&&f| f >= cut).count()) as f64;
    assert_eq!((num(mot, "id_switches"), num(mot, "false_negatives"), num(mot, "false_positives")), (1.0, 0.0, 0.0), "{mot}");
    assert!((num(mot, "mota") - (1.0 - 1.0 / n)).abs() < 1e-12, "{mot}");
    assert_eq!((num(mot, "idfn"), num(mot, "idfp")), (lost, lost), "{mot}");
    assert!((num(mot, "idf1") - (n - lost) / n).abs() < 1e-12, "{mot}");
    assert!(stdout.contains("IDF1") && stdout.contains("IDSW"), "{stdout}");
}

fn run_events(dir: &Path) -> (PathBuf, Vec<Value>) {
    let events = dir.join("events.jsonl");
    let state = dir.join("state");
    let o = edge_agent(&["run", "--config", &config(), "--events", events.to_str().expect("utf8"), "--state-dir", state.to_str().expect("utf8")]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let parsed = std::fs::read_to_string(&events).expect("events").lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    (events, parsed)
}

#[test]
fn line_counts_of_run_match_the_hand_counts_and_track_exports_the_same_tracks() {
    let dir = tempfile::tempdir().expect("tmp");
    let (events_path, events) = run_events(dir.path());
    let hand = repo_root().join("samples/intersection_day_960x540.counts.csv");
    let (stdout, report) = eval(
        dir.path(),
        "counts",
        &["--counts-gt", hand.to_str().expect("utf8"), "--events", events_path.to_str().expect("utf8")],
    );
    eprintln!("{stdout}");
    let counts = &report["counts"];
    let rows: Vec<(String, String, u64, u64, u64)> = counts["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().expect("string").to_owned();
            let n = |k: &str| r[k].as_u64().expect("count");
            (s("line_id"), s("direction"), n("hand_count"), n("counted"), n("abs_error"))
        })
        .collect();
    // The README's table: stop_line away 6 → 6, towards 0 → 0.
    assert_eq!(
        rows,
        vec![
            ("stop_line".to_owned(), "away_from_camera".to_owned(), 6, 6, 0),
            ("stop_line".to_owned(), "towards_camera".to_owned(), 0, 0, 0),
        ]
    );
    assert_eq!((num(&counts["total"], "abs_error"), num(&counts["total"], "pct_error")), (0.0, 0.0));
    // Independent tally of the same file: eval counted every crossing once.
    let crossings: Vec<&Value> = events.iter().filter(|e| e["type"] == "line_crossing").collect();
    assert_eq!(crossings.len() as u64, rows.iter().map(|r| r.3).sum::<u64>());

    // `track` runs the camera as `run` does: every crossing's object is a row of the track
    // CSV, same id, class and box (to the CSV's 0.01 px).
    let (_, tracks) = track(dir.path());
    for e in &crossings {
        let o = &e["object"];
        let id = o["track_id"].as_u64().expect("track id");
        let class = o["class"].as_str().expect("class");
        let b: Vec<f64> = o["bbox"].as_array().expect("bbox").iter().map(|v| v.as_f64().expect("number")).collect();
        let found = tracks.iter().any(|r| {
            let xywh: Vec<f64> = r.rest[..4].iter().map(|s| s.parse().expect("number")).collect();
            r.id == id && r.rest[4] == class && xywh.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 0.006)
        });
        assert!(found, "crossing object {o} is not in the track CSV");
    }
}

/// `edge-agent eval --counts-sweep` on `config` → its JSON report's `counts_sweep` part.
fn sweep(dir: &Path, config: &Path, hand: &str, rates: &str) -> Value {
    let hand = repo_root().join(hand);
    let (stdout, report) = eval(
        dir,
        "sweep",
        &["--counts-sweep", "--config", config.to_str().expect("utf8"), "--counts-gt", hand.to_str().expect("utf8"), "--rates", rates],
    );
    eprintln!("{stdout}");
    report["counts_sweep"].clone()
}

fn total_counted(rate: &Value) -> f64 {
    num(&rate["counts"]["total"], "counted")
}

#[test]
fn a_highway_clip_detected_on_every_8th_frame_counts_within_10_percent_of_full_rate() {
    // highway_cdnet is ≈ 60 fps: 7.5 detected frames a second keeps every 8th frame (with
    // its own timestamp), 2.5 every 24th. Cars move more than their own length between two
    // detections at 2.5.
    let dir = tempfile::tempdir().expect("tmp");
    let config = repo_root().join("samples/highway_cdnet_320x240.toml");
    let report = sweep(dir.path(), &config, "samples/highway_cdnet_320x240.counts.csv", "all,7.5,2.5");
    let rates = report["rates"].as_array().expect("rates");
    let decoded = num(&report, "decoded_frames");
    let full = total_counted(&rates[0]);
    assert!(full >= 25.0, "the full-rate count is near the 28 hand-counted cars: {full}");
    for (rate, every) in [(&rates[1], 8.0), (&rates[2], 24.0)] {
        let detected = num(rate, "detected_frames");
        assert!((detected - decoded / every).abs() <= 2.0, "every {every}th frame: {detected} of {decoded}");
        let counted = total_counted(rate);
        assert!((counted - full).abs() <= 0.1 * full, "{} detected frames: {counted} counted, {full} at full rate", detected);
    }
}

#[test]
fn the_sweep_at_a_rate_counts_what_run_counts_with_that_max_detect_fps() {
    // The same camera with `max_detect_fps = 5`, run end to end, against the sweep's 5 fps
    // replay of its every-frame detections: the same crossings per line and direction.
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(config()).expect("sample config");
    let clip = repo_root().join("../shared/samples/intersection_day_960x540.mp4");
    let capped = text
        .replace("../../shared/samples/intersection_day_960x540.mp4", clip.to_str().expect("utf8"))
        .replacen("[cameras.detector]", "max_detect_fps = 5\n\n[cameras.detector]", 1);
    assert!(capped.contains("max_detect_fps = 5") && capped.contains(clip.to_str().expect("utf8")), "{capped}");
    let capped_path = dir.path().join("capped.toml");
    std::fs::write(&capped_path, capped).expect("write config");
    let events = dir.path().join("events.jsonl");
    let state = dir.path().join("state");
    let o = edge_agent(&[
        "run",
        "--config",
        capped_path.to_str().expect("utf8"),
        "--events",
        events.to_str().expect("utf8"),
        "--state-dir",
        state.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let hand = "samples/intersection_day_960x540.counts.csv";
    let (_, run_report) = eval(
        dir.path(),
        "run",
        &["--counts-gt", repo_root().join(hand).to_str().expect("utf8"), "--events", events.to_str().expect("utf8")],
    );
    let report = sweep(dir.path(), &capped_path, hand, "5");
    let rows = |v: &Value| -> Vec<(String, u64)> {
        v["rows"].as_array().expect("rows").iter().map(|r| (r["direction"].as_str().expect("dir").to_owned(), r["counted"].as_u64().expect("n"))).collect()
    };
    assert_eq!(rows(&report["rates"][0]["counts"]), rows(&run_report["counts"]));
    assert!(total_counted(&report["rates"][0]) >= 5.0, "{report}");
}
