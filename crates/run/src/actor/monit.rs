//! monit: the subscriber that stands for "the rest of the system".
//!
//! Connected straight to the broker (never through the proxy), subscribed to `test/#`. Every
//! message it gets is recorded; a `true` from willy is the seed's moment to cut the network.
//!
//! A flaky monit (`[monit]` with a schedule) closes its connection without DISCONNECT when the
//! runner says `away`, and reconnects with the same client id and session when it says `back`:
//!
//! ```text
//!  connect, subscribe (no session yet) -> ... -> away: drop the event loop (FIN, no DISCONNECT)
//!  -> back: CONNECT clean session 0 -> CONNACK (session present?) -> subscribe only if not
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, Packet};
use tokio::sync::oneshot;

use super::{payload_text, MomentHook};
use crate::event::{Actor, Event, Journal};
use crate::scenario::{MonitSetup, Protocol, Trigger, MONITOR_FILTER, STATUS_TOPIC};

pub struct Monit {
    /// The broker's plain-TCP listener.
    pub broker: std::net::SocketAddr,
    /// The protocol monit speaks: willy's.
    pub protocol: Protocol,
    pub keepalive: Duration,
    pub journal: Journal,
    pub hook: MomentHook,
    /// willy's current cycle.
    pub cycle: Arc<AtomicU32>,
    /// Its subscription QoS and session.
    pub setup: MonitSetup,
    /// The runner's signals for a flaky monit to go away and to come back.
    pub flaky: Option<FlakySignals>,
}

/// When a flaky monit leaves and returns: the runner decides, monit obeys.
pub struct FlakySignals {
    pub away: oneshot::Receiver<()>,
    pub back: oneshot::Receiver<()>,
}

/// What monit does next: handle what its client reported, or leave.
enum Step {
    Polled(Result<Incoming, String>),
    Away,
}

/// What either client library reported, reduced to what monit acts on.
enum Incoming {
    ConnAck {
        session_present: bool,
    },
    SubAck,
    Publish {
        topic: String,
        payload: String,
        retain: bool,
        qos: u8,
    },
    Other,
}

/// monit's client: rumqttc's 3.1.1 or MQTT 5 event loop.
enum Client {
    V4(AsyncClient, Box<rumqttc::EventLoop>),
    V5(rumqttc::v5::AsyncClient, Box<rumqttc::v5::EventLoop>),
}

impl Client {
    fn new(
        id: &str,
        broker: std::net::SocketAddr,
        protocol: Protocol,
        keepalive: Duration,
        clean_session: bool,
    ) -> Client {
        let (host, port) = (broker.ip().to_string(), broker.port());
        match protocol {
            Protocol::V311 => {
                let mut o = MqttOptions::new(id, host, port);
                o.set_keep_alive(keepalive);
                o.set_clean_session(clean_session);
                // A will larger than rumqttc's default 10 KiB must still reach monit.
                let max = crate::limits::CLIENT_MAX_PACKET;
                o.set_max_packet_size(max, max);
                crate::broker::access::apply_v4(&mut o);
                let (c, el) = AsyncClient::new(o, 16);
                Client::V4(c, Box::new(el))
            }
            Protocol::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(id, host, port);
                // rumqttc's v5 options panic below 5 s; monit's own keepalive is not measured.
                o.set_keep_alive(keepalive.max(Duration::from_secs(5)));
                o.set_clean_start(true);
                if let Some(max) = crate::limits::v5_max_packet() {
                    o.set_max_packet_size(Some(max));
                }
                crate::broker::access::apply_v5(&mut o);
                let (c, el) = rumqttc::v5::AsyncClient::new(o, 16);
                Client::V5(c, Box::new(el))
            }
        }
    }

    async fn poll(&mut self) -> Result<Incoming, String> {
        match self {
            Client::V4(_, el) => match el.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(c))) => Ok(Incoming::ConnAck {
                    session_present: c.session_present,
                }),
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => Ok(Incoming::SubAck),
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => Ok(Incoming::Publish {
                    topic: p.topic.clone(),
                    payload: payload_text(&p.payload),
                    retain: p.retain,
                    qos: p.qos as u8,
                }),
                Ok(_) => Ok(Incoming::Other),
                Err(e) => Err(super::describe(&e)),
            },
            Client::V5(_, el) => {
                use rumqttc::v5::mqttbytes::v5::Packet as P5;
                match el.poll().await {
                    Ok(rumqttc::v5::Event::Incoming(P5::ConnAck(c))) => Ok(Incoming::ConnAck {
                        session_present: c.session_present,
                    }),
                    Ok(rumqttc::v5::Event::Incoming(P5::SubAck(_))) => Ok(Incoming::SubAck),
                    Ok(rumqttc::v5::Event::Incoming(P5::Publish(p))) => Ok(Incoming::Publish {
                        topic: payload_text(&p.topic),
                        payload: payload_text(&p.payload),
                        retain: p.retain,
                        qos: p.qos as u8,
                    }),
                    Ok(_) => Ok(Incoming::Other),
                    Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => Err(format!(
                        "{}{}",
                        crate::broker::access::REFUSED,
                        crate::broker::access::v5_refusal(code)
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    fn subscribe(&self, qos: u8) {
        match self {
            Client::V4(c, _) => {
                let _ = c.try_subscribe(MONITOR_FILTER, super::qos(qos));
            }
            Client::V5(c, _) => {
                use rumqttc::v5::mqttbytes::QoS as Q5;
                let q = match qos {
                    0 => Q5::AtMostOnce,
                    1 => Q5::AtLeastOnce,
                    _ => Q5::ExactlyOnce,
                };
                let _ = c.try_subscribe(MONITOR_FILTER, q);
            }
        }
    }
}

impl Monit {
    /// Connect, subscribe, and record every message until the task is dropped. `ready` fires at
    /// the first SUBACK, so willy starts only once nothing it publishes can be missed; or with
    /// the reason monit cannot get in, said in the broker's terms, at once for a refused
    /// CONNECT and after two closes without CONNACK.
    pub async fn run(mut self, ready: oneshot::Sender<Result<(), String>>) {
        let mut ready = Some(ready);
        let new_client = |m: &Monit| {
            Client::new(
                "monit",
                m.broker,
                m.protocol,
                m.keepalive,
                m.setup.clean_session,
            )
        };
        let mut client = new_client(&self);
        let (mut away, mut back) = match self.flaky.take() {
            Some(f) => (Some(f.away), Some(f.back)),
            None => (None, None),
        };
        let mut returned = false;
        let mut closed_before_connack = 0;
        let mut connected = false;
        loop {
            let step = tokio::select! {
                r = client.poll() => Step::Polled(r),
                _ = async { away.as_mut().expect("guarded").await }, if away.is_some() => Step::Away,
            };
            let polled = match step {
                Step::Polled(r) => r,
                Step::Away => {
                    away = None;
                    // Dropping the event loop closes the socket: a FIN, no DISCONNECT.
                    drop(client);
                    self.journal
                        .record(Actor::Monit, Event::ConnectionAbandoned);
                    if let Some(b) = back.take() {
                        // The runner always sends it (or ends the run, dropping this task).
                        let _ = b.await;
                    }
                    returned = true;
                    client = new_client(&self);
                    continue;
                }
            };
            match polled {
                // The subscription is made on every connection without a session: with a clean
                // session that is every one; with a kept one the broker still holds it
                // [MQTT-3.1.2-4], and subscribing again would hide whether it did.
                Ok(Incoming::ConnAck { session_present }) => {
                    connected = true;
                    if returned {
                        self.journal
                            .record(Actor::Monit, Event::Connected { session_present });
                        returned = false;
                    }
                    if !session_present {
                        client.subscribe(self.setup.qos);
                    }
                }
                Ok(Incoming::SubAck) => {
                    self.journal.record(
                        Actor::Monit,
                        Event::Subscribed {
                            filter: MONITOR_FILTER.to_string(),
                        },
                    );
                    if let Some(r) = ready.take() {
                        let _ = r.send(Ok(()));
                    }
                }
                Ok(Incoming::Publish {
                    topic,
                    payload,
                    retain,
                    qos,
                }) => {
                    let is_true = topic == STATUS_TOPIC && payload == "true";
                    self.journal.record(
                        Actor::Monit,
                        Event::MessageReceived {
                            topic,
                            payload,
                            retain,
                            qos,
                        },
                    );
                    if is_true {
                        (self.hook)(self.cycle.load(Ordering::SeqCst), Trigger::AfterTrue);
                    }
                }
                Ok(Incoming::Other) => {}
                Err(error) => {
                    let refused = error.starts_with(crate::broker::access::REFUSED);
                    if !connected && !refused {
                        closed_before_connack += 1;
                    }
                    self.journal.record(
                        Actor::Monit,
                        Event::ConnectionFailed {
                            error: error.clone(),
                        },
                    );
                    if ready.is_some() && (refused || closed_before_connack >= 2) {
                        let why = if refused {
                            format!(
                                "the broker refused monit: {}",
                                &error[crate::broker::access::REFUSED.len()..]
                            )
                        } else {
                            format!(
                                "{} (monit, twice: {error})",
                                crate::broker::access::closed_before_connack(
                                    self.protocol == Protocol::V5
                                )
                            )
                        };
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(why));
                        }
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// A subscriber that arrives after the will was published: whatever it gets at once was
/// retained [MQTT-3.1.2-17]. It records its SUBACK and each message, until dropped.
pub async fn late_subscriber(broker: std::net::SocketAddr, protocol: Protocol, journal: Journal) {
    let mut client = Client::new("late", broker, protocol, Duration::from_secs(5), true);
    loop {
        match client.poll().await {
            Ok(Incoming::ConnAck { .. }) => client.subscribe(0),
            Ok(Incoming::SubAck) => journal.record(Actor::Monit, Event::LateSubscribed),
            Ok(Incoming::Publish {
                topic,
                payload,
                retain,
                ..
            }) => journal.record(
                Actor::Monit,
                Event::LateReceived {
                    topic,
                    payload,
                    retain,
                },
            ),
            Ok(Incoming::Other) => {}
            Err(error) => {
                journal.record(Actor::Monit, Event::ConnectionFailed { error });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
