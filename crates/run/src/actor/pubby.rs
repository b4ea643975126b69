//! pubby: the third client, a publisher that keeps a topic busy.
//!
//! ```text
//!  connect straight to the broker (never through the proxy), clean session
//!  -> wait for "go" (the run's start, or the cut) -> publish "1", "2", ... every `every`
//!  -> stop after `count` (or when the runner ends the run), keep the event loop turning
//! ```
//!
//! Payloads are sequence numbers, so whoever receives them can tell a lost message from a
//! duplicate. Each publish is recorded when rumqttc has written it to its socket.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, Outgoing};
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

use super::{describe, qos};
use crate::event::{Actor, Event, Journal};
use crate::scenario::Publisher;

pub struct Pubby {
    /// The broker's 3.1.1 TCP listener.
    pub broker: SocketAddr,
    pub publisher: Publisher,
    pub journal: Journal,
}

impl Pubby {
    fn record(&self, event: Event) {
        self.journal.record(Actor::Pubby, event);
    }

    /// Publish until `count` is reached; then keep acknowledging until the task is dropped.
    pub async fn run(self, go: oneshot::Receiver<()>) {
        let p = &self.publisher;
        let mut o = MqttOptions::new("pubby", self.broker.ip().to_string(), self.broker.port());
        o.set_keep_alive(Duration::from_secs(5));
        crate::broker::access::apply_v4(&mut o);
        o.set_clean_session(true);
        // Room for every message that may wait on a slow acknowledgement.
        let (client, mut el) = AsyncClient::new(o, 64);
        // rumqttc's poll is not cancel-safe while it connects: connect before the select below.
        let connect = async {
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return,
                    Ok(_) => {}
                    Err(e) => {
                        self.record(Event::ConnectionFailed {
                            error: describe(&e),
                        });
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .is_err()
        {
            self.record(Event::Note {
                message: format!("could not connect to {} within 10 s", self.broker),
            });
            return;
        }
        self.record(Event::Connected {
            session_present: false,
        });
        let mut go = Some(go);
        let mut tick: Option<tokio::time::Interval> = None;
        let mut sent = 0u32;
        // Payloads asked for and not yet written, in order: rumqttc writes them in order.
        let mut asked: VecDeque<String> = VecDeque::new();
        loop {
            tokio::select! {
                r = async { go.as_mut().expect("guarded").await }, if go.is_some() => {
                    go = None;
                    if r.is_ok() {
                        let mut t = tokio::time::interval(p.every);
                        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        tick = Some(t);
                    }
                }
                _ = async { tick.as_mut().expect("guarded").tick().await }, if tick.is_some() && sent < p.limit() => {
                    let payload = (sent + 1).to_string();
                    match client.try_publish(&p.topic, qos(p.qos), false, payload.clone()) {
                        Ok(()) => {
                            sent += 1;
                            asked.push_back(payload);
                        }
                        Err(e) => self.record(Event::Note {
                            message: format!("could not queue message {payload}: {e}"),
                        }),
                    }
                }
                e = el.poll() => match e {
                    Ok(rumqttc::Event::Outgoing(Outgoing::Publish(_))) => {
                        if let Some(payload) = asked.pop_front() {
                            self.record(Event::Published { topic: p.topic.clone(), payload });
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        self.record(Event::Connected { session_present: false });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.record(Event::ConnectionFailed {
                            error: describe(&e),
                        });
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    }
}
