//! monit for a device behind `unplug proxy`: whoever the device is, the proxy learns its will
//! from the CONNECT the tap saw, and subscribes to that topic at the broker, straight (not
//! through the proxy), recording what arrives as a scenario run's monit does.
//!
//! ```text
//!  journal --follow: each CONNECT as it is recorded--> CONNECT with a will (topic T)
//!      --> rumqttc (3.1.1, plain TCP) to the upstream broker: SUBSCRIBE T, QoS 1
//!      --> Monit MessageReceived { topic, payload, retain, qos } into the same journal
//! ```
//!
//! It only reads the journal, off the data path. A broker it cannot reach this way (WebSocket
//! only, a login it lacks) is said in a note; the will then goes unobserved.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

use super::judge::{connect_of, ConnectSeen};
use crate::event::{Actor, Event, Journal};

/// Follow `journal` and subscribe at `broker` to every will topic a device's CONNECT names.
/// One task: aborting it ends the watch and monit's connection. It is woken by what it
/// follows (a CONNECT, the broker's answer, monit's packets), never by a timer: an idle proxy
/// costs nothing here.
pub fn spawn(name: &str, broker: SocketAddr, journal: Journal) -> JoinHandle<()> {
    let id = format!("unplug-monit-{}-{name}", std::process::id());
    let name = name.to_string();
    // Which broker it is, as a scenario run against a URL learns it: its profile goes into
    // the journal (with the first CONNECT, in RunStarted), so `unplug judge` reads it there.
    note(
        &journal,
        format!("asking the broker at {broker} which broker it is ($SYS/broker/version): a connection of unplug's own, not the device's"),
    );
    let (said_tx, mut said_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = said_tx.send(crate::broker::recognise::ask(broker).await);
    });
    let mut connects = journal.follow(|r| connect_of(r).is_some());
    tokio::spawn(async move {
        let mut profile: Option<String> = None;
        let mut first: Option<ConnectSeen> = None;
        let mut started = false;
        let mut topics = BTreeSet::new();
        let mut mqtt: Option<(AsyncClient, EventLoop)> = None;
        let mut failing = false;
        let mut asking = true;
        loop {
            let polled = async {
                match mqtt.as_mut() {
                    Some((_, events)) => events.poll().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                said = &mut said_rx, if asking => {
                    asking = false;
                    let (p, how) = match said {
                        Ok(Ok(said)) => crate::broker::recognise::profile_for(said.as_deref()),
                        Ok(Err(e)) => {
                            let (p, _) = crate::broker::recognise::profile_for(None);
                            (p, format!("not recognised: {e}"))
                        }
                        Err(_) => crate::broker::recognise::profile_for(None),
                    };
                    note(&journal, format!("broker at {broker}: {} ({how})", p.broker));
                    profile = Some(p.broker);
                }
                rec = connects.recv() => {
                    let Some(c) = rec.as_ref().and_then(connect_of) else { return };
                    first.get_or_insert(c.clone());
                    let Some(topic) = c.will.map(|w| w.topic) else { continue };
                    if topics.contains(&topic) {
                        continue;
                    }
                    let (client, _) = mqtt.get_or_insert_with(|| {
                        let mut o = MqttOptions::new(&id, broker.ip().to_string(), broker.port());
                        o.set_keep_alive(Duration::from_secs(5));
                        AsyncClient::new(o, 64)
                    });
                    if client.try_subscribe(topic.as_str(), QoS::AtLeastOnce).is_err() {
                        note(&journal, format!("monit could not subscribe to {topic}"));
                    }
                    journal.record(Actor::Monit, Event::Subscribed { filter: topic.clone() });
                    topics.insert(topic);
                }
                event = polled => match event {
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => journal.record(
                        Actor::Monit,
                        Event::MessageReceived {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            qos: p.qos as u8,
                        },
                    ),
                    Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Subscribe(_))) => {}
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) if failing => {
                        // A new session (clean): subscribe again.
                        failing = false;
                        if let Some((client, _)) = &mqtt {
                            for t in &topics {
                                let _ = client.try_subscribe(t.as_str(), QoS::AtLeastOnce);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !failing {
                            note(&journal, format!(
                                "monit cannot reach the broker at {broker} over MQTT/TCP: {e} (the will goes unobserved until it can)"
                            ));
                        }
                        failing = true;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
            if let (false, Some(p), Some(c)) = (started, &profile, &first) {
                started = true;
                journal.record(
                    Actor::Runner,
                    Event::RunStarted {
                        scenario: name.clone(),
                        broker: p.clone(),
                        transport: if c.ws { "ws" } else { "tcp" }.to_string(),
                        protocol: if c.protocol_level == 5 { "5" } else { "3.1.1" }.to_string(),
                        keepalive_s: c.keepalive_s,
                    },
                );
            }
        }
    })
}

fn note(journal: &Journal, message: String) {
    journal.record(Actor::Proxy, Event::Note { message });
}
