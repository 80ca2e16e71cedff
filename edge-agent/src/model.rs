//! Resolving a model name or path and loading it on the process's ONNX Runtime.

use std::path::Path;

use roadsight_models::ModelManifest;
use roadsight_pipeline::detect::{Detector, DetectorOptions, OrtRuntime};

pub fn load_detector(model: &str, options: &DetectorOptions, ort_lib: &Path) -> anyhow::Result<Detector> {
    let manifest = ModelManifest::resolve(model)?;
    let runtime = OrtRuntime::load(ort_lib)?;
    let detector = Detector::load(runtime, manifest, options)?;
    let (w, h) = detector.input_size();
    tracing::debug!(model, "loaded at {w}×{h}");
    Ok(detector)
}
