//! Object detection: the only module that knows ONNX Runtime (`ort`).
//!
//! A [`Detector`] owns one ONNX session (sessions run with `&mut self`: one per worker
//! thread), one reused input tensor and the preprocessing tables. At load it checks the ONNX
//! file against its manifest (sha256, input/output names and shapes) and names the model in
//! every error. Output decoding and NMS live in the pure [`decode`] module; tiling, regions
//! of interest and the seam-free merge in the pure [`tiles`] module.
//!
//! Input size: fixed by the manifest, set (`input_size`, models that take any multiple of
//! 32), or aspect-matched per frame (`input_long_side`, resolved at each call from the size
//! of the frame or tile by [`preprocess::auto_input_size`]; the tensor buffer is reused and
//! only grows).

pub mod decode;
pub mod preprocess;
pub mod tiles;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2, ArrayView4};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use roadsight_models::{Batch, Family, ModelManifest, SizePolicy};
use sha2::{Digest, Sha256};

use crate::frame::FrameView;
use crate::geometry::BBox;
use preprocess::{auto_input_size, InputLayout, Preprocessor};
use tiles::{Candidate, TilePlan};

/// Most views (frames or tiles) in one inference of a dynamic-batch model: bounds the input
/// buffer (8 × 416² × 3 floats ≈ 16 MB).
const MAX_BATCH: usize = 8;

/// One detected object in source-frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    /// Index into the model's label set (COCO-80 for the bundled models).
    pub class_id: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("ONNX Runtime library {path}: {message} (run scripts/setup.sh, or set ROADSIGHT_ORT_LIB)")]
    Runtime { path: PathBuf, message: String },
    #[error("model '{model}' ({path}): {message}")]
    Model { model: String, path: PathBuf, message: String },
    #[error("model '{model}': inference failed: {message}")]
    Inference { model: String, message: String },
}

/// The process's ONNX Runtime, loaded from a shared library once. ONNX Runtime allows one
/// environment per process; every [`Detector`] borrows it.
pub struct OrtRuntime {
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<OrtRuntime, String>> = OnceLock::new();

impl OrtRuntime {
    /// Loads `libonnxruntime` from `path` (first call wins; later calls return the same one).
    pub fn load(path: &Path) -> Result<&'static OrtRuntime, DetectError> {
        let loaded = RUNTIME.get_or_init(|| {
            if !path.exists() {
                return Err("not found".to_owned());
            }
            let builder = ort::init_from(path).map_err(|e| e.to_string())?;
            let env = builder.with_name("roadsight").with_telemetry(false).build().map_err(|e| e.to_string())?;
            Ok(OrtRuntime { env })
        });
        loaded.as_ref().map_err(|message| DetectError::Runtime { path: path.into(), message: message.clone() })
    }
}

/// Per-detector settings (defaults come from the manifest).
#[derive(Debug, Clone)]
pub struct DetectorOptions {
    /// Model input `(width, height)`; only for models whose manifest allows other sizes.
    pub input_size: Option<(u32, u32)>,
    /// Aspect-matched input for models that take any multiple of 32: the long side as near
    /// this as the frame (or tile) allows, never above its own size. Excludes `input_size`.
    pub input_long_side: Option<u32>,
    /// Region of interest and/or tiles, applied by [`Detector::detect`] and
    /// [`Detector::detect_batch`] (none: the whole frame in one view).
    pub tiling: Option<Arc<TilePlan>>,
    pub score_threshold: Option<f32>,
    pub nms_iou: Option<f32>,
    /// ONNX Runtime intra-op threads; 0 (the default): ONNX Runtime's own choice, one per
    /// physical core — right for a session alone. The agent runs one session per core with one
    /// thread each when it has a camera per core (two 1-thread sessions side by side outrun
    /// one 2-thread session: measured here).
    pub threads: usize,
    /// Let ONNX Runtime's intra-op threads spin while waiting for work (burns the idle
    /// core; only matters with more than one thread).
    pub spinning: bool,
    /// Verify the file's sha256 against the manifest at load.
    pub verify_sha256: bool,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            input_size: None,
            input_long_side: None,
            tiling: None,
            score_threshold: None,
            nms_iou: None,
            threads: 0,
            spinning: false,
            verify_sha256: true,
        }
    }
}

/// Time spent in each stage of the last [`Detector::detect`] call.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectTimings {
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

pub struct Detector {
    session: Session,
    manifest: ModelManifest,
    labels: Vec<String>,
    /// The manifest's (or configured) layout; with `auto_long_side` its size is the last used.
    layout: InputLayout,
    auto_long_side: Option<u32>,
    plan: Option<Arc<TilePlan>>,
    /// One image's input tensor, grown to the largest input size seen and reused.
    input: Vec<f32>,
    orig_size: Array2<i64>,
    pre: Preprocessor,
    detections: Vec<Detection>,
    score_threshold: f32,
    nms_iou: f32,
    timings: DetectTimings,
    /// Cross-frame batches (dynamic-batch models): images and original sizes, grown to the
    /// largest batch seen and reused.
    batch_input: Vec<f32>,
    batch_sizes: Vec<i64>,
    /// Tiled detection scratch (boxed: most detectors never tile).
    scratch: Box<TileScratch>,
}

/// Reused buffers of tiled detection: per-view detections, candidates, merged result.
#[derive(Default)]
struct TileScratch {
    view_out: Vec<Vec<Detection>>,
    candidates: Vec<Candidate>,
    merged: Vec<Detection>,
}

fn build_session(runtime: &OrtRuntime, path: &Path, threads: usize, spinning: bool) -> ort::Result<Session> {
    Ok(Session::builder(&runtime.env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(spinning)?
        .commit_from_file(path)?)
}

fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl Detector {
    pub fn load(runtime: &OrtRuntime, manifest: ModelManifest, options: &DetectorOptions) -> Result<Self, DetectError> {
        let model_err = |message: String| DetectError::Model {
            model: manifest.name.clone(),
            path: manifest.path.clone(),
            message,
        };
        if options.verify_sha256 {
            let got = sha256_hex(&manifest.path).map_err(|e| model_err(e.to_string()))?;
            if got != manifest.sha256 {
                return Err(model_err(format!(
                    "sha256 {got} does not match the manifest's {} (wrong or corrupt file)",
                    manifest.sha256
                )));
            }
        }
        let (width, height) = options.input_size.unwrap_or((manifest.input.width, manifest.input.height));
        if let Some(long) = options.input_long_side {
            if options.input_size.is_some() {
                return Err(model_err("input_size and input_long_side exclude each other".to_owned()));
            }
            if manifest.input.sizes != SizePolicy::MultipleOf32 {
                return Err(model_err(format!(
                    "input_long_side {long} needs a model that takes any multiple of 32 (sizes = \"multiple_of_32\"); this one only takes {}×{}",
                    manifest.input.width, manifest.input.height
                )));
            }
            if long < 32 {
                return Err(model_err(format!("input_long_side {long} is below 32")));
            }
        }
        match manifest.input.sizes {
            SizePolicy::Fixed if (width, height) != (manifest.input.width, manifest.input.height) => {
                return Err(model_err(format!(
                    "input size {width}×{height} requested, but this model only takes {}×{}",
                    manifest.input.width, manifest.input.height
                )))
            }
            SizePolicy::MultipleOf32 if width % 32 != 0 || height % 32 != 0 || width == 0 || height == 0 => {
                return Err(model_err(format!("input size {width}×{height}: both sides must be multiples of 32")))
            }
            _ => {}
        }
        let session = build_session(runtime, &manifest.path, options.threads, options.spinning)
            .map_err(|e| model_err(format!("not a loadable ONNX model: {e}")))?;
        check_io(&session, &manifest).map_err(model_err)?;
        let layout = InputLayout {
            width,
            height,
            colour: manifest.input.colour,
            normalise: manifest.input.normalise,
            resize: manifest.input.resize,
            pad_value: manifest.input.pad_value,
        };
        Ok(Detector {
            session,
            labels: manifest.label_names(),
            score_threshold: options.score_threshold.unwrap_or(manifest.defaults.score_threshold),
            nms_iou: options.nms_iou.unwrap_or(manifest.defaults.nms_iou),
            layout,
            auto_long_side: options.input_long_side,
            plan: options.tiling.clone(),
            input: vec![0.0; 3 * width as usize * height as usize],
            orig_size: Array2::zeros((1, 2)),
            pre: Preprocessor::default(),
            detections: Vec::with_capacity(256),
            timings: DetectTimings::default(),
            batch_input: Vec::new(),
            batch_sizes: Vec::new(),
            scratch: Box::default(),
            manifest,
        })
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Label name of a class id (`"?"` if out of range).
    pub fn label(&self, class_id: u16) -> &str {
        self.labels.get(class_id as usize).map_or("?", String::as_str)
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The model input size (with `input_long_side`: the last one used, the manifest's
    /// before the first frame).
    pub fn input_size(&self) -> (u32, u32) {
        (self.layout.width, self.layout.height)
    }

    /// The input size a `width` × `height` frame (or tile) runs at.
    pub fn input_size_for(&self, width: u32, height: u32) -> (u32, u32) {
        match self.auto_long_side {
            Some(long) => auto_input_size(width, height, long),
            None => (self.layout.width, self.layout.height),
        }
    }

    /// The tile plan applied by [`Detector::detect`] (from [`DetectorOptions::tiling`]).
    pub fn plan(&self) -> Option<&Arc<TilePlan>> {
        self.plan.as_ref()
    }

    fn layout_for(&self, frame: &FrameView<'_>) -> InputLayout {
        let (width, height) = self.input_size_for(frame.width, frame.height);
        InputLayout { width, height, ..self.layout }
    }

    pub fn score_threshold(&self) -> f32 {
        self.score_threshold
    }

    pub fn timings(&self) -> DetectTimings {
        self.timings
    }

    /// Whether [`Detector::detect_batch`] runs several frames in one inference.
    pub fn batches(&self) -> bool {
        self.manifest.input.batch == Batch::Dynamic && self.manifest.family == Family::Detr
    }

    /// Detects objects in several frames (of any sizes), each through this detector's tile
    /// plan if it has one. `out[i]` receives frame `i`'s detections (cleared first), in frame
    /// pixels. Views (frames or tiles) run in one inference when the model has a dynamic
    /// batch dimension ([`Detector::batches`]), else one per view. Timings are for the lot.
    pub fn detect_batch(&mut self, frames: &[FrameView<'_>], out: &mut Vec<Vec<Detection>>) -> Result<(), DetectError> {
        let plan = self.plan.clone();
        let plans: Vec<Option<&TilePlan>> = frames.iter().map(|_| plan.as_deref()).collect();
        self.detect_batch_planned(frames, &plans, out)
    }

    /// Detects objects in one frame through `plan` (its ROI and tiles; see [`tiles`]), tiles
    /// batched when the model batches; `out` (cleared first) gets the merged boxes in frame
    /// pixels.
    pub fn detect_tiled(&mut self, frame: &FrameView<'_>, plan: &TilePlan, out: &mut Vec<Detection>) -> Result<(), DetectError> {
        let mut outs = vec![std::mem::take(out)];
        let result = self.detect_batch_planned(std::slice::from_ref(frame), &[Some(plan)], &mut outs);
        *out = outs.pop().unwrap_or_default();
        result
    }

    /// [`Detector::detect_batch`] with a plan per frame (`None`: the whole frame, as is).
    /// Every frame's views go through the model together, in batches of up to
    /// [`MAX_BATCH`] for batching models, then each planned frame's boxes are merged.
    pub fn detect_batch_planned(
        &mut self,
        frames: &[FrameView<'_>],
        plans: &[Option<&TilePlan>],
        out: &mut Vec<Vec<Detection>>,
    ) -> Result<(), DetectError> {
        out.resize_with(frames.len(), Vec::new);
        out.iter_mut().for_each(Vec::clear);
        if plans.iter().all(Option::is_none) {
            return self.run_views(frames, out);
        }
        // Each frame's views (zero-copy crops), remembering whose they are.
        let mut crops: Vec<FrameView<'_>> = Vec::new();
        let mut owners: Vec<(usize, tiles::View)> = Vec::new();
        for (i, (frame, plan)) in frames.iter().zip(plans).enumerate() {
            let views = match plan {
                Some(p) => tiles::plan_views(frame.width, frame.height, p),
                None => vec![tiles::View {
                    rect: tiles::PixelRect { x: 0, y: 0, width: frame.width, height: frame.height },
                    seams: 0,
                }],
            };
            for v in views {
                let crop = frame.crop(v.rect.x, v.rect.y, v.rect.width, v.rect.height).ok_or_else(|| DetectError::Inference {
                    model: self.manifest.name.clone(),
                    message: format!("tile {:?} lies outside the {}×{} frame", v.rect, frame.width, frame.height),
                })?;
                crops.push(crop);
                owners.push((i, v));
            }
        }
        let mut view_out = std::mem::take(&mut self.scratch.view_out);
        let result = self.run_views(&crops, &mut view_out);
        let mut total = self.timings;
        let t0 = Instant::now();
        if result.is_ok() {
            let mut candidates = std::mem::take(&mut self.scratch.candidates);
            for (i, (frame, plan)) in frames.iter().zip(plans).enumerate() {
                candidates.clear();
                for (k, ((owner, view), dets)) in owners.iter().zip(&view_out).enumerate() {
                    if *owner == i {
                        tiles::collect(k, view, dets, frame.width, frame.height, &mut candidates);
                    }
                }
                match plan {
                    Some(p) => tiles::merge(&mut candidates, &p.merge, &mut out[i]),
                    None => out[i].extend(candidates.iter().map(|c| c.det)),
                }
            }
            self.scratch.candidates = candidates;
        }
        self.scratch.view_out = view_out;
        total.postprocess += t0.elapsed();
        self.timings = total;
        result
    }

    /// Runs the model on each view as is: in batches for batching models (views whose input
    /// sizes agree), else one by one. Timings are summed over the runs.
    fn run_views(&mut self, views: &[FrameView<'_>], out: &mut Vec<Vec<Detection>>) -> Result<(), DetectError> {
        out.resize_with(views.len(), Vec::new);
        out.iter_mut().for_each(Vec::clear);
        let mut total = DetectTimings::default();
        let mut start = 0;
        while start < views.len() {
            let mut end = start + 1;
            if self.batches() {
                let layout = self.layout_for(&views[start]);
                while end < views.len() && end - start < MAX_BATCH && self.layout_for(&views[end]) == layout {
                    end += 1;
                }
            }
            if end - start == 1 {
                let dets = self.detect_view(&views[start])?;
                out[start].extend_from_slice(dets);
            } else {
                self.run_batch(&views[start..end], &mut out[start..end])?;
            }
            total.preprocess += self.timings.preprocess;
            total.inference += self.timings.inference;
            total.postprocess += self.timings.postprocess;
            start = end;
        }
        self.timings = total;
        Ok(())
    }

    /// One inference over several views of the same input size (dynamic-batch DETR models).
    fn run_batch(&mut self, frames: &[FrameView<'_>], out: &mut [Vec<Detection>]) -> Result<(), DetectError> {
        let t0 = Instant::now();
        let n = frames.len();
        let layout = self.layout_for(&frames[0]);
        self.layout = layout;
        let (w, h) = (layout.width as usize, layout.height as usize);
        let chw = 3 * w * h;
        if self.batch_input.len() < n * chw {
            self.batch_input.resize(n * chw, 0.0);
        }
        if self.batch_sizes.len() < n * 2 {
            self.batch_sizes.resize(n * 2, 0);
        }
        for (i, frame) in frames.iter().enumerate() {
            self.pre.run(frame, &layout, &mut self.batch_input[i * chw..(i + 1) * chw]);
            self.batch_sizes[2 * i] = frame.width as i64;
            self.batch_sizes[2 * i + 1] = frame.height as i64;
        }
        let t1 = Instant::now();
        let model = &self.manifest.name;
        let infer_err = |e: ort::Error| DetectError::Inference { model: model.clone(), message: e.to_string() };
        let shape_err = |e: ndarray::ShapeError| DetectError::Inference { model: model.clone(), message: e.to_string() };
        let images = ArrayView4::from_shape((n, 3, h, w), &self.batch_input[..n * chw]).map_err(shape_err)?;
        let sizes = ArrayView2::from_shape((n, 2), &self.batch_sizes[..n * 2]).map_err(shape_err)?;
        let image = TensorRef::from_array_view(images).map_err(infer_err)?;
        let names = &self.manifest.output.names;
        let outputs = match &self.manifest.input.orig_size_input {
            Some(orig_name) => {
                let sizes = TensorRef::from_array_view(sizes).map_err(infer_err)?;
                self.session
                    .run(ort::inputs![self.manifest.input.name.as_str() => image, orig_name.as_str() => sizes])
                    .map_err(infer_err)?
            }
            None => self.session.run(ort::inputs![self.manifest.input.name.as_str() => image]).map_err(infer_err)?,
        };
        let t2 = Instant::now();
        let decode_err = |message: String| DetectError::Inference { model: model.clone(), message };
        let (_, labels) = outputs[names[0].as_str()].try_extract_tensor::<i64>().map_err(infer_err)?;
        let (_, boxes) = outputs[names[1].as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
        let (_, scores) = outputs[names[2].as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
        let k = scores.len() / n;
        for (i, (frame, dets)) in frames.iter().zip(out.iter_mut()).enumerate() {
            decode::decode_detr(
                &labels[i * k..(i + 1) * k],
                &boxes[i * k * 4..(i + 1) * k * 4],
                &scores[i * k..(i + 1) * k],
                frame.width as f32,
                frame.height as f32,
                self.score_threshold,
                dets,
            )
            .map_err(decode_err)?;
            decode::nms(dets, 0.9, true);
        }
        drop(outputs);
        let t3 = Instant::now();
        self.timings = DetectTimings { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 };
        Ok(())
    }

    /// Detects objects in one frame (through this detector's tile plan if it has one). The
    /// returned slice is valid until the next call.
    pub fn detect(&mut self, frame: &FrameView<'_>) -> Result<&[Detection], DetectError> {
        match self.plan.clone() {
            Some(plan) => {
                let mut merged = std::mem::take(&mut self.scratch.merged);
                let result = self.detect_tiled(frame, &plan, &mut merged);
                self.scratch.merged = merged;
                result.map(|()| self.scratch.merged.as_slice())
            }
            None => self.detect_view(frame),
        }
    }

    /// One inference on `frame` as is (no tiles).
    fn detect_view(&mut self, frame: &FrameView<'_>) -> Result<&[Detection], DetectError> {
        let t0 = Instant::now();
        let layout = self.layout_for(frame);
        self.layout = layout;
        let (w, h) = (layout.width as usize, layout.height as usize);
        let chw = 3 * w * h;
        if self.input.len() < chw {
            self.input.resize(chw, 0.0);
        }
        let transform = self.pre.run(frame, &layout, &mut self.input[..chw]);
        self.orig_size[[0, 0]] = frame.width as i64;
        self.orig_size[[0, 1]] = frame.height as i64;
        let t1 = Instant::now();
        let model = &self.manifest.name;
        let infer_err = |e: ort::Error| DetectError::Inference { model: model.clone(), message: e.to_string() };
        let shape_err = |e: ndarray::ShapeError| DetectError::Inference { model: model.clone(), message: e.to_string() };
        let view = ArrayView4::from_shape((1, 3, h, w), &self.input[..chw]).map_err(shape_err)?;
        let image = TensorRef::from_array_view(view).map_err(infer_err)?;
        let outputs = match (&self.manifest.family, &self.manifest.input.orig_size_input) {
            (Family::Detr, Some(orig_name)) => {
                let sizes = TensorRef::from_array_view(&self.orig_size).map_err(infer_err)?;
                self.session
                    .run(ort::inputs![self.manifest.input.name.as_str() => image, orig_name.as_str() => sizes])
                    .map_err(infer_err)?
            }
            _ => self.session.run(ort::inputs![self.manifest.input.name.as_str() => image]).map_err(infer_err)?,
        };
        let t2 = Instant::now();
        self.detections.clear();
        let names = &self.manifest.output.names;
        let decode_err = |message: String| DetectError::Inference { model: model.clone(), message };
        match self.manifest.family {
            Family::Yolox => {
                let (shape, data) = outputs[names[0].as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
                let row_len = *shape.last().unwrap_or(&0) as usize;
                decode::decode_yolox(
                    data,
                    row_len,
                    layout.width,
                    layout.height,
                    &transform,
                    self.score_threshold,
                    &mut self.detections,
                )
                .map_err(decode_err)?;
                drop(outputs);
                decode::nms(&mut self.detections, self.nms_iou, true);
            }
            Family::Detr => {
                let (_, labels) = outputs[names[0].as_str()].try_extract_tensor::<i64>().map_err(infer_err)?;
                let (_, boxes) = outputs[names[1].as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
                let (_, scores) = outputs[names[2].as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
                decode::decode_detr(
                    labels,
                    boxes,
                    scores,
                    frame.width as f32,
                    frame.height as f32,
                    self.score_threshold,
                    &mut self.detections,
                )
                .map_err(decode_err)?;
                drop(outputs);
                // DETR has no NMS in the graph's sense, but the same object can come out
                // twice under one label; drop those exact repeats.
                decode::nms(&mut self.detections, 0.9, true);
            }
        }
        let t3 = Instant::now();
        self.timings = DetectTimings { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 };
        Ok(&self.detections)
    }
}

/// Checks the session's inputs and outputs against the manifest.
fn check_io(session: &Session, m: &ModelManifest) -> Result<(), String> {
    let inputs: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let mut expected_inputs = vec![m.input.name.as_str()];
    if let Some(o) = &m.input.orig_size_input {
        expected_inputs.push(o.as_str());
    }
    let mut sorted_in = inputs.clone();
    sorted_in.sort_unstable();
    expected_inputs.sort_unstable();
    if sorted_in != expected_inputs {
        return Err(format!("the ONNX file has inputs {inputs:?}, the manifest says {expected_inputs:?}"));
    }
    let mut sorted_out = outputs.clone();
    sorted_out.sort_unstable();
    let mut expected_out: Vec<&str> = m.output.names.iter().map(String::as_str).collect();
    expected_out.sort_unstable();
    if sorted_out != expected_out {
        return Err(format!("the ONNX file has outputs {outputs:?}, the manifest says {expected_out:?}"));
    }
    let image = session.inputs().iter().find(|o| o.name() == m.input.name).ok_or("no image input")?;
    let shape: Vec<i64> = image.dtype().tensor_shape().map(|s| s.to_vec()).ok_or("image input is not a tensor")?;
    if shape.len() != 4 || (shape[1] != 3 && shape[1] != -1) {
        return Err(format!("image input shape {shape:?}, expected [N, 3, H, W]"));
    }
    let batch_ok = match m.input.batch {
        Batch::Fixed => shape[0] == 1 || shape[0] == -1,
        Batch::Dynamic => shape[0] == -1,
    };
    if !batch_ok {
        return Err(format!("image input batch dimension {} disagrees with manifest batch = {:?}", shape[0], m.input.batch));
    }
    let (h, w) = (shape[2], shape[3]);
    match m.input.sizes {
        SizePolicy::Fixed if (h, w) != (m.input.height as i64, m.input.width as i64) => Err(format!(
            "image input is {w}×{h}, the manifest says {}×{}",
            m.input.width, m.input.height
        )),
        SizePolicy::MultipleOf32 if h != -1 || w != -1 => {
            Err(format!("image input is fixed at {w}×{h}, the manifest says any multiple of 32"))
        }
        _ => Ok(()),
    }
}
