//! The durable outbox: every message (event, retained status, snapshot) is written here,
//! together with the camera's new `seq`, in one SQLite transaction before anything is
//! published; a publisher removes a message only once the broker (or the file sink) has it.
//!
//! Guarantees: an event that got a `seq` is in the outbox (and survives SIGKILL — WAL, synced
//! at commit in NORMAL mode, which loses nothing on a process crash); messages are handed to
//! publishers in insertion order (so per camera in `seq` order); after a reconnect everything
//! unacknowledged is sent again with the same bytes (same `event_id`).
//!
//! Size cap: when the stored payloads exceed `max_bytes`, [`Outbox::enqueue_event`] *blocks*
//! (events are never dropped); the camera worker stalls, a live source then drops frames
//! (counted), and `outbox_full` is raised for metrics and logs until the publisher catches up.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

pub struct Outbox {
    conn: Mutex<Connection>,
    max_bytes: i64,
    stored_bytes: AtomicI64,
    full: AtomicBool,
    /// Signalled on enqueue (publishers wait) and on removal (blocked producers wait).
    changed: Condvar,
    changed_lock: Mutex<()>,
}

impl Outbox {
    pub fn open(path: &Path, max_bytes: i64) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening outbox {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 10000;
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 topic TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 retain INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS seqs (
                 site_id TEXT NOT NULL,
                 camera_id TEXT NOT NULL,
                 last_seq INTEGER NOT NULL,
                 PRIMARY KEY (site_id, camera_id));",
        )
        .with_context(|| format!("initialising outbox {}", path.display()))?;
        let stored: i64 = conn.query_row("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox", [], |r| r.get(0))?;
        Ok(Outbox {
            conn: Mutex::new(conn),
            max_bytes,
            stored_bytes: AtomicI64::new(stored),
            full: AtomicBool::new(false),
            changed: Condvar::new(),
            changed_lock: Mutex::new(()),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        let _g = self.changed_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.changed.notify_all();
    }

    /// Waits until there is room under the cap (or `stop` is set).
    fn wait_for_room(&self, incoming: usize, stop: &AtomicBool) {
        // A message larger than the whole cap goes in once the outbox is empty.
        let over = |stored: i64| stored > 0 && stored + incoming as i64 > self.max_bytes;
        while over(self.stored_bytes.load(Ordering::Relaxed)) && !stop.load(Ordering::Relaxed) {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "outbox full ({} MB stored): blocking event producers until the broker takes messages",
                    self.stored_bytes.load(Ordering::Relaxed) >> 20
                );
            }
            let g = self.changed_lock.lock().unwrap_or_else(|p| p.into_inner());
            let _ = self.changed.wait_timeout(g, Duration::from_millis(200));
        }
        if self.full.swap(false, Ordering::Relaxed) {
            tracing::warn!("outbox has room again");
        }
    }

    /// Assigns the camera's next `seq`, builds the messages for it with `build(seq)` and stores
    /// them, all in one transaction. Returns the `seq`. `room`: about how many bytes the
    /// messages take (waited for while the outbox is full).
    pub fn enqueue_event(
        &self,
        site_id: &str,
        camera_id: &str,
        room: usize,
        stop: &AtomicBool,
        build: impl FnOnce(u64) -> anyhow::Result<Vec<(String, Vec<u8>, bool)>>,
    ) -> anyhow::Result<u64> {
        self.wait_for_room(room, stop);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let last: Option<i64> = tx
            .query_row("SELECT last_seq FROM seqs WHERE site_id = ?1 AND camera_id = ?2", params![site_id, camera_id], |r| r.get(0))
            .optional()?;
        let seq = last.unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO seqs (site_id, camera_id, last_seq) VALUES (?1, ?2, ?3) \
             ON CONFLICT (site_id, camera_id) DO UPDATE SET last_seq = excluded.last_seq",
            params![site_id, camera_id, seq],
        )?;
        let mut bytes = 0i64;
        for (topic, payload, retain) in build(seq as u64)? {
            bytes += payload.len() as i64;
            tx.execute("INSERT INTO outbox (topic, payload, retain) VALUES (?1, ?2, ?3)", params![topic, payload, retain])?;
        }
        tx.commit()?;
        drop(conn);
        self.stored_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.notify();
        Ok(seq as u64)
    }

    /// Stores a message that carries no `seq` (snapshots, agent status).
    pub fn enqueue(&self, topic: &str, payload: &[u8], retain: bool, stop: &AtomicBool) -> anyhow::Result<()> {
        self.wait_for_room(payload.len(), stop);
        self.conn().execute("INSERT INTO outbox (topic, payload, retain) VALUES (?1, ?2, ?3)", params![topic, payload, retain])?;
        self.stored_bytes.fetch_add(payload.len() as i64, Ordering::Relaxed);
        self.notify();
        Ok(())
    }

    /// Up to `limit` messages with id greater than `after`, oldest first.
    pub fn next_batch(&self, after: i64, limit: usize) -> anyhow::Result<Vec<Message>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT id, topic, payload, retain FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(Message { id: r.get(0)?, topic: r.get(1)?, payload: r.get(2)?, retain: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Removes delivered messages.
    pub fn remove(&self, ids: &[i64]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut freed = 0i64;
        {
            let mut size = tx.prepare_cached("SELECT LENGTH(payload) FROM outbox WHERE id = ?1")?;
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                if let Some(n) = size.query_row(params![id], |r| r.get::<_, i64>(0)).optional()? {
                    freed += n;
                    del.execute(params![id])?;
                }
            }
        }
        tx.commit()?;
        drop(conn);
        self.stored_bytes.fetch_sub(freed, Ordering::Relaxed);
        self.notify();
        Ok(())
    }

    /// Messages waiting.
    pub fn depth(&self) -> anyhow::Result<i64> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?)
    }

    /// The size cap (`outbox_max_mb`).
    pub fn capacity_bytes(&self) -> i64 {
        self.max_bytes
    }

    pub fn stored_bytes(&self) -> i64 {
        self.stored_bytes.load(Ordering::Relaxed)
    }

    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for something to be enqueued or removed.
    pub fn wait_changed(&self, timeout: Duration) {
        let g = self.changed_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.changed.wait_timeout(g, timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_and_messages_persist_until_removed() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("outbox.sqlite");
        let stop = AtomicBool::new(false);
        {
            let o = Outbox::open(&path, 1 << 20).expect("open");
            for _ in 0..3 {
                o.enqueue_event("s", "c", 1024, &stop, |seq| Ok(vec![("t".into(), seq.to_string().into_bytes(), false)])).expect("enqueue");
            }
            let batch = o.next_batch(0, 10).expect("batch");
            assert_eq!(batch.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(), vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
            o.remove(&[batch[0].id]).expect("remove");
        }
        // Reopened (as after a crash): the unacknowledged messages and the seq are still there.
        let o = Outbox::open(&path, 1 << 20).expect("reopen");
        assert_eq!(o.depth().expect("depth"), 2);
        let seq = o.enqueue_event("s", "c", 1024, &stop, |seq| Ok(vec![("t".into(), seq.to_string().into_bytes(), false)])).expect("enqueue");
        assert_eq!(seq, 4);
        assert_eq!(o.stored_bytes(), 3);
    }

    #[test]
    fn a_full_outbox_blocks_until_room() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = std::sync::Arc::new(Outbox::open(&dir.path().join("o.sqlite"), 2000).expect("open"));
        let stop = AtomicBool::new(false);
        o.enqueue("t", &[0u8; 1500], false, &stop).expect("first fits");
        let producer = {
            let o = o.clone();
            std::thread::spawn(move || {
                let stop = AtomicBool::new(false);
                o.enqueue("t", &[1u8; 1500], false, &stop).expect("second waits, then fits");
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(o.is_full(), "the producer is blocked");
        assert_eq!(o.depth().expect("depth"), 1);
        let first = o.next_batch(0, 1).expect("batch");
        o.remove(&[first[0].id]).expect("remove");
        producer.join().expect("producer finished");
        assert_eq!(o.depth().expect("depth"), 1);
    }
}
