//! The built-in MQTT broker for a zero-set-up IOC: a Mosquitto process that `ioc-api`
//! configures (persistence in the data folder), starts, supervises and stops. Agents connect
//! to it exactly as they would to a broker cluster in production. It refuses anonymous
//! clients: its password and ACL files are written from the store (`broker_auth`) and
//! reloaded (SIGHUP) whenever an agent key is created or revoked.
//!
//! Why not an in-process Rust broker: rumqttd 0.20 was measured here dropping the first
//! message published on a new topic to an already-subscribed wildcard subscriber (the agent
//! got its PUBACK, the IOC never saw the message) — unacceptable for an IOC that must not
//! lose events. Mosquitto (installed by scripts/setup.sh) delivered every message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::store::Store;

pub struct EmbeddedBroker {
    child: Child,
    pub listen: SocketAddr,
    /// Holds `passwd` and `acl` (see [`crate::broker_auth`]).
    pub auth_dir: PathBuf,
}

impl EmbeddedBroker {
    /// Starts Mosquitto on `listen` with its state under `data_dir/mosquitto`, and waits until
    /// it accepts connections. `passwd` and `acl` must already be in [`Self::auth_dir_of`].
    pub async fn start(listen: SocketAddr, data_dir: &Path) -> anyhow::Result<Self> {
        let dir = Self::auth_dir_of(data_dir)?;
        let conf = dir.join("mosquitto.conf");
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        std::fs::write(
            &conf,
            format!(
                "# Written by ioc-api (embedded broker). Edits are overwritten at start.\n\
                 listener {port} {host}\n\
                 allow_anonymous false\n\
                 password_file {dir}/passwd\n\
                 acl_file {dir}/acl\n\
                 persistence true\n\
                 persistence_location {dir}/\n\
                 autosave_interval 10\n\
                 max_queued_messages 1000000\n\
                 max_inflight_messages 100\n\
                 message_size_limit 16777216\n\
                 user {user}\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n",
                port = listen.port(),
                host = listen.ip(),
                dir = dir.display(),
            ),
        )?;
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            anyhow::bail!("embedded MQTT broker: {listen} is already in use");
        }
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("embedded MQTT broker: cannot run mosquitto ({e}); run scripts/setup.sh to install it"))?;
        let mut broker = EmbeddedBroker { child, listen, auth_dir: dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(listen).await.is_ok() {
                return Ok(broker);
            }
            if let Some(status) = broker.child.try_wait()? {
                anyhow::bail!("embedded MQTT broker: mosquitto exited ({status}) — see its messages above");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("embedded MQTT broker: mosquitto did not listen on {listen} within 5 s")
    }

    /// The broker's folder under `data_dir` (created), where its identity files go.
    pub fn auth_dir_of(data_dir: &Path) -> anyhow::Result<PathBuf> {
        let dir = data_dir.join("mosquitto");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir.canonicalize()?)
    }

    /// Keeps the broker's identity files in step with the store until `shutdown`: checks the
    /// keys every second, and when one was created or revoked rewrites `passwd` and `acl` and
    /// makes Mosquitto re-read them (SIGHUP), which disconnects and refuses a revoked agent.
    pub fn keep_identities_current(
        &self,
        store: Store,
        ioc_hash: String,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let (dir, pid) = (self.auth_dir.clone(), self.child.id());
        tokio::spawn(async move {
            let mut seen = store.keys_version().await.ok();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                let Ok(version) = store.keys_version().await else { continue };
                if seen == Some(version) {
                    continue;
                }
                match write_identities(&store, &dir, &ioc_hash).await.and_then(|()| hangup(pid)) {
                    Ok(()) => {
                        tracing::info!("embedded MQTT broker: agent credentials changed; password and ACL files reloaded");
                        seen = Some(version);
                    }
                    Err(e) => tracing::error!("embedded MQTT broker: cannot apply changed agent credentials: {e:#}"),
                }
            }
        })
    }

    /// Stops the broker (after ingest has stopped), letting it save its state.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM: mosquitto saves its persistence file and exits.
            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// Writes the broker's `passwd` and `acl` into `dir` from the store's live agent keys.
pub async fn write_identities(store: &Store, dir: &Path, ioc_hash: &str) -> anyhow::Result<()> {
    let agents = store.broker_users().await?;
    crate::broker_auth::write_files(dir, ioc_hash, &agents)?;
    Ok(())
}

fn hangup(pid: Option<u32>) -> anyhow::Result<()> {
    let pid = pid.context("mosquitto is not running")?;
    let status = std::process::Command::new("kill").arg("-HUP").arg(pid.to_string()).status()?;
    anyhow::ensure!(status.success(), "kill -HUP {pid} failed ({status})");
    Ok(())
}
