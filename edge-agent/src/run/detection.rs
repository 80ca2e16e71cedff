//! The shared detector: a small pool of worker threads (one per core by default) runs
//! inference for every camera of the agent, so an edge box holds one ONNX session per model
//! set-up and worker instead of one per camera, and the cores are not oversubscribed by N
//! sessions' thread pools.
//!
//! Each camera hands its latest frame over and waits for the detections (at most one request
//! in flight per camera; the camera's source keeps only the latest frame meanwhile and counts
//! the drops). For models with a dynamic batch dimension the worker batches across cameras:
//! after the first request it waits at most [`BATCH_WINDOW`] for the other cameras on that
//! model, so one slow camera never holds the others' batch back.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use roadsight_pipeline::detect::tiles::TilePlan;
use roadsight_pipeline::detect::{DetectTimings, Detection, Detector, DetectorOptions};
use roadsight_pipeline::source::Frame;

use crate::model::load_detector;

/// Longest wait for more cameras' frames once a batch has started.
pub const BATCH_WINDOW: Duration = Duration::from_millis(8);

struct Request {
    /// Which loaded detector (cameras with the same model set-up share one).
    slot: usize,
    frame: Frame,
    /// The camera's ROI/tiles (cameras with different plans share one session).
    plan: Option<Arc<TilePlan>>,
    /// The camera's reused detection buffer, returned filled.
    detections: Vec<Detection>,
    reply: SyncSender<Reply>,
}

struct Reply {
    frame: Frame,
    detections: Vec<Detection>,
    /// The stage times of the (possibly batched) run that served this frame.
    timings: DetectTimings,
    error: Option<String>,
}

/// A camera's handle on the shared detector.
pub struct CameraDetector {
    slot: usize,
    /// The slot used at night, when the night profile changes the input size.
    night_slot: Option<usize>,
    plan: Option<Arc<TilePlan>>,
    labels: Vec<String>,
    requests: SyncSender<Msg>,
    reply_tx: SyncSender<Reply>,
    replies: Receiver<Reply>,
    buffer: Vec<Detection>,
    timings: DetectTimings,
    peers: Arc<Mutex<Vec<usize>>>,
}

impl Drop for CameraDetector {
    fn drop(&mut self) {
        let mut peers = lock(&self.peers);
        for slot in std::iter::once(self.slot).chain(self.night_slot) {
            if let Some(n) = peers.get_mut(slot) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl CameraDetector {
    /// Stage times of the last [`CameraDetector::detect`] (for a batch: the whole batch's).
    pub fn timings(&self) -> DetectTimings {
        self.timings
    }

    /// The model's label names (class id → name).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Detects objects in `frame` with the day set-up, or the night one when `night` and the
    /// camera has one; gives the frame back with its detections.
    pub fn detect(&mut self, frame: Frame, night: bool) -> anyhow::Result<(Frame, &[Detection])> {
        let slot = if night { self.night_slot.unwrap_or(self.slot) } else { self.slot };
        // Colour conversion happens at a frame's first view: here, on the camera's thread, in
        // parallel with other cameras' inference, not on the detector worker.
        let _ = frame.view();
        let request = Request {
            slot,
            frame,
            plan: self.plan.clone(),
            detections: std::mem::take(&mut self.buffer),
            reply: self.reply_tx.clone(),
        };
        // Full-policy: block (see `Msg`).
        self.requests.send(Msg::Detect(request)).map_err(|_| anyhow::anyhow!("the detector worker has stopped"))?;
        let reply = self.replies.recv().map_err(|_| anyhow::anyhow!("the detector worker has stopped"))?;
        self.buffer = reply.detections;
        self.timings = reply.timings;
        if let Some(e) = reply.error {
            anyhow::bail!(e);
        }
        Ok((reply.frame, &self.buffer))
    }
}

/// Messages to the worker. Full-policy: block. Each camera has at most one request in
/// flight, so the queue only fills with more than [`QUEUE`] cameras, and then a camera just
/// waits its turn.
enum Msg {
    Detect(Request),
    /// A detector for a new model set-up (a camera added at start or by a reload).
    Add(Detector),
}

const QUEUE: usize = 64;

/// A pool of detector workers: each camera is served by one of them (the least loaded when it
/// attaches). One worker keeps one session per model set-up; several workers run inference
/// in parallel — on this 2-core machine one ONNX Runtime session keeps only about one core
/// busy, two keep both (measured with `edge-agent bench`).
pub struct DetectorPool {
    workers: Vec<DetectorWorker>,
}

impl DetectorPool {
    /// `workers` threads (at least one).
    pub fn start(workers: usize) -> anyhow::Result<DetectorPool> {
        let workers = (0..workers.max(1)).map(DetectorWorker::start).collect::<anyhow::Result<_>>()?;
        Ok(DetectorPool { workers })
    }

    /// The default size: one worker per core.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Intra-op threads for a session whose config leaves it to the agent (`threads` 0):
    /// the cores shared by the sessions that run side by side — one per worker that has a
    /// camera. With a camera per core that is 1 thread each (no oversubscription: two 1-thread
    /// sessions outrun one 2-thread session here by 1.36×); one camera alone gets every core.
    pub fn session_threads(configured: usize, workers: usize, cameras: usize) -> usize {
        if configured > 0 {
            return configured;
        }
        let busy = workers.min(cameras).max(1);
        (Self::default_workers() / busy).max(1)
    }

    /// A handle for camera `camera_id` on the least loaded worker (see [`DetectorWorker::attach`]).
    pub fn attach(&mut self, camera_id: &str, model: &str, options: &DetectorOptions, ort_lib: &Path) -> anyhow::Result<CameraDetector> {
        self.attach_with_night(camera_id, model, options, None, ort_lib)
    }

    /// As [`DetectorPool::attach`], plus the camera's night set-up (same model, another input
    /// size) on the same worker.
    pub fn attach_with_night(
        &mut self,
        camera_id: &str,
        model: &str,
        options: &DetectorOptions,
        night: Option<&DetectorOptions>,
        ort_lib: &Path,
    ) -> anyhow::Result<CameraDetector> {
        let worker = self.workers.iter_mut().min_by_key(|w| w.attached()).expect("at least one worker");
        worker.attach(camera_id, model, options, night, ort_lib)
    }

    /// Waits for every worker to finish (each ends when its cameras' handles are gone).
    pub fn join(self) {
        for w in self.workers {
            w.join();
        }
    }
}

/// One worker thread and the detectors it holds. Cameras attach (and detach by dropping
/// their handle) at any time.
pub struct DetectorWorker {
    tx: Option<SyncSender<Msg>>,
    /// Per slot: the (model, options) key and the label names.
    slots: Vec<(String, Vec<String>)>,
    /// Cameras attached per slot (the most a batch waits for).
    peers: Arc<Mutex<Vec<usize>>>,
    thread: Option<JoinHandle<()>>,
}

impl DetectorWorker {
    pub fn start(index: usize) -> anyhow::Result<DetectorWorker> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let peers: Arc<Mutex<Vec<usize>>> = Arc::default();
        let thread = {
            let peers = Arc::clone(&peers);
            std::thread::Builder::new()
                .name(format!("detector-{index}"))
                .spawn(move || serve(&rx, &peers))
                .context("starting the detector worker")?
        };
        Ok(DetectorWorker { tx: Some(tx), slots: Vec::new(), peers, thread: Some(thread) })
    }

    /// Cameras attached now.
    fn attached(&self) -> usize {
        lock(&self.peers).iter().sum()
    }

    /// A handle for a camera: shares the detector of an attached camera with the same model
    /// set-up, or loads one (the error names the camera and model); likewise its night set-up.
    pub fn attach(
        &mut self,
        camera_id: &str,
        model: &str,
        options: &DetectorOptions,
        night: Option<&DetectorOptions>,
        ort_lib: &Path,
    ) -> anyhow::Result<CameraDetector> {
        let tx = self.tx.clone().ok_or_else(|| anyhow::anyhow!("the detector worker has stopped"))?;
        // The tile plan travels with each request, so it is not part of the session's key.
        let plan = options.tiling.clone();
        let slot = self.slot_for(&tx, camera_id, model, options, ort_lib)?;
        let night_slot = match night {
            Some(n) => Some(self.slot_for(&tx, camera_id, model, n, ort_lib).context("its night detector")?),
            None => None,
        };
        {
            let mut peers = lock(&self.peers);
            for s in std::iter::once(slot).chain(night_slot) {
                peers[s] += 1;
            }
        }
        let (reply_tx, replies) = mpsc::sync_channel(1);
        Ok(CameraDetector {
            slot,
            night_slot,
            plan,
            labels: self.slots[slot].1.clone(),
            requests: tx,
            reply_tx,
            replies,
            buffer: Vec::with_capacity(256),
            timings: DetectTimings::default(),
            peers: Arc::clone(&self.peers),
        })
    }

    /// The slot of an attached camera's detector with the same model set-up, or a new one.
    fn slot_for(
        &mut self,
        tx: &SyncSender<Msg>,
        camera_id: &str,
        model: &str,
        options: &DetectorOptions,
        ort_lib: &Path,
    ) -> anyhow::Result<usize> {
        let options = &DetectorOptions { tiling: None, ..options.clone() };
        let key = format!("{model}|{options:?}");
        if let Some(slot) = self.slots.iter().position(|(k, _)| *k == key) {
            return Ok(slot);
        }
        let det = load_detector(model, options, ort_lib).with_context(|| format!("camera {camera_id}"))?;
        self.slots.push((key, det.labels().to_vec()));
        lock(&self.peers).push(0);
        tx.send(Msg::Add(det)).map_err(|_| anyhow::anyhow!("the detector worker has stopped"))?;
        Ok(self.slots.len() - 1)
    }

    /// Waits for the worker to finish: it ends when every camera handle is gone.
    pub fn join(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves requests until every sender (cameras and the [`DetectorWorker`]) is gone.
fn serve(rx: &Receiver<Msg>, peers: &Mutex<Vec<usize>>) {
    let mut detectors: Vec<Detector> = Vec::new();
    let mut pending: VecDeque<Request> = VecDeque::new();
    let mut outputs: Vec<Vec<Detection>> = Vec::new();
    loop {
        let first = match pending.pop_front() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(Msg::Detect(r)) => r,
                Ok(Msg::Add(d)) => {
                    detectors.push(d);
                    continue;
                }
                Err(_) => return,
            },
        };
        let slot = first.slot;
        let mut batch = vec![first];
        if detectors[slot].batches() {
            let cameras = lock(peers).get(slot).copied().unwrap_or(1);
            collect_batch(&mut batch, &mut pending, &mut detectors, rx, cameras);
        }
        let detector = &mut detectors[slot];
        let views: Vec<_> = batch.iter().map(|r| r.frame.view()).collect();
        let plans: Vec<Option<&TilePlan>> = batch.iter().map(|r| r.plan.as_deref()).collect();
        let result = detector.detect_batch_planned(&views, &plans, &mut outputs);
        drop((views, plans));
        let error = result.err().map(|e| e.to_string());
        let timings = detector.timings();
        for (i, mut request) in batch.into_iter().enumerate() {
            request.detections.clear();
            if let Some(found) = outputs.get(i) {
                request.detections.extend_from_slice(found);
            }
            // A camera that has gone away does not need its answer.
            let _ = request.reply.send(Reply { frame: request.frame, detections: request.detections, timings, error: error.clone() });
        }
    }
}

/// Adds to `batch` the other cameras' requests for the same detector: those already waiting,
/// then new ones until all `cameras` are in or [`BATCH_WINDOW`] has passed. Requests for other
/// detectors wait in `pending`, in arrival order.
fn collect_batch(
    batch: &mut Vec<Request>,
    pending: &mut VecDeque<Request>,
    detectors: &mut Vec<Detector>,
    rx: &Receiver<Msg>,
    cameras: usize,
) {
    let slot = batch[0].slot;
    let mut i = 0;
    while i < pending.len() && batch.len() < cameras {
        if pending[i].slot == slot {
            batch.extend(pending.remove(i));
        } else {
            i += 1;
        }
    }
    let deadline = Instant::now() + BATCH_WINDOW;
    while batch.len() < cameras {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Detect(r)) if r.slot == slot => batch.push(r),
            Ok(Msg::Detect(r)) => pending.push_back(r),
            Ok(Msg::Add(d)) => detectors.push(d),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_share_the_cores_unless_the_config_says_otherwise() {
        let cores = DetectorPool::default_workers();
        // A configured thread count is kept (the set-up before one-thread workers: 2).
        assert_eq!(DetectorPool::session_threads(2, cores, 8), 2);
        // One camera: its session alone gets every core.
        assert_eq!(DetectorPool::session_threads(0, cores, 1), cores);
        // A camera per worker (or more): one thread per session, no oversubscription.
        assert_eq!(DetectorPool::session_threads(0, cores, cores), 1);
        assert_eq!(DetectorPool::session_threads(0, cores, 64), 1);
        // Fewer workers than cores: the cores split between them.
        assert_eq!(DetectorPool::session_threads(0, 1, 64), cores);
    }
}
