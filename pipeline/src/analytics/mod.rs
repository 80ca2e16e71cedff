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
}

impl TrackedObject {
    pub fn to_ref(&self) -> ObjectRef {
        ObjectRef { track_id: self.track_id, class: self.class, confidence: self.confidence, bbox: self.bbox.xywh() }
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

pub struct Analytics {
    lines: Vec<LineRuntime>,
    zones: Vec<ZoneRuntime>,
    clock: StreamClock,
    counts_interval: Option<Duration>,
    interval_start: Duration,
    interval_counts: BTreeMap<(usize, bool, ObjectClass), u64>,
    totals: BTreeMap<(String, String, ObjectClass), u64>,
    incidents: Option<IncidentEngine>,
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
        TrackedObject { track_id: id, class: ObjectClass::Car, confidence: 0.9, bbox: BBox::from_center(50.0, y, 10.0, 10.0), last_seen: t, velocity: None }
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
}
