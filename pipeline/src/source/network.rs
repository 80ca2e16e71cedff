//! Naming the cause when a network camera cannot be opened. GStreamer's `rtspsrc` reports
//! "Could not open resource for reading and writing" for an unknown host and a refused
//! connection alike; an installer needs to know which, so on such a failure we look at the
//! network ourselves (resolve the host, try a TCP connection) and say what we found.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long the TCP probe may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Host and port of a network URI (`rtsp://[user:pass@]host[:port]/…`, `rtsps://`,
/// `http(s)://`); `None` for files and other schemes.
pub fn host_port(uri: &str) -> Option<(String, u16)> {
    let (scheme, rest) = uri.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "rtsp" | "rtspt" | "rtspu" => 554,
        "rtsps" => 322,
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port);
        return Some((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None if !hostport.is_empty() => Some((hostport.to_owned(), default_port)),
        None => None,
    }
}

/// What the network says about `host:port`, or `None` when a TCP connection succeeds (the
/// problem is elsewhere: the camera's answer, credentials, the stream).
pub fn probe(host: &str, port: u16) -> Option<String> {
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return Some(format!("cannot resolve host '{host}' ({e})")),
    };
    let Some(addr) = addrs.first() else {
        return Some(format!("cannot resolve host '{host}' (no address)"));
    };
    match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some(format!("connection refused by {host}:{port} (nothing listens there)"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            Some(format!("no answer from {host}:{port} within {} s (host down or firewalled)", CONNECT_TIMEOUT.as_secs()))
        }
        Err(e) => Some(format!("cannot connect to {host}:{port} ({e})")),
    }
}

/// Watches whether a network camera's port answers, cheaply (a TCP connect, no RTSP), so a
/// supervisor waiting out its backoff can reconnect the moment the camera returns instead of
/// at the end of the wait. Files and URIs without a host have nothing to watch.
#[derive(Debug)]
pub struct ReturnWatch {
    addr: Option<std::net::SocketAddr>,
    /// When the port last did not answer.
    last_silent: Option<std::time::Instant>,
}

/// How long one probe may wait for the TCP handshake (loopback and LAN cameras answer in
/// well under a millisecond; a dead host costs this much per probe).
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// A camera whose port answers within this long of being silent has just returned.
const RETURN_WINDOW: Duration = Duration::from_secs(10);

impl ReturnWatch {
    /// Resolves the URI's host once (no watch when it has none or does not resolve).
    pub fn new(uri: &str) -> Self {
        let addr = host_port(uri).and_then(|(h, p)| (h.as_str(), p).to_socket_addrs().ok()?.next());
        ReturnWatch { addr, last_silent: None }
    }

    /// True when the camera's port answers now although it did not within the last few
    /// seconds: it has just come back, so reconnect at once. A camera whose port kept
    /// answering (it failed for another reason: credentials, no stream) returns false, so the
    /// normal backoff applies.
    pub fn returned(&mut self) -> bool {
        let Some(addr) = self.addr else { return false };
        let now = std::time::Instant::now();
        if TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok() {
            // Reported once per return: if the reconnect then fails, the backoff applies.
            self.last_silent.take().is_some_and(|t| now - t < RETURN_WINDOW)
        } else {
            self.last_silent = Some(now);
            false
        }
    }
}

/// `message` (a GStreamer error about `uri`) with the network cause added when GStreamer
/// could not say it.
pub fn explain(uri: &str, message: String) -> String {
    if message.contains("Unauthorized") {
        return format!("the camera refused the credentials (401 Unauthorized): check the user and password in the URL ({message})");
    }
    let generic = message.contains("Could not open resource") || message.contains("Could not read from resource");
    if !generic {
        return message;
    }
    match host_port(uri).and_then(|(h, p)| probe(&h, p)) {
        Some(cause) => format!("{cause}: {message}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_network_uris() {
        assert_eq!(host_port("rtsp://u:p@10.0.0.5/stream1"), Some(("10.0.0.5".into(), 554)));
        assert_eq!(host_port("rtsp://cam.local:8554/a?b"), Some(("cam.local".into(), 8554)));
        assert_eq!(host_port("rtsps://[::1]:9000/x"), Some(("::1".into(), 9000)));
        assert_eq!(host_port("file:///tmp/a.mp4"), None);
        assert_eq!(host_port("/tmp/a.mp4"), None);
    }

    #[test]
    fn return_watch_fires_when_a_silent_port_starts_answering() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let uri = format!("rtsp://127.0.0.1:{port}/cam");
        let mut watch = ReturnWatch::new(&uri);
        assert!(!watch.returned(), "answering all along: not a return, the normal backoff applies");
        drop(listener);
        assert!(!watch.returned(), "silent");
        let _back = std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind the same port");
        assert!(watch.returned(), "answers again after being silent");
        assert!(!watch.returned(), "a return is reported once");
        assert!(!ReturnWatch::new("file:///tmp/clip.mp4").returned(), "nothing to watch for files");
    }

    #[test]
    fn names_a_refused_connection() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let text = explain(&format!("rtsp://127.0.0.1:{port}/x"), "Could not open resource for reading and writing.".into());
        assert!(text.starts_with("connection refused by 127.0.0.1"), "{text}");
    }
}
