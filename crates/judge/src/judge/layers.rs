//! Facts about the layers below and beside MQTT's keepalive: an intermediary's idle timeout
//! (the proxy acting as a load balancer), and what each layer did first.
//!
//! ```text
//!  records --LayerFacts::collect--> LayerFacts { idle cut: when, on which connection, the
//!                                    last packet either way and willy's last before it,
//!                                    the will and willy's error after it }
//! ```
//!
//! No I/O and no clock, like the rest of the judge.

use serde::Serialize;

use crate::event::IDLE_TIMEOUT_FAULT as FAULT_NAME;
use crate::event::{Actor, Event, Record, Side};
use crate::mqtt::PacketKind;
use crate::scenario::Scenario;
use crate::tap::{Fields, WsOpcode};

/// The first close by an intermediary's idle timeout, and the moments around it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IdleCutSeen {
    /// When the proxy closed the connection (ms since the run's start).
    pub ms: f64,
    pub conn: u64,
    /// What both sides got, as the proxy recorded it.
    pub how: String,
    /// The last MQTT packet either way on that connection before the close.
    pub last_packet_ms: Option<f64>,
    /// willy's last packet on it (what the broker's keepalive is measured from).
    pub last_client_packet_ms: Option<f64>,
    pub last_client_packet_kind: Option<String>,
    /// The will at monit after the close.
    pub will_ms: Option<f64>,
    /// willy's client reporting the loss after the close.
    pub client_detect_ms: Option<f64>,
}

/// What the layers did, beyond the first cut's facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LayerFacts {
    pub idle_cut: Option<IdleCutSeen>,
    /// The Server Keep Alive of the CONNACK of the connection the cut met (or of the last one,
    /// with no cut), as the wire tap read it.
    pub server_keepalive_s: Option<u16>,
    /// From that CONNACK to willy's first PINGREQ after it (forwarded or swallowed): the
    /// keepalive willy really uses.
    pub first_ping_after_ms: Option<f64>,
    /// WebSocket control frames on the connections the cut met, after the cut: willy's pings
    /// that got through, and the pongs that reached willy (ms since the run's start).
    pub ws_pings_after_cut: Vec<f64>,
    pub ws_pongs_after_cut: Vec<f64>,
    /// willy's client giving the connection up for a missing WebSocket pong, after the cut.
    pub ws_pong_timeout_ms: Option<f64>,
}

impl LayerFacts {
    pub fn collect(s: &Scenario, records: &[Record]) -> LayerFacts {
        let (server_keepalive_s, first_ping_after_ms) = server_keepalive(records);
        let mut f = LayerFacts {
            idle_cut: idle_cut(s, records),
            server_keepalive_s,
            first_ping_after_ms,
            ..LayerFacts::default()
        };
        f.add_ws(records);
        f
    }

    fn add_ws(&mut self, records: &[Record]) {
        let Some((cut, conns)) = records.iter().find_map(|r| match &r.event {
            Event::FaultApplied { last_upstream, .. } => Some((
                r.ms,
                last_upstream.iter().map(|c| c.conn).collect::<Vec<u64>>(),
            )),
            _ => None,
        }) else {
            return;
        };
        for r in records.iter().filter(|r| r.ms >= cut) {
            match (r.actor, &r.event) {
                (
                    _,
                    e @ Event::WireFrame {
                        conn,
                        from,
                        dropped: false,
                        ..
                    },
                ) if conns.contains(conn) => match (from, e.ws_frame_kind()) {
                    (Side::Client, Some(WsOpcode::Ping)) => self.ws_pings_after_cut.push(r.ms),
                    (Side::Broker, Some(WsOpcode::Pong)) => self.ws_pongs_after_cut.push(r.ms),
                    _ => {}
                },
                (Actor::Willy, Event::ConnectionFailed { error })
                    if self.ws_pong_timeout_ms.is_none()
                        && crate::event::ErrorKind::of(error)
                            == crate::event::ErrorKind::WsPongTimeout =>
                {
                    self.ws_pong_timeout_ms = Some(r.ms)
                }
                _ => {}
            }
        }
    }
}

/// The CONNACK before the first fault (or the last one) and willy's first PINGREQ after it.
fn server_keepalive(records: &[Record]) -> (Option<u16>, Option<f64>) {
    let cut = records
        .iter()
        .find(|r| matches!(r.event, Event::FaultApplied { .. }))
        .map_or(f64::INFINITY, |r| r.ms);
    let Some((i, conn, ka)) = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ms <= cut)
        .filter_map(|(i, r)| match &r.event {
            Event::Packet {
                conn,
                from: Side::Broker,
                kind,
                fields,
                ..
            } if *kind == PacketKind::Connack => Some((
                i,
                *conn,
                match fields {
                    Fields::Connack {
                        server_keepalive_s, ..
                    } => *server_keepalive_s,
                    _ => None,
                },
            )),
            _ => None,
        })
        .next_back()
    else {
        return (None, None);
    };
    let at = records[i].ms;
    let ping = records[i..].iter().find_map(|r| match &r.event {
        Event::Packet {
            conn: c,
            from: Side::Client,
            kind,
            ..
        } if *c == conn && *kind == PacketKind::Pingreq => Some(r.ms - at),
        _ => None,
    });
    (ka, ping)
}

fn idle_cut(s: &Scenario, records: &[Record]) -> Option<IdleCutSeen> {
    let (ms, conn, how) = records.iter().find_map(|r| match &r.event {
        Event::ConnectionCut { conn, fault, how } if fault == FAULT_NAME => {
            Some((r.ms, *conn, how.clone()))
        }
        _ => None,
    })?;
    let mut seen = IdleCutSeen {
        ms,
        conn,
        how,
        ..IdleCutSeen::default()
    };
    for r in records.iter().filter(|r| r.ms <= ms) {
        if let Event::Packet {
            conn: c,
            from,
            dropped: false,
            kind,
            ..
        } = &r.event
        {
            if *c == conn {
                seen.last_packet_ms = Some(r.ms);
                if *from == Side::Client {
                    seen.last_client_packet_ms = Some(r.ms);
                    seen.last_client_packet_kind = Some(kind.as_str().to_string());
                }
            }
        }
    }
    for r in records.iter().filter(|r| r.ms >= ms) {
        match (r.actor, &r.event) {
            (Actor::Monit, Event::MessageReceived { topic, payload, .. })
                if seen.will_ms.is_none()
                    && s.will
                        .as_ref()
                        .is_some_and(|w| w.topic == *topic && w.payload == *payload) =>
            {
                seen.will_ms = Some(r.ms)
            }
            (Actor::Willy, Event::ConnectionFailed { .. }) if seen.client_detect_ms.is_none() => {
                seen.client_detect_ms = Some(r.ms)
            }
            _ => {}
        }
    }
    Some(seen)
}
