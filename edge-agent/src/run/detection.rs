//! The shared detector: one worker thread runs inference for every camera of the agent, so an
//! edge box holds one ONNX session per distinct model set-up instead of one per camera, and
//! the cores are not oversubscribed by N sessions' thread pools.
//!
//! Each camera hands its latest frame over and waits for the detections (at most one request
//! in flight per camera; the camera's source keeps only the latest frame meanwhile and counts
//! the drops). For models with a dynamic batch dimension the worker batches across cameras:
//! after the first request it waits at most [`BATCH_WINDOW`] for the other cameras on that
//! model, so one slow camera never holds the others' batch back.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use roadsight_pipeline::detect::{Detection, Detector};
use roadsight_pipeline::source::Frame;

use crate::config::AgentConfig;
use crate::model::load_detector;

/// Longest wait for more cameras' frames once a batch has started.
pub const BATCH_WINDOW: Duration = Duration::from_millis(8);

struct Request {
    /// Which loaded detector (cameras with the same model set-up share one).
    slot: usize,
    frame: Frame,
    /// The camera's reused detection buffer, returned filled.
    detections: Vec<Detection>,
    reply: SyncSender<Reply>,
}

struct Reply {
    frame: Frame,
    detections: Vec<Detection>,
    error: Option<String>,
}

/// A camera's handle on the shared detector.
pub struct CameraDetector {
    slot: usize,
    labels: Vec<String>,
    requests: SyncSender<Request>,
    reply_tx: SyncSender<Reply>,
    replies: Receiver<Reply>,
    buffer: Vec<Detection>,
}

impl CameraDetector {
    /// The model's label names (class id → name).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Detects objects in `frame`; gives the frame back with its detections.
    pub fn detect(&mut self, frame: Frame) -> anyhow::Result<(Frame, &[Detection])> {
        let request = Request {
            slot: self.slot,
            frame,
            detections: std::mem::take(&mut self.buffer),
            reply: self.reply_tx.clone(),
        };
        // Full-policy: block. The queue holds one request per camera, so it is never full.
        self.requests.send(request).map_err(|_| anyhow::anyhow!("the detector worker has stopped"))?;
        let reply = self.replies.recv().map_err(|_| anyhow::anyhow!("the detector worker has stopped"))?;
        self.buffer = reply.detections;
        if let Some(e) = reply.error {
            anyhow::bail!(e);
        }
        Ok((reply.frame, &self.buffer))
    }
}

/// The worker thread; joined after every camera has dropped its handle.
pub struct DetectorWorker {
    thread: Option<JoinHandle<()>>,
}

impl DetectorWorker {
    /// Loads one detector per distinct (model, options) of the config's cameras — every
    /// model error names its camera — and starts the worker. Returns a handle per camera, in
    /// config order.
    pub fn start(config: &AgentConfig) -> anyhow::Result<(DetectorWorker, Vec<CameraDetector>)> {
        let mut keys: Vec<String> = Vec::new();
        let mut detectors: Vec<Detector> = Vec::new();
        let mut slots = Vec::with_capacity(config.cameras.len());
        for cam in &config.cameras {
            let key = format!("{}|{:?}", cam.model, cam.detector);
            let slot = match keys.iter().position(|k| *k == key) {
                Some(slot) => slot,
                None => {
                    let det = load_detector(&cam.model, &cam.detector, &config.ort_lib)
                        .with_context(|| format!("camera {}", cam.id))?;
                    keys.push(key);
                    detectors.push(det);
                    detectors.len() - 1
                }
            };
            slots.push(slot);
        }
        let mut cameras_per_slot = vec![0usize; detectors.len()];
        for &s in &slots {
            cameras_per_slot[s] += 1;
        }
        // Bounded by the number of cameras: each has at most one request in flight.
        let (requests, rx) = mpsc::sync_channel::<Request>(config.cameras.len().max(1));
        let handles = slots
            .iter()
            .map(|&slot| {
                let (reply_tx, replies) = mpsc::sync_channel(1);
                CameraDetector {
                    slot,
                    labels: detectors[slot].labels().to_vec(),
                    requests: requests.clone(),
                    reply_tx,
                    replies,
                    buffer: Vec::with_capacity(256),
                }
            })
            .collect();
        drop(requests);
        let thread = std::thread::Builder::new()
            .name("detector".into())
            .spawn(move || serve(detectors, &cameras_per_slot, &rx))
            .context("starting the detector worker")?;
        Ok((DetectorWorker { thread: Some(thread) }, handles))
    }

    /// Waits for the worker to finish (it ends when every camera handle is gone).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves requests until every camera handle has been dropped.
fn serve(mut detectors: Vec<Detector>, cameras_per_slot: &[usize], rx: &Receiver<Request>) {
    let mut pending: VecDeque<Request> = VecDeque::new();
    let mut outputs: Vec<Vec<Detection>> = Vec::new();
    loop {
        let first = match pending.pop_front() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => return,
            },
        };
        let slot = first.slot;
        let mut batch = vec![first];
        if detectors[slot].batches() {
            collect_batch(&mut batch, &mut pending, rx, cameras_per_slot[slot]);
        }
        let detector = &mut detectors[slot];
        let views: Vec<_> = batch.iter().map(|r| r.frame.view()).collect();
        let result = detector.detect_batch(&views, &mut outputs);
        drop(views);
        let error = result.err().map(|e| e.to_string());
        for (i, mut request) in batch.into_iter().enumerate() {
            request.detections.clear();
            if let Some(found) = outputs.get(i) {
                request.detections.extend_from_slice(found);
            }
            // A camera that has gone away does not need its answer.
            let _ = request.reply.send(Reply { frame: request.frame, detections: request.detections, error: error.clone() });
        }
    }
}

/// Adds to `batch` the other cameras' requests for the same detector: those already waiting,
/// then new ones until all `cameras` are in or [`BATCH_WINDOW`] has passed. Requests for other
/// detectors wait in `pending`, in arrival order.
fn collect_batch(batch: &mut Vec<Request>, pending: &mut VecDeque<Request>, rx: &Receiver<Request>, cameras: usize) {
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
            Ok(r) if r.slot == slot => batch.push(r),
            Ok(r) => pending.push_back(r),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
}
