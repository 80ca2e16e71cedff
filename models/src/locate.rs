use std::path::PathBuf;

/// The ONNX Runtime version `scripts/setup.sh` installs (and `ort`'s `api-31` expects).
pub const ORT_VERSION: &str = "1.31.1";

/// Where set-up installs models and ONNX Runtime: `$ROADSIGHT_HOME`, else
/// `$XDG_CACHE_HOME/roadsight`, else `~/.cache/roadsight`.
pub fn roadsight_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROADSIGHT_HOME") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("roadsight")
}

/// The ONNX Runtime library to load: `$ROADSIGHT_ORT_LIB`, else `$ORT_DYLIB_PATH`, else the one
/// set-up installed.
pub fn default_ort_library() -> PathBuf {
    for var in ["ROADSIGHT_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(p) = std::env::var_os(var) {
            return PathBuf::from(p);
        }
    }
    roadsight_home().join("onnxruntime").join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// Folders searched, in order, for a bundled model's `.onnx` file.
pub fn model_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("ROADSIGHT_MODELS_DIR") {
        dirs.push(PathBuf::from(p));
    }
    dirs.push(roadsight_home().join("models"));
    dirs
}
