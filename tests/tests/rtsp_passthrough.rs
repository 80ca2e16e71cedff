//! The simulated camera in pass-through mode: the clip's own H.264 (High, with B-frames, one
//! IDR per clip) served over real RTSP without re-encoding, read back by `pipeline::source`.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::sample;
use roadsight_pipeline::source::rtsp_server::SimulatedCamera;
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};

/// 30 fps, 191 frames: 6.4 s per loop.
const CLIP: &str = "motorbikes_vn_intersection_wide_1280x720.mp4";
const CLIP_FPS: f64 = 30.0;

/// Opens `url` live and waits for its first frame; returns the source and how long it took.
fn first_frame(url: &str) -> (VideoSource, Duration, Duration) {
    let started = Instant::now();
    let mut src = VideoSource::open(&SourceSpec::new(url, Pacing::Latest)).expect("open");
    loop {
        match src.next(Duration::from_secs(10)).expect("no stream error") {
            SourceEvent::Frame(f) => return (src, started.elapsed(), f.time.pts),
            SourceEvent::Timeout => panic!("{url}: no frame within {:?}", started.elapsed()),
            SourceEvent::Eos => panic!("{url}: ended before the first frame"),
        }
    }
}

#[test]
fn passthrough_plays_at_the_clip_rate_across_loops() {
    let server = SimulatedCamera::start_passthrough(&sample(CLIP), "127.0.0.1", 0, "/pass", None).expect("serve");
    let (mut src, to_first, first_pts) = first_frame(&server.url("127.0.0.1"));
    assert!(to_first < Duration::from_secs(3), "first frame after {to_first:?}: a client must start at a keyframe");

    // 9 s of live frames after the first: spans the loop at 6.4 s.
    let started = Instant::now();
    let (mut pts, mut arrivals) = (vec![first_pts], vec![Duration::ZERO]);
    while started.elapsed() < Duration::from_secs(9) {
        match src.next(Duration::from_secs(3)).expect("no stream error") {
            SourceEvent::Frame(f) => {
                let v = f.view();
                assert_eq!((v.width, v.height), (1280, 720), "frame size");
                pts.push(f.time.pts);
                arrivals.push(started.elapsed());
            }
            SourceEvent::Timeout => panic!("stalled after {} frames ({:?})", pts.len(), started.elapsed()),
            SourceEvent::Eos => panic!("the camera ended after {} frames", pts.len()),
        }
    }
    let elapsed = arrivals.last().copied().unwrap_or_default().as_secs_f64();
    let decoded = pts.len() as u64 + src.dropped_frames();
    let rate = (decoded - 1) as f64 / elapsed;
    eprintln!("{} frames delivered, {} dropped, {rate:.1} fps over {elapsed:.2} s, first after {to_first:?}", pts.len(), src.dropped_frames());
    // Paced like a camera: never faster than the clip (+25 %), and not stalled. The lower bound
    // is loose: on a loaded machine the client's 720p decoding, not the server, may lag.
    assert!(rate <= CLIP_FPS * 1.25 && rate >= CLIP_FPS * 0.5, "{rate:.1} fps, the clip has {CLIP_FPS}");

    assert!(pts.windows(2).all(|p| p[1] > p[0]), "PTS strictly increase");
    // One continuous timeline: across the loop stream time advances with wall time. The server
    // keeps its timeline on its clock, so a loop seek that a loaded machine makes slow shows
    // as a pause in delivery *and* an equal PTS step; what must never happen is a PTS step
    // that delivery did not pause for (a skipped or fabricated stretch of stream time).
    let unexplained = pts
        .windows(2)
        .zip(arrivals.windows(2))
        .map(|(p, a)| (p[1] - p[0]).saturating_sub(a[1] - a[0]))
        .max()
        .unwrap_or_default();
    assert!(unexplained < Duration::from_millis(250), "PTS jumps {unexplained:?} further than delivery paused");
    let max_arrival_gap = arrivals.windows(2).map(|a| a[1] - a[0]).max().unwrap_or_default();
    assert!(max_arrival_gap < Duration::from_secs(1), "no frame for {max_arrival_gap:?}");
    let span = (*pts.last().unwrap_or(&first_pts) - first_pts).as_secs_f64();
    assert!((0.5..=1.25).contains(&(span / elapsed)), "{span:.2} s of stream time in {elapsed:.2} s");
    // Frames still come after the clip has looped (6.4 s per loop).
    let after_loop = arrivals.iter().filter(|a| **a > Duration::from_secs(7)).count();
    assert!(after_loop as f64 >= 1.5 * CLIP_FPS * 0.5, "{after_loop} frames after the loop");
}

/// Every session starts at the clip's IDR, so a client that joins while another one is
/// mid-clip (mid-GOP: the clip has one IDR) gets frames at once too; credentials work as in
/// the re-encoding mode.
#[test]
fn a_client_joining_mid_clip_starts_at_once() {
    let server =
        SimulatedCamera::start_passthrough(&sample(CLIP), "127.0.0.1", 0, "/locked", Some(("viewer", "pass"))).expect("serve");
    let url = format!("rtsp://viewer:pass@127.0.0.1:{}/locked", server.port());
    let (mut first, _, _) = first_frame(&url);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(matches!(first.next(Duration::from_secs(3)), Ok(SourceEvent::Frame(_))), "first client keeps playing");
    }
    let (mut second, to_first, _) = first_frame(&url);
    assert!(to_first < Duration::from_secs(3), "second client's first frame after {to_first:?}");
    for _ in 0..30 {
        assert!(matches!(second.next(Duration::from_secs(3)), Ok(SourceEvent::Frame(_))), "second client keeps playing");
    }
}

#[test]
fn a_clip_without_h264_is_refused_naming_clip_and_codec() {
    let clip = sample("highway_cctv_320x240.avi");
    let Err(e) = SimulatedCamera::start_passthrough(&clip, "127.0.0.1", 0, "/avi", None) else {
        panic!("an MPEG-4 Part 2 clip cannot be passed through as H.264");
    };
    let text = e.to_string();
    assert!(text.contains("highway_cctv_320x240.avi"), "names the clip: {text}");
    assert!(text.contains("MPEG-4 Part 2"), "names the codec: {text}");
    assert!(text.contains("H.264"), "says what is needed: {text}");
}
