//! Incident precision and recall: the `incident` events of `edge-agent run --events` against
//! hand-made ground truth `kind,from_frame,to_frame,x,y,w,h,class,note`
//! (`samples/*.incidents.csv`; frames 0-based, the box normalised at `from_frame`). Rows of
//! kind `queue` are not incidents: they mark vehicles waiting in a queue, where a
//! stopped-vehicle incident is a false alarm (reported separately).
//!
//! A predicted incident (all events of one `incident_id`) matches a ground-truth one when the
//! kind is the same, their time spans overlap (with [`SLACK`] either side) and the object is
//! the same place: the boxes overlap, or their centres are within two box sizes (a moving
//! violator is boxed at different moments). Matching is one-to-one, the closest pairs first.
//! A red-light violation's span is the moment of its crossing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use roadsight_events::{EventBody, IncidentKind, IncidentState};
use serde::{Deserialize, Serialize};

use super::{read_csv, read_events};
use crate::cli::FrameSize;

/// Time spans may miss each other by this much and still overlap.
pub const SLACK: Duration = Duration::from_secs(1);
/// The ground-truth kind marking a queue (not an incident).
const QUEUE: &str = "queue";

#[derive(Debug, Deserialize)]
struct GtRow {
    kind: String,
    from_frame: u64,
    to_frame: u64,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    // `class` and `note` are for people; the match is by kind, time and place.
}

/// An incident in time and space (pixels).
#[derive(Debug, Clone, PartialEq)]
struct Span {
    kind: String,
    from: Duration,
    to: Duration,
    bbox: [f32; 4],
}

impl Span {
    /// How long the two spans overlap, with [`SLACK`] (`None`: not at all).
    fn overlap(&self, other: &Span) -> Option<Duration> {
        let from = self.from.max(other.from);
        let to = self.to.min(other.to) + SLACK;
        (to > from).then(|| to - from)
    }

    /// Distance between the boxes' centres, in pixels.
    fn distance(&self, other: &Span) -> f32 {
        let [ax, ay, aw, ah] = self.bbox;
        let [bx, by, bw, bh] = other.bbox;
        let (dx, dy) = ((ax + aw / 2.0) - (bx + bw / 2.0), (ay + ah / 2.0) - (by + bh / 2.0));
        (dx * dx + dy * dy).sqrt()
    }

    fn same_place(&self, other: &Span) -> bool {
        let [ax, ay, aw, ah] = self.bbox;
        let [bx, by, bw, bh] = other.bbox;
        let overlap = ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah;
        overlap || self.distance(other) <= 2.0 * aw.max(ah).max(bw).max(bh)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KindRow {
    pub kind: String,
    pub ground_truth: usize,
    pub predicted: usize,
    pub matched: usize,
    /// `None` when there is nothing to divide by.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentsReport {
    pub rows: Vec<KindRow>,
    /// Queue episodes in the ground truth, and stopped-vehicle incidents raised on them.
    pub queues: usize,
    pub stopped_on_queues: usize,
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

pub fn evaluate_files(gt: &Path, events: &Path, camera: Option<&str>, size: FrameSize, fps: f64) -> anyhow::Result<IncidentsReport> {
    anyhow::ensure!(fps > 0.0 && fps.is_finite(), "--clip-fps must be positive, got {fps}");
    let rows: Vec<GtRow> = read_csv(gt)?;
    let (w, h) = (size.width as f32, size.height as f32);
    let mut truth = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let known = r.kind == QUEUE || IncidentKind::ALL.iter().any(|k| k.as_str() == r.kind);
        anyhow::ensure!(known, "{}: row {}: kind '{}' is neither an incident kind nor `queue`", gt.display(), i + 2, r.kind);
        anyhow::ensure!(r.to_frame >= r.from_frame, "{}: row {}: to_frame before from_frame", gt.display(), i + 2);
        truth.push(Span {
            kind: r.kind.clone(),
            from: Duration::from_secs_f64(r.from_frame as f64 / fps),
            to: Duration::from_secs_f64(r.to_frame as f64 / fps),
            bbox: [r.x * w, r.y * h, r.w * w, r.h * h],
        });
    }
    let predicted = predicted_spans(events, camera)?;
    Ok(score(&truth, &predicted))
}

/// Each `incident_id`'s span: from its start (or first event) to its end (or last event),
/// boxed where it started.
fn predicted_spans(events: &Path, camera: Option<&str>) -> anyhow::Result<Vec<Span>> {
    let mut by_id: BTreeMap<uuid::Uuid, Span> = BTreeMap::new();
    for e in read_events(events, camera, |b| matches!(b, EventBody::Incident(_)))? {
        let EventBody::Incident(i) = &e.body else { continue };
        let at = Duration::from_millis(e.pts_ms);
        let span = by_id.entry(i.incident_id).or_insert_with(|| Span {
            kind: i.kind.as_str().to_string(),
            from: at,
            to: at,
            bbox: i.object.as_ref().map_or([0.0; 4], |o| o.bbox),
        });
        if i.state == IncidentState::Started {
            span.from = at;
            if let Some(o) = &i.object {
                span.bbox = o.bbox;
            }
        }
        span.from = span.from.min(at);
        span.to = span.to.max(at);
    }
    // A red-light violation happens at its crossing: its span is that moment, not the time
    // until the violator's track ends.
    let mut spans: Vec<Span> = by_id.into_values().collect();
    for s in spans.iter_mut().filter(|s| s.kind == IncidentKind::RedLight.as_str()) {
        s.to = s.from;
    }
    Ok(spans)
}

fn score(truth: &[Span], predicted: &[Span]) -> IncidentsReport {
    let mut kinds: Vec<String> = truth.iter().chain(predicted).map(|s| s.kind.clone()).filter(|k| k != QUEUE).collect();
    kinds.sort();
    kinds.dedup();
    let rows = kinds
        .into_iter()
        .map(|kind| {
            let t: Vec<&Span> = truth.iter().filter(|s| s.kind == kind).collect();
            let p: Vec<&Span> = predicted.iter().filter(|s| s.kind == kind).collect();
            let matched = match_greedy(&t, &p);
            KindRow {
                precision: ratio(matched, p.len()),
                recall: ratio(matched, t.len()),
                kind,
                ground_truth: t.len(),
                predicted: p.len(),
                matched,
            }
        })
        .collect();
    let queues: Vec<&Span> = truth.iter().filter(|s| s.kind == QUEUE).collect();
    let stopped_on_queues = predicted
        .iter()
        .filter(|p| p.kind == IncidentKind::StoppedVehicle.as_str())
        .filter(|p| queues.iter().any(|q| q.overlap(p).is_some() && q.same_place(p)))
        .count();
    IncidentsReport { rows, queues: queues.len(), stopped_on_queues }
}

/// One-to-one matches among the pairs that overlap in time and place, the closest first.
fn match_greedy(truth: &[&Span], predicted: &[&Span]) -> usize {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, t) in truth.iter().enumerate() {
        for (j, p) in predicted.iter().enumerate() {
            if t.overlap(p).is_some() && t.same_place(p) {
                pairs.push((t.distance(p), i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut used_t, mut used_p) = (vec![false; truth.len()], vec![false; predicted.len()]);
    let mut n = 0;
    for (_, i, j) in pairs {
        if !used_t[i] && !used_p[j] {
            used_t[i] = true;
            used_p[j] = true;
            n += 1;
        }
    }
    n
}

impl fmt::Display for IncidentsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.2}", v));
        writeln!(f, "incidents            truth  predicted  matched  precision  recall")?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<20} {:>5}  {:>9}  {:>7}  {:>9}  {:>6}",
                r.kind,
                r.ground_truth,
                r.predicted,
                r.matched,
                pct(r.precision),
                pct(r.recall)
            )?;
        }
        write!(f, "queues in the ground truth: {}, stopped-vehicle incidents raised on them: {}", self.queues, self.stopped_on_queues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: &str, from: u64, to: u64, x: f32) -> Span {
        Span { kind: kind.into(), from: Duration::from_secs(from), to: Duration::from_secs(to), bbox: [x, 100.0, 40.0, 30.0] }
    }

    #[test]
    fn matches_need_kind_time_and_place_once_each() {
        let truth = [span("red_light", 10, 12, 100.0), span("red_light", 30, 31, 500.0), span("queue", 0, 20, 300.0)];
        let predicted = [
            span("red_light", 11, 11, 120.0), // matches the first
            span("red_light", 11, 11, 110.0), // a second one for the same: unmatched
            span("red_light", 30, 30, 900.0), // right time, wrong place
            span("stopped_vehicle", 5, 15, 310.0), // on the queue
        ];
        let r = score(&truth, &predicted);
        let red = r.rows.iter().find(|k| k.kind == "red_light").expect("row");
        assert_eq!((red.ground_truth, red.predicted, red.matched), (2, 3, 1));
        assert_eq!((red.precision, red.recall), (Some(1.0 / 3.0), Some(0.5)));
        let stopped = r.rows.iter().find(|k| k.kind == "stopped_vehicle").expect("row");
        assert_eq!((stopped.ground_truth, stopped.matched, stopped.recall), (0, 0, None));
        assert_eq!((r.queues, r.stopped_on_queues), (1, 1));
    }
}
