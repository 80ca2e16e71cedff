//! How often a camera's frames reach tracking and analytics: the mean interval between
//! updates on stream time, so both can scale their time windows to the detection rate.

use std::time::Duration;

/// Gaps longer than this (a stall, a reconnect) say nothing of the rate.
const MAX_SAMPLE_SECS: f32 = 5.0;

/// Mean stream-time interval between updates (exponential average).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cadence {
    last: Option<Duration>,
    mean_secs: Option<f32>,
}

impl Cadence {
    /// An update at stream time `now`; returns the seconds since the previous one (0 at the
    /// first).
    pub fn observe(&mut self, now: Duration) -> f32 {
        let dt = self.last.map_or(0.0, |t| now.saturating_sub(t).as_secs_f32());
        self.last = Some(now);
        if dt > 0.0 && dt < MAX_SAMPLE_SECS {
            self.mean_secs = Some(self.mean_secs.map_or(dt, |i| i + 0.1 * (dt - i)));
        }
        dt
    }

    /// The mean interval in seconds, once there were two updates.
    pub fn mean_secs(&self) -> Option<f32> {
        self.mean_secs
    }

    /// `intervals` mean intervals (zero before the rate is known).
    pub fn times(&self, intervals: f32) -> Duration {
        self.mean_secs.map_or(Duration::ZERO, |i| Duration::from_secs_f32(i * intervals))
    }

    /// Whether updates come fewer than `fps` times a second (false before the rate is known).
    pub fn slower_than(&self, fps: f32) -> bool {
        self.mean_secs.is_some_and(|i| i > 1.0 / fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_the_interval_and_ignores_stalls() {
        let mut c = Cadence::default();
        assert_eq!(c.observe(Duration::ZERO), 0.0);
        assert_eq!((c.mean_secs(), c.times(3.0), c.slower_than(10.0)), (None, Duration::ZERO, false));
        for k in 1..=50u64 {
            c.observe(Duration::from_millis(400 * k));
        }
        // A 30 s stall is not a sample.
        c.observe(Duration::from_millis(400 * 50 + 30_000));
        let mean = c.mean_secs().expect("known");
        assert!((mean - 0.4).abs() < 1e-4, "{mean}");
        assert!(c.slower_than(10.0) && !c.slower_than(2.0));
        assert!((c.times(3.0).as_secs_f32() - 1.2).abs() < 1e-3);
    }
}
