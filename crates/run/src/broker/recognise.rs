//! Which broker is behind a URL, from what it says of itself; and whether it lets us in at all.
//!
//! ```text
//!  connect (3.1.1, the run's login) --CONNACK refused--> Err("not authorized (3.1.1 return code 5)")
//!     --SUBSCRIBE $SYS/broker/version--> retained "mosquitto version 2.0.11" --> Some(that)
//!     --nothing within a second--> None: judged by the spec
//! ```
//!
//! mosquitto publishes its version retained on `$SYS/broker/version` (its `sys_interval`
//! default of 10 s > 0 keeps it there); a broker that says nothing stays unknown and is judged
//! by the spec alone. A URL broker's profile comes only from here or from `--profile`.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS};

use super::access;
use super::profile::Profile;

/// The topic mosquitto (and others) publish their version on.
pub const VERSION_TOPIC: &str = "$SYS/broker/version";

/// What the broker said of itself, or why it would not let us in.
pub async fn ask(addr: SocketAddr) -> Result<Option<String>, String> {
    let id = format!("unplug-probe-{}", std::process::id());
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_session(true);
    access::apply_v4(&mut o);
    let (client, mut el) = AsyncClient::new(o, 4);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut subscribed_at: Option<tokio::time::Instant> = None;
    let mut connected = false;
    let answer = loop {
        let wait = match subscribed_at {
            // A retained message comes right behind the SUBACK; a second is ample.
            Some(t) => (t + Duration::from_secs(1)).min(deadline),
            None => deadline,
        };
        match tokio::time::timeout_at(wait, el.poll()).await {
            Err(_) => break Ok(None),
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                connected = true;
                let _ = client.try_subscribe(VERSION_TOPIC, QoS::AtMostOnce);
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                subscribed_at = Some(tokio::time::Instant::now())
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == VERSION_TOPIC => {
                break Ok(Some(String::from_utf8_lossy(&p.payload).trim().to_string()))
            }
            Ok(Ok(_)) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => {
                break Err(format!(
                    "the broker refused unplug's client: {}",
                    access::v4_refusal(code)
                ))
            }
            Ok(Err(e)) if !connected && access::tls().is_some() && tls_failure(&e) => {
                break Err(format!(
                    "the TLS handshake failed: {}",
                    crate::broker::access::describe(&e)
                ))
            }
            Ok(Err(e)) if !connected => {
                break Err(format!(
                    "{} ({})",
                    access::closed_before_connack(false),
                    crate::broker::access::describe(&e)
                ))
            }
            // Lost after the CONNACK: we learnt nothing of its name, but it lets us in.
            Ok(Err(_)) => break Ok(None),
        }
    };
    if connected {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(200), el.poll()).await;
    }
    answer
}

/// Did a connection fail in its TLS handshake (a certificate refused either way, an alert)?
fn tls_failure(e: &ConnectionError) -> bool {
    let text = crate::broker::access::describe(e);
    ["certificate", "alert", "TLS", "handshake"]
        .iter()
        .any(|w| text.contains(w))
}

/// The profile for what a broker said of itself, and how it was recognised, for the summary's
/// `broker`. mosquitto 2.x and 1.4.x have profiles; another version has another keepalive
/// loop, so it is judged by the spec.
pub fn profile_for(said: Option<&str>) -> (Profile, String) {
    match said {
        Some(v)
            if v.starts_with("mosquitto version 2.") || v.starts_with("mosquitto version 1.4.") =>
        {
            let version = v.trim_start_matches("mosquitto version ").to_string();
            (
                Profile::for_mosquitto(&version),
                format!("recognised from {VERSION_TOPIC}: {v:?}"),
            )
        }
        Some(v) => (
            Profile::unknown(),
            format!("{VERSION_TOPIC} says {v:?}, which has no profile: judged by the spec"),
        ),
        None => (
            Profile::unknown(),
            format!("not recognised (nothing on {VERSION_TOPIC}): judged by the spec"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mosquitto_2_and_1_4_get_a_mosquitto_profile() {
        let (p, how) = profile_for(Some("mosquitto version 2.0.11"));
        assert_eq!(p, Profile::mosquitto("2.0.11"));
        assert!(how.contains("recognised"));
        assert_eq!(
            profile_for(Some("mosquitto version 1.4.15")).0,
            Profile::mosquitto_14("1.4.15")
        );
        assert_eq!(
            profile_for(Some("mosquitto version 1.5.7")).0,
            Profile::unknown()
        );
        assert_eq!(profile_for(None).0, Profile::unknown());
    }
}
