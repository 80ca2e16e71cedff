//! Storage: one set of SQL queries over `sqlx::Any`, run on SQLite (embedded default) or
//! PostgreSQL (production). Times are epoch milliseconds (`BIGINT`), ids are text, payloads
//! are JSON text — the types both back-ends share. Schema migrations live in
//! `migrations/sqlite` and `migrations/postgres` (same tables).

mod events;
mod incidents;
mod keys;
mod query;

use std::time::Instant;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

pub use events::{CameraRow, CountRow, EventFilter, GapRow, IngestOutcome, StoredEvent};
pub use incidents::{AuditRow, IncidentFilter, IncidentRow, Workflow};
pub use keys::{ApiKey, Role};

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
        Ok(Store { pool, backend, observer: None })
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
