//! Red light: a vehicle crosses a stop line (a counting line, in the direction that enters
//! the junction) while the signal governing it is red — and has been red longer than the
//! grace time (a vehicle that entered on amber clears the line just after the change). A
//! signal first seen red (the change was not watched) must be seen red for the grace time too:
//! how long it had been red is unknown. And the vehicle must have been seen approaching: first
//! seen on the approach side of the line, at least half its height from it — a track born on
//! the line (a vehicle already in the junction when the camera started, or out of an
//! occlusion) proves nothing about when it entered.

use std::collections::BTreeMap;
use std::time::Duration;

use roadsight_events::{IncidentKind, IncidentMeasures, IncidentState, LineCrossing, Severity};

use super::{emit, Active, Signals};
use crate::analytics::{Anchor, Emitted, Point, TrackedObject};
use crate::geometry::BBox;

/// How far before the line (in the vehicle's first-seen box heights) it must have been seen.
const MIN_APPROACH_HEIGHTS: f32 = 0.5;

/// The stop line's geometry, normalised to the frame, and the anchor its crossings use.
#[derive(Debug, Clone, PartialEq)]
pub struct StopLine {
    pub from: Point,
    pub to: Point,
    pub anchor: Anchor,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedLightRule {
    /// The stop line: a configured line's id…
    pub line_id: String,
    /// …crossed in this direction (its forward or backward name; `None`: either).
    pub direction: Option<String>,
    /// The signal governing it.
    pub signal: String,
    /// Red for less than this when the vehicle crosses: not a violation.
    pub grace: Duration,
    /// The line's geometry, for the approach check (`None`: no check).
    pub stop_line: Option<StopLine>,
}

pub(super) struct RedLightRuntime {
    rule: RedLightRule,
    /// The stop line in pixels.
    line: Option<(Point, Point, Anchor)>,
    /// Open violations per track (ended with the track).
    active: BTreeMap<u64, Active>,
}

impl RedLightRuntime {
    pub(super) fn new(rule: RedLightRule, width: f32, height: f32) -> Self {
        let px = |p: Point| (p.0 * width, p.1 * height);
        let line = rule.stop_line.as_ref().map(|l| (px(l.from), px(l.to), l.anchor));
        RedLightRuntime { rule, line, active: BTreeMap::new() }
    }

    /// Whether the crossing vehicle was first seen on the approach side, far enough from the
    /// line (unknown: it was).
    fn approached(&self, c: &LineCrossing, vehicles: &[&TrackedObject]) -> bool {
        let Some((a, b, anchor)) = self.line else { return true };
        let Some((_, first)) = vehicles.iter().find(|o| o.track_id == c.object.track_id).and_then(|o| o.first_seen) else {
            return true;
        };
        let [x, y, w, h] = c.object.bbox;
        let side = |p: Point| {
            let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt().max(1e-6);
            ((b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0)) / len
        };
        let (before, after) = (side(anchor.of(&first)), side(anchor.of(&BBox::from_xywh(x, y, w, h))));
        before.signum() != after.signum() && before.abs() >= MIN_APPROACH_HEIGHTS * first.height()
    }

    pub(super) fn update(
        &mut self,
        now: Duration,
        signals: &Signals,
        crossings: &[LineCrossing],
        vehicles: &[&TrackedObject],
        ended: &[TrackedObject],
        out: &mut Vec<Emitted>,
    ) {
        let red_for = signals.red_past_grace(&self.rule.signal, now, self.rule.grace);
        for c in crossings {
            let wanted = c.line_id == self.rule.line_id && self.rule.direction.as_ref().is_none_or(|d| *d == c.direction);
            let (Some(red_for), true) = (red_for, wanted) else { continue };
            if !c.object.class.is_vehicle() || self.active.contains_key(&c.object.track_id) || !self.approached(c, vehicles) {
                continue;
            }
            let a = Active::new(IncidentKind::RedLight, None, now, Severity::Critical);
            let m = IncidentMeasures { red_for_ms: Some(red_for.as_millis() as u64), ..Default::default() };
            let [x, y, w, h] = c.object.bbox;
            out.push(emit(now, a.event(IncidentState::Started, Some(c.object.clone()), m), Some(BBox::from_xywh(x, y, w, h))));
            self.active.insert(c.object.track_id, a);
        }
        for o in ended {
            if let Some(a) = self.active.remove(&o.track_id) {
                out.push(emit(now, a.event(IncidentState::Ended, Some(o.to_ref()), a.duration(now)), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{car, incidents, ms};
    use super::super::{IncidentConfig, IncidentEngine};
    use super::*;
    use crate::analytics::signals::SignalPhase;
    use crate::analytics::StreamClock;

    fn crossing(track: u64, direction: &str, t: Duration) -> LineCrossing {
        LineCrossing { line_id: "stop".into(), direction: direction.into(), object: car(track, 500.0, 500.0, (0.0, -50.0), t).to_ref() }
    }

    fn engine() -> IncidentEngine {
        let rule = RedLightRule { line_id: "stop".into(), direction: Some("in".into()), signal: "main".into(), grace: ms(1000), stop_line: None };
        let cfg = IncidentConfig { red_light: vec![rule], update_every: ms(2000), ..Default::default() };
        IncidentEngine::new(&cfg, 1000, 1000, StreamClock { origin: chrono::DateTime::UNIX_EPOCH }).expect("engine")
    }

    #[test]
    fn crossing_on_red_is_a_violation_on_green_and_in_the_grace_time_it_is_not() {
        let mut e = engine();
        e.set_signal("main", SignalPhase::Green, ms(0));
        assert!(incidents(&e.update(ms(1000), &[], &[], &[crossing(1, "in", ms(1000))])).is_empty(), "green");
        e.set_signal("main", SignalPhase::Amber, ms(2000));
        assert!(incidents(&e.update(ms(2500), &[], &[], &[crossing(2, "in", ms(2500))])).is_empty(), "amber");
        e.set_signal("main", SignalPhase::Red, ms(5000));
        assert!(incidents(&e.update(ms(5600), &[], &[], &[crossing(3, "in", ms(5600))])).is_empty(), "within the grace time");
        assert!(incidents(&e.update(ms(7000), &[], &[], &[crossing(4, "out", ms(7000))])).is_empty(), "leaving the junction");
        let got = e.update(ms(8000), &[], &[], &[crossing(5, "in", ms(8000))]);
        let got = incidents(&got);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].kind, got[0].state, got[0].severity), (IncidentKind::RedLight, IncidentState::Started, Severity::Critical));
        assert_eq!(got[0].measures.red_for_ms, Some(3000));
        assert_eq!(got[0].object.as_ref().map(|o| o.track_id), Some(5));
        let end = e.update(ms(9000), &[], &[car(5, 500.0, 400.0, (0.0, -50.0), ms(8900))], &[]);
        assert_eq!(incidents(&end).iter().map(|i| i.state).collect::<Vec<_>>(), vec![IncidentState::Ended]);
        // A signal first seen red: how long it had been red is unknown, so the grace time
        // runs from when it was first seen (a rider already in the junction when the camera
        // started is not a violation; one a second later is).
        let mut e = engine();
        e.set_signal("main", SignalPhase::Red, ms(100));
        assert!(incidents(&e.update(ms(300), &[], &[], &[crossing(6, "in", ms(300))])).is_empty());
        assert_eq!(incidents(&e.update(ms(1200), &[], &[], &[crossing(7, "in", ms(1200))])).len(), 1);
    }

    /// A vehicle first seen on the line (already in the junction when the picture began) is
    /// not a violation; one seen approaching from well before the line is.
    #[test]
    fn a_violation_needs_the_vehicle_seen_approaching() {
        // Horizontal stop line at y = 500 px; "in" is upwards (the test tracks move up).
        let stop_line = Some(StopLine { from: (0.0, 0.5), to: (1.0, 0.5), anchor: Anchor::BottomCenter });
        let rule = RedLightRule { line_id: "stop".into(), direction: Some("in".into()), signal: "main".into(), grace: ms(1000), stop_line };
        let cfg = IncidentConfig { red_light: vec![rule], update_every: ms(2000), ..Default::default() };
        let mut e = IncidentEngine::new(&cfg, 1000, 1000, StreamClock { origin: chrono::DateTime::UNIX_EPOCH }).expect("engine");
        e.set_signal("main", SignalPhase::Red, ms(0));
        let at = |track: u64, first_bottom: f32, t: Duration| {
            // Now: just past the line (a 20 px box centred at y = 475: bottom at 485).
            let mut o = car(track, 500.0, 475.0, (0.0, -50.0), t);
            o.first_seen = Some((ms(0), BBox::from_xywh(480.0, first_bottom - 40.0, 40.0, 40.0)));
            let c = LineCrossing { line_id: "stop".into(), direction: "in".into(), object: o.to_ref() };
            (o, c)
        };
        let (born_on_line, c1) = at(1, 505.0, ms(2000));
        assert!(incidents(&e.update(ms(2000), &[born_on_line], &[], &[c1])).is_empty(), "first seen 5 px before the line");
        let (approaching, c2) = at(2, 560.0, ms(3000));
        assert_eq!(incidents(&e.update(ms(3000), &[approaching], &[], &[c2])).len(), 1, "first seen 60 px before the line");
    }
}
