//! Getting in: the run's login, and a broker's refusals said in its own terms.
//!
//! ```text
//!  --broker tcp://user:pass@h:p | --username U --password-env VAR
//!        --> set_login (once per run) --> every client's options (willy, monit, pubby, twin, late)
//!  CONNACK refused / closed after CONNECT --> refusal text: "not authorized (3.1.1 return code 5)"
//! ```
//!
//! A run has one broker, so the login is the run's, held here rather than threaded through
//! every actor. The password is only ever handed to a client library or written into a CONNECT;
//! [`Login`]'s `Debug` hides it and nothing formats it.

use std::sync::RwLock;

/// A login for a broker that wants one. Its `Debug` hides the password, so no log line, error
/// or file can carry it by accident.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Login {
    pub username: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

static LOGIN: RwLock<Option<Login>> = RwLock::new(None);

/// How willy's error starts when the broker refused its CONNECT: the runner ends the run on
/// it (before the cut) instead of retrying a login that will not work.
pub const REFUSED: &str = "the broker refused the connection: ";

/// How a client's error reads when no CONNACK came within its connection timeout (rumqttc's
/// NetworkTimeout, and our v5 client's at any step before the CONNACK).
pub const NO_CONNACK: &str = "network timeout (no CONNACK within the connection timeout)";

/// The login every client of this run uses from now on (None: none).
pub fn set_login(login: Option<Login>) {
    *LOGIN.write().unwrap_or_else(|p| p.into_inner()) = login;
}

/// The run's login, if the broker needs one.
pub fn login() -> Option<Login> {
    LOGIN.read().unwrap_or_else(|p| p.into_inner()).clone()
}

static TLS: RwLock<Option<std::sync::Arc<rustls::ClientConfig>>> = RwLock::new(None);

/// From now on every client of the run that reaches the broker itself (monit, pubby, the
/// twin, the late subscriber) speaks TLS with this config (None: plain TCP).
pub fn set_tls(config: Option<std::sync::Arc<rustls::ClientConfig>>) {
    *TLS.write().unwrap_or_else(|p| p.into_inner()) = config;
}

/// The run's TLS for the clients that reach the broker itself, if it is a TLS run.
pub fn tls() -> Option<std::sync::Arc<rustls::ClientConfig>> {
    TLS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// rumqttc's transport for a TLS config.
pub fn rumqttc_tls(config: std::sync::Arc<rustls::ClientConfig>) -> rumqttc::Transport {
    rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(config))
}

/// Give a rumqttc 3.1.1 client the run's login, and its TLS.
pub fn apply_v4(o: &mut rumqttc::MqttOptions) {
    if let Some(l) = login() {
        o.set_credentials(l.username, l.password.unwrap_or_default());
    }
    if let Some(c) = tls() {
        o.set_transport(rumqttc_tls(c));
    }
}

/// Give a rumqttc MQTT 5 client the run's login, and its TLS.
pub fn apply_v5(o: &mut rumqttc::v5::MqttOptions) {
    if let Some(l) = login() {
        o.set_credentials(l.username, l.password.unwrap_or_default());
    }
    if let Some(c) = tls() {
        o.set_transport(rumqttc_tls(c));
    }
}

/// A 3.1.1 CONNACK refusal in the spec's words [MQTT-3.2.2.3, table 3.1].
pub fn v4_refusal(code: rumqttc::ConnectReturnCode) -> String {
    use rumqttc::ConnectReturnCode as C;
    let (what, n) = match code {
        C::Success => ("accepted", 0),
        C::RefusedProtocolVersion => ("unacceptable protocol version", 1),
        C::BadClientId => ("identifier rejected", 2),
        C::ServiceUnavailable => ("server unavailable", 3),
        C::BadUserNamePassword => ("bad user name or password", 4),
        C::NotAuthorized => ("not authorized", 5),
    };
    format!("{what} (3.1.1 return code {n})")
}

/// An MQTT 5 CONNACK refusal in the spec's words [MQTT 5 3.2.2.2, table 3-1]. rumqttc maps
/// the three 3.1.1-only codes onto its v5 enum too; they are named as such.
pub fn v5_refusal(code: rumqttc::v5::mqttbytes::v5::ConnectReturnCode) -> String {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as C;
    let (what, n): (&str, u8) = match code {
        C::Success => ("success", 0x00),
        C::RefusedProtocolVersion => {
            return "unacceptable protocol version (3.1.1 return code 1 to an MQTT 5 CONNECT: the broker does not speak MQTT 5; run a 3.1.1 scenario)".into()
        }
        C::BadClientId => return "identifier rejected (3.1.1 return code 2)".into(),
        C::ServiceUnavailable => return "server unavailable (3.1.1 return code 3)".into(),
        C::UnspecifiedError => ("unspecified error", 0x80),
        C::MalformedPacket => ("malformed packet", 0x81),
        C::ProtocolError => ("protocol error", 0x82),
        C::ImplementationSpecificError => ("implementation specific error", 0x83),
        C::UnsupportedProtocolVersion => {
            return "unsupported protocol version (MQTT 5 reason code 0x84): the broker does not speak MQTT 5; run a 3.1.1 scenario".into()
        }
        C::ClientIdentifierNotValid => ("client identifier not valid", 0x85),
        C::BadUserNamePassword => ("bad user name or password", 0x86),
        C::NotAuthorized => ("not authorized", 0x87),
        C::ServerUnavailable => ("server unavailable", 0x88),
        C::ServerBusy => ("server busy", 0x89),
        C::Banned => ("banned", 0x8a),
        C::BadAuthenticationMethod => ("bad authentication method", 0x8c),
        C::TopicNameInvalid => ("topic name invalid", 0x90),
        C::PacketTooLarge => ("packet too large", 0x95),
        C::QuotaExceeded => ("quota exceeded", 0x97),
        C::PayloadFormatInvalid => ("payload format invalid", 0x99),
        C::RetainNotSupported => ("retain not supported", 0x9a),
        C::QoSNotSupported => ("QoS not supported", 0x9b),
        C::UseAnotherServer => ("use another server", 0x9c),
        C::ServerMoved => ("server moved", 0x9d),
        C::ConnectionRateExceeded => ("connection rate exceeded", 0x9f),
    };
    format!("{what} (MQTT 5 reason code 0x{n:02x})")
}

/// A raw MQTT 5 CONNACK reason code (willy's own v5 client reads the byte itself).
pub fn v5_code_refusal(code: u8) -> String {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as C;
    let c = match code {
        0x80 => C::UnspecifiedError,
        0x81 => C::MalformedPacket,
        0x82 => C::ProtocolError,
        0x83 => C::ImplementationSpecificError,
        0x84 => C::UnsupportedProtocolVersion,
        0x85 => C::ClientIdentifierNotValid,
        0x86 => C::BadUserNamePassword,
        0x87 => C::NotAuthorized,
        0x88 => C::ServerUnavailable,
        0x89 => C::ServerBusy,
        0x8a => C::Banned,
        0x8c => C::BadAuthenticationMethod,
        0x90 => C::TopicNameInvalid,
        0x95 => C::PacketTooLarge,
        0x97 => C::QuotaExceeded,
        0x99 => C::PayloadFormatInvalid,
        0x9a => C::RetainNotSupported,
        0x9b => C::QoSNotSupported,
        0x9c => C::UseAnotherServer,
        0x9d => C::ServerMoved,
        0x9f => C::ConnectionRateExceeded,
        1 => C::RefusedProtocolVersion,
        2 => C::BadClientId,
        3 => C::ServiceUnavailable,
        _ => return format!("refused (reason code 0x{code:02x})"),
    };
    v5_refusal(c)
}

/// What a connection closed before its CONNACK says about the broker.
pub fn closed_before_connack(v5: bool) -> String {
    if v5 {
        "the broker closed the connection after an MQTT 5 CONNECT without a CONNACK: it does not speak MQTT 5; run a 3.1.1 scenario".into()
    } else {
        "the broker closed the connection after the CONNECT without a CONNACK".into()
    }
}

/// rumqttc's error, with the io cause where there is one.
pub fn describe(e: &rumqttc::ConnectionError) -> String {
    match e {
        rumqttc::ConnectionError::ConnectionRefused(code) => {
            format!("{}{}", REFUSED, v4_refusal(*code))
        }
        rumqttc::ConnectionError::NetworkTimeout => NO_CONNACK.to_string(),
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::AwaitPingResp) => {
            "ping timeout (no PINGRESP before the next PINGREQ was due)".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_named_with_their_code() {
        assert_eq!(
            v4_refusal(rumqttc::ConnectReturnCode::NotAuthorized),
            "not authorized (3.1.1 return code 5)"
        );
        assert_eq!(
            v5_code_refusal(0x86),
            "bad user name or password (MQTT 5 reason code 0x86)"
        );
        assert!(v5_code_refusal(1).contains("does not speak MQTT 5"));
    }

    #[test]
    fn a_logins_debug_hides_its_password() {
        let l = Login {
            username: "u".into(),
            password: Some("s3cret".into()),
        };
        assert!(!format!("{l:?}").contains("s3cret"));
    }
}
