//! The built-in MQTT broker for a zero-set-up IOC: a Mosquitto process that `ioc-api`
//! configures (persistence in the data folder), starts, supervises and stops. Agents connect
//! to it exactly as they would to a broker cluster in production.
//!
//! Why not an in-process Rust broker: rumqttd 0.20 was measured here dropping the first
//! message published on a new topic to an already-subscribed wildcard subscriber (the agent
//! got its PUBACK, the IOC never saw the message) — unacceptable for an IOC that must not
//! lose events. Mosquitto (installed by scripts/setup.sh) delivered every message.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

pub struct EmbeddedBroker {
    child: Child,
    pub listen: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts Mosquitto on `listen` with its state under `data_dir/mosquitto`, and waits until
    /// it accepts connections.
    pub async fn start(listen: SocketAddr, data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("mosquitto");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let conf = dir.join("mosquitto.conf");
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        std::fs::write(
            &conf,
            format!(
                "# Written by ioc-api (embedded broker). Edits are overwritten at start.\n\
                 listener {port} {host}\n\
                 allow_anonymous true\n\
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
        let mut broker = EmbeddedBroker { child, listen };
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
