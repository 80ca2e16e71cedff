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
    fn names_a_refused_connection() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let text = explain(&format!("rtsp://127.0.0.1:{port}/x"), "Could not open resource for reading and writing.".into());
        assert!(text.starts_with("connection refused by 127.0.0.1"), "{text}");
    }
}
