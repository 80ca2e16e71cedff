//! Storage: one set of SQL queries over `sqlx::Any`, run on SQLite (embedded default) or
//! PostgreSQL (production). Times are epoch milliseconds (`BIGINT`), ids are text, payloads
//! are JSON text — the types both back-ends share. Schema migrations live in
//! `migrations/sqlite` and `migrations/postgres` (same tables).

mod clips;
mod events;
mod incidents;
mod keys;
mod query;
mod users;

use std::time::Instant;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

pub use events::{CameraRow, CountRow, EventFilter, GapRow, IngestOutcome, StoredEvent};
pub use incidents::{AuditRow, IncidentFilter, IncidentRow, Workflow};
pub use keys::{ApiKey, BrokerUser, Role};
pub use users::{check_password, check_user_name, hash_password, verify_password, NewSession, SessionPolicy, User, MAX_PASSWORD_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
    /// A value given to the store is not acceptable (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with what is stored (e.g. a name already taken).
    #[error("{0}")]
    Conflict(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    observer: Option<std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>>,
    /// Argon2 hashing and verification at once, at most one per core: each takes ≈ 19 MiB
    /// and a core for tens of ms, so a sign-in flood from many addresses (each under the
    /// throttle) queues here instead of filling the blocking pool's 512 threads.
    password_work: std::sync::Arc<users::PasswordWork>,
}

/// Hides the password of a database URL for messages.
pub fn redact_db_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            let user = auth.split(':').next().unwrap_or("");
            format!("{}{}:***@{}", &url[..s + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Connects (`sqlite://path` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let url = &if backend == Backend::Sqlite { sqlite_url_creating(url)? } else { url.to_owned() };
        let mut opts = AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 10 });
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(url).await.map_err(|source| StoreError::Connect { url: redact_db_url(url), source })?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend, observer: None, password_work: std::sync::Arc::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Calls `f` with the duration of every store operation (for metrics).
    pub fn with_latency_observer(mut self, f: std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>) -> Self {
        self.observer = Some(f);
        self
    }

    fn observe(&self, started: Instant) {
        if let Some(f) = &self.observer {
            f(started.elapsed());
        }
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A SQLite URL that creates its file when absent (sqlx opens an existing file only, unless
/// `mode=rwc`); a missing folder is an error naming it. An explicit `mode=` is kept.
fn sqlite_url_creating(url: &str) -> Result<String, StoreError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p.starts_with("mode=")) {
        return Ok(url.to_owned());
    }
    let folder = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|f| !f.is_dir()) {
        return Err(StoreError::Config(format!(
            "database {url}: the folder {} does not exist (create it, or choose another path)",
            folder.display()
        )));
    }
    Ok(if query.is_empty() { format!("{url}?mode=rwc") } else { format!("{url}&mode=rwc") })
}

/// Whether a site scope (`None`: every site) includes `site`.
pub fn covers_site(scope: Option<&[String]>, site: &str) -> bool {
    scope.is_none_or(|s| s.iter().any(|x| x == site))
}

/// A stored site scope: NULL = every site, else comma-separated site ids.
pub(crate) fn parse_sites(stored: Option<String>) -> Option<Vec<String>> {
    stored.map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn get<T>(row: &AnyRow, col: &str) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(col).map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_their_file_in_an_existing_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/new.db", dir.path().display());
        assert_eq!(sqlite_url_creating(&url).expect("folder exists"), format!("{url}?mode=rwc"));
        let kept = format!("{url}?mode=ro");
        assert_eq!(sqlite_url_creating(&kept).expect("explicit mode"), kept);
        let missing = format!("sqlite://{}/nope/new.db", dir.path().display());
        let err = sqlite_url_creating(&missing).expect_err("missing folder").to_string();
        assert!(err.contains("/nope") && err.contains("does not exist"), "{err}");
    }

    #[tokio::test]
    async fn a_new_sqlite_file_is_created() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("fresh.db");
        let store = Store::connect(&format!("sqlite://{}", file.display())).await.expect("new file opens");
        store.ping().await.expect("usable");
        assert!(file.exists());
    }
}
