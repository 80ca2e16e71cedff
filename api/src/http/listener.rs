//! The HTTP/1.1 connection loop (hyper) in front of the router: optional TLS, a deadline for
//! every request head (a client that sends a header a byte a second, or opens a connection and
//! sends nothing, is cut off — the TLS handshake has the same deadline), a bounded read buffer
//! (request line + headers), a bound on open connections, and a graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Largest request head (request line and headers) and per-connection read buffer; a bigger
/// head gets 431. Bodies stream through it (their own limits are the router's).
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// After the stop signal, how long in-flight requests get to finish before their connections
/// are closed (live streams end on the stop signal by themselves).
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a complete request head, from the connection's first byte or the end of the
    /// previous response (idle keep-alive connections close after it too); also the TLS
    /// handshake's deadline.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (at most `DRAIN`) and returns.
pub async fn run(listener: TcpListener, app: Router, tls: Option<TlsAcceptor>, limits: Limits, shutdown: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    // Both: hyper checks the buffer bound only while a head is incomplete, so a big head that
    // arrives in one read passes it; the head-size bound catches that.
    http.max_buf_size(MAX_HEAD_BYTES).max_header_size(MAX_HEAD_BYTES);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let (abort_tx, abort_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("HTTP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        // The peer's address reaches the handlers (`ConnectInfo`: login throttling per address).
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer))));
        let (http, tls, watcher, mut abort) = (http.clone(), tls.clone(), graceful.watcher(), abort_rx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let serve = async {
                match tls {
                    None => serve_connection(&http, tcp, service, watcher).await,
                    Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(&http, stream, service, watcher).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer}: no handshake within {:?}", limits.header_timeout),
                    },
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = abort.wait_for(|a| *a) => {}
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("HTTP: closing the connections still busy after {DRAIN:?} (of {open} open at the stop)");
        let _ = abort_tx.send(true);
    }
}

async fn serve_connection<Io>(
    http: &http1::Builder,
    io: Io,
    service: TowerToHyperService<Router>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Client errors (resets, header timeouts, oversized heads) are the client's business.
    if let Err(e) = watcher.watch(http.serve_connection(TokioIo::new(io), service)).await {
        tracing::debug!("HTTP connection: {e}");
    }
}
