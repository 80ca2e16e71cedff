//! Login throttling in memory: after too many failed logins for one user name, or from one
//! address, within a window, further attempts are refused (429 with `Retry-After`) until the
//! window has passed — even with the right password, so guessing gains nothing. The maps are
//! bounded: when full, windows that have passed are dropped first, then the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub per_user: u32,
    pub per_address: u32,
    pub window: Duration,
    /// Entries kept per map.
    pub capacity: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { per_user: 5, per_address: 20, window: Duration::from_secs(15 * 60), capacity: 10_000 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failures per key within fixed windows, bounded.
#[derive(Debug)]
struct Counter<K> {
    entries: HashMap<K, Window>,
    limit: u32,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(limit: u32) -> Self {
        Counter { entries: HashMap::new(), limit }
    }

    /// How long `key` is still blocked for, if it is.
    fn blocked(&mut self, key: &K, now: Instant, window: Duration) -> Option<Duration> {
        let w = self.entries.get(key)?;
        let left = window.checked_sub(now.duration_since(w.started)).filter(|d| !d.is_zero());
        match left {
            None => {
                self.entries.remove(key);
                None
            }
            Some(left) => (w.failures >= self.limit).then_some(left),
        }
    }

    fn fail(&mut self, key: K, now: Instant, window: Duration, capacity: usize) {
        if !self.entries.contains_key(&key) && self.entries.len() >= capacity {
            self.entries.retain(|_, w| now.duration_since(w.started) < window);
            if self.entries.len() >= capacity {
                if let Some(oldest) = self.entries.iter().min_by_key(|(_, w)| w.started).map(|(k, _)| k.clone()) {
                    self.entries.remove(&oldest);
                }
            }
        }
        let w = self.entries.entry(key).or_insert(Window { started: now, failures: 0 });
        if now.duration_since(w.started) >= window {
            *w = Window { started: now, failures: 0 };
        }
        w.failures += 1;
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn undo(&mut self, key: &K) {
        if let Some(w) = self.entries.get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

#[derive(Debug)]
struct Counters {
    users: Counter<String>,
    addresses: Counter<IpAddr>,
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    counters: Mutex<Counters>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            counters: Mutex::new(Counters { users: Counter::new(policy.per_user), addresses: Counter::new(policy.per_address) }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a login attempt for `user` from `address`: `Err(wait)` when either is blocked
    /// now; otherwise the attempt counts as a failure until `succeeded` says otherwise (so
    /// many attempts sent at once cannot all slip in before the first one fails).
    pub fn begin(&self, user: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let p = self.policy;
        let user = user_key(user);
        let mut c = self.lock();
        let by_user = c.users.blocked(&user, now, p.window);
        let by_address = c.addresses.blocked(&address, now, p.window);
        if let Some(wait) = by_user.max(by_address) {
            return Err(wait);
        }
        c.users.fail(user, now, p.window, p.capacity);
        c.addresses.fail(address, now, p.window, p.capacity);
        Ok(())
    }

    /// The attempt begun for `user` from `address` succeeded: the user's failures are cleared,
    /// and the attempt no longer counts for the address (its earlier failures still do: one
    /// valid account must not reset the count of guesses at others).
    pub fn succeeded(&self, user: &str, address: IpAddr) {
        let mut c = self.lock();
        c.users.clear(&user_key(user));
        c.addresses.undo(&address);
    }
}

/// The throttle's key for a user name (bounded: the name is attacker-controlled).
fn user_key(user: &str) -> String {
    user.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn blocks_after_the_limit_per_user_and_per_address() {
        let t = LoginThrottle::new(ThrottlePolicy { per_user: 3, per_address: 5, window: Duration::from_secs(60), capacity: 100 });
        for _ in 0..3 {
            t.begin("alice", ip(1)).expect("under the limit");
        }
        let wait = t.begin("alice", ip(2)).expect_err("alice is blocked from any address");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50), "{wait:?}");
        t.begin("bob", ip(1)).expect("3 failures from ip 1 so far: under its limit of 5");
        t.begin("carol", ip(1)).expect("4 failures from ip 1");
        t.succeeded("carol", ip(1));
        t.begin("erin", ip(1)).expect("a success does not count for the address");
        assert!(t.begin("dave", ip(1)).is_err(), "5 failures from ip 1: blocked for every name");
        t.begin("dave", ip(3)).expect("another address");
        t.begin("alice", ip(3)).expect_err("still blocked");
    }

    #[test]
    fn success_clears_the_user_and_windows_pass() {
        let t = LoginThrottle::new(ThrottlePolicy { per_user: 2, per_address: 1000, window: Duration::from_secs(60), capacity: 100 });
        t.begin("alice", ip(1)).expect("first");
        t.succeeded("alice", ip(1));
        t.begin("alice", ip(1)).expect("count cleared");
        t.begin("alice", ip(1)).expect("second failure");
        t.begin("alice", ip(1)).expect_err("blocked");
        let t = LoginThrottle::new(ThrottlePolicy { per_user: 1, per_address: 1000, window: Duration::from_millis(1), capacity: 100 });
        t.begin("alice", ip(1)).expect("first");
        std::thread::sleep(Duration::from_millis(5));
        t.begin("alice", ip(1)).expect("the window passed");
    }

    #[test]
    fn the_maps_stay_bounded() {
        let t = LoginThrottle::new(ThrottlePolicy { per_user: 1, per_address: 1000, window: Duration::from_secs(60), capacity: 8 });
        for n in 0..100 {
            t.begin(&format!("user{n}"), ip(1)).expect("new names");
        }
        t.begin(&"x".repeat(10_000), ip(1)).expect("a long name");
        let c = t.lock();
        assert!(c.users.entries.len() <= 8, "{}", c.users.entries.len());
        assert!(c.users.entries.keys().all(|k| k.len() <= 64));
        assert!(c.users.entries.contains_key("user99"), "the newest are kept");
    }
}
