//! `ioc-api` binary: parse the command line, set up logging, dispatch.

use clap::Parser;
use ioc_api::cli::{Cli, Command};
use ioc_api::commands;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => ioc_api::server::serve(args, shutdown_signal()).await,
        Command::Users { command } => commands::users(command).await,
        Command::Keys { command } => commands::keys(command).await,
        Command::Agents { command } => commands::agents(command).await,
        Command::Broker { command } => commands::broker(command).await,
    }
}
