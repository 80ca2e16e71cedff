//! Speeding: ground speed on a calibrated plane (four image points ↔ metres) over the limit
//! for a minimum time.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use roadsight_events::{IncidentKind, IncidentMeasures, IncidentState, Severity};

use super::{emit, Active};
use crate::analytics::homography::Homography;
use crate::analytics::{Anchor, Emitted, Point, TrackedObject};

/// Per-camera speed limit with a calibration: four image points (normalised) ↔ ground metres.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedingRule {
    pub image_points: [Point; 4],
    pub ground_points_m: [(f64, f64); 4],
    pub limit_kmh: f32,
    /// Over the limit for this long (stream time) → incident.
    pub min_duration: Duration,
}

pub(super) struct SpeedRuntime {
    rule: SpeedingRule,
    homography: Homography,
    history: BTreeMap<u64, VecDeque<(Duration, (f64, f64))>>,
    over_since: BTreeMap<u64, Duration>,
    active: BTreeMap<u64, (Active, f32)>,
}

/// Speed is measured over this much stream time.
const WINDOW: Duration = Duration::from_millis(1000);

impl SpeedRuntime {
    pub(super) fn new(rule: &SpeedingRule, w: f32, h: f32) -> Result<Self, String> {
        let img = rule.image_points.map(|p| ((p.0 * w) as f64, (p.1 * h) as f64));
        let homography = Homography::from_points(img, rule.ground_points_m)
            .ok_or("speeding calibration: the four image points are degenerate (three on a line?)")?;
        Ok(SpeedRuntime { rule: rule.clone(), homography, history: BTreeMap::new(), over_since: BTreeMap::new(), active: BTreeMap::new() })
    }

    /// Ground speed of a track over the last [`WINDOW`], in km/h, once 0.3 s are known.
    fn kmh(&mut self, now: Duration, o: &TrackedObject) -> Option<f32> {
        let (x, y) = Anchor::BottomCenter.of(&o.bbox);
        let g = self.homography.apply((x as f64, y as f64));
        let h = self.history.entry(o.track_id).or_default();
        h.push_back((now, g));
        while h.front().is_some_and(|s| now.saturating_sub(s.0) > WINDOW) {
            h.pop_front();
        }
        let (first, last) = (h.front()?, h.back()?);
        let dt = last.0.saturating_sub(first.0).as_secs_f64();
        if dt < 0.3 {
            return None;
        }
        let d = ((last.1 .0 - first.1 .0).powi(2) + (last.1 .1 - first.1 .1).powi(2)).sqrt();
        Some((d / dt * 3.6) as f32)
    }

    pub(super) fn update(&mut self, now: Duration, vehicles: &[&TrackedObject], ended: &[TrackedObject], out: &mut Vec<Emitted>) {
        let limit = self.rule.limit_kmh;
        for o in vehicles {
            let Some(kmh) = self.kmh(now, o) else { continue };
            if kmh <= limit {
                self.over_since.remove(&o.track_id);
                continue;
            }
            let since = *self.over_since.entry(o.track_id).or_insert(now);
            if let Some((_, max)) = self.active.get_mut(&o.track_id) {
                *max = max.max(kmh);
            } else if now.saturating_sub(since) >= self.rule.min_duration {
                let severity = if kmh > limit * 1.5 { Severity::Critical } else { Severity::Warning };
                let a = Active::new(IncidentKind::Speeding, None, now, severity);
                let m = IncidentMeasures { speed_kmh: Some(kmh), limit_kmh: Some(limit), ..Default::default() };
                out.push(emit(now, a.event(IncidentState::Started, Some(o.to_ref()), m), Some(o.bbox)));
                self.active.insert(o.track_id, (a, kmh));
            }
        }
        for o in ended {
            self.history.remove(&o.track_id);
            self.over_since.remove(&o.track_id);
            if let Some((a, max)) = self.active.remove(&o.track_id) {
                let m = IncidentMeasures { speed_kmh: Some(max), limit_kmh: Some(limit), ..Default::default() };
                out.push(emit(now, a.event(IncidentState::Ended, Some(o.to_ref()), m), None));
            }
        }
    }
}
