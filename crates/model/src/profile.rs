//! Broker profiles: what a broker's keepalive timing model is, so the checks can tell "late
//! because that is how this broker works, as documented" from "wrong".
//!
//! A tolerance lives here, with its reason, never in a check. So do the spec checks a broker is
//! known to fail ([`Deviation`]): such a check is reported as `deviation` instead of `fail`, and
//! as `unexpected-pass` when it holds after all, so the list stays true.

use std::time::Duration;

use serde::Serialize;

use crate::check_id::CheckId;
use crate::timing;

/// The allowance a broker with an exact keepalive timer gets: the proxy's stamp and the
/// scheduling of a loaded 2-core machine, a few hundred ms. A missed or coarse timer is seconds
/// late, so this never hides one. Measured: rumqttd closes 3001-3004 ms after the last packet at
/// keepalive 2 s, 1-4 ms past the bound.
pub const SPEC_LATE_MS: u64 = 250;

/// mosquitto 2.0's late allowance: a 6 s scan period, one 100 ms loop wake-up, 250 ms margin.
const MOSQUITTO_LATE_MS: u64 = 6000 + 100 + SPEC_LATE_MS;

/// mosquitto 2.0's late allowance for a delayed will: it is sent from the main loop once the
/// delay has passed on its whole-second clock (up to 1 s late), one 100 ms loop wake-up, 250 ms
/// margin. Measured: 303-306 ms late (delays of 1 s and 2 s).
const MOSQUITTO_WILL_DELAY_LATE_MS: u64 = 1000 + 100 + 250;

/// mosquitto 2.0 over WebSocket over TLS: after its keepalive drop, libwebsockets sends the
/// TLS close_notify and waits `timeout_secs` (5 s by default; mosquitto never sets it) for the
/// peer's answer before it calls the connection closed, and only then is the will published.
/// A cut peer never answers, so the will comes 5 s after the close, plus one 100 ms loop pass.
/// Source (libwebsockets 4.1.6, linked into Debian's mosquitto 2.0.11): lib/core-net/close.c
/// 574-583 (SSL_shutdown returned 0: `lws_set_timeout(.., PENDING_TIMEOUT_CLOSE_ACK,
/// context->timeout_secs)`), lib/core/context.c 782-786 (default 5), mosquitto src/websockets.c
/// 181-196 (the CLOSED callback: do_disconnect, then the will). Measured (10 runs, keepalive 2 s
/// and 4 s): the will 5001-5100 ms after the close_notify; over plain WS 0-1 ms.
const MOSQUITTO_WSS_CLOSE_MS: u64 = 5000 + 100;

/// mosquitto 1.4's late allowance: its keepalive check runs on every pass of the main loop
/// (1.4.15 src/loop.c 189-219), whose poll waits at most 100 ms (loop.c 352), so the drop is at
/// most one pass late; 250 ms margin as for any broker.
const MOSQUITTO_14_LATE_MS: u64 = 100 + SPEC_LATE_MS;

/// mosquitto 1.4 over WebSocket (plain or TLS), built against libwebsockets 2.0.x-2.4.1: after
/// its keepalive drop, mosquitto's WRITEABLE callback returns -1 (1.4.15 src/websockets.c
/// 324-326), libwebsockets shuts the socket for writing (FIN) and waits
/// `PENDING_TIMEOUT_SHUTDOWN_FLUSH` for the peer's FIN, `context->timeout_secs` long: 20 s by
/// default (`AWAITING_TIMEOUT`), mosquitto 1.4 never sets it. Its timeouts are whole seconds of
/// time(2) checked once a second and fire when `now > set + 20` (so 20-21 s after), and only
/// then does the CLOSED callback run `do_disconnect`: "Socket error on client", the will.
/// A cut peer never answers. Plus one 100 ms loop pass (mosquitto calls
/// `libwebsocket_service` once per loop, loop.c 405-413) and 250 ms margin.
/// Source (libwebsockets v2.0.3, Debian 9's and Ubuntu 18.04's libwebsockets8):
/// lib/libwebsockets.c 381-402 (`shutdown(SHUT_WR)`, `LWSS_SHUTDOWN`,
/// `lws_set_timeout(.., PENDING_TIMEOUT_SHUTDOWN_FLUSH, context->timeout_secs)`),
/// lib/private-libwebsockets.h 346 (`AWAITING_TIMEOUT 20`), lib/service.c
/// 310-328 `lws_service_timeout_check` (`sec > wsi->pending_timeout_limit`), lib/context.c
/// 515-518 (the default). libwebsockets v2.4.2
/// (8 March 2018, commit bf7564cff) marks a plain socket unusable before that wait and so
/// closes at once over WS: with it the will comes with the drop, inside this allowance.
const MOSQUITTO_14_WS_CLOSE_MS: u64 = 21_000 + 100 + SPEC_LATE_MS;

/// rumqttd 0.20.0's lost will after a takeover of willy's own left-open connection, step by
/// step in its source, and as measured.
const TAKEOVER_WILL_EVIDENCE: &str = "rumqttd 0.20.0 src/server/broker.rs:538-544 (the new connection's task, before its link registers: `will_handlers.lock().unwrap().remove(&client_id)`, `AwaitingWill::Fire` for a clean session, sent to the old connection's will task) and :547-551 (its own will sender under the same client id); src/router/routing.rs:292 (handle_new_connection: `self.handle_disconnection(*connection_id, None)` closes the old connection) and :350-355 (`self.last_wills.insert(client_id, ..)`: the new connection's will replaces the old one's); src/server/broker.rs:581 (the old link ends `router-drop`), :605-611 (its will task receives Fire) and :620-621 (`Event::PublishWill((client_id, ..))`); src/router/routing.rs:1103 (handle_last_will: `self.last_wills.remove(&client_id)`: the new connection's will, published at the takeover and gone); after the cut the new connection's will task times out (broker.rs:613-617) and its PublishWill finds nothing at routing.rs:1103; measured (left-open-takeover, keepalive 2 s, 6 runs): cycle 2's connection closed 0-1 ms and a will published 1-2 ms after cycle 3's CONNACK, cycle 3 dropped 3002-3004 ms after its last packet, then no will (watched to 4 s after it; issue 24's cmd: willy saw none for 18 s); mosquitto 2.0.11 (4 runs): the same takeover, then the cut connection's will 5197-5803 ms after its last packet, with its drop";

/// A broker's timing model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Which broker this describes.
    pub broker: String,
    /// How much later than 1.5 x keepalive after the last packet the broker may close a silent
    /// client, given how its timer works.
    pub keepalive_late_ms: u64,
    /// How much later than the due moment (the broker's close plus min(Will Delay, Session
    /// Expiry)) an MQTT 5 delayed will may come, given how the broker times it.
    pub will_delay_late_ms: u64,
    /// Over WSS, how much later than its keepalive close the will may come (the close itself
    /// keeps `keepalive_late_ms`): mosquitto's WebSocket library waits for the TLS close.
    #[serde(skip_serializing_if = "is_zero")]
    pub wss_close_ms: u64,
    /// Over plain WebSocket, how much later than its keepalive close the will may come:
    /// mosquitto 1.4's libwebsockets waits for the peer's FIN after its own.
    #[serde(skip_serializing_if = "is_zero")]
    pub ws_close_ms: u64,
    /// One line on why that tolerance is what it is.
    pub timing_model: String,
    /// Spec checks this broker is known to fail, each with its reason and evidence.
    pub deviations: Vec<Deviation>,
    /// Scenario `[broker]` settings this broker has no way to honour: the run goes on without
    /// them and is judged on what the broker really does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cannot: Vec<Cannot>,
}

/// A `[broker]` setting a broker does not have, with why and the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cannot {
    /// The setting, as mosquitto's config calls it (`max_keepalive`).
    pub setting: &'static str,
    pub reason: &'static str,
    pub evidence: &'static str,
}

/// A spec check a broker is known to fail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    /// The check's name (`keepalive-drop`, `will-timing`, ...).
    pub check: CheckId,
    /// When it applies.
    pub applies: Applies,
    /// One line: why the broker does this.
    pub reason: &'static str,
    /// Version and source file, issue, or measurement.
    pub evidence: &'static str,
}

/// The runs a deviation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    /// In every run: a pass is `unexpected-pass`.
    Always,
    /// Possibly, at an odd keepalive (where 1.5 x keepalive is not a whole number of seconds),
    /// depending on where the last packet falls in the broker's clock second: a pass is a pass.
    MayAtOddKeepalive,
    /// In every MQTT 5 run whose will is delayed (Will Delay and Session Expiry both > 0).
    WithWillDelay,
    /// In every run where monit subscribes at QoS 1 or 2.
    WithMonitQos,
    /// Possibly, in any run, depending on where willy's last packet falls in the broker's
    /// whole-second clock: a pass is a pass.
    MayByClockSecond,
    /// In every MQTT 5 run with a Will Delay but no Session Expiry: the session ends at the
    /// close, so the will is due at once.
    WithWillDelayNoSession,
    /// In every run where the broker keeps sending to willy after the cut: willy subscribes to
    /// pubby's topic, which pubby publishes to from the start more often than 1.5 x keepalive.
    WithTrafficToWilly,
    /// In every run where an MQTT 5 willy's will carries a property (any will property: a
    /// Will Delay, even of 0, or a Content Type) and monit subscribes over MQTT 3.1.1.
    WithV5WillPropertiesToV311Subscriber,
    /// In every run whose cut comes in the cycle right after one willy left open
    /// (`[willy] leave_open`), with a will and a clean session: the cut connection is the one
    /// that took the left-open one over.
    WithCutAfterTakeoverOfLeftOpen,
}

impl Applies {
    pub fn to(self, s: &crate::scenario::Scenario) -> bool {
        match self {
            Applies::Always => true,
            Applies::MayAtOddKeepalive => s.keepalive.as_secs() % 2 == 1,
            Applies::MayByClockSecond => true,
            Applies::WithWillDelay => {
                timing::will_delay_ms(
                    s.protocol == crate::scenario::Protocol::V5,
                    s.will.as_ref().and_then(|w| w.delay_s),
                    s.session_expiry_s,
                ) > 0.0
            }
            Applies::WithMonitQos => s.monit.qos > 0,
            Applies::WithWillDelayNoSession => {
                s.protocol == crate::scenario::Protocol::V5
                    && s.will.as_ref().and_then(|w| w.delay_s).unwrap_or(0) > 0
                    && s.session_expiry_s.unwrap_or(0) == 0
            }
            Applies::WithTrafficToWilly => traffic_to_willy(s),
            Applies::WithV5WillPropertiesToV311Subscriber => v5_will_properties_to_v311(s),
            Applies::WithCutAfterTakeoverOfLeftOpen => cut_after_takeover_of_left_open(s),
        }
    }

    /// When it applies, in words (`unplug profiles`, docs/reference.md).
    pub fn words(self) -> &'static str {
        match self {
            Applies::Always => "every run",
            Applies::MayAtOddKeepalive => "may, at an odd keepalive",
            Applies::MayByClockSecond => "may, by where the last packet falls in a clock second",
            Applies::WithWillDelay => "MQTT 5 runs with a delayed will",
            Applies::WithMonitQos => "monit subscribed at QoS 1 or 2",
            Applies::WithWillDelayNoSession => "MQTT 5, a Will Delay and no Session Expiry",
            Applies::WithTrafficToWilly => "the broker keeps sending to willy after the cut",
            Applies::WithV5WillPropertiesToV311Subscriber => {
                "an MQTT 5 will with properties, monit on 3.1.1"
            }
            Applies::WithCutAfterTakeoverOfLeftOpen => {
                "the cut connection took over one willy left open (clean session)"
            }
        }
    }

    /// Does every run it applies to show it (so a pass means the list is out of date)?
    pub fn certain(self) -> bool {
        matches!(
            self,
            Applies::Always
                | Applies::WithMonitQos
                | Applies::WithWillDelay
                | Applies::WithWillDelayNoSession
                | Applies::WithTrafficToWilly
                | Applies::WithV5WillPropertiesToV311Subscriber
                | Applies::WithCutAfterTakeoverOfLeftOpen
        )
    }
}

/// Does the broker keep sending to willy after the cut, more often than 1.5 x keepalive and for
/// long enough to delay a rumqttd close past its allowance? (willy subscribes to pubby's
/// topic, and pubby publishes through the cut.)
pub fn traffic_to_willy(s: &crate::scenario::Scenario) -> bool {
    match (&s.subscribe, &s.publisher) {
        (Some(sub), Some(p)) => {
            use crate::scenario::PublishFrom;
            // From the cut on, the broker writes to willy for (count - 1) x every: enough to
            // push its close past rumqttd's 250 ms allowance when that is 500 ms or more.
            let long_enough = match (p.from, p.count) {
                (PublishFrom::Start, None) => true,
                (PublishFrom::Cut, Some(n)) => {
                    p.every * n.saturating_sub(1) >= Duration::from_millis(500)
                }
                (PublishFrom::Cut, None) => true,
                (PublishFrom::Start, Some(_)) => false,
            };
            long_enough
                && p.every < timing::keepalive_bound(s.keepalive)
                && crate::mqtt::filter_matches(&sub.filter, &p.topic)
        }
        _ => false,
    }
}

/// Does an MQTT 5 willy's will carry properties to an MQTT 3.1.1 monit? (willy's v5 CONNECT
/// writes a Will Delay whenever `delay_s` is set, 0 included, and a Content Type when set.)
pub fn v5_will_properties_to_v311(s: &crate::scenario::Scenario) -> bool {
    use crate::scenario::Protocol;
    s.protocol == Protocol::V5
        && s.monit_protocol() == Protocol::V311
        && s.will
            .as_ref()
            .is_some_and(|w| w.delay_s.is_some() || w.content_type.is_some())
}

/// Is the cut connection one that took over a connection willy left open? The cut's cycle
/// comes right after a left-open one, willy has a will, and its CONNECT asks for a clean
/// session (with Clean Session 0 rumqttd cancels the old connection's will instead of firing
/// it: broker.rs:539-543 `AwaitingWill::Cancel`).
pub fn cut_after_takeover_of_left_open(s: &crate::scenario::Scenario) -> bool {
    s.will.is_some()
        && s.clean_session
        && s.cut()
            .is_some_and(|f| f.cycle >= 2 && s.willy.leaves_open(f.cycle - 1))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Profile {
    /// How much later than 1.5 x keepalive after the last packet the will may come over
    /// `transport`: the close's allowance, and over WebSocket the broker's wait for its close.
    pub fn will_late_ms(&self, transport: crate::scenario::Transport) -> u64 {
        self.keepalive_late_ms + self.close_wait(transport)
    }

    /// How much later than its due moment after the broker's close a delayed will may come over
    /// `transport`: the delay's allowance, and over WSS the wait for the TLS close, which the
    /// delay follows (the close we see is the close_notify; the broker's own comes after it).
    pub fn will_delay_late(&self, transport: crate::scenario::Transport) -> u64 {
        self.will_delay_late_ms + self.close_wait(transport)
    }

    /// The broker's wait for its WebSocket connection's close over `transport` (WS or WSS).
    pub fn close_wait(&self, transport: crate::scenario::Transport) -> u64 {
        match transport {
            crate::scenario::Transport::Wss => self.wss_close_ms,
            crate::scenario::Transport::Ws => self.ws_close_ms,
            _ => 0,
        }
    }

    /// What that wait waits for, in the words a check's expectation uses.
    pub fn close_wait_words(&self, transport: crate::scenario::Transport) -> &'static str {
        match (transport, self.ws_close_ms > 0) {
            (crate::scenario::Transport::Wss, false) => "its TLS close",
            (crate::scenario::Transport::Wss, true) => {
                "its TLS close and the peer's FIN (libwebsockets' shutdown wait)"
            }
            _ => "the peer's FIN after its own (libwebsockets' shutdown wait)",
        }
    }

    /// rumqttd 0.20: the keepalive is a timeout of 1.5 x keepalive around each read of the next
    /// packet (rumqttd src/link/network.rs, `set_keepalive` and `read`), so the close is exact to
    /// the scheduler: measured 3002-3004 ms at keepalive 2 s. 250 ms leaves room for a loaded
    /// 2-core CI machine without hiding a real change (a missed timer would be seconds late).
    pub fn rumqttd() -> Profile {
        Profile {
            broker: "rumqttd".to_string(),
            keepalive_late_ms: SPEC_LATE_MS,
            // A tokio timeout, like the keepalive.
            will_delay_late_ms: SPEC_LATE_MS,
            wss_close_ms: 0,
            ws_close_ms: 0,
            timing_model: "per-read timeout of 1.5 x keepalive (src/link/network.rs)".to_string(),
            deviations: vec![
                Deviation {
                    check: CheckId::NoQosUpgrade,
                    applies: Applies::WithMonitQos,
                    reason: "every message forwarded to a subscription is sent at the subscription's QoS, whatever QoS it was published at: a QoS 0 publish reaches a QoS 1 subscriber at QoS 1",
                    evidence: "rumqttd 0.20.0 src/router/routing.rs forward_device_data(): `publish.qos = protocol::qos(qos)` with `qos = request.qos`, the filter's QoS; measured (will-qos1-flaky-monit): willy's QoS 0 true at monit with QoS 1; mosquitto delivers it at QoS 0",
                },
                Deviation {
                    check: CheckId::WillOnDisconnect(vec![0xe0, 0x02, 0x04, 0x00]),
                    applies: Applies::Always,
                    reason: "every v5 DISCONNECT that parses removes the will, whatever its reason code: 0x04 'with Will Message' is ignored",
                    evidence: "rumqttd 0.20.0 src/router/routing.rs, Packet::Disconnect: `self.last_wills.remove(&client_id)`; measured: no will after e0 02 04 00",
                },
                Deviation {
                    check: CheckId::WillOnDisconnect(vec![0xe0, 0x00]),
                    applies: Applies::WithWillDelay,
                    reason: "with a will delay, the task of a cleanly closed connection still waits out the delay; willy's next CONNECT (same client id, clean start) wakes it and it publishes a will after a normal DISCONNECT: the will of the new session, which it consumes",
                    evidence: "rumqttd 0.20.0 src/server/broker.rs remote(): `will_rx.recv_async()` under `timeout(will_delay_interval)`, fired by the next connection's `AwaitingWill::Fire`; src/router/routing.rs handle_last_will() looks the will up by client id; measured: will 0.5 s after e000, at the next CONNECT",
                },
                Deviation {
                    check: CheckId::Will,
                    applies: Applies::WithWillDelay,
                    reason: "the session's will was already consumed by the previous connection's delayed will task (see will-on-disconnect e000), so none follows the cut",
                    evidence: "rumqttd 0.20.0 src/router/routing.rs handle_last_will(): `self.last_wills.remove(&client_id)`; measured: no will within 1.5 x keepalive + delay + 0.75 s",
                },
                Deviation {
                    check: CheckId::WillTiming,
                    applies: Applies::WithWillDelay,
                    reason: "no will follows the cut (see the will deviation)",
                    evidence: "as for will",
                },
                Deviation {
                    check: CheckId::KeepaliveDrop,
                    applies: Applies::WithTrafficToWilly,
                    reason: "the 1.5 x keepalive timer is a timeout around each read, and every write to the client starts a new read: a silent client that the broker keeps sending to is never dropped",
                    evidence: "rumqttd 0.20.0 src/link/remote.rs RemoteLink::start: `select!` over `self.network.read()` (src/link/network.rs read(): `timeout(self.keepalive, ...)`, made anew on each call) and `link_rx.exchange` -> `writev`; measured (keepalive-busy-topic, keepalive 2 s, a message every 300 ms): willy's connection still open and sent 73 PUBLISHes 21.9 s after its last packet, no will; persistent-session-qos1/2 (6 messages every 250 ms from the cut): closed 4.3 s after the last packet, 3 s after the last write",
                },
                Deviation {
                    check: CheckId::Will,
                    applies: Applies::WithTrafficToWilly,
                    reason: "willy is never dropped while traffic flows to it (see keepalive-drop), so its will is never published",
                    evidence: "as for keepalive-drop",
                },
                Deviation {
                    check: CheckId::WillTiming,
                    applies: Applies::WithTrafficToWilly,
                    reason: "no will (see keepalive-drop)",
                    evidence: "as for keepalive-drop",
                },
                Deviation {
                    check: CheckId::DupOnResend,
                    applies: Applies::Always,
                    reason: "for a persistent session the unacknowledged messages are not resent as such: the session's read cursor is moved back to the first of them and they are read from the log again as new publishes, DUP 0 (same packet ids)",
                    evidence: "rumqttd 0.20.0 src/router/routing.rs handle_disconnection(): `request.cursor = *cursor` from `retransmissions` for `!connection.clean`; measured (persistent-session-qos1/2): packet ids 1-6 sent into the cut, sent again on willy's next connection with DUP 0",
                },
                Deviation {
                    check: CheckId::Will,
                    applies: Applies::WithV5WillPropertiesToV311Subscriber,
                    reason: "a v5 will with properties becomes a publish with properties, which the 3.1.1 encoder cannot write: the task serving the 3.1.1 subscriber panics and its connection drops, so the will never arrives; the subscriber's reconnect (same client id) panics again holding the listener's will-handler lock, which poisons it, and every later connection to that 3.1.1 listener panics on it: the listener is dead for every client until the broker restarts",
                    evidence: "rumqttd 0.20.0 src/router/routing.rs handle_last_will(): `will_props.map(|props| PublishProperties { .. })` (Some for any will property); src/protocol/v4/mod.rs:364 `unreachable!(\"This branch only matches for packets with Properties, which is not possible in v4\")`; then src/server/broker.rs:544 `sender.try_send(awaiting_will).unwrap()` (Disconnected, under `will_handlers.lock()`) and :538 `will_handlers.lock().unwrap()` (PoisonError) on each later connection; measured (v5-will-to-v4-subscriber, keepalive 2 s): willy dropped 3002 ms after its last packet, monit's connection lost 2-159 ms later (stderr: the unreachable! panic at v4/mod.rs:364), its reconnects 0.5 s and 1 s later accepted and closed at once (panics at broker.rs:544, then :538); a raw 3.1.1 CONNECT with another client id (\"probe\") 2 s after the drop: closed without CONNACK (PoisonError at :538), no will",
                },
                Deviation {
                    check: CheckId::WillTiming,
                    applies: Applies::WithV5WillPropertiesToV311Subscriber,
                    reason: "no will reaches the 3.1.1 subscriber (see will)",
                    evidence: "as for will",
                },
                Deviation {
                    check: CheckId::Will,
                    applies: Applies::WithCutAfterTakeoverOfLeftOpen,
                    reason: "it keeps one will per client id, not per connection: a CONNECT that takes a session over replaces the old connection's will with its own and then fires the old connection's will task, which publishes (and removes) the will stored under the client id, the new connection's; when the new connection is dropped after the cut its own will task finds none, so no will follows the cut (with different wills, the new connection's would be published at the takeover in the old one's place)",
                    evidence: TAKEOVER_WILL_EVIDENCE,
                },
                Deviation {
                    check: CheckId::WillTiming,
                    applies: Applies::WithCutAfterTakeoverOfLeftOpen,
                    reason: "no will follows the cut (see will)",
                    evidence: "as for will",
                },
                Deviation {
                    check: CheckId::WillOnDisconnect(vec![0xe0, 0x01, 0x00]),
                    applies: Applies::Always,
                    reason: "a v5 DISCONNECT of remaining length 1 (reason byte, no property length) fails to parse, so the connection ends as broken and the will is published although the reason is 0x00; the same parse failure is why e0 01 04 'works'",
                    evidence: "rumqttd 0.20.0 src/protocol/v5/disconnect.rs reads a property length whenever remaining length > 0 (the spec says 0 when it is < 2, MQTT 5 3.14.2.2.1); measured: will 3 ms after e0 01 00",
                },
            ],
            cannot: vec![Cannot {
                setting: "max_keepalive",
                reason: "no maximum keepalive and no Server Keep Alive: every v5 CONNACK carries Topic Alias Maximum only, and each connection's timer is 1.5 x the client's own keepalive, so willy keeps the value it sent and is judged on it [MQTT-3.2.2-22]",
                evidence: "rumqttd 0.20.0 src/router/routing.rs handle_new_connection(): `ConnAckProperties { topic_alias_max: Some(TOPIC_ALIAS_MAX), ..Default::default() }` (server_keep_alive None); src/link/remote.rs RemoteLink::start(): `self.network.set_keepalive(self.connect.keep_alive)`; src/lib.rs ConnectionSettings has no keepalive field",
            }],
        }
    }

    /// mosquitto 2.0 (src/keepalive.c, the 2.0 branch): keepalives are not timers but a scan of
    /// every client, run from the main loop only when `last_keepalive_check + 5 < db.now_s`, i.e.
    /// every 6 s of its whole-second monotonic clock; a client is dropped at a scan once
    /// `now_s - last_msg_in > keepalive*3/2` (integer seconds, `last_msg_in` also whole seconds).
    /// So the drop comes more than floor(1.5 x keepalive) s after the last packet, and at most
    /// that plus 6 s plus one loop wake-up (epoll_wait's 100 ms in a websockets build): up to
    /// 6.1 s late. 250 ms on top for the proxy and a loaded machine, as for rumqttd. Measured
    /// with this harness (2.0.11, Debian) at keepalive 2 s: 5.1-5.8 s over TCP, 4.6-5.5 s over
    /// WS; at 10 s: 16.9-17.3 s (docs/guide.md, Brokers).
    pub fn mosquitto(version: &str) -> Profile {
        Profile {
            broker: format!("mosquitto {version}"),
            keepalive_late_ms: MOSQUITTO_LATE_MS,
            will_delay_late_ms: MOSQUITTO_WILL_DELAY_LATE_MS,
            wss_close_ms: MOSQUITTO_WSS_CLOSE_MS,
            ws_close_ms: 0,
            timing_model: "keepalive scan every 6 s on a whole-second clock (2.0 src/keepalive.c): up to 6.1 s after 1.5 x keepalive; over WSS the will 5.1 s after that close (libwebsockets waits 5 s for the TLS close_notify's answer)".to_string(),
            deviations: vec![
                Deviation {
                    check: CheckId::WillDelay,
                    applies: Applies::WithWillDelayNoSession,
                    reason: "the Will Delay Interval is waited out even when the session ends at the close (no Session Expiry), where the spec has the will published when the session ends, whichever comes first",
                    evidence: "mosquitto's own test/broker/07-will-delay.py expects a clean-start client's will 2-5 s after its close (delay 3 s, no session expiry); measured (2.0.11, v5-will-delay-no-session, delay 2 s): will 2204-2304 ms after the broker's close",
                },
                Deviation {
                    check: CheckId::KeepaliveDrop,
                    applies: Applies::MayAtOddKeepalive,
                    reason: "keepalive*3/2 is integer division on whole seconds: at an odd keepalive a silent client may be dropped up to 0.5 s before 1.5 x keepalive",
                    evidence: "mosquitto 2.0 src/keepalive.c keepalive__check: `db.now_s - context->last_msg_in <= (time_t)(context->keepalive)*3/2`",
                },
                Deviation {
                    check: CheckId::WillTiming,
                    applies: Applies::MayAtOddKeepalive,
                    reason: "the will follows the early keepalive drop at an odd keepalive (see keepalive-drop)",
                    evidence: "mosquitto 2.0 src/keepalive.c keepalive__check, then context__disconnect -> will publish",
                },
            ],
            cannot: Vec::new(),
        }
    }

    /// The profile of the mosquitto that says it is `version`: 1.4.x has its own keepalive loop
    /// and WebSocket close ([`Profile::mosquitto_14`]), anything else mosquitto 2.0's.
    pub fn for_mosquitto(version: &str) -> Profile {
        if version == "1.4" || version.starts_with("1.4.") {
            Profile::mosquitto_14(version)
        } else {
            Profile::mosquitto(version)
        }
    }

    /// mosquitto 1.4 (1.4.15 src/loop.c 189-219): no scan period; every pass of the main loop
    /// (a poll of at most 100 ms, loop.c 352) keeps a client only while `now - last_msg_in <
    /// keepalive*3/2`, on `mosquitto_time()`, whole seconds of CLOCK_MONOTONIC (lib/time_mosq.c).
    /// So the drop comes once the clock second of the last packet is 1.5 x keepalive behind
    /// (integer), between up to 1 s early (or 1.5 s at an odd keepalive) and one pass late.
    /// Over WebSocket its libwebsockets (2.0.x-2.4.1) then waits 20-21 s for the peer's FIN
    /// before mosquitto learns the connection is closed and publishes the will
    /// ([`MOSQUITTO_14_WS_CLOSE_MS`]). Measured (1.4.15 + libwebsockets 2.0.3, this harness,
    /// results/seed-broker and results/probe): see README.md, Brokers.
    pub fn mosquitto_14(version: &str) -> Profile {
        Profile {
            broker: format!("mosquitto {version}"),
            keepalive_late_ms: MOSQUITTO_14_LATE_MS,
            // 1.4 speaks MQTT 3.1.1 only: no will delay to time.
            will_delay_late_ms: SPEC_LATE_MS,
            wss_close_ms: MOSQUITTO_14_WS_CLOSE_MS,
            ws_close_ms: MOSQUITTO_14_WS_CLOSE_MS,
            timing_model: "keepalive checked every loop pass (100 ms poll) on a whole-second clock (1.4 src/loop.c): up to 1 s early, 0.1 s late; over WS/WSS the will 20-21 s after that close (libwebsockets 2.0-2.4.1 waits timeout_secs 20 for the peer's FIN)".to_string(),
            deviations: vec![
                Deviation {
                    check: CheckId::KeepaliveDrop,
                    applies: Applies::MayByClockSecond,
                    reason: "the keepalive is counted in whole seconds from the clock second of the last packet: a silent client is dropped when that second is 1.5 x keepalive (integer division) behind, up to 1 s before 1.5 x keepalive after the packet itself (1.5 s at an odd keepalive)",
                    evidence: "mosquitto 1.4.15 src/loop.c 191-193: `now - context->last_msg_in < (time_t)(context->keepalive)*3/2` with `now = mosquitto_time()` (lib/time_mosq.c: CLOCK_MONOTONIC tv_sec); measured: see results/probe (mosquitto-1.4.15 rows) and results/seed-broker",
                },
                Deviation {
                    check: CheckId::WillTiming,
                    applies: Applies::MayByClockSecond,
                    reason: "the will follows the early keepalive drop (see keepalive-drop)",
                    evidence: "mosquitto 1.4.15 src/loop.c 211-218 do_disconnect -> mqtt3_context_disconnect -> the will",
                },
            ],
            cannot: vec![Cannot {
                setting: "max_keepalive",
                reason: "mosquitto 1.4 has no max_keepalive option (nor MQTT 5's Server Keep Alive): each client keeps the keepalive it sent and is judged on it",
                evidence: "mosquitto 1.4.15 src/conf.c: no `max_keepalive` among the options it parses (added in 1.6)",
            }],
        }
    }

    /// A broker we do not know is judged by the spec itself: 1.5 x keepalive with the small
    /// allowance an exact timer gets ([`SPEC_LATE_MS`]), and no deviations. A coarse timer such
    /// as mosquitto 2.0's 6 s scan is excused only for a broker recognised as that broker
    /// (`--profile`, or what it says of itself: see `broker::recognise`); giving every unknown
    /// broker the slowest allowance we know of let a drop at 3 x keepalive pass.
    pub fn unknown() -> Profile {
        Profile {
            broker: "unknown broker".to_string(),
            keepalive_late_ms: SPEC_LATE_MS,
            will_delay_late_ms: SPEC_LATE_MS,
            wss_close_ms: 0,
            ws_close_ms: 0,
            timing_model: format!("unknown broker: judged by the spec, 1.5 x keepalive with {SPEC_LATE_MS} ms for scheduling"),
            deviations: Vec::new(),
            cannot: Vec::new(),
        }
    }

    /// The profiles `--profile` accepts, with what each is for: `unplug profiles` lists them.
    pub fn known() -> Vec<(&'static str, Profile)> {
        vec![
            ("rumqttd", Profile::rumqttd()),
            ("mosquitto", Profile::mosquitto("2.0")),
            ("mosquitto-1.4", Profile::mosquitto_14("1.4")),
            ("spec", Profile::unknown()),
        ]
    }

    /// The profile `--profile NAME` names (`mosquitto` or `mosquitto-2.0.11`, `rumqttd`, `spec`).
    pub fn by_name(name: &str) -> Option<Profile> {
        let name = name.trim().to_ascii_lowercase();
        let (base, version) = match name.split_once(['-', ' ']) {
            Some((b, v)) => (b, Some(v)),
            None => (name.as_str(), None),
        };
        match base {
            "mosquitto" => Some(Profile::for_mosquitto(version.unwrap_or("2.0"))),
            "rumqttd" | "builtin" => Some(Profile::rumqttd()),
            "spec" | "unknown" => Some(Profile::unknown()),
            _ => None,
        }
    }

    /// The deviation this profile lists for `check` in a run at `keepalive_s`, if any.
    pub fn deviation(&self, check: &CheckId, s: &crate::scenario::Scenario) -> Option<&Deviation> {
        self.deviations
            .iter()
            .find(|d| d.check == *check && d.applies.to(s))
    }
}

#[cfg(test)]
mod tests {

    /// Only a WSS run gets mosquitto's wait for its TLS close, on the will and on a delayed
    /// will; the close itself keeps the keepalive allowance; rumqttd has no such wait.
    #[test]
    fn the_wss_close_wait_is_mosquittos_and_only_over_wss() {
        use crate::scenario::Transport;
        let m = Profile::mosquitto("2.0.11");
        assert_eq!(m.will_late_ms(Transport::Tls), m.keepalive_late_ms);
        assert_eq!(m.will_late_ms(Transport::Ws), m.keepalive_late_ms);
        assert_eq!(m.will_late_ms(Transport::Wss), m.keepalive_late_ms + 5100);
        assert_eq!(
            m.will_delay_late(Transport::Wss),
            m.will_delay_late_ms + 5100
        );
        assert_eq!(m.will_delay_late(Transport::Tcp), m.will_delay_late_ms);
        let r = Profile::rumqttd();
        assert_eq!(r.will_late_ms(Transport::Wss), r.keepalive_late_ms);
    }

    /// mosquitto 1.4's libwebsockets waits for the peer's FIN over plain WS too, and says so
    /// in those words, not as a TLS close.
    #[test]
    fn mosquitto_14_waits_for_its_websocket_close_over_ws_and_wss_and_says_which() {
        use crate::scenario::Transport;
        let m = Profile::mosquitto_14("1.4.15");
        assert_eq!(m.will_late_ms(Transport::Tcp), m.keepalive_late_ms);
        assert_eq!(m.will_late_ms(Transport::Ws), m.keepalive_late_ms + 21_350);
        assert_eq!(m.will_late_ms(Transport::Wss), m.keepalive_late_ms + 21_350);
        assert!(!m.close_wait_words(Transport::Ws).contains("TLS"));
        assert!(Profile::mosquitto("2.0.11")
            .close_wait_words(Transport::Wss)
            .contains("TLS close"));
        assert_eq!(Profile::for_mosquitto("1.4.15"), m);
        assert_eq!(
            Profile::for_mosquitto("2.0.11"),
            Profile::mosquitto("2.0.11")
        );
    }
    use super::*;

    #[test]
    fn rumqttd_loses_a_v5_will_to_a_v311_subscriber_only_when_the_will_has_properties() {
        let p = Profile::rumqttd();
        let mixed = crate::scenario::load("v5-will-to-v4-subscriber").unwrap();
        assert!(v5_will_properties_to_v311(&mixed));
        assert!(p.deviation(&CheckId::Will, &mixed).is_some());
        assert!(p.deviation(&CheckId::WillTiming, &mixed).is_some());
        // A Will Delay of 0 is still a property on the wire.
        let mut delay0 = mixed.clone();
        let w = delay0.will.as_mut().unwrap();
        w.content_type = None;
        w.delay_s = Some(0);
        assert!(v5_will_properties_to_v311(&delay0));
        // No will property, or a v5 monit: nothing for the 3.1.1 encoder to choke on.
        let mut bare = delay0.clone();
        bare.will.as_mut().unwrap().delay_s = None;
        assert!(!v5_will_properties_to_v311(&bare));
        let mut v5_monit = mixed.clone();
        v5_monit.monit_protocol = None;
        assert!(!v5_will_properties_to_v311(&v5_monit));
        assert!(p.deviation(&CheckId::Will, &v5_monit).is_none());
        assert!(Profile::mosquitto("2.0.11")
            .deviation(&CheckId::Will, &mixed)
            .is_none());
    }

    #[test]
    fn rumqttd_loses_the_cut_will_only_when_the_cut_connection_took_over_a_left_open_one() {
        let p = Profile::rumqttd();
        let taken = crate::scenario::load("left-open-takeover").unwrap();
        assert!(cut_after_takeover_of_left_open(&taken));
        assert!(p.deviation(&CheckId::Will, &taken).is_some());
        assert!(p.deviation(&CheckId::WillTiming, &taken).is_some());
        // The takeover itself and the keepalive drop are as the spec says.
        assert!(p.deviation(&CheckId::TakeoverWill, &taken).is_none());
        assert!(p.deviation(&CheckId::KeepaliveDrop, &taken).is_none());
        // A cycle left open two cycles before the cut: the cut connection has its own will.
        let mut earlier = taken.clone();
        earlier.cycles = 4;
        earlier.faults[0].cycle = 4;
        assert!(!cut_after_takeover_of_left_open(&earlier));
        // Clean Session 0: the old connection's will task is cancelled, not fired.
        let mut kept = taken.clone();
        kept.clean_session = false;
        assert!(!cut_after_takeover_of_left_open(&kept));
        assert!(Profile::mosquitto("2.0.11")
            .deviation(&CheckId::Will, &taken)
            .is_none());
        assert!(p
            .deviation(
                &CheckId::Will,
                &crate::scenario::load("native-last-will").unwrap()
            )
            .is_none());
    }

    #[test]
    fn rumqttd_expects_no_keepalive_drop_only_while_traffic_flows_to_willy() {
        let busy = crate::scenario::load("keepalive-busy-topic").unwrap();
        assert!(traffic_to_willy(&busy));
        let p = Profile::rumqttd();
        assert!(p.deviation(&CheckId::KeepaliveDrop, &busy).is_some());
        let quiet = crate::scenario::load("half-open-upstream").unwrap();
        assert!(p.deviation(&CheckId::KeepaliveDrop, &quiet).is_none());
        // Messages on a topic willy does not subscribe to are no traffic to willy.
        let mut other = busy.clone();
        other.subscribe.as_mut().unwrap().filter = "elsewhere/#".into();
        assert!(!traffic_to_willy(&other));
        // Nor is a publisher slower than the keepalive bound.
        let mut slow = busy.clone();
        slow.publisher.as_mut().unwrap().every = busy.keepalive * 2;
        assert!(!traffic_to_willy(&slow));
        // Messages into the cut for 1.25 s put off rumqttd's close past its allowance.
        let queued = crate::scenario::load("persistent-session-qos1").unwrap();
        assert!(traffic_to_willy(&queued));
        // A burst of a few hundred ms does not.
        let mut short = queued.clone();
        short.publisher.as_mut().unwrap().count = Some(2);
        assert!(!traffic_to_willy(&short));
        assert!(!traffic_to_willy(
            &crate::scenario::load("qos-downgrade").unwrap()
        ));
    }

    /// Every DISCONNECT willy can write, as `will-on-disconnect` names it.
    fn disconnect_encodings() -> Vec<Vec<u8>> {
        use crate::mqtt::{disconnect, DisconnectForm};
        let forms = [
            DisconnectForm::Short,
            DisconnectForm::Reason,
            DisconnectForm::Properties,
        ];
        (0..=u8::MAX)
            .flat_map(|r| forms.map(|f| disconnect(r, f)))
            .filter_map(Result::ok)
            .collect()
    }

    #[test]
    fn a_profile_is_found_again_by_the_name_a_journal_records() {
        let mut profiles: Vec<Profile> = Profile::known().into_iter().map(|(_, p)| p).collect();
        profiles.push(Profile::mosquitto("2.0.11"));
        profiles.push(Profile::mosquitto_14("1.4.15"));
        for p in profiles {
            assert_eq!(
                Profile::by_name(&p.broker).as_ref(),
                Some(&p),
                "{}",
                p.broker
            );
        }
    }

    #[test]
    fn every_listed_deviation_names_a_check_the_judge_makes() {
        let encodings = disconnect_encodings();
        let mut profiles: Vec<Profile> = Profile::known().into_iter().map(|(_, p)| p).collect();
        profiles.push(Profile::mosquitto("2.0.11"));
        profiles.push(Profile::mosquitto_14("1.4.15"));
        for p in profiles {
            for d in &p.deviations {
                let name = d.check.to_string();
                assert_eq!(name.parse::<CheckId>().as_ref(), Ok(&d.check), "{name}");
                match &d.check {
                    CheckId::WillOnDisconnect(bytes) => assert!(
                        encodings.contains(bytes),
                        "{}: {name} is no DISCONNECT willy writes",
                        p.broker
                    ),
                    id => assert!(CheckId::plain().any(|c| c == id), "{}: {name}", p.broker),
                }
            }
        }
    }
}
