//! Model manifests and the places where models and ONNX Runtime are found.
//!
//! A manifest (`models/<name>.toml`) says everything the detector needs to use an ONNX file
//! correctly: its sha256, input size and layout, colour order, normalisation, resize policy,
//! output family and label set. The manifests of the bundled models are compiled in; a user
//! model is a `.toml` manifest next to (or naming) its `.onnx` file.
//!
//! Set-up (`scripts/setup.sh`) puts models and `libonnxruntime` under [`roadsight_home`], so a
//! user never has to export anything; `ROADSIGHT_MODELS_DIR` and `ROADSIGHT_ORT_LIB` override.

mod locate;
mod manifest;

pub use locate::{default_ort_library, model_search_dirs, roadsight_home, ORT_VERSION};
pub use manifest::{
    Batch, Colour, Defaults, Family, InputSpec, ManifestError, ModelManifest, Normalise, OutputSpec, Resize, SizePolicy,
};

/// COCO-80 label names, index 0–79, as the bundled models number them.
pub const COCO80_LABELS: &str = include_str!("../coco80_labels.txt");

/// The label names of a label set (only `coco80` is defined).
pub fn labels(set: &str) -> Option<Vec<String>> {
    match set {
        "coco80" => Some(COCO80_LABELS.lines().map(str::to_owned).collect()),
        _ => None,
    }
}
