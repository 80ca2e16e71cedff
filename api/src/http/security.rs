//! Security headers on every response the router makes (pages, assets, JSON, errors, the live
//! stream, snapshots): a strict Content-Security-Policy the dashboard satisfies (no inline
//! script or style, same-origin fetches only, never framed), no MIME sniffing, no referrer,
//! `Cache-Control: no-store` unless a handler chose otherwise, and HSTS when served over TLS.

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The dashboard and the docs page load only their own script, stylesheet and (snapshot)
/// images, talk only to this origin (fetch, EventSource), and may not be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Sent only when this server terminates TLS itself (a proxy in front sets its own).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Wraps every route of `router` (and its fallbacks) in the security headers.
pub fn apply(router: Router, tls: bool) -> Router {
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    let mut router = router.layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
    }
    if tls {
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ));
    }
    router
}
