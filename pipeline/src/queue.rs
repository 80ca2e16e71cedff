//! The bounded hand-off between a frame producer and its consumer.
//!
//! Full-policy is part of the type: [`FullPolicy::Block`] (file replay: every frame is
//! processed, in order; the producer waits) or [`FullPolicy::KeepLatest`] (live cameras: the
//! oldest queued frame is dropped and counted, so the consumer always gets the freshest one).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Producer blocks until there is room: nothing is dropped.
    Block,
    /// Oldest item is dropped (and counted) to make room.
    KeepLatest,
}

/// What a consumer gets from [`BoundedQueue::pop`].
#[derive(Debug)]
pub enum Popped<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The producer closed the queue and it is empty.
    Closed,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
    capacity: usize,
    policy: FullPolicy,
    dropped: AtomicU64,
}

/// A bounded multi-producer queue; clones share the same queue.
pub struct BoundedQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for BoundedQueue<T> {
    fn clone(&self) -> Self {
        BoundedQueue { shared: Arc::clone(&self.shared) }
    }
}

impl<T> BoundedQueue<T> {
    pub fn new(capacity: usize, policy: FullPolicy) -> Self {
        assert!(capacity > 0, "queue capacity must be > 0");
        BoundedQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State { items: VecDeque::with_capacity(capacity), closed: false }),
                changed: Condvar::new(),
                capacity,
                policy,
                dropped: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the deque inconsistent.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an item following the queue's full-policy. Returns `false` (item discarded) if the
    /// queue was closed.
    pub fn push(&self, item: T) -> bool {
        let mut st = self.lock();
        loop {
            if st.closed {
                return false;
            }
            if st.items.len() < self.shared.capacity {
                break;
            }
            match self.shared.policy {
                FullPolicy::KeepLatest => {
                    st.items.pop_front();
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                FullPolicy::Block => {
                    st = self.shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
        st.items.push_back(item);
        drop(st);
        self.shared.changed.notify_all();
        true
    }

    /// Takes the oldest item, waiting up to `timeout`.
    pub fn pop(&self, timeout: Duration) -> Popped<T> {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                drop(st);
                self.shared.changed.notify_all();
                return Popped::Item(item);
            }
            if st.closed {
                return Popped::Closed;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Popped::Timeout;
            }
            st = self.shared.changed.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// No more pushes; consumers drain what is queued, then see [`Popped::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.shared.changed.notify_all();
    }

    /// Items dropped by the keep-latest policy so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_latest_drops_oldest_and_counts() {
        let q = BoundedQueue::new(2, FullPolicy::KeepLatest);
        for i in 0..5 {
            assert!(q.push(i));
        }
        assert_eq!(q.dropped(), 3);
        assert!(matches!(q.pop(Duration::ZERO), Popped::Item(3)));
        assert!(matches!(q.pop(Duration::ZERO), Popped::Item(4)));
        assert!(matches!(q.pop(Duration::from_millis(1)), Popped::Timeout));
    }

    #[test]
    fn block_policy_never_drops() {
        let q = BoundedQueue::new(1, FullPolicy::Block);
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    q.push(i);
                }
                q.close();
            })
        };
        let mut got = Vec::new();
        loop {
            match q.pop(Duration::from_secs(5)) {
                Popped::Item(i) => got.push(i),
                Popped::Closed => break,
                Popped::Timeout => panic!("producer stalled"),
            }
        }
        producer.join().expect("producer");
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(q.dropped(), 0);
    }
}
