//! Local hours of the day (a night profile, a lane's restricted hours), judged on event time.

use chrono::{DateTime, NaiveTime, Timelike, Utc};

/// From `from` to `to`, local time; `from` after `to` spans midnight (18:00 → 06:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalHours {
    pub from: NaiveTime,
    pub to: NaiveTime,
    /// Local time = UTC + this many seconds.
    pub utc_offset_secs: i32,
}

impl LocalHours {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at + chrono::Duration::seconds(self.utc_offset_secs as i64);
        let now = local.time().with_nanosecond(0).unwrap_or(local.time());
        if self.from <= self.to {
            self.from <= now && now < self.to
        } else {
            now >= self.from || now < self.to
        }
    }
}
