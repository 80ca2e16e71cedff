//! The night profile's input size: a dynamic-size model runs at a larger input while the
//! camera's local time is inside `[night]`, switching at the frame whose stream time crosses
//! `from` (stream time, never the wall clock), through the same path `run` uses
//! (`edge-agent track`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{edge_agent, sample, stderr};

const CLIP: &str = "motorbikes_vn_intersection_wide_1280x720.mp4";

/// A config for the dense motorbike clip: by day yolox_nano_dynamic_hw at 416 wide; from
/// local `night_from` to 23:00 at 1280 wide. PTS 0 is 11:59:57 UTC (offset 0), so a night
/// from 12:00 starts 3 s into the 6.4 s clip.
fn config(dir: &Path, name: &str, night_from: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"site_id = "t"
[[cameras]]
id = "junction"
source = "{clip}"
start_time = "2020-01-01T11:59:57Z"
[cameras.detector]
model = "yolox_nano_dynamic_hw"
input_long_side = 416
score_threshold = 0.3
[cameras.night]
from = "{night_from}"
to = "23:00"
utc_offset_hours = 0
input_long_side = 1280
"#,
        clip = sample(CLIP).display()
    );
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("utf8").to_owned()
}

/// Confirmed track rows per frame.
fn tracked(dir: &Path, name: &str, night_from: &str) -> BTreeMap<u64, Vec<String>> {
    let out = dir.join(format!("{name}.csv"));
    let o = edge_agent(&["track", "--config", &config(dir, name, night_from), "--out", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "track {name} failed: {}", stderr(&o));
    let mut rows: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(&out).expect("read tracks").lines().skip(1) {
        let frame = line.split(',').next().and_then(|f| f.parse().ok()).expect("frame column");
        rows.entry(frame).or_default().push(line.to_owned());
    }
    rows
}

#[test]
fn night_input_size_applies_from_the_night_start_on_stream_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let day = tracked(dir.path(), "day", "22:00");
    let night = tracked(dir.path(), "night", "11:00");
    let switching = tracked(dir.path(), "switching", "12:00");
    let count = |m: &BTreeMap<u64, Vec<String>>, frames: std::ops::Range<u64>| -> usize {
        m.range(frames).map(|(_, r)| r.len()).sum()
    };
    // 12:00 is 3 s into the clip: about frame 90 at 30 fps (its timestamps are slightly
    // irregular, so compare frames clearly before and after).
    let (all, before, after) = (0..u64::MAX, 0..80, 100..u64::MAX);
    eprintln!(
        "track rows: day {} / night {} / switching {} (before 3 s {}, after {})",
        count(&day, all.clone()),
        count(&night, all.clone()),
        count(&switching, all.clone()),
        count(&switching, before.clone()),
        count(&switching, after.clone())
    );
    // 1280 wide finds far more of the small motorbikes than 416 wide.
    assert!(
        count(&night, all.clone()) as f64 > 1.5 * count(&day, all) as f64,
        "night input size should find many more objects"
    );
    // Before 12:00 the switching run is the day run, frame for frame.
    let same = switching.range(before.clone()).eq(day.range(before.clone()));
    assert!(same && count(&day, before) > 0, "identical to the day run before the night starts");
    // After it, the larger input's many more objects.
    assert!(
        count(&switching, after.clone()) as f64 > 1.3 * count(&day, after) as f64,
        "the night input size should apply from 12:00 on"
    );
}
