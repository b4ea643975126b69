//! The willy driver line protocol: one JSON object per line each way (docs/guide.md, "willy
//! drivers").
//!
//! ```text
//!  runner -> driver (stdin)                      driver -> runner (stdout)
//!  {"cmd":"connect","url":..,"client_id":..,     {"report":"ready","ms":..,"says":"mqtt.js 5.16.0"}
//!   "keepalive_s":..,"clean":..,                 {"report":"connected","session_present":false,..}
//!   "connect_timeout_ms":..,"will":{..}|null,    {"report":"connection_failed","says":"ECONNREFUSED.."}
//!   "username":..,"password":..}                 {"report":"published","topic":..,"says":..}
//!  {"cmd":"publish","topic":..,"payload":..,     {"report":"disconnect_returned","says":..}
//!   "qos":0,"retain":false}                      {"report":"disconnected","says":"close"}
//!  {"cmd":"disconnect"}                          {"report":"closed","says":..} (after a disconnect)
//!  {"cmd":"quit"}
//! ```
//!
//! `ms` is the driver's own monotonic clock in milliseconds (any origin); `says` is the client
//! library's own words. A report of a kind the runner does not know is kept as a note.

use serde::{Deserialize, Serialize};

/// A will in a `connect` command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WillCmd {
    pub topic: String,
    pub payload: String,
    pub qos: u8,
    pub retain: bool,
}

/// How a driver checks the server over TLS: the CA certificates (PEM) to trust, or any
/// certificate; and the name the certificate must carry (sent as SNI), whatever address the URL
/// has. A client certificate is not handed to drivers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TlsCmd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    pub servername: String,
}

impl TlsCmd {
    /// What a driver is told of willy's trust (the system's roots: no `ca_pem`, not insecure).
    pub fn of(t: &crate::tls::Trust) -> TlsCmd {
        use crate::tls::Roots;
        TlsCmd {
            ca_pem: match &t.roots {
                Roots::Pem(pem, _) => Some(String::from_utf8_lossy(pem).into_owned()),
                _ => None,
            },
            insecure: matches!(t.roots, Roots::Insecure),
            servername: t.name.clone(),
        }
    }

    /// The trust a driver of ours (rumqttc's) builds from it.
    pub fn trust(&self) -> crate::tls::Trust {
        use crate::tls::Roots;
        crate::tls::Trust {
            roots: match (&self.ca_pem, self.insecure) {
                (_, true) => Roots::Insecure,
                (Some(pem), false) => Roots::Pem(pem.clone().into_bytes(), "the run's CA".into()),
                (None, false) => Roots::System,
            },
            name: self.servername.clone(),
            identity: None,
        }
    }
}

/// What the runner tells a driver.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// A new connection (a driver drops any connection it still has first, without DISCONNECT).
    Connect {
        url: String,
        client_id: String,
        keepalive_s: u64,
        clean: bool,
        connect_timeout_ms: u64,
        will: Option<WillCmd>,
        username: Option<String>,
        password: Option<String>,
        /// Over TLS (`mqtts://`, `wss://`): what to trust.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<TlsCmd>,
    },
    Publish {
        topic: String,
        payload: String,
        qos: u8,
        retain: bool,
    },
    /// A clean disconnect, the library's own way (mqtt.js `end()`, paho `disconnect()`).
    Disconnect,
    Quit,
}

/// What a driver reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub report: ReportKind,
    /// The driver's monotonic clock, ms.
    #[serde(default)]
    pub ms: f64,
    /// The client library's own words.
    #[serde(default)]
    pub says: String,
    #[serde(default)]
    pub session_present: Option<bool>,
    #[serde(default)]
    pub topic: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// The driver started; `says` names the library and its version.
    Ready,
    /// The broker's CONNACK accepted the connection.
    Connected,
    /// A connection attempt failed before a CONNACK.
    ConnectionFailed,
    /// A PUBLISH was handed to the network (QoS 0: written).
    Published,
    PublishFailed,
    /// The library's disconnect call came back (mqtt.js: `end()`'s callback).
    DisconnectReturned,
    /// An established connection was lost without being asked to end.
    Disconnected,
    /// The connection closed after a disconnect was asked for.
    Closed,
    /// The driver did not understand a command.
    BadCommand,
    #[serde(other)]
    Other,
}

impl Command {
    /// The command as one line, newline included.
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a command serializes");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_one_json_line_tagged_by_cmd() {
        let l = Command::Publish {
            topic: "test/connected".into(),
            payload: "true".into(),
            qos: 0,
            retain: false,
        }
        .line();
        assert_eq!(
            l,
            "{\"cmd\":\"publish\",\"topic\":\"test/connected\",\"payload\":\"true\",\"qos\":0,\"retain\":false}\n"
        );
        assert_eq!(Command::Quit.line(), "{\"cmd\":\"quit\"}\n");
    }

    #[test]
    fn reports_read_with_the_fields_they_carry_and_unknown_kinds_kept() {
        let r: Report = serde_json::from_str(
            r#"{"report":"connected","ms":12.5,"session_present":true,"says":"connack"}"#,
        )
        .unwrap();
        assert_eq!(r.report, ReportKind::Connected);
        assert_eq!(r.session_present, Some(true));
        let r: Report = serde_json::from_str(r#"{"report":"pong","ms":1}"#).unwrap();
        assert_eq!(r.report, ReportKind::Other);
    }
}
