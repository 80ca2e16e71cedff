//! Who is calling, and what they may do.
//!
//! Two kinds of principal: machines (agents, integrations) send an API key in
//! `Authorization: Bearer <key>` or `X-Api-Key: <key>`; people sign in on the dashboard and
//! send the session cookie (see `session`). Never from the URL: a secret in a query string
//! ends up in logs and browser history. A cookie-authenticated request that changes anything
//! must also carry `X-Requested-With: roadsight` (a header another site's page cannot make a
//! browser send without a CORS preflight this server never grants), on top of the cookie's
//! `SameSite=Strict`.
//!
//! Both kinds carry a role and an optional site scope; a scoped caller sees only its sites'
//! data everywhere (the queries filter in SQL) and another site's object is "not found".

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use super::{session, ApiError, SharedState};
use crate::store::{ApiKey, Role, User};

/// The header (and value) cookie-authenticated mutations must carry.
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_VALUE: &str = "roadsight";

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Ingest,
    Read,
    Workflow,
    /// Users, agents and keys; only an admin for every site (a scoped admin could otherwise
    /// mint itself a wider key).
    ManageKeys,
}

impl Permission {
    fn allows(self, role: Role) -> bool {
        match self {
            Permission::Ingest => matches!(role, Role::Agent | Role::Admin),
            Permission::Read => matches!(role, Role::Viewer | Role::Operator | Role::Admin),
            Permission::Workflow => matches!(role, Role::Operator | Role::Admin),
            Permission::ManageKeys => role == Role::Admin,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest (role agent or admin)",
            Permission::Read => "read (role viewer, operator or admin)",
            Permission::Workflow => "acknowledge or resolve incidents (role operator or admin)",
            Permission::ManageKeys => "manage users, agents and keys (role admin, for all sites)",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    Key(ApiKey),
    User(User),
}

/// The authenticated caller: a key or a signed-in user, with its role and site scope.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub role: Role,
    /// The sites the caller may see and touch; `None`: every site.
    pub sites: Option<Vec<String>>,
}

impl Caller {
    pub fn from_key(key: ApiKey) -> Caller {
        Caller { role: key.role, sites: key.sites.clone(), principal: Principal::Key(key) }
    }

    pub fn from_user(user: User) -> Caller {
        Caller { role: user.role, sites: user.sites.clone(), principal: Principal::User(user) }
    }

    /// "key 'name'" or "user 'name'", for messages.
    fn describe(&self) -> String {
        match &self.principal {
            Principal::Key(k) => format!("key '{}'", k.name),
            Principal::User(u) => format!("user '{}'", u.name),
        }
    }

    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if !p.allows(self.role) {
            return Err(ApiError::Forbidden(format!("{} has role {}, which may not {}", self.describe(), self.role.as_str(), p.describe())));
        }
        if p == Permission::ManageKeys && self.sites.is_some() {
            return Err(ApiError::Forbidden(format!("{} is limited to some sites, and may not {}", self.describe(), p.describe())));
        }
        Ok(())
    }

    /// The caller's site scope for queries (`None`: every site).
    pub fn scope(&self) -> Option<&[String]> {
        self.sites.as_deref()
    }

    /// Whether the caller may touch data of `site`.
    pub fn covers_site(&self, site: &str) -> bool {
        crate::store::covers_site(self.scope(), site)
    }

    /// 403 naming the site when the caller's scope does not include it (for writes; reads of
    /// another site's data answer 404 instead).
    pub fn require_site(&self, site: &str, what: &str) -> Result<(), ApiError> {
        if self.covers_site(site) {
            return Ok(());
        }
        let scope = self.scope().unwrap_or_default().join(", ");
        Err(ApiError::Forbidden(format!(
            "{what} is for site '{site}', but {} may act only for site(s) {scope}; nothing of this request was stored",
            self.describe()
        )))
    }

    /// Who did it, for the audit trail: "user alice" or "key name (id)".
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Key(k) => format!("key {} ({})", k.name, k.key_id),
            Principal::User(u) => format!("user {}", u.name),
        }
    }

    /// The caller's name (key name or user name).
    pub fn name(&self) -> &str {
        match &self.principal {
            Principal::Key(k) => &k.name,
            Principal::User(u) => &u.name,
        }
    }
}

fn key_from(parts: &Parts) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = header("authorization") {
        if let Some(k) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(k.trim().to_owned());
        }
    }
    header("x-api-key").map(str::to_owned)
}

/// Whether a request changes state (and so needs the CSRF header when sent with a cookie).
pub fn is_mutation(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// 403 unless the request carries `X-Requested-With: roadsight`.
pub fn require_csrf_header(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case(CSRF_VALUE));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "a request signed in with the session cookie that changes something must send the header {CSRF_HEADER}: {CSRF_VALUE}"
        )))
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let store = state.ingestor.store();
        if let Some(secret) = key_from(parts) {
            let key =
                store.authenticate(&secret).await?.ok_or_else(|| ApiError::Unauthorized("the API key is unknown or revoked".into()))?;
            return Ok(Caller::from_key(key));
        }
        let Some(token) = session::token_from(&parts.headers, state.tls) else {
            return Err(ApiError::Unauthorized(
                "sign in (POST /api/v1/session), or send an API key: Authorization: Bearer <key> (create one with `ioc-api keys create`)"
                    .into(),
            ));
        };
        if is_mutation(&parts.method) {
            require_csrf_header(&parts.headers)?;
        }
        let user = store
            .session_user(&token, state.sessions)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the session has ended (expired or signed out): sign in again".into()))?;
        Ok(Caller::from_user(user))
    }
}
