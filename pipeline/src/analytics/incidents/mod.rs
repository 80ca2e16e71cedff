//! Incident rules on tracks, each with a lifecycle `started` → `updated`… → `ended` under one
//! stable `incident_id`. Pure and on stream time: durations and speeds come from PTS, never
//! the wall clock. A `started` event asks for a snapshot of the object's box (the caller
//! renders and attaches it).
//!
//! - [`stopped`]: stopped vehicles (and no-stopping zones), queue- and signal-aware;
//! - [`wrong_way`], [`congestion`]: per zone; [`speeding`]: per camera, on a calibrated plane;
//! - [`red_light`]: a crossing of a stop line while its signal is red;
//! - [`lane`]: a class not allowed in a lane zone (at some local hours);
//! - [`flood`]: at most N starts per minute per kind and camera, the rest folded into an update.

mod congestion;
mod flood;
mod lane;
mod red_light;
mod stopped;
mod speeding;
mod wrong_way;

use std::collections::BTreeMap;
use std::time::Duration;

use roadsight_events::{EventBody, IncidentEvent, IncidentKind, IncidentMeasures, IncidentState, LineCrossing, ObjectRef, Severity};
use uuid::Uuid;

pub use congestion::CongestionRule;
pub use flood::FloodLimit;
pub use lane::LaneRule;
pub use red_light::{RedLightRule, StopLine};
pub use speeding::SpeedingRule;
pub use stopped::StoppedRule;
pub use wrong_way::WrongWayRule;

use super::signals::SignalPhase;
use super::zone::point_in_polygon;
use super::{Anchor, Emitted, Point, StreamClock, TrackedObject};
use crate::geometry::BBox;

/// Rules attached to one zone (normalised polygon, as configured).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRules {
    pub zone_id: String,
    pub polygon: Vec<Point>,
    /// Allowed direction of travel in normalised image coordinates (wrong way, queues).
    pub direction: Option<Point>,
    /// The signal governing this zone's stop line: while it is red or amber, vehicles
    /// standing here are waiting, not stopped.
    pub signal: Option<String>,
    pub stopped_vehicle: Option<StoppedRule>,
    pub wrong_way: Option<WrongWayRule>,
    pub congestion: Option<CongestionRule>,
    pub lane: Option<LaneRule>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentConfig {
    pub zones: Vec<ZoneRules>,
    pub speeding: Option<SpeedingRule>,
    pub red_light: Vec<RedLightRule>,
    /// Active incidents send an `updated` event this often.
    pub update_every: Duration,
    pub flood: FloodLimit,
}

/// An incident a rule holds open.
#[derive(Debug, Clone)]
struct Active {
    id: Uuid,
    kind: IncidentKind,
    zone_id: Option<String>,
    started: Duration,
    last_update: Duration,
    severity: Severity,
}

impl Active {
    fn new(kind: IncidentKind, zone_id: Option<String>, now: Duration, severity: Severity) -> Self {
        Active { id: Uuid::now_v7(), kind, zone_id, started: now, last_update: now, severity }
    }

    fn event(&self, state: IncidentState, object: Option<ObjectRef>, measures: IncidentMeasures) -> IncidentEvent {
        IncidentEvent {
            incident_id: self.id,
            kind: self.kind,
            state,
            severity: self.severity,
            zone_id: self.zone_id.clone(),
            object,
            measures,
            related: Vec::new(),
            snapshot: None,
            clip: None,
        }
    }

    fn duration(&self, now: Duration) -> IncidentMeasures {
        IncidentMeasures { duration_ms: Some(now.saturating_sub(self.started).as_millis() as u64), ..Default::default() }
    }
}

fn emit(pts: Duration, ev: IncidentEvent, snapshot: Option<BBox>) -> Emitted {
    Emitted { pts, body: EventBody::Incident(ev), snapshot }
}

fn speed(o: &TrackedObject) -> f32 {
    o.velocity.map_or(0.0, |(vx, vy)| (vx * vx + vy * vy).sqrt())
}

fn unit(v: Point) -> Option<Point> {
    let n = (v.0 * v.0 + v.1 * v.1).sqrt();
    (n > 1e-6).then(|| (v.0 / n, v.1 / n))
}

/// A normalised direction in pixels, as a unit vector.
fn pixel_direction(d: Point, w: f32, h: f32) -> Option<Point> {
    unit((d.0 * w, d.1 * h))
}

/// What the rules know of the camera's signals: each one's phase and since when.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    phases: BTreeMap<String, SignalState>,
}

#[derive(Debug, Clone, Copy)]
struct SignalState {
    phase: SignalPhase,
    since: Duration,
}

impl Signals {
    pub fn set(&mut self, id: &str, phase: SignalPhase, at: Duration) {
        if self.phases.get(id).map(|s| s.phase) != Some(phase) {
            self.phases.insert(id.to_string(), SignalState { phase, since: at });
        }
    }

    /// The phase of signal `id` and how long it has held at `now`.
    pub fn phase(&self, id: &str, now: Duration) -> Option<(SignalPhase, Duration)> {
        self.phases.get(id).map(|s| (s.phase, now.saturating_sub(s.since)))
    }

    /// How long signal `id` has been red at `now`, if it is red and has been seen red for at
    /// least `grace`. That holds for a red first seen too (a camera just connected, a lamp just
    /// readable): how long it had been red is unknown, and a vehicle already past the line when
    /// the picture began — or that entered on amber — must not be a violation.
    fn red_past_grace(&self, id: &str, now: Duration, grace: Duration) -> Option<Duration> {
        let s = self.phases.get(id).filter(|s| s.phase == SignalPhase::Red)?;
        let held = now.saturating_sub(s.since);
        (held >= grace).then_some(held)
    }

    /// Vehicles are held at this signal's stop line (red or amber).
    fn holds(&self, id: Option<&str>, now: Duration) -> bool {
        id.and_then(|id| self.phase(id, now)).is_some_and(|(p, _)| matches!(p, SignalPhase::Red | SignalPhase::Amber))
    }

    /// Since when signal `id` has let traffic go (its current phase is neither red nor amber).
    fn released_at(&self, id: Option<&str>) -> Option<Duration> {
        let s = self.phases.get(id?)?;
        (!matches!(s.phase, SignalPhase::Red | SignalPhase::Amber)).then_some(s.since)
    }
}

struct ZoneRuntime {
    rules: ZoneRules,
    polygon: Vec<Point>,
    direction: Option<Point>,
    stopped: Option<stopped::StoppedRuntime>,
    wrong_way: Option<wrong_way::WrongWayRuntime>,
    congestion: Option<congestion::CongestionRuntime>,
    lane: Option<lane::LaneRuntime>,
}

pub struct IncidentEngine {
    zones: Vec<ZoneRuntime>,
    speeding: Option<speeding::SpeedRuntime>,
    red_light: Vec<red_light::RedLightRuntime>,
    update_every: Duration,
    signals: Signals,
    flood: flood::FloodControl,
    clock: StreamClock,
}

impl IncidentEngine {
    /// `Err` when the speeding calibration is degenerate.
    pub fn new(config: &IncidentConfig, width: u32, height: u32, clock: StreamClock) -> Result<Self, String> {
        let (w, h) = (width as f32, height as f32);
        let zones = config
            .zones
            .iter()
            .map(|r| {
                let direction = r.direction.and_then(|d| pixel_direction(d, w, h));
                ZoneRuntime {
                    polygon: r.polygon.iter().map(|p| (p.0 * w, p.1 * h)).collect(),
                    stopped: r.stopped_vehicle.clone().map(stopped::StoppedRuntime::new),
                    wrong_way: r.wrong_way.clone().map(wrong_way::WrongWayRuntime::new),
                    congestion: r.congestion.clone().map(congestion::CongestionRuntime::new),
                    lane: r.lane.clone().map(lane::LaneRuntime::new),
                    direction,
                    rules: r.clone(),
                }
            })
            .collect();
        let speeding = config.speeding.as_ref().map(|rule| speeding::SpeedRuntime::new(rule, w, h)).transpose()?;
        let red_light = config.red_light.iter().map(|r| red_light::RedLightRuntime::new(r.clone(), w, h)).collect();
        Ok(IncidentEngine {
            zones,
            speeding,
            red_light,
            update_every: config.update_every.max(Duration::from_secs(1)),
            signals: Signals::default(),
            flood: flood::FloodControl::new(config.flood),
            clock,
        })
    }

    /// A signal's phase changed (or was confirmed) at stream time `at`.
    pub fn set_signal(&mut self, id: &str, phase: SignalPhase, at: Duration) {
        self.signals.set(id, phase, at);
    }

    /// Starts folded into another incident so far, per kind (the flood control's counter).
    pub fn folded(&self) -> &BTreeMap<IncidentKind, u64> {
        self.flood.folded()
    }

    /// One frame's tracks (matched in it), the tracks that ended and this frame's line crossings.
    pub fn update(&mut self, now: Duration, active: &[TrackedObject], ended: &[TrackedObject], crossings: &[LineCrossing]) -> Vec<Emitted> {
        let mut out = Vec::new();
        let vehicles: Vec<&TrackedObject> = active.iter().filter(|o| o.class.is_vehicle()).collect();
        let local = self.clock.at(now);
        for z in &mut self.zones {
            let inside: Vec<&TrackedObject> =
                vehicles.iter().copied().filter(|o| point_in_polygon(Anchor::BottomCenter.of(&o.bbox), &z.polygon)).collect();
            let ctx = ZoneContext {
                now,
                zone_id: &z.rules.zone_id,
                direction: z.direction,
                every: self.update_every,
                held: self.signals.holds(z.rules.signal.as_deref(), now),
                released_at: self.signals.released_at(z.rules.signal.as_deref()),
            };
            if let Some(r) = &mut z.stopped {
                r.update(&ctx, &inside, &vehicles, ended, &mut out);
            }
            if let Some(r) = &mut z.wrong_way {
                r.update(&ctx, &inside, &vehicles, ended, &mut out);
            }
            if let Some(r) = &mut z.congestion {
                r.update(&ctx, &inside, &mut out);
            }
            if let Some(r) = &mut z.lane {
                r.update(&ctx, local, &inside, &vehicles, ended, &mut out);
            }
        }
        if let Some(s) = &mut self.speeding {
            s.update(now, &vehicles, ended, &mut out);
        }
        for r in &mut self.red_light {
            r.update(now, &self.signals, crossings, &vehicles, ended, &mut out);
        }
        self.flood.filter(now, out)
    }
}

/// A track has left a zone: it ended, or it was seen outside the zone. (A track merely not
/// detected in this frame has not.)
fn departed(id: u64, inside: &[&TrackedObject], vehicles: &[&TrackedObject], ended: &[TrackedObject]) -> bool {
    ended.iter().any(|o| o.track_id == id) || (vehicles.iter().any(|o| o.track_id == id) && !inside.iter().any(|o| o.track_id == id))
}

/// What a zone's rules see of the frame besides the tracks.
struct ZoneContext<'a> {
    now: Duration,
    zone_id: &'a str,
    /// The zone's direction of travel in pixels (unit), if configured.
    direction: Option<Point>,
    every: Duration,
    /// The zone's signal holds traffic (red or amber).
    held: bool,
    /// Since when the zone's signal has let traffic go (`None`: no signal, or it holds).
    released_at: Option<Duration>,
}

impl ZoneContext<'_> {
    fn zone(&self) -> Option<String> {
        Some(self.zone_id.to_string())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use roadsight_events::ObjectClass;

    pub(crate) fn car(id: u64, cx: f32, cy: f32, v: (f32, f32), t: Duration) -> TrackedObject {
        TrackedObject {
            track_id: id,
            class: ObjectClass::Car,
            confidence: 0.9,
            bbox: BBox::from_center(cx, cy, 20.0, 20.0),
            last_seen: t,
            velocity: Some(v),
            riders: None,
            first_seen: None,
        }
    }

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn clock() -> StreamClock {
        StreamClock { origin: chrono::DateTime::UNIX_EPOCH }
    }

    /// One zone over the whole 1000 × 1000 frame, with the rules `rules` sets.
    pub(crate) fn zone_config(rules: impl FnOnce(&mut ZoneRules)) -> IncidentConfig {
        let mut z = ZoneRules {
            zone_id: "road".into(),
            polygon: vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
            direction: None,
            signal: None,
            stopped_vehicle: None,
            wrong_way: None,
            congestion: None,
            lane: None,
        };
        rules(&mut z);
        IncidentConfig { zones: vec![z], update_every: Duration::from_secs(2), flood: FloodLimit { max_starts_per_minute: 0 }, ..Default::default() }
    }

    pub(crate) fn engine_with(rules: impl FnOnce(&mut ZoneRules)) -> IncidentEngine {
        IncidentEngine::new(&zone_config(rules), 1000, 1000, clock()).expect("engine")
    }

    pub(crate) fn incidents(events: &[Emitted]) -> Vec<IncidentEvent> {
        events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Incident(i) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    fn states(events: &[Emitted]) -> Vec<(IncidentKind, IncidentState)> {
        incidents(events).iter().map(|i| (i.kind, i.state)).collect()
    }

    #[test]
    fn wrong_way_against_the_zone_direction() {
        // Traffic should move down the image; track 1 moves up, track 2 moves down.
        let cfg = zone_config(|z| {
            z.direction = Some((0.0, 1.0));
            z.wrong_way = Some(WrongWayRule { min_distance_px: 50.0 });
        });
        let mut e = IncidentEngine::new(&cfg, 1000, 1000, clock()).expect("engine");
        let mut out = Vec::new();
        for f in 0..30u64 {
            let t = ms(f * 100);
            out.extend(e.update(t, &[car(1, 300.0, 800.0 - f as f32 * 5.0, (0.0, -50.0), t), car(2, 600.0, 100.0 + f as f32 * 5.0, (0.0, 50.0), t)], &[], &[]));
        }
        out.extend(e.update(ms(3000), &[car(2, 600.0, 260.0, (0.0, 50.0), ms(3000))], &[car(1, 300.0, 655.0, (0.0, -50.0), ms(2900))], &[]));
        let started: Vec<&IncidentEvent> = out
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Incident(i) if i.state == IncidentState::Started => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].object.as_ref().map(|o| o.track_id), Some(1));
        assert!(started[0].measures.distance_px.expect("distance") > 50.0);
        assert_eq!(states(&out).last(), Some(&(IncidentKind::WrongWay, IncidentState::Ended)));
    }

    #[test]
    fn congestion_levels_follow_occupancy_and_speed() {
        let cfg = zone_config(|z| {
            z.congestion = Some(CongestionRule {
                window: Duration::from_secs(4),
                heavy_occupancy: 3.0,
                congested_occupancy: 6.0,
                slow_speed_px_s: 10.0,
            })
        });
        let mut e = IncidentEngine::new(&cfg, 1000, 1000, clock()).expect("engine");
        let mut out = Vec::new();
        let cars = |n: usize, v: f32, t: Duration| -> Vec<TrackedObject> { (0..n).map(|i| car(i as u64, 50.0 + i as f32 * 60.0, 500.0, (v, 0.0), t)).collect() };
        let mut t = 0u64;
        for (n, v, secs) in [(1usize, 40.0f32, 6u64), (4, 40.0, 6), (8, 2.0, 6), (0, 0.0, 8)] {
            for _ in 0..secs * 10 {
                out.extend(e.update(ms(t), &cars(n, v, ms(t)), &[], &[]));
                t += 100;
            }
        }
        let sev: Vec<(IncidentState, Severity)> = out
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Incident(i) => Some((i.state, i.severity)),
                _ => None,
            })
            .collect();
        assert_eq!(sev.first(), Some(&(IncidentState::Started, Severity::Warning)));
        assert!(sev.contains(&(IncidentState::Updated, Severity::Critical)), "{sev:?}");
        assert_eq!(sev.last().map(|s| s.0), Some(IncidentState::Ended));
    }

    #[test]
    fn speeding_from_a_calibrated_ground_plane() {
        // 1 px = 0.1 m on a straight-down calibration; limit 50 km/h.
        let rule = SpeedingRule {
            image_points: [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
            ground_points_m: [(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)],
            limit_kmh: 50.0,
            min_duration: Duration::from_millis(500),
        };
        let cfg = IncidentConfig { speeding: Some(rule), update_every: Duration::from_secs(2), ..Default::default() };
        let mut e = IncidentEngine::new(&cfg, 1000, 1000, clock()).expect("engine");
        let mut out = Vec::new();
        // Track 1: 25 px per 100 ms = 25 m/s = 90 km/h. Track 2: 10 px per 100 ms = 36 km/h.
        for f in 0..30u64 {
            let t = ms(f * 100);
            out.extend(e.update(t, &[car(1, 10.0 + f as f32 * 25.0, 300.0, (250.0, 0.0), t), car(2, 10.0 + f as f32 * 10.0, 600.0, (100.0, 0.0), t)], &[], &[]));
        }
        out.extend(e.update(ms(3000), &[], &[car(1, 760.0, 300.0, (250.0, 0.0), ms(2900))], &[]));
        let incidents: Vec<&IncidentEvent> = out
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Incident(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(incidents.len(), 2, "one start, one end, for track 1 only");
        assert_eq!(incidents[0].object.as_ref().map(|o| o.track_id), Some(1));
        let kmh = incidents[0].measures.speed_kmh.expect("speed");
        assert!((kmh - 90.0).abs() < 3.0, "measured {kmh} km/h");
        assert_eq!(incidents[1].state, IncidentState::Ended);
    }
}
