//! Congestion: mean occupancy and speed in a zone over a window, as `heavy` (warning) and
//! `congested` (critical) levels of one incident.

use std::collections::VecDeque;
use std::time::Duration;

use roadsight_events::{IncidentKind, IncidentMeasures, IncidentState, Severity};

use super::{emit, speed, Active, ZoneContext};
use crate::analytics::{Emitted, TrackedObject};

#[derive(Debug, Clone, PartialEq)]
pub struct CongestionRule {
    pub window: Duration,
    /// Mean vehicles in the zone over the window for `heavy` and `congested`.
    pub heavy_occupancy: f32,
    pub congested_occupancy: f32,
    /// `congested` also needs the mean speed below this (px/s).
    pub slow_speed_px_s: f32,
}

pub(super) struct CongestionRuntime {
    rule: CongestionRule,
    /// (time, vehicles inside, their mean speed) over the window.
    samples: VecDeque<(Duration, f32, f32)>,
    active: Option<(Active, Severity)>,
}

impl CongestionRuntime {
    pub(super) fn new(rule: CongestionRule) -> Self {
        CongestionRuntime { rule, samples: VecDeque::new(), active: None }
    }

    fn level(&self, occupancy: f32, speed_avg: f32) -> Option<Severity> {
        if occupancy >= self.rule.congested_occupancy && speed_avg < self.rule.slow_speed_px_s {
            Some(Severity::Critical)
        } else if occupancy >= self.rule.heavy_occupancy {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    pub(super) fn update(&mut self, ctx: &ZoneContext<'_>, inside: &[&TrackedObject], out: &mut Vec<Emitted>) {
        let now = ctx.now;
        let mean_speed = if inside.is_empty() { 0.0 } else { inside.iter().map(|o| speed(o)).sum::<f32>() / inside.len() as f32 };
        self.samples.push_back((now, inside.len() as f32, mean_speed));
        while self.samples.front().is_some_and(|s| now.saturating_sub(s.0) > self.rule.window) {
            self.samples.pop_front();
        }
        let n = self.samples.len() as f32;
        let occupancy = self.samples.iter().map(|s| s.1).sum::<f32>() / n;
        let speed_avg = self.samples.iter().map(|s| s.2).sum::<f32>() / n;
        let full_window = self.samples.front().is_some_and(|s| now.saturating_sub(s.0) >= self.rule.window / 2);
        let level = if full_window { self.level(occupancy, speed_avg) } else { None };
        let measures = IncidentMeasures {
            occupancy: Some(occupancy),
            duration_ms: self.active.as_ref().map(|(a, _)| now.saturating_sub(a.started).as_millis() as u64),
            ..Default::default()
        };
        match (&mut self.active, level) {
            (None, Some(sev)) => {
                let a = Active::new(IncidentKind::Congestion, ctx.zone(), now, sev);
                let focus = inside.first().map(|o| o.bbox);
                out.push(emit(now, a.event(IncidentState::Started, None, measures), focus));
                self.active = Some((a, sev));
            }
            (Some((a, sev)), Some(new)) if *sev != new || now.saturating_sub(a.last_update) >= ctx.every => {
                *sev = new;
                a.severity = new;
                a.last_update = now;
                out.push(emit(now, a.event(IncidentState::Updated, None, measures), None));
            }
            (Some(_), None) if full_window => {
                if let Some((a, _)) = self.active.take() {
                    out.push(emit(now, a.event(IncidentState::Ended, None, measures), None));
                }
            }
            _ => {}
        }
    }
}
