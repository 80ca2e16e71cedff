//! Rider–bike fusion: one two-wheeler, never a bike plus its riders as several objects.
//!
//! Stock COCO detectors box a motorbike's rider as `person` and the bike (when they see it) as
//! `motorcycle`/`bicycle`. Counting both would count one vehicle two or three times, so this
//! module turns them into one object in two steps, both pure and on stream time only:
//!
//! 1. Per frame, [`fuse_riders`]: each two-wheeler box absorbs the person boxes riding it and
//!    becomes one object (the union box, the bike's class, `riders` = how many it absorbed).
//! 2. Per track, [`TwoWheelerRule`]: a `person` track whose anchor is on a carriageway zone and
//!    that moved faster than a threshold over the last ~1 s of stream time is a probable
//!    two-wheeler whose bike was not detected; it is reported as `motorcycle` from then on.
//!    Persons on crossings and pavements are never promoted.
//!
//! # When is a person riding a bike?
//!
//! Seen from the side, the rider's box sits on the bike's upper part with the feet within the
//! bike's height; seen from a pole above the road (the usual traffic camera), the rider's box
//! and the bike's box nearly coincide. Both shapes pass every rule below, and a person standing
//! beside a parked bike fails the first (their box centre is off the bike's), and a person in
//! front of the bike (nearer the camera) fails the second (their feet are below its wheels).
//! All distances are fractions of the bike box, so the rules hold at any distance:
//!
//! - centred: the person's horizontal centre lies within [`CENTRE_OFFSET`] × bike width of the
//!   bike's centre;
//! - feet on the bike: the person's bottom edge lies between [`FEET_FROM`] × bike height below
//!   the bike's top and [`FEET_BELOW`] × bike height below its bottom;
//! - head up: the person's top edge is no lower than [`HEAD_TO`] × bike height below the
//!   bike's top (a rider's head is at or above the handlebars);
//! - overlapping: at least [`MIN_OVERLAP`] of the person's box lies inside the bike's box;
//! - rider-sized: person width ≤ [`MAX_WIDTH_RATIO`] × bike width and height within
//!   [`HEIGHT_RATIO`] × bike height.
//!
//! A person fitting several bikes rides the one it fits best (most overlap, then nearest
//! centre); a bike takes at most [`MAX_RIDERS`] riders (families of four on one scooter do
//! happen in Vietnam).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use roadsight_events::ObjectClass;

use super::line::Point;
use super::zone::point_in_polygon;
use crate::geometry::BBox;

/// Largest horizontal distance between rider and bike centres, in bike widths.
pub const CENTRE_OFFSET: f32 = 0.35;
/// A rider's feet are at least this far (bike heights) below the bike box's top…
pub const FEET_FROM: f32 = 0.4;
/// …and at most this far below its bottom (boxes are loose).
pub const FEET_BELOW: f32 = 0.15;
/// A rider's head is at most this far (bike heights) below the bike box's top.
pub const HEAD_TO: f32 = 0.35;
/// Least fraction of the person's box inside the bike's box.
pub const MIN_OVERLAP: f32 = 0.3;
/// Widest rider, in bike widths.
pub const MAX_WIDTH_RATIO: f32 = 1.6;
/// Rider height range, in bike heights.
pub const HEIGHT_RATIO: (f32, f32) = (0.5, 4.0);
/// Most riders one bike takes.
pub const MAX_RIDERS: u8 = 4;

/// One detection as fusion sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassedBox {
    pub bbox: BBox,
    pub score: f32,
    pub class: ObjectClass,
}

/// One object after fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// Index of the input box this object stands for (the bike for a fused two-wheeler).
    pub index: usize,
    /// The union of the bike's and its riders' boxes.
    pub bbox: BBox,
    /// The highest score among the bike and its riders: a clearly seen rider on a faintly seen
    /// bike is a clearly seen two-wheeler.
    pub score: f32,
    pub class: ObjectClass,
    /// Persons absorbed (0 for anything but a fused two-wheeler).
    pub riders: u8,
}

fn is_two_wheeler(c: ObjectClass) -> bool {
    matches!(c, ObjectClass::Motorcycle | ObjectClass::Bicycle)
}

/// How well `person` fits as a rider of `bike` (higher is better), or `None` if it does not.
pub fn rider_fit(person: &BBox, bike: &BBox) -> Option<f32> {
    let (bw, bh) = (bike.width(), bike.height());
    if bw <= 0.0 || bh <= 0.0 || person.area() <= 0.0 {
        return None;
    }
    let offset = (person.center().0 - bike.center().0).abs() / bw;
    let centred = offset <= CENTRE_OFFSET;
    let feet = person.y2 >= bike.y1 + FEET_FROM * bh && person.y2 <= bike.y2 + FEET_BELOW * bh;
    let head = person.y1 <= bike.y1 + HEAD_TO * bh;
    let overlap = person.intersection(bike) / person.area();
    let sized = person.width() <= MAX_WIDTH_RATIO * bw
        && (HEIGHT_RATIO.0 * bh..=HEIGHT_RATIO.1 * bh).contains(&person.height());
    (centred && feet && head && overlap >= MIN_OVERLAP && sized).then_some(overlap - offset)
}

/// Fuses each two-wheeler with the persons riding it. Every input comes out exactly once:
/// as a fused two-wheeler, absorbed as its rider, or unchanged (`riders` 0). The output keeps
/// the input order of the objects it keeps. Deterministic: ties go to the lower indices.
pub fn fuse_riders(boxes: &[ClassedBox]) -> Vec<Fused> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (b, bike) in boxes.iter().enumerate().filter(|(_, x)| is_two_wheeler(x.class)) {
        for (p, person) in boxes.iter().enumerate().filter(|(_, x)| x.class == ObjectClass::Person) {
            if let Some(fit) = rider_fit(&person.bbox, &bike.bbox) {
                pairs.push((fit, b, p));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut rider_of: HashMap<usize, usize> = HashMap::new();
    let mut riders: HashMap<usize, Vec<usize>> = HashMap::new();
    for (_, b, p) in pairs {
        let taken = riders.get(&b).map_or(0, Vec::len);
        if rider_of.contains_key(&p) || taken >= MAX_RIDERS as usize {
            continue;
        }
        rider_of.insert(p, b);
        riders.entry(b).or_default().push(p);
    }
    boxes
        .iter()
        .enumerate()
        .filter(|(i, _)| !rider_of.contains_key(i))
        .map(|(i, x)| {
            let mine = riders.get(&i).map(Vec::as_slice).unwrap_or_default();
            mine.iter().fold(Fused { index: i, bbox: x.bbox, score: x.score, class: x.class, riders: 0 }, |f, &p| {
                let r = &boxes[p];
                Fused { bbox: union(&f.bbox, &r.bbox), score: f.score.max(r.score), riders: f.riders + 1, ..f }
            })
        })
        .collect()
}

fn union(a: &BBox, b: &BBox) -> BBox {
    BBox::new(a.x1.min(b.x1), a.y1.min(b.y1), a.x2.max(b.x2), a.y2.max(b.y2))
}

/// What a zone is, for the probable-two-wheeler rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneKind {
    /// Road for vehicles: a fast person here is on a two-wheeler.
    Carriageway,
    /// Pedestrian crossing: persons here stay persons, however fast.
    Crossing,
    /// Footpath: persons here stay persons, however fast.
    Pavement,
}

/// Settings of the probable-two-wheeler rule; polygons in normalised `[0, 1]` coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoWheelerConfig {
    /// Zones and their kinds (a point in a crossing or pavement wins over a carriageway it
    /// also lies in: crossings are painted on the carriageway).
    pub zones: Vec<(ZoneKind, Vec<Point>)>,
    /// A person track moving faster than this (pixels per second of stream time, anchor
    /// displacement over `window`) on a carriageway is a two-wheeler.
    pub min_speed_px_s: f32,
    /// How much stream time the speed is measured over; at least half of it must be observed.
    pub window: Duration,
}

impl Default for TwoWheelerConfig {
    fn default() -> Self {
        TwoWheelerConfig { zones: Vec::new(), min_speed_px_s: 60.0, window: Duration::from_secs(1) }
    }
}

/// Per-camera state of the probable-two-wheeler rule: recent anchors of person tracks and the
/// tracks already promoted. A promotion is for the track's life: a rider stopping at a red
/// light, or riding over a crossing, stays a two-wheeler.
#[derive(Debug, Clone)]
pub struct TwoWheelerRule {
    zones: Vec<(ZoneKind, Vec<Point>)>,
    min_speed_px_s: f32,
    window: Duration,
    history: HashMap<u64, VecDeque<(Duration, Point)>>,
    promoted: HashSet<u64>,
}

impl TwoWheelerRule {
    /// Builds the rule for a `width` × `height` frame.
    pub fn new(config: &TwoWheelerConfig, width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        TwoWheelerRule {
            zones: config.zones.iter().map(|(k, poly)| (*k, poly.iter().map(|p| (p.0 * w, p.1 * h)).collect())).collect(),
            min_speed_px_s: config.min_speed_px_s,
            window: config.window,
            history: HashMap::new(),
            promoted: HashSet::new(),
        }
    }

    fn kind_at(&self, p: Point) -> Option<ZoneKind> {
        let mut kinds = self.zones.iter().filter(|(_, poly)| point_in_polygon(p, poly)).map(|(k, _)| *k);
        let first = kinds.next()?;
        // Any walkway under the point wins over a carriageway.
        Some(std::iter::once(first).chain(kinds).find(|k| *k != ZoneKind::Carriageway).unwrap_or(first))
    }

    /// The class to report for track `id`, seen with `class` and `bbox` at stream time `t`.
    /// Only `person` tracks can change (to `motorcycle`).
    pub fn observe(&mut self, id: u64, class: ObjectClass, bbox: &BBox, t: Duration) -> ObjectClass {
        if class != ObjectClass::Person {
            return class;
        }
        if self.promoted.contains(&id) {
            return ObjectClass::Motorcycle;
        }
        let anchor = bbox.bottom_center();
        let history = self.history.entry(id).or_default();
        history.push_back((t, anchor));
        while history.front().is_some_and(|(t0, _)| t.saturating_sub(*t0) > self.window) {
            history.pop_front();
        }
        let speed = match (history.front(), history.back()) {
            (Some(&(t0, a)), Some(&(t1, b))) if (t1 - t0) * 2 >= self.window && t1 > t0 => {
                ((b.0 - a.0).hypot(b.1 - a.1)) / (t1 - t0).as_secs_f32()
            }
            _ => return ObjectClass::Person,
        };
        if self.kind_at(anchor) == Some(ZoneKind::Carriageway) && speed > self.min_speed_px_s {
            self.promoted.insert(id);
            self.history.remove(&id);
            return ObjectClass::Motorcycle;
        }
        ObjectClass::Person
    }

    /// The class to report for track `id` without observing it (e.g. when it ends).
    pub fn reported(&self, id: u64, class: ObjectClass) -> ObjectClass {
        if class == ObjectClass::Person && self.promoted.contains(&id) {
            ObjectClass::Motorcycle
        } else {
            class
        }
    }

    /// Track `id` ended: drop its state.
    pub fn forget(&mut self, id: u64) {
        self.history.remove(&id);
        self.promoted.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(class: ObjectClass, x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> ClassedBox {
        ClassedBox { bbox: BBox::new(x1, y1, x2, y2), score, class }
    }

    /// Side view: a bike 100 × 60 px with its wheels on y = 300.
    fn side_bike() -> ClassedBox {
        bx(ObjectClass::Motorcycle, 100.0, 240.0, 200.0, 300.0, 0.6)
    }

    #[test]
    fn bike_and_one_rider_become_one_motorcycle() {
        // Rider sits on the seat: head well above the bike, feet at the footrests.
        let rider = bx(ObjectClass::Person, 125.0, 170.0, 170.0, 285.0, 0.8);
        let out = fuse_riders(&[side_bike(), rider]);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = out[0];
        assert_eq!((f.class, f.riders, f.index), (ObjectClass::Motorcycle, 1, 0));
        assert_eq!(f.bbox, BBox::new(100.0, 170.0, 200.0, 300.0));
        assert_eq!(f.score, 0.8);
    }

    #[test]
    fn bike_and_two_riders_become_one_motorcycle_with_two_riders() {
        let driver = bx(ObjectClass::Person, 135.0, 172.0, 180.0, 285.0, 0.7);
        let pillion = bx(ObjectClass::Person, 115.0, 178.0, 158.0, 288.0, 0.5);
        let out = fuse_riders(&[driver, side_bike(), pillion]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].class, out[0].riders, out[0].index), (ObjectClass::Motorcycle, 2, 1));
        assert_eq!(out[0].bbox, BBox::new(100.0, 172.0, 200.0, 300.0));
    }

    #[test]
    fn top_down_view_rider_and_bike_boxes_nearly_coincide() {
        // Measured on motorbikes_vn_intersection (pole above the stop line): the person box is
        // the bike box give or take a few pixels.
        let bike = bx(ObjectClass::Motorcycle, 400.0, 300.0, 440.0, 380.0, 0.4);
        let rider = bx(ObjectClass::Person, 401.0, 296.0, 439.0, 378.0, 0.7);
        let out = fuse_riders(&[rider, bike]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].class, out[0].riders, out[0].score), (ObjectClass::Motorcycle, 1, 0.7));
    }

    #[test]
    fn pedestrian_beside_a_parked_bike_stays_separate() {
        // Standing just right of the bike, feet on the same ground line.
        let pedestrian = bx(ObjectClass::Person, 205.0, 180.0, 240.0, 302.0, 0.8);
        let out = fuse_riders(&[side_bike(), pedestrian]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|f| f.riders == 0));
        assert_eq!(out[0].class, ObjectClass::Motorcycle);
        assert_eq!(out[1].class, ObjectClass::Person);
        // Even touching the bike's end, with its centre off the bike's, it is not a rider.
        let close = bx(ObjectClass::Person, 170.0, 180.0, 210.0, 302.0, 0.8);
        assert_eq!(fuse_riders(&[side_bike(), close]).len(), 2);
    }

    #[test]
    fn pedestrian_in_front_of_a_bike_is_not_its_rider() {
        // Nearer the camera: centred on the bike in the image, but feet well below its wheels.
        let pedestrian = bx(ObjectClass::Person, 130.0, 200.0, 170.0, 340.0, 0.8);
        assert_eq!(fuse_riders(&[side_bike(), pedestrian]).len(), 2);
    }

    #[test]
    fn each_person_rides_one_bike_only() {
        // Two bikes side by side; the rider is centred on the left one.
        let left = bx(ObjectClass::Motorcycle, 100.0, 240.0, 200.0, 300.0, 0.6);
        let right = bx(ObjectClass::Bicycle, 160.0, 240.0, 260.0, 300.0, 0.6);
        let rider = bx(ObjectClass::Person, 128.0, 170.0, 172.0, 285.0, 0.8);
        let out = fuse_riders(&[left, right, rider]);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[0].riders, out[1].riders), (1, 0));
        assert_eq!(out[1].class, ObjectClass::Bicycle);
    }

    fn crossing_scene() -> TwoWheelerConfig {
        // 1000 × 1000 frame: carriageway everywhere below y = 0.2, a zebra crossing band
        // y ∈ [0.5, 0.6] painted on it, a pavement above y = 0.2.
        TwoWheelerConfig {
            zones: vec![
                (ZoneKind::Carriageway, vec![(0.0, 0.2), (1.0, 0.2), (1.0, 1.0), (0.0, 1.0)]),
                (ZoneKind::Crossing, vec![(0.0, 0.5), (1.0, 0.5), (1.0, 0.6), (0.0, 0.6)]),
                (ZoneKind::Pavement, vec![(0.0, 0.0), (1.0, 0.0), (1.0, 0.2), (0.0, 0.2)]),
            ],
            min_speed_px_s: 100.0,
            window: Duration::from_secs(1),
        }
    }

    /// Feeds a person moving along x at `speed` px/s with its feet at `y`, 10 frames/s for 2 s;
    /// returns the class reported at each frame.
    fn walk(rule: &mut TwoWheelerRule, id: u64, y: f32, speed: f32) -> Vec<ObjectClass> {
        (0..20u64)
            .map(|f| {
                let t = Duration::from_millis(f * 100);
                let x = 100.0 + speed * t.as_secs_f32();
                rule.observe(id, ObjectClass::Person, &BBox::new(x - 15.0, y - 80.0, x + 15.0, y), t)
            })
            .collect()
    }

    #[test]
    fn person_at_vehicle_speed_on_the_carriageway_is_a_motorcycle() {
        let mut rule = TwoWheelerRule::new(&crossing_scene(), 1000, 1000);
        let classes = walk(&mut rule, 1, 800.0, 300.0);
        // Undecided (person) until half a window is observed, then a motorcycle for good.
        assert_eq!(classes[0], ObjectClass::Person);
        let first = classes.iter().position(|c| *c == ObjectClass::Motorcycle).expect("promoted");
        assert!(first <= 6, "promoted only at frame {first}");
        assert!(classes[first..].iter().all(|c| *c == ObjectClass::Motorcycle));
        // Stopping at the light does not turn it back into a person.
        let t = Duration::from_secs(5);
        assert_eq!(rule.observe(1, ObjectClass::Person, &BBox::new(500.0, 720.0, 530.0, 800.0), t), ObjectClass::Motorcycle);
        rule.forget(1);
        assert_eq!(rule.observe(1, ObjectClass::Person, &BBox::new(500.0, 720.0, 530.0, 800.0), t), ObjectClass::Person);
    }

    #[test]
    fn slow_person_on_the_carriageway_stays_a_person() {
        let mut rule = TwoWheelerRule::new(&crossing_scene(), 1000, 1000);
        assert!(walk(&mut rule, 1, 800.0, 40.0).iter().all(|c| *c == ObjectClass::Person));
    }

    #[test]
    fn person_on_a_crossing_stays_a_person_slow_or_fast() {
        let mut rule = TwoWheelerRule::new(&crossing_scene(), 1000, 1000);
        assert!(walk(&mut rule, 1, 550.0, 40.0).iter().all(|c| *c == ObjectClass::Person));
        // Running across the zebra at vehicle speed: still a pedestrian.
        assert!(walk(&mut rule, 2, 550.0, 300.0).iter().all(|c| *c == ObjectClass::Person));
    }

    #[test]
    fn person_on_the_pavement_stays_a_person() {
        let mut rule = TwoWheelerRule::new(&crossing_scene(), 1000, 1000);
        assert!(walk(&mut rule, 1, 150.0, 300.0).iter().all(|c| *c == ObjectClass::Person));
    }

    #[test]
    fn other_classes_pass_through() {
        let mut rule = TwoWheelerRule::new(&crossing_scene(), 1000, 1000);
        let b = BBox::new(0.0, 700.0, 50.0, 800.0);
        assert_eq!(rule.observe(1, ObjectClass::Car, &b, Duration::ZERO), ObjectClass::Car);
        assert_eq!(rule.observe(2, ObjectClass::Bicycle, &b, Duration::ZERO), ObjectClass::Bicycle);
    }
}
