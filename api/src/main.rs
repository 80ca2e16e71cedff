//! `ioc-api` binary: parse the command line, set up logging, dispatch.

use clap::Parser;
use ioc_api::cli::{Cli, Command, KeysCommand};
use ioc_api::store::{Role, Store};

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
        Command::Keys { command } => match command {
            KeysCommand::Create { role, name, db } => {
                std::fs::create_dir_all(&db.data_dir)?;
                let store = Store::connect(&db.url()).await?;
                let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
                let (key, secret) = store.create_key(&name, role, "cli").await?;
                eprintln!("created key {} ({}, role {}); the secret is shown only now:", key.key_id, key.name, role.as_str());
                println!("{secret}");
                Ok(())
            }
            KeysCommand::List { db } => {
                let store = Store::connect(&db.url()).await?;
                for k in store.list_keys().await? {
                    let state = if k.revoked_ms.is_some() { "revoked" } else { "live" };
                    println!("{}  {:<8} {:<8} {}", k.key_id, k.role.as_str(), state, k.name);
                }
                Ok(())
            }
            KeysCommand::Revoke { id, db } => {
                let store = Store::connect(&db.url()).await?;
                if store.revoke_key(&id, "cli").await? {
                    println!("revoked {id}");
                    Ok(())
                } else {
                    anyhow::bail!("no live key {id}")
                }
            }
        },
    }
}
