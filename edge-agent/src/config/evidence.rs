//! `[cameras.evidence]`: evidence clips of incidents, cut from the camera's own stream.

use std::time::Duration;

use roadsight_events::clip;
use roadsight_pipeline::source::EvidenceSpec;

use super::{raw, Errors};

/// A camera's evidence-clip settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSettings {
    /// Stream before and after the incident's start.
    pub pre: Duration,
    pub post: Duration,
    /// Largest MP4 sent (a clip over it ends early).
    pub max_clip_bytes: u64,
    /// The source's ring of encoded stream.
    pub ring: EvidenceSpec,
}

const MB: f64 = (1 << 20) as f64;

/// Defaults: clips on, 5 s + 5 s, ring up to 16 MB, clips up to 16 MB. `clips = false`: none.
pub(super) fn clip_settings(errs: &mut Errors, key: &str, raw: Option<&raw::RawEvidence>) -> Option<ClipSettings> {
    let default = raw::RawEvidence::default();
    let r = raw.unwrap_or(&default);
    let secs = |errs: &mut Errors, name: &str, v: Option<f64>, default: f64, max: f64| {
        let v = v.unwrap_or(default);
        if !(0.0..=max).contains(&v) {
            errs.add(format!("{key}.{name}"), format!("{v} is outside 0..={max} seconds"));
        }
        Duration::from_secs_f64(v.clamp(0.0, max))
    };
    let pre = secs(errs, "pre_secs", r.pre_secs, 5.0, 30.0);
    let post = secs(errs, "post_secs", r.post_secs, 5.0, 30.0);
    let wire_mb = clip::MAX_BYTES as f64 / MB;
    let max_clip_mb = r.max_clip_mb.unwrap_or(16.0);
    if !(1.0..=wire_mb).contains(&max_clip_mb) {
        errs.add(format!("{key}.max_clip_mb"), format!("{max_clip_mb} is outside 1..={wire_mb}"));
    }
    let ring_mb = r.ring_max_mb.unwrap_or(16.0);
    if !(1.0..=256.0).contains(&ring_mb) {
        errs.add(format!("{key}.ring_max_mb"), format!("{ring_mb} is outside 1..=256"));
    }
    if !r.clips.unwrap_or(true) {
        return None;
    }
    Some(ClipSettings {
        pre,
        post,
        max_clip_bytes: (max_clip_mb.clamp(1.0, wire_mb) * MB) as u64,
        // The ring keeps the pre-roll (a clip starts at the keyframe at or before it, which the
        // ring's own GOP rule keeps) and the post-roll still to come is recorded into it.
        ring: EvidenceSpec { keep: pre + post, max_bytes: (ring_mb.clamp(1.0, 256.0) * MB) as usize },
    })
}
