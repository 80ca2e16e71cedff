//! `edge-agent` binary: parses the command line, sets up logging, dispatches.

use clap::Parser;
use edge_agent::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let mut filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    // ONNX Runtime logs every allocation at info: keep it at warn unless asked for by name.
    if !filter.contains("ort") {
        filter.push_str(",ort=warn");
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = edge_agent::app::dispatch(cli) {
        // One line: the whole cause chain.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
