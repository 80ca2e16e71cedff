//! Evidence clips cut from a real H.264 clip without re-encoding, checked with GStreamer itself
//! (not with the code under test): the clip's access units are byte-identical to the source's,
//! it starts at a keyframe no later than the pre-roll, lasts what was asked within one GOP,
//! decodes completely, and its SHA-256 is the one reported.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::sample;
use gst::prelude::*;
use roadsight_pipeline::source::{EvidenceSpec, Pacing, SourceEvent, SourceSpec, VideoSource};
use sha2::Digest;

/// 20 s, 25 fps, H.264 High in MP4 with an AAC track.
const CLIP: &str = "motorbikes_jakarta_boulevard_1024x576.mp4";

struct Unit {
    pts: Duration,
    key: bool,
    bytes: Vec<u8>,
}

/// The H.264 access units of an MP4 file as `qtdemux ! h264parse` hand them to a decoder
/// (length-prefixed NAL units, one access unit per buffer).
fn access_units(path: &Path) -> Vec<Unit> {
    gst::init().expect("gstreamer");
    let desc = format!(
        "filesrc location=\"{}\" ! qtdemux name=d d.video_0 ! appsink name=out sync=false",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).expect("demux pipeline").downcast::<gst::Pipeline>().expect("a pipeline");
    let sink = pipeline.by_name("out").expect("appsink").downcast::<gst_app::AppSink>().expect("an appsink");
    pipeline.set_state(gst::State::Playing).expect("play");
    let mut units = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().expect("buffer");
        let map = buffer.map_readable().expect("readable");
        units.push(Unit {
            pts: Duration::from_nanos(buffer.pts().expect("pts").nseconds()),
            key: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            bytes: map.as_slice().to_vec(),
        });
    }
    assert_no_bus_error(&pipeline, path);
    pipeline.set_state(gst::State::Null).expect("stop");
    units
}

/// The frame interval: the smallest step between presentation times (decode order differs
/// with B-frames).
fn frame_interval(units: &[Unit]) -> Duration {
    let mut pts: Vec<Duration> = units.iter().map(|u| u.pts).collect();
    pts.sort();
    pts.windows(2).map(|w| w[1] - w[0]).filter(|d| !d.is_zero()).min().expect("several frames")
}

/// Frames the file decodes to (every one, with no error on the bus).
fn decoded_frames(path: &Path) -> usize {
    let desc = format!("filesrc location=\"{}\" ! decodebin ! videoconvert ! appsink name=out sync=false", path.display());
    let pipeline = gst::parse::launch(&desc).expect("decode pipeline").downcast::<gst::Pipeline>().expect("a pipeline");
    let sink = pipeline.by_name("out").expect("appsink").downcast::<gst_app::AppSink>().expect("an appsink");
    pipeline.set_state(gst::State::Playing).expect("play");
    let mut n = 0;
    while sink.pull_sample().is_ok() {
        n += 1;
    }
    assert_no_bus_error(&pipeline, path);
    pipeline.set_state(gst::State::Null).expect("stop");
    n
}

fn assert_no_bus_error(pipeline: &gst::Pipeline, path: &Path) {
    let bus = pipeline.bus().expect("bus");
    if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("{}: {} ({:?})", path.display(), e.error(), e.debug());
        }
    }
}

#[test]
fn a_clip_is_the_sources_own_h264_from_the_keyframe_before_its_preroll() {
    let source_path = sample(CLIP);
    let source_units = access_units(&source_path);
    let keys: Vec<Duration> = source_units.iter().filter(|u| u.key).map(|u| u.pts).collect();
    let gop = keys.windows(2).map(|w| w[1] - w[0]).max().expect("several keyframes");
    let frame = frame_interval(&source_units);

    // The agent's path: the source decodes the file and its parser's access units fill the ring.
    let ring_spec = EvidenceSpec { keep: Duration::from_secs(30), max_bytes: 64 << 20 };
    let spec = SourceSpec::new(source_path.display().to_string(), Pacing::EveryFrame).with_evidence(Some(ring_spec));
    let mut src = VideoSource::open(&spec).expect("open the clip");
    let mut frames = 0;
    loop {
        match src.next(Duration::from_secs(10)).expect("decoding") {
            SourceEvent::Frame(_) => frames += 1,
            SourceEvent::Eos => break,
            SourceEvent::Timeout => panic!("no frame within 10 s"),
        }
    }
    let ring = src.evidence().expect("a ring was asked for");
    assert_eq!(ring.stats().units, source_units.len(), "the ring holds every access unit of the 20 s clip");
    assert_eq!(frames, source_units.len());

    // Pre-roll from half a second after the second keyframe (so the cut must pick that one,
    // not the stream's first), up to 10 s later or the clip's end.
    let end = source_units.iter().map(|u| u.pts).max().expect("units");
    let from = keys[1] + Duration::from_millis(500);
    let to = (from + Duration::from_secs(10)).min(end - frame);
    assert!(to > from + Duration::from_secs(2), "the sample is long enough: keyframes {keys:?}");
    let cut = ring.cut(from, to).expect("a cut");
    assert!(!cut.preroll_short);
    let dir = tempfile::tempdir().expect("tmp");
    let mp4 = cut.to_mp4(dir.path()).expect("muxing the clip");
    let clip_path = dir.path().join("clip.mp4");
    std::fs::write(&clip_path, &mp4.bytes).expect("write clip");
    let sha: String = sha2::Sha256::digest(&mp4.bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sha, mp4.sha256, "the reported SHA-256 is the file's");

    let clip_units = access_units(&clip_path);
    let first = source_units.iter().position(|u| u.pts == cut.first_pts).expect("the clip starts at a source frame");
    assert!(source_units[first].key && clip_units[0].key, "the clip starts at a keyframe");
    assert_eq!(cut.first_pts, keys[1], "starts at the keyframe at or before the pre-roll");
    assert_eq!(clip_units.len(), mp4.frames);
    for (i, (c, s)) in clip_units.iter().zip(&source_units[first..]).enumerate() {
        assert!(c.bytes == s.bytes, "access unit {i} of the clip differs from the source's ({} vs {} bytes)", c.bytes.len(), s.bytes.len());
    }
    let asked = to - from;
    let pts = || clip_units.iter().map(|u| u.pts);
    let duration = pts().max().expect("units") + frame - pts().min().expect("units");
    assert!(
        duration + frame >= asked && duration <= asked + gop + frame,
        "lasts {duration:?} for {asked:?} asked (GOP {gop:?})"
    );
    assert!(mp4.duration.abs_diff(duration) < Duration::from_millis(2), "reported {:?}, the clip lasts {duration:?}", mp4.duration);
    assert_eq!(decoded_frames(&clip_path), clip_units.len(), "every frame of the clip decodes");

    // The agent's recorder: two incidents that start on the same frame share one clip, sent once.
    let settings = edge_agent::config::ClipSettings { pre: Duration::from_secs(5), post: Duration::from_secs(5), max_clip_bytes: 16 << 20, ring: ring_spec };
    let mut recorder = edge_agent::run::evidence::ClipRecorder::new(settings, dir.path(), "cam");
    let clock = roadsight_pipeline::analytics::StreamClock { origin: chrono::Utc::now() };
    let at = Duration::from_secs(12);
    let (a, b) = (roadsight_tests::events::incident("s", "cam", "a", 1, uuid::Uuid::now_v7(), roadsight_events::IncidentState::Started, None),
        roadsight_tests::events::incident("s", "cam", "a", 2, uuid::Uuid::now_v7(), roadsight_events::IncidentState::Started, None));
    for e in [&a, &b] {
        let roadsight_events::EventBody::Incident(i) = &e.body else { unreachable!() };
        recorder.request(i, at, at);
    }
    let ready = recorder.take_ready(Some(ring), false, &clock);
    assert_eq!(ready.len(), 2);
    assert_eq!(ready[0].clip, ready[1].clip, "one clip for both");
    assert!(!ready[0].chunks.is_empty() && ready[1].chunks.is_empty(), "its chunks go once");
    assert_eq!(ready[0].chunks.iter().map(Vec::len).sum::<usize>() as u64, ready[0].clip.bytes);
}

/// The same path on a live RTSP camera (the re-encoding simulated camera, serving the variable
/// frame-rate junction clip: RTP caps carry no frame rate): the clip lasts what its timestamps
/// say, every frame demuxes and decodes.
#[test]
fn a_clip_from_a_live_rtsp_camera_keeps_its_timing() {
    use roadsight_pipeline::source::rtsp_server::SimulatedCamera;
    let camera = SimulatedCamera::start(&sample("motorbikes_vn_intersection_1006x720.mp4"), "127.0.0.1", 0, "/evidence")
        .expect("serve the clip over RTSP");
    let ring_spec = EvidenceSpec { keep: Duration::from_secs(20), max_bytes: 64 << 20 };
    let spec = SourceSpec::new(camera.url("127.0.0.1"), Pacing::Latest).with_evidence(Some(ring_spec));
    let mut src = VideoSource::open(&spec).expect("open the camera");
    // Stream until the ring spans 9 s (what it holds is the event waited on, not a sleep).
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while src.evidence().expect("ring").stats().span < Duration::from_secs(9) {
        assert!(std::time::Instant::now() < deadline, "the ring never spanned 9 s: {:?}", src.evidence().map(|r| r.stats()));
        let _ = src.next(Duration::from_millis(500)).expect("streaming");
    }
    let ring = src.evidence().expect("ring");
    let newest = ring.newest_pts().expect("units");
    let (from, to) = (newest - Duration::from_secs(7), newest - Duration::from_secs(1));
    let cut = ring.cut(from, to).expect("a cut");
    assert!(!cut.preroll_short && cut.first_pts <= from, "from the keyframe at or before {from:?}: {:?}", cut.first_pts);
    let dir = tempfile::tempdir().expect("tmp");
    let mp4 = cut.to_mp4(dir.path()).expect("muxing the clip");
    drop(src);
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &mp4.bytes).expect("write clip");
    let units = access_units(&path);
    assert!(units[0].key);
    assert_eq!(units.len(), mp4.frames, "every access unit is in the file");
    let pts = || units.iter().map(|u| u.pts);
    let span = pts().max().expect("units") - pts().min().expect("units");
    assert!(span + Duration::from_millis(200) >= to - from, "the file spans {span:?} for {:?} asked", to - from);
    assert!(mp4.duration.abs_diff(span) < Duration::from_millis(150), "reported {:?}, the file spans {span:?}", mp4.duration);
    assert_eq!(decoded_frames(&path), units.len(), "every frame of the clip decodes");
}
