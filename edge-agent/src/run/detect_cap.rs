//! `max_detect_fps`: which frames of a camera go to the detector, on stream time.

use std::time::Duration;

/// Detects a frame when it is due; the next one is due one interval later *on the schedule*
/// (not one interval after the frame), so a 30 fps camera capped at 12.5 detects 12.5 frames
/// a second on average (every 2nd or 3rd frame) instead of every 3rd (10). A frame up to 10 %
/// of the interval early still counts as due (timestamp jitter must not skip an extra frame:
/// 25 fps capped at 12.5 keeps exactly every other frame). After a gap (a stall, a reconnect)
/// the schedule restarts at the next frame instead of catching up in a burst.
#[derive(Debug, Clone, Default)]
pub struct DetectCap {
    interval: Option<Duration>,
    due: Option<Duration>,
}

impl DetectCap {
    /// `interval` = 1 / `max_detect_fps`; `None`: every frame is detected.
    pub fn new(interval: Option<Duration>) -> Self {
        DetectCap { interval, due: None }
    }

    /// Whether the frame at stream time `t` is skipped (not detected).
    pub fn skips(&mut self, t: Duration) -> bool {
        let Some(interval) = self.interval else { return false };
        if let Some(due) = self.due {
            if t + interval.mul_f64(0.1) < due {
                return true;
            }
        }
        let next = self.due.map_or(t + interval, |due| due + interval);
        self.due = Some(if next <= t { t + interval } else { next });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(fps: f64, cap: f64, seconds: f64, jitter_ms: f64) -> Vec<usize> {
        let mut c = DetectCap::new(Some(Duration::from_secs_f64(1.0 / cap)));
        (0..(fps * seconds) as usize)
            .filter(|&i| {
                let wobble = if i % 2 == 0 { jitter_ms } else { -jitter_ms };
                let t = (i as f64 / fps * 1000.0 + wobble).max(0.0);
                !c.skips(Duration::from_secs_f64(t / 1000.0))
            })
            .collect()
    }

    #[test]
    fn thirty_fps_capped_at_twelve_and_a_half_detects_twelve_and_a_half() {
        let kept = detected(30.0, 12.5, 10.0, 0.0);
        assert_eq!(kept.len(), 125);
        assert!(kept.windows(2).all(|w| (2..=3).contains(&(w[1] - w[0]))), "every 2nd or 3rd frame");
    }

    #[test]
    fn twenty_five_fps_capped_at_twelve_and_a_half_keeps_every_other_frame_despite_jitter() {
        let kept = detected(25.0, 12.5, 4.0, 2.0);
        assert_eq!(kept, (0..100).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn no_cap_keeps_everything_and_a_gap_does_not_cause_a_burst() {
        assert_eq!(detected(30.0, 1000.0, 1.0, 0.0).len(), 30);
        let mut c = DetectCap::new(Some(Duration::from_millis(100)));
        let ms = Duration::from_millis;
        assert!(!c.skips(ms(0)));
        // 5 s without frames, then 30 fps again: one frame per 100 ms, not a catch-up burst.
        let after: Vec<bool> = (0..7).map(|i| c.skips(ms(5000 + i * 33))).collect();
        assert_eq!(after, [false, true, true, false, true, true, false]);
    }
}
