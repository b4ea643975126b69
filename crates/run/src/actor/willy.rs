//! willy: the client whose network is cut.
//!
//! ```text
//!  for each cycle:  banner -> connect (retry every reconnect_ms until CONNACK)
//!                   -> publish "true" -> connected_for -> publish "false"
//!                   -> DISCONNECT, close -> idle
//!                      (a `leave_open` cycle: no DISCONNECT; a task keeps the connection
//!                       alive until the next cycle's CONNECT takes it over)
//! ```
//!
//! It talks to the proxy, never to the broker directly, and logs what rumqttc reports. rumqttc
//! reconnects at once when polled after an error, so willy waits `reconnect_ms` itself.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, EventLoop, LastWill, MqttOptions, Outgoing, QoS,
    Transport as MqttTransport,
};
use tokio::time::{sleep, timeout_at, Instant};

use super::v5client::Session;
use super::v5wire;
use super::{describe, MomentHook};
use crate::event::{Actor, Event, Journal};
use crate::mqtt::DisconnectForm;
use crate::scenario::{Protocol, Scenario, Transport, Trigger, V5Disconnect, STATUS_TOPIC};

/// How willy reaches the broker (through the proxy).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub transport: Transport,
    pub port: u16,
    pub ws_path: String,
    /// Over TLS: what willy trusts (the proxy's certificate, from the run's CA; or the
    /// broker's own when the proxy passes TLS through).
    #[serde(default)]
    pub tls: Option<crate::tls::Trust>,
}

impl Target {
    pub fn url(&self) -> String {
        self.url_at(std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// The URL of the proxy on `host` (a kernel cut: the veth's host end).
    pub fn url_at(&self, host: std::net::IpAddr) -> String {
        let scheme = self.transport.scheme();
        match self.transport.is_ws() {
            false => format!("{scheme}://{host}:{}", self.port),
            true => format!("{scheme}://{host}:{}{}", self.port, self.ws_path),
        }
    }

    /// willy's TLS config, for a TLS transport.
    pub fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        if !self.transport.is_tls() {
            return Ok(None);
        }
        let trust = self
            .tls
            .as_ref()
            .ok_or_else(|| "a TLS transport without a trust for willy".to_string())?;
        trust
            .client_config()
            .map(Some)
            .map_err(|e| format!("{e:#}"))
    }
}

pub struct Willy {
    pub scenario: Scenario,
    pub target: Target,
    pub journal: Journal,
    pub hook: MomentHook,
    /// The cycle willy is in, read by monit to know which cycle a `true` belongs to.
    pub cycle: Arc<AtomicU32>,
    /// The cycle to start at: 1, or the one after a crash when willy's process is restarted.
    pub first_cycle: u32,
}

/// Why a step of a cycle could not finish.
enum StepError {
    /// The client library reported an error; the connection is gone.
    Lost(ConnectionError),
    /// The expected event did not come in time (a write stuck behind a full socket buffer).
    TimedOut(&'static str),
    /// willy's own MQTT 5 connection failed.
    Failed(String),
}

impl Willy {
    fn record(&self, event: Event) {
        self.journal.record(Actor::Willy, event);
    }

    fn options(&self) -> MqttOptions {
        let s = &self.scenario;
        let mut o = if self.target.transport.is_ws() {
            MqttOptions::new("willy", self.target.url(), self.target.port)
        } else {
            MqttOptions::new("willy", "127.0.0.1", self.target.port)
        };
        o.set_keep_alive(s.keepalive);
        o.set_clean_session(s.clean_session);
        // rumqttc's default 10 KiB would refuse a larger will's CONNECT on every attempt.
        let max = crate::limits::CLIENT_MAX_PACKET;
        o.set_max_packet_size(max, max);
        crate::broker::access::apply_v4(&mut o);
        // After the run's clients' TLS (apply_v4): willy reaches the proxy, not the broker.
        let tls = self.target.tls_config().unwrap_or_else(|e| {
            self.record(Event::Note {
                message: format!("willy's TLS: {e}"),
            });
            None
        });
        o.set_transport(match (self.target.transport, tls) {
            (Transport::Ws, _) => MqttTransport::Ws,
            (Transport::Wss, Some(c)) => MqttTransport::Wss(rumqttc::TlsConfiguration::Rustls(c)),
            (Transport::Tls, Some(c)) => crate::broker::access::rumqttc_tls(c),
            _ => MqttTransport::Tcp,
        });
        if let Some(w) = &s.will {
            let qos = match w.qos {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            };
            o.set_last_will(LastWill::new(
                &w.topic,
                w.payload.as_bytes().to_vec(),
                qos,
                w.retain,
            ));
        }
        o
    }

    fn will_text(&self) -> Option<String> {
        self.scenario.will.as_ref().map(|w| {
            let mut t = format!("{{ topic: '{}', payload: '{}'", w.topic, w.payload);
            if w.qos > 0 || w.retain {
                t += &format!(", qos: {}, retain: {}", w.qos, w.retain);
            }
            if let Some(d) = w.delay_s {
                t += &format!(", delay: {d} s");
            }
            if let Some(c) = &w.content_type {
                t += &format!(", content type: '{c}'");
            }
            t + " }"
        })
    }

    /// Run every cycle. Returns when the last one is done; a run whose network never comes back
    /// is ended by the runner instead.
    pub async fn run(self) {
        for cycle in self.first_cycle..=self.scenario.cycles {
            self.cycle.store(cycle, Ordering::SeqCst);
            self.record(Event::CycleStarted { cycle });
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.one_connection(cycle, attempt).await {
                    Ok(()) => break,
                    Err(e) => {
                        let error = match e {
                            StepError::Lost(e) => describe(&e),
                            StepError::TimedOut(what) => format!("timed out waiting for {what}"),
                            StepError::Failed(e) => e,
                        };
                        self.record(Event::ConnectionFailed { error });
                        sleep(self.scenario.reconnect).await;
                    }
                }
            }
            if cycle < self.scenario.cycles {
                sleep(self.scenario.idle).await;
            }
        }
        self.record(Event::Note {
            message: format!("all {} cycles done", self.scenario.cycles),
        });
    }

    /// One connection of one cycle, from CONNECT to the clean close.
    async fn one_connection(&self, cycle: u32, attempt: u32) -> Result<(), StepError> {
        let s = &self.scenario;
        // WebSocket pings need a client that frames WebSocket itself: willy's own, in 3.1.1 too.
        if s.protocol == Protocol::V5 || s.willy.ws_ping.is_some() {
            return self.one_connection_v5(cycle, attempt).await;
        }
        self.record(Event::Connecting {
            url: self.target.url(),
            will: self.will_text(),
            attempt,
        });
        let (client, mut el) = AsyncClient::new(self.options(), 16);
        let mut net = el.network_options();
        net.set_connection_timeout(s.connect_timeout.as_secs());
        // What willy writes leaves at once: with Nagle on, a DISCONNECT written while the
        // PUBLISH before it is unacknowledged waits in the socket, and is lost if the close
        // turns into a reset (see `close_cleanly`).
        net.set_tcp_nodelay(true);
        el.set_network_options(net);
        let mut el = Polled {
            el,
            next_ping: Instant::now() + s.keepalive,
            keepalive: s.keepalive,
        };

        // rumqttc returns the CONNACK from its first successful poll, or the connect error.
        let connack = match el.el.poll().await.map_err(StepError::Lost)? {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(c)) => c,
            other => {
                unreachable!("rumqttc's first event after connecting is the CONNACK, got {other:?}")
            }
        };
        self.record(Event::Connected {
            session_present: connack.session_present,
        });
        (self.hook)(cycle, Trigger::Connected);

        // A session the broker kept still holds the subscription [MQTT-3.1.2-4]: subscribing
        // again would hide whether it did.
        if let (Some(sub), false) = (&s.subscribe, connack.session_present) {
            let _ = client.try_subscribe(&sub.filter, super::qos(sub.qos));
            self.drive_until(&mut el, "the SUBACK", step_limit(s), |e| {
                matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))
            })
            .await?;
        }

        self.publish(&client, &mut el, "true").await?;
        self.drive_for(&mut el, s.connected_for).await?;
        (self.hook)(cycle, Trigger::BeforeFalse);
        self.publish(&client, &mut el, "false").await?;
        if s.willy.leaves_open(cycle) {
            self.leave_open(
                cycle,
                Kept::Rumqttc {
                    _client: client,
                    el: Box::new(el),
                },
            );
            return Ok(());
        }

        (self.hook)(cycle, Trigger::BeforeDisconnect);
        self.record(Event::DisconnectRequested);
        let _ = client.try_disconnect();
        self.drive_until(
            &mut el,
            "the DISCONNECT to be written",
            step_limit(s),
            |e| matches!(e, rumqttc::Event::Outgoing(Outgoing::Disconnect)),
        )
        .await?;
        // A client closes its network connection after DISCONNECT [MQTT-3.14.4-1].
        self.close_cleanly(el).await;
        self.record(Event::Disconnected);
        (self.hook)(cycle, Trigger::Disconnected);
        Ok(())
    }

    /// The same cycle over MQTT 5, on packets willy writes itself (see v5wire.rs for why).
    async fn one_connection_v5(&self, cycle: u32, attempt: u32) -> Result<(), StepError> {
        let s = &self.scenario;
        self.record(Event::Connecting {
            url: self.target.url(),
            will: self.will_text(),
            attempt,
        });
        let will = s.will.as_ref().map(|w| v5wire::Will {
            topic: &w.topic,
            payload: w.payload.as_bytes(),
            qos: w.qos,
            retain: w.retain,
            delay_s: w.delay_s,
            content_type: w.content_type.as_deref(),
        });
        let ka = s.keepalive.as_secs().min(u64::from(u16::MAX)) as u16;
        let login = crate::broker::access::login();
        let v311 = s.protocol == Protocol::V311;
        let connect = if v311 {
            super::v311wire::connect("willy", ka, s.clean_session, will.as_ref(), login.as_ref())
        } else {
            v5wire::connect_as(
                "willy",
                ka,
                s.clean_session,
                s.session_expiry_s,
                will.as_ref(),
                login.as_ref(),
            )
        };
        let ws_path = match self.target.transport.is_ws() {
            true => Some(self.target.ws_path.as_str()),
            false => None,
        };
        let tls = match self.target.transport.is_tls() {
            true => Some(self.target.tls.as_ref().ok_or_else(|| {
                StepError::Failed("a TLS transport without a trust for willy".into())
            })?),
            false => None,
        };
        let (mut session, connack) = Session::connect_at(
            self.target.port,
            ws_path,
            tls,
            &connect,
            s.keepalive,
            s.connect_timeout,
            if v311 { 4 } else { 5 },
        )
        .await
        .map_err(StepError::Failed)?;
        self.record(Event::Connected {
            session_present: connack.session_present,
        });
        if let Some(every) = s.willy.ws_ping {
            session.ws_pings(every, s.willy.ws_pong_timeout);
        }
        if !s.willy.mqtt_pings {
            session.mqtt_pings_off();
        }
        if let Some(k) = connack.server_keepalive_s {
            self.record(Event::Note {
                message: format!(
                    "the CONNACK carries Server Keep Alive {k} s (willy sent {ka} s): pinging by {k} s [MQTT-3.1.2-21]"
                ),
            });
        }
        (self.hook)(cycle, Trigger::Connected);

        let publish = |payload: &'static str| {
            if v311 {
                super::v311wire::publish(STATUS_TOPIC, payload.as_bytes(), false)
            } else {
                v5wire::publish(STATUS_TOPIC, payload.as_bytes(), false)
            }
        };
        session
            .write(&publish("true"))
            .await
            .map_err(StepError::Failed)?;
        self.record(Event::Published {
            topic: STATUS_TOPIC.to_string(),
            payload: "true".to_string(),
        });
        session
            .drive_for(s.connected_for)
            .await
            .map_err(StepError::Failed)?;
        (self.hook)(cycle, Trigger::BeforeFalse);
        session
            .write(&publish("false"))
            .await
            .map_err(StepError::Failed)?;
        self.record(Event::Published {
            topic: STATUS_TOPIC.to_string(),
            payload: "false".to_string(),
        });
        if s.willy.leaves_open(cycle) {
            self.leave_open(cycle, Kept::Own(Box::new(session)));
            return Ok(());
        }

        (self.hook)(cycle, Trigger::BeforeDisconnect);
        self.record(Event::DisconnectRequested);
        let d = s.disconnect.unwrap_or(V5Disconnect {
            reason: 0,
            form: DisconnectForm::Short,
        });
        let bytes = crate::mqtt::disconnect(d.reason, d.form).map_err(StepError::Failed)?;
        session.write(&bytes).await.map_err(StepError::Failed)?;
        if !v311 {
            self.record(Event::Note {
            message: format!(
                "wrote DISCONNECT {} (reason 0x{:02x}, {:?} form) itself: rumqttc's v5 client cannot choose the reason code",
                crate::mqtt::hex(&bytes),
                d.reason,
                d.form
            ),
        });
        }
        // [MQTT-3.14.4-1]: the client closes the network connection after DISCONNECT.
        drop(session);
        self.record(Event::Disconnected);
        (self.hook)(cycle, Trigger::Disconnected);
        Ok(())
    }

    async fn publish(
        &self,
        client: &AsyncClient,
        el: &mut Polled,
        payload: &str,
    ) -> Result<(), StepError> {
        let _ = client.try_publish(
            STATUS_TOPIC,
            QoS::AtMostOnce,
            false,
            payload.as_bytes().to_vec(),
        );
        self.drive_until(
            el,
            "the PUBLISH to be written",
            step_limit(&self.scenario),
            |e| matches!(e, rumqttc::Event::Outgoing(Outgoing::Publish(_))),
        )
        .await?;
        self.record(Event::Published {
            topic: STATUS_TOPIC.to_string(),
            payload: payload.to_string(),
        });
        Ok(())
    }
}

/// rumqttc's event loop, with when its keepalive timer will next write a PINGREQ.
struct Polled {
    el: EventLoop,
    /// rumqttc pings every keepalive from the CONNACK on, whatever else was sent (its timer is
    /// reset only when it fires: `EventLoop::select`).
    next_ping: Instant,
    keepalive: Duration,
}

impl Polled {
    async fn poll(&mut self) -> Result<rumqttc::Event, ConnectionError> {
        let e = self.el.poll().await?;
        if matches!(e, rumqttc::Event::Outgoing(Outgoing::PingReq)) {
            self.next_ping = Instant::now() + self.keepalive;
        }
        Ok(e)
    }
}

/// How long willy reads after its DISCONNECT for the broker's close, at most.
const CLOSE_READ: Duration = Duration::from_millis(100);

/// How close to its next PINGREQ willy stops reading: rumqttc would write the PINGREQ after the
/// DISCONNECT, which [MQTT-3.14.4-2] forbids.
const PING_MARGIN: Duration = Duration::from_millis(20);

impl Willy {
    /// Close after DISCONNECT without a reset: read what the broker had already sent (a
    /// PINGRESP to the PINGREQ just before, a message on willy's subscription) until it closes
    /// its end, then drop the socket. Dropped with those bytes unread, the kernel sends RST
    /// instead of FIN [RFC 1122 4.2.2.13], and a DISCONNECT still in the send queue is lost with
    /// it: the broker then rightly publishes the will. Bounded by [`CLOSE_READ`] (a broker
    /// behind a cut never closes) and by rumqttc's next PINGREQ.
    async fn close_cleanly(&self, mut el: Polled) {
        let until = Instant::now() + CLOSE_READ;
        let until = until.min(el.next_ping.checked_sub(PING_MARGIN).unwrap_or(until));
        while Instant::now() < until {
            match timeout_at(until, el.poll()).await {
                Ok(Ok(e)) => self.note(&e),
                // The broker's close (EOF), or the bound.
                Ok(Err(_)) | Err(_) => break,
            }
        }
        drop(el);
    }
}

/// A connection willy left open at the end of its cycle (`[willy] leave_open`), with what
/// keeps it alive: rumqttc's event loop and its client handle (with every handle dropped the
/// loop ends the connection), or willy's own session.
enum Kept {
    Rumqttc {
        /// Held, never used: with every handle dropped, rumqttc's loop ends the connection.
        _client: AsyncClient,
        el: Box<Polled>,
    },
    Own(Box<Session>),
}

impl Kept {
    /// Serve the connection (its PINGREQs, what the broker sends) until it ends or `limit`
    /// passes: how it ended, in words; None when it is still open.
    async fn serve(&mut self, limit: Duration) -> Option<String> {
        match self {
            Kept::Rumqttc { el, .. } => {
                // rumqttc reconnects when polled after an error: the first error ends it.
                let first_error = async {
                    loop {
                        if let Err(e) = el.poll().await {
                            return describe(&e);
                        }
                    }
                };
                tokio::time::timeout(limit, first_error).await.ok()
            }
            Kept::Own(session) => session.drive_for(limit).await.err(),
        }
    }
}

/// How long willy keeps a left-open connection at most: the next cycle starts `idle` later,
/// and its CONNECT, which takes the connection over, gets its CONNACK within the connection
/// timeout, once more after one failed attempt. A broker that has not closed the old
/// connection by then never will for that CONNECT (`takeover-close` says so); willy then
/// closes it, so no run holds it open to the end.
fn keep_open_limit(s: &Scenario) -> Duration {
    s.idle + s.connect_timeout * 2 + s.reconnect
}

impl Willy {
    /// End `cycle` without DISCONNECT, leaving its connection open: a task keeps it alive
    /// until the broker closes it (the next cycle's CONNECT takes the session over,
    /// [MQTT-3.1.4-2]) or [`keep_open_limit`] passes, and notes how it ended.
    fn leave_open(&self, cycle: u32, mut kept: Kept) {
        self.record(Event::LeftOpen);
        let journal = self.journal.clone();
        let limit = keep_open_limit(&self.scenario);
        tokio::spawn(async move {
            let end = match kept.serve(limit).await {
                Some(how) => format!("ended: {how}"),
                None => format!(
                    "still open {} ms later: willy closes it without DISCONNECT",
                    limit.as_millis()
                ),
            };
            journal.record(
                Actor::Willy,
                Event::Note {
                    message: format!("cycle {cycle}'s connection, left open, {end}"),
                },
            );
            drop(kept);
        });
    }
}

/// How long a single write may take before willy calls the connection stuck.
fn step_limit(s: &Scenario) -> Duration {
    s.connect_timeout
}

impl Willy {
    /// Record what willy's own subscription brings: each message and the SUBACK.
    fn note(&self, e: &rumqttc::Event) {
        match e {
            rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => self.record(Event::Received {
                topic: p.topic.clone(),
                payload: super::payload_text(&p.payload),
                qos: p.qos as u8,
                retain: p.retain,
                dup: p.dup,
            }),
            rumqttc::Event::Incoming(rumqttc::Packet::SubAck(a)) => {
                use rumqttc::SubscribeReasonCode as R;
                self.record(Event::SubscribeGranted {
                    filter: self
                        .scenario
                        .subscribe
                        .as_ref()
                        .map_or(String::new(), |s| s.filter.clone()),
                    granted: a
                        .return_codes
                        .iter()
                        .map(|c| match c {
                            R::Success(q) => *q as u8,
                            R::Failure => 0x80,
                        })
                        .collect(),
                })
            }
            _ => {}
        }
    }

    /// Keep the event loop turning (it sends the PINGREQs) for `d`.
    async fn drive_for(&self, el: &mut Polled, d: Duration) -> Result<(), StepError> {
        let until = Instant::now() + d;
        loop {
            match timeout_at(until, el.poll()).await {
                Err(_) => return Ok(()),
                Ok(Ok(e)) => self.note(&e),
                Ok(Err(e)) => return Err(StepError::Lost(e)),
            }
        }
    }

    /// Poll until `done` matches an event.
    async fn drive_until(
        &self,
        el: &mut Polled,
        what: &'static str,
        limit: Duration,
        done: impl Fn(&rumqttc::Event) -> bool,
    ) -> Result<(), StepError> {
        let until = Instant::now() + limit;
        loop {
            match timeout_at(until, el.poll()).await {
                Err(_) => return Err(StepError::TimedOut(what)),
                Ok(Ok(e)) => {
                    self.note(&e);
                    if done(&e) {
                        return Ok(());
                    }
                }
                Ok(Err(e)) => return Err(StepError::Lost(e)),
            }
        }
    }
}
