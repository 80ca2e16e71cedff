//! Lane restriction: a class not allowed in a lane zone (a car in a motorbike lane, a truck
//! in restricted hours), inside it for a minimum time so a box clipping the edge does not count.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use roadsight_events::{IncidentKind, IncidentState, ObjectClass, Severity};

use super::{departed, emit, Active, ZoneContext};
use crate::analytics::{Emitted, LocalHours, TrackedObject};

#[derive(Debug, Clone, PartialEq)]
pub struct LaneRule {
    /// Classes that may not use the lane.
    pub not_allowed: Vec<ObjectClass>,
    /// Only in these local hours (`None`: always).
    pub hours: Option<LocalHours>,
    /// Inside this long → incident.
    pub after: Duration,
}

pub(super) struct LaneRuntime {
    rule: LaneRule,
    since: BTreeMap<u64, Duration>,
    active: BTreeMap<u64, Active>,
}

impl LaneRuntime {
    pub(super) fn new(rule: LaneRule) -> Self {
        LaneRuntime { rule, since: BTreeMap::new(), active: BTreeMap::new() }
    }

    pub(super) fn update(
        &mut self,
        ctx: &ZoneContext<'_>,
        at: DateTime<Utc>,
        inside: &[&TrackedObject],
        vehicles: &[&TrackedObject],
        ended: &[TrackedObject],
        out: &mut Vec<Emitted>,
    ) {
        let now = ctx.now;
        let in_force = self.rule.hours.is_none_or(|h| h.contains(at));
        for o in inside {
            if !in_force || !self.rule.not_allowed.contains(&o.class) {
                self.since.remove(&o.track_id);
                continue;
            }
            let since = *self.since.entry(o.track_id).or_insert(now);
            if now.saturating_sub(since) >= self.rule.after && !self.active.contains_key(&o.track_id) {
                let a = Active::new(IncidentKind::LaneRestriction, ctx.zone(), since, Severity::Warning);
                out.push(emit(now, a.event(IncidentState::Started, Some(o.to_ref()), a.duration(now)), Some(o.bbox)));
                self.active.insert(o.track_id, a);
            }
        }
        let gone: Vec<u64> = self.since.keys().chain(self.active.keys()).copied().filter(|id| departed(*id, inside, vehicles, ended)).collect();
        for id in gone {
            self.since.remove(&id);
            if let Some(a) = self.active.remove(&id) {
                let obj = ended.iter().chain(vehicles.iter().copied()).find(|o| o.track_id == id).map(TrackedObject::to_ref);
                out.push(emit(now, a.event(IncidentState::Ended, obj, a.duration(now)), None));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{car, engine_with, incidents, ms};
    use super::*;
    use chrono::NaiveTime;

    #[test]
    fn a_car_in_the_motorbike_lane_and_trucks_only_in_restricted_hours() {
        let mut e = engine_with(|z| {
            z.lane = Some(LaneRule { not_allowed: vec![ObjectClass::Car], hours: None, after: Duration::from_secs(1) })
        });
        let mut out = Vec::new();
        for f in 0..30u64 {
            let t = ms(f * 100);
            let mut bike = car(2, 100.0 + f as f32 * 5.0, 300.0, (50.0, 0.0), t);
            bike.class = ObjectClass::Motorcycle;
            let objs = if f < 25 { vec![car(1, 100.0 + f as f32 * 5.0, 500.0, (50.0, 0.0), t), bike] } else { vec![bike] };
            let ended = if f == 25 { vec![car(1, 225.0, 500.0, (50.0, 0.0), t)] } else { vec![] };
            out.extend(e.update(t, &objs, &ended, &[]));
        }
        let got = incidents(&out);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].kind, got[0].state), (IncidentKind::LaneRestriction, IncidentState::Started));
        assert_eq!(got[0].object.as_ref().map(|o| o.track_id), Some(1));
        assert_eq!(got[1].state, IncidentState::Ended);
        // Trucks 06:00–21:00 local at UTC+7: the test clock starts at 00:00 UTC = 07:00 local.
        let hours = |from: u32, to: u32| LocalHours {
            from: NaiveTime::from_hms_opt(from, 0, 0).expect("time"),
            to: NaiveTime::from_hms_opt(to, 0, 0).expect("time"),
            utc_offset_secs: 7 * 3600,
        };
        for (h, expected) in [(hours(6, 21), 1), (hours(22, 5), 0)] {
            let mut e = engine_with(|z| {
                z.lane = Some(LaneRule { not_allowed: vec![ObjectClass::Truck], hours: Some(h), after: Duration::from_secs(1) })
            });
            let mut out = Vec::new();
            for f in 0..20u64 {
                let t = ms(f * 100);
                let mut truck = car(3, 100.0 + f as f32 * 5.0, 500.0, (50.0, 0.0), t);
                truck.class = ObjectClass::Truck;
                out.extend(e.update(t, &[truck], &[], &[]));
            }
            assert_eq!(incidents(&out).len(), expected, "{h:?}");
        }
    }
}
