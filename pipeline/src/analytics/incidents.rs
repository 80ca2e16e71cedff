//! Incident rules on tracks — stopped vehicle, wrong way, congestion/queue, speeding — each
//! with a lifecycle `started` → `updated`… → `ended` under one stable `incident_id`. Pure and
//! on stream time: durations and speeds come from PTS, never the wall clock. A `started`
//! event asks for a snapshot of the object's box (the caller renders and attaches it).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use roadsight_events::{EventBody, IncidentEvent, IncidentKind, IncidentMeasures, IncidentState, ObjectRef, Severity};
use uuid::Uuid;

use super::homography::Homography;
use super::zone::point_in_polygon;
use super::{Anchor, Emitted, Point, TrackedObject};
use crate::geometry::BBox;

#[derive(Debug, Clone, PartialEq)]
pub struct StoppedRule {
    /// Stationary this long inside the zone → incident.
    pub after: Duration,
    /// Below this speed (px/s) a vehicle counts as stationary.
    pub max_speed_px_s: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WrongWayRule {
    /// Distance travelled against the zone's direction before it counts.
    pub min_distance_px: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CongestionRule {
    pub window: Duration,
    /// Mean vehicles in the zone over the window for `heavy` and `congested`.
    pub heavy_occupancy: f32,
    pub congested_occupancy: f32,
    /// `congested` also needs the mean speed below this (px/s).
    pub slow_speed_px_s: f32,
}

/// Rules attached to one zone (normalised polygon, as configured).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneRules {
    pub zone_id: String,
    pub polygon: Vec<Point>,
    /// Allowed direction of travel in normalised image coordinates (for wrong way and queues).
    pub direction: Option<Point>,
    pub stopped_vehicle: Option<StoppedRule>,
    pub wrong_way: Option<WrongWayRule>,
    pub congestion: Option<CongestionRule>,
}

/// Per-camera speed limit with a calibration: four image points (normalised) ↔ ground metres.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedingRule {
    pub image_points: [Point; 4],
    pub ground_points_m: [(f64, f64); 4],
    pub limit_kmh: f32,
    /// Over the limit for this long (stream time) → incident.
    pub min_duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentConfig {
    pub zones: Vec<ZoneRules>,
    pub speeding: Option<SpeedingRule>,
    /// Active incidents send an `updated` event this often.
    pub update_every: Duration,
}

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
            snapshot: None,
        }
    }
}

fn emit(pts: Duration, ev: IncidentEvent, snapshot: Option<BBox>) -> Emitted {
    Emitted { pts, body: EventBody::Incident(ev), snapshot }
}

struct ZoneRuntime {
    rules: ZoneRules,
    polygon: Vec<Point>,
    direction: Option<Point>,
    still_since: BTreeMap<u64, Duration>,
    stopped: BTreeMap<u64, Active>,
    entry: BTreeMap<u64, Point>,
    wrong_way: BTreeMap<u64, Active>,
    samples: VecDeque<(Duration, f32, f32)>,
    congestion: Option<(Active, Severity)>,
}

struct SpeedRuntime {
    rule: SpeedingRule,
    homography: Homography,
    history: BTreeMap<u64, VecDeque<(Duration, (f64, f64))>>,
    over_since: BTreeMap<u64, Duration>,
    active: BTreeMap<u64, (Active, f32)>,
}

pub struct IncidentEngine {
    zones: Vec<ZoneRuntime>,
    speeding: Option<SpeedRuntime>,
    update_every: Duration,
}

fn speed(o: &TrackedObject) -> f32 {
    o.velocity.map_or(0.0, |(vx, vy)| (vx * vx + vy * vy).sqrt())
}

impl IncidentEngine {
    /// `None` when the speeding calibration is degenerate.
    pub fn new(config: &IncidentConfig, width: u32, height: u32) -> Result<Self, String> {
        let (w, h) = (width as f32, height as f32);
        let zones = config
            .zones
            .iter()
            .map(|r| ZoneRuntime {
                polygon: r.polygon.iter().map(|p| (p.0 * w, p.1 * h)).collect(),
                direction: r.direction.map(|(dx, dy)| {
                    let (x, y) = (dx * w, dy * h);
                    let n = (x * x + y * y).sqrt().max(1e-6);
                    (x / n, y / n)
                }),
                rules: r.clone(),
                still_since: BTreeMap::new(),
                stopped: BTreeMap::new(),
                entry: BTreeMap::new(),
                wrong_way: BTreeMap::new(),
                samples: VecDeque::new(),
                congestion: None,
            })
            .collect();
        let speeding = match &config.speeding {
            Some(rule) => {
                let img = rule.image_points.map(|p| ((p.0 * w) as f64, (p.1 * h) as f64));
                let homography = Homography::from_points(img, rule.ground_points_m)
                    .ok_or("speeding calibration: the four image points are degenerate (three on a line?)")?;
                Some(SpeedRuntime {
                    rule: rule.clone(),
                    homography,
                    history: BTreeMap::new(),
                    over_since: BTreeMap::new(),
                    active: BTreeMap::new(),
                })
            }
            None => None,
        };
        Ok(IncidentEngine { zones, speeding, update_every: config.update_every.max(Duration::from_secs(1)) })
    }

    /// One frame's tracks (matched in it) and the tracks that ended.
    pub fn update(&mut self, now: Duration, active: &[TrackedObject], ended: &[TrackedObject]) -> Vec<Emitted> {
        let mut out = Vec::new();
        let vehicles: Vec<&TrackedObject> = active.iter().filter(|o| o.class.is_vehicle()).collect();
        for z in &mut self.zones {
            z.update(now, &vehicles, ended, self.update_every, &mut out);
        }
        if let Some(s) = &mut self.speeding {
            s.update(now, &vehicles, ended, &mut out);
        }
        out
    }
}

impl ZoneRuntime {
    fn update(&mut self, now: Duration, vehicles: &[&TrackedObject], ended: &[TrackedObject], every: Duration, out: &mut Vec<Emitted>) {
        let inside: Vec<&TrackedObject> =
            vehicles.iter().copied().filter(|o| point_in_polygon(Anchor::BottomCenter.of(&o.bbox), &self.polygon)).collect();
        let zone_id = Some(self.rules.zone_id.clone());
        if let Some(rule) = self.rules.stopped_vehicle.clone() {
            for o in &inside {
                let still = speed(o) <= rule.max_speed_px_s;
                let moving = speed(o) > 2.0 * rule.max_speed_px_s;
                if still {
                    let since = *self.still_since.entry(o.track_id).or_insert(now);
                    let stopped_for = now.saturating_sub(since);
                    match self.stopped.get_mut(&o.track_id) {
                        None if stopped_for >= rule.after => {
                            let a = Active::new(IncidentKind::StoppedVehicle, zone_id.clone(), since, Severity::Warning);
                            let m = IncidentMeasures { duration_ms: Some(stopped_for.as_millis() as u64), ..Default::default() };
                            out.push(emit(now, a.event(IncidentState::Started, Some(o.to_ref()), m), Some(o.bbox)));
                            self.stopped.insert(o.track_id, Active { last_update: now, ..a });
                        }
                        Some(a) if now.saturating_sub(a.last_update) >= every => {
                            a.last_update = now;
                            let m = IncidentMeasures { duration_ms: Some(stopped_for.as_millis() as u64), ..Default::default() };
                            out.push(emit(now, a.event(IncidentState::Updated, Some(o.to_ref()), m), None));
                        }
                        _ => {}
                    }
                } else if moving {
                    self.still_since.remove(&o.track_id);
                    if let Some(a) = self.stopped.remove(&o.track_id) {
                        let m = IncidentMeasures { duration_ms: Some(now.saturating_sub(a.started).as_millis() as u64), ..Default::default() };
                        out.push(emit(now, a.event(IncidentState::Ended, Some(o.to_ref()), m), None));
                    }
                }
            }
        }
        if let (Some(rule), Some(dir)) = (self.rules.wrong_way.clone(), self.direction) {
            for o in &inside {
                let p = o.bbox.center();
                let start = *self.entry.entry(o.track_id).or_insert(p);
                let along = (p.0 - start.0) * dir.0 + (p.1 - start.1) * dir.1;
                if along < -rule.min_distance_px && !self.wrong_way.contains_key(&o.track_id) {
                    let a = Active::new(IncidentKind::WrongWay, zone_id.clone(), now, Severity::Critical);
                    let m = IncidentMeasures { distance_px: Some(-along), ..Default::default() };
                    out.push(emit(now, a.event(IncidentState::Started, Some(o.to_ref()), m), Some(o.bbox)));
                    self.wrong_way.insert(o.track_id, a);
                }
            }
        }
        if let Some(rule) = self.rules.congestion.clone() {
            let mean_speed = if inside.is_empty() { 0.0 } else { inside.iter().map(|o| speed(o)).sum::<f32>() / inside.len() as f32 };
            self.samples.push_back((now, inside.len() as f32, mean_speed));
            while self.samples.front().is_some_and(|s| now.saturating_sub(s.0) > rule.window) {
                self.samples.pop_front();
            }
            let n = self.samples.len() as f32;
            let occupancy = self.samples.iter().map(|s| s.1).sum::<f32>() / n;
            let speed_avg = self.samples.iter().map(|s| s.2).sum::<f32>() / n;
            let full_window = self.samples.front().is_some_and(|s| now.saturating_sub(s.0) >= rule.window / 2);
            let level = if !full_window {
                None
            } else if occupancy >= rule.congested_occupancy && speed_avg < rule.slow_speed_px_s {
                Some(Severity::Critical)
            } else if occupancy >= rule.heavy_occupancy {
                Some(Severity::Warning)
            } else {
                None
            };
            let measures = IncidentMeasures {
                occupancy: Some(occupancy),
                queue_length_m: None,
                duration_ms: self.congestion.as_ref().map(|(a, _)| now.saturating_sub(a.started).as_millis() as u64),
                ..Default::default()
            };
            match (&mut self.congestion, level) {
                (None, Some(sev)) => {
                    let a = Active::new(IncidentKind::Congestion, zone_id.clone(), now, sev);
                    let focus = inside.first().map(|o| o.bbox);
                    out.push(emit(now, a.event(IncidentState::Started, None, measures), focus));
                    self.congestion = Some((a, sev));
                }
                (Some((a, sev)), Some(new)) if *sev != new || now.saturating_sub(a.last_update) >= every => {
                    *sev = new;
                    a.severity = new;
                    a.last_update = now;
                    out.push(emit(now, a.event(IncidentState::Updated, None, measures), None));
                }
                (Some(_), None) if full_window => {
                    if let Some((a, _)) = self.congestion.take() {
                        out.push(emit(now, a.event(IncidentState::Ended, None, measures), None));
                    }
                }
                _ => {}
            }
        }
        // Tracks that left the zone or ended close their per-track incidents.
        let present: Vec<u64> = inside.iter().map(|o| o.track_id).collect();
        let gone = |id: &u64| !present.contains(id);
        for (map, kind_ends) in [(&mut self.stopped, true), (&mut self.wrong_way, true)] {
            let leaving: Vec<u64> = map.keys().copied().filter(|id| gone(id)).collect();
            for id in leaving {
                if let Some(a) = map.remove(&id) {
                    if kind_ends {
                        let obj = ended.iter().find(|o| o.track_id == id).map(TrackedObject::to_ref);
                        let m = IncidentMeasures { duration_ms: Some(now.saturating_sub(a.started).as_millis() as u64), ..Default::default() };
                        out.push(emit(now, a.event(IncidentState::Ended, obj, m), None));
                    }
                }
            }
        }
        self.still_since.retain(|id, _| present.contains(id));
        self.entry.retain(|id, _| present.contains(id));
    }
}

impl SpeedRuntime {
    fn update(&mut self, now: Duration, vehicles: &[&TrackedObject], ended: &[TrackedObject], out: &mut Vec<Emitted>) {
        const WINDOW: Duration = Duration::from_millis(1000);
        for o in vehicles {
            let (x, y) = Anchor::BottomCenter.of(&o.bbox);
            let g = self.homography.apply((x as f64, y as f64));
            let h = self.history.entry(o.track_id).or_default();
            h.push_back((now, g));
            while h.front().is_some_and(|s| now.saturating_sub(s.0) > WINDOW) {
                h.pop_front();
            }
            let (Some(first), Some(last)) = (h.front(), h.back()) else { continue };
            let dt = last.0.saturating_sub(first.0).as_secs_f64();
            if dt < 0.3 {
                continue;
            }
            let d = ((last.1 .0 - first.1 .0).powi(2) + (last.1 .1 - first.1 .1).powi(2)).sqrt();
            let kmh = (d / dt * 3.6) as f32;
            if kmh > self.rule.limit_kmh {
                let since = *self.over_since.entry(o.track_id).or_insert(now);
                if now.saturating_sub(since) >= self.rule.min_duration && !self.active.contains_key(&o.track_id) {
                    let severity = if kmh > self.rule.limit_kmh * 1.5 { Severity::Critical } else { Severity::Warning };
                    let a = Active::new(IncidentKind::Speeding, None, now, severity);
                    let m = IncidentMeasures { speed_kmh: Some(kmh), limit_kmh: Some(self.rule.limit_kmh), ..Default::default() };
                    out.push(emit(now, a.event(IncidentState::Started, Some(o.to_ref()), m), Some(o.bbox)));
                    self.active.insert(o.track_id, (a, kmh));
                } else if let Some((_, max)) = self.active.get_mut(&o.track_id) {
                    *max = max.max(kmh);
                }
            } else {
                self.over_since.remove(&o.track_id);
            }
        }
        for o in ended {
            self.history.remove(&o.track_id);
            self.over_since.remove(&o.track_id);
            if let Some((a, max)) = self.active.remove(&o.track_id) {
                let m = IncidentMeasures { speed_kmh: Some(max), limit_kmh: Some(self.rule.limit_kmh), ..Default::default() };
                out.push(emit(now, a.event(IncidentState::Ended, Some(o.to_ref()), m), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadsight_events::ObjectClass;

    fn obj(id: u64, cx: f32, cy: f32, v: (f32, f32), t: Duration) -> TrackedObject {
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

    fn zone(rules: impl FnOnce(&mut ZoneRules)) -> IncidentConfig {
        let mut z = ZoneRules {
            zone_id: "road".into(),
            polygon: vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
            direction: None,
            stopped_vehicle: None,
            wrong_way: None,
            congestion: None,
        };
        rules(&mut z);
        IncidentConfig { zones: vec![z], speeding: None, update_every: Duration::from_secs(2) }
    }

    fn states(events: &[Emitted]) -> Vec<(IncidentKind, IncidentState)> {
        events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Incident(i) => Some((i.kind, i.state)),
                _ => None,
            })
            .collect()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn stopped_vehicle_starts_updates_and_ends() {
        let cfg = zone(|z| z.stopped_vehicle = Some(StoppedRule { after: Duration::from_secs(5), max_speed_px_s: 3.0 }));
        let mut e = IncidentEngine::new(&cfg, 1000, 1000).expect("engine");
        let mut out = Vec::new();
        // Drives in, stops for 8 s, drives off.
        for f in 0..50u64 {
            out.extend(e.update(ms(f * 100), &[obj(1, 100.0 + f as f32 * 2.0, 500.0, (20.0, 0.0), ms(f * 100))], &[]));
        }
        let mut ids = Vec::new();
        for f in 50..130u64 {
            let got = e.update(ms(f * 100), &[obj(1, 200.0, 500.0, (0.5, 0.0), ms(f * 100))], &[]);
            for g in &got {
                if let EventBody::Incident(i) = &g.body {
                    ids.push(i.incident_id);
                    if i.state == IncidentState::Started {
                        assert!(g.snapshot.is_some(), "a start asks for a snapshot");
                        assert!(i.measures.duration_ms.expect("duration") >= 5000);
                    }
                }
            }
            out.extend(got);
        }
        out.extend(e.update(ms(13_000), &[obj(1, 260.0, 500.0, (30.0, 0.0), ms(13_000))], &[]));
        let s = states(&out);
        assert_eq!(s.first(), Some(&(IncidentKind::StoppedVehicle, IncidentState::Started)));
        assert_eq!(s.last(), Some(&(IncidentKind::StoppedVehicle, IncidentState::Ended)));
        assert!(s.iter().filter(|x| x.1 == IncidentState::Updated).count() >= 1);
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one stable incident id");
        // Stopped less than 5 s: nothing.
        let mut e = IncidentEngine::new(&cfg, 1000, 1000).expect("engine");
        let brief: Vec<Emitted> = (0..40u64).flat_map(|f| e.update(ms(f * 100), &[obj(2, 300.0, 300.0, (0.0, 0.0), ms(f * 100))], &[])).collect();
        assert!(states(&brief).is_empty());
    }

    #[test]
    fn wrong_way_against_the_zone_direction() {
        // Traffic should move down the image; track 1 moves up, track 2 moves down.
        let cfg = zone(|z| {
            z.direction = Some((0.0, 1.0));
            z.wrong_way = Some(WrongWayRule { min_distance_px: 50.0 });
        });
        let mut e = IncidentEngine::new(&cfg, 1000, 1000).expect("engine");
        let mut out = Vec::new();
        for f in 0..30u64 {
            let t = ms(f * 100);
            out.extend(e.update(t, &[obj(1, 300.0, 800.0 - f as f32 * 5.0, (0.0, -50.0), t), obj(2, 600.0, 100.0 + f as f32 * 5.0, (0.0, 50.0), t)], &[]));
        }
        out.extend(e.update(ms(3000), &[obj(2, 600.0, 260.0, (0.0, 50.0), ms(3000))], &[obj(1, 300.0, 655.0, (0.0, -50.0), ms(2900))]));
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
        let cfg = zone(|z| {
            z.congestion = Some(CongestionRule {
                window: Duration::from_secs(4),
                heavy_occupancy: 3.0,
                congested_occupancy: 6.0,
                slow_speed_px_s: 10.0,
            })
        });
        let mut e = IncidentEngine::new(&cfg, 1000, 1000).expect("engine");
        let mut out = Vec::new();
        let cars = |n: usize, v: f32, t: Duration| -> Vec<TrackedObject> { (0..n).map(|i| obj(i as u64, 50.0 + i as f32 * 60.0, 500.0, (v, 0.0), t)).collect() };
        let mut t = 0u64;
        for (n, v, secs) in [(1usize, 40.0f32, 6u64), (4, 40.0, 6), (8, 2.0, 6), (0, 0.0, 8)] {
            for _ in 0..secs * 10 {
                out.extend(e.update(ms(t), &cars(n, v, ms(t)), &[]));
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
        let cfg = IncidentConfig { zones: vec![], speeding: Some(rule), update_every: Duration::from_secs(2) };
        let mut e = IncidentEngine::new(&cfg, 1000, 1000).expect("engine");
        let mut out = Vec::new();
        // Track 1: 25 px per 100 ms = 25 m/s = 90 km/h. Track 2: 10 px per 100 ms = 36 km/h.
        for f in 0..30u64 {
            let t = ms(f * 100);
            out.extend(e.update(t, &[obj(1, 10.0 + f as f32 * 25.0, 300.0, (250.0, 0.0), t), obj(2, 10.0 + f as f32 * 10.0, 600.0, (100.0, 0.0), t)], &[]));
        }
        out.extend(e.update(ms(3000), &[], &[obj(1, 760.0, 300.0, (250.0, 0.0), ms(2900))]));
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
