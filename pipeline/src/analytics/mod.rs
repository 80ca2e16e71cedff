//! Per-camera analytics: counting lines, zones and periodic counts, on stream time only.
//!
//! Pure and synchronous: [`Analytics::update`] takes one frame's tracks and returns the events
//! they cause, as wire-contract payloads ([`EventBody`]) stamped with the frame's PTS. Replaying
//! a clip gives the same events in the same order.

pub mod fusion;
pub mod homography;
mod hours;
pub mod incidents;
pub mod line;
pub mod signals;
pub mod zone;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use roadsight_events::{CountRow, Counts, EventBody, IncidentKind, LineCrossing, ObjectClass, ObjectRef, ZoneTransition};

use crate::cadence::Cadence;
use crate::geometry::BBox;
use crate::track::PriorRegion;
pub use hours::LocalHours;
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

impl AnalyticsConfig {
    /// The scene's directions of travel in pixels, for the tracker's motion prior: across each
    /// counting line, along each zone's configured `direction`.
    pub fn motion_regions(&self, width: u32, height: u32) -> Vec<PriorRegion> {
        let (w, h) = (width as f32, height as f32);
        let lines = self.lines.iter().map(|l| PriorRegion::Line { a: to_pixels(l.from, w, h), b: to_pixels(l.to, w, h) });
        let zones = self.incidents.zones.iter().filter_map(|z| {
            let (dx, dy) = z.direction?;
            Some(PriorRegion::Zone { polygon: z.polygon.iter().map(|&p| to_pixels(p, w, h)).collect(), direction: (dx * w, dy * h) })
        });
        lines.chain(zones).collect()
    }
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
    /// When and with which box the tracker first saw it, before it was confirmed (`None`:
    /// unknown). A line's crossing test starts there, so a vehicle confirmed on the far side
    /// of a line (few detections a second) still crossed it.
    pub first_seen: Option<(Duration, BBox)>,
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

/// Whether `b` (crossing at `pts`) is a part of the object counted as `r`: it lies mostly
/// inside (or around) the counted track's latest box, seen at most [`PART_OF_STALE`] ago —
/// or, at low detection rates, up to 1.5 detection intervals ago if one box is clearly the
/// larger (a whole bus and its section; a car that took the place of the car ahead of it is
/// of the same size, and is another vehicle).
fn is_part(r: &RecentCrossing, b: &BBox, pts: Duration, cadence: &Cadence) -> bool {
    let age = pts.saturating_sub(r.latest_at);
    if r.latest.ios(b) < PART_OF_IOS {
        return false;
    }
    if age <= PART_OF_STALE {
        return true;
    }
    let stale_by_rate = cadence.times(1.5);
    let (a, c) = (r.latest.area().max(1e-3), b.area().max(1e-3));
    age <= stale_by_rate && a.max(c) / a.min(c) >= 1.5
}

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
    /// Where each track was last seen, for [`Analytics::continued_track`].
    last_seen: BTreeMap<u64, LastSeen>,
    /// How often updates come (the detection rate).
    cadence: Cadence,
}

/// A track's last observation.
#[derive(Debug, Clone, Copy)]
struct LastSeen {
    bbox: BBox,
    velocity: Option<(f32, f32)>,
    class: ObjectClass,
    at: Duration,
    /// Already continued by another track.
    continued: bool,
}

/// A new track continues a lost one seen at most this long before (and at least
/// [`CONTINUE_INTERVALS`] detection intervals).
const CONTINUE_WINDOW: Duration = Duration::from_secs(1);
const CONTINUE_INTERVALS: f32 = 3.0;
/// …whose box, moved on at its velocity, lies within this many box heights of the new one.
const CONTINUE_HEIGHTS: f32 = 1.0;
/// …and which was moving at least this fast (box heights per second).
const CONTINUE_MIN_SPEED: f32 = 0.5;

/// Whether two classes may be one object seen twice (the model wavers between them).
fn same_kind(a: ObjectClass, b: ObjectClass) -> bool {
    use ObjectClass::*;
    let family = |c| match c {
        Car | Truck | Bus => 0,
        Motorcycle | Bicycle => 1,
        _ => 2,
    };
    a == b || (family(a) == family(b) && family(a) < 2)
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
            last_seen: BTreeMap::new(),
            cadence: Cadence::default(),
            // Calibrations are checked when the config is validated; a bad one disables
            // incident rules rather than the camera.
            incidents: IncidentEngine::new(&config.incidents, width, height, clock)
                .map_err(|e| tracing::error!("incident rules disabled: {e}"))
                .ok(),
        }
    }

    /// A signal's phase at stream time `at` (from the camera's lamp classifier or the signal
    /// controller), for the incident rules.
    pub fn set_signal(&mut self, id: &str, phase: signals::SignalPhase, at: Duration) {
        if let Some(engine) = &mut self.incidents {
            engine.set_signal(id, phase, at);
        }
    }

    /// Incident starts folded by the flood control so far, per kind.
    pub fn incidents_folded(&self) -> impl Iterator<Item = (IncidentKind, u64)> + '_ {
        self.incidents.iter().flat_map(|e| e.folded().iter().map(|(k, n)| (*k, *n)))
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
        self.cadence.observe(pts);
        for obj in active {
            if !self.last_seen.contains_key(&obj.track_id) {
                self.start_track(pts, obj, &mut out);
            }
            self.observe_lines(pts, obj, &mut out);
            self.observe_zones(pts, obj, &mut out);
        }
        for obj in active {
            self.last_seen.insert(
                obj.track_id,
                LastSeen { bbox: obj.bbox, velocity: obj.velocity, class: obj.class, at: pts, continued: false },
            );
        }
        // A line forgets a track once no new track can continue it any more.
        let window = self.continue_window();
        let lines = &mut self.lines;
        self.last_seen.retain(|id, l| {
            let keep = pts.saturating_sub(l.at) <= window;
            if !keep {
                for line in lines.iter_mut() {
                    line.geometry.forget(*id);
                }
            }
            keep
        });
        if let Some(engine) = &mut self.incidents {
            let crossings: Vec<LineCrossing> = out
                .iter()
                .filter_map(|e| match &e.body {
                    EventBody::LineCrossing(c) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            out.extend(engine.update(pts, active, ended, &crossings));
        }
        for obj in ended {
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
        let cadence = self.cadence;
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
                    && (r.parts.contains(&obj.track_id) || is_part(r, &obj.bbox, pts, &cadence))
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

    fn continue_window(&self) -> Duration {
        CONTINUE_WINDOW.max(self.cadence.times(CONTINUE_INTERVALS))
    }

    /// A lost track that `obj` (new) continues: not seen in this frame, seen within the window,
    /// of the same kind, moving, and where it would be now at its velocity lies within
    /// [`CONTINUE_HEIGHTS`] box heights of where `obj` was first seen. The nearest such.
    fn continued_track(&self, pts: Duration, obj: &TrackedObject) -> Option<u64> {
        let (born, first) = obj.first_seen.unwrap_or((pts, obj.bbox));
        let (fx, fy) = first.center();
        let window = self.continue_window();
        // Lost before the new one was born: one object is never two tracks at once.
        self.last_seen
            .iter()
            .filter(|(_, l)| !l.continued && l.at < born && born.saturating_sub(l.at) <= window && same_kind(l.class, obj.class))
            .filter_map(|(&id, l)| {
                let (vx, vy) = l.velocity?;
                let h = l.bbox.height().max(1.0);
                if (vx * vx + vy * vy).sqrt() < CONTINUE_MIN_SPEED * h {
                    return None;
                }
                // Where it would have been when `obj` was first seen.
                let gap = born.saturating_sub(l.at).as_secs_f32();
                let (cx, cy) = l.bbox.center();
                let (px, py) = (cx + vx * gap, cy + vy * gap);
                let dist = ((px - fx).powi(2) + (py - fy).powi(2)).sqrt() / h;
                let ratio = first.height().max(1.0) / h;
                (dist <= CONTINUE_HEIGHTS && (0.6..=1.7).contains(&ratio)).then_some((id, dist))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .map(|(id, _)| id)
    }

    /// A track analytics sees for the first time: if it continues a lost one, the lines hand
    /// that one's state over; then its first box (before confirmation) is observed, so the
    /// crossing test runs along its whole path.
    fn start_track(&mut self, pts: Duration, obj: &TrackedObject, out: &mut Vec<Emitted>) {
        if let Some(from) = self.continued_track(pts, obj) {
            tracing::debug!(from, to = obj.track_id, "a new track continues a lost one");
            for line in &mut self.lines {
                line.geometry.hand_over(from, obj.track_id);
            }
            if let Some(l) = self.last_seen.get_mut(&from) {
                l.continued = true;
            }
        }
        if let Some((_, first)) = obj.first_seen.filter(|(_, b)| *b != obj.bbox) {
            let birth = TrackedObject { bbox: first, velocity: None, ..obj.clone() };
            self.observe_lines(pts, &birth, out);
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
        TrackedObject { track_id: id, class: ObjectClass::Car, confidence: 0.9, bbox: BBox::from_center(50.0, y, 10.0, 10.0), last_seen: t, velocity: None, riders: None, first_seen: None }
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

    /// Feeds `(t ms, [(id, centre y, first seen (ms, y)?)])` frames of cars moving down at 60 px/s.
    fn feed_moving(frames: &[(u64, Vec<(u64, f32, Option<(u64, f32)>)>)]) -> u64 {
        let clock = StreamClock { origin: DateTime::from_timestamp(0, 0).expect("epoch") };
        let mut a = Analytics::new(&AnalyticsConfig { zones: vec![], ..config() }, 100, 100, clock);
        for (ms, objects) in frames {
            let t = Duration::from_millis(*ms);
            let active: Vec<TrackedObject> = objects
                .iter()
                .map(|&(id, y, first)| TrackedObject {
                    velocity: Some((0.0, 60.0)),
                    first_seen: first.map(|(ms, y)| (Duration::from_millis(ms), BBox::from_center(50.0, y, 10.0, 10.0))),
                    ..car(id, y, t)
                })
                .collect();
            a.update(t, &active, &[]);
        }
        a.totals().values().sum()
    }

    #[test]
    fn a_new_track_born_beyond_the_line_where_a_lost_one_was_heading_continues_it() {
        // Track 1 heads down towards the line (y = 50) and is lost at y = 38; 0.3 s later
        // track 2 is born at y = 56, where track 1 would be: one object, one crossing.
        let mut frames: Vec<(u64, Vec<(u64, f32, Option<(u64, f32)>)>)> =
            (0..4).map(|k| (k * 100, vec![(1, 20.0 + 6.0 * k as f32, None)])).collect();
        frames.push((700, vec![(2, 62.0, Some((600, 56.0)))]));
        frames.push((800, vec![(2, 68.0, Some((600, 56.0)))]));
        assert_eq!(feed_moving(&frames), 1);
        // Track 1 still seen when track 2 is born: two objects, and track 2 never crossed.
        let mut frames: Vec<(u64, Vec<(u64, f32, Option<(u64, f32)>)>)> =
            (0..7).map(|k| (k * 100, vec![(1, 20.0 + 3.0 * k as f32, None)])).collect();
        frames.push((700, vec![(2, 62.0, Some((600, 56.0)))]));
        assert_eq!(feed_moving(&frames), 0);
    }

    #[test]
    fn two_cars_one_behind_the_other_count_twice() {
        let counted = cross_with(|f| vec![(1, 30.0 + f as f32 * 1.5, 12.0), (2, 14.0 + f as f32 * 1.5, 12.0)]);
        assert_eq!(counted, 2);
    }
}
