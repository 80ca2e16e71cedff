//! `[cameras.zones]` incident rules, `[[cameras.signals]]`, `[[cameras.red_light]]`,
//! `[cameras.speeding]` and the flood limit → the pipeline's incident configuration. Every
//! error is reported, with its key path.

use std::collections::HashSet;
use std::time::Duration;

use roadsight_events::IncidentKind;
use roadsight_pipeline::analytics::incidents::{
    CongestionRule, FloodLimit, LaneRule, RedLightRule, SpeedingRule, StopLine, StoppedRule, WrongWayRule, ZoneRules,
};
use roadsight_pipeline::analytics::{IncidentConfig, LineSpec};
use roadsight_pipeline::signal_lamp::SignalSpec;

use super::{check_id, check_range, classes, local_hours, points, positive_secs, raw, Errors};

/// A stopped vehicle alone (in a queue, at a red light) becomes an incident after this long.
const STOPPED_ALONE_AFTER: Duration = Duration::from_secs(120);
/// In a no-stopping zone: any stop this long.
const NO_STOPPING_AFTER: Duration = Duration::from_secs(30);

/// The camera's incident rules; `zone_rules` are the zones' own, checked by [`zone_rules`].
pub(super) fn incident_config(
    errs: &mut Errors,
    key: &str,
    cam: &raw::RawCameraIncidents<'_>,
    zone_rules: Vec<ZoneRules>,
    lines: &[LineSpec],
    signals: &CameraSignals,
) -> IncidentConfig {
    IncidentConfig {
        zones: zone_rules,
        speeding: cam.speeding.and_then(|s| speeding(errs, &format!("{key}.speeding"), s)),
        red_light: cam
            .red_light
            .iter()
            .enumerate()
            .filter_map(|(i, r)| red_light(errs, &format!("{key}.red_light[{i}]"), r, lines, signals))
            .collect(),
        update_every: positive_secs(errs, &format!("{key}.incident_update_secs"), cam.incident_update_secs)
            .unwrap_or(Duration::from_secs(10)),
        flood: FloodLimit {
            max_starts_per_minute: cam.max_incident_starts_per_minute.unwrap_or(FloodLimit::default().max_starts_per_minute),
        },
    }
}

/// A camera's traffic signals: lamps read from its pixels, and signals whose phase the
/// controller publishes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraSignals {
    pub lamps: Vec<SignalSpec>,
    pub controller: Vec<String>,
}

impl CameraSignals {
    fn has(&self, id: &str) -> bool {
        self.lamps.iter().any(|s| s.id == id) || self.controller.iter().any(|c| c == id)
    }
}

/// `[[cameras.signals]]`: ids unique; each either a region inside the frame or `controller`.
pub(super) fn signals(errs: &mut Errors, key: &str, raw: &[raw::RawSignal]) -> CameraSignals {
    let mut ids = HashSet::new();
    let mut out = CameraSignals::default();
    for (i, s) in raw.iter().enumerate() {
        let sk = format!("{key}.signals[{i}]");
        check_id(errs, &format!("{sk}.id"), &s.id);
        if !ids.insert(s.id.clone()) {
            errs.add(format!("{sk}.id"), format!("duplicate signal id '{}'", s.id));
        }
        match (&s.region, s.controller.unwrap_or(false)) {
            (Some(_), true) | (None, false) => {
                errs.add(&sk, "give either `region` (read from the image) or `controller = true` (phase over MQTT)")
            }
            (None, true) => out.controller.push(s.id.clone()),
            (Some(r), false) => {
                if r.len() != 4 || r.iter().any(|v| !(0.0..=1.0).contains(v)) || r[0] >= r[2] || r[1] >= r[3] {
                    errs.add(format!("{sk}.region"), "expected [x0, y0, x1, y1] in [0, 1] with x0 < x1 and y0 < y1");
                    continue;
                }
                out.lamps.push(SignalSpec { id: s.id.clone(), region: [r[0] as f32, r[1] as f32, r[2] as f32, r[3] as f32] });
            }
        }
    }
    out
}

fn red_light(errs: &mut Errors, rk: &str, r: &raw::RawRedLight, lines: &[LineSpec], signals: &CameraSignals) -> Option<RedLightRule> {
    let line = lines.iter().find(|l| l.id == r.line);
    match (line, &r.direction) {
        (None, _) => errs.add(format!("{rk}.line"), format!("no line has id '{}'", r.line)),
        (Some(l), Some(d)) if *d != l.forward && *d != l.backward => errs.add(
            format!("{rk}.direction"),
            format!("line '{}' crosses '{}' or '{}', not '{d}'", l.id, l.forward, l.backward),
        ),
        _ => {}
    }
    if !signals.has(&r.signal) {
        errs.add(format!("{rk}.signal"), format!("no [[cameras.signals]] entry has id '{}'", r.signal));
    }
    let grace = match r.grace_secs {
        Some(g) if !(0.0..=10.0).contains(&g) => {
            errs.add(format!("{rk}.grace_secs"), format!("{g} is outside 0..=10"));
            None
        }
        Some(g) => Some(Duration::from_secs_f64(g)),
        None => Some(Duration::from_secs(1)),
    };
    let stop_line = line.map(|l| StopLine { from: l.from, to: l.to, anchor: l.anchor });
    Some(RedLightRule { line_id: r.line.clone(), direction: r.direction.clone(), signal: r.signal.clone(), grace: grace?, stop_line })
}

/// One zone's rules (`None`: it has none).
pub(super) fn zone_rules(
    errs: &mut Errors,
    zk: &str,
    z: &raw::RawZone,
    polygon: &[(f32, f32)],
    signals: &CameraSignals,
) -> Option<ZoneRules> {
    if let Some(s) = &z.signal {
        if !signals.has(s) {
            errs.add(format!("{zk}.signal"), format!("no [[cameras.signals]] entry has id '{s}'"));
        }
    }
    let no_stopping = z.no_stopping.unwrap_or(false);
    if z.stopped_vehicle.is_none() && z.wrong_way.is_none() && z.congestion.is_none() && z.lane.is_none() && !no_stopping {
        if z.signal.is_some() {
            errs.add(format!("{zk}.signal"), "only used by the zone's stopped_vehicle rule, which it does not have");
        }
        return None;
    }
    let direction = z.direction.as_ref().and_then(|d| {
        if d.len() != 2 || (d[0] == 0.0 && d[1] == 0.0) {
            errs.add(format!("{zk}.direction"), "a direction is [dx, dy], not zero");
            None
        } else {
            Some((d[0] as f32, d[1] as f32))
        }
    });
    if z.wrong_way.is_some() && direction.is_none() {
        errs.add(format!("{zk}.wrong_way"), "needs the zone's `direction` of travel");
    }
    let stopped_vehicle = stopped(errs, zk, z.stopped_vehicle.as_ref(), no_stopping);
    let wrong_way = z.wrong_way.as_ref().map(|w| WrongWayRule {
        min_distance_px: check_range(errs, &format!("{zk}.wrong_way.min_distance_px"), w.min_distance_px, 1.0, 10000.0).unwrap_or(40.0),
    });
    let congestion = z.congestion.as_ref().map(|c| {
        if c.congested_occupancy < c.heavy_occupancy {
            errs.add(format!("{zk}.congestion"), "congested_occupancy must be ≥ heavy_occupancy");
        }
        CongestionRule {
            window: positive_secs(errs, &format!("{zk}.congestion.window_secs"), c.window_secs).unwrap_or(Duration::from_secs(30)),
            heavy_occupancy: c.heavy_occupancy,
            congested_occupancy: c.congested_occupancy,
            slow_speed_px_s: c.slow_speed_px_s.unwrap_or(15.0),
        }
    });
    let lane = z.lane.as_ref().and_then(|l| lane(errs, &format!("{zk}.lane"), l));
    Some(ZoneRules {
        zone_id: z.id.clone(),
        polygon: polygon.to_vec(),
        direction,
        signal: z.signal.clone(),
        stopped_vehicle,
        wrong_way,
        congestion,
        lane,
    })
}

fn stopped(errs: &mut Errors, zk: &str, s: Option<&raw::RawStopped>, no_stopping: bool) -> Option<StoppedRule> {
    let sk = format!("{zk}.stopped_vehicle");
    let kind = if no_stopping { IncidentKind::NoStopping } else { IncidentKind::StoppedVehicle };
    let default_alone = if no_stopping { NO_STOPPING_AFTER } else { STOPPED_ALONE_AFTER };
    let Some(s) = s else {
        // A no-stopping zone without its own rule: any stop of 30 s, or 10 s while passed by.
        return no_stopping.then_some(StoppedRule {
            kind,
            after: Duration::from_secs(10),
            max_speed_px_s: 5.0,
            passed_by: 2,
            alone_after: Some(default_alone),
        });
    };
    let after = positive_secs(errs, &format!("{sk}.after_secs"), Some(s.after_secs));
    let alone_after = positive_secs(errs, &format!("{sk}.alone_after_secs"), s.alone_after_secs).unwrap_or(default_alone);
    if after.is_some_and(|a| a > alone_after) {
        errs.add(format!("{sk}.alone_after_secs"), "must be at least after_secs");
    }
    Some(StoppedRule {
        kind,
        after: after?,
        max_speed_px_s: check_range(errs, &format!("{sk}.max_speed_px_s"), s.max_speed_px_s, 0.0, 1000.0).unwrap_or(5.0),
        passed_by: check_range(errs, &format!("{sk}.passed_by"), s.passed_by, 0, 100).unwrap_or(2),
        alone_after: Some(alone_after),
    })
}

fn lane(errs: &mut Errors, lk: &str, l: &raw::RawLane) -> Option<LaneRule> {
    let not_allowed = classes(errs, &format!("{lk}.not_allowed"), Some(l.not_allowed.clone()));
    if not_allowed.is_empty() {
        errs.add(format!("{lk}.not_allowed"), "name at least one class");
    }
    let hours = match &l.hours {
        Some(h) => Some(local_hours(errs, &format!("{lk}.hours"), &h.from, &h.to, h.utc_offset_hours)?),
        None => None,
    };
    Some(LaneRule {
        not_allowed,
        hours,
        after: positive_secs(errs, &format!("{lk}.after_secs"), l.after_secs).unwrap_or(Duration::from_secs(1)),
    })
}

fn speeding(errs: &mut Errors, key: &str, s: &raw::RawSpeeding) -> Option<SpeedingRule> {
    let img = points(errs, &format!("{key}.image_points"), &s.image_points);
    let ground: Vec<(f64, f64)> = s.ground_points_m.iter().filter(|p| p.len() == 2).map(|p| (p[0], p[1])).collect();
    if img.len() != 4 || ground.len() != 4 || s.ground_points_m.len() != 4 {
        errs.add(key, "image_points and ground_points_m need exactly 4 [x, y] points each");
        return None;
    }
    let img4 = [img[0], img[1], img[2], img[3]];
    let ground4 = [ground[0], ground[1], ground[2], ground[3]];
    let as_f64 = img4.map(|p| (p.0 as f64, p.1 as f64));
    if roadsight_pipeline::analytics::homography::Homography::from_points(as_f64, ground4).is_none() {
        // Either set of points can be the degenerate one: name the table that holds both.
        errs.add(key, "degenerate calibration: three of image_points or of ground_points_m on a line?");
        return None;
    }
    Some(SpeedingRule {
        image_points: img4,
        ground_points_m: ground4,
        limit_kmh: check_range(errs, &format!("{key}.limit_kmh"), Some(s.limit_kmh), 1.0, 300.0)?,
        min_duration: positive_secs(errs, &format!("{key}.min_secs"), s.min_secs).unwrap_or(Duration::from_secs(1)),
    })
}
