//! People: user accounts (a role and an optional site scope; the password stored as an
//! Argon2id hash) and their browser sessions (a random 256-bit token, stored only as its
//! SHA-256; ended by logout, by idleness or by an absolute lifetime).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;

use super::keys::{hash_key, random_hex};
use super::{get, incidents::audit, now_ms, parse_sites, Role, Store, StoreError};

/// A user account (never its password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    /// The sites this user sees; `None`: every site.
    pub sites: Option<Vec<String>>,
    pub created_ms: i64,
    pub disabled_ms: Option<i64>,
}

/// How long a session lasts.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Ends after this long without a request.
    pub idle_ms: i64,
    /// Ends this long after login, whatever the activity.
    pub lifetime_ms: i64,
}

/// A session just opened: the token goes into the cookie and nowhere else.
#[derive(Debug)]
pub struct NewSession {
    pub user: User,
    pub token: String,
    pub expires_ms: i64,
}

/// Longest password accepted (Argon2 reads all of it; bounded against abuse).
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

/// An Argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh random salt.
/// CPU-heavy (tens of ms): call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Corrupt(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash` (false for an unreadable hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password is known for: unknown users are verified against it, so a login for a
/// name that does not exist costs as long as one for a name that does.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let unguessable = random_hex(32).unwrap_or_else(|_| "roadsight-dummy-password-for-timing".into());
        hash_password(&unguessable).unwrap_or_default()
    })
}

/// Checks a user name: 1–64 letters, digits, '-', '_', '.', '@'.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!("user name '{name}' must be 1–64 letters, digits, '-', '_', '.' or '@'"))
    }
}

/// Checks a new password's length (never echoes it).
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("the password must be {MIN_PASSWORD_CHARS} characters to {MAX_PASSWORD_BYTES} bytes long"));
    }
    Ok(())
}

/// Slots for Argon2 work (one per core) and the most ever running at once.
pub(crate) struct PasswordWork {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl Default for PasswordWork {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordWork { slots: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)), running: 0.into(), peak: 0.into() }
    }
}

impl Store {
    /// Runs Argon2 work `f` on the blocking pool once one of the per-core slots is free
    /// (waiting meanwhile costs a parked future, not a thread and 19 MiB).
    async fn password_task<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let permit = std::sync::Arc::clone(&self.password_work.slots)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Corrupt(format!("password hashing slots: {e}")))?;
        let work = std::sync::Arc::clone(&self.password_work);
        tokio::task::spawn_blocking(move || {
            let now = work.running.fetch_add(1, SeqCst) + 1;
            work.peak.fetch_max(now, SeqCst);
            let out = f();
            work.running.fetch_sub(1, SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("password hashing task: {e}")))
    }

    /// The most Argon2 hashings/verifications that ever ran at once (at most one per core).
    pub fn password_tasks_peak(&self) -> usize {
        self.password_work.peak.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Creates a user (`sites`: `None` for every site). The name must be new.
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        sites: Option<&[String]>,
        password: &str,
        actor: &str,
    ) -> Result<User, StoreError> {
        check_user_name(name).map_err(StoreError::Invalid)?;
        check_password(password).map_err(StoreError::Invalid)?;
        if role == Role::Agent {
            return Err(StoreError::Invalid("role agent is for machines: use `ioc-api agents create` (users are viewer, operator or admin)".into()));
        }
        if sites.is_some_and(<[String]>::is_empty) {
            return Err(StoreError::Invalid("a user's site list, when given, names at least one site".into()));
        }
        let password = password.to_owned();
        let hash = self.password_task(move || hash_password(&password)).await??;
        let user = User {
            user_id: random_hex(8)?,
            name: name.to_owned(),
            role,
            sites: sites.map(<[String]>::to_vec),
            created_ms: now_ms(),
            disabled_ms: None,
        };
        let sites_text = sites.map(|s| s.join(","));
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query("SELECT user_id FROM users WHERE name = $1").bind(name.to_owned()).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!("a user named '{name}' exists already")));
        }
        sqlx::query(
            "INSERT INTO users (user_id, name, role, password_hash, sites, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.user_id.clone())
        .bind(user.name.clone())
        .bind(role.as_str())
        .bind(hash)
        .bind(sites_text.clone())
        .bind(user.created_ms)
        .execute(&mut *tx)
        .await?;
        let scope = sites_text.map_or_else(|| "all sites".to_owned(), |s| format!("sites {s}"));
        audit(&mut tx, actor, "user.create", name, Some(&format!("{} ({scope})", role.as_str()))).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(row_to_user).collect()
    }

    /// Disables a user and ends their sessions; false when there is no enabled user `name`.
    pub async fn disable_user(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE users SET disabled_ms = $1 WHERE name = $2 AND disabled_ms IS NULL")
            .bind(now_ms())
            .bind(name.to_owned())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT user_id FROM users WHERE name = $1)")
            .bind(name.to_owned())
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, actor, "user.disable", name, None).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Checks a name and password and opens a session; `None` when the name is unknown or
    /// disabled or the password is wrong (which of these is not told). Takes about as long in
    /// every case (one Argon2 verification).
    pub async fn login(&self, name: &str, password: &str, policy: SessionPolicy) -> Result<Option<NewSession>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE name = $1 AND disabled_ms IS NULL")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        let hash = match &row {
            Some(r) => get::<String>(r, "password_hash")?,
            None => dummy_hash().to_owned(),
        };
        let password = password.to_owned();
        let matches = self.password_task(move || verify_password(&password, &hash)).await?;
        let (Some(row), true) = (row, matches) else { return Ok(None) };
        let user = row_to_user(&row)?;
        let token = random_hex(32)?;
        let now = now_ms();
        let expires_ms = now + policy.lifetime_ms;
        let mut tx = self.pool.begin().await?;
        // Ended sessions are dropped here (a login is rare enough to carry that cost).
        sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1 OR last_seen_ms <= $2")
            .bind(now)
            .bind(now - policy.idle_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_ms, last_seen_ms, expires_ms) VALUES ($1, $2, $3, $3, $4)")
            .bind(hash_key(&token))
            .bind(user.user_id.clone())
            .bind(now)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, &format!("user {}", user.name), "session.login", &user.name, None).await?;
        tx.commit().await?;
        Ok(Some(NewSession { user, token, expires_ms }))
    }

    /// The enabled user whose live session this token is; records the activity (at most once
    /// per tenth of the idle time, so reads do not turn into a write each).
    pub async fn session_user(&self, token: &str, policy: SessionPolicy) -> Result<Option<User>, StoreError> {
        let now = now_ms();
        let token_hash = hash_key(token);
        let row = sqlx::query(
            "SELECT u.*, s.last_seen_ms AS session_seen_ms FROM sessions s JOIN users u ON u.user_id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_ms > $2 AND s.last_seen_ms > $3 AND u.disabled_ms IS NULL",
        )
        .bind(token_hash.clone())
        .bind(now)
        .bind(now - policy.idle_ms)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let seen: i64 = get(&row, "session_seen_ms")?;
        if now - seen > (policy.idle_ms / 10).min(60_000) {
            sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        row_to_user(&row).map(Some)
    }

    /// Ends a session (logout); false when it was not live.
    pub async fn end_session(&self, token: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(hash_key(token)).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }
}

fn row_to_user(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let role: String = get(r, "role")?;
    Ok(User {
        user_id: get(r, "user_id")?,
        name: get(r, "name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("users: unknown role {role}")))?,
        sites: parse_sites(get(r, "sites")?),
        created_ms: get(r, "created_ms")?,
        disabled_ms: get(r, "disabled_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_with_a_fresh_salt() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a new salt each time");
        assert!(!a.contains("correct horse"));
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("", dummy_hash()));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_user_name("alice.nguyen@ioc").is_ok());
        assert!(check_user_name("").is_err() && check_user_name("a b").is_err() && check_user_name(&"x".repeat(65)).is_err());
        assert!(check_password("short").is_err());
        assert!(check_password(&"p".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        let err = check_password("seven77").expect_err("too short");
        assert!(!err.contains("seven77"), "never echoes the password: {err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_sign_ins_runs_at_most_one_argon2_per_core() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("u.db").display())).await.expect("store");
        store.create_user("alice", Role::Operator, None, "correct horse battery", "test").await.expect("user");
        let policy = SessionPolicy { idle_ms: 60_000, lifetime_ms: 600_000 };
        // 24 sign-ins at once (wrong, right, unknown user: each one Argon2 verification).
        let tries: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                let (name, password) = match i % 3 {
                    0 => ("alice", "wrong password!"),
                    1 => ("alice", "correct horse battery"),
                    _ => ("nobody", "correct horse battery"),
                };
                tokio::spawn(async move { store.login(name, password, policy).await.expect("login").is_some() })
            })
            .collect();
        let mut signed_in = 0;
        for t in tries {
            signed_in += usize::from(t.await.expect("task"));
        }
        assert_eq!(signed_in, 8, "only the right password signs in");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let peak = store.password_tasks_peak();
        assert!((1..=cores).contains(&peak), "{peak} Argon2 tasks ran at once on {cores} cores");
    }
}
