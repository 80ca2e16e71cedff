//! Polygonal zones: enter, exit, occupancy and dwell time on stream time.
//!
//! A track enters when its anchor has been inside for `confirm_updates` consecutive
//! observations, and exits after as many consecutive observations outside, or when the track
//! ends — so a box flickering on the border does not produce enter/exit storms.

use std::collections::HashMap;
use std::time::Duration;

use super::line::Point;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneChange {
    Enter,
    /// With the time spent inside.
    Exit { dwell: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Membership {
    inside: bool,
    streak: u32,
    entered_at: Duration,
}

#[derive(Debug, Clone)]
pub struct Zone {
    polygon: Vec<Point>,
    confirm_updates: u32,
    members: HashMap<u64, Membership>,
}

pub use crate::geometry::point_in_polygon;

impl Zone {
    pub fn new(polygon: Vec<Point>, confirm_updates: u32) -> Self {
        Zone { polygon, confirm_updates: confirm_updates.max(1), members: HashMap::new() }
    }

    pub fn polygon(&self) -> &[Point] {
        &self.polygon
    }

    pub fn contains(&self, p: Point) -> bool {
        point_in_polygon(p, &self.polygon)
    }

    /// Tracks currently inside.
    pub fn occupancy(&self) -> u32 {
        self.members.values().filter(|m| m.inside).count() as u32
    }

    /// Stream time a track entered, if it is inside.
    pub fn entered_at(&self, track_id: u64) -> Option<Duration> {
        self.members.get(&track_id).filter(|m| m.inside).map(|m| m.entered_at)
    }

    /// Feeds a track's anchor at stream time `now`.
    pub fn observe(&mut self, track_id: u64, p: Point, now: Duration) -> Option<ZoneChange> {
        let is_in = self.contains(p);
        let confirm = self.confirm_updates;
        let m = self.members.entry(track_id).or_insert(Membership { inside: false, streak: 0, entered_at: now });
        if is_in == m.inside {
            m.streak = 0;
            return None;
        }
        if m.streak == 0 && is_in {
            m.entered_at = now; // the first observation inside is when it entered
        }
        m.streak += 1;
        if m.streak < confirm {
            return None;
        }
        m.streak = 0;
        m.inside = is_in;
        if is_in {
            Some(ZoneChange::Enter)
        } else {
            let dwell = now.saturating_sub(m.entered_at);
            self.members.remove(&track_id);
            Some(ZoneChange::Exit { dwell })
        }
    }

    /// A track ended at stream time `last_seen`: exits if it was inside.
    pub fn forget(&mut self, track_id: u64, last_seen: Duration) -> Option<ZoneChange> {
        let m = self.members.remove(&track_id)?;
        m.inside.then(|| ZoneChange::Exit { dwell: last_seen.saturating_sub(m.entered_at) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Zone {
        Zone::new(vec![(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)], 2)
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn enter_dwell_exit() {
        let mut z = square();
        assert_eq!(z.observe(1, (-10.0, 50.0), ms(0)), None);
        assert_eq!(z.observe(1, (10.0, 50.0), ms(100)), None);
        assert_eq!(z.observe(1, (20.0, 50.0), ms(200)), Some(ZoneChange::Enter));
        assert_eq!(z.occupancy(), 1);
        assert_eq!(z.observe(1, (110.0, 50.0), ms(1100)), None);
        assert_eq!(z.observe(1, (120.0, 50.0), ms(1200)), Some(ZoneChange::Exit { dwell: ms(1100) }));
        assert_eq!(z.occupancy(), 0);
    }

    #[test]
    fn border_flicker_does_not_toggle() {
        let mut z = square();
        let mut changes = 0;
        for i in 0..40u64 {
            let x = if i % 2 == 0 { 99.0 } else { 101.0 };
            changes += z.observe(1, (x, 50.0), ms(i * 40)).is_some() as u32;
        }
        assert_eq!(changes, 0);
    }

    #[test]
    fn a_track_that_ends_inside_exits() {
        let mut z = square();
        z.observe(1, (50.0, 50.0), ms(0));
        z.observe(1, (50.0, 50.0), ms(40));
        assert_eq!(z.forget(1, ms(2000)), Some(ZoneChange::Exit { dwell: ms(2000) }));
        assert_eq!(z.forget(1, ms(2000)), None);
    }
}
