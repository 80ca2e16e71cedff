//! Flood control: at most N incident starts per kind in any minute of stream time, per
//! camera. A start beyond the limit is folded into the camera's most recent open incident of
//! the same kind (else the most recent one of the last minute, though it has ended) — an `updated` event of that incident naming the new object in `related` —
//! and its own later updates and end are absorbed. Nothing is dropped silently: each fold is
//! counted ([`FloodControl::folded`], exported as a metric).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use roadsight_events::{EventBody, IncidentEvent, IncidentKind, IncidentState, ObjectRef};
use uuid::Uuid;

use crate::analytics::Emitted;

/// Starts allowed per kind per minute (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimit {
    pub max_starts_per_minute: u32,
}

impl Default for FloodLimit {
    fn default() -> Self {
        FloodLimit { max_starts_per_minute: 10 }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
/// Folded objects one incident keeps naming, at most.
const MAX_FOLDED: usize = 32;

/// An incident of the last minute (open, or ended: a red-light violation ends within
/// seconds, and the starts of a burst still fold into it).
struct Open {
    kind: IncidentKind,
    started: Duration,
    ended: bool,
    /// The incident's last event, to fold starts into.
    last: IncidentEvent,
    folded: Vec<ObjectRef>,
}

pub(super) struct FloodControl {
    limit: FloodLimit,
    starts: BTreeMap<IncidentKind, VecDeque<Duration>>,
    open: BTreeMap<Uuid, Open>,
    /// Folded incident → the incident it was folded into.
    folded_into: BTreeMap<Uuid, Uuid>,
    folded: BTreeMap<IncidentKind, u64>,
}

impl FloodControl {
    pub(super) fn new(limit: FloodLimit) -> Self {
        FloodControl { limit, starts: BTreeMap::new(), open: BTreeMap::new(), folded_into: BTreeMap::new(), folded: BTreeMap::new() }
    }

    pub(super) fn folded(&self) -> &BTreeMap<IncidentKind, u64> {
        &self.folded
    }

    pub(super) fn filter(&mut self, now: Duration, events: Vec<Emitted>) -> Vec<Emitted> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            match e.body {
                EventBody::Incident(ev) => {
                    if let Some(kept) = self.pass(now, ev) {
                        let snapshot = if kept.state == IncidentState::Started { e.snapshot } else { None };
                        out.push(Emitted { pts: e.pts, body: EventBody::Incident(kept), snapshot });
                    }
                }
                body => out.push(Emitted { body, ..e }),
            }
        }
        out
    }

    /// What becomes of one incident event: itself, an update of the incident it is folded
    /// into, or nothing (a folded incident's own update or end).
    fn pass(&mut self, now: Duration, mut ev: IncidentEvent) -> Option<IncidentEvent> {
        if self.folded_into.contains_key(&ev.incident_id) {
            if ev.state == IncidentState::Ended {
                self.folded_into.remove(&ev.incident_id);
            }
            return None;
        }
        match ev.state {
            IncidentState::Started => {
                self.open.retain(|_, o| !o.ended || now.saturating_sub(o.started) < MINUTE);
                let starts = self.starts.entry(ev.kind).or_default();
                while starts.front().is_some_and(|t| now.saturating_sub(*t) >= MINUTE) {
                    starts.pop_front();
                }
                let limit = self.limit.max_starts_per_minute as usize;
                if limit == 0 || starts.len() < limit {
                    starts.push_back(now);
                    self.open.insert(ev.incident_id, Open { kind: ev.kind, started: now, ended: false, last: ev.clone(), folded: Vec::new() });
                    return Some(ev);
                }
                // The newest open incident of the kind, else the newest of the last minute.
                let host = self.open.iter_mut().filter(|(_, o)| o.kind == ev.kind).max_by_key(|(_, o)| (!o.ended, o.started));
                let Some((host_id, host)) = host else {
                    // Nothing to fold into: it stands as its own incident.
                    self.open.insert(ev.incident_id, Open { kind: ev.kind, started: now, ended: false, last: ev.clone(), folded: Vec::new() });
                    return Some(ev);
                };
                self.folded_into.insert(ev.incident_id, *host_id);
                *self.folded.entry(ev.kind).or_default() += 1;
                if let Some(o) = ev.object.take() {
                    if host.folded.len() < MAX_FOLDED {
                        host.folded.push(o);
                    }
                }
                let mut update = host.last.clone();
                update.state = IncidentState::Updated;
                update.snapshot = None;
                with_folded(&mut update, &host.folded);
                Some(update)
            }
            IncidentState::Updated | IncidentState::Ended => {
                if let Some(o) = self.open.get_mut(&ev.incident_id) {
                    with_folded(&mut ev, &o.folded);
                    o.ended |= ev.state == IncidentState::Ended;
                    o.last = ev.clone();
                }
                Some(ev)
            }
        }
    }
}

/// An incident's event names the objects folded into it besides its rule's own.
fn with_folded(ev: &mut IncidentEvent, folded: &[ObjectRef]) {
    for o in folded {
        if ev.related.len() >= roadsight_events::decode::MAX_RELATED {
            break;
        }
        if !ev.related.iter().any(|r| r.track_id == o.track_id) {
            ev.related.push(o.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roadsight_events::{IncidentMeasures, ObjectClass, Severity};

    fn start(kind: IncidentKind, track: u64) -> Emitted {
        let object = ObjectRef { track_id: track, class: ObjectClass::Car, confidence: 0.9, bbox: [0.0, 0.0, 10.0, 10.0], riders: None };
        let ev = IncidentEvent {
            incident_id: Uuid::now_v7(),
            kind,
            state: IncidentState::Started,
            severity: Severity::Warning,
            zone_id: None,
            object: Some(object),
            measures: IncidentMeasures::default(),
            related: Vec::new(),
            snapshot: None,
            clip: None,
        };
        Emitted { pts: Duration::ZERO, body: EventBody::Incident(ev), snapshot: Some(crate::geometry::BBox::new(0.0, 0.0, 10.0, 10.0)) }
    }

    fn incident(e: &Emitted) -> &IncidentEvent {
        match &e.body {
            EventBody::Incident(i) => i,
            _ => panic!("not an incident"),
        }
    }

    #[test]
    fn a_burst_beyond_the_limit_is_folded_into_an_update_and_counted() {
        let mut f = FloodControl::new(FloodLimit { max_starts_per_minute: 3 });
        let burst: Vec<Emitted> = (0..8).map(|i| start(IncidentKind::StoppedVehicle, i)).collect();
        let ids: Vec<Uuid> = burst.iter().map(|e| incident(e).incident_id).collect();
        let out = f.filter(Duration::from_secs(1), burst);
        assert_eq!(out.len(), 8, "every start is reported, as a start or a fold");
        let starts: Vec<&IncidentEvent> = out.iter().map(incident).filter(|i| i.state == IncidentState::Started).collect();
        assert_eq!(starts.len(), 3);
        let last = incident(out.last().expect("events"));
        assert_eq!(last.state, IncidentState::Updated);
        assert_eq!(last.incident_id, ids[2], "folded into the newest open incident");
        assert_eq!(last.related.iter().map(|o| o.track_id).collect::<Vec<_>>(), vec![3, 4, 5, 6, 7]);
        assert!(out.iter().skip(3).all(|e| e.snapshot.is_none()));
        assert_eq!(f.folded().get(&IncidentKind::StoppedVehicle), Some(&5));
        // Another kind has its own budget; a folded incident's own end is absorbed.
        let other = f.filter(Duration::from_secs(2), vec![start(IncidentKind::WrongWay, 50)]);
        assert_eq!(incident(&other[0]).state, IncidentState::Started);
        let mut end = start(IncidentKind::StoppedVehicle, 4);
        if let EventBody::Incident(i) = &mut end.body {
            i.incident_id = ids[4];
            i.state = IncidentState::Ended;
        }
        assert!(f.filter(Duration::from_secs(3), vec![end]).is_empty());
        // The three started incidents end (short ones, like red-light violations); starts
        // within the minute still fold into the newest of them.
        for (n, id) in ids[..3].iter().enumerate() {
            let mut end = start(IncidentKind::StoppedVehicle, n as u64);
            if let EventBody::Incident(i) = &mut end.body {
                i.incident_id = *id;
                i.state = IncidentState::Ended;
            }
            assert_eq!(f.filter(Duration::from_secs(4), vec![end]).len(), 1, "a started incident's own end passes");
        }
        let after = f.filter(Duration::from_secs(5), vec![start(IncidentKind::StoppedVehicle, 8)]);
        assert_eq!((incident(&after[0]).state, incident(&after[0]).incident_id), (IncidentState::Updated, ids[2]));
        assert_eq!(f.folded().get(&IncidentKind::StoppedVehicle), Some(&6));
        // A minute later the budget is back.
        let later = f.filter(Duration::from_secs(62), vec![start(IncidentKind::StoppedVehicle, 9)]);
        assert_eq!(incident(&later[0]).state, IncidentState::Started);
    }
}
