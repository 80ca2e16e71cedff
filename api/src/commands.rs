//! The administrative subcommands (`users`, `keys`, `agents`, `broker export`): they work on
//! the database directly, so they run with or without a server.

use std::path::Path;

use anyhow::Context;

use crate::cli::{AgentsCommand, BrokerCommand, DbArgs, KeysCommand, UsersCommand};
use crate::store::{Role, Store};

async fn open(db: &DbArgs) -> anyhow::Result<Store> {
    if db.database.is_none() {
        std::fs::create_dir_all(&db.data_dir).with_context(|| format!("creating data folder {}", db.data_dir.display()))?;
    }
    Ok(Store::connect(&db.url()).await?)
}

/// An agent name is its MQTT user name and appears in the broker's files: no spaces, no
/// separators. The error starts with `field` (the flag or JSON field the name came in).
pub fn check_agent_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != crate::broker_auth::IOC_USERNAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        return Ok(());
    }
    Err(format!("{field}: '{name}' must be 1–64 letters, digits, '-', '_' or '.' (and not '{}')", crate::broker_auth::IOC_USERNAME))
}

/// Each of `sites` is a valid site id; the error starts with `field`.
pub fn check_sites(field: &str, sites: &[String]) -> Result<(), String> {
    for s in sites {
        crate::ingest::check_id("site", s).map_err(|e| format!("{field}: {e}"))?;
    }
    Ok(())
}

/// The password of `users create`: the first line of `file`, or of standard input.
fn read_password(file: Option<&Path>) -> anyhow::Result<String> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading the password file {}", f.display()))?,
        None => {
            use std::io::IsTerminal as _;
            if std::io::stdin().is_terminal() {
                eprintln!("password (one line; it is not echoed only if your terminal hides it — prefer --password-file):");
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            line
        }
    };
    let password = text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned();
    let source = file.map_or_else(|| "standard input".to_owned(), |f| f.display().to_string());
    crate::store::check_password(&password).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    Ok(password)
}

pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create { name, role, sites, password_file, db } => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            crate::store::check_user_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            check_sites("--sites", &sites).map_err(anyhow::Error::msg)?;
            let password = read_password(password_file.as_deref())?;
            let scope = (!sites.is_empty()).then_some(sites.as_slice());
            let user = open(&db).await?.create_user(&name, role, scope, &password, "cli").await?;
            let scope = user.sites.map_or_else(|| "all sites".to_owned(), |s| format!("sites {}", s.join(",")));
            println!("created user {} (role {}, {scope})", user.name, role.as_str());
        }
        UsersCommand::List { db } => {
            for u in open(&db).await?.list_users().await? {
                let state = if u.disabled_ms.is_some() { "disabled" } else { "enabled" };
                let sites = u.sites.map_or_else(|| "all sites".to_owned(), |s| s.join(","));
                println!("{:<24} {:<8} {:<8} {}", u.name, u.role.as_str(), state, sites);
            }
        }
        UsersCommand::Disable { name, db } => {
            anyhow::ensure!(open(&db).await?.disable_user(&name, "cli").await?, "no enabled user {name}");
            println!("disabled {name}; their sessions have ended");
        }
    }
    Ok(())
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { role, name, sites, db } => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            anyhow::ensure!(
                role != Role::Agent || !sites.is_empty(),
                "an agent key must be bound to its site: use `ioc-api agents create --site S --name N` (one credential for MQTT and HTTP)"
            );
            check_sites("--sites", &sites).map_err(anyhow::Error::msg)?;
            let store = open(&db).await?;
            let (key, secret) = if sites.is_empty() {
                store.create_key(&name, role, "cli").await?
            } else {
                store.create_scoped_key(&name, role, &sites, "cli").await?
            };
            eprintln!("created key {} ({}, role {}); the secret is shown only now:", key.key_id, key.name, role.as_str());
            println!("{secret}");
        }
        KeysCommand::List { db } => {
            for k in open(&db).await?.list_keys().await? {
                let state = if k.revoked_ms.is_some() { "revoked" } else { "live" };
                let sites = k.sites.map_or_else(|| "all sites".to_owned(), |s| s.join(","));
                println!("{}  {:<8} {:<8} {:<24} {}", k.key_id, k.role.as_str(), state, k.name, sites);
            }
        }
        KeysCommand::Revoke { id, db } => revoke(&open(&db).await?, &id).await?,
    }
    Ok(())
}

async fn revoke(store: &Store, id: &str) -> anyhow::Result<()> {
    anyhow::ensure!(store.revoke_key(id, "cli").await?, "no live key {id}");
    println!("revoked {id}");
    Ok(())
}

pub async fn agents(command: AgentsCommand) -> anyhow::Result<()> {
    match command {
        AgentsCommand::Create { site, name, db } => {
            check_agent_name("--name", &name).map_err(anyhow::Error::msg)?;
            check_sites("--site", std::slice::from_ref(&site)).map_err(anyhow::Error::msg)?;
            let (key, secret) = open(&db).await?.create_agent(&name, &site, "cli").await?;
            eprintln!(
                "created agent {} (key {}, site {site}); put these in the agent's [mqtt] section \
                 (username, password) — the password is also its HTTP API key, shown only now:",
                key.name, key.key_id
            );
            println!("username = \"{}\"\npassword = \"{secret}\"", key.name);
        }
        AgentsCommand::List { db } => {
            for k in open(&db).await?.list_keys().await?.into_iter().filter(|k| k.mqtt_username.is_some()) {
                let state = if k.revoked_ms.is_some() { "revoked" } else { "live" };
                println!("{}  {:<8} {:<24} site {}", k.key_id, state, k.name, k.sites.unwrap_or_default().join(","));
            }
        }
        AgentsCommand::Revoke { id, db } => revoke(&open(&db).await?, &id).await?,
    }
    Ok(())
}

pub async fn broker(command: BrokerCommand) -> anyhow::Result<()> {
    let BrokerCommand::Export { dir, ioc_password_file, db } = command;
    let store = open(&db).await?;
    let password = ioc_password(&ioc_password_file)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let hash = crate::broker_auth::mosquitto_hash(&password)?;
    crate::broker::write_identities(&store, &dir, &hash).await?;
    let agents = store.broker_users().await?.len();
    println!("wrote {0}/passwd and {0}/acl ({agents} agents + {1}); reload the broker (SIGHUP)", dir.display(), crate::broker_auth::IOC_USERNAME);
    Ok(())
}

/// The IOC subscriber's MQTT password from `path` (for `serve --mqtt-password-file`).
pub fn read_mqtt_password(path: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path).with_context(|| format!("--mqtt-password-file {}", path.display()))?;
    anyhow::ensure!(!s.trim().is_empty(), "--mqtt-password-file {}: the file is empty", path.display());
    Ok(s.trim().to_owned())
}

/// The IOC subscriber's password from `path`, generated (mode 0600) when the file is absent.
pub fn ioc_password(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Ok(_) => anyhow::bail!("{}: the password file is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let password = crate::broker_auth::random_password()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "{password}").with_context(|| format!("writing {}", path.display()))?;
            Ok(password)
        }
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}
