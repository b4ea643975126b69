//! What kind of failure a client's error names: the one place its text is read.
//!
//! A `connection_failed` record keeps the client's own words (rumqttc's, paho's, willy's v5
//! client's), and the journal's JSON stays those words. Readers that act on the kind (the
//! judge's WebSocket layer, the timeline's label) classify the text here, with [`ErrorKind::of`],
//! and match on the enum; the words willy's client writes for a kind come from the same table
//! ([`ErrorKind::text`]), so writer and reader cannot drift apart.
//!
//! ```text
//!  "WebSocket pong timeout (no pong within 1000 ms of a ping)" --of--> WsPongTimeout
//!  "network timeout (no CONNACK within ...)", "Keep alive timeout"    --> Timeout
//!  "I/O: Connection refused (os error 111)"                           --> Refused
//!  "Mqtt state: Last pingreq isn't acked"                             --> Ping
//! ```

/// The kinds, in the order they are tried: the first whose words the text contains (ASCII case
/// ignored) is the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// willy's own WebSocket pings went unanswered (seed 004): the WebSocket layer noticed.
    WsPongTimeout,
    /// Something timed out: the CONNACK, the network, or a keepalive.
    Timeout,
    /// The connection was refused (by the network or the broker).
    Refused,
    /// The connection was reset.
    Reset,
    /// A ping went unanswered (rumqttc's "Last pingreq isn't acked", willy's v5 "ping
    /// timeout (no PINGRESP ...)").
    Ping,
    /// Anything else: the label shows the text itself.
    Other,
}

/// Each kind: the words that name it (the first as willy's client writes them), and the label
/// the timeline draws. A ping that went unanswered is tried before the timeouts, so willy's v5
/// "ping timeout (no PINGRESP ...)" is drawn as one, not as a missing CONNACK (as the timeline's
/// own substring matching drew it, and a WebSocket pong timeout too, before this table).
const TABLE: &[(ErrorKind, &[&str], &str)] = &[
    (
        ErrorKind::WsPongTimeout,
        &["WebSocket pong timeout"],
        "WebSocket pong timeout",
    ),
    (
        ErrorKind::Ping,
        &["ping timeout", "pingreq"],
        "ping timeout",
    ),
    (
        ErrorKind::Timeout,
        &["no CONNACK", "timeout"],
        "no CONNACK: gives up",
    ),
    (ErrorKind::Refused, &["refused"], "connection refused"),
    (ErrorKind::Reset, &["reset"], "connection reset"),
    // Any other words of a ping, tried last as before this table.
    (ErrorKind::Ping, &["ping"], "ping timeout"),
];

impl ErrorKind {
    /// The kind of a client's error text.
    pub fn of(error: &str) -> ErrorKind {
        let lower = error.to_ascii_lowercase();
        TABLE
            .iter()
            .find(|(_, words, _)| {
                words
                    .iter()
                    .any(|w| lower.contains(&w.to_ascii_lowercase()))
            })
            .map_or(ErrorKind::Other, |(k, _, _)| *k)
    }

    /// The words that start an error of this kind when willy's client writes it; what follows
    /// them is detail ("WebSocket pong timeout (no pong within 1000 ms of a ping)").
    /// "" for [`ErrorKind::Other`].
    pub fn text(self) -> &'static str {
        TABLE
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("", |(_, words, _)| words[0])
    }

    /// The timeline's short label for the kind; None for [`ErrorKind::Other`], whose label is
    /// the text itself.
    pub fn label(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(k, _, _)| *k == self)
            .map(|(_, _, l)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_client_writes_is_its_kind() {
        for (text, kind) in [
            (
                "WebSocket pong timeout (no pong within 1000 ms of a ping)",
                ErrorKind::WsPongTimeout,
            ),
            (
                "network timeout (no CONNACK within the connection timeout)",
                ErrorKind::Timeout,
            ),
            ("error: connack timeout", ErrorKind::Timeout),
            (
                "ping timeout (no PINGRESP before the next PINGREQ was due)",
                ErrorKind::Ping,
            ),
            ("Keep alive timeout", ErrorKind::Timeout),
            ("I/O: Connection refused (os error 111)", ErrorKind::Refused),
            (
                "I/O: Connection reset by peer (os error 104)",
                ErrorKind::Reset,
            ),
            (
                "Mqtt state: Last pingreq isn't acked (MqttState(AwaitPingResp))",
                ErrorKind::Ping,
            ),
            ("connection closed by the broker", ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::of(text), kind, "{text}");
        }
    }

    #[test]
    fn the_text_willy_writes_reads_back_as_its_kind() {
        let written = format!(
            "{} (no pong within 5 ms of a ping)",
            ErrorKind::WsPongTimeout.text()
        );
        assert_eq!(ErrorKind::of(&written), ErrorKind::WsPongTimeout);
        assert_eq!(ErrorKind::Other.label(), None);
        assert_eq!(
            ErrorKind::WsPongTimeout.label(),
            Some("WebSocket pong timeout")
        );
    }
}
