//! Broker URLs: `mqtt://[user[:pass]@]host[:port]` (port 1883) and `mqtts://…` (TLS, port 8883).
//!
//! Parsed by hand rather than with a general URL parser: user and password are taken as
//! written (no percent-decoding, so a password may hold `/`, `:` or `@`; the last `@` ends
//! it), and nothing may follow `host[:port]`. IPv6 literals are refused: rumqttc joins host and
//! port into `host:port` and uses the host as the TLS server name, neither of which works for
//! one.

use crate::Credentials;

/// Default port of `mqtt://`.
pub const MQTT_PORT: u16 = 1883;
/// Default port of `mqtts://`.
pub const MQTTS_PORT: u16 = 8883;

/// Where a URL points, and with which credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    /// `mqtts://`.
    pub tls: bool,
    /// From `user[:pass]@`.
    pub credentials: Option<Credentials>,
}

/// What is wrong with a broker URL. Every variant carries the URL [`redact`]ed, never its
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("'{url}' must start with mqtt:// or mqtts://")]
    Scheme { url: String },
    #[error("'{url}' has no host")]
    NoHost { url: String },
    #[error("'{url}': bad host '{host}' (a host name or IPv4 address; IPv6 literals are not supported)")]
    Host { url: String, host: String },
    #[error("'{url}': bad port '{port}' (1 to 65535)")]
    Port { url: String, port: String },
    #[error("'{url}': nothing may follow host[:port] (found '{rest}')")]
    Path { url: String, rest: String },
    #[error("'{url}': no user name before ':password@'")]
    NoUser { url: String },
}

impl std::str::FromStr for BrokerUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        BrokerUrl::parse(url)
    }
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let shown = || redact(url);
        let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("mqtts://") {
            (r, true, MQTTS_PORT)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (r, false, MQTT_PORT)
        } else {
            return Err(UrlError::Scheme { url: shown() });
        };
        let (auth, after_auth) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (host_port, path) = after_auth.split_at(after_auth.find('/').unwrap_or(after_auth.len()));
        if !path.is_empty() && path != "/" {
            return Err(UrlError::Path { url: shown(), rest: path.to_owned() });
        }
        if host_port.contains(|c: char| c.is_whitespace() || matches!(c, '[' | ']')) {
            return Err(UrlError::Host { url: shown(), host: host_port.to_owned() });
        }
        let (host, port) = match host_port.split_once(':') {
            Some((h, p)) => (h, parse_port(p).ok_or_else(|| UrlError::Port { url: shown(), port: p.to_owned() })?),
            None => (host_port, default_port),
        };
        if host.is_empty() {
            return Err(UrlError::NoHost { url: shown() });
        }
        let credentials = match auth {
            Some(a) => {
                let (user, password) = a.split_once(':').unwrap_or((a, ""));
                if user.is_empty() {
                    return Err(UrlError::NoUser { url: shown() });
                }
                Some(Credentials::new(user, password))
            }
            None => None,
        };
        Ok(BrokerUrl { host: host.to_owned(), port, tls, credentials })
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse().ok().filter(|&p| p != 0)
}

/// `url` with whatever stands before its `@` (user and password) replaced by `***`, for logs
/// and messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(host: &str, port: u16, tls: bool, credentials: Option<(&str, &str)>) -> Result<BrokerUrl, UrlError> {
        Ok(BrokerUrl { host: host.into(), port, tls, credentials: credentials.map(|(u, p)| Credentials::new(u, p)) })
    }

    #[test]
    fn parses_hosts_ports_and_credentials() {
        assert_eq!(BrokerUrl::parse("mqtt://10.0.0.2:1884"), ok("10.0.0.2", 1884, false, None));
        assert_eq!(BrokerUrl::parse("mqtt://broker"), ok("broker", 1883, false, None));
        assert_eq!(BrokerUrl::parse("mqtts://broker"), ok("broker", 8883, true, None));
        assert_eq!(BrokerUrl::parse("mqtts://broker:18883/"), ok("broker", 18883, true, None));
        assert_eq!(BrokerUrl::parse("mqtt://u:p@broker.local:1884"), ok("broker.local", 1884, false, Some(("u", "p"))));
        assert_eq!(BrokerUrl::parse("mqtts://agent@broker"), ok("broker", 8883, true, Some(("agent", ""))));
        // Taken as written: the last '@' ends the password.
        assert_eq!(BrokerUrl::parse("mqtt://u:p@s/s:x@broker"), ok("broker", 1883, false, Some(("u", "p@s/s:x"))));
        assert_eq!("mqtt://b:2".parse::<BrokerUrl>(), ok("b", 2, false, None));
    }

    #[test]
    fn errors_name_the_bad_part() {
        let err = |url: &str| BrokerUrl::parse(url).expect_err(url).to_string();
        assert_eq!(err("tcp://broker"), "'tcp://broker' must start with mqtt:// or mqtts://");
        assert_eq!(err("mqtts://:8883"), "'mqtts://:8883' has no host");
        assert_eq!(err("mqtt://u:p@"), "'mqtt://***@' has no host");
        assert_eq!(err("mqtt://broker:80x"), "'mqtt://broker:80x': bad port '80x' (1 to 65535)");
        assert_eq!(err("mqtt://broker:0"), "'mqtt://broker:0': bad port '0' (1 to 65535)");
        assert_eq!(err("mqtt://broker:65536"), "'mqtt://broker:65536': bad port '65536' (1 to 65535)");
        let hint = "(a host name or IPv4 address; IPv6 literals are not supported)";
        assert_eq!(err("mqtt://[::1]:1883"), format!("'mqtt://[::1]:1883': bad host '[::1]:1883' {hint}"));
        assert_eq!(err("mqtt://bro ker"), format!("'mqtt://bro ker': bad host 'bro ker' {hint}"));
        assert_eq!(err("mqtt://broker/topic"), "'mqtt://broker/topic': nothing may follow host[:port] (found '/topic')");
        assert_eq!(err("mqtt://:pw@broker"), "'mqtt://***@broker': no user name before ':password@'");
    }

    #[test]
    fn errors_never_carry_the_password() {
        for url in ["http://u:s3cret@x", "mqtt://u:s3cret@", "mqtt://u:s3cret@h:p", "mqtt://u:s3cret@h/x", "mqtt://:s3cret@h"] {
            let e = BrokerUrl::parse(url).expect_err(url);
            assert!(!e.to_string().contains("s3cret") && !format!("{e:?}").contains("s3cret"), "{url}: {e}");
        }
    }

    #[test]
    fn redacts_user_and_password() {
        assert_eq!(redact("mqtt://u:secret@broker:1884"), "mqtt://***@broker:1884");
        assert_eq!(redact("mqtts://u:p@ss@broker"), "mqtts://***@broker");
        assert_eq!(redact("mqtt://broker"), "mqtt://broker");
        assert_eq!(redact("no scheme u:p@broker"), "no scheme u:p@broker");
    }
}
