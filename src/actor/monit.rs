//! monit: the subscriber that stands for "the rest of the system".
//!
//! Connected straight to the broker (never through the proxy), subscribed to `test/#`. Every
//! message it gets is recorded; a `true` from willy is the seed's moment to cut the network.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use tokio::sync::oneshot;

use super::{payload_text, MomentHook};
use crate::event::{Actor, Event, Journal};
use crate::scenario::{Trigger, MONITOR_FILTER, STATUS_TOPIC};

pub struct Monit {
    pub broker_port: u16,
    pub keepalive: Duration,
    pub journal: Journal,
    pub hook: MomentHook,
    /// willy's current cycle.
    pub cycle: Arc<AtomicU32>,
}

impl Monit {
    /// Connect, subscribe, and record every message until the task is dropped. `ready` fires at
    /// the first SUBACK, so willy starts only once nothing it publishes can be missed.
    pub async fn run(self, ready: oneshot::Sender<()>) {
        let mut ready = Some(ready);
        let mut o = MqttOptions::new("monit", "127.0.0.1", self.broker_port);
        o.set_keep_alive(self.keepalive);
        o.set_clean_session(true);
        let (client, mut el) = AsyncClient::new(o, 16);
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    // Clean session: the subscription is made anew on every connection.
                    let _ = client.try_subscribe(MONITOR_FILTER, QoS::AtMostOnce);
                }
                Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                    self.journal.record(
                        Actor::Monit,
                        Event::Subscribed {
                            filter: MONITOR_FILTER.to_string(),
                        },
                    );
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    let payload = payload_text(&p.payload);
                    let is_true = p.topic == STATUS_TOPIC && payload == "true";
                    self.journal.record(
                        Actor::Monit,
                        Event::MessageReceived {
                            topic: p.topic.clone(),
                            payload,
                            retain: p.retain,
                            qos: p.qos as u8,
                        },
                    );
                    if is_true {
                        (self.hook)(self.cycle.load(Ordering::SeqCst), Trigger::AfterTrue);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.journal.record(
                        Actor::Monit,
                        Event::ConnectionFailed {
                            error: super::willy::describe(&e),
                        },
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}
