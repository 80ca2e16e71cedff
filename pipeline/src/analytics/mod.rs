//! Per-camera analytics: counting lines, zones and periodic counts, on stream time only.
//!
//! Pure and synchronous: [`Analytics::update`] takes one frame's tracks and returns the events
//! they cause, as wire-contract payloads ([`EventBody`]) stamped with the frame's PTS. Replaying
//! a clip gives the same events in the same order.

pub mod fusion;
pub mod homography;
pub mod incidents;
pub mod line;
pub mod zone;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use roadsight_events::{CountRow, Counts, EventBody, LineCrossing, ObjectClass, ObjectRef, ZoneTransition};

use crate::geometry::BBox;
pub use incidents::{IncidentConfig, IncidentEngine};
pub use line::{Anchor, CountingLine, Crossing, Point};
pub use zone::{Zone, ZoneChange};

/// Maps stream time to UTC: `origin + pts`. For clips the origin is configured (a fixed epoch
/// by default), so replays give identical timestamps; for live feeds it is fixed once when the
/// stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClock {
    pub origin: DateTime<Utc>,
}

impl StreamClock {
    pub fn at(&self, pts: Duration) -> DateTime<Utc> {
        self.origin + chrono::Duration::from_std(pts).unwrap_or(chrono::Duration::zero())
    }
}

/// A counting line in normalised `[0, 1]` frame coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSpec {
    pub id: String,
    pub from: Point,
    pub to: Point,
    /// Name of a crossing from the left of from→to to its right (image coordinates).
    pub forward: String,
    /// Name of a crossing from the right to the left.
    pub backward: String,
    /// Classes counted (all if empty).
    pub classes: Vec<ObjectClass>,
    pub anchor: Anchor,
    pub hysteresis_px: f32,
}

/// A zone polygon in normalised `[0, 1]` frame coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSpec {
    pub id: String,
    pub polygon: Vec<Point>,
    pub classes: Vec<ObjectClass>,
    pub anchor: Anchor,
    /// Consecutive observations needed to confirm an enter or exit.
    pub confirm_updates: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyticsConfig {
    pub lines: Vec<LineSpec>,
    pub zones: Vec<ZoneSpec>,
    /// Emit a `counts` event per interval of stream time (none if `None`).
    pub counts_interval: Option<Duration>,
    pub incidents: IncidentConfig,
}

/// A tracked object as analytics sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedObject {
    pub track_id: u64,
    pub class: ObjectClass,
    pub confidence: f32,
    pub bbox: BBox,
    /// Stream time of the last observation.
    pub last_seen: Duration,
    /// Centre velocity in pixels per second of stream time, if known.
    pub velocity: Option<(f32, f32)>,
    /// Persons riding it, for a fused two-wheeler (most seen on one frame).
    pub riders: Option<u8>,
}

impl TrackedObject {
    pub fn to_ref(&self) -> ObjectRef {
        ObjectRef {
            track_id: self.track_id,
            class: self.class,
            confidence: self.confidence,
            bbox: self.bbox.xywh(),
            riders: self.riders,
        }
    }
}

/// An event payload and the stream time it happened at.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub pts: Duration,
    pub body: EventBody,
    /// For incident starts: the box to draw on a snapshot of the current frame.
    pub snapshot: Option<BBox>,
}

struct LineRuntime {
    spec: LineSpec,
    geometry: CountingLine,
}

struct ZoneRuntime {
    spec: ZoneSpec,
    geometry: Zone,
}

/// A counted crossing, remembered for [`PART_OF_WINDOW`] with its track's latest box and the
/// tracks seen to be parts of the same object since.
struct RecentCrossing {
    line: usize,
    forward: bool,
    class: ObjectClass,
    track_id: u64,
    at: Duration,
    latest: BBox,
    /// Stream time of `latest`.
    latest_at: Duration,
    /// Same-class tracks whose box, in one frame with this track's, contained it or lay
    /// inside it (the whole bus and its front section, tracked separately).
    parts: Vec<u64>,
}

/// How long after a counted crossing a second track of the same object may still cross
/// (an articulated bus detected as its two sections crosses twice, ≈ 0.6 s apart).
const PART_OF_WINDOW: Duration = Duration::from_secs(1);

/// A counted track missed by the detector for at most this long still links the tracks
/// that box it (the detector gives the whole bus while its front section goes unseen).
const PART_OF_STALE: Duration = Duration::from_millis(250);

/// Two same-class boxes are parts of one object when the smaller lies this much inside the
/// other (two vehicles one behind the other overlap far less once the first has crossed).
const PART_OF_IOS: f32 = 0.7;

pub struct Analytics {
    lines: Vec<LineRuntime>,
    zones: Vec<ZoneRuntime>,
    clock: StreamClock,
    counts_interval: Option<Duration>,
    interval_start: Duration,
    interval_counts: BTreeMap<(usize, bool, ObjectClass), u64>,
    totals: BTreeMap<(String, String, ObjectClass), u64>,
    incidents: Option<IncidentEngine>,
    /// Crossings of the last [`PART_OF_WINDOW`], to count each object once.
    recent: Vec<RecentCrossing>,
}

fn to_pixels(p: Point, w: f32, h: f32) -> Point {
    (p.0 * w, p.1 * h)
}

fn accepts(classes: &[ObjectClass], c: ObjectClass) -> bool {
    classes.is_empty() || classes.contains(&c)
}

impl Analytics {
    /// Builds the runtime geometry for a `width` × `height` frame.
    pub fn new(config: &AnalyticsConfig, width: u32, height: u32, clock: StreamClock) -> Self {
        let (w, h) = (width as f32, height as f32);
        Analytics {
            lines: config
                .lines
                .iter()
                .map(|spec| LineRuntime {
                    geometry: CountingLine::new(to_pixels(spec.from, w, h), to_pixels(spec.to, w, h), spec.hysteresis_px),
                    spec: spec.clone(),
                })
                .collect(),
            zones: config
                .zones
                .iter()
                .map(|spec| ZoneRuntime {
                    geometry: Zone::new(spec.polygon.iter().map(|&p| to_pixels(p, w, h)).collect(), spec.confirm_updates),
                    spec: spec.clone(),
                })
                .collect(),
            clock,
            counts_interval: config.counts_interval,
            interval_start: Duration::ZERO,
            interval_counts: BTreeMap::new(),
            totals: BTreeMap::new(),
            recent: Vec::new(),
            // Calibrations are checked when the config is validated; a bad one disables
            // incident rules rather than the camera.
            incidents: IncidentEngine::new(&config.incidents, width, height)
                .map_err(|e| tracing::error!("incident rules disabled: {e}"))
                .ok(),
        }
    }

    /// Line totals since start: (line id, direction name, class) → count.
    pub fn totals(&self) -> &BTreeMap<(String, String, ObjectClass), u64> {
        &self.totals
    }

    /// Processes one frame's tracks (those matched in it) and the tracks that ended.
    pub fn update(&mut self, pts: Duration, active: &[TrackedObject], ended: &[TrackedObject]) -> Vec<Emitted> {
        let mut out = Vec::new();
        self.roll_intervals(pts, &mut out);
        self.refresh_recent(pts, active);
        for obj in active {
            self.observe_lines(pts, obj, &mut out);
            self.observe_zones(pts, obj, &mut out);
        }
        if let Some(engine) = &mut self.incidents {
            out.extend(engine.update(pts, active, ended));
        }
        for obj in ended {
            for line in &mut self.lines {
                line.geometry.forget(obj.track_id);
            }
            for zone in &mut self.zones {
                if let Some(ZoneChange::Exit { dwell }) = zone.geometry.forget(obj.track_id, obj.last_seen) {
                    out.push(Emitted {
                        pts,
                        body: EventBody::ZoneExit(ZoneTransition {
                            zone_id: zone.spec.id.clone(),
                            object: obj.to_ref(),
                            occupancy: zone.geometry.occupancy(),
                            dwell_ms: Some(dwell.as_millis() as u64),
                        }),
                        snapshot: None,
                    });
                }
            }
        }
        out
    }

    /// End of stream at `pts`: emits the partial counts interval.
    pub fn finish(&mut self, pts: Duration) -> Vec<Emitted> {
        let mut out = Vec::new();
        if self.counts_interval.is_some() && pts > self.interval_start {
            out.push(self.counts_event(pts, pts - self.interval_start));
            self.interval_start = pts;
        }
        out
    }

    fn roll_intervals(&mut self, pts: Duration, out: &mut Vec<Emitted>) {
        let Some(interval) = self.counts_interval.filter(|i| !i.is_zero()) else { return };
        while pts >= self.interval_start + interval {
            let end = self.interval_start + interval;
            out.push(self.counts_event(end, interval));
            self.interval_start = end;
        }
    }

    fn counts_event(&mut self, end: Duration, length: Duration) -> Emitted {
        let rows = std::mem::take(&mut self.interval_counts)
            .into_iter()
            .map(|((line, forward, class), count)| {
                let spec = &self.lines[line].spec;
                CountRow {
                    line_id: spec.id.clone(),
                    direction: if forward { spec.forward.clone() } else { spec.backward.clone() },
                    class,
                    count,
                }
            })
            .collect();
        Emitted {
            pts: end,
            body: EventBody::Counts(Counts {
                interval_start: self.clock.at(self.interval_start),
                interval_ms: length.as_millis() as u64,
                rows,
            }),
            snapshot: None,
        }
    }

    fn observe_lines(&mut self, pts: Duration, obj: &TrackedObject, out: &mut Vec<Emitted>) {
        for (i, line) in self.lines.iter_mut().enumerate() {
            if !accepts(&line.spec.classes, obj.class) {
                continue;
            }
            let Some(crossing) = line.geometry.observe(obj.track_id, line.spec.anchor.of(&obj.bbox), obj.velocity) else { continue };
            let forward = crossing == Crossing::Forward;
            let direction = if forward { &line.spec.forward } else { &line.spec.backward };
            let part_of = self.recent.iter().find(|r| {
                r.line == i
                    && r.forward == forward
                    && r.class == obj.class
                    && r.track_id != obj.track_id
                    && (r.parts.contains(&obj.track_id) || r.latest.ios(&obj.bbox) >= PART_OF_IOS)
            });
            if let Some(counted) = part_of {
                tracing::debug!(line = %line.spec.id, track = obj.track_id, counted = counted.track_id, "crossing of a part of an object already counted");
                continue;
            }
            self.recent.push(RecentCrossing {
                line: i,
                forward,
                class: obj.class,
                track_id: obj.track_id,
                at: pts,
                latest: obj.bbox,
                latest_at: pts,
                parts: Vec::new(),
            });
            *self.interval_counts.entry((i, forward, obj.class)).or_default() += 1;
            *self.totals.entry((line.spec.id.clone(), direction.clone(), obj.class)).or_default() += 1;
            out.push(Emitted {
                pts,
                body: EventBody::LineCrossing(LineCrossing {
                    line_id: line.spec.id.clone(),
                    direction: direction.clone(),
                    object: obj.to_ref(),
                }),
                snapshot: None,
            });
        }
    }

    /// Forgets crossings older than [`PART_OF_WINDOW`], moves the others' boxes along with
    /// their tracks (a track lost meanwhile keeps its last box) and notes the same-class
    /// tracks overlapping them (seen at most [`PART_OF_STALE`] ago) as parts of one object.
    fn refresh_recent(&mut self, pts: Duration, active: &[TrackedObject]) {
        self.recent.retain(|r| pts.saturating_sub(r.at) <= PART_OF_WINDOW);
        for r in &mut self.recent {
            if let Some(counted) = active.iter().find(|o| o.track_id == r.track_id) {
                r.latest = counted.bbox;
                r.latest_at = pts;
            }
            if pts.saturating_sub(r.latest_at) > PART_OF_STALE {
                continue;
            }
            for other in active {
                let part = other.track_id != r.track_id && other.class == r.class && other.bbox.ios(&r.latest) >= PART_OF_IOS;
                if part && !r.parts.contains(&other.track_id) {
                    r.parts.push(other.track_id);
                }
            }
        }
    }

    fn observe_zones(&mut self, pts: Duration, obj: &TrackedObject, out: &mut Vec<Emitted>) {
        for zone in &mut self.zones {
            if !accepts(&zone.spec.classes, obj.class) {
                continue;
            }
            let Some(change) = zone.geometry.observe(obj.track_id, zone.spec.anchor.of(&obj.bbox), pts) else { continue };
            let transition = |dwell_ms| ZoneTransition {
                zone_id: zone.spec.id.clone(),
                object: obj.to_ref(),
                occupancy: zone.geometry.occupancy(),
                dwell_ms,
            };
            let body = match change {
                ZoneChange::Enter => EventBody::ZoneEnter(transition(None)),
                ZoneChange::Exit { dwell } => EventBody::ZoneExit(transition(Some(dwell.as_millis() as u64))),
            };
            out.push(Emitted { pts, body, snapshot: None });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AnalyticsConfig {
        AnalyticsConfig {
            lines: vec![LineSpec {
                id: "l".into(),
                from: (0.0, 0.5),
                to: (1.0, 0.5),
                forward: "south".into(),
                backward: "north".into(),
                classes: vec![ObjectClass::Car],
                anchor: Anchor::Center,
                hysteresis_px: 2.0,
            }],
            zones: vec![ZoneSpec {
                id: "z".into(),
                polygon: vec![(0.0, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0)],
                classes: vec![],
                anchor: Anchor::Center,
                confirm_updates: 1,
            }],
            counts_interval: Some(Duration::from_secs(1)),
            incidents: IncidentConfig::default(),
        }
    }

    fn car(id: u64, y: f32, t: Duration) -> TrackedObject {
        TrackedObject { track_id: id, class: ObjectClass::Car, confidence: 0.9, bbox: BBox::from_center(50.0, y, 10.0, 10.0), last_seen: t, velocity: None, riders: None }
    }

    #[test]
    fn crossings_zones_and_counts() {
        let clock = StreamClock { origin: DateTime::from_timestamp(0, 0).expect("epoch") };
        let mut a = Analytics::new(&config(), 100, 100, clock);
        let mut events = Vec::new();
        for f in 0..30u64 {
            let t = Duration::from_millis(f * 100);
            events.extend(a.update(t, &[car(1, (20.0 + f as f32 * 3.0).min(95.0), t)], &[]));
        }
        let end = Duration::from_millis(3000);
        events.extend(a.update(end, &[], &[car(1, 95.0, Duration::from_millis(2900))]));
        events.extend(a.finish(end));
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match &e.body {
                EventBody::LineCrossing(_) => "cross",
                EventBody::ZoneEnter(_) => "enter",
                EventBody::ZoneExit(_) => "exit",
                EventBody::Counts(_) => "counts",
                _ => "other",
            })
            .collect();
        // Intervals with no crossing still report (zero is data); the crossing lands in [1 s, 2 s).
        assert_eq!(kinds, vec!["counts", "cross", "enter", "counts", "counts", "exit"]);
        let EventBody::Counts(c) = &events[3].body else { panic!("counts expected") };
        assert_eq!(c.rows.len(), 1);
        assert_eq!(c.rows[0].direction, "south");
        assert_eq!(a.totals().values().sum::<u64>(), 1);
    }

    /// A 100 × 100 frame with the line at y = 50; objects `(id, centre y, height)` of class car.
    fn cross_with(objects: impl Fn(u64) -> Vec<(u64, f32, f32)>) -> u64 {
        let clock = StreamClock { origin: DateTime::from_timestamp(0, 0).expect("epoch") };
        let mut a = Analytics::new(&AnalyticsConfig { zones: vec![], ..config() }, 100, 100, clock);
        for f in 0..40u64 {
            let t = Duration::from_millis(f * 50);
            let active: Vec<TrackedObject> = objects(f)
                .into_iter()
                .map(|(id, y, h)| TrackedObject { bbox: BBox::from_center(50.0, y, 20.0, h), ..car(id, y, t) })
                .collect();
            a.update(t, &active, &[]);
        }
        a.totals().values().sum()
    }

    #[test]
    fn a_track_once_seen_containing_a_counted_one_is_the_same_object() {
        // The front section (track 1) crosses; the whole bus (track 2) is boxed around where it
        // was for a few frames (the front section itself unseen then: the detector's box of
        // the whole contains it), then only the rear section is, crossing well behind.
        let counted = cross_with(|f| {
            let front = 30.0 + f as f32 * 1.5;
            let mut v = vec![];
            if f < 16 || (20..25).contains(&f) {
                v.push((1, front, 12.0));
            }
            match f {
                16..=19 => v.push((2, front - 12.0, 36.0)),
                20.. => v.push((2, front - 24.0, 12.0)),
                _ => {}
            }
            v
        });
        assert_eq!(counted, 1);
    }

    #[test]
    fn an_articulated_bus_seen_as_two_sections_counts_once() {
        // The front section (track 1) crosses first; 0.6 s later the whole vehicle (track 2,
        // twice as long, containing where the front section last was) crosses too.
        let counted = cross_with(|f| {
            let front = 30.0 + f as f32 * 1.5;
            let mut v = vec![];
            if f < 25 {
                v.push((1, front, 12.0));
            }
            if f >= 10 {
                v.push((2, front - 14.0, 36.0));
            }
            v
        });
        assert_eq!(counted, 1);
    }

    #[test]
    fn two_cars_one_behind_the_other_count_twice() {
        let counted = cross_with(|f| vec![(1, 30.0 + f as f32 * 1.5, 12.0), (2, 14.0 + f as f32 * 1.5, 12.0)]);
        assert_eq!(counted, 2);
    }
}
