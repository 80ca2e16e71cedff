//! Stopped vehicles, aware of queues. Standing still is not an incident by itself: at a red
//! light, or behind other standing vehicles, a vehicle is queueing. A stopped-vehicle
//! incident needs the vehicle standing while traffic in its direction moves on past it
//! (`passed_by` vehicles went from behind it to ahead of it, beside it — on a two-way road
//! with no configured direction, either way along the learned axis), or standing beyond a
//! long limit whatever the reason (`alone_after`: a no-stopping zone 30 s, a hard shoulder
//! 60 s) — except waiting at a red light, which does not count towards it.
//!
//! One incident per object and episode: the episode lasts while the vehicle stays on its
//! spot (creeping less than a box height and stopping again is the same episode); it ends
//! when the vehicle drives off, leaves the zone, or its track ends and no new track takes
//! over the spot within [`ORPHAN_GRACE`] (a track broken by an occlusion continues the
//! incident instead of starting another). The vehicles queueing behind it are referenced in
//! the incident (`related`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use roadsight_events::{IncidentKind, IncidentMeasures, IncidentState, ObjectRef, Severity};

use super::{departed, emit, speed, unit, Active, ZoneContext};
use crate::analytics::{Anchor, Emitted, Point, TrackedObject};
use crate::geometry::BBox;

#[derive(Debug, Clone, PartialEq)]
pub struct StoppedRule {
    /// `StoppedVehicle`, or `NoStopping` in a zone marked no-stopping.
    pub kind: IncidentKind,
    /// Standing this long while passed by `passed_by` vehicles → incident.
    pub after: Duration,
    /// Below this speed (px/s) a vehicle counts as standing.
    pub max_speed_px_s: f32,
    /// Vehicles that must pass the standing one (0: standing `after` is enough).
    pub passed_by: u32,
    /// Standing this long → incident even in a queue or at a red light (`None`: never).
    pub alone_after: Option<Duration>,
}

/// A vehicle that moved more than this many box heights from where it stopped has left its spot.
const LEAVE_HEIGHTS: f32 = 1.0;
/// "Beside": a passing vehicle within this many of the standing one's box widths, across.
const BESIDE_WIDTHS: f32 = 3.0;
/// A standing vehicle ahead, beside it or in its lane (within [`BESIDE_WIDTHS`] across) and
/// at most this many box heights ahead, means it is queueing: the road ahead is held.
const QUEUE_GAP_HEIGHTS: f32 = 3.0;
/// The vehicles queueing behind it (its `related`): in its lane, within this many widths.
const LANE_WIDTHS: f32 = 1.0;
/// Behind / ahead: further than these many box heights along the direction of travel.
const BEHIND_HEIGHTS: f32 = 0.5;
const AHEAD_HEIGHTS: f32 = 2.0;
/// A passing vehicle heads this closely along the traffic direction (cosine).
const SAME_HEADING: f32 = 0.7;
/// An incident whose track ended waits this long for a new track on its spot.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(10);
/// Passers-by a standing vehicle remembers behind it, at most.
const MAX_BEHIND: usize = 512;
/// Objects referenced by one incident, at most.
const MAX_RELATED: usize = 16;

/// A vehicle standing on its spot.
#[derive(Debug, Clone)]
struct Standing {
    since: Duration,
    /// Its anchor where it stopped, and its box size then.
    spot: Point,
    width: f32,
    height: f32,
    /// Its heading before it stopped (unit), if it was seen moving.
    heading: Option<Point>,
    /// Moving vehicles seen behind it (at most [`MAX_BEHIND`]), and how many then got ahead.
    behind: BTreeSet<u64>,
    passed: u32,
    last: ObjectRef,
    bbox: BBox,
    incident: Option<Active>,
}

impl Standing {
    /// A point in this vehicle's frame: (along the direction `d`, across it) in pixels.
    fn relative(&self, p: Point, d: Point) -> (f32, f32) {
        let (rx, ry) = (p.0 - self.spot.0, p.1 - self.spot.1);
        (rx * d.0 + ry * d.1, (rx * d.1 - ry * d.0).abs())
    }

    fn measures(&self, now: Duration) -> IncidentMeasures {
        IncidentMeasures {
            duration_ms: Some(now.saturating_sub(self.since).as_millis() as u64),
            passed_by: Some(self.passed),
            ..Default::default()
        }
    }
}

/// An incident whose track ended, waiting for a track to take over its spot.
struct Orphan {
    standing: Standing,
    lost_at: Duration,
}

pub(super) struct StoppedRuntime {
    rule: StoppedRule,
    standing: BTreeMap<u64, Standing>,
    orphans: Vec<Orphan>,
    /// Each track's last heading while moving (unit).
    headings: BTreeMap<u64, Point>,
    /// The zone's learned axis of travel, sign-free (a two-way road has one axis): a running
    /// mean of moving vehicles' headings as doubled-angle vectors (cos 2θ, sin 2θ).
    axis: Point,
}

/// The direction a standing vehicle is judged by.
#[derive(Debug, Clone, Copy)]
struct Travel {
    /// Unit vector.
    d: Point,
    /// `false`: only the axis is known (traffic may pass either way, and "ahead" is either side).
    directed: bool,
}

impl StoppedRuntime {
    pub(super) fn new(rule: StoppedRule) -> Self {
        StoppedRuntime { rule, standing: BTreeMap::new(), orphans: Vec::new(), headings: BTreeMap::new(), axis: (0.0, 0.0) }
    }

    fn moving(&self, o: &TrackedObject) -> bool {
        speed(o) > 2.0 * self.rule.max_speed_px_s
    }

    /// The direction of travel a standing vehicle is judged by: the zone's, else the one it
    /// drove in, else the zone's learned axis once it is consistent.
    fn direction_for(&self, ctx: &ZoneContext<'_>, s: &Standing) -> Option<Travel> {
        if let Some(d) = ctx.direction.or(s.heading) {
            return Some(Travel { d, directed: true });
        }
        let n = (self.axis.0 * self.axis.0 + self.axis.1 * self.axis.1).sqrt();
        let half = self.axis.1.atan2(self.axis.0) / 2.0;
        (n > 0.5).then(|| Travel { d: (half.cos(), half.sin()), directed: false })
    }

    pub(super) fn update(
        &mut self,
        ctx: &ZoneContext<'_>,
        inside: &[&TrackedObject],
        vehicles: &[&TrackedObject],
        ended: &[TrackedObject],
        out: &mut Vec<Emitted>,
    ) {
        self.learn_headings(inside);
        self.follow_spots(ctx, inside, out);
        self.count_passers(ctx, inside);
        self.decide(ctx, out);
        self.close_departed(ctx, inside, vehicles, ended, out);
        self.headings.retain(|id, _| !ended.iter().any(|o| o.track_id == *id));
    }

    fn learn_headings(&mut self, inside: &[&TrackedObject]) {
        for o in inside {
            if let Some(h) = o.velocity.filter(|_| self.moving(o)).and_then(unit) {
                self.headings.insert(o.track_id, h);
                let (c2, s2) = (h.0 * h.0 - h.1 * h.1, 2.0 * h.0 * h.1);
                self.axis = (0.9 * self.axis.0 + 0.1 * c2, 0.9 * self.axis.1 + 0.1 * s2);
            }
        }
    }

    /// Who stands where: a vehicle slow enough starts standing (or takes over an orphaned
    /// incident's spot); one that moved off its spot stops standing, ending its incident.
    fn follow_spots(&mut self, ctx: &ZoneContext<'_>, inside: &[&TrackedObject], out: &mut Vec<Emitted>) {
        let now = ctx.now;
        self.orphans.retain(|orphan| {
            let keep = now.saturating_sub(orphan.lost_at) <= ORPHAN_GRACE;
            if let (false, Some(a)) = (keep, &orphan.standing.incident) {
                let s = &orphan.standing;
                out.push(emit(now, a.event(IncidentState::Ended, Some(s.last.clone()), s.measures(orphan.lost_at)), None));
            }
            keep
        });
        for o in inside {
            let anchor = Anchor::BottomCenter.of(&o.bbox);
            if let Some(s) = self.standing.get_mut(&o.track_id) {
                let moved = ((anchor.0 - s.spot.0).powi(2) + (anchor.1 - s.spot.1).powi(2)).sqrt();
                if moved > LEAVE_HEIGHTS * s.height {
                    let s = self.standing.remove(&o.track_id).expect("present");
                    if let Some(a) = &s.incident {
                        out.push(emit(now, a.event(IncidentState::Ended, Some(o.to_ref()), s.measures(now)), None));
                    }
                } else {
                    s.last = o.to_ref();
                    s.bbox = o.bbox;
                }
                continue;
            }
            if speed(o) > self.rule.max_speed_px_s {
                continue;
            }
            let taken_over = self.orphans.iter().position(|orphan| orphan.standing.bbox.iou(&o.bbox) >= 0.3);
            let standing = match taken_over {
                Some(i) => {
                    let mut s = self.orphans.remove(i).standing;
                    s.last = o.to_ref();
                    s.bbox = o.bbox;
                    let (last, measures) = (s.last.clone(), s.measures(now));
                    if let Some(a) = &mut s.incident {
                        a.last_update = now;
                        out.push(emit(now, a.event(IncidentState::Updated, Some(last), measures), None));
                    }
                    s
                }
                None => Standing {
                    since: now,
                    spot: anchor,
                    width: o.bbox.width().max(1.0),
                    height: o.bbox.height().max(1.0),
                    heading: self.headings.get(&o.track_id).copied(),
                    behind: BTreeSet::new(),
                    passed: 0,
                    last: o.to_ref(),
                    bbox: o.bbox,
                    incident: None,
                },
            };
            self.standing.insert(o.track_id, standing);
        }
    }

    /// Moving vehicles heading with the traffic, beside a standing one: seen behind it, then
    /// ahead of it, they passed it.
    fn count_passers(&mut self, ctx: &ZoneContext<'_>, inside: &[&TrackedObject]) {
        let ids: Vec<u64> = self.standing.keys().copied().collect();
        for id in ids {
            let Some(travel) = self.standing.get(&id).and_then(|s| self.direction_for(ctx, s)) else { continue };
            // Each passer judged along its own sense of travel on an undirected axis.
            let passers: Vec<(u64, Point, Point)> = inside
                .iter()
                .filter(|b| b.track_id != id && !self.standing.contains_key(&b.track_id) && self.moving(b))
                .filter_map(|b| {
                    let h = b.velocity.and_then(unit)?;
                    let cos = h.0 * travel.d.0 + h.1 * travel.d.1;
                    let d = match (travel.directed, cos < 0.0) {
                        (false, true) => (-travel.d.0, -travel.d.1),
                        _ => travel.d,
                    };
                    (h.0 * d.0 + h.1 * d.1 >= SAME_HEADING).then(|| (b.track_id, Anchor::BottomCenter.of(&b.bbox), d))
                })
                .collect();
            let s = self.standing.get_mut(&id).expect("present");
            for (b, p, d) in passers {
                let (along, across) = s.relative(p, d);
                if across > BESIDE_WIDTHS * s.width {
                    continue;
                }
                if along < -BEHIND_HEIGHTS * s.height && s.behind.len() < MAX_BEHIND {
                    s.behind.insert(b);
                } else if along > AHEAD_HEIGHTS * s.height && s.behind.remove(&b) {
                    s.passed += 1;
                }
            }
        }
    }

    /// Whether standing vehicles are close ahead of `s` (it is queueing behind them), and
    /// those standing behind it in its lane (queueing behind it).
    fn neighbours(&self, ctx: &ZoneContext<'_>, id: u64, s: &Standing) -> (bool, Vec<ObjectRef>) {
        let Some(Travel { d, directed }) = self.direction_for(ctx, s) else { return (false, Vec::new()) };
        let mut ahead = false;
        let mut behind = Vec::new();
        for (other, o) in &self.standing {
            if *other == id {
                continue;
            }
            let (along, across) = s.relative(o.spot, d);
            // On an undirected axis a standing neighbour either side holds it.
            let along_ahead = if directed { along } else { along.abs() };
            if along_ahead > 0.2 * s.height && along_ahead <= QUEUE_GAP_HEIGHTS * s.height && across <= BESIDE_WIDTHS * s.width {
                ahead = true;
            } else if along < -0.2 * s.height
                && along >= -2.0 * QUEUE_GAP_HEIGHTS * s.height
                && across <= LANE_WIDTHS * s.width.max(o.width)
                && behind.len() < MAX_RELATED
            {
                behind.push(o.last.clone());
            }
        }
        (ahead, behind)
    }

    fn decide(&mut self, ctx: &ZoneContext<'_>, out: &mut Vec<Emitted>) {
        let now = ctx.now;
        let ids: Vec<u64> = self.standing.keys().copied().collect();
        for id in ids {
            let s = &self.standing[&id];
            let update_due = s.incident.as_ref().is_some_and(|a| now.saturating_sub(a.last_update) >= ctx.every);
            let start_due = s.incident.is_none() && self.may_start(ctx, s);
            if !update_due && !start_due {
                continue;
            }
            // The neighbours only when an event may go out (not on every frame).
            let (queueing, related) = self.neighbours(ctx, id, s);
            let long = self.past_long_limit(ctx, s);
            let rule = &self.rule;
            let s = self.standing.get_mut(&id).expect("present");
            let (last, measures) = (s.last.clone(), s.measures(now));
            match &mut s.incident {
                None if long || !queueing => {
                    let a = Active::new(rule.kind, ctx.zone(), s.since, Severity::Warning);
                    let mut ev = a.event(IncidentState::Started, Some(last), measures);
                    ev.related = related;
                    out.push(emit(now, ev, Some(s.bbox)));
                    s.incident = Some(Active { last_update: now, ..a });
                }
                Some(a) => {
                    a.last_update = now;
                    let mut ev = a.event(IncidentState::Updated, Some(last), measures);
                    ev.related = related;
                    out.push(emit(now, ev, None));
                }
                None => {}
            }
        }
    }

    /// Beyond the long limit. Waiting at a red light does not count towards it: it runs from
    /// the stop, or from the signal's last release if that came later.
    fn past_long_limit(&self, ctx: &ZoneContext<'_>, s: &Standing) -> bool {
        let unheld = ctx.now.saturating_sub(ctx.released_at.map_or(s.since, |r| r.max(s.since)));
        !ctx.held && self.rule.alone_after.is_some_and(|limit| unheld >= limit)
    }

    /// A start is due unless the vehicle turns out to be queueing: past the long limit, or
    /// standing `after` while passed by enough vehicles and not held by its signal.
    fn may_start(&self, ctx: &ZoneContext<'_>, s: &Standing) -> bool {
        let stood = ctx.now.saturating_sub(s.since);
        let passed = s.passed >= self.rule.passed_by;
        self.past_long_limit(ctx, s) || (stood >= self.rule.after && passed && !ctx.held)
    }

    /// A standing vehicle that left the zone ends its episode; one whose track ended leaves
    /// its incident to an orphan, for a new track on the same spot to take over.
    fn close_departed(
        &mut self,
        ctx: &ZoneContext<'_>,
        inside: &[&TrackedObject],
        vehicles: &[&TrackedObject],
        ended: &[TrackedObject],
        out: &mut Vec<Emitted>,
    ) {
        let gone: Vec<u64> = self.standing.keys().copied().filter(|id| departed(*id, inside, vehicles, ended)).collect();
        for id in gone {
            let s = self.standing.remove(&id).expect("present");
            let track_ended = ended.iter().any(|o| o.track_id == id);
            if s.incident.is_some() && track_ended {
                self.orphans.push(Orphan { standing: s, lost_at: ctx.now });
            } else if let Some(a) = &s.incident {
                out.push(emit(ctx.now, a.event(IncidentState::Ended, Some(s.last.clone()), s.measures(ctx.now)), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{car, engine_with, incidents, ms};
    use super::*;
    use crate::analytics::incidents::ZoneRules;

    fn rule() -> StoppedRule {
        StoppedRule {
            kind: IncidentKind::StoppedVehicle,
            after: Duration::from_secs(5),
            max_speed_px_s: 3.0,
            passed_by: 2,
            alone_after: Some(Duration::from_secs(60)),
        }
    }

    fn zone(z: &mut ZoneRules) {
        z.direction = Some((1.0, 0.0));
        z.stopped_vehicle = Some(rule());
    }

    /// Cars passing in lane 2 (y = 530) at 200 px/s, one every 2 s from frame `first` on, `n`
    /// of them, as seen at frame `f`.
    fn passing(f: u64, first: u64, n: u64) -> Vec<TrackedObject> {
        (0..n)
            .filter(|k| f >= first + k * 20)
            .map(|k| car(10 + k, (f - first - k * 20) as f32 * 20.0, 530.0, (200.0, 0.0), ms(f * 100)))
            .collect()
    }

    /// Car 1 standing at x = 400 in lane 1 while `n` cars pass, under signal `phase` (`None`:
    /// the zone has no signal), for `frames`.
    fn standing_at_a_signal(phase: Option<crate::analytics::signals::SignalPhase>, frames: u64, n: u64) -> Vec<Emitted> {
        let mut e = engine_with(|z| {
            zone(z);
            z.signal = phase.map(|_| "main".into());
        });
        if let Some(p) = phase {
            e.set_signal("main", p, ms(0));
        }
        (0..frames)
            .flat_map(|f| {
                let t = ms(f * 100);
                let mut objs = vec![car(1, 400.0, 500.0, (0.0, 0.0), t)];
                objs.extend(passing(f, 10, n));
                e.update(t, &objs, &[], &[])
            })
            .collect()
    }

    /// Traffic runs left to right along y = 500 (lane 1) and y = 540 (lane 2).
    #[test]
    fn a_queue_of_six_standing_vehicles_raises_nothing() {
        let mut e = engine_with(zone);
        let mut out = Vec::new();
        // Six cars drive up and stop nose to tail in lane 1, the first at x = 800; eight bikes
        // filter past them in lane 2 (most after the queue has formed) and stop at its head.
        for f in 0..500u64 {
            let t = ms(f * 100);
            let mut objs = Vec::new();
            for i in 0..6u64 {
                let stop_x = 800.0 - i as f32 * 30.0;
                let x = (100.0 + f as f32 * 10.0 - i as f32 * 30.0).min(stop_x);
                let v = if x < stop_x { 100.0 } else { 0.0 };
                objs.push(car(i + 1, x, 500.0, (v, 0.0), t));
            }
            for b in 0..8u64 {
                let x = (f as f32 * 15.0 - b as f32 * 150.0).min(830.0);
                let v = if x < 830.0 { 150.0 } else { 0.0 };
                objs.push(car(100 + b, x, 540.0, (v, 0.0), t));
            }
            out.extend(e.update(t, &objs, &[], &[]));
        }
        assert!(incidents(&out).is_empty(), "a queue is not an incident: {:?}", incidents(&out));
    }

    #[test]
    fn a_vehicle_passed_by_traffic_raises_one_incident_once() {
        let mut e = engine_with(zone);
        let mut out = Vec::new();
        // Car 1 drives in and breaks down at x = 400 (t = 3 s); from t = 4 s a car passes it
        // beside every 2 s; at t = 30 s it drives off.
        for f in 0..320u64 {
            let t = ms(f * 100);
            let x1 = if f < 30 { 100.0 + f as f32 * 10.0 } else if f < 300 { 400.0 } else { 400.0 + (f - 300) as f32 * 15.0 };
            let v1 = if (30..300).contains(&f) { 0.0 } else { 100.0 };
            let mut objs = vec![car(1, x1, 500.0, (v1, 0.0), t)];
            objs.extend(passing(f, 40, 14));
            out.extend(e.update(t, &objs, &[], &[]));
        }
        let got = incidents(&out);
        let starts: Vec<_> = got.iter().filter(|i| i.state == IncidentState::Started).collect();
        assert_eq!(starts.len(), 1, "{got:?}");
        assert_eq!(starts[0].kind, IncidentKind::StoppedVehicle);
        assert_eq!(starts[0].object.as_ref().map(|o| o.track_id), Some(1));
        assert!(starts[0].measures.passed_by.expect("passed") >= 2);
        assert!(got.iter().all(|i| i.incident_id == starts[0].incident_id), "one incident id");
        assert_eq!(got.last().map(|i| i.state), Some(IncidentState::Ended));
        // It fired once it had stood 5 s (from t = 3 s) and the second car had got two box
        // heights ahead of it (t = 8.3 s), not before.
        let first = out.iter().find(|e| matches!(&e.body, roadsight_events::EventBody::Incident(_))).expect("start");
        assert_eq!(first.pts, ms(8300), "fired at {:?}", first.pts);
    }

    #[test]
    fn creeping_and_stopping_again_and_a_broken_track_stay_one_incident() {
        let mut e = engine_with(zone);
        let mut out = Vec::new();
        for f in 0..400u64 {
            let t = ms(f * 100);
            // Stands at 400, creeps to 410 at t = 15 s, stands; its track breaks at t = 25 s
            // (id 1 ends, id 2 appears on the same spot 2 s later).
            let x = if f < 150 { 400.0 } else { (400.0 + (f - 150) as f32).min(410.0) };
            let v = if (150..160).contains(&f) { 10.0 } else { 0.0 };
            let mut objs = Vec::new();
            let mut ended = Vec::new();
            match f {
                0..250 => objs.push(car(1, x, 500.0, (v, 0.0), t)),
                250 => ended.push(car(1, x, 500.0, (0.0, 0.0), t)),
                251..270 => {}
                _ => objs.push(car(2, x + 1.0, 500.0, (0.0, 0.0), t)),
            }
            objs.extend(passing(f, 10, 18));
            out.extend(e.update(t, &objs, &ended, &[]));
        }
        let got = incidents(&out);
        let starts = got.iter().filter(|i| i.state == IncidentState::Started).count();
        assert_eq!(starts, 1, "{got:?}");
        assert!(got.iter().all(|i| i.incident_id == got[0].incident_id));
        assert!(!got.iter().any(|i| i.state == IncidentState::Ended), "still standing");
        assert_eq!(got.last().and_then(|i| i.object.as_ref()).map(|o| o.track_id), Some(2), "the new track took over");
    }

    #[test]
    fn standing_alone_past_the_long_limit_is_an_incident_and_a_red_signal_holds_traffic() {
        use crate::analytics::signals::SignalPhase;
        // Standing alone (nobody passes, no signal): the long limit of 60 s.
        let out = standing_at_a_signal(None, 700, 0);
        let first = out.iter().find(|e| matches!(&e.body, roadsight_events::EventBody::Incident(_))).expect("the long limit fires");
        assert!(first.pts >= ms(60_000) && first.pts <= ms(60_200), "fired at {:?}", first.pts);
        // Waiting at a red light while cars pass beside it (a turning lane that flows): held,
        // and waiting does not run the long limit either.
        assert!(incidents(&standing_at_a_signal(Some(SignalPhase::Red), 700, 30)).is_empty());
        // On green, passers make it an incident after 5 s.
        let out = standing_at_a_signal(Some(SignalPhase::Green), 100, 4);
        assert_eq!(incidents(&out).iter().filter(|i| i.state == IncidentState::Started).count(), 1);
    }
}
