//! Wrong way: a vehicle that travels against its zone's direction for some distance.

use std::collections::BTreeMap;

use roadsight_events::{IncidentKind, IncidentMeasures, IncidentState, Severity};

use super::{departed, emit, Active, ZoneContext};
use crate::analytics::{Emitted, Point, TrackedObject};

#[derive(Debug, Clone, PartialEq)]
pub struct WrongWayRule {
    /// Distance travelled against the zone's direction before it counts.
    pub min_distance_px: f32,
}

pub(super) struct WrongWayRuntime {
    rule: WrongWayRule,
    /// Where each track was first seen in the zone.
    entry: BTreeMap<u64, Point>,
    active: BTreeMap<u64, Active>,
}

impl WrongWayRuntime {
    pub(super) fn new(rule: WrongWayRule) -> Self {
        WrongWayRuntime { rule, entry: BTreeMap::new(), active: BTreeMap::new() }
    }

    pub(super) fn update(
        &mut self,
        ctx: &ZoneContext<'_>,
        inside: &[&TrackedObject],
        vehicles: &[&TrackedObject],
        ended: &[TrackedObject],
        out: &mut Vec<Emitted>,
    ) {
        let Some(dir) = ctx.direction else { return };
        for o in inside {
            let p = o.bbox.center();
            let start = *self.entry.entry(o.track_id).or_insert(p);
            let along = (p.0 - start.0) * dir.0 + (p.1 - start.1) * dir.1;
            if along < -self.rule.min_distance_px && !self.active.contains_key(&o.track_id) {
                let a = Active::new(IncidentKind::WrongWay, ctx.zone(), ctx.now, Severity::Critical);
                let m = IncidentMeasures { distance_px: Some(-along), ..Default::default() };
                out.push(emit(ctx.now, a.event(IncidentState::Started, Some(o.to_ref()), m), Some(o.bbox)));
                self.active.insert(o.track_id, a);
            }
        }
        // A track that left the zone (seen outside it) or ended closes its incident; one
        // merely not detected in this frame keeps it.
        let gone = |id: &u64| departed(*id, inside, vehicles, ended);
        let leaving: Vec<u64> = self.active.keys().copied().filter(gone).collect();
        for id in leaving {
            if let Some(a) = self.active.remove(&id) {
                let obj = ended.iter().find(|o| o.track_id == id).map(TrackedObject::to_ref);
                out.push(emit(ctx.now, a.event(IncidentState::Ended, obj, a.duration(ctx.now)), None));
            }
        }
        self.entry.retain(|id, _| !gone(id));
    }
}
