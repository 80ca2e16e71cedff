//! Line-count accuracy: the `line_crossing` events of `edge-agent run --events` against a
//! hand-count CSV `line_id,direction,class,count` (`samples/*.counts.csv`), where `class` is
//! `all` (every class), `two_wheeler` (motorcycles and bicycles: a bike once, whatever its
//! riders) or one traffic class (`car`, `motorcycle`, …).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use roadsight_events::{EventBody, LineCrossing, ObjectClass};
use serde::{Deserialize, Serialize};

use super::{read_csv, read_events};

/// The class column value meaning "every class".
const ALL: &str = "all";
/// The class column value meaning "motorcycle or bicycle".
const TWO_WHEELER: &str = "two_wheeler";

/// Whether a crossing of class `c` counts towards a hand-count row of class `hand_class`.
fn counts_towards(hand_class: &str, c: ObjectClass) -> bool {
    match hand_class {
        ALL => true,
        TWO_WHEELER => matches!(c, ObjectClass::Motorcycle | ObjectClass::Bicycle),
        name => c.as_str() == name,
    }
}

#[derive(Debug, Deserialize)]
pub struct HandRow {
    line_id: String,
    direction: String,
    class: String,
    count: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountRow {
    pub line_id: String,
    pub direction: String,
    pub class: String,
    pub hand_count: u64,
    pub counted: u64,
    /// |counted − hand count|.
    pub abs_error: u64,
    /// `abs_error` as a percentage of the hand count (`None` when the hand count is 0).
    pub pct_error: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountsReport {
    /// The camera whose events were counted (`None`: the events name a single camera or none).
    pub camera: Option<String>,
    pub rows: Vec<CountRow>,
    /// Sums over the rows; `abs_error` is the sum of the rows' absolute errors (an over-count
    /// on one line does not cancel an under-count on another).
    pub total: CountRow,
    /// Crossings on a (line, direction) the hand counts do not cover: (line, direction, class, count).
    pub not_in_hand_counts: Vec<(String, String, String, u64)>,
}

/// Crossings per (line, direction, class).
type Crossings = BTreeMap<(String, String, ObjectClass), u64>;

pub fn evaluate_files(hand_counts: &Path, events: &Path, camera: Option<&str>) -> anyhow::Result<CountsReport> {
    let hand = read_hand_counts(hand_counts)?;
    let crossings = read_crossings(events, camera)?;
    Ok(report(&hand.0, &crossings, camera))
}

/// Hand counts of a CSV, every row's class checked (the error names the file and row).
pub fn read_hand_counts(path: &Path) -> anyhow::Result<HandCounts> {
    let hand: Vec<HandRow> = read_csv(path)?;
    for (i, r) in hand.iter().enumerate() {
        anyhow::ensure!(
            r.class == ALL || r.class == TWO_WHEELER || class_named(&r.class).is_some(),
            "{}: row {}: class '{}' is neither `all`, `two_wheeler` nor a traffic class ({})",
            path.display(),
            i + 2,
            r.class,
            ObjectClass::ALL.map(ObjectClass::as_str).join(", ")
        );
    }
    Ok(HandCounts(hand))
}

/// The rows of a hand-count CSV.
#[derive(Debug)]
pub struct HandCounts(Vec<HandRow>);

/// Counts crossings as [`read_crossings`] does, from payloads instead of a file (a replay).
#[derive(Debug, Default, Clone)]
pub struct CrossingTally(Crossings);

impl CrossingTally {
    pub fn add(&mut self, c: &LineCrossing) {
        *self.0.entry((c.line_id.clone(), c.direction.clone(), c.object.class)).or_default() += 1;
    }

    /// The report of these crossings against `hand`.
    pub fn report(&self, hand: &HandCounts, camera: Option<&str>) -> CountsReport {
        report(&hand.0, &self.0, camera)
    }
}

fn class_named(name: &str) -> Option<ObjectClass> {
    ObjectClass::ALL.into_iter().find(|c| c.as_str() == name)
}

/// `line_crossing` events of a JSON-lines file, once per `event_id` (a redelivered event is
/// one crossing), of `camera` when given; events of several cameras need `camera`.
fn read_crossings(path: &Path, camera: Option<&str>) -> anyhow::Result<Crossings> {
    let mut crossings = Crossings::new();
    for event in read_events(path, camera, |b| matches!(b, EventBody::LineCrossing(_)))? {
        if let EventBody::LineCrossing(c) = &event.body {
            *crossings.entry((c.line_id.clone(), c.direction.clone(), c.object.class)).or_default() += 1;
        }
    }
    Ok(crossings)
}

fn row(line_id: &str, direction: &str, class: &str, hand_count: u64, counted: u64) -> CountRow {
    let abs_error = counted.abs_diff(hand_count);
    CountRow {
        line_id: line_id.to_owned(),
        direction: direction.to_owned(),
        class: class.to_owned(),
        hand_count,
        counted,
        abs_error,
        pct_error: (hand_count > 0).then(|| 100.0 * abs_error as f64 / hand_count as f64),
    }
}

fn report(hand: &[HandRow], crossings: &Crossings, camera: Option<&str>) -> CountsReport {
    let rows: Vec<CountRow> = hand
        .iter()
        .map(|h| {
            let counted = crossings
                .iter()
                .filter(|((l, d, c), _)| *l == h.line_id && *d == h.direction && counts_towards(&h.class, *c))
                .map(|(_, n)| n)
                .sum();
            row(&h.line_id, &h.direction, &h.class, h.count, counted)
        })
        .collect();
    let covered: HashSet<(&str, &str)> = hand.iter().map(|h| (h.line_id.as_str(), h.direction.as_str())).collect();
    let not_in_hand_counts = crossings
        .iter()
        .filter(|((l, d, _), _)| !covered.contains(&(l.as_str(), d.as_str())))
        .map(|((l, d, c), n)| (l.clone(), d.clone(), c.as_str().to_owned(), *n))
        .collect();
    let hand_total = rows.iter().map(|r| r.hand_count).sum();
    let mut total = row("total", "", "", hand_total, rows.iter().map(|r| r.counted).sum());
    total.abs_error = rows.iter().map(|r| r.abs_error).sum();
    total.pct_error = (hand_total > 0).then(|| 100.0 * total.abs_error as f64 / hand_total as f64);
    CountsReport { camera: camera.map(str::to_owned), rows, total, not_in_hand_counts }
}

impl fmt::Display for CountsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |p: Option<f64>| p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"));
        writeln!(f, "line counts{}:", self.camera.as_ref().map_or(String::new(), |c| format!(" (camera {c})")))?;
        writeln!(f, "{:<16} {:<20} {:<10} {:>6} {:>8} {:>6} {:>7}", "line", "direction", "class", "hand", "counted", "|err|", "err %")?;
        for r in self.rows.iter().chain(std::iter::once(&self.total)) {
            writeln!(
                f,
                "{:<16} {:<20} {:<10} {:>6} {:>8} {:>6} {:>7}",
                r.line_id, r.direction, r.class, r.hand_count, r.counted, r.abs_error, pct(r.pct_error)
            )?;
        }
        for (l, d, c, n) in &self.not_in_hand_counts {
            writeln!(f, "not in the hand counts: {l} {d} {c}: {n} crossing(s)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `line_crossing` event line as `edge-agent run --events` writes it.
    fn crossing(n: u32, camera: &str, line: &str, direction: &str, class: &str) -> String {
        format!(
            r#"{{"schema":1,"event_id":"01a1fe69-4278-71df-ac0c-c864f8d9{n:04}","seq":{n},"site_id":"s","camera_id":"{camera}","agent_id":"a","occurred_at":"2020-01-01T00:00:01.766Z","pts_ms":1766,"type":"line_crossing","line_id":"{line}","direction":"{direction}","object":{{"track_id":{n},"class":"{class}","confidence":0.74,"bbox":[240.7,295.9,78.5,85.5]}}}}"#
        )
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn two_wheeler_rows_count_motorcycles_and_bicycles_but_not_riders() {
        let dir = tempfile::tempdir().expect("tmp");
        let events = [
            crossing(1, "cam", "l", "in", "motorcycle"),
            crossing(2, "cam", "l", "in", "bicycle"),
            crossing(3, "cam", "l", "in", "person"),
            crossing(4, "cam", "l", "in", "car"),
        ];
        let events = write(dir.path(), "e.jsonl", &(events.join("\n") + "\n"));
        let hand = write(dir.path(), "h.csv", "line_id,direction,class,count\nl,in,two_wheeler,3\n");
        let r = evaluate_files(&hand, &events, None).expect("counts");
        assert_eq!((r.rows[0].hand_count, r.rows[0].counted), (3, 2));
    }

    #[test]
    fn counts_per_line_direction_and_class() {
        let dir = tempfile::tempdir().expect("tmp");
        let events = [
            crossing(1, "cam", "stop", "in", "car"),
            crossing(2, "cam", "stop", "in", "truck"),
            crossing(2, "cam", "stop", "in", "truck"), // redelivered: same event_id
            crossing(3, "cam", "stop", "in", "motorcycle"),
            crossing(4, "cam", "stop", "out", "car"),
            crossing(5, "cam", "side", "in", "car"),
            r#"{"schema":1,"event_id":"01a1fe69-4278-71df-ac0c-c864f8d99999","seq":9,"site_id":"s","camera_id":"cam","agent_id":"a","occurred_at":"2020-01-01T00:00:05Z","pts_ms":5000,"type":"counts","interval_start":"2020-01-01T00:00:00Z","interval_ms":5000,"rows":[]}"#.to_owned(),
        ];
        let events = write(dir.path(), "e.jsonl", &(events.join("\n") + "\n"));
        let hand = write(dir.path(), "h.csv", "line_id,direction,class,count\nstop,in,all,4\nstop,out,all,0\nstop,in,motorcycle,2\n");
        let r = evaluate_files(&hand, &events, None).expect("counts");
        type Got<'a> = (&'a str, &'a str, &'a str, u64, u64, u64, Option<f64>);
        let got: Vec<Got<'_>> = r
            .rows
            .iter()
            .map(|r| (r.line_id.as_str(), r.direction.as_str(), r.class.as_str(), r.hand_count, r.counted, r.abs_error, r.pct_error))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stop", "in", "all", 4, 3, 1, Some(25.0)),
                ("stop", "out", "all", 0, 1, 1, None),
                ("stop", "in", "motorcycle", 2, 1, 1, Some(50.0)),
            ]
        );
        assert_eq!((r.total.hand_count, r.total.counted, r.total.abs_error), (6, 5, 3));
        assert_eq!(r.total.pct_error, Some(50.0));
        assert_eq!(r.not_in_hand_counts, vec![("side".to_owned(), "in".to_owned(), "car".to_owned(), 1)]);
    }

    #[test]
    fn several_cameras_need_a_choice_and_bad_classes_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let events = write(dir.path(), "e.jsonl", &[crossing(1, "a", "l", "in", "car"), crossing(2, "b", "l", "in", "car")].join("\n"));
        let hand = write(dir.path(), "h.csv", "line_id,direction,class,count\nl,in,all,1\n");
        let e = format!("{:#}", evaluate_files(&hand, &events, None).expect_err("two cameras"));
        assert!(e.contains("2 cameras (a, b)"), "{e}");
        let r = evaluate_files(&hand, &events, Some("b")).expect("camera b");
        assert_eq!((r.rows[0].counted, r.rows[0].abs_error), (1, 0));
        let bad = write(dir.path(), "bad.csv", "line_id,direction,class,count\nl,in,cars,1\n");
        let e = format!("{:#}", evaluate_files(&bad, &events, Some("a")).expect_err("bad class"));
        assert!(e.contains("row 2") && e.contains("'cars'"), "{e}");
    }
}
