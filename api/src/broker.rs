//! The embedded MQTT broker (rumqttd) for a zero-set-up IOC: agents connect to it as they
//! would to a broker cluster in production.

use std::net::SocketAddr;

/// Starts rumqttd on `listen` (MQTT 3.1.1) on its own thread (its `start` blocks).
pub fn start(listen: SocketAddr) -> anyhow::Result<()> {
    let toml = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "{listen}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 8388608
    max_inflight_count = 100
    dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&toml)?;
    // Fail early (and clearly) when the port is taken: rumqttd would only log it.
    std::net::TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("embedded MQTT broker cannot listen on {listen}: {e}"))?;
    std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        if let Err(e) = broker.start() {
            tracing::error!("embedded MQTT broker stopped: {e}");
        }
    })?;
    Ok(())
}
