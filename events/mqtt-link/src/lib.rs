//! How Roadsight's binaries reach an MQTT broker: the broker URL ([`BrokerUrl`]), credentials
//! ([`Credentials`], password redacted in `Debug`), TLS ([`TlsFiles`] → rustls with the `ring`
//! provider) and the rumqttc options built from them ([`BrokerSettings::mqtt_options`]), so
//! that `edge-agent` and `ioc-api` connect the same way. What only one side does (the agent's
//! last will and outbox, the API's shared subscriptions and manual acknowledgements) stays in
//! that binary. No dependency on the pipeline, GStreamer or ONNX Runtime.

mod credentials;
mod tls;
mod url;

use std::sync::Arc;
use std::time::Duration;

pub use credentials::Credentials;
pub use tls::{TlsError, TlsErrors, TlsFile, TlsFiles};
pub use url::{redact, BrokerUrl, UrlError, MQTTS_PORT, MQTT_PORT};

/// Default keep-alive interval.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Largest MQTT packet sent or accepted (a snapshot JPEG travels in one).
pub const MAX_PACKET_BYTES: usize = 16 << 20;

/// Everything needed to connect to a broker. `Debug` redacts the password and shows only
/// whether TLS is on.
#[derive(Clone)]
pub struct BrokerSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<Credentials>,
    pub keep_alive: Duration,
    /// Set for `mqtts://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("credentials", &self.credentials)
            .field("keep_alive", &self.keep_alive)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl BrokerSettings {
    /// Settings for `url` (its credentials included) with the default keep-alive.
    pub fn new(url: BrokerUrl, client_id: impl Into<String>, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        BrokerSettings {
            host: url.host,
            port: url.port,
            client_id: client_id.into(),
            credentials: url.credentials,
            keep_alive: KEEP_ALIVE,
            tls,
        }
    }

    /// `host:port`, for logs.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// rumqttc's options for these settings: client id, broker, keep-alive, packet size limit,
    /// credentials and, for `mqtts://`, the TLS transport. Session, will and acknowledgement
    /// options are the caller's to add.
    pub fn mqtt_options(&self) -> rumqttc::MqttOptions {
        let mut o = rumqttc::MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive);
        o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some(c) = &self.credentials {
            o.set_credentials(c.username.clone(), c.password.clone());
        }
        if let Some(tls) = &self.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::clone(tls))));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_carry_broker_credentials_and_tls() {
        let url = BrokerUrl::parse("mqtts://agent:s3cr3t-pw@broker.local:18883").expect("url");
        let tls = TlsFiles::default().client_config(url.tls).expect("system roots");
        let mut s = BrokerSettings::new(url, "roadsight-a1", tls);
        s.keep_alive = Duration::from_secs(7);
        let o = s.mqtt_options();
        assert_eq!(o.broker_address(), ("broker.local".to_owned(), 18883));
        assert_eq!(o.client_id(), "roadsight-a1");
        assert_eq!(o.credentials().map(|l| (l.username, l.password)), Some(("agent".to_owned(), "s3cr3t-pw".to_owned())));
        assert_eq!(o.keep_alive(), Duration::from_secs(7));
        assert_eq!(o.max_packet_size(), MAX_PACKET_BYTES);
        assert!(matches!(o.transport(), rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(_))));
        assert_eq!(s.address(), "broker.local:18883");
        let text = format!("{s:?}");
        assert!(!text.contains("s3cr3t-pw") && text.contains("agent") && text.contains("tls: true"), "{text}");
    }

    #[test]
    fn plain_options_have_no_tls_and_no_credentials() {
        let s = BrokerSettings::new(BrokerUrl::parse("mqtt://127.0.0.1").expect("url"), "c", None);
        let o = s.mqtt_options();
        assert_eq!(o.broker_address(), ("127.0.0.1".to_owned(), 1883));
        assert!(o.credentials().is_none());
        assert_eq!(o.keep_alive(), KEEP_ALIVE);
        assert!(matches!(o.transport(), rumqttc::Transport::Tcp));
    }
}
