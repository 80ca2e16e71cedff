//! The running cameras: one worker thread each, started, stopped and replaced one at a time
//! — at start, and when a reload adds, removes or changes a camera, without touching the
//! others.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::camera::{CameraSummary, CameraWorker, Shared};
use super::detection::DetectorPool;
use crate::config::CameraConfig;

struct RunningCamera {
    /// The config it runs with, as text: a reload restarts the camera when this differs.
    fingerprint: String,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<CameraSummary>>,
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    /// Cameras of the new config that could not start (e.g. a model that does not load).
    pub failed: Vec<String>,
}

pub struct CameraSet {
    shared: Arc<Shared>,
    detectors: DetectorPool,
    ort_lib: PathBuf,
    running: BTreeMap<String, RunningCamera>,
    finished: Vec<(String, anyhow::Result<CameraSummary>)>,
    bars: MultiProgress,
    style: ProgressStyle,
    workers: usize,
    expected_cameras: usize,
}

impl CameraSet {
    /// `expected_cameras`: the config's cameras, for the sessions' thread counts.
    pub fn new(shared: Arc<Shared>, ort_lib: PathBuf, detector_workers: usize, expected_cameras: usize) -> anyhow::Result<Self> {
        let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {percent:>3}% {msg}")
            .expect("valid template")
            .progress_chars("=> ");
        Ok(CameraSet {
            shared,
            detectors: DetectorPool::start(detector_workers)?,
            workers: detector_workers.max(1),
            expected_cameras,
            ort_lib,
            running: BTreeMap::new(),
            finished: Vec::new(),
            bars: MultiProgress::new(),
            style,
        })
    }

    /// Starts a camera: attaches it to the shared detector (loading its model if new: that
    /// error names the camera) and spawns its worker.
    pub fn start(&mut self, mut cam: CameraConfig) -> anyhow::Result<()> {
        // What a reload compares: the camera as configured (before the agent's choices below).
        let fingerprint = format!("{cam:?}");
        // Sessions load once per model set-up and worker; their thread count is fixed then.
        let threads = |t| DetectorPool::session_threads(t, self.workers, self.expected_cameras);
        cam.detector.threads = threads(cam.detector.threads);
        if let Some(night) = &mut cam.night_detector {
            night.threads = threads(night.threads);
        }
        let detector = self.detectors.attach_with_night(&cam.id, &cam.model, &cam.detector, cam.night_detector.as_ref(), &self.ort_lib)?;
        let id = cam.id.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let bar = self.bars.add(ProgressBar::new(0).with_style(self.style.clone()).with_prefix(id.clone()));
        self.shared.telemetry.register(&id);
        let handle = {
            let (shared, stop) = (Arc::clone(&self.shared), Arc::clone(&stop));
            let cam = Arc::new(cam);
            std::thread::Builder::new()
                .name(format!("cam-{id}"))
                .spawn(move || CameraWorker::new(cam, shared, stop, detector, bar)?.run())
                .with_context(|| format!("camera {id}: starting its worker"))?
        };
        self.running.insert(id, RunningCamera { fingerprint, stop, handle });
        Ok(())
    }

    /// Stops one camera and waits for its last events (counts, `stopped` status).
    fn stop(&mut self, id: &str) {
        if let Some(cam) = self.running.remove(id) {
            cam.stop.store(true, Ordering::Relaxed);
            let result = cam.handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("camera worker panicked")));
            self.finished.push((id.to_owned(), result));
        }
    }

    /// Brings the running cameras in line with `cameras`: stops the removed ones, restarts
    /// the changed ones, starts the new ones; the unchanged ones keep running untouched.
    pub fn reconcile(&mut self, cameras: Vec<CameraConfig>) -> Reconciled {
        let mut done = Reconciled::default();
        let wanted: Vec<&str> = cameras.iter().map(|c| c.id.as_str()).collect();
        let gone: Vec<String> = self.running.keys().filter(|id| !wanted.contains(&id.as_str())).cloned().collect();
        for id in gone {
            self.stop(&id);
            self.shared.telemetry.forget(&id);
            done.removed.push(id);
        }
        for cam in cameras {
            let id = cam.id.clone();
            match self.running.get(&id) {
                Some(r) if r.fingerprint == format!("{cam:?}") => continue,
                Some(_) => {
                    self.stop(&id);
                    done.restarted.push(id.clone());
                }
                None => done.added.push(id.clone()),
            }
            if let Err(e) = self.start(cam) {
                tracing::error!("{e:#}");
                done.failed.push(format!("{e:#}"));
            }
        }
        done
    }

    /// Collects the workers that ended by themselves (file sources at their end, fatal
    /// errors); true while any camera still runs.
    pub fn reap(&mut self) -> bool {
        let ended: Vec<String> = self.running.iter().filter(|(_, c)| c.handle.is_finished()).map(|(id, _)| id.clone()).collect();
        for id in ended {
            self.stop(&id);
        }
        !self.running.is_empty()
    }

    /// Stops every camera (all at once, then waits for each), then the detector worker;
    /// returns every camera's outcome, in the order they ended.
    pub fn finish(mut self) -> Vec<(String, anyhow::Result<CameraSummary>)> {
        for cam in self.running.values() {
            cam.stop.store(true, Ordering::Relaxed);
        }
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.stop(&id);
        }
        self.detectors.join();
        self.finished
    }
}
