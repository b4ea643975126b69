//! pubby's messages at willy ([`Delivery`], part of [`super::Facts`]): what it should get, what
//! its subscription got, and what the broker sent again.

use serde::Serialize;

use super::packet_id;
use crate::event::{Actor, Event, Record, Side};
use crate::mqtt::PacketKind;
use crate::scenario::Scenario;
use crate::tap::Fields;

/// pubby's messages and what willy's subscription got of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delivery {
    /// pubby's messages willy should get, as (ms written, payload): from the cut on when pubby
    /// publishes from the cut, else those written while willy was subscribed and connected.
    pub due: Vec<(f64, String)>,
    /// What willy received on pubby's topic.
    pub received: Vec<Delivered>,
    /// The QoS the broker granted willy's subscription (its first SUBACK); 128: refused.
    pub granted: Option<u8>,
    /// willy's first CONNACK after the first fault healed, and its Session Present flag.
    pub reconnected_ms: Option<f64>,
    pub session_present: Option<bool>,
    /// PUBLISHes of pubby's topic the broker sent willy again on a later connection (same
    /// packet id, not acknowledged on the earlier one), as the wire tap saw them.
    pub resent: Vec<Resent>,
}

/// A PUBLISH the broker sent again on a new connection [MQTT-4.4.0-1].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resent {
    pub ms: f64,
    pub packet_id: u64,
    pub dup: bool,
}

/// One message willy received from pubby.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivered {
    pub ms: f64,
    pub payload: String,
    pub qos: u8,
    pub dup: bool,
}

impl Delivery {
    pub(super) fn collect(s: &Scenario, records: &[Record]) -> Option<Delivery> {
        let (Some(p), Some(sub)) = (&s.publisher, &s.subscribe) else {
            return None;
        };
        if !crate::mqtt::filter_matches(&sub.filter, &p.topic) {
            return None;
        }
        let mut d = Delivery::default();
        let mut cut = None;
        let mut heal = None;
        let mut subscribed_since = None;
        let mut connected = false;
        // (conn, packet id) of PUBLISHes to willy not yet acknowledged.
        let mut unacked: Vec<(u64, u64)> = Vec::new();
        for r in records {
            if let Event::Packet {
                conn,
                from,
                dropped,
                kind,
                fields,
                ..
            } = &r.event
            {
                let id = packet_id(fields).map(u64::from);
                match (from, kind, id, fields) {
                    (
                        Side::Broker,
                        PacketKind::Publish,
                        Some(id),
                        Fields::Publish { topic, dup, .. },
                    ) if *topic == p.topic => {
                        if let Some(i) = unacked.iter().position(|(c, x)| *x == id && c != conn) {
                            unacked.remove(i);
                            d.resent.push(Resent {
                                ms: r.ms,
                                packet_id: id,
                                dup: *dup,
                            });
                        }
                        unacked.push((*conn, id));
                    }
                    (Side::Client, PacketKind::Puback | PacketKind::Pubrec, Some(id), _)
                        if !dropped =>
                    {
                        unacked.retain(|(c, x)| !(c == conn && *x == id));
                    }
                    _ => {}
                }
            }
            match (r.actor, &r.event) {
                (Actor::Proxy, Event::FaultApplied { n, .. }) if *n <= 1 && cut.is_none() => {
                    cut = Some(r.ms)
                }
                (Actor::Proxy, Event::FaultHealed { n, .. }) if *n <= 1 && heal.is_none() => {
                    heal = Some(r.ms)
                }
                (Actor::Willy, Event::SubscribeGranted { granted, .. }) => {
                    d.granted
                        .get_or_insert(granted.first().copied().unwrap_or(0x80));
                    subscribed_since.get_or_insert(r.ms);
                }
                (Actor::Willy, Event::Connected { session_present }) => {
                    connected = true;
                    if heal.is_some() && d.reconnected_ms.is_none() {
                        d.reconnected_ms = Some(r.ms);
                        d.session_present = Some(*session_present);
                    }
                }
                (Actor::Willy, Event::DisconnectRequested | Event::ConnectionFailed { .. }) => {
                    connected = false
                }
                (Actor::Pubby, Event::Published { payload, .. }) => {
                    let due = match p.from {
                        crate::scenario::PublishFrom::Cut => true,
                        crate::scenario::PublishFrom::Start => {
                            subscribed_since.is_some() && connected && cut.is_none()
                        }
                    };
                    if due {
                        d.due.push((r.ms, payload.clone()));
                    }
                }
                (
                    Actor::Willy,
                    Event::Received {
                        topic,
                        payload,
                        qos,
                        dup,
                        ..
                    },
                ) if *topic == p.topic => d.received.push(Delivered {
                    ms: r.ms,
                    payload: payload.clone(),
                    qos: *qos,
                    dup: *dup,
                }),
                _ => {}
            }
        }
        Some(d)
    }

    /// The QoS willy's messages must arrive at: the lower of pubby's and the granted one.
    pub fn effective_qos(&self, s: &Scenario) -> Option<u8> {
        let p = s.publisher.as_ref()?;
        let granted = self
            .granted
            .filter(|g| *g <= 2)
            .or(s.subscribe.as_ref().map(|sub| sub.qos))?;
        Some(p.qos.min(granted))
    }

    /// Payloads received more than once.
    pub fn duplicates(&self) -> Vec<String> {
        let mut seen: Vec<&str> = Vec::new();
        let mut dups = Vec::new();
        for r in &self.received {
            if seen.contains(&r.payload.as_str()) {
                dups.push(r.payload.clone());
            } else {
                seen.push(&r.payload);
            }
        }
        dups
    }
}
