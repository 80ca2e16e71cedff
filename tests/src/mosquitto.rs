//! A real Mosquitto broker (Debian's `mosquitto`, installed by scripts/setup.sh) on a free
//! loopback port, with persistence in a temporary folder so it can be stopped and restarted
//! on the same port without losing queued messages.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::{free_port, wait_listening};

pub struct Mosquitto {
    pub port: u16,
    /// The TLS listener's port, for a broker started with [`Mosquitto::start_tls`].
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts a broker and waits until it listens.
    pub fn start() -> Mosquitto {
        Self::start_with(&[])
    }

    /// Starts a broker with extra `mosquitto.conf` lines (TLS listeners, auth, …).
    pub fn start_with(extra_conf: &[&str]) -> Mosquitto {
        Self::start_conf(extra_conf, None)
    }

    /// Starts a broker that also has a TLS listener on 127.0.0.1:[`Mosquitto::tls_port`].
    /// `tls_listener` are that listener's lines (`cafile`, `certfile`, `keyfile`,
    /// `require_certificate true`, …); `extra_conf` are global lines (`password_file`, …),
    /// written before the listeners' own lines.
    pub fn start_tls(tls_listener: &[&str], extra_conf: &[&str]) -> Mosquitto {
        let tls_port = free_port();
        let listener = format!("listener {tls_port} 127.0.0.1");
        let mut conf: Vec<&str> = extra_conf.to_vec();
        conf.push(&listener);
        conf.extend_from_slice(tls_listener);
        Self::start_conf(&conf, Some(tls_port))
    }

    fn start_conf(extra_conf: &[&str], tls_port: Option<u16>) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir for mosquitto");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             max_queued_messages 1000000\nmax_inflight_messages 100\nmessage_size_limit 16777216\n\
             user root\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            dir.path().display()
        );
        for l in extra_conf {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        let mut m = Mosquitto { port, tls_port, dir, child: None };
        m.restart();
        m
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// `mqtts://127.0.0.1:<tls_port>` (a broker started with [`Mosquitto::start_tls`]).
    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.tls_port.expect("a broker started with start_tls"))
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// (Re)starts the broker on the same port and state folder.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "mosquitto already running");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running mosquitto (install it with scripts/setup.sh)");
        self.child = Some(child);
        assert!(wait_listening(self.addr(), Duration::from_secs(10)), "mosquitto did not listen on {}", self.addr());
        if let Some(p) = self.tls_port {
            let tls = SocketAddr::from(([127, 0, 0, 1], p));
            assert!(wait_listening(tls, Duration::from_secs(10)), "mosquitto did not listen with TLS on {tls}");
        }
    }

    /// Makes the broker re-read its password and ACL files (SIGHUP).
    pub fn reload(&self) {
        let child = self.child.as_ref().expect("mosquitto running");
        let ok = Command::new("kill").arg("-HUP").arg(child.id().to_string()).status().expect("kill -HUP");
        assert!(ok.success(), "SIGHUP to mosquitto failed");
    }

    /// Stops the broker gracefully (SIGTERM: it saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            for _ in 0..100 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
