//! Wiring: store, ingest, MQTT (external or embedded broker), HTTP; ordered shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::broker::EmbeddedBroker;
use crate::broker_auth;
use crate::cli::ServeArgs;
use crate::http::listener::Limits;
use crate::http::AppState;
use crate::http::throttle::{LoginThrottle, ThrottlePolicy};
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::mqtt::MqttSettings;
use crate::clips::ClipStore;
use crate::snapshots::SnapshotStore;
use crate::store::Store;

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "ioc".into())
}

/// Runs until `shutdown` resolves; then stops accepting HTTP, stops MQTT ingest (after its
/// in-flight batch is committed and acknowledged) and closes the database.
pub async fn serve(args: ServeArgs, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.db.data_dir).with_context(|| format!("creating data folder {}", args.db.data_dir.display()))?;
    let metrics = Metrics::new();
    let store = Store::connect(&args.db.url()).await?.with_latency_observer(metrics.db_latency());
    let snapshots = SnapshotStore::new(args.db.data_dir.join("snapshots")).context("creating the snapshot folder")?;
    let clips = ClipStore::new(args.db.data_dir.join("clips"), args.clip_budget_mb_per_camera << 20).context("creating the clip folder")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let mut broker = None;
    let mut identity_sync = None;
    let mqtt_url = if args.no_mqtt {
        None
    } else if let Some(url) = &args.mqtt {
        Some(url.clone())
    } else {
        let addr = args.embedded_broker.unwrap_or_else(|| "127.0.0.1:1883".parse().expect("valid address"));
        // The IOC's own subscriber credential lives only in this process (a new one each start).
        let password = broker_auth::random_password()?;
        let ioc_hash = broker_auth::mosquitto_hash(&password)?;
        let auth_dir = EmbeddedBroker::auth_dir_of(&args.db.data_dir)?;
        crate::broker::write_identities(&store, &auth_dir, &ioc_hash).await?;
        let b = EmbeddedBroker::start(addr, &args.db.data_dir).await?;
        tracing::info!("embedded MQTT broker (mosquitto) on {addr}; agents sign in with `ioc-api agents create` credentials");
        identity_sync = Some(b.keep_identities_current(store.clone(), ioc_hash, stop_rx.clone()));
        broker = Some(b);
        Some(format!("mqtt://{}:{password}@{addr}", broker_auth::IOC_USERNAME))
    };
    let ingestor = Ingestor::new(store, metrics);
    let tls = match (&args.http.tls_cert, &args.http.tls_key) {
        (Some(cert), Some(key)) => Some(crate::http::tls::acceptor(cert, key)?),
        _ => None,
    };
    // Bind before ingest starts: when the port is taken, nothing runs on in the background.
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let mqtt_task = match mqtt_url {
        Some(url) => {
            let client_id = args.mqtt_client_id.clone().unwrap_or_else(|| format!("ioc-api-{}", hostname()));
            let mut settings = MqttSettings::from_url(&url, &client_id, Some(args.mqtt_share_group.clone()), &args.mqtt_tls)?;
            if let Some(file) = &args.mqtt_password_file {
                let password = crate::commands::read_mqtt_password(file)?;
                let username = settings.broker.credentials.take().map_or_else(|| broker_auth::IOC_USERNAME.to_owned(), |c| c.username);
                settings.broker.credentials = Some(roadsight_mqtt_link::Credentials { username, password });
            }
            let media = crate::mqtt::Media { snapshots: snapshots.clone(), clips: clips.clone() };
            Some(tokio::spawn(crate::mqtt::run(settings, ingestor.clone(), media, stop_rx.clone())))
        }
        None => None,
    };

    let (http_stop_tx, http_stopping) = tokio::sync::watch::channel(false);
    let state = Arc::new(AppState {
        ingestor,
        snapshots,
        clips,
        tls: tls.is_some(),
        http_stopping,
        sessions: args.sessions.policy(),
        throttle: LoginThrottle::new(ThrottlePolicy::default()),
    });
    let app = crate::http::app(state, Duration::from_secs(args.http.request_timeout_secs));
    let limits = Limits {
        header_timeout: Duration::from_secs(args.http.header_timeout_secs),
        max_connections: usize::try_from(args.http.max_connections).unwrap_or(usize::MAX),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("ioc-api listening on {scheme}://{}", listener.local_addr()?);
    let http_stop = async move {
        shutdown.await;
        let _ = http_stop_tx.send(true);
    };
    crate::http::listener::run(listener, app, tls, limits, http_stop).await;
    let _ = stop_tx.send(true);
    if let Some(t) = mqtt_task {
        let _ = t.await;
    }
    if let Some(t) = identity_sync {
        let _ = t.await;
    }
    if let Some(b) = broker {
        b.stop().await;
    }
    tracing::info!("ioc-api stopped");
    Ok(())
}
