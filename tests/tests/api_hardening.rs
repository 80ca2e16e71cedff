//! `ioc-api`'s HTTP hardening over real sockets: the product's own `ioc_api::server::serve`
//! started in-process (`--no-mqtt`, SQLite in a temp folder) on a free loopback port.
//!
//! What is proved: the security headers (CSP, nosniff, no-referrer, no framing, no-store) on
//! the dashboard, its assets, JSON (200 and 401), 404s, timeouts and the live stream, HSTS only
//! over TLS; a client sending its request head a byte a second (slowloris), or nothing at all,
//! is disconnected at the header deadline while other clients are served; oversized heads get
//! 431; a slow body gets a 408 JSON error while a live stream outlives the request timeout and
//! ends cleanly when the server stops; `--max-connections` holds extra clients until a slot
//! frees; HTTPS with `--tls-cert/--tls-key` (rcgen certificate, rustls client) and a bad
//! certificate path refused with an error naming the file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ioc_api::store::Role;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use roadsight_tests::ioc::{init_logs, serve_args, Backend, InProcessIoc};
use roadsight_tests::net::free_port;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The CSP the dashboard is built for (api/src/http/security.rs), spelled out independently.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

struct Ioc {
    server: InProcessIoc,
    addr: SocketAddr,
    /// No connection pool: an idle pooled connection would hold a server slot.
    http: reqwest::Client,
    operator: String,
    agent: String,
}

impl Ioc {
    /// Starts a server with these extra `serve` flags and waits until it accepts connections.
    async fn start(flags: &[&str]) -> Ioc {
        let server = InProcessIoc::start(Backend::Sqlite, "hardening", flags).await;
        let operator = server.store.create_key("operator", Role::Operator, "test-setup").await.expect("create key").1;
        let agent = server.store.create_key("agent", Role::Agent, "test-setup").await.expect("create key").1;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(0).build().expect("client");
        Ioc { addr: server.listen, server, http, operator, agent }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server the way SIGTERM does and checks it ended cleanly.
    async fn stop(mut self) {
        self.server.stop().await;
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The headers every response carries (`what` names the response in failures).
fn assert_security_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(header(headers, "content-security-policy"), CSP, "{what}: CSP");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");
}

/// One camera_status event as an agent sends it.
fn camera_status(seq: u64) -> Value {
    json!({
        "schema": 1, "event_id": uuid::Uuid::now_v7(), "seq": seq, "site_id": "hn", "camera_id": "cam-hardening",
        "agent_id": "edge-test", "occurred_at": chrono::Utc::now().to_rfc3339(), "pts_ms": seq * 40,
        "type": "camera_status", "state": "running",
    })
}

/// Reads until the peer closes (EOF or reset) or `deadline`; returns what was read and whether
/// the connection was closed.
async fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_on_every_kind_of_response() {
    let ioc = Ioc::start(&[]).await;
    let get = |path: &str, key: Option<&str>| {
        let mut req = ioc.http.get(ioc.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        async move { req.send().await.expect("GET") }
    };
    for (path, key, status, content_type) in [
        ("/", None, 200, "text/html"),
        ("/assets/app.js", None, 200, "text/javascript"),
        ("/assets/style.css", None, 200, "text/css"),
        ("/assets/docs.js", None, 200, "text/javascript"),
        ("/api/v1/docs", None, 200, "text/html"),
        ("/health", None, 200, "application/json"),
        ("/metrics", None, 200, "application/openmetrics-text"),
        ("/api/v1/cameras", None, 401, "application/json"),
        ("/api/v1/cameras", Some(ioc.operator.as_str()), 200, "application/json"),
        ("/api/v1/no-such-thing", None, 404, "application/json"),
        ("/no-such-page", None, 404, ""),
    ] {
        let r = get(path, key).await;
        let what = format!("GET {path} ({status})");
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert!(header(r.headers(), "content-type").starts_with(content_type), "{what}: {:?}", r.headers());
        assert_security_headers(r.headers(), &what);
        assert_eq!(header(r.headers(), "cache-control"), "no-store", "{what}");
        assert!(r.headers().get("strict-transport-security").is_none(), "{what}: no HSTS over plain HTTP");
    }
    // The pages load nothing the CSP refuses: no inline script, style or handler.
    for path in ["/", "/api/v1/docs"] {
        let html = get(path, None).await.text().await.expect("page");
        assert!(html.contains("<script src=\"/assets/"), "{path} loads its script from a file");
        for inline in ["<script>", "<style", " style=", " onclick=", " onload=", " onerror=", "javascript:"] {
            assert!(!html.contains(inline), "{path} has inline {inline:?}");
        }
    }
    // The live stream too (headers arrive with the response head).
    let sse = ioc.http.get(ioc.url("/api/v1/stream")).bearer_auth(&ioc.operator).send().await.expect("SSE");
    assert_eq!(sse.status(), StatusCode::OK);
    assert_security_headers(sse.headers(), "GET /api/v1/stream");
    drop(sse);
    ioc.stop().await;
}

/// Sends `GET /health` with an endless header a byte a second; returns (seconds until the
/// server closed the connection, bytes sent then). Panics if it was not closed within 20 s.
async fn slowloris(addr: SocketAddr) -> (f64, usize) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: ioc\r\nX-Slow: ").await.expect("start the head");
    let started = Instant::now();
    let mut sent = 0;
    let mut buf = [0u8; 256];
    while started.elapsed() < Duration::from_secs(20) {
        // A write can still succeed after the close (it only fills the socket buffer); the read
        // sees the close.
        if s.write_all(b"a").await.is_err() {
            return (started.elapsed().as_secs_f64(), sent);
        }
        sent += 1;
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (started.elapsed().as_secs_f64(), sent),
            Ok(Ok(n)) => panic!("the server answered a request it never got: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    panic!("a client sending its header a byte a second still connected after 20 s ({sent} bytes)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_while_others_are_served() {
    let ioc = Ioc::start(&["--header-timeout-secs", "2"]).await;
    let loris = tokio::spawn(slowloris(ioc.addr));
    // An idle connection (sends nothing) is closed at the same deadline.
    let mut idle = TcpStream::connect(ioc.addr).await.expect("connect");
    let idle_started = Instant::now();
    // Meanwhile other clients are served, repeatedly.
    while !loris.is_finished() {
        let r = ioc.http.get(ioc.url("/health")).send().await.expect("a normal request during the slowloris");
        assert_eq!(r.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (secs, sent) = loris.await.expect("slowloris task");
    eprintln!("slowloris cut after {secs:.1} s ({sent} header bytes)");
    assert!(secs < 10.0, "cut at the 2 s header deadline, not {secs:.1} s later");
    let (got, closed) = read_until_closed(&mut idle, Instant::now() + Duration::from_secs(20)).await;
    assert!(closed && got.is_empty(), "an idle connection is closed without an answer");
    eprintln!("idle connection closed after {:.1} s", idle_started.elapsed().as_secs_f64());

    // A head bigger than the 64 KiB limit: 431, connection closed.
    let mut big = TcpStream::connect(ioc.addr).await.expect("connect");
    let filler = "a".repeat(100 << 10);
    let request = format!("GET /health HTTP/1.1\r\nHost: ioc\r\nX-Big: {filler}\r\n\r\n");
    let _ = big.write_all(request.as_bytes()).await; // the server may close before it is all sent
    let (got, closed) = read_until_closed(&mut big, Instant::now() + Duration::from_secs(20)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(closed && got.starts_with("HTTP/1.1 431"), "oversized head: {got:?}");
    ioc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_time_out_but_the_live_stream_stays_open() {
    let ioc = Ioc::start(&["--request-timeout-secs", "2"]).await;
    let mut sse = ioc.http.get(ioc.url("/api/v1/stream")).bearer_auth(&ioc.operator).send().await.expect("SSE");
    assert_eq!(sse.status(), StatusCode::OK);

    // A body announced at 1000 bytes that never comes in full: 408 JSON, security headers.
    let mut slow = TcpStream::connect(ioc.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: ioc\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
        ioc.agent
    );
    slow.write_all(head.as_bytes()).await.expect("send the head");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("}}") {
        assert!(started.elapsed() < Duration::from_secs(20), "no 408 within 20 s: {:?}", String::from_utf8_lossy(&answer));
        let _ = slow.write_all(b" ").await; // a byte a second
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(answer.contains(&format!("content-security-policy: {}", CSP.to_lowercase())), "{answer}");

    // The stream opened before all this is past the request timeout and still delivers.
    assert!(started.elapsed() > Duration::from_secs(2));
    let r = ioc.http.post(ioc.url("/api/v1/events")).bearer_auth(&ioc.agent).json(&camera_status(1)).send().await.expect("ingest");
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let mut text = String::new();
    while !text.contains("cam-hardening") {
        match tokio::time::timeout(Duration::from_secs(20), sse.chunk()).await.expect("an event within 20 s") {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream ended past the request timeout: {other:?} after {text:?}"),
        }
    }

    // Stopping the server ends the open stream cleanly (not cut at the drain deadline).
    let stopping = tokio::spawn(ioc.stop());
    loop {
        match tokio::time::timeout(Duration::from_secs(30), sse.chunk()).await.expect("the stream ends when the server stops") {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the stream was cut, not ended: {e}"),
        }
    }
    stopping.await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_holds_extra_clients_until_a_slot_frees() {
    let ioc = Ioc::start(&["--max-connections", "2", "--header-timeout-secs", "60"]).await;
    // The connect probe of `start` left nothing open (it was dropped); two idle clients fill
    // both slots (accepted first: the accept queue is first come, first served).
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(ioc.addr).await.expect("connect");
        // A complete exchange proves the server took this connection.
        s.write_all(b"GET /health HTTP/1.1\r\nHost: ioc\r\n\r\n").await.expect("request");
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("answered").expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        holders.push(s); // kept alive, idle
    }
    let third = tokio::spawn({
        let (http, url) = (ioc.http.clone(), ioc.url("/health"));
        async move { http.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!third.is_finished(), "a third connection is not served while two hold both slots");
    drop(holders.pop());
    let status = tokio::time::timeout(Duration::from_secs(20), third).await.expect("served once a slot frees");
    assert_eq!(status.expect("task").expect("GET"), StatusCode::OK);
    drop(holders);
    ioc.stop().await;
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert PEM, key PEM, cert DER).
fn self_signed() -> (String, String, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem(), ck.cert.der().to_vec())
}

/// `GET path` over HTTPS (rustls, `ring`, trusting only `ca_der`); returns the raw response.
async fn https_get(addr: SocketAddr, ca_der: &[u8], path: &str) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(ca_der.to_vec())).expect("trust the test certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_hsts_from_pem_files() {
    let pem = tempfile::tempdir().expect("temp dir");
    let (cert, key, der) = self_signed();
    let (cert_file, key_file) = (pem.path().join("ioc.crt"), pem.path().join("ioc.key"));
    std::fs::write(&cert_file, cert).expect("write cert");
    std::fs::write(&key_file, key).expect("write key");
    let ioc = Ioc::start(&["--tls-cert", &cert_file.display().to_string(), "--tls-key", &key_file.display().to_string()]).await;
    let response = tokio::time::timeout(Duration::from_secs(20), https_get(ioc.addr, &der, "/health"))
        .await
        .expect("answered within 20 s")
        .expect("HTTPS GET /health");
    let lower = response.to_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{response}");
    assert!(lower.contains("\r\nstrict-transport-security: max-age=31536000\r\n"), "HSTS over TLS: {response}");
    assert!(lower.contains(&format!("\r\ncontent-security-policy: {}\r\n", CSP.to_lowercase())), "{response}");
    assert!(lower.ends_with("\"database\":\"ok\"}"), "{response}");
    // Plain HTTP on the TLS port gets no answer (the handshake fails), and the port keeps working.
    let plain = reqwest::Client::new().get(ioc.url("/health")).timeout(Duration::from_secs(20)).send().await;
    assert!(plain.is_err(), "plain HTTP is not served on the TLS port: {plain:?}");
    let again = https_get(ioc.addr, &der, "/").await.expect("HTTPS GET /");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    ioc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_refused_naming_the_file() {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, _) = self_signed();
    let (cert_file, key_file, garbage) = (dir.path().join("ok.crt"), dir.path().join("ok.key"), dir.path().join("garbage.pem"));
    std::fs::write(&cert_file, cert).expect("write cert");
    std::fs::write(&key_file, key).expect("write key");
    std::fs::write(&garbage, "not a PEM file\n").expect("write garbage");
    let missing = dir.path().join("missing.crt");
    let (c, k, g, m) = (cert_file.display().to_string(), key_file.display().to_string(), garbage.display().to_string(), missing.display().to_string());
    for (flags, named) in [
        (["--tls-cert", m.as_str(), "--tls-key", k.as_str()], format!("--tls-cert {m}: cannot read")),
        (["--tls-cert", g.as_str(), "--tls-key", k.as_str()], format!("--tls-cert {g}: no PEM certificate")),
        (["--tls-cert", c.as_str(), "--tls-key", g.as_str()], format!("--tls-key {g}: no PEM private key")),
        (["--tls-cert", c.as_str(), "--tls-key", c.as_str()], format!("--tls-key {c}: no PEM private key")),
    ] {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args = serve_args(&dir.path().join("ioc-data"), listen, None, &flags).expect("serve arguments");
        let result = tokio::time::timeout(Duration::from_secs(20), ioc_api::server::serve(args, std::future::pending()))
            .await
            .expect("serve returns at once on a bad TLS file");
        let err = format!("{:#}", result.expect_err("a bad TLS file is an error"));
        assert!(err.contains(&named), "error names the flag and file ({named}): {err}");
        assert!(TcpStream::connect(listen).await.is_err(), "nothing listens after the error");
    }
    // One without the other is a usage error.
    let only_cert = serve_args(dir.path(), "127.0.0.1:1".parse().expect("addr"), None, &["--tls-cert", &c]);
    let err = only_cert.err().expect("--tls-cert alone is refused").to_string();
    assert!(err.contains("--tls-key"), "{err}");
}
