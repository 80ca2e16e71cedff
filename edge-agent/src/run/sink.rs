//! Delivery of outbox messages to a JSON-lines file (or stdout). Events are written one JSON
//! object per line; snapshots as JPEG files and evidence clips as MP4 files (each chunk
//! written at its offset, so a chunk written twice changes nothing) in
//! `<events file>.snapshots/`; retained status
//! copies are skipped (the events carry the same status). A message leaves the outbox only
//! after it is written and flushed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use roadsight_events::topics::{self, Topic};

use super::outbox::Outbox;
use super::telemetry::Telemetry;

pub struct JsonLinesSink {
    out: Box<dyn Write + Send>,
    snapshot_dir: Option<PathBuf>,
}

impl JsonLinesSink {
    pub fn stdout() -> Self {
        JsonLinesSink { out: Box::new(std::io::BufWriter::new(std::io::stdout())), snapshot_dir: None }
    }

    pub fn file(path: &Path) -> anyhow::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening events file {}", path.display()))?;
        let mut dir = path.as_os_str().to_owned();
        dir.push(".snapshots");
        Ok(JsonLinesSink { out: Box::new(std::io::BufWriter::new(f)), snapshot_dir: Some(PathBuf::from(dir)) })
    }

    fn write(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        match topics::parse(topic) {
            Some(Topic::Events { .. }) => {
                self.out.write_all(payload)?;
                self.out.write_all(b"\n")?;
            }
            Some(Topic::Snapshot { snapshot_id, .. }) => {
                if let Some(dir) = &self.snapshot_dir {
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(dir.join(format!("{snapshot_id}.jpg")), payload)?;
                }
            }
            Some(Topic::ClipChunk { clip_id, index, .. }) => {
                if let Some(dir) = &self.snapshot_dir {
                    use std::io::{Seek, SeekFrom};
                    std::fs::create_dir_all(dir)?;
                    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(dir.join(format!("{clip_id}.mp4")))?;
                    f.seek(SeekFrom::Start(index as u64 * roadsight_events::clip::CHUNK_BYTES as u64))?;
                    f.write_all(payload)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Drains the outbox until `stop` is set and it is empty.
    pub fn run(mut self, outbox: &Outbox, stop: &AtomicBool, telemetry: &Telemetry) -> anyhow::Result<u64> {
        telemetry.delivery_transport("json_lines");
        let mut written = 0u64;
        loop {
            let batch = outbox.next_batch(0, 256)?;
            if batch.is_empty() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                outbox.wait_changed(Duration::from_millis(100));
                continue;
            }
            for m in &batch {
                self.write(&m.topic, &m.payload)?;
            }
            self.out.flush()?;
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            outbox.remove(&ids)?;
            written += ids.len() as u64;
            telemetry.delivered(ids.len() as u64);
        }
        self.out.flush()?;
        Ok(written)
    }
}
