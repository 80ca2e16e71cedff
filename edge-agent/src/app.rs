//! Command dispatch: what each subcommand does, for the thin `main`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use roadsight_pipeline::detect::DetectorOptions;

use crate::cli::{self, Cli, Command};
use crate::{bench, config, detect_cmd, eval, preview, run, track_cmd};

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let ort_lib = cli.onnxruntime.clone().unwrap_or_else(roadsight_models::default_ort_library);
    match cli.command {
        Command::Detect(cmd) => {
            let (model, options, input) = detect_setup(&cmd)?;
            let s = detect_cmd::detect(detect_cmd::DetectArgs {
                model: &model,
                input: &input,
                out: cmd.out.as_deref(),
                options,
                ort_lib: &ort_lib,
            })?;
            eprintln!(
                "{} frames, {} detections, {:.1} fps",
                s.frames,
                s.detections,
                s.frames as f64 / s.elapsed.as_secs_f64().max(1e-9)
            );
            Ok(())
        }
        Command::Run(cmd) => run_cmd(cmd, cli.onnxruntime),
        Command::Eval(cmd) => eval::command(&cmd, cli.onnxruntime.as_deref()),
        Command::Track(cmd) => {
            let mut config = config::load(&cmd.config)?;
            if let Some(lib) = &cli.onnxruntime {
                config.ort_lib = lib.clone();
            }
            let s = track_cmd::track(&config, cmd.camera.as_deref(), &cmd.out, cmd.frames, cmd.max_detect_fps)?;
            eprintln!("camera {}: {} frames, {} track rows, {} tracks → {}", s.camera, s.frames, s.rows, s.tracks, cmd.out.display());
            Ok(())
        }
        Command::Preview(cmd) => {
            let mut config = config::load(&cmd.config)?;
            config.ort_lib = ort_lib;
            preview::preview(&config, cmd.camera.as_deref(), cmd.frame, cmd.detect, &cmd.out)?;
            eprintln!("wrote {}", cmd.out.display());
            Ok(())
        }
        Command::SimulateCamera(cmd) => {
            use roadsight_pipeline::source::rtsp_server::SimulatedCamera;
            let cam = if cmd.passthrough {
                SimulatedCamera::start_passthrough(&cmd.input, &cmd.address, cmd.port, &cmd.mount, None)?
            } else {
                SimulatedCamera::start(&cmd.input, &cmd.address, cmd.port, &cmd.mount)?
            };
            println!("{}", cam.url(&cmd.address));
            let stop = stop_on_signals()?;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        }
        Command::Bench(cmd) => bench::command(&cmd, &ort_lib),
        Command::Models => {
            for name in roadsight_models::ModelManifest::built_in_names() {
                match roadsight_models::ModelManifest::resolve(name) {
                    Ok(m) => println!("{name:<24} {}", m.path.display()),
                    Err(e) => println!("{name:<24} missing: {e}"),
                }
            }
            println!("onnxruntime              {}", ort_lib.display());
            Ok(())
        }
    }
}

/// A flag set by SIGINT or SIGTERM (graceful stop).
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// The config as the command line gives it: the file plus the command line's overrides.
fn load_run_config(
    path: &std::path::Path,
    state_dir: Option<&std::path::Path>,
    ort_override: Option<&std::path::Path>,
) -> anyhow::Result<config::AgentConfig> {
    let mut config = config::load(path)?;
    if let Some(dir) = state_dir {
        config.state_dir = dir.to_path_buf();
    }
    if let Some(lib) = ort_override {
        config.ort_lib = lib.to_path_buf();
    }
    Ok(config)
}

fn run_cmd(cmd: cli::RunCmd, ort_override: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let config = load_run_config(&cmd.config, cmd.state_dir.as_deref(), ort_override.as_deref())?;
    // SIGINT/SIGTERM: graceful stop. SIGHUP: reload the camera list and rules (the file is
    // also watched for changes).
    let stop = stop_on_signals()?;
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))?;
    let reload = {
        let (path, state_dir) = (cmd.config.clone(), cmd.state_dir.clone());
        run::Reload {
            path: cmd.config.clone(),
            hangup,
            load: Box::new(move || load_run_config(&path, state_dir.as_deref(), ort_override.as_deref())),
        }
    };
    let delivery = match (&cmd.events, &config.mqtt) {
        (Some(p), _) => run::Delivery::JsonLines(Some(p.clone())),
        (None, Some(m)) => run::Delivery::Mqtt(m.clone()),
        (None, None) => run::Delivery::JsonLines(None),
    };
    let options = run::RunOptions {
        stall_timeout: Duration::from_secs(cmd.stall_timeout_secs),
        delivery,
        drain_timeout: Duration::from_secs(cmd.drain_timeout_secs),
        http_listen: cmd.http_listen.or(config.http_listen),
        reload: Some(reload),
    };
    let results = run::run(&config, stop, &options)?;
    let mut failed = Vec::new();
    for (camera, result) in results {
        match result {
            Ok(s) => {
                eprintln!(
                    "camera {camera}: {} frames, {} events, {} dropped, {} skipped, {} reconnects",
                    s.frames, s.events, s.dropped, s.skipped, s.reconnects
                );
                for ((line, dir, class), n) in &s.line_totals {
                    eprintln!("  {line} {dir} {class}: {n}");
                }
            }
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failed.join("; "))
    }
}

/// `detect`'s model, detector options and input: a config camera's, or the defaults, with
/// the command line's overrides.
fn detect_setup(cmd: &cli::DetectCmd) -> anyhow::Result<(String, DetectorOptions, String)> {
    let (model, mut options, source) = match &cmd.config {
        Some(path) => {
            let config = config::load(path)?;
            let cam = config.camera(cmd.camera.as_deref()).with_context(|| format!("config {}", path.display()))?;
            (cam.model.clone(), cam.detector.clone(), Some(cam.source.clone()))
        }
        None => ("yolox_nano".to_owned(), DetectorOptions::default(), None),
    };
    let model = cmd.model.clone().unwrap_or(model);
    if let Some(score) = cmd.score {
        options.score_threshold = Some(score);
    }
    if let Some(size) = cmd.input_size {
        (options.input_size, options.input_long_side) = (Some(size), None);
    }
    if let Some(long) = cmd.input_long_side {
        (options.input_size, options.input_long_side) = (None, Some(long));
    }
    if let Some(threads) = cmd.threads {
        options.threads = threads;
    }
    let input = cmd.input.clone().or(source).context("--input is required without --config")?;
    Ok((model, options, input))
}
