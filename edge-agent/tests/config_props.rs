//! Property test of the agent config parser and validator (`edge_agent::config::parse`) over
//! untrusted TOML: a full valid config with one key removed, set to an odd value or joined by
//! an unknown key, and arbitrary or damaged text. Never a panic; an invalid config is refused
//! with errors that name the key (its path, or for syntax errors the line that holds it); an
//! accepted one holds only values in range. Fixed seed, no failure files. Prints one line of
//! figures.

use std::cell::Cell;
use std::time::Instant;

use edge_agent::config::{parse, AgentConfig, ConfigError};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use toml::Value;

/// Every section and most keys, valid as it is, and nothing read from disk (network sources,
/// plain MQTT).
const BASE: &str = r#"
site_id = "hanoi"
agent_id = "edge-1"
outbox_max_mb = 64
detector_workers = 2
http_listen = "127.0.0.1:9108"

[mqtt]
url = "mqtt://broker:1883"
username = "u"
password = "p"
keep_alive_secs = 30

[[cameras]]
id = "c1"
name = "Boulevard"
source = "rtsp://user:pass@10.0.0.1/stream"
mode = "live"
counts_interval_secs = 60.0
max_detect_fps = 10.0
incident_update_secs = 5.0
location = { lat = 21.0, lon = 105.8, road = "Le Loi" }

[cameras.detector]
model = "yolox_nano_dynamic_hw"
score_threshold = 0.3
nms_iou = 0.45
input_long_side = 960
roi = [0.0, 0.2, 1.0, 1.0]
tiles = { rows = 2, cols = 2, overlap = 0.2, full_frame = true, merge_iou = 0.5, merge_ios = 0.8 }
threads = 2
classes = ["car", "motorcycle", "bus", "truck", "person", "bicycle"]
class_thresholds = { motorcycle = 0.2, person = 0.4 }

[cameras.tracker]
high_score = 0.5
low_score = 0.1
new_track_score = 0.6
match_iou = 0.3
lost_timeout_secs = 2.0

[cameras.night]
from = "18:00"
to = "06:00"
utc_offset_hours = 7.0
score_threshold = 0.25
class_thresholds = { motorcycle = 0.1 }
input_long_side = 1280

[cameras.fusion]
min_speed_px_s = 60.0
speed_window_secs = 1.0

[cameras.speeding]
image_points = [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]
ground_points_m = [[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [0.0, 20.0]]
limit_kmh = 50.0
min_secs = 1.0

[[cameras.lines]]
id = "l1"
points = [[0.1, 0.6], [0.9, 0.6]]
forward = "north"
backward = "south"
classes = ["car"]
anchor = "bottom_center"
hysteresis_px = 6.0

[[cameras.zones]]
id = "z1"
polygon = [[0.0, 0.3], [1.0, 0.3], [1.0, 1.0], [0.0, 1.0]]
classes = ["car"]
anchor = "center"
direction = [0.0, 1.0]
kind = "carriageway"
stopped_vehicle = { after_secs = 30.0, max_speed_px_s = 5.0 }
wrong_way = { min_distance_px = 40.0 }
congestion = { window_secs = 30.0, heavy_occupancy = 0.4, congested_occupancy = 0.7, slow_speed_px_s = 15.0 }

[[cameras]]
id = "c2"
source = "rtsp://10.0.0.2/s"
"#;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `cameras[0].detector.score_threshold`, as the validator writes key paths.
fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => s.push_str(&format!(".{k}")),
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, bool)>) {
    match v {
        Value::Table(t) => {
            out.push((prefix.clone(), true));
            for (k, child) in t {
                prefix.push(Seg::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            out.push((prefix.clone(), false));
            for (i, child) in a.iter().enumerate() {
                prefix.push(Seg::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push((prefix.clone(), false)),
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[Seg]) -> &'v mut Value {
    path.iter().fold(v, |v, seg| match (v, seg) {
        (Value::Table(t), Seg::Key(k)) => t.get_mut(k).expect("a path from `paths`"),
        (Value::Array(a), Seg::Index(i)) => &mut a[*i],
        _ => unreachable!("a path from `paths`"),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    AddKey(String, Value),
}

#[derive(Debug, Clone)]
struct Mutated {
    text: String,
    path: Vec<Seg>,
    mutation: Mutation,
}

/// Values a key should not hold, and some it may.
fn odd_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        any::<bool>().prop_map(Value::Boolean),
        prop::sample::select(vec![0i64, -1, 1, 2, 5, 65536, i64::MAX, i64::MIN, u32::MAX as i64 + 1]).prop_map(Value::Integer),
        any::<i64>().prop_map(Value::Integer),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300, -0.0, 0.5, 1.5, -0.5, 5e-324, 1e-9])
            .prop_map(Value::Float),
        any::<f64>().prop_map(Value::Float),
        prop::sample::select(vec!["", "NaN", "ünïcødé 🚗", "\u{0}", "rtsp://x", "mqtts://broker", "car", "18:00", "25:99", "center", "c2", "127.0.0.1:0", "file"])
            .prop_map(|s| Value::String(s.to_owned())),
        ".{0,24}".prop_map(Value::String),
        (1usize..20_000).prop_map(|n| Value::String("x".repeat(n))),
    ];
    scalar.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3).prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

fn mutate(base: &Value, pick: Index, mutation: Mutation) -> Option<Mutated> {
    let mut doc = base.clone();
    let mut all = Vec::new();
    paths(&doc, &mut Vec::new(), &mut all);
    let candidates: Vec<Vec<Seg>> = all
        .into_iter()
        .filter(|(p, is_table)| match mutation {
            Mutation::AddKey(..) => *is_table,
            _ => !p.is_empty(),
        })
        .map(|(p, _)| p)
        .collect();
    let mut path = pick.get(&candidates).clone();
    match &mutation {
        Mutation::Replace(v) => *at_mut(&mut doc, &path) = v.clone(),
        Mutation::Remove => {
            let (last, parent) = path.split_last().expect("not the root");
            match (at_mut(&mut doc, parent), last) {
                (Value::Table(t), Seg::Key(k)) => {
                    t.remove(k);
                }
                (Value::Array(a), Seg::Index(i)) => {
                    a.remove(*i);
                }
                _ => unreachable!("a path's parent holds it"),
            }
        }
        Mutation::AddKey(k, v) => {
            if let Value::Table(t) = at_mut(&mut doc, &path) {
                t.insert(k.clone(), v.clone());
            }
            path.push(Seg::Key(k.clone()));
        }
    }
    // Some documents have no TOML text (a table after an array of values, say): not a case.
    let text = toml::to_string(&doc).ok()?;
    Some(Mutated { text, path, mutation })
}

/// The path before the first ": " of a validation error.
fn error_path(e: &str) -> &str {
    e.split_once(": ").map_or(e, |(p, _)| p)
}

/// `a` is `b` or a key above or below it.
fn related(a: &str, b: &str) -> bool {
    let under = |long: &str, short: &str| {
        long.strip_prefix(short).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    under(a, b) || under(b, a)
}

impl Mutated {
    /// The leaf key of the change (for a changed array element, the array's key).
    fn leaf(&self) -> Option<&str> {
        self.path.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
    }

    /// True when `err` points at the change: a syntax error shows the line of its key or
    /// names it, a validation error gives the key's path, one above or below it, or (for rules
    /// that tie keys together: `mqtt.password` without `mqtt.username`) one in the same table.
    fn is_named_by(&self, err: &ConfigError) -> bool {
        let at = path_string(&self.path);
        let parent = path_string(&self.path[..self.path.len() - 1]);
        match err {
            // A new table's own keys may be the ones at fault (its line, or "unknown field `a`").
            ConfigError::Syntax { message, .. } => {
                let mut keys: Vec<&str> = self.leaf().into_iter().collect();
                if let Mutation::Replace(v) | Mutation::AddKey(_, v) = &self.mutation {
                    table_keys(v, &mut keys);
                }
                keys.is_empty() || keys.iter().any(|k| message.contains(k)) || message.contains("missing field `")
            }
            ConfigError::Invalid { errors, .. } => errors.iter().map(|e| error_path(e)).any(|p| {
                related(p, &at) || (!parent.is_empty() && related(p, &parent))
            }),
            _ => false,
        }
    }
}

fn table_keys<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::Table(t) => t.iter().for_each(|(k, child)| {
            out.push(k);
            table_keys(child, out);
        }),
        Value::Array(a) => a.iter().for_each(|child| table_keys(child, out)),
        _ => {}
    }
}

/// What an accepted config may hold.
fn check_accepted(c: &AgentConfig) -> Result<(), TestCaseError> {
    prop_assert!(c.outbox_max_bytes > 0, "outbox_max_bytes {}", c.outbox_max_bytes);
    let unit = |v: f32| (0.0..=1.0).contains(&v);
    for cam in &c.cameras {
        prop_assert!(cam.detector.score_threshold.is_none_or(unit), "score_threshold {:?}", cam.detector.score_threshold);
        prop_assert!(cam.detector.nms_iou.is_none_or(unit), "nms_iou {:?}", cam.detector.nms_iou);
        let t = &cam.tracker;
        for (name, v) in [("high_score", t.high_score), ("low_score", t.low_score), ("new_track_score", t.new_track_score), ("match_iou", t.match_iou)] {
            prop_assert!(unit(v), "tracker.{name} {v}");
        }
        if let Some(l) = &cam.location {
            prop_assert!((-90.0..=90.0).contains(&l.lat) && (-180.0..=180.0).contains(&l.lon), "location {l:?}");
        }
    }
    Ok(())
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config { failure_persistence: None, rng_seed: RngSeed::Fixed(seed), ..Config::with_cases(cases) })
}

const MUTATED: u32 = 80_000;
const TEXT: u32 = 20_000;

#[test]
fn config_parser_survives_untrusted_toml_and_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("agent.toml");
    let started = Instant::now();
    let base: Value = toml::from_str(BASE).expect("the base config is TOML");
    parse(BASE, &file).expect("the base config is valid");

    let (accepted, syntax, invalid) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let mutation = prop_oneof![
        1 => Just(Mutation::Remove),
        3 => odd_value().prop_map(Mutation::Replace),
        1 => ("zz_[a-z0-9_]{0,12}", odd_value()).prop_map(|(k, v)| Mutation::AddKey(k, v)),
    ];
    let mutated = (any::<Index>(), mutation).prop_filter_map("no TOML text", |(pick, m)| mutate(&base, pick, m));
    runner(MUTATED, 0x5eed_0004)
        .run(&mutated, |m| {
            match parse(&m.text, &file) {
                Ok(c) => {
                    accepted.set(accepted.get() + 1);
                    check_accepted(&c)?;
                }
                Err(err) => {
                    let counter = if matches!(err, ConfigError::Syntax { .. }) { &syntax } else { &invalid };
                    counter.set(counter.get() + 1);
                    prop_assert!(m.is_named_by(&err), "{:?} at {}: not named by: {err}", m.mutation, path_string(&m.path));
                }
            }
            Ok(())
        })
        .expect("a broken key is named, an accepted config is in range");

    // Text: the base config with characters replaced, inserted or cut, or any text.
    let damaged = (proptest::collection::vec((any::<Index>(), ".{0,3}"), 1..4), any::<Index>()).prop_map(|(edits, cut)| {
        let mut chars: Vec<char> = BASE.chars().collect();
        for (at, s) in edits {
            let i = at.index(chars.len());
            chars.splice(i..i + 1, s.chars());
        }
        chars.truncate(cut.index(chars.len() + 1).max(chars.len() / 2));
        chars.into_iter().collect::<String>()
    });
    let text = prop_oneof![3 => damaged, 1 => ".{0,200}", 1 => "([a-z_.\\[\\]]{1,12} ?= ?[-0-9a-z\"'\\[\\]{}., ]{0,16}\n){0,8}"];
    let (text_accepted, text_syntax, text_invalid) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    runner(TEXT, 0x5eed_0005)
        .run(&text, |text| {
            match parse(&text, &file) {
                Ok(c) => {
                    text_accepted.set(text_accepted.get() + 1);
                    check_accepted(&c)?;
                }
                Err(ConfigError::Syntax { message, .. }) => {
                    text_syntax.set(text_syntax.get() + 1);
                    prop_assert!(message.contains("line ") || message.contains("missing field"), "no location: {message}");
                }
                Err(ConfigError::Invalid { errors, .. }) => {
                    text_invalid.set(text_invalid.get() + 1);
                    prop_assert!(!errors.is_empty() && errors.iter().all(|e| !error_path(e).is_empty() && e.contains(": ")), "{errors:?}");
                }
                Err(other) => prop_assert!(false, "unexpected error: {other}"),
            }
            Ok(())
        })
        .expect("no text panics the parser");

    println!(
        "fuzz agent config: {} cases in {:.1} s — {MUTATED} broken configs ({} syntax/type errors, {} validation errors, all naming the key; {} still valid and in range), {TEXT} texts ({} syntax, {} invalid, {} valid)",
        MUTATED + TEXT,
        started.elapsed().as_secs_f64(),
        syntax.get(),
        invalid.get(),
        accepted.get(),
        text_syntax.get(),
        text_invalid.get(),
        text_accepted.get(),
    );
}
