use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::locate::model_search_dirs;

/// The bundled manifests, compiled in: (name, TOML text).
const BUILT_IN: [(&str, &str); 4] = [
    ("yolox_nano", include_str!("../yolox_nano.toml")),
    ("yolox_nano_dynamic_hw", include_str!("../yolox_nano_dynamic_hw.toml")),
    ("deimv2_femto", include_str!("../deimv2_femto.toml")),
    ("deimv2_atto", include_str!("../deimv2_atto.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("unknown model '{name}' (bundled models: {known}); or give a path to an .onnx file with a .toml manifest beside it")]
    UnknownModel { name: String, known: String },
    #[error("model '{name}': file {file} not found in {searched} (run scripts/setup.sh, or set ROADSIGHT_MODELS_DIR)")]
    FileNotFound { name: String, file: String, searched: String },
    #[error("model file {path}: no manifest {manifest} beside it (a manifest says the input format and output family)")]
    NoManifest { path: PathBuf, manifest: PathBuf },
    #[error("model manifest {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("model manifest {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// What an ONNX detector file is and how to feed and read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub name: String,
    pub file: String,
    pub sha256: String,
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub derived_from: Option<String>,
    pub license: String,
    pub family: Family,
    pub labels: String,
    pub input: InputSpec,
    pub output: OutputSpec,
    pub defaults: Defaults,
    /// Where the `.onnx` file is (resolved, not part of the TOML).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Output decoding family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// YOLOX raw grid `[1, cells, 5 + classes]` (sigmoided obj/cls), needs grid decoding + NMS.
    Yolox,
    /// DETR-style: `labels [N,Q]`, `boxes [N,Q,4]` (x1,y1,x2,y2 source pixels), `scores [N,Q]`.
    Detr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Pixel values as 0–255 floats.
    #[serde(rename = "raw_0_255")]
    Raw0To255,
    /// Pixel values divided by 255.
    #[serde(rename = "unit_0_1")]
    Unit0To1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Keep the aspect ratio, paste at the top-left of a canvas filled with `pad_value`.
    LetterboxTopLeft,
    /// Plain resize to the input size (aspect not kept).
    Stretch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizePolicy {
    /// Only `width` × `height`.
    Fixed,
    /// Any size whose sides are multiples of 32 (`width` × `height` is the default).
    #[serde(rename = "multiple_of_32")]
    MultipleOf32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Batch {
    Fixed,
    Dynamic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub sizes: SizePolicy,
    pub batch: Batch,
    pub colour: Colour,
    pub normalise: Normalise,
    pub resize: Resize,
    pub pad_value: u8,
    /// Name of the `[N, 2]` int64 (width, height) input of DETR exports.
    #[serde(default)]
    pub orig_size_input: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub score_threshold: f32,
    pub nms_iou: f32,
}

impl ModelManifest {
    /// Parses a manifest's TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ManifestError> {
        let m: ModelManifest =
            toml::from_str(text).map_err(|e| ManifestError::Invalid { origin: origin.into(), message: e.to_string() })?;
        m.check(origin)?;
        Ok(m)
    }

    fn check(&self, origin: &str) -> Result<(), ManifestError> {
        let invalid = |message: String| ManifestError::Invalid { origin: origin.into(), message };
        if crate::labels(&self.labels).is_none() {
            return Err(invalid(format!("unknown label set '{}' (known: coco80)", self.labels)));
        }
        if self.input.width == 0 || self.input.height == 0 {
            return Err(invalid("input.width and input.height must be > 0".into()));
        }
        if self.input.sizes == SizePolicy::MultipleOf32 && (self.input.width % 32 != 0 || self.input.height % 32 != 0) {
            return Err(invalid("input size must be a multiple of 32 for sizes = \"multiple_of_32\"".into()));
        }
        let expected_outputs = match self.family {
            Family::Yolox => 1,
            Family::Detr => 3,
        };
        if self.output.names.len() != expected_outputs {
            return Err(invalid(format!(
                "family {:?} has {expected_outputs} output(s), manifest lists {}",
                self.family,
                self.output.names.len()
            )));
        }
        if self.family == Family::Detr && self.input.orig_size_input.is_none() {
            return Err(invalid("family detr needs input.orig_size_input".into()));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("sha256 must be 64 hex digits".into()));
        }
        Ok(())
    }

    /// Names of the bundled models.
    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(n, _)| *n).collect()
    }

    /// Resolves a bundled model name, a path to an `.onnx` file (manifest `<stem>.toml` beside
    /// it), or a path to a manifest `.toml` (its `file` relative to the manifest's folder).
    pub fn resolve(name_or_path: &str) -> Result<Self, ManifestError> {
        let as_path = Path::new(name_or_path);
        let ext = as_path.extension().and_then(|e| e.to_str());
        match ext {
            Some("onnx") => {
                let manifest = as_path.with_extension("toml");
                if !manifest.exists() {
                    return Err(ManifestError::NoManifest { path: as_path.into(), manifest });
                }
                let mut m = Self::load_file(&manifest)?;
                m.path = as_path.to_path_buf();
                Ok(m)
            }
            Some("toml") => {
                let mut m = Self::load_file(as_path)?;
                m.path = as_path.parent().unwrap_or(Path::new(".")).join(&m.file);
                Ok(m)
            }
            _ => Self::built_in(name_or_path),
        }
    }

    fn load_file(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.into(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn built_in(name: &str) -> Result<Self, ManifestError> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name).ok_or_else(|| ManifestError::UnknownModel {
            name: name.into(),
            known: Self::built_in_names().join(", "),
        })?;
        let mut m = Self::parse(text, &format!("models/{name}.toml"))?;
        let dirs = model_search_dirs();
        m.path = dirs.iter().map(|d| d.join(&m.file)).find(|p| p.exists()).ok_or_else(|| ManifestError::FileNotFound {
            name: name.into(),
            file: m.file.clone(),
            searched: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        })?;
        Ok(m)
    }

    pub fn label_names(&self) -> Vec<String> {
        crate::labels(&self.labels).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_manifests_parse() {
        for (name, text) in BUILT_IN {
            let m = ModelManifest::parse(text, name).expect(name);
            assert_eq!(m.name, name);
        }
    }

    #[test]
    fn unknown_model_names_the_known_ones() {
        let err = ModelManifest::resolve("yolov99").expect_err("unknown");
        let msg = err.to_string();
        assert!(msg.contains("yolov99") && msg.contains("yolox_nano"), "{msg}");
    }

    #[test]
    fn onnx_without_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let onnx = dir.path().join("mine.onnx");
        std::fs::write(&onnx, b"x").expect("write");
        let msg = ModelManifest::resolve(onnx.to_str().expect("utf8")).expect_err("no manifest").to_string();
        assert!(msg.contains("mine.toml"), "{msg}");
    }

    #[test]
    fn invalid_manifest_names_file_and_field() {
        let text = BUILT_IN[0].1.replace("family = \"yolox\"", "family = \"ssd\"");
        let msg = ModelManifest::parse(&text, "x.toml").expect_err("bad").to_string();
        assert!(msg.contains("x.toml") && msg.contains("family"), "{msg}");
    }
}
