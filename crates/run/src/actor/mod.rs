//! The MQTT clients of a run: on rumqttc, except where a scenario needs bytes rumqttc cannot
//! write (an MQTT 5 willy, WebSocket pings of willy's own), which willy writes itself.
//!
//! - [`willy`]: the device that drops off the network. Connects through the proxy, runs the
//!   seed's cycles (connect, publish `true`, wait, publish `false`, disconnect, idle): on
//!   rumqttc for MQTT 3.1.1, on its own [`v5client`] session for MQTT 5 and for its own
//!   WebSocket pings, with packets from [`v5wire`] / [`v311wire`] and the wire codec's
//!   WebSocket frames (`tap::codec`).
//! - [`monit`]: the rest of the system. Connected straight to the broker, subscribed to `test/#`,
//!   it is how the run learns whether (and when) the will arrives.
//! - [`pubby`]: a third client, straight to the broker, that publishes numbered messages to one
//!   topic at a fixed interval (a busy topic, or messages sent while willy is cut off).
//! - [`twin`]: a second client with willy's client id, straight to the broker, that takes
//!   willy's session over while willy is cut off.
//!
//! Both only record what their client library reports; they judge nothing.

pub mod child;
pub mod monit;
pub mod pubby;
pub mod twin;
pub mod v311wire;
pub mod v5client;
pub mod v5wire;
pub mod willy;

use std::sync::Arc;

use crate::scenario::Trigger;

/// Called at each moment of a cycle a fault may be triggered at: `(cycle, moment)`. It runs
/// synchronously, so a fault due "before false" is in place before willy publishes `false`.
pub type MomentHook = Arc<dyn Fn(u32, Trigger) + Send + Sync>;

/// A payload as text for the log (MQTT payloads are bytes; ours are short UTF-8 words).
pub fn payload_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// rumqttc's QoS for a scenario's 0..=2.
pub fn qos(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

/// rumqttc's error as text: the broker's side of it (`broker::access`) says it, as recognising a
/// URL broker needs it before any actor runs.
pub use crate::broker::access::describe;
