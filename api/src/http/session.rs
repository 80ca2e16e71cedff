//! Signing in on the dashboard: `POST /api/v1/session` {name, password} sets the session
//! cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`, `Max-Age` = the session's lifetime; with
//! TLS also `Secure` and the `__Host-` prefix); `DELETE` signs out; `GET` says who is
//! signed in. The token lives only in the cookie (the store keeps its hash). Failed logins
//! are throttled per user name and per address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{require_csrf_header, Caller, Principal};
use super::extract::ApiJson;
use super::{ApiError, SharedState};
use crate::store::{Role, MAX_PASSWORD_BYTES};

/// The cookie's name: `__Host-` (browsers then insist on `Secure`, `Path=/` and no `Domain`)
/// only over TLS, where `Secure` cookies are possible.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-roadsight_session"
    } else {
        "roadsight_session"
    }
}

/// The `Set-Cookie` value for `token` (an empty token with `Max-Age=0` clears it).
pub fn set_cookie(tls: bool, token: &str, max_age_secs: i64) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_name(tls),
        max_age_secs.max(0),
        if tls { "; Secure" } else { "" }
    )
}

/// The session token from the request's cookies, if any.
pub fn token_from(headers: &HeaderMap, tls: bool) -> Option<String> {
    let name = cookie_name(tls);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The client's address (for throttling); "unspecified" when the server was not told it.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientAddr(addr.unwrap_or(IpAddr::from([0, 0, 0, 0]))))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub name: String,
    pub password: String,
}

/// Who is signed in (or which key is calling).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Whoami {
    /// `user` or `key`.
    pub kind: &'static str,
    pub name: String,
    pub role: Role,
    /// `null`: every site.
    pub sites: Option<Vec<String>>,
    /// When the session ends at the latest (users signing in only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn cookie_header(value: String) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&value).map_err(|e| ApiError::Internal(format!("session cookie: {e}")))
}

/// Signs in; the response sets the session cookie. 401 for a wrong name or password (which
/// one is not told); 429 with `Retry-After` after too many failures for the name or from the
/// address. Requires the header `X-Requested-With: roadsight`.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Login,
    responses((status = 200, body = Whoami), (status = 401, body = super::ErrorBody), (status = 429, body = super::ErrorBody)))]
pub async fn login(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    require_csrf_header(&headers)?;
    let name = body.name.trim();
    if let Err(wait) = state.throttle.begin(name, addr) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(ApiError::TooManyRequests {
            message: format!("too many failed sign-ins for this name or from this address; try again in {secs} s"),
            retry_after_secs: secs,
        });
    }
    let plausible = crate::store::check_user_name(name).is_ok() && body.password.len() <= MAX_PASSWORD_BYTES;
    let session = if plausible { state.ingestor.store().login(name, &body.password, state.sessions).await? } else { None };
    let Some(session) = session else {
        tracing::info!(user = name, address = %addr, "failed sign-in");
        return Err(ApiError::Unauthorized("wrong user name or password".into()));
    };
    state.throttle.succeeded(name, addr);
    tracing::info!(user = name, address = %addr, "signed in");
    let cookie = set_cookie(state.tls, &session.token, state.sessions.lifetime_ms / 1000);
    let who = Whoami {
        kind: "user",
        name: session.user.name.clone(),
        role: session.user.role,
        sites: session.user.sites.clone(),
        expires_ms: Some(session.expires_ms),
    };
    let mut r = Json(who).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie_header(cookie)?);
    Ok(no_store(r))
}

/// Signs out: ends the session and clears the cookie (204 also when there was none).
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204)))]
pub async fn logout(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = token_from(&headers, state.tls) {
        require_csrf_header(&headers)?;
        state.ingestor.store().end_session(&token).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie_header(set_cookie(state.tls, "", 0))?);
    Ok(no_store(r))
}

/// Who is calling: the signed-in user, or the API key.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = Whoami), (status = 401, body = super::ErrorBody)), security(("api_key" = [])))]
pub async fn whoami(caller: Caller) -> Response {
    let kind = match caller.principal {
        Principal::Key(_) => "key",
        Principal::User(_) => "user",
    };
    no_store(Json(Whoami { kind, name: caller.name().to_owned(), role: caller.role, sites: caller.sites.clone(), expires_ms: None }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_flags_follow_tls() {
        let plain = set_cookie(false, "abc", 43_200);
        assert_eq!(plain, "roadsight_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
        let tls = set_cookie(true, "abc", 43_200);
        assert_eq!(tls, "__Host-roadsight_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure");
        assert!(set_cookie(true, "", 0).ends_with("Max-Age=0; Secure"));
    }

    #[test]
    fn the_token_is_read_from_the_cookie_of_its_name() {
        let req = |cookies: &[&str], tls| {
            let mut b = axum::http::Request::builder();
            for c in cookies {
                b = b.header(header::COOKIE, *c);
            }
            token_from(b.body(()).expect("request").headers(), tls)
        };
        assert_eq!(req(&["a=1; roadsight_session=tok; b=2"], false).as_deref(), Some("tok"));
        assert_eq!(req(&["a=1", "roadsight_session=tok2"], false).as_deref(), Some("tok2"));
        assert_eq!(req(&["roadsight_session=tok"], true), None, "over TLS only the __Host- cookie counts");
        assert_eq!(req(&["__Host-roadsight_session=t3"], true).as_deref(), Some("t3"));
        assert_eq!(req(&["roadsight_session="], false), None);
        assert_eq!(req(&[], false), None);
    }
}
