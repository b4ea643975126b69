//! The names of the checks: one enum, written as the same kebab-case strings the summaries,
//! tables and profiles have always carried (`keepalive-drop`, `will-on-disconnect e00104`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One spec check. `WillOnDisconnect` carries the DISCONNECT bytes willy wrote, because brokers
/// differ by encoding and a profile's deviation names exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CheckId {
    WillOnDisconnect(Vec<u8>),
    NoWillAfterDisconnect,
    RetainedWill,
    DeliveryQos,
    SessionPresent,
    QueuedDelivery,
    DupOnResend,
    NoDuplicates,
    NoQosUpgrade,
    MonitSessionPresent,
    WillQueuedForSubscriber,
    WillQos,
    WillOnce,
    Takeover,
    TakeoverClose,
    TakeoverWill,
    FaultApplied,
    Will,
    NoNewsWithoutWill,
    KeepaliveDrop,
    WillTiming,
    WillDelay,
    WillPrompt,
    NoBrokerDrop,
    WillAfterClientClose,
    ClientDetect,
    NoClientError,
    AttemptsRefused,
    AttemptsHang,
    IdleTimeoutCut,
    WillAfterIdleCut,
    NoIdleTimeoutCut,
    ServerKeepalive,
    WsPingsNotKeepalive,
    WsPongTimeout,
    CleanDisconnect,
    UnaccountedMessage,
}

/// Every check without data, with its name.
const NAMES: &[(CheckId, &str)] = &[
    (CheckId::NoWillAfterDisconnect, "no-will-after-disconnect"),
    (CheckId::RetainedWill, "retained-will"),
    (CheckId::DeliveryQos, "delivery-qos"),
    (CheckId::SessionPresent, "session-present"),
    (CheckId::QueuedDelivery, "queued-delivery"),
    (CheckId::DupOnResend, "dup-on-resend"),
    (CheckId::NoDuplicates, "no-duplicates"),
    (CheckId::NoQosUpgrade, "no-qos-upgrade"),
    (CheckId::MonitSessionPresent, "monit-session-present"),
    (
        CheckId::WillQueuedForSubscriber,
        "will-queued-for-subscriber",
    ),
    (CheckId::WillQos, "will-qos"),
    (CheckId::WillOnce, "will-once"),
    (CheckId::Takeover, "takeover"),
    (CheckId::TakeoverClose, "takeover-close"),
    (CheckId::TakeoverWill, "takeover-will"),
    (CheckId::FaultApplied, "fault-applied"),
    (CheckId::Will, "will"),
    (CheckId::NoNewsWithoutWill, "no-news-without-will"),
    (CheckId::KeepaliveDrop, "keepalive-drop"),
    (CheckId::WillTiming, "will-timing"),
    (CheckId::WillDelay, "will-delay"),
    (CheckId::WillPrompt, "will-prompt"),
    (CheckId::NoBrokerDrop, "no-broker-drop"),
    (CheckId::WillAfterClientClose, "will-after-client-close"),
    (CheckId::ClientDetect, "client-detect"),
    (CheckId::NoClientError, "no-client-error"),
    (CheckId::AttemptsRefused, "attempts-refused"),
    (CheckId::AttemptsHang, "attempts-hang"),
    (CheckId::IdleTimeoutCut, "idle-timeout-cut"),
    (CheckId::WillAfterIdleCut, "will-after-idle-cut"),
    (CheckId::NoIdleTimeoutCut, "no-idle-timeout-cut"),
    (CheckId::ServerKeepalive, "server-keepalive"),
    (CheckId::WsPingsNotKeepalive, "ws-pings-not-keepalive"),
    (CheckId::WsPongTimeout, "ws-pong-timeout"),
    (CheckId::CleanDisconnect, "clean-disconnect"),
    (CheckId::UnaccountedMessage, "unaccounted-message"),
];

const WILL_ON_DISCONNECT: &str = "will-on-disconnect";

impl CheckId {
    /// Every check without data (`WillOnDisconnect` is one per DISCONNECT encoding).
    pub fn plain() -> impl Iterator<Item = &'static CheckId> {
        NAMES.iter().map(|(id, _)| id)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<22}` lines the names up as it did when they were strings.
        match self {
            CheckId::WillOnDisconnect(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                f.pad(&format!("{WILL_ON_DISCONNECT} {hex}"))
            }
            id => f.pad(NAMES.iter().find(|(n, _)| n == id).map_or("?", |(_, s)| s)),
        }
    }
}

impl FromStr for CheckId {
    type Err = String;

    fn from_str(s: &str) -> Result<CheckId, String> {
        if let Some(hex) = s.strip_prefix(WILL_ON_DISCONNECT) {
            let hex = hex.strip_prefix(' ').unwrap_or(hex);
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|b| u8::from_str_radix(b, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .filter(|b| !b.is_empty() && hex.len() % 2 == 0);
            return bytes
                .map(CheckId::WillOnDisconnect)
                .ok_or_else(|| format!("check name {s:?}: expected the DISCONNECT bytes in hex"));
        }
        NAMES
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| format!("no check is called {s:?}"))
    }
}

impl From<CheckId> for String {
    fn from(id: CheckId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for CheckId {
    type Error = String;

    fn try_from(s: String) -> Result<CheckId, String> {
        s.parse()
    }
}

impl PartialEq<str> for CheckId {
    fn eq(&self, other: &str) -> bool {
        other.parse::<CheckId>().is_ok_and(|o| o == *self)
    }
}

impl PartialEq<&str> for CheckId {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<CheckId>().is_ok_and(|o| o == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_name_reads_back_as_its_check() {
        for id in CheckId::plain() {
            assert_eq!(&id.to_string().parse::<CheckId>().unwrap(), id);
        }
        let d = CheckId::WillOnDisconnect(vec![0xe0, 0x01, 0x04]);
        assert_eq!(d.to_string(), "will-on-disconnect e00104");
        assert_eq!(format!("{:<8}|", CheckId::Will), "will    |");
        assert_eq!("will-on-disconnect e00104".parse::<CheckId>().unwrap(), d);
        assert!("will-on-disconnect".parse::<CheckId>().is_err());
        assert!("no-such-check".parse::<CheckId>().is_err());
    }

    #[test]
    fn a_check_serialises_as_its_name() {
        let json = serde_json::to_string(&CheckId::KeepaliveDrop).unwrap();
        assert_eq!(json, "\"keepalive-drop\"");
        let back: CheckId = serde_json::from_str("\"will-on-disconnect e000\"").unwrap();
        assert_eq!(back, CheckId::WillOnDisconnect(vec![0xe0, 0x00]));
    }
}
