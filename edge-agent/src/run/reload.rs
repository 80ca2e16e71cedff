//! When to reload the config: on SIGHUP (the binary sets the flag) or when the file's
//! modification time changes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the file's modification time is looked at.
const POLL: Duration = Duration::from_secs(1);

pub struct ReloadWatch {
    path: PathBuf,
    modified: Option<SystemTime>,
    hangup: Arc<AtomicBool>,
    next_poll: Instant,
}

impl ReloadWatch {
    pub fn new(path: PathBuf, hangup: Arc<AtomicBool>) -> Self {
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        ReloadWatch { path, modified, hangup, next_poll: Instant::now() + POLL }
    }

    /// True once per SIGHUP or file change.
    pub fn due(&mut self) -> bool {
        let mut due = self.hangup.swap(false, Ordering::Relaxed);
        if Instant::now() >= self.next_poll {
            self.next_poll = Instant::now() + POLL;
            let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if modified.is_some() && modified != self.modified {
                self.modified = modified;
                due = true;
            }
        }
        due
    }
}
