//! Where events go. A sink is written to by one thread; cameras reach it through a bounded
//! channel whose full-policy is *block*: events are never dropped.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use roadsight_events::Event;

pub trait EventSink: Send {
    fn publish(&mut self, event: &Event) -> anyhow::Result<()>;
    fn flush(&mut self) -> anyhow::Result<()>;
}

/// One JSON object per line, to a file (appended) or stdout.
pub struct JsonLinesSink {
    out: Box<dyn Write + Send>,
}

impl JsonLinesSink {
    pub fn stdout() -> Self {
        JsonLinesSink { out: Box::new(std::io::BufWriter::new(std::io::stdout())) }
    }

    pub fn file(path: &Path) -> anyhow::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening events file {}", path.display()))?;
        Ok(JsonLinesSink { out: Box::new(std::io::BufWriter::new(f)) })
    }
}

impl EventSink for JsonLinesSink {
    fn publish(&mut self, event: &Event) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// Capacity of the camera → sink channel. Full-policy: block the camera (never drop events).
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Runs a sink on the calling thread until every sender is gone; flushes whenever the channel
/// runs dry and at the end.
pub fn drain_into(rx: std::sync::mpsc::Receiver<Event>, mut sink: Box<dyn EventSink>) -> anyhow::Result<u64> {
    let mut written = 0u64;
    while let Ok(event) = rx.recv() {
        sink.publish(&event)?;
        written += 1;
        while let Ok(event) = rx.try_recv() {
            sink.publish(&event)?;
            written += 1;
        }
        sink.flush()?;
    }
    sink.flush()?;
    Ok(written)
}
