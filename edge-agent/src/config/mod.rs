//! Agent configuration: raw TOML ([`raw`]) → validated types (this module) → runtime objects
//! (built by `run`). Validation reports every problem at once, each with its key path.

mod evidence;
mod incidents;
pub mod raw;
pub mod rules;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use roadsight_events::{Location, ObjectClass};
use roadsight_pipeline::analytics::{Anchor, AnalyticsConfig, LineSpec, LocalHours, StreamClock, ZoneSpec};
use roadsight_pipeline::signal_lamp::SignalSpec;
use roadsight_pipeline::detect::tiles::{MergeOptions, NormRect, TileGrid, TilePlan};
use roadsight_pipeline::detect::DetectorOptions;
use roadsight_pipeline::source::{redact_uri, Pacing};
use roadsight_pipeline::track::TrackerConfig;

use roadsight_mqtt_link::{BrokerSettings, BrokerUrl, Credentials, TlsError, TlsFile, TlsFiles};
use roadsight_pipeline::analytics::fusion::{TwoWheelerConfig, ZoneKind};
pub use evidence::ClipSettings;
use rules::{ClassThresholds, DetectionRules, NightProfile};

/// Default origin of stream time for file sources: replaying a clip gives identical times.
pub const DEFAULT_FILE_EPOCH: &str = "2020-01-01T00:00:00Z";
pub const DEFAULT_MODEL: &str = "yolox_nano";
/// Largest `outbox_max_mb`: 1 TiB.
pub const MAX_OUTBOX_MB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {path}: {} error(s): {}", .errors.len(), .errors.join("; "))]
    Invalid { path: PathBuf, errors: Vec<String> },
    #[error("{}", no_camera(.id.as_deref()))]
    NoCamera { id: Option<String> },
}

fn no_camera(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("no camera '{id}' in the config"),
        None => "the config has no camera".to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub site_id: String,
    pub agent_id: String,
    pub state_dir: PathBuf,
    pub ort_lib: PathBuf,
    pub outbox_max_bytes: i64,
    /// Detector worker threads (none: one per core).
    pub detector_workers: Option<usize>,
    /// Where to serve `/metrics` and `/health` (none: not served).
    pub http_listen: Option<std::net::SocketAddr>,
    /// The broker of `[mqtt]` (delivery adds the status topic of `site_id`/`agent_id`).
    pub mqtt: Option<BrokerSettings>,
    pub cameras: Vec<CameraConfig>,
}

impl AgentConfig {
    /// Camera `id`, or the first camera when `id` is `None`.
    pub fn camera(&self, id: Option<&str>) -> Result<&CameraConfig, ConfigError> {
        let found = match id {
            Some(id) => self.cameras.iter().find(|c| c.id == id),
            None => self.cameras.first(),
        };
        found.ok_or_else(|| ConfigError::NoCamera { id: id.map(str::to_owned) })
    }
}

#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub id: String,
    pub name: Option<String>,
    /// Path or URI as configured (may hold credentials: log [`CameraConfig::display_source`]).
    pub source: String,
    pub pacing: Pacing,
    /// UTC of PTS 0 for file sources; `None` for live sources (fixed at stream start).
    pub clock_origin: Option<DateTime<Utc>>,
    pub location: Option<Location>,
    /// Bundled model name or path to a model file/manifest.
    pub model: String,
    pub detector: DetectorOptions,
    /// The detector at night when the night profile changes the input size (`[night]
    /// input_long_side`); `None`: the day's all the time.
    pub night_detector: Option<DetectorOptions>,
    pub classes: Vec<ObjectClass>,
    pub tracker: TrackerConfig,
    pub analytics: AnalyticsConfig,
    /// Signal lamps read from the camera's pixels (their phases feed the incident rules).
    pub signals: Vec<SignalSpec>,
    /// Signals whose phase the controller publishes over MQTT (ids).
    pub controller_signals: Vec<String>,
    /// Least stream time between two detected frames (`max_detect_fps`); `None`: every frame.
    pub min_detect_interval: Option<Duration>,
    /// Per-class thresholds, night profile, rider–bike fusion (applied by `FrameProcessor`).
    pub rules: DetectionRules,
    /// Evidence clips of incidents (`None`: off).
    pub evidence: Option<ClipSettings>,
}

impl CameraConfig {
    pub fn display_source(&self) -> String {
        redact_uri(&self.source)
    }

    /// The stream clock of this camera's source read as a file (`track`, the counts sweep):
    /// its `start_time`, else [`DEFAULT_FILE_EPOCH`] (also for a file played live).
    pub fn file_clock(&self) -> StreamClock {
        StreamClock { origin: self.clock_origin.unwrap_or_else(default_file_epoch) }
    }
}

/// [`DEFAULT_FILE_EPOCH`] as a time.
fn default_file_epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(DEFAULT_FILE_EPOCH).map_or(DateTime::UNIX_EPOCH, |t| t.with_timezone(&Utc))
}

/// Collects validation errors with their key paths.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn add(&mut self, key: impl std::fmt::Display, msg: impl std::fmt::Display) {
        self.0.push(format!("{key}: {msg}"));
    }
}

pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    parse(&text, path)
}

/// Parses and validates `text`, the content of the config file `path` (named in errors; its
/// folder resolves the relative paths in it).
pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
    let raw: raw::RawConfig =
        toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.into(), message: one_line(&e.to_string()) })?;
    let base = path.parent().unwrap_or(Path::new("."));
    validate(raw, base).map_err(|errors| ConfigError::Invalid { path: path.into(), errors })
}

fn one_line(s: &str) -> String {
    s.split('\n').map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('|')).collect::<Vec<_>>().join(" ")
}

fn default_state_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("ROADSIGHT_STATE_DIR") {
        return PathBuf::from(p);
    }
    std::env::var_os("HOME").map_or_else(|| PathBuf::from(".roadsight-state"), |h| PathBuf::from(h).join(".local/state/roadsight"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "edge-agent".into())
}

/// The `[mqtt]` section; `None` (with errors added) when it cannot be used.
fn mqtt_settings(errs: &mut Errors, m: raw::RawMqtt, agent_id: &str, base: &Path) -> Option<BrokerSettings> {
    let url = BrokerUrl::parse(&m.url).map_err(|e| errs.add("mqtt.url", e)).ok();
    if url.as_ref().is_some_and(|u| u.credentials.is_some()) {
        errs.add("mqtt.url", "put credentials in mqtt.username / mqtt.password, not in the URL");
    }
    let file = |f: &Option<String>| f.as_ref().map(|f| base.join(f));
    let files = TlsFiles { ca: file(&m.ca_file), client_cert: file(&m.client_cert_file), client_key: file(&m.client_key_file) };
    // A bad URL: the files are still checked, as for mqtts://.
    let tls = match files.client_config(url.as_ref().is_none_or(|u| u.tls)) {
        Ok(tls) => Some(tls),
        Err(tls_errors) => {
            tls_errors.into_iter().for_each(|e| errs.add(tls_key(&e), e));
            None
        }
    };
    if m.password.is_some() && m.username.is_none() {
        errs.add("mqtt.password", "set without mqtt.username");
    }
    let password = match (m.password, &m.password_file) {
        (Some(_), Some(_)) => {
            errs.add("mqtt.password_file", "excludes mqtt.password (give the password one way)");
            None
        }
        (Some(p), None) => Some(p),
        (None, Some(f)) => {
            if m.username.is_none() {
                errs.add("mqtt.password_file", "set without mqtt.username");
            }
            let path = base.join(f);
            match std::fs::read_to_string(&path) {
                Ok(text) => match text.lines().next().map(str::trim_end).filter(|p| !p.is_empty()) {
                    Some(p) => Some(p.to_owned()),
                    None => {
                        errs.add("mqtt.password_file", format!("{}: empty (the password is its first line)", path.display()));
                        None
                    }
                },
                Err(e) => {
                    errs.add("mqtt.password_file", format!("{}: {e}", path.display()));
                    None
                }
            }
        }
        (None, None) => None,
    };
    let mut settings = BrokerSettings::new(url?, m.client_id.unwrap_or_else(|| format!("roadsight-{agent_id}")), tls?);
    settings.credentials = m.username.map(|u| Credentials::new(u, password.unwrap_or_default()));
    settings.keep_alive = Duration::from_secs(m.keep_alive_secs.unwrap_or(15).max(5));
    Some(settings)
}

/// The `[mqtt]` key of the file a TLS error is about.
fn tls_key(e: &TlsError) -> &'static str {
    match e.file() {
        Some(TlsFile::Ca) => "mqtt.ca_file",
        Some(TlsFile::ClientCert) => "mqtt.client_cert_file",
        Some(TlsFile::ClientKey) => "mqtt.client_key_file",
        None => "mqtt.url",
    }
}

/// Checks a raw config; `base` resolves relative paths (the config file's folder).
pub fn validate(raw: raw::RawConfig, base: &Path) -> Result<AgentConfig, Vec<String>> {
    let mut errs = Errors::default();
    check_id(&mut errs, "site_id", &raw.site_id);
    if raw.cameras.is_empty() {
        errs.add("cameras", "at least one [[cameras]] entry is needed");
    }
    let mut seen = HashSet::new();
    let cameras: Vec<CameraConfig> = raw
        .cameras
        .into_iter()
        .enumerate()
        .filter_map(|(i, cam)| {
            let key = format!("cameras[{i}]");
            if !seen.insert(cam.id.clone()) {
                errs.add(format!("{key}.id"), format!("duplicate camera id '{}'", cam.id));
            }
            camera(&mut errs, &key, cam, base)
        })
        .collect();
    let agent_id = raw.agent_id.unwrap_or_else(hostname);
    check_id(&mut errs, "agent_id", &agent_id);
    let outbox_max_bytes = match raw.outbox_max_mb {
        Some(mb @ 1..=MAX_OUTBOX_MB) => (mb as i64) << 20,
        // Beyond it, the byte count would not fit the outbox's signed 64-bit size.
        Some(mb) => {
            errs.add("outbox_max_mb", format!("{mb} is outside [1, {MAX_OUTBOX_MB}]"));
            0
        }
        None => 1024 << 20,
    };
    let http_listen = raw.http_listen.as_deref().and_then(|a| {
        a.parse().map_err(|e| errs.add("http_listen", format!("'{a}' is not an address like 127.0.0.1:9108 ({e})"))).ok()
    });
    let mqtt = raw.mqtt.and_then(|m| mqtt_settings(&mut errs, m, &agent_id, base));
    let config = AgentConfig {
        site_id: raw.site_id,
        agent_id,
        outbox_max_bytes,
        http_listen,
        detector_workers: check_range(&mut errs, "detector_workers", raw.detector_workers, 1, 64),
        mqtt,
        state_dir: raw.state_dir.map_or_else(default_state_dir, |p| base.join(p)),
        ort_lib: raw.onnxruntime_lib.map_or_else(roadsight_models::default_ort_library, |p| base.join(p)),
        cameras,
    };
    if errs.0.is_empty() {
        Ok(config)
    } else {
        Err(errs.0)
    }
}

fn check_id(errs: &mut Errors, key: &str, id: &str) {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        errs.add(key, format!("'{id}' must be non-empty and use only letters, digits, '-' and '_' (it is used in MQTT topics)"));
    }
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(errs: &mut Errors, key: &str, v: Option<T>, lo: T, hi: T) -> Option<T> {
    let v = v?;
    // Written so that NaN (TOML's `nan`) is out of range too.
    if !(v >= lo && v <= hi) {
        errs.add(key, format!("{v} is outside [{lo}, {hi}]"));
    }
    Some(v)
}

fn positive_secs(errs: &mut Errors, key: &str, v: Option<f64>) -> Option<Duration> {
    let v = v?;
    if !(v > 0.0 && v.is_finite()) {
        errs.add(key, format!("{v} must be a positive number of seconds"));
        return None;
    }
    // A finite number can still be more seconds than a Duration holds (`1e300`).
    Duration::try_from_secs_f64(v).map_err(|_| errs.add(key, format!("{v} seconds is too long"))).ok()
}

fn classes(errs: &mut Errors, key: &str, names: Option<Vec<String>>) -> Vec<ObjectClass> {
    let Some(names) = names else { return Vec::new() };
    names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let c = ObjectClass::from_label(n);
            if c.is_none() {
                let known: Vec<&str> = ObjectClass::ALL.iter().map(|c| c.as_str()).collect();
                errs.add(format!("{key}[{i}]"), format!("unknown class '{n}' (known: {})", known.join(", ")));
            }
            c
        })
        .collect()
}

fn anchor(errs: &mut Errors, key: &str, v: Option<String>) -> Anchor {
    match v.as_deref() {
        None | Some("bottom_center") => Anchor::BottomCenter,
        Some("center") => Anchor::Center,
        Some(other) => {
            errs.add(key, format!("unknown anchor '{other}' (bottom_center or center)"));
            Anchor::BottomCenter
        }
    }
}

fn points(errs: &mut Errors, key: &str, pts: &[Vec<f64>]) -> Vec<(f32, f32)> {
    pts.iter()
        .enumerate()
        .map(|(i, p)| {
            if p.len() != 2 {
                errs.add(format!("{key}[{i}]"), format!("a point is [x, y], got {} numbers", p.len()));
                return (0.0, 0.0);
            }
            for (j, v) in p.iter().enumerate() {
                if !(0.0..=1.0).contains(v) {
                    errs.add(format!("{key}[{i}][{j}]"), format!("{v} is outside [0, 1] (coordinates are fractions of the frame)"));
                }
            }
            (p[0] as f32, p[1] as f32)
        })
        .collect()
}

fn is_network_uri(s: &str) -> bool {
    ["rtsp://", "rtsps://", "http://", "https://", "udp://", "srt://"].iter().any(|p| s.starts_with(p))
}

fn camera(errs: &mut Errors, key: &str, cam: raw::RawCamera, base: &Path) -> Option<CameraConfig> {
    check_id(errs, &format!("{key}.id"), &cam.id);
    let network = is_network_uri(&cam.source);
    let source = if cam.source.contains("://") {
        cam.source.clone()
    } else {
        let p = base.join(&cam.source);
        if !p.exists() {
            errs.add(format!("{key}.source"), format!("file {} not found", p.display()));
        }
        p.display().to_string()
    };
    let pacing = match cam.mode.as_deref() {
        None if network => Pacing::Latest,
        None | Some("file") => Pacing::EveryFrame,
        Some("live") => Pacing::Latest,
        Some(other) => {
            errs.add(format!("{key}.mode"), format!("unknown mode '{other}' (file or live)"));
            Pacing::EveryFrame
        }
    };
    let clock_origin = match (pacing, cam.start_time.as_deref()) {
        (Pacing::Latest, Some(_)) => {
            errs.add(format!("{key}.start_time"), "only file sources take a start_time (live streams use the time they start)");
            None
        }
        (Pacing::Latest, None) => None,
        (Pacing::EveryFrame, t) => match DateTime::parse_from_rfc3339(t.unwrap_or(DEFAULT_FILE_EPOCH)) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                errs.add(format!("{key}.start_time"), format!("not an RFC 3339 time: {e}"));
                None
            }
        },
    };
    if let Some(loc) = &cam.location {
        check_range(errs, &format!("{key}.location.lat"), Some(loc.lat), -90.0, 90.0);
        check_range(errs, &format!("{key}.location.lon"), Some(loc.lon), -180.0, 180.0);
    }
    let d = &cam.detector;
    let dk = format!("{key}.detector");
    let score = check_range(errs, &format!("{dk}.score_threshold"), d.score_threshold, 0.0, 1.0);
    let nms = check_range(errs, &format!("{dk}.nms_iou"), d.nms_iou, 0.0, 1.0);
    let input_size = match (d.input_width, d.input_height) {
        (Some(w), Some(h)) => Some((w, h)),
        (None, None) => None,
        _ => {
            errs.add(&dk, "input_width and input_height go together");
            None
        }
    };
    let input_long_side = check_range(errs, &format!("{dk}.input_long_side"), d.input_long_side, 32, 8192);
    if input_long_side.is_some() && input_size.is_some() {
        errs.add(&dk, "input_long_side (aspect-matched size) and input_width/input_height exclude each other");
    }
    let tiling = tile_plan(errs, &dk, d);
    // 0: the agent chooses (`run::detection::session_threads`).
    let threads = check_range(errs, &format!("{dk}.threads"), d.threads, 1, 64).unwrap_or(0);
    let spinning = d.spinning.unwrap_or(DetectorOptions::default().spinning);
    let mut detect_classes = classes(errs, &format!("{dk}.classes"), cam.detector.classes.clone());
    if detect_classes.is_empty() {
        detect_classes = ObjectClass::ALL.to_vec();
    }
    let model = match &d.model {
        Some(m) if m.ends_with(".onnx") || m.ends_with(".toml") => base.join(m).display().to_string(),
        Some(m) => m.clone(),
        None => DEFAULT_MODEL.to_owned(),
    };
    let t = &cam.tracker;
    let tk = format!("{key}.tracker");
    let defaults = TrackerConfig::default();
    let tracker = TrackerConfig {
        high_score: check_range(errs, &format!("{tk}.high_score"), t.high_score, 0.0, 1.0).unwrap_or(defaults.high_score),
        low_score: check_range(errs, &format!("{tk}.low_score"), t.low_score, 0.0, 1.0).unwrap_or(defaults.low_score),
        new_track_score: check_range(errs, &format!("{tk}.new_track_score"), t.new_track_score, 0.0, 1.0)
            .unwrap_or(defaults.new_track_score),
        match_iou: check_range(errs, &format!("{tk}.match_iou"), t.match_iou, 0.0, 1.0).unwrap_or(defaults.match_iou),
        lost_timeout: positive_secs(errs, &format!("{tk}.lost_timeout_secs"), t.lost_timeout_secs)
            .unwrap_or(defaults.lost_timeout),
        typical_speed: check_range(errs, &format!("{tk}.typical_speed_heights_per_sec"), t.typical_speed_heights_per_sec, 0.1, 50.0),
        large_motion: t.large_motion.unwrap_or(defaults.large_motion),
        ..defaults
    };
    if tracker.low_score > tracker.high_score {
        errs.add(&tk, "low_score must not exceed high_score");
    }
    let mut ids = HashSet::new();
    let lines: Vec<LineSpec> = cam
        .lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let lk = format!("{key}.lines[{i}]");
            check_id(errs, &format!("{lk}.id"), &l.id);
            if !ids.insert(l.id.clone()) {
                errs.add(format!("{lk}.id"), format!("duplicate line/zone id '{}'", l.id));
            }
            let pts = points(errs, &format!("{lk}.points"), &l.points);
            if pts.len() != 2 {
                errs.add(format!("{lk}.points"), format!("a line has exactly 2 points, got {}", pts.len()));
            } else if pts[0] == pts[1] {
                errs.add(format!("{lk}.points"), "the two points are the same");
            }
            if l.forward.is_empty() || l.backward.is_empty() || l.forward == l.backward {
                errs.add(&lk, "forward and backward need two different, non-empty direction names");
            }
            let hysteresis_px = check_range(errs, &format!("{lk}.hysteresis_px"), l.hysteresis_px, 0.0, 200.0).unwrap_or(6.0);
            LineSpec {
                classes: classes(errs, &format!("{lk}.classes"), l.classes),
                anchor: anchor(errs, &format!("{lk}.anchor"), l.anchor),
                id: l.id,
                from: pts.first().copied().unwrap_or_default(),
                to: pts.get(1).copied().unwrap_or_default(),
                forward: l.forward,
                backward: l.backward,
                hysteresis_px,
            }
        })
        .collect();
    let zone_kinds = zone_kinds(errs, key, &cam.zones);
    let signals = incidents::signals(errs, key, &cam.signals);
    let mut zone_rules = Vec::new();
    let zones = cam
        .zones
        .into_iter()
        .enumerate()
        .map(|(i, z)| {
            let zk = format!("{key}.zones[{i}]");
            check_id(errs, &format!("{zk}.id"), &z.id);
            if !ids.insert(z.id.clone()) {
                errs.add(format!("{zk}.id"), format!("duplicate line/zone id '{}'", z.id));
            }
            let polygon = points(errs, &format!("{zk}.polygon"), &z.polygon);
            if polygon.len() < 3 {
                errs.add(format!("{zk}.polygon"), format!("a zone needs at least 3 points, got {}", polygon.len()));
            }
            if let Some(rules) = incidents::zone_rules(errs, &zk, &z, &polygon, &signals) {
                zone_rules.push(rules);
            }
            ZoneSpec {
                classes: classes(errs, &format!("{zk}.classes"), z.classes),
                anchor: anchor(errs, &format!("{zk}.anchor"), z.anchor),
                id: z.id,
                polygon,
                confirm_updates: 2,
            }
        })
        .collect();
    let counts_interval = positive_secs(errs, &format!("{key}.counts_interval_secs"), cam.counts_interval_secs)
        .or(Some(Duration::from_secs(60)));
    let min_detect_interval = check_range(errs, &format!("{key}.max_detect_fps"), cam.max_detect_fps, 0.1, 240.0)
        .filter(|f| *f >= 0.1)
        .map(|fps| Duration::from_secs_f64(1.0 / fps));
    let incident_keys = raw::RawCameraIncidents {
        speeding: cam.speeding.as_ref(),
        red_light: &cam.red_light,
        incident_update_secs: cam.incident_update_secs,
        max_incident_starts_per_minute: cam.max_incident_starts_per_minute,
    };
    let incidents = incidents::incident_config(errs, key, &incident_keys, zone_rules, &lines, &signals);
    let rules = detection_rules(errs, key, &cam.detector, score, cam.fusion.as_ref(), cam.night.as_ref(), zone_kinds);
    // The detector runs at the lowest threshold any class uses, day or night; the processor
    // applies each class's own.
    let score = detector_floor(score, &rules);
    let detector = DetectorOptions {
        input_size,
        input_long_side,
        tiling,
        score_threshold: score,
        nms_iou: nms,
        threads,
        spinning,
        verify_sha256: true,
    };
    let night_long_side = cam.night.as_ref().and_then(|n| {
        check_range(errs, &format!("{key}.night.input_long_side"), n.input_long_side, 32, 8192)
    });
    if night_long_side.is_some() && input_size.is_some() {
        errs.add(
            format!("{key}.night.input_long_side"),
            "needs a dynamic-size detector: use detector.input_long_side by day, not input_width/input_height",
        );
    }
    let evidence = evidence::clip_settings(errs, &format!("{key}.evidence"), cam.evidence.as_ref());
    let night_detector =
        night_long_side.map(|side| DetectorOptions { input_long_side: Some(side), input_size: None, ..detector.clone() });
    Some(CameraConfig {
        id: cam.id,
        name: cam.name,
        source,
        pacing,
        clock_origin,
        location: cam.location.map(|l| Location { lat: l.lat, lon: l.lon, road: l.road }),
        model,
        detector,
        night_detector,
        classes: detect_classes,
        tracker,
        analytics: AnalyticsConfig { lines, zones, counts_interval, incidents },
        signals: signals.lamps,
        controller_signals: signals.controller,
        min_detect_interval,
        rules,
        evidence,
    })
}

/// Zones with a `kind`, for the probable-two-wheeler rule (polygon errors are reported with
/// the zones themselves).
fn zone_kinds(errs: &mut Errors, key: &str, zones: &[raw::RawZone]) -> Vec<(ZoneKind, Vec<(f32, f32)>)> {
    zones
        .iter()
        .enumerate()
        .filter_map(|(i, z)| {
            let kind = match z.kind.as_deref()? {
                "carriageway" => ZoneKind::Carriageway,
                "crossing" => ZoneKind::Crossing,
                "pavement" => ZoneKind::Pavement,
                other => {
                    errs.add(format!("{key}.zones[{i}].kind"), format!("unknown zone kind '{other}' (carriageway, crossing or pavement)"));
                    return None;
                }
            };
            Some((kind, z.polygon.iter().filter(|p| p.len() == 2).map(|p| (p[0] as f32, p[1] as f32)).collect()))
        })
        .collect()
}

/// `class_thresholds` tables: known class names, values in [0, 1].
fn class_thresholds(errs: &mut Errors, key: &str, table: Option<&std::collections::BTreeMap<String, f32>>) -> Vec<(ObjectClass, f32)> {
    let known = || ObjectClass::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
    table
        .into_iter()
        .flatten()
        .filter_map(|(name, &t)| {
            let Some(class) = ObjectClass::from_label(name) else {
                errs.add(format!("{key}.{name}"), format!("unknown class '{name}' (known: {})", known()));
                return None;
            };
            Some((class, check_range(errs, &format!("{key}.{name}"), Some(t), 0.0, 1.0)?))
        })
        .collect()
}

/// Per-class thresholds, the night profile and fusion of one camera.
fn detection_rules(
    errs: &mut Errors,
    key: &str,
    d: &raw::RawDetector,
    score: Option<f32>,
    fusion: Option<&raw::RawFusion>,
    night: Option<&raw::RawNight>,
    zones: Vec<(ZoneKind, Vec<(f32, f32)>)>,
) -> DetectionRules {
    let dk = format!("{key}.detector");
    let per_class = class_thresholds(errs, &format!("{dk}.class_thresholds"), d.class_thresholds.as_ref());
    if (d.class_thresholds.is_some() || night.is_some()) && score.is_none() {
        errs.add(
            format!("{dk}.score_threshold"),
            "needed with class_thresholds or [night] (it is the threshold of the classes they do not list)",
        );
    }
    let fk = format!("{key}.fusion");
    let fusion = fusion.filter(|f| f.enabled != Some(false)).map(|f| {
        let defaults = TwoWheelerConfig::default();
        TwoWheelerConfig {
            zones,
            min_speed_px_s: check_range(errs, &format!("{fk}.min_speed_px_s"), f.min_speed_px_s, 0.0, 10000.0)
                .unwrap_or(defaults.min_speed_px_s),
            window: positive_secs(errs, &format!("{fk}.speed_window_secs"), f.speed_window_secs).unwrap_or(defaults.window),
        }
    });
    DetectionRules {
        thresholds: ClassThresholds { default: score, per_class },
        night: night.and_then(|n| night_profile(errs, &format!("{key}.night"), n, score)),
        fusion,
    }
}

fn night_profile(errs: &mut Errors, nk: &str, n: &raw::RawNight, day_score: Option<f32>) -> Option<NightProfile> {
    let hours = local_hours(errs, nk, &n.from, &n.to, n.utc_offset_hours);
    let default = check_range(errs, &format!("{nk}.score_threshold"), n.score_threshold, 0.0, 1.0).or(day_score);
    let per_class = class_thresholds(errs, &format!("{nk}.class_thresholds"), n.class_thresholds.as_ref());
    Some(NightProfile { hours: hours?, thresholds: ClassThresholds { default, per_class } })
}

/// Local hours `from`–`to` ("HH:MM") at a UTC offset in hours (default 0), under key `key`.
fn local_hours(errs: &mut Errors, key: &str, from: &str, to: &str, utc_offset_hours: Option<f64>) -> Option<LocalHours> {
    let mut time = |field: &str, v: &str| {
        chrono::NaiveTime::parse_from_str(v, "%H:%M")
            .map_err(|_| errs.add(format!("{key}.{field}"), format!("'{v}' is not a time of day like \"18:00\"")))
            .ok()
    };
    let (from, to) = (time("from", from), time("to", to));
    let offset = check_range(errs, &format!("{key}.utc_offset_hours"), utc_offset_hours, -12.0, 14.0).unwrap_or(0.0);
    let (from, to) = (from?, to?);
    if from == to {
        errs.add(key, "from and to are the same time (empty, or the whole day)");
        return None;
    }
    Some(LocalHours { from, to, utc_offset_secs: (offset * 3600.0).round() as i32 })
}

/// The threshold the detector runs at: the lowest any class uses, day or night.
fn detector_floor(score: Option<f32>, rules: &DetectionRules) -> Option<f32> {
    let night = rules.night.as_ref().and_then(|n| n.thresholds.floor());
    [score, rules.thresholds.floor(), night].into_iter().flatten().reduce(f32::min)
}

/// `roi` and `tiles` of a camera's detector → the plan the detector runs (none: whole frame).
fn tile_plan(errs: &mut Errors, dk: &str, d: &raw::RawDetector) -> Option<Arc<TilePlan>> {
    let roi = d.roi.as_ref().and_then(|r| {
        let key = format!("{dk}.roi");
        if r.len() != 4 {
            errs.add(&key, format!("expected [x0, y0, x1, y1], got {} number(s)", r.len()));
            return None;
        }
        let v: Vec<f32> = r
            .iter()
            .enumerate()
            .map(|(i, &c)| check_range(errs, &format!("{key}[{i}]"), Some(c), 0.0, 1.0).unwrap_or(0.0) as f32)
            .collect();
        if v[2] - v[0] < 0.01 || v[3] - v[1] < 0.01 {
            errs.add(&key, "x1 must exceed x0 and y1 must exceed y0 (coordinates are fractions of the frame)");
            return None;
        }
        Some(NormRect { x0: v[0], y0: v[1], x1: v[2], y1: v[3] })
    });
    let mut merge = MergeOptions::default();
    let grid = d.tiles.as_ref().map(|t| {
        let tk = format!("{dk}.tiles");
        let rows = check_range(errs, &format!("{tk}.rows"), Some(t.rows), 1, 8).unwrap_or(1);
        let cols = check_range(errs, &format!("{tk}.cols"), Some(t.cols), 1, 8).unwrap_or(1);
        let overlap = check_range(errs, &format!("{tk}.overlap"), t.overlap, 0.0, 0.5).unwrap_or(0.2);
        merge.nms_iou = check_range(errs, &format!("{tk}.merge_iou"), t.merge_iou, 0.0, 1.0).unwrap_or(merge.nms_iou);
        merge.ios = check_range(errs, &format!("{tk}.merge_ios"), t.merge_ios, 0.0, 1.0).unwrap_or(merge.ios);
        TileGrid { rows, cols, overlap, full_frame: t.full_frame.unwrap_or(true) }
    });
    (roi.is_some() || grid.is_some()).then(|| Arc::new(TilePlan { roi, grid, merge }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, Vec<String>> {
        validate(toml::from_str(text).expect("syntax"), Path::new("/"))
    }

    #[test]
    fn reports_every_error_with_its_key_path() {
        let errs = parse(
            r#"
            site_id = "bad site"
            [[cameras]]
            id = "c1"
            source = "rtsp://u:p@host/stream"
            start_time = "2020-01-01T00:00:00Z"
            detector = { score_threshold = 1.5, classes = ["car", "ufo"] }
            [[cameras.lines]]
            id = "l1"
            points = [[0.1, 0.2], [1.3, 0.2]]
            forward = "in"
            backward = "in"
            [[cameras.zones]]
            id = "l1"
            polygon = [[0.0, 0.0], [1.0, 1.0]]
            "#,
        )
        .expect_err("invalid");
        let all = errs.join("\n");
        for needle in [
            "site_id:",
            "cameras[0].start_time:",
            "cameras[0].detector.score_threshold: 1.5",
            "cameras[0].detector.classes[1]: unknown class 'ufo'",
            "cameras[0].lines[0].points[1][0]: 1.3",
            "cameras[0].lines[0]: forward and backward",
            "cameras[0].zones[0].id: duplicate",
            "cameras[0].zones[0].polygon: a zone needs at least 3 points",
        ] {
            assert!(all.contains(needle), "missing '{needle}' in:\n{all}");
        }
        assert_eq!(errs.len(), 8, "{all}");
    }

    #[test]
    fn live_sources_default_to_latest_and_have_no_fixed_clock() {
        let cfg = parse(
            r#"
            site_id = "s"
            [[cameras]]
            id = "c1"
            source = "rtsp://user:secret@10.0.0.1/s"
            "#,
        )
        .expect("valid");
        let cam = &cfg.cameras[0];
        assert_eq!(cam.pacing, Pacing::Latest);
        assert!(cam.clock_origin.is_none());
        assert!(!cam.display_source().contains("secret"));
    }

    #[test]
    fn evidence_clips_default_on_and_their_limits_are_checked() {
        let cam = |evidence: &str| format!("site_id = \"s\"\n[[cameras]]\nid = \"c1\"\nsource = \"rtsp://10.0.0.1/s\"\n{evidence}");
        let cfg = parse(&cam("")).expect("valid");
        let e = cfg.cameras[0].evidence.as_ref().expect("clips on by default");
        assert_eq!((e.pre, e.post, e.max_clip_bytes), (Duration::from_secs(5), Duration::from_secs(5), 16 << 20));
        assert_eq!(e.ring.keep, Duration::from_secs(10), "the ring keeps pre + post");
        assert!(parse(&cam("[cameras.evidence]\nclips = false\n")).expect("valid").cameras[0].evidence.is_none());
        let errs = parse(&cam("[cameras.evidence]\npre_secs = -1\npost_secs = 45\nmax_clip_mb = 64\nring_max_mb = 0.5\n"))
            .expect_err("invalid");
        let all = errs.join("\n");
        for needle in [
            "cameras[0].evidence.pre_secs: -1",
            "cameras[0].evidence.post_secs: 45",
            "cameras[0].evidence.max_clip_mb: 64",
            "cameras[0].evidence.ring_max_mb: 0.5",
        ] {
            assert!(all.contains(needle), "missing '{needle}' in:\n{all}");
        }
        assert_eq!(errs.len(), 4, "{all}");
    }

    #[test]
    fn a_signal_is_read_from_a_region_or_taken_from_its_controller_never_both() {
        let cam = |signals: &str| format!("site_id = \"s\"\n[[cameras]]\nid = \"c1\"\nsource = \"rtsp://10.0.0.1/s\"\n{signals}");
        let cfg = parse(&cam("[[cameras.signals]]\nid = \"main\"\ncontroller = true\n[[cameras.signals]]\nid = \"side\"\nregion = [0.1, 0.1, 0.2, 0.3]\n"))
            .expect("valid");
        assert_eq!(cfg.cameras[0].controller_signals, ["main"]);
        assert_eq!(cfg.cameras[0].signals.len(), 1);
        let errs = parse(&cam("[[cameras.signals]]\nid = \"a\"\ncontroller = true\nregion = [0.1, 0.1, 0.2, 0.3]\n[[cameras.signals]]\nid = \"b\"\n"))
            .expect_err("invalid");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|e| e.contains("either `region`")) && errs[1].starts_with("cameras[0].signals[1]"), "{errs:?}");
    }

    fn mqtt_config(mqtt: &str) -> String {
        format!("site_id = \"s\"\nagent_id = \"a\"\n[[cameras]]\nid = \"c1\"\nsource = \"rtsp://10.0.0.1/s\"\n[mqtt]\n{mqtt}\n")
    }

    #[test]
    fn mqtt_tls_files_are_checked_with_their_key_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let text = mqtt_config(&format!(
            "url = \"mqtts://broker\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\npassword = \"pw\"",
            dir.path().join("missing.pem").display(),
            junk.display()
        ));
        let errs = validate(toml::from_str(&text).expect("syntax"), dir.path()).expect_err("invalid");
        let all = errs.join("\n");
        for needle in [
            format!("mqtt.ca_file: {}: not found", dir.path().join("missing.pem").display()),
            format!("mqtt.client_cert_file: {}: no PEM certificate", junk.display()),
            "mqtt.client_key_file: must be set with the client certificate".to_owned(),
            "mqtt.password: set without mqtt.username".to_owned(),
        ] {
            assert!(all.contains(&needle), "missing '{needle}' in:\n{all}");
        }
        assert_eq!(errs.len(), 4, "{all}");
        assert!(!all.contains("pw\""), "{all}");
    }

    #[test]
    fn mqtt_tls_keys_need_an_mqtts_url() {
        let errs = parse(&mqtt_config("url = \"mqtt://broker\"\nca_file = \"ca.pem\"")).expect_err("invalid");
        assert_eq!(errs, vec!["mqtt.ca_file: only used with an mqtts:// URL (the broker URL is plain mqtt://)".to_owned()]);
    }

    #[test]
    fn mqtt_credentials_go_in_their_own_keys() {
        let errs = parse(&mqtt_config("url = \"mqtt://u:s3cret@broker\"")).expect_err("invalid");
        assert_eq!(errs, vec!["mqtt.url: put credentials in mqtt.username / mqtt.password, not in the URL".to_owned()]);
        let errs = parse(&mqtt_config("url = \"mqtt://u:s3cret@broker:x\"")).expect_err("invalid");
        assert_eq!(errs, vec!["mqtt.url: 'mqtt://***@broker:x': bad port 'x' (1 to 65535)".to_owned()]);
        let cfg = parse(&mqtt_config("url = \"mqtt://broker\"\nusername = \"u\"")).expect("valid");
        let m = cfg.mqtt.expect("mqtt");
        assert_eq!((m.credentials, m.client_id.as_str()), (Some(Credentials::new("u", "")), "roadsight-a"));
    }

    #[test]
    fn a_file_camera_without_start_time_runs_on_the_default_epoch() {
        assert_eq!(default_file_epoch().to_rfc3339(), "2020-01-01T00:00:00+00:00");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("clip.mp4"), b"").expect("write");
        let text = "site_id = \"s\"\n[[cameras]]\nid = \"c1\"\nsource = \"clip.mp4\"\nmode = \"live\"\n";
        let cfg = validate(toml::from_str(text).expect("syntax"), dir.path()).expect("valid");
        assert!(cfg.cameras[0].clock_origin.is_none(), "a file played live starts its clock when it streams");
        assert_eq!(cfg.cameras[0].file_clock().origin, default_file_epoch());
    }

    #[test]
    fn the_mqtt_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mqtt-password"), "s3cret-from-file\n").expect("write");
        let text = mqtt_config("url = \"mqtt://broker\"\nusername = \"edge-01\"\npassword_file = \"mqtt-password\"");
        let cfg = validate(toml::from_str(&text).expect("syntax"), dir.path()).expect("valid");
        assert_eq!(cfg.mqtt.expect("mqtt").credentials, Some(Credentials::new("edge-01", "s3cret-from-file")));
        // Missing, empty, or both ways: each named with its key; the password never echoed.
        std::fs::write(dir.path().join("empty"), "\n").expect("write");
        for (mqtt, needle) in [
            ("username = \"u\"\npassword_file = \"nope\"", "mqtt.password_file: "),
            ("username = \"u\"\npassword_file = \"empty\"", "empty (the password is its first line)"),
            ("username = \"u\"\npassword = \"inline-pw\"\npassword_file = \"mqtt-password\"", "excludes mqtt.password"),
        ] {
            let text = mqtt_config(&format!("url = \"mqtt://broker\"\n{mqtt}"));
            let errs = validate(toml::from_str(&text).expect("syntax"), dir.path()).expect_err("invalid").join("\n");
            assert!(errs.contains(needle), "{errs}");
            assert!(!errs.contains("s3cret") && !errs.contains("inline-pw"), "{errs}");
        }
    }

    #[test]
    fn mqtts_without_ca_uses_the_system_roots() {
        // Needs the machine's root certificates (Debian: ca-certificates).
        let cfg = parse(&mqtt_config("url = \"mqtts://broker\"\nusername = \"u\"\npassword = \"p\"")).expect("valid");
        let m = cfg.mqtt.expect("mqtt");
        assert_eq!((m.host.as_str(), m.port, m.tls.is_some()), ("broker", 8883, true));
    }

    #[test]
    fn detector_tiles_roi_and_auto_size_are_validated_with_key_paths() {
        let cam = |detector: &str| format!("site_id = \"s\"\n[[cameras]]\nid = \"c1\"\nsource = \"rtsp://10.0.0.1/s\"\n[cameras.detector]\n{detector}\n");
        let cfg = parse(&cam("model = \"yolox_nano_dynamic_hw\"\ninput_long_side = 960\nroi = [0.0, 0.3, 1.0, 1.0]\ntiles = { rows = 2, cols = 3, overlap = 0.2 }")).expect("valid");
        let d = &cfg.cameras[0].detector;
        assert_eq!(d.input_long_side, Some(960));
        let plan = d.tiling.as_deref().expect("a plan");
        assert_eq!(plan.roi, Some(NormRect { x0: 0.0, y0: 0.3, x1: 1.0, y1: 1.0 }));
        assert_eq!(plan.grid, Some(TileGrid { rows: 2, cols: 3, overlap: 0.2, full_frame: true }));
        assert!(parse(&cam("model = \"yolox_nano\"")).expect("valid").cameras[0].detector.tiling.is_none());

        let errs = parse(&cam(
            "input_long_side = 16\ninput_width = 640\ninput_height = 384\nroi = [0.5, 0.2, 0.4, 1.5]\ntiles = { rows = 0, cols = 3, overlap = 0.7, merge_ios = 2.0 }",
        ))
        .expect_err("invalid");
        let all = errs.join("\n");
        for needle in [
            "cameras[0].detector.input_long_side: 16 is outside [32, 8192]",
            "cameras[0].detector: input_long_side (aspect-matched size) and input_width/input_height exclude each other",
            "cameras[0].detector.roi[3]: 1.5 is outside [0, 1]",
            "cameras[0].detector.roi: x1 must exceed x0",
            "cameras[0].detector.tiles.rows: 0 is outside [1, 8]",
            "cameras[0].detector.tiles.overlap: 0.7 is outside [0, 0.5]",
            "cameras[0].detector.tiles.merge_ios: 2 is outside [0, 1]",
        ] {
            assert!(all.contains(needle), "missing '{needle}' in:\n{all}");
        }
        let errs = parse(&cam("roi = [0.1, 0.2]")).expect_err("invalid");
        assert!(errs.join("\n").contains("cameras[0].detector.roi: expected [x0, y0, x1, y1], got 2 number(s)"), "{errs:?}");
    }
}

#[cfg(test)]
mod detection_rules_tests {
    use super::*;

    fn camera(extra: &str) -> String {
        format!("site_id = \"s\"\n[[cameras]]\nid = \"c1\"\nsource = \"rtsp://10.0.0.1/s\"\n{extra}\n")
    }

    fn parse(text: &str) -> Result<AgentConfig, Vec<String>> {
        validate(toml::from_str(text).expect("syntax"), Path::new("/"))
    }

    #[test]
    fn class_thresholds_night_and_fusion_are_read() {
        let cfg = parse(&camera(
            r#"
            [cameras.detector]
            score_threshold = 0.3
            class_thresholds = { motorcycle = 0.2, person = 0.4 }
            [cameras.night]
            from = "18:00"
            to = "06:00"
            utc_offset_hours = 7
            class_thresholds = { motorcycle = 0.1 }
            input_long_side = 1280
            [cameras.fusion]
            min_speed_px_s = 80
            [[cameras.zones]]
            id = "road"
            polygon = [[0.0, 0.3], [1.0, 0.3], [1.0, 1.0]]
            kind = "carriageway"
            [[cameras.zones]]
            id = "zebra"
            polygon = [[0.0, 0.5], [1.0, 0.5], [1.0, 0.6]]
            kind = "crossing"
            "#,
        ))
        .expect("valid");
        let cam = &cfg.cameras[0];
        let r = &cam.rules;
        assert_eq!(r.thresholds.default, Some(0.3));
        assert_eq!(r.thresholds.per_class, vec![(ObjectClass::Motorcycle, 0.2), (ObjectClass::Person, 0.4)]);
        let night = r.night.as_ref().expect("night");
        assert_eq!((night.hours.utc_offset_secs, night.thresholds.default), (7 * 3600, Some(0.3)));
        // The detector runs at the lowest threshold any class uses (night motorcycle 0.1).
        assert_eq!(cam.detector.score_threshold, Some(0.1));
        // At night the same detector at a larger input; by day the model's own size.
        let at_night = cam.night_detector.as_ref().expect("night detector");
        assert_eq!((at_night.input_long_side, at_night.score_threshold), (Some(1280), Some(0.1)));
        assert_eq!(cam.detector.input_long_side, None);
        let fusion = r.fusion.as_ref().expect("fusion");
        assert_eq!(fusion.min_speed_px_s, 80.0);
        let kinds: Vec<ZoneKind> = fusion.zones.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, vec![ZoneKind::Carriageway, ZoneKind::Crossing]);
        // Without the new sections nothing changes.
        let plain = parse(&camera("detector = { score_threshold = 0.3 }")).expect("valid");
        assert_eq!(plain.cameras[0].rules, DetectionRules { thresholds: ClassThresholds { default: Some(0.3), per_class: vec![] }, ..Default::default() });
        assert_eq!(plain.cameras[0].detector.score_threshold, Some(0.3));
        assert!(plain.cameras[0].night_detector.is_none());
    }

    #[test]
    fn bad_class_thresholds_night_and_zone_kinds_are_errors_with_key_paths() {
        let errs = parse(&camera(
            r#"
            [cameras.detector]
            class_thresholds = { ufo = 0.2, person = 1.4 }
            [cameras.night]
            from = "7pm"
            to = "06:00"
            utc_offset_hours = 20
            class_thresholds = { bus = -0.1 }
            input_long_side = 16
            [cameras.fusion]
            speed_window_secs = 0
            [[cameras.zones]]
            id = "road"
            polygon = [[0.0, 0.3], [1.0, 0.3], [1.0, 1.0]]
            kind = "motorway"
            "#,
        ))
        .expect_err("invalid");
        let all = errs.join("\n");
        for needle in [
            "cameras[0].detector.class_thresholds.ufo: unknown class 'ufo' (known: person, bicycle, car, motorcycle, bus, truck)",
            "cameras[0].detector.class_thresholds.person: 1.4 is outside [0, 1]",
            "cameras[0].detector.score_threshold: needed with class_thresholds or [night]",
            "cameras[0].night.from: '7pm' is not a time of day",
            "cameras[0].night.utc_offset_hours: 20 is outside [-12, 14]",
            "cameras[0].night.class_thresholds.bus: -0.1 is outside [0, 1]",
            "cameras[0].night.input_long_side: 16 is outside [32, 8192]",
            "cameras[0].fusion.speed_window_secs: 0 must be a positive number of seconds",
            "cameras[0].zones[0].kind: unknown zone kind 'motorway'",
        ] {
            assert!(all.contains(needle), "missing '{needle}' in:\n{all}");
        }
        assert_eq!(errs.len(), 9, "{all}");
    }
}
