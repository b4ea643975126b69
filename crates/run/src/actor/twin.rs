//! twin: a second client with willy's client id, straight to the broker.
//!
//! ```text
//!  (the runner, `after` past the cut) -> CONNECT "willy", clean session, no will
//!  -> CONNACK -> stay connected (answering pings) until the run ends
//! ```
//!
//! The broker must disconnect the existing willy [MQTT-3.1.4-2]; that close is not a
//! DISCONNECT from willy, so willy's will must follow it [MQTT-3.1.2-8].

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions};

use crate::event::{Actor, Event, Journal};

pub struct Twin {
    /// The broker's 3.1.1 TCP listener.
    pub broker: SocketAddr,
    pub keepalive: Duration,
    pub journal: Journal,
}

impl Twin {
    /// Connect once and keep the connection turning until the task is dropped.
    pub async fn run(self) {
        let url = format!("mqtt://{}", self.broker);
        let mut o = MqttOptions::new("willy", self.broker.ip().to_string(), self.broker.port());
        o.set_keep_alive(self.keepalive);
        crate::broker::access::apply_v4(&mut o);
        o.set_clean_session(true);
        let (_client, mut el) = AsyncClient::new(o, 4);
        self.journal.record(
            Actor::Twin,
            Event::Connecting {
                url,
                will: None,
                attempt: 1,
            },
        );
        // Bounded: the runner aborts this task when the run ends.
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(c))) => self.journal.record(
                    Actor::Twin,
                    Event::Connected {
                        session_present: c.session_present,
                    },
                ),
                Ok(_) => {}
                Err(e) => {
                    self.journal.record(
                        Actor::Twin,
                        Event::ConnectionFailed {
                            error: super::describe(&e),
                        },
                    );
                    // One takeover is the experiment: a twin that lost its connection stays
                    // away rather than taking willy's id again and again.
                    return;
                }
            }
        }
    }
}
