//! `ioc-api serve` in-process for HTTP tests: the product's own argument parser and
//! `ioc_api::server::serve`, `--no-mqtt`, on a free loopback port, with SQLite in a temp
//! folder or a database of a shared PostgreSQL; stopped the way SIGTERM stops it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use clap::Parser;
use ioc_api::cli::ServeArgs;
use ioc_api::store::Store;

use crate::net::free_port;
use crate::postgres::Postgres;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One PostgreSQL server shared by the tests that run at the same time (each gets its own
/// database); stopped when the last of them drops its handle, so nothing outlives the binary.
pub fn shared_postgres() -> Arc<Postgres> {
    static PG: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
    let mut slot = PG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(pg) = slot.upgrade() {
        return pg;
    }
    let pg = Arc::new(Postgres::start());
    *slot = Arc::downgrade(&pg);
    pg
}

/// Server logs (errors behind a 500 included) go to the test's captured output.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// `ioc-api serve`'s own argument parser, wrapped so a test builds `ServeArgs` from flags.
#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
}

/// `serve --no-mqtt --listen LISTEN --data-dir DATA [--database URL] FLAGS…`, parsed.
pub fn serve_args(data_dir: &Path, listen: SocketAddr, database: Option<&str>, flags: &[&str]) -> Result<ServeArgs, clap::Error> {
    let mut argv = vec!["serve".to_owned(), "--no-mqtt".into(), "--listen".into(), listen.to_string(), "--data-dir".into()];
    argv.push(data_dir.display().to_string());
    if let Some(url) = database {
        argv.extend(["--database".to_owned(), url.to_owned()]);
    }
    argv.extend(flags.iter().map(|f| (*f).to_owned()));
    ServeCommand::try_parse_from(argv).map(|c| c.serve)
}

/// A running in-process `ioc-api`, and its store (for set-up: keys, users).
pub struct InProcessIoc {
    pub listen: SocketAddr,
    pub store: Store,
    /// The database URL the server uses (for tests that read it directly).
    pub database_url: String,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    _dir: tempfile::TempDir,
    // Dropped after the server (field order): the database outlives its clients.
    _pg: Option<Arc<Postgres>>,
}

impl InProcessIoc {
    /// Starts a server with these extra `serve` flags (PostgreSQL: a new database named
    /// `database`) and waits until it accepts connections.
    pub async fn start(backend: Backend, database: &str, flags: &[&str]) -> InProcessIoc {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("ioc-data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let (url, pg) = match backend {
            // The embedded default: no --database, the SQLite file goes in the data folder.
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let db = database.to_owned();
                let (url, pg) = tokio::task::spawn_blocking(move || {
                    let pg = shared_postgres();
                    (pg.new_database(&db), pg)
                })
                .await
                .expect("starting PostgreSQL");
                (Some(url), Some(pg))
            }
        };
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args = serve_args(&data_dir, listen, url.as_deref(), flags).expect("serve arguments");
        // What `ioc-api keys create` and `users create` do, on the database the server will use.
        let database_url = args.db.url();
        let store = Store::connect(&database_url).await.expect("connecting to the test database");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            ioc_api::server::serve(args, async move {
                let _ = rx.await;
            })
            .await
            .map_err(|e| format!("{e:#}"))
        });
        let mut ioc = InProcessIoc { listen, store, database_url, backend, shutdown: Some(tx), task: Some(task), _dir: dir, _pg: pg };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            ioc.panic_if_exited().await;
            assert!(Instant::now() < deadline, "ioc-api ({backend:?}) not listening within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ioc
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Panics with the server's error if it has stopped on its own.
    pub async fn panic_if_exited(&mut self) {
        if self.task.as_ref().is_some_and(|t| t.is_finished()) {
            let t = self.task.take().expect("task");
            panic!("ioc-api ({:?}) exited: {:?}", self.backend, t.await);
        }
    }

    /// Stops the server the way `ioc-api serve` stops on SIGTERM and checks it ended cleanly.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("server task");
        let ended = tokio::time::timeout(Duration::from_secs(30), task).await.expect("ioc-api stops within 30 s");
        ended.expect("server task did not panic").expect("ioc-api stopped without error");
    }
}

impl Drop for InProcessIoc {
    fn drop(&mut self) {
        // A failed test: ask the server to stop; the runtime ending aborts what remains.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Generates `sqlite::<name>` and `postgres::<name>` tests from `async fn <name>(Backend)`:
/// the same behaviour on both stores.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::ioc::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::ioc::Backend::Postgres).await;
                }
            )*
        }
    };
}
