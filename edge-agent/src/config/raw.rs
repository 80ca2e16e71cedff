//! The config file as written: serde types that mirror the TOML, nothing checked yet beyond
//! syntax and field names (`deny_unknown_fields`). Units are in the key names.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub site_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Where per-camera sequence numbers are kept across restarts.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// Path to `libonnxruntime.so` (default: the one set-up installed).
    #[serde(default)]
    pub onnxruntime_lib: Option<String>,
    /// Largest outbox on disk before event producers block (MiB, default 1024).
    #[serde(default)]
    pub outbox_max_mb: Option<u64>,
    /// Detector worker threads shared by all cameras (default: one per core).
    #[serde(default)]
    pub detector_workers: Option<usize>,
    /// Local operations endpoint (`/metrics`, `/health`), e.g. "127.0.0.1:9108".
    #[serde(default)]
    pub http_listen: Option<String>,
    #[serde(default)]
    pub mqtt: Option<RawMqtt>,
    #[serde(default)]
    pub cameras: Vec<RawCamera>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (TLS, default 8883).
    pub url: String,
    /// `mqtts://`: PEM file of the CA that signed the broker's certificate (relative to the
    /// config file). Default: the system's root certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// `mqtts://`: PEM certificate (chain) the agent presents to the broker (mutual TLS).
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// PEM private key of `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (its first line; relative to this config), so the
    /// config itself can be shared or kept in version control. Excludes `password`.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Default: `roadsight-<agent_id>`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub keep_alive_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCamera {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// A file path (relative to the config file) or a URI (`rtsp://user:pass@host/…`).
    pub source: String,
    /// `file` (every frame, in order) or `live` (latest frame). Default: `live` for
    /// network URIs, `file` otherwise.
    #[serde(default)]
    pub mode: Option<String>,
    /// For file sources: the UTC time of PTS 0 (RFC 3339). Default 2020-01-01T00:00:00Z.
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub location: Option<RawLocation>,
    #[serde(default)]
    pub detector: RawDetector,
    #[serde(default)]
    pub tracker: RawTracker,
    #[serde(default)]
    pub counts_interval_secs: Option<f64>,
    /// Run detection on at most this many frames per second of stream time (the others are
    /// skipped and counted); default: every frame the camera can keep up with.
    #[serde(default)]
    pub max_detect_fps: Option<f64>,
    #[serde(default)]
    pub lines: Vec<RawLine>,
    #[serde(default)]
    pub zones: Vec<RawZone>,
    /// Speed limit with a ground-plane calibration (speeding incidents).
    #[serde(default)]
    pub speeding: Option<RawSpeeding>,
    /// Active incidents send an `updated` event this often (default 10 s).
    #[serde(default)]
    pub incident_update_secs: Option<f64>,
    /// Flood control: incident starts per kind in any minute, the rest folded into an update
    /// of the newest open one (default 10; 0: no limit).
    #[serde(default)]
    pub max_incident_starts_per_minute: Option<u32>,
    /// Traffic-signal lamps in the image, classified red/amber/green from their pixels.
    #[serde(default)]
    pub signals: Vec<RawSignal>,
    /// Red-light violations: a stop line, the signal governing it.
    #[serde(default)]
    pub red_light: Vec<RawRedLight>,
    /// Rider–bike fusion and the probable-two-wheeler rule (absent: off).
    #[serde(default)]
    pub fusion: Option<RawFusion>,
    /// Night thresholds and the local hours they apply in (absent: day thresholds always).
    #[serde(default)]
    pub night: Option<RawNight>,
    /// Evidence clips of incidents (default: on, 5 s before to 5 s after).
    #[serde(default)]
    pub evidence: Option<RawEvidence>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvidence {
    /// `false`: no clips for this camera.
    #[serde(default)]
    pub clips: Option<bool>,
    #[serde(default)]
    pub pre_secs: Option<f64>,
    #[serde(default)]
    pub post_secs: Option<f64>,
    /// Largest clip sent, in MiB (a longer one ends early).
    #[serde(default)]
    pub max_clip_mb: Option<f64>,
    /// Memory for the camera's ring of encoded stream, in MiB.
    #[serde(default)]
    pub ring_max_mb: Option<f64>,
}

/// The camera-level incident keys, borrowed for their validation.
pub struct RawCameraIncidents<'a> {
    pub speeding: Option<&'a RawSpeeding>,
    pub red_light: &'a [RawRedLight],
    pub incident_update_secs: Option<f64>,
    pub max_incident_starts_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpeeding {
    /// Four points in normalised [0, 1] image coordinates…
    pub image_points: Vec<Vec<f64>>,
    /// …and where they are on the road, in metres (any planar frame).
    pub ground_points_m: Vec<Vec<f64>>,
    pub limit_kmh: f32,
    #[serde(default)]
    pub min_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStopped {
    /// Standing this long while `passed_by` vehicles pass it → incident.
    pub after_secs: f64,
    #[serde(default)]
    pub max_speed_px_s: Option<f32>,
    /// Vehicles that must drive past it in its direction, beside it (default 2; 0: none).
    #[serde(default)]
    pub passed_by: Option<u32>,
    /// Standing this long → incident even in a queue or at a red light (default: 120 s for a
    /// stopped vehicle, 30 s in a no-stopping zone).
    #[serde(default)]
    pub alone_after_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLane {
    /// Classes that may not use this lane zone, e.g. ["car", "bus", "truck"] in a motorbike lane.
    pub not_allowed: Vec<String>,
    /// Only in these local hours (default: always).
    #[serde(default)]
    pub hours: Option<RawHours>,
    /// Inside this long → incident (default 1 s).
    #[serde(default)]
    pub after_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    /// Local times "HH:MM" (`from` after `to` spans midnight).
    pub from: String,
    pub to: String,
    /// Local time = event time (UTC) + this (7 for Vietnam; default 0).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedLight {
    /// The stop line: the id of one of the camera's `lines`…
    pub line: String,
    /// …crossed in this direction (its `forward` or `backward` name; default: either).
    #[serde(default)]
    pub direction: Option<String>,
    /// The id of the `[[cameras.signals]]` entry governing it.
    pub signal: String,
    /// Red for less than this when crossed: not a violation (default 1 s).
    #[serde(default)]
    pub grace_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    pub id: String,
    /// The lamp head's box `[x0, y0, x1, y1]` in normalised frame coordinates (its phase is
    /// read from the pixels)…
    #[serde(default)]
    pub region: Option<Vec<f64>>,
    /// …or `true`: its phase comes from the signal controller over MQTT
    /// (`roadsight/v1/{site}/signals/{id}/phase`).
    #[serde(default)]
    pub controller: Option<bool>,
    /// `vertical` (red on top, default) or `horizontal` (red on the left).
    #[serde(default)]
    pub layout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWrongWay {
    #[serde(default)]
    pub min_distance_px: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCongestion {
    #[serde(default)]
    pub window_secs: Option<f64>,
    pub heavy_occupancy: f32,
    pub congested_occupancy: f32,
    #[serde(default)]
    pub slow_speed_px_s: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocation {
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub road: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetector {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub nms_iou: Option<f32>,
    #[serde(default)]
    pub input_width: Option<u32>,
    #[serde(default)]
    pub input_height: Option<u32>,
    /// Aspect-matched input for `multiple_of_32` models: long side near this, never above
    /// the frame's (or tile's) own size. Excludes input_width/input_height.
    #[serde(default)]
    pub input_long_side: Option<u32>,
    /// Region of interest `[x0, y0, x1, y1]` (normalised [0, 1]): detect inside it only.
    #[serde(default)]
    pub roi: Option<Vec<f64>>,
    /// Overlapping tiles over the ROI (or frame), merged without seam duplicates.
    #[serde(default)]
    pub tiles: Option<RawTiles>,
    /// ONNX Runtime intra-op threads of this camera's detector session (default: cores /
    /// sessions running side by side — 1 with a camera per core, all cores for one camera).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Intra-op threads spin while idle (default false).
    #[serde(default)]
    pub spinning: Option<bool>,
    /// Classes passed on to tracking (default: person, bicycle, car, motorcycle, bus, truck).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// Per-class score thresholds (`{ motorcycle = 0.2, person = 0.4 }`); the classes not
    /// listed keep `score_threshold`, which is then required.
    #[serde(default)]
    pub class_thresholds: Option<std::collections::BTreeMap<String, f32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTiles {
    pub rows: u32,
    pub cols: u32,
    /// Fraction of a tile shared with its neighbour (default 0.2).
    #[serde(default)]
    pub overlap: Option<f32>,
    /// Also one pass over the whole ROI/frame, for objects larger than a tile (default true).
    #[serde(default)]
    pub full_frame: Option<bool>,
    /// Merge: IoU above which same-class boxes are one (default 0.5)…
    #[serde(default)]
    pub merge_iou: Option<f32>,
    /// …and the intersection over the smaller box from which a box of another tile is a
    /// duplicate (default 0.8).
    #[serde(default)]
    pub merge_ios: Option<f32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracker {
    #[serde(default)]
    pub high_score: Option<f32>,
    #[serde(default)]
    pub low_score: Option<f32>,
    #[serde(default)]
    pub new_track_score: Option<f32>,
    #[serde(default)]
    pub match_iou: Option<f32>,
    #[serde(default)]
    pub lost_timeout_secs: Option<f64>,
    /// Typical speed of this camera's traffic in box heights per second (a perspective-free
    /// unit), for tracks seen once; default: learned from confirmed tracks.
    #[serde(default)]
    pub typical_speed_heights_per_sec: Option<f32>,
    /// Large-motion association (default true); false = plain ByteTrack, for comparisons.
    #[serde(default)]
    pub large_motion: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLine {
    pub id: String,
    /// Two points `[[x, y], [x, y]]` in normalised [0, 1] frame coordinates.
    pub points: Vec<Vec<f64>>,
    /// Name of a crossing from the left of points[0]→points[1] to its right.
    pub forward: String,
    /// Name of a crossing from the right to the left.
    pub backward: String,
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// `bottom_center` (default) or `center`.
    #[serde(default)]
    pub anchor: Option<String>,
    #[serde(default)]
    pub hysteresis_px: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub id: String,
    /// Three or more points in normalised [0, 1] frame coordinates.
    pub polygon: Vec<Vec<f64>>,
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    #[serde(default)]
    pub anchor: Option<String>,
    /// Allowed direction of travel `[dx, dy]` in normalised image coordinates (wrong way).
    #[serde(default)]
    pub direction: Option<Vec<f64>>,
    #[serde(default)]
    pub stopped_vehicle: Option<RawStopped>,
    #[serde(default)]
    pub wrong_way: Option<RawWrongWay>,
    #[serde(default)]
    pub congestion: Option<RawCongestion>,
    /// A no-stopping zone: its stops are `no_stopping` incidents (with `stopped_vehicle`'s
    /// rule, or 30 s by default).
    #[serde(default)]
    pub no_stopping: Option<bool>,
    /// Classes not allowed in this lane zone (`lane_restriction` incidents).
    #[serde(default)]
    pub lane: Option<RawLane>,
    /// The `[[cameras.signals]]` id governing this zone's stop line: while it is red or
    /// amber, vehicles standing here are waiting, not stopped.
    #[serde(default)]
    pub signal: Option<String>,
    /// `carriageway`, `crossing` or `pavement`: where a fast person is a two-wheeler (the
    /// first) or stays a pedestrian (the others). Used by `[cameras.fusion]`.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFusion {
    /// Default true (the section's presence turns fusion on).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A person track faster than this on a `carriageway` zone is a two-wheeler (default 60).
    #[serde(default)]
    pub min_speed_px_s: Option<f32>,
    /// Stream time the speed is measured over (default 1 s).
    #[serde(default)]
    pub speed_window_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNight {
    /// Local start and end of the night, "HH:MM" (`from` after `to` spans midnight).
    pub from: String,
    pub to: String,
    /// Local time = event time (UTC, from stream time) + this (e.g. 7 for Vietnam).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// Threshold of the classes not in `class_thresholds` (default: the day's).
    #[serde(default)]
    pub score_threshold: Option<f32>,
    #[serde(default)]
    pub class_thresholds: Option<std::collections::BTreeMap<String, f32>>,
    /// Dynamic-size models: the aspect-matched input's long side at night (default: the day's).
    #[serde(default)]
    pub input_long_side: Option<u32>,
}
