//! Command line: `ioc-api serve …`, `ioc-api users|keys|agents …`, `ioc-api broker export`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ioc-api", version, about = "Roadsight IOC server: ingest, storage, REST API, live stream, dashboard")]
pub struct Cli {
    /// Log filter (e.g. info, ioc_api=debug); also RUST_LOG.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage the people who sign in on the dashboard (directly in the database).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage API keys for machines and integrations (directly in the database).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage edge agents' credentials: one per agent, bound to one site, valid for MQTT
    /// (user name + secret) and HTTP ingest (the secret as API key).
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// The broker's identity files for an external Mosquitto (cluster).
    Broker {
        #[command(subcommand)]
        command: BrokerCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is read from --password-file, or else from the first line
    /// of standard input (never a command-line argument: process listings show those).
    Create {
        /// Sign-in name (letters, digits, '-', '_', '.', '@'); the audit trail shows it.
        #[arg(long)]
        name: String,
        /// viewer reads; operator also acknowledges and resolves incidents; admin also
        /// manages users, agents and keys.
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// Limit the user to these sites (comma-separated; default: every site).
        #[arg(long, value_delimiter = ',')]
        sites: Vec<String>,
        /// File holding the password (its first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List users (never their password hashes).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Disable a user: their sessions end at once and they can no longer sign in.
    Disable {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create an agent credential and print it once.
    Create {
        /// The site the agent may publish for (its events' `site_id`).
        #[arg(long)]
        site: String,
        /// The agent's name, also its MQTT user name (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List agent credentials (never their secrets).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke an agent by key id: the broker refuses it within seconds, HTTP at once.
    Revoke {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Write Mosquitto's `passwd` and `acl` files for the live agents and the IOC subscriber
    /// (user `ioc-api`, password read from --ioc-password-file, created there when absent).
    /// Run again after agents change, then SIGHUP the broker.
    Export {
        /// Folder for `passwd` and `acl`.
        #[arg(long)]
        dir: PathBuf,
        /// File with the IOC subscriber's MQTT password (give the same file to `serve
        /// --mqtt-password-file`).
        #[arg(long)]
        ioc_password_file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, clap::Args, Clone)]
pub struct DbArgs {
    /// Database URL: sqlite://FILE or postgres://user:pass@host/db
    /// (default: sqlite://<data-dir>/ioc.sqlite).
    #[arg(long)]
    pub database: Option<String>,
    /// Data folder (SQLite file, snapshots).
    #[arg(long, default_value = "./ioc-data")]
    pub data_dir: PathBuf,
}

impl DbArgs {
    pub fn url(&self) -> String {
        self.database.clone().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("ioc.sqlite").display()))
    }
}

#[derive(Debug, clap::Args, Clone)]
pub struct ServeArgs {
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    /// External MQTT broker to ingest from: mqtt://[user:pass@]host[:port] (port 1883), or
    /// mqtts://… for TLS (port 8883).
    #[arg(long, conflicts_with = "embedded_broker")]
    pub mqtt: Option<String>,
    #[command(flatten)]
    pub mqtt_tls: MqttTlsArgs,
    /// File holding the MQTT password of --mqtt (instead of putting it in the URL, where
    /// process listings show it); see `ioc-api broker export`.
    #[arg(long, value_name = "FILE", requires = "mqtt")]
    pub mqtt_password_file: Option<PathBuf>,
    /// Run the built-in MQTT broker on this address (default when --mqtt is not given: 127.0.0.1:1883).
    #[arg(long)]
    pub embedded_broker: Option<SocketAddr>,
    /// Do not ingest from MQTT at all (HTTP ingest only).
    #[arg(long, conflicts_with_all = ["mqtt", "embedded_broker"])]
    pub no_mqtt: bool,
    /// MQTT client id (stable: the broker keeps this replica's session). Default: ioc-api-<hostname>.
    #[arg(long)]
    pub mqtt_client_id: Option<String>,
    /// Shared-subscription group: replicas with the same group split the messages. The broker
    /// keeps a stopped replica's session and queues its share there until it returns (Mosquitto
    /// 2.0 does not hand it to the others): retire a replica for good only after restarting it
    /// once more with the same --mqtt-client-id to drain its queue.
    #[arg(long, default_value = "ioc-api")]
    pub mqtt_share_group: String,
    /// Evidence clips kept per camera, in MiB (the oldest go first; the newest always stays).
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub clip_budget_mb_per_camera: u64,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub sessions: SessionArgs,
}

/// How long a dashboard session lasts.
#[derive(Debug, clap::Args, Clone)]
pub struct SessionArgs {
    /// A dashboard session ends after this many seconds without a request…
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle: u32,
    /// …and this many seconds after sign-in at the latest.
    #[arg(long, value_name = "SECONDS", default_value_t = 43_200, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_lifetime: u32,
}

impl Default for SessionArgs {
    fn default() -> Self {
        SessionArgs { session_idle: 3600, session_lifetime: 43_200 }
    }
}

impl SessionArgs {
    pub fn policy(&self) -> crate::store::SessionPolicy {
        crate::store::SessionPolicy { idle_ms: i64::from(self.session_idle) * 1000, lifetime_ms: i64::from(self.session_lifetime) * 1000 }
    }
}

/// HTTP listener: TLS and limits for slow or greedy clients.
#[derive(Debug, clap::Args, Clone)]
pub struct HttpArgs {
    /// Serve HTTPS with this PEM certificate chain (with --tls-key). Without it the listener is
    /// plain HTTP: keep it on loopback behind a TLS reverse proxy (see the README).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a complete request head (and to finish the TLS handshake);
    /// idle keep-alive connections close after it too.
    #[arg(long, value_name = "SECS", default_value_t = HttpArgs::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,
    /// Seconds a request may take (reading its body included) before it is answered 408; the
    /// live stream is not bounded by it once its response has started.
    #[arg(long, value_name = "SECS", default_value_t = HttpArgs::DEFAULT_REQUEST_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// HTTP connections served at once; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = HttpArgs::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
}

impl HttpArgs {
    pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
    pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
    pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;
}

/// Plain HTTP with the default limits (what the flags default to).
impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            tls_cert: None,
            tls_key: None,
            header_timeout_secs: Self::DEFAULT_HEADER_TIMEOUT_SECS,
            request_timeout_secs: Self::DEFAULT_REQUEST_TIMEOUT_SECS,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// PEM files for an `mqtts://` --mqtt.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct MqttTlsArgs {
    /// With an mqtts:// --mqtt: PEM file of the CA that signed the broker's certificate.
    /// Default: the system's root certificates.
    #[arg(id = "mqtt_ca", long = "mqtt-ca", value_name = "FILE", requires = "mqtt")]
    pub ca: Option<PathBuf>,
    /// With an mqtts:// --mqtt: PEM client certificate (chain), for brokers that require one.
    #[arg(id = "mqtt_cert", long = "mqtt-cert", value_name = "FILE", requires_all = ["mqtt", "mqtt_key"])]
    pub cert: Option<PathBuf>,
    /// PEM private key of --mqtt-cert.
    #[arg(id = "mqtt_key", long = "mqtt-key", value_name = "FILE", requires_all = ["mqtt", "mqtt_cert"])]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret once.
    Create {
        #[arg(long, value_parser = ["agent", "viewer", "operator", "admin"])]
        role: String,
        #[arg(long)]
        name: String,
        /// Limit the key to these sites (comma-separated); required for role agent.
        #[arg(long, value_delimiter = ',')]
        sites: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key by id.
    Revoke {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}
