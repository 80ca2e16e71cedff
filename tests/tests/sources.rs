//! `pipeline::source` on the real shared clips (every codec and quirk) and on real RTSP.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::sample;
use roadsight_pipeline::source::rtsp_server::SimulatedCamera;
use roadsight_pipeline::source::{Pacing, SourceEvent, SourceSpec, VideoSource};

/// Decodes up to `max` frames; returns (width, height, pts list).
fn decode(location: &str, pacing: Pacing, max: usize) -> (u32, u32, Vec<Duration>) {
    let mut src = VideoSource::open(&SourceSpec::new(location, pacing)).expect("open");
    let (mut w, mut h, mut pts) = (0, 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while pts.len() < max && Instant::now() < deadline {
        match src.next(Duration::from_secs(10)).expect("no stream error") {
            SourceEvent::Frame(f) => {
                let v = f.view();
                assert!(v.stride >= v.width as usize * 3);
                assert!(v.data.len() >= v.stride * (v.height as usize - 1) + v.width as usize * 3);
                assert_eq!(f.time.index, pts.len() as u64, "file frames arrive in order, none skipped");
                (w, h) = (v.width, v.height);
                pts.push(f.time.pts);
            }
            SourceEvent::Eos => break,
            SourceEvent::Timeout => panic!("{location}: no frame within 10 s"),
        }
    }
    (w, h, pts)
}

#[test]
fn every_shared_clip_decodes() {
    let clips = [
        ("intersection_day_960x540.mp4", 960, 540),
        ("highway_ngsim_us101_640x480.mp4", 640, 480),
        ("highway_cdnet_320x240.avi", 320, 240),
        ("highway_cctv_320x240.avi", 320, 240),
        ("parking_topdown_768x432.mp4", 768, 432),
        ("motorbikes_vn_intersection_wide_1280x720.mp4", 1280, 720),
        ("motorbikes_vn_intersection_1006x720.mp4", 1006, 720),
        ("motorbikes_vn_boulevard_1568x778.mp4", 1568, 778),
        ("motorbikes_hanoi_ptz_zoom_1920x1080.mp4", 1920, 1080),
        ("motorbikes_night_makassar_596x308.mp4", 596, 308),
        ("motorbikes_bangkok_topdown_960x540.mp4", 960, 540),
        ("motorbikes_jakarta_boulevard_1024x576.mp4", 1024, 576),
    ];
    for (clip, ew, eh) in clips {
        let path = sample(clip);
        let (w, h, pts) = decode(path.to_str().expect("utf8"), Pacing::EveryFrame, 20);
        assert_eq!((w, h), (ew, eh), "{clip}");
        assert_eq!(pts.len(), 20, "{clip}: 20 frames");
        assert!(pts.windows(2).all(|p| p[1] > p[0]), "{clip}: PTS strictly increase");
    }
}

#[test]
fn whole_clips_decode_every_frame() {
    // Header frame counts are wrong for both AVIs (README): count by decoding.
    for (clip, frames) in [("highway_cdnet_320x240.avi", 1699), ("highway_cctv_320x240.avi", 748), ("parking_topdown_768x432.mp4", 377)] {
        let path = sample(clip);
        let (_, _, pts) = decode(path.to_str().expect("utf8"), Pacing::EveryFrame, usize::MAX);
        assert_eq!(pts.len(), frames, "{clip}");
    }
}

#[test]
fn variable_frame_rate_keeps_real_timestamps() {
    let path = sample("motorbikes_vn_intersection_1006x720.mp4");
    let (_, _, pts) = decode(path.to_str().expect("utf8"), Pacing::EveryFrame, usize::MAX);
    assert_eq!(pts.len(), 142);
    let gaps: Vec<u128> = pts.windows(2).map(|p| (p[1] - p[0]).as_millis()).collect();
    let (min, max) = (gaps.iter().min().copied().unwrap_or(0), gaps.iter().max().copied().unwrap_or(0));
    assert!(min <= 40 && max >= 60, "frame gaps {min}..{max} ms: the variable rate is visible");
}

#[test]
fn rtsp_stream_from_a_real_server() {
    let server = SimulatedCamera::start(&sample("intersection_day_960x540.mp4"), "127.0.0.1", 0, "/cam").expect("serve");
    let (w, h, pts) = decode(&server.url("127.0.0.1"), Pacing::Latest, 30);
    assert_eq!((w, h), (960, 540));
    assert_eq!(pts.len(), 30);
    assert!(pts.windows(2).all(|p| p[1] > p[0]));
}

#[test]
fn a_simulated_camera_loops_its_clip() {
    // The clip is 8.4 s; read 10 s of live frames.
    let server = SimulatedCamera::start(&sample("intersection_day_960x540.mp4"), "127.0.0.1", 0, "/loop").expect("serve");
    let mut src = VideoSource::open(&SourceSpec::new(server.url("127.0.0.1"), Pacing::Latest)).expect("open");
    let started = Instant::now();
    let mut frames = 0;
    while started.elapsed() < Duration::from_secs(10) {
        match src.next(Duration::from_secs(5)).expect("no stream error") {
            SourceEvent::Frame(_) => frames += 1,
            SourceEvent::Eos => panic!("the simulated camera ended after {frames} frames"),
            SourceEvent::Timeout => panic!("stalled after {frames} frames"),
        }
    }
    assert!(frames > 200, "{frames} frames in 10 s");
}

#[test]
fn rtsp_errors_never_show_credentials() {
    // Nothing listens on port 9 of loopback: connection refused.
    let mut src = VideoSource::open(&SourceSpec::new("rtsp://admin:s3cret@127.0.0.1:9/cam", Pacing::Latest)).expect("open");
    assert!(!src.location().contains("s3cret"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = loop {
        match src.next(Duration::from_millis(500)) {
            Err(e) => break e.to_string(),
            Ok(SourceEvent::Eos) => break "eos".to_owned(),
            Ok(_) if Instant::now() > deadline => panic!("no error for a refused connection"),
            Ok(_) => continue,
        }
    };
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
}


/// A file read in live mode plays like a camera: at its own pace, not as fast as it decodes
/// (file mode decodes this 8.4 s clip in well under 2 s).
#[test]
fn a_file_in_live_mode_plays_in_real_time() {
    let path = sample("intersection_day_960x540.mp4");
    let mut src = VideoSource::open(&SourceSpec::new(path.to_str().expect("utf8"), Pacing::Latest)).expect("open");
    let started = Instant::now();
    let mut last_pts = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(2) {
        match src.next(Duration::from_millis(100)).expect("no stream error") {
            SourceEvent::Frame(f) => last_pts = f.time.pts,
            SourceEvent::Timeout => {}
            SourceEvent::Eos => panic!("the whole clip played within 2 s: not paced"),
        }
    }
    assert!(last_pts > Duration::from_millis(1000), "frames keep coming ({last_pts:?} after 2 s)");
    assert!(last_pts < Duration::from_millis(4000), "paced at about real time ({last_pts:?} after 2 s)");
}
