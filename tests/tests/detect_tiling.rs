//! Tiling, regions of interest and aspect-matched input sizes on real motorbike frames with
//! the real models (`roadsight_pipeline::detect::tiles`, `Detector::detect_tiled`, the
//! agent's `DetectorPool` carrying a camera's plan).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sample;
use roadsight_pipeline::detect::tiles::{self, MergeOptions, NormRect, TileGrid, TilePlan};
use roadsight_pipeline::detect::{Detection, Detector, DetectorOptions, OrtRuntime};
use roadsight_pipeline::source::{Frame, Pacing, SourceEvent, SourceSpec, VideoSource};

const PERSON: u16 = 0;
const MOTORCYCLE: u16 = 3;
const BOULEVARD: &str = "motorbikes_vn_boulevard_1568x778.mp4";
const HANOI: &str = "motorbikes_hanoi_ptz_zoom_1920x1080.mp4";

fn frame_at(clip: &str, index: u64) -> Frame {
    let path = sample(clip);
    let mut src = VideoSource::open(&SourceSpec::new(path.to_str().expect("utf8"), Pacing::EveryFrame)).expect("open");
    loop {
        match src.next(Duration::from_secs(20)).expect("decodes") {
            SourceEvent::Frame(f) if f.time.index >= index => return f,
            SourceEvent::Frame(_) | SourceEvent::Timeout => {}
            SourceEvent::Eos => panic!("{clip}: fewer than {index} frames"),
        }
    }
}

fn detector(model: &str, options: &DetectorOptions) -> Detector {
    let manifest = roadsight_models::ModelManifest::resolve(model).expect("model installed");
    let runtime = OrtRuntime::load(&roadsight_models::default_ort_library()).expect("onnxruntime");
    Detector::load(runtime, manifest, options).expect("load")
}

fn grid_plan(rows: u32, cols: u32, overlap: f32, full_frame: bool) -> TilePlan {
    TilePlan { roi: None, grid: Some(TileGrid { rows, cols, overlap, full_frame }), merge: MergeOptions::default() }
}

fn riders(dets: &[Detection]) -> usize {
    dets.iter().filter(|d| d.class_id == PERSON || d.class_id == MOTORCYCLE).count()
}

/// Same-class pairs overlapping with IoU above 0.5.
fn duplicate_pairs(dets: &[Detection]) -> Vec<(Detection, Detection)> {
    let mut pairs = Vec::new();
    for (i, a) in dets.iter().enumerate() {
        for b in &dets[i + 1..] {
            if a.class_id == b.class_id && a.bbox.iou(&b.bbox) > 0.5 {
                pairs.push((*a, *b));
            }
        }
    }
    pairs
}

fn same_boxes(a: &[Detection], b: &[Detection]) -> bool {
    let key = |d: &Detection| (d.class_id, (d.bbox.x1 * 100.0) as i64, (d.bbox.y1 * 100.0) as i64, (d.bbox.x2 * 100.0) as i64);
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort_unstable();
    kb.sort_unstable();
    ka == kb
}

/// On a dense motorbike frame, 2×3 tiles (overlap 0.2) plus a full pass with yolox_nano find
/// at least as many motorcycles and people as one full-frame pass, and the merge leaves no
/// seam duplicates — although the views, taken together before merging, hold many.
#[test]
fn tiles_find_at_least_the_full_frame_riders_without_seam_duplicates() {
    let frame = frame_at(BOULEVARD, 30);
    let view = frame.view();
    let mut det = detector("yolox_nano", &DetectorOptions::default());
    let full = det.detect(&view).expect("detect").to_vec();
    let plan = grid_plan(2, 3, 0.2, true);
    let mut tiled = Vec::new();
    det.detect_tiled(&view, &plan, &mut tiled).expect("tiled");
    eprintln!("full frame: {} riders of {} boxes; tiled: {} of {}", riders(&full), full.len(), riders(&tiled), tiled.len());
    // At 416² most of the small bikes on this frame are missed or labelled `car` (2 riders
    // measured); the tiles see them at about 2.6× the scale (21 measured).
    assert!(riders(&full) >= 1, "{full:?}");
    assert!(riders(&tiled) >= riders(&full), "tiled {} < full {}", riders(&tiled), riders(&full));
    assert!(riders(&tiled) >= 10, "tiles should find the small bikes: {tiled:?}");
    let dups = duplicate_pairs(&tiled);
    assert!(dups.is_empty(), "seam duplicates: {dups:?}");
    assert!(tiled.iter().all(|d| d.bbox.x1 >= 0.0 && d.bbox.y1 >= 0.0 && d.bbox.x2 <= 1568.0 && d.bbox.y2 <= 778.0));

    // Before merging, the 7 views' boxes (in frame pixels) do repeat objects: the merge is
    // what removes them.
    let views = tiles::plan_views(view.width, view.height, &plan);
    assert_eq!(views.len(), 7);
    let mut candidates = Vec::new();
    for (i, v) in views.iter().enumerate() {
        let crop = view.crop(v.rect.x, v.rect.y, v.rect.width, v.rect.height).expect("tile inside the frame");
        let dets = det.detect(&crop).expect("detect").to_vec();
        tiles::collect(i, v, &dets, view.width, view.height, &mut candidates);
    }
    let raw: Vec<Detection> = candidates.iter().map(|c| c.det).collect();
    let raw_dups = duplicate_pairs(&raw).len();
    eprintln!("{} boxes from the views before merging, {raw_dups} same-class pairs with IoU > 0.5", raw.len());
    assert!(raw_dups >= 5, "expected repeated objects across views, got {raw_dups}");
    let mut merged = Vec::new();
    tiles::merge(&mut candidates, &plan.merge, &mut merged);
    assert!(same_boxes(&merged, &tiled), "detect_tiled = views + collect + merge");

    // A detector whose options carry the plan applies it in detect().
    let mut planned = detector("yolox_nano", &DetectorOptions { tiling: Some(Arc::new(plan)), ..DetectorOptions::default() });
    assert!(same_boxes(planned.detect(&view).expect("detect"), &tiled));
}

/// A region of interest alone: the detector looks at the crop only, and its boxes come back
/// in frame pixels — exactly the crop's boxes shifted by the crop's origin.
#[test]
fn roi_detects_inside_the_region_in_frame_pixels() {
    let frame = frame_at(BOULEVARD, 30);
    let view = frame.view();
    let mut det = detector("yolox_nano", &DetectorOptions::default());
    let roi = NormRect { x0: 0.25, y0: 0.4, x1: 0.75, y1: 1.0 };
    let plan = TilePlan { roi: Some(roi), grid: None, merge: MergeOptions::default() };
    let mut found = Vec::new();
    det.detect_tiled(&view, &plan, &mut found).expect("roi");
    let (x0, y0, x1, y1) = (392.0, 311.0, 1176.0, 778.0); // floor/ceil of the fractions × 1568×778
    assert!(!found.is_empty());
    for d in &found {
        let (cx, cy) = d.bbox.center();
        assert!((x0..=x1).contains(&cx) && (y0..=y1).contains(&cy), "{d:?} outside the ROI");
    }
    let crop = view.crop(392, 311, 784, 467).expect("roi crop");
    let shifted: Vec<Detection> = det
        .detect(&crop)
        .expect("detect")
        .iter()
        .map(|d| {
            let b = d.bbox;
            Detection { bbox: roadsight_pipeline::geometry::BBox::new(b.x1 + x0, b.y1 + y0, b.x2 + x0, b.y2 + y0).clamp_to(1568.0, 778.0), ..*d }
        })
        .collect();
    assert!(same_boxes(&found, &shifted), "ROI boxes {found:?}\ncrop boxes shifted {shifted:?}");
}

/// `input_long_side` resolves the input size from each frame: aspect-matched, never above
/// the frame's size; a fixed-size model refuses it, naming the model.
#[test]
fn auto_input_size_follows_each_frame() {
    let options = DetectorOptions { input_long_side: Some(960), ..DetectorOptions::default() };
    let mut det = detector("yolox_nano_dynamic_hw", &options);
    let hanoi = frame_at(HANOI, 30);
    assert!(!det.detect(&hanoi.view()).expect("detect").is_empty());
    assert_eq!(det.input_size(), (960, 544));
    let boulevard = frame_at(BOULEVARD, 30);
    let found = det.detect(&boulevard.view()).expect("detect").to_vec();
    assert_eq!(det.input_size(), (960, 480));
    // The same as a detector set to that size explicitly.
    let mut fixed = detector("yolox_nano_dynamic_hw", &DetectorOptions { input_size: Some((960, 480)), ..DetectorOptions::default() });
    assert!(same_boxes(&found, fixed.detect(&boulevard.view()).expect("detect")));
    // Above the frame's size: the frame's own size.
    let mut big = detector("yolox_nano_dynamic_hw", &DetectorOptions { input_long_side: Some(4096), ..DetectorOptions::default() });
    big.detect(&boulevard.view()).expect("detect");
    assert_eq!(big.input_size(), (1568, 768));

    let manifest = roadsight_models::ModelManifest::resolve("yolox_nano").expect("model");
    let runtime = OrtRuntime::load(&roadsight_models::default_ort_library()).expect("onnxruntime");
    let err = Detector::load(runtime, manifest, &options).err().expect("a fixed-size model refuses input_long_side").to_string();
    assert!(err.contains("yolox_nano") && err.contains("multiple of 32"), "{err}");
}

/// The agent's shared detector: two cameras on one worker and one session, one with tiles
/// and one without; each gets what the detector gives it directly.
#[test]
fn the_detector_pool_applies_each_cameras_plan() {
    use edge_agent::run::detection::DetectorPool;

    let plan = Arc::new(grid_plan(2, 3, 0.2, true));
    let ort = roadsight_models::default_ort_library();
    let mut pool = DetectorPool::start(1).expect("pool");
    let mut plain = pool.attach("plain", "yolox_nano", &DetectorOptions::default(), &ort).expect("attach");
    let tiled_opts = DetectorOptions { tiling: Some(Arc::clone(&plan)), ..DetectorOptions::default() };
    let mut tiled = pool.attach("tiled", "yolox_nano", &tiled_opts, &ort).expect("attach");

    let mut det = detector("yolox_nano", &DetectorOptions::default());
    let frame = frame_at(BOULEVARD, 30);
    let want_plain = det.detect(&frame.view()).expect("detect").to_vec();
    let mut want_tiled = Vec::new();
    det.detect_tiled(&frame.view(), &plan, &mut want_tiled).expect("tiled");
    assert!(!same_boxes(&want_plain, &want_tiled), "the plan changes the result on this frame");

    let (frame, got) = tiled.detect(frame, false).expect("pool detect");
    assert!(same_boxes(got, &want_tiled), "tiled camera");
    let (_frame, got) = plain.detect(frame, false).expect("pool detect");
    assert!(same_boxes(got, &want_plain), "plain camera");
    drop((plain, tiled));
    pool.join();
}

/// Measurement (not an assertion): motorcycle/person boxes and ms per frame for the
/// configurations of issue 6. Run: `cargo test --workspace --test detect_tiling -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; prints a table"]
fn measure_counts_and_latency() {
    let configs: Vec<(&str, &str, DetectorOptions)> = vec![
        ("yolox_nano 416 full frame", "yolox_nano", DetectorOptions::default()),
        ("dynamic_hw long side 960", "yolox_nano_dynamic_hw", DetectorOptions { input_long_side: Some(960), ..DetectorOptions::default() }),
        ("dynamic_hw long side 1280", "yolox_nano_dynamic_hw", DetectorOptions { input_long_side: Some(1280), ..DetectorOptions::default() }),
        (
            "yolox_nano 416 tiles 2x3 ov 0.2 + full",
            "yolox_nano",
            DetectorOptions { tiling: Some(Arc::new(grid_plan(2, 3, 0.2, true))), ..DetectorOptions::default() },
        ),
        (
            "yolox_nano 416 tiles 2x3 ov 0.2",
            "yolox_nano",
            DetectorOptions { tiling: Some(Arc::new(grid_plan(2, 3, 0.2, false))), ..DetectorOptions::default() },
        ),
    ];
    for clip in [BOULEVARD, HANOI] {
        let frame = frame_at(clip, 30);
        let view = frame.view();
        println!("\n{clip}, frame 30 ({}×{})", view.width, view.height);
        println!(
            "{:<40} {:>10} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "configuration", "input", "moto", "person", "ms p50", "ms min", "pre ms", "infer ms"
        );
        for (name, model, options) in &configs {
            let mut det = detector(model, options);
            let found = det.detect(&view).expect("detect").to_vec();
            let mut ms: Vec<f64> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    det.detect(&view).expect("detect");
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            let t = det.timings();
            let (w, h) = det.input_size();
            let count = |c: u16| found.iter().filter(|d| d.class_id == c).count();
            println!(
                "{name:<40} {:>10} {:>6} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                format!("{w}x{h}"),
                count(MOTORCYCLE),
                count(PERSON),
                ms[3],
                ms[0],
                t.preprocess.as_secs_f64() * 1e3,
                t.inference.as_secs_f64() * 1e3
            );
            assert!(duplicate_pairs(&found).is_empty(), "{name}: duplicates");
        }
    }
}

/// `edge-agent detect --config` detects as the config's camera does (its model, input size,
/// tiles and source); command-line flags override; a missing camera is named.
#[test]
fn detect_with_a_cameras_set_up_from_its_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let photo = sample("motorbikes_hcmc_800x533.jpg");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site_id = \"t\"\n[[cameras]]\nid = \"photo\"\nsource = \"{}\"\n[cameras.detector]\nmodel = \"yolox_nano_dynamic_hw\"\n\
             input_long_side = 416\nscore_threshold = 0.3\ntiles = {{ rows = 2, cols = 2, overlap = 0.2, full_frame = true }}\n",
            photo.display()
        ),
    )
    .expect("write config");
    let rows = |args: &[&str], name: &str| -> usize {
        let out = dir.path().join(name);
        let mut all = vec!["detect", "--out", out.to_str().expect("utf8")];
        all.extend_from_slice(args);
        let o = common::edge_agent(&all);
        assert!(o.status.success(), "detect {args:?}: {}", common::stderr(&o));
        std::fs::read_to_string(&out).expect("csv").lines().skip(1).count()
    };
    let cfg = config.to_str().expect("utf8");
    // The camera's set-up: tiles 2 × 2 + the whole frame, each at up to 416 wide.
    let tiled = rows(&["--config", cfg], "tiled.csv");
    // The same model and size on the whole photo only, from flags alone.
    let whole = rows(&["--model", "yolox_nano_dynamic_hw", "--input-long-side", "416", "--score", "0.3", "--input", photo.to_str().expect("utf8")], "whole.csv");
    eprintln!("boxes: tiled {tiled}, whole frame {whole}");
    assert!(tiled > whole && whole > 0, "the camera's tiles find more of the small motorbikes (30 against 24 when written)");
    // A flag overrides the config: a higher score keeps fewer boxes.
    assert!(rows(&["--config", cfg, "--score", "0.6"], "strict.csv") < tiled);
    let o = common::edge_agent(&["detect", "--config", cfg, "--camera", "gate-7"]);
    assert!(!o.status.success() && common::stderr(&o).contains("no camera 'gate-7'"), "{}", common::stderr(&o));
}
