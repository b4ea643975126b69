//! The scenario file's format and its validation: one parser per table, each refusing what
//! does not make sense with the file, line and key.
//!
//! ```text
//!  TOML text --toml--> RawScenario --parse: protocol, [will], [publisher], [subscribe],
//!                                    [[faults]] (faults.rs), [takeover], [monit], [tap]--> Scenario
//! ```

use std::time::Duration;

use toml::Spanned;

use super::faults::fault_kind;
use super::raw::*;
use super::*;

/// Parse and validate a scenario. `source` names the file in errors; `name` is the scenario's name.
pub fn parse(name: &str, source: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw = read_toml(source, text)?;
    let v = Validator {
        source,
        text,
        protocol: Protocol::V311,
    };

    let transport: Transport = match &raw.transport {
        Some(t) => v.choice(t, "transport", "tcp, ws, tls, wss")?,
        None => Transport::Tcp,
    };
    let protocol = protocol(&v, &raw.protocol)?;
    // Keys that only MQTT 5 can express are refused on 3.1.1 rather than ignored.
    let v = Validator { protocol, ..v };
    let session_expiry_s = session_expiry(&v, &raw.session_expiry_s)?;
    let disconnect = disconnect(&v, &raw.disconnect_reason, &raw.disconnect_form)?;
    // The timing keys' ranges and defaults: raw.rs's TIMING.
    let keepalive = Duration::from_secs(v.timing(&raw.keepalive_s, "keepalive_s")?);
    let cycles = v.timing(&raw.cycles, "cycles")? as u32;
    let connected_for = Duration::from_millis(v.timing(&raw.connected_for_ms, "connected_for_ms")?);
    let idle = Duration::from_millis(v.timing(&raw.idle_ms, "idle_ms")?);
    let reconnect = Duration::from_millis(v.timing(&raw.reconnect_ms, "reconnect_ms")?);
    let connect_timeout = match &raw.connect_timeout_s {
        Some(x) => Duration::from_secs(v.int_in(x, "connect_timeout_s", 1, 600)?),
        None => Duration::from_secs(5),
    };
    let in_fleet = super::fleet::single_willy_keys(&raw);
    let will = will(&v, raw.will)?;
    let monit_protocol = monit_protocol(&v, &raw.monit_protocol)?;
    let clean_session = clean_session(&v, &raw.clean_session, &raw.clean_start)?;
    let publisher = publisher(&v, &raw.publisher)?;
    let subscribe = subscribe(&v, &raw.subscribe)?;
    let faults = faults(&v, &raw.faults, transport, cycles)?;
    let takeover = takeover(&v, &raw.takeover, &faults)?;
    let monit = monit(&v, &raw.monit, &faults)?;
    let publishes = match raw.tap.as_ref().and_then(|t| t.publishes.as_ref()) {
        Some(p) => v.choice(p, "tap.publishes", "each, runs")?,
        None => PublishRecords::Each,
    };
    let tls_tap = tls_tap(&v, &raw.tap, transport, &faults)?;
    let broker = broker_settings(&v, &raw.broker)?;
    let willy = willy_setup(&v, &raw.willy, transport, cycles)?;
    let fleet = super::fleet::fleet(
        &v,
        &raw.fleet,
        will.is_some(),
        &in_fleet,
        transport,
        &faults,
    )?;

    let derived = will_derived(&will, &faults, keepalive, &disconnect, &takeover);
    let client = willy_client(&v, &raw.willy, &willy)?;
    if let Some(list) = raw.willy.as_ref().and_then(|w| w.leave_open.as_ref()) {
        leave_open_fits(
            &v,
            list.span(),
            &willy.leave_open,
            &faults,
            takeover.is_some(),
            disconnect.is_some(),
            &client,
        )?;
    }
    let expect = Expect {
        will: raw.expect.and_then(|e| e.will).unwrap_or(derived),
    };

    Ok(Scenario {
        name: name.to_string(),
        description: raw.description.unwrap_or_default(),
        source: source.to_string(),
        transport,
        protocol,
        keepalive,
        cycles,
        connected_for,
        idle,
        reconnect,
        connect_timeout,
        will,
        session_expiry_s,
        disconnect,
        late_subscriber: raw.late_subscriber.unwrap_or(false),
        monit_protocol,
        monit,
        publisher,
        subscribe,
        clean_session,
        takeover,
        broker,
        willy,
        faults,
        expect,
        client,
        observe: None,
        publishes,
        tls_tap,
        fleet,
    })
}

/// The TOML read into the file's tables, a syntax error or an unknown key said with its line.
fn read_toml(source: &str, text: &str) -> Result<RawScenario, ScenarioError> {
    toml::from_str(text).map_err(|e| {
        let v = Validator {
            source,
            text,
            protocol: Protocol::V311,
        };
        ScenarioError {
            file: source.to_string(),
            line: e.span().map(|s| v.line_of(s.start)),
            key: None,
            message: e.message().trim().to_string(),
        }
    })
}

/// `[tap] tls`: TLS transports only; passing TLS through refuses a fault that must see
/// inside it.
fn tls_tap(
    v: &Validator,
    tap: &Option<RawTap>,
    transport: Transport,
    faults: &[Fault],
) -> Result<super::TlsTap, ScenarioError> {
    let Some(p) = tap.as_ref().and_then(|t| t.tls.as_ref()) else {
        return Ok(super::TlsTap::Terminate);
    };
    if !transport.is_tls() {
        return v.err(
            p.span(),
            "tap.tls",
            "`tls` applies to transport = \"tls\" or \"wss\"".to_string(),
        );
    }
    let tap = v.choice(p, "tap.tls", "terminate, pass-through")?;
    if tap == super::TlsTap::PassThrough {
        if let Some(f) = faults.iter().find(|f| f.kind.sees_inside_tls()) {
            return v.err(
                p.span(),
                "tap.tls",
                format!(
                    "a {} fault needs to see inside TLS: it works with tls = \"terminate\" only",
                    f.kind.label()
                ),
            );
        }
    }
    Ok(tap)
}

/// Whether the will is expected at monit when `[expect] will` does not say.
fn will_derived(
    will: &Option<Will>,
    faults: &[Fault],
    keepalive: Duration,
    disconnect: &Option<V5Disconnect>,
    takeover: &Option<Takeover>,
) -> bool {
    // With no abnormal disconnect there is nothing for the broker to publish the will for.
    // A fault that silences willy only gets it dropped if it lasts 1.5 x keepalive.
    let derived = will.is_some()
        && faults.first().is_some_and(|f| {
            f.kind.ends_at_once()
                || (f.kind.silences_client()
                    && f.heal_after
                        .map_or(true, |h| h >= crate::timing::keepalive_bound(keepalive)))
        });
    // [MQTT-3.14.4-3]: DISCONNECT with reason 0x04 asks the server to publish the will.
    let derived = derived || (will.is_some() && disconnect.is_some_and(|d| d.reason == 0x04));
    // The broker closes willy's connection for the twin: not a DISCONNECT [MQTT-3.1.2-8].
    derived || (will.is_some() && takeover.is_some())
}

/// `[willy] client`: rumqttc (willy's own) by default; a driver keeps its connection its own
/// way, so it refuses willy's own WebSocket pings and silent keepalive.
fn willy_client(
    v: &Validator,
    raw: &Option<RawWilly>,
    willy: &WillySetup,
) -> Result<crate::scenario::WillyKind, ScenarioError> {
    let Some(c) = raw.as_ref().and_then(|w| w.client.as_ref()) else {
        return Ok(crate::scenario::WillyKind::default());
    };
    let client: crate::scenario::WillyKind = c
        .get_ref()
        .parse()
        .or_else(|why: String| v.err(c.span(), "willy.client", why))?;
    if client.is_driver() && (willy.ws_ping.is_some() || !willy.mqtt_pings) {
        return v.err(
            c.span(),
            "willy.client",
            "WebSocket pings and a silent MQTT keepalive are willy's own client's: a driver's library keeps its connection its own way".to_string(),
        );
    }
    Ok(client)
}

/// `[willy]`: `ws_ping_ms`, `ws_pong_timeout_ms` (WebSocket and MQTT 5: willy's own client),
/// `mqtt_pings`, `leave_open`.
fn willy_setup(
    v: &Validator,
    w: &Option<super::raw::RawWilly>,
    transport: Transport,
    cycles: u32,
) -> Result<crate::scenario::WillySetup, ScenarioError> {
    let mut out = crate::scenario::WillySetup::default();
    let Some(w) = w else { return Ok(out) };
    if let Some(list) = &w.leave_open {
        out.leave_open = leave_open(v, list, cycles)?;
    }
    for x in [&w.ws_ping_ms, &w.ws_pong_timeout_ms].into_iter().flatten() {
        if !transport.is_ws() {
            return v.err(
                x.span(),
                "willy",
                "WebSocket pings need transport = \"ws\" or \"wss\"".to_string(),
            );
        }
    }
    if let Some(x) = &w.ws_ping_ms {
        out.ws_ping = Some(v.ms(x, "willy.ws_ping_ms", 10)?);
    }
    if let Some(x) = &w.ws_pong_timeout_ms {
        if out.ws_ping.is_none() {
            return v.err(
                x.span(),
                "willy.ws_pong_timeout_ms",
                "a pong timeout needs `ws_ping_ms`: no pings, no pongs".to_string(),
            );
        }
        out.ws_pong_timeout = Some(v.ms(x, "willy.ws_pong_timeout_ms", 10)?);
    }
    if let Some(x) = &w.mqtt_pings {
        if !*x.get_ref() && out.ws_ping.is_none() {
            return v.err(
                x.span(),
                "willy.mqtt_pings",
                "mqtt_pings = false needs `ws_ping_ms`: it silences willy's own client, which only WebSocket pings bring".to_string(),
            );
        }
        out.mqtt_pings = *x.get_ref();
    }
    Ok(out)
}

/// `[willy] leave_open`: the cycles willy ends without DISCONNECT, each followed by another
/// (the one whose CONNECT takes the connection over), named once, kept in ascending order.
fn leave_open(
    v: &Validator,
    list: &Spanned<Vec<Spanned<i64>>>,
    cycles: u32,
) -> Result<Vec<u32>, ScenarioError> {
    const KEY: &str = "willy.leave_open";
    if list.get_ref().is_empty() {
        return v.err(
            list.span(),
            KEY,
            "an empty list: name the cycles willy leaves open, e.g. [2], or remove the key"
                .to_string(),
        );
    }
    let mut out = Vec::new();
    for x in list.get_ref() {
        let n = v.int_in(x, KEY, 1, 1000)? as u32;
        if n >= cycles {
            return v.err(
                x.span(),
                KEY,
                format!(
                    "cycle {n} has no next cycle to take its connection over (cycles = {cycles}): expected 1 to {}",
                    cycles.saturating_sub(1)
                ),
            );
        }
        if out.contains(&n) {
            return v.err(x.span(), KEY, format!("cycle {n} is named twice"));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// What a left-open cycle cannot go with, each refused rather than judged wrongly:
/// - a fault in it or before it: the takeover's will would come after the cut and be taken
///   for the cut's (every left-open cycle comes before the first fault's cycle);
/// - the twin (`[takeover]`): two takeovers, one set of checks;
/// - a chosen MQTT 5 DISCONNECT: `will-on-disconnect` pairs a will with the last DISCONNECT
///   until the next one, so the takeover's will would be charged to it;
/// - a driver: the driver protocol has no command to leave a connection open.
fn leave_open_fits(
    v: &Validator,
    span: std::ops::Range<usize>,
    cycles: &[u32],
    faults: &[Fault],
    twin: bool,
    chosen_disconnect: bool,
    client: &crate::scenario::WillyKind,
) -> Result<(), ScenarioError> {
    const KEY: &str = "willy.leave_open";
    let last = cycles.iter().copied().max().unwrap_or(0);
    if let Some(f) = faults.iter().min_by_key(|f| f.cycle) {
        if f.cycle <= last {
            return v.err(
                span,
                KEY,
                format!(
                    "cycle {last} is left open, but a fault acts in cycle {}: every left-open cycle must come before the first fault's, or the will of its takeover would be judged as the cut's",
                    f.cycle
                ),
            );
        }
    }
    if twin {
        return v.err(
            span,
            KEY,
            "a left-open cycle is taken over by willy's next cycle: it does not go with [takeover] (the twin)".to_string(),
        );
    }
    if chosen_disconnect {
        return v.err(
            span,
            KEY,
            "a left-open cycle does not go with disconnect_reason or disconnect_form: the will of its takeover would be paired with the DISCONNECT before it".to_string(),
        );
    }
    if client.is_driver() {
        return v.err(
            span,
            KEY,
            format!("willy {client}: the driver protocol has no command to leave a connection open; willy's own client (rumqttc) does"),
        );
    }
    Ok(())
}

/// `[broker]`: `max_keepalive_s` (MQTT 5: mosquitto answers a 3.1.1 client that asks for more
/// with a refusal, not a Server Keep Alive).
fn broker_settings(
    v: &Validator,
    b: &Option<super::raw::RawBroker>,
) -> Result<crate::scenario::BrokerSettings, ScenarioError> {
    let mut out = crate::scenario::BrokerSettings::default();
    if let Some(x) = b.as_ref().and_then(|b| b.max_keepalive_s.as_ref()) {
        v.v5_only(x.span(), "broker.max_keepalive_s")?;
        out.max_keepalive_s = Some(v.int_in(x, "broker.max_keepalive_s", 1, 65535)? as u16);
    }
    Ok(out)
}

/// A kernel cut exists for a blackhole (nftables drops; `link`: the veth down, both ways) and a
/// reset (`reject with tcp reset`); the other faults act in the proxy only.
pub fn kernel_layer_fits(kind: &FaultKind, layer: crate::cut::CutLayer) -> Result<(), String> {
    use crate::cut::CutLayer as L;
    match (kind, layer) {
        (_, L::Proxy) => Ok(()),
        (FaultKind::Blackhole { direction }, L::Link) if *direction != Direction::Both => Err(
            "a link going down cuts both directions: use layer = \"kernel\" for a one-way blackhole"
                .into(),
        ),
        (FaultKind::Blackhole { .. }, _) | (FaultKind::Reset, L::Kernel) => Ok(()),
        (k, l) => Err(format!(
            "a {} fault has no {} layer (the kernel cuts are blackhole and reset; link: blackhole)",
            k.label(),
            l.as_str()
        )),
    }
}

/// `protocol`: "3.1.1" (or "4", the default) or "5".
fn protocol(v: &Validator, p: &Option<Spanned<String>>) -> Result<Protocol, ScenarioError> {
    Ok(match p {
        None => Protocol::V311,
        Some(p) if p.get_ref() == "3.1.1" || p.get_ref() == "4" => Protocol::V311,
        Some(p) if p.get_ref() == "5" || p.get_ref() == "5.0" => Protocol::V5,
        Some(p) => {
            return v.err(
                p.span(),
                "protocol",
                format!(
                    "unsupported protocol {:?}: expected \"3.1.1\" or \"5\"",
                    p.get_ref()
                ),
            )
        }
    })
}

/// `session_expiry_s` (MQTT 5).
fn session_expiry(v: &Validator, x: &Option<Spanned<i64>>) -> Result<Option<u32>, ScenarioError> {
    Ok(match x {
        Some(x) => {
            v.v5_only(x.span(), "session_expiry_s")?;
            Some(v.int_in(x, "session_expiry_s", 0, u32::MAX as i64)? as u32)
        }
        None => None,
    })
}

/// `disconnect_reason` and `disconnect_form` (MQTT 5): the DISCONNECT willy writes.
fn disconnect(
    v: &Validator,
    reason_key: &Option<Spanned<i64>>,
    form_key: &Option<Spanned<String>>,
) -> Result<Option<V5Disconnect>, ScenarioError> {
    Ok(match (reason_key, form_key) {
        (None, None) => None,
        (reason, form) => {
            let span = reason
                .as_ref()
                .map(|r| r.span())
                .or(form.as_ref().map(|f| f.span()))
                .unwrap_or(0..0);
            v.v5_only(
                span,
                if reason.is_some() {
                    "disconnect_reason"
                } else {
                    "disconnect_form"
                },
            )?;
            let code = match reason {
                Some(r) => v.int_in(r, "disconnect_reason", 0, 255)? as u8,
                None => 0,
            };
            use crate::mqtt::DisconnectForm;
            let form: DisconnectForm = match form {
                Some(f) => v.choice(f, "disconnect_form", "short, reason, properties")?,
                None if code == 0 => DisconnectForm::Short,
                None => DisconnectForm::Reason,
            };
            if form == DisconnectForm::Short && code != 0 {
                let span = match (form_key, reason_key) {
                    (Some(f), _) => f.span(),
                    (None, Some(r)) => r.span(),
                    (None, None) => 0..0,
                };
                return v.err(span, "disconnect_form", format!("the short form (e0 00) means reason 0x00; reason 0x{code:02x} needs \"reason\" or \"properties\""));
            }
            Some(V5Disconnect { reason: code, form })
        }
    })
}

/// The `[will]` table.
fn will(v: &Validator, will: Option<RawWill>) -> Result<Option<Will>, ScenarioError> {
    Ok(match will {
        Some(w) => {
            let t = w.topic.get_ref();
            if t.is_empty() || t.contains(['#', '+']) {
                return v.err(
                    w.topic.span(),
                    "will.topic",
                    format!(
                        "{t:?} is not a topic name: expected a non-empty topic without wildcards"
                    ),
                );
            }
            if let Some(p) = crate::mqtt::string_problem(t) {
                return v.err(w.topic.span(), "will.topic", format!("the topic {p}"));
            }
            if let Some(p) = crate::mqtt::will_payload_problem(w.payload.get_ref()) {
                return v.err(w.payload.span(), "will.payload", format!("the payload {p}"));
            }
            let qos = match &w.qos {
                Some(q) => v.int_in(q, "will.qos", 0, 2)? as u8,
                None => 0,
            };
            let delay_s = match &w.delay_s {
                Some(d) => {
                    v.v5_only(d.span(), "will.delay_s")?;
                    Some(v.int_in(d, "will.delay_s", 0, u32::MAX as i64)? as u32)
                }
                None => None,
            };
            let content_type = match &w.content_type {
                Some(c) => {
                    v.v5_only(c.span(), "will.content_type")?;
                    if let Some(p) = crate::mqtt::string_problem(c.get_ref()) {
                        return v.err(c.span(), "will.content_type", format!("the value {p}"));
                    }
                    Some(c.get_ref().clone())
                }
                None => None,
            };
            Some(Will {
                topic: t.clone(),
                payload: w.payload.into_inner(),
                qos,
                retain: w.retain.unwrap_or(false),
                delay_s,
                content_type,
            })
        }
        None => None,
    })
}

/// `monit_protocol`: monit on another protocol than willy: only a v5 willy and a 3.1.1
/// monit, the mix whose delivery (the will's properties dropped) is the question.
fn monit_protocol(
    v: &Validator,
    m: &Option<Spanned<String>>,
) -> Result<Option<Protocol>, ScenarioError> {
    Ok(match m {
        Some(m) => {
            v.v5_only(m.span(), "monit_protocol")?;
            match m.get_ref().as_str() {
                "3.1.1" | "4" => Some(Protocol::V311),
                "5" | "5.0" => None,
                other => {
                    return v.err(
                        m.span(),
                        "monit_protocol",
                        format!("unsupported protocol {other:?}: expected \"3.1.1\" or \"5\""),
                    )
                }
            }
        }
        None => None,
    })
}

/// `clean_session` (3.1.1) or `clean_start` (5): the same CONNECT flag, under the name each
/// protocol's spec gives it.
fn clean_session(
    v: &Validator,
    session: &Option<Spanned<bool>>,
    start: &Option<Spanned<bool>>,
) -> Result<bool, ScenarioError> {
    Ok(match (session, start, v.protocol) {
        (Some(c), _, Protocol::V5) => {
            return v.err(
                c.span(),
                "clean_session",
                "MQTT 5 calls this flag Clean Start: write clean_start".to_string(),
            )
        }
        (_, Some(c), Protocol::V311) => {
            return v.err(
                c.span(),
                "clean_start",
                "MQTT 3.1.1 calls this flag Clean Session: write clean_session".to_string(),
            )
        }
        (Some(c), _, _) | (_, Some(c), _) => *c.get_ref(),
        (None, None, _) => true,
    })
}

/// The `[publisher]` table: pubby.
fn publisher(v: &Validator, p: &Option<RawPublisher>) -> Result<Option<Publisher>, ScenarioError> {
    Ok(match p {
        Some(p) => {
            let t = p.topic.get_ref();
            if t.is_empty() || t.contains(['#', '+']) {
                return v.err(
                    p.topic.span(),
                    "publisher.topic",
                    format!(
                        "{t:?} is not a topic name: expected a non-empty topic without wildcards"
                    ),
                );
            }
            if let Some(problem) = crate::mqtt::string_problem(t) {
                return v.err(
                    p.topic.span(),
                    "publisher.topic",
                    format!("the topic {problem}"),
                );
            }
            Some(Publisher {
                topic: t.clone(),
                qos: match &p.qos {
                    Some(q) => v.int_in(q, "publisher.qos", 0, 2)? as u8,
                    None => 0,
                },
                every: v.ms(&p.every_ms, "publisher.every_ms", 10)?,
                from: match &p.from {
                    Some(f) => v.choice(f, "publisher.from", "start, cut")?,
                    None => PublishFrom::Start,
                },
                count: p
                    .count
                    .as_ref()
                    .map(|c| v.int_in(c, "publisher.count", 1, Publisher::MAX_COUNT as i64))
                    .transpose()?
                    .map(|c| c as u32),
            })
        }
        None => None,
    })
}

/// The `[subscribe]` table: willy's own subscription.
fn subscribe(
    v: &Validator,
    s: &Option<RawSubscribe>,
) -> Result<Option<Subscription>, ScenarioError> {
    Ok(match s {
        Some(sub) => {
            let t = sub.topic.get_ref();
            if v.protocol == Protocol::V5 {
                return v.err(
                sub.topic.span(),
                "subscribe.topic",
                "willy subscribes over MQTT 3.1.1 only: an MQTT 5 willy writes its packets itself and has no SUBSCRIBE yet".to_string(),
            );
            }
            if !crate::mqtt::valid_filter(t) {
                return v.err(
                sub.topic.span(),
                "subscribe.topic",
                format!("{t:?} is not a topic filter: expected levels split by '/', with '+' or '#' (last) only as a whole level"),
            );
            }
            if let Some(problem) = crate::mqtt::string_problem(t) {
                return v.err(
                    sub.topic.span(),
                    "subscribe.topic",
                    format!("the filter {problem}"),
                );
            }
            Some(Subscription {
                filter: t.clone(),
                qos: match &sub.qos {
                    Some(q) => v.int_in(q, "subscribe.qos", 0, 2)? as u8,
                    None => 0,
                },
            })
        }
        None => None,
    })
}

/// The `[[faults]]` entries, in order.
fn faults(
    v: &Validator,
    raw: &[RawFault],
    transport: Transport,
    cycles: u32,
) -> Result<Vec<Fault>, ScenarioError> {
    let mut faults = Vec::new();
    for f in raw {
        let kind = fault_kind(v, f, transport)?;
        let cycle = v.int_in(&f.cycle, "faults.cycle", 1, 1000)? as u32;
        if cycle > cycles {
            return v.err(
                f.cycle.span(),
                "faults.cycle",
                format!("cycle {cycle} is beyond the scenario's cycles = {cycles}"),
            );
        }
        let trigger = match &f.trigger {
            Some(t) => v.choice(t, "faults.trigger", Trigger::ALL)?,
            None => Trigger::AfterTrue,
        };
        let after = match &f.after_ms {
            Some(x) => v.ms(x, "faults.after_ms", 0)?,
            None => Duration::ZERO,
        };
        let heal_after = f
            .heal_after_ms
            .as_ref()
            .map(|x| v.ms(x, "faults.heal_after_ms", 1))
            .transpose()?;
        let new_connections = match &f.new_connections {
            Some(n) if kind.on_process() => {
                return v.err(
                    n.span(),
                    "faults.new_connections",
                    format!(
                        "a {} fault acts on willy's process, not the network: remove it",
                        kind.label()
                    ),
                )
            }
            Some(n) => v.choice(n, "faults.new_connections", "accept, hang, refuse")?,
            None => kind.default_new_connections(),
        };
        let layer = match &f.layer {
            None => crate::cut::CutLayer::Proxy,
            Some(l) => {
                let layer: crate::cut::CutLayer = l
                    .get_ref()
                    .parse()
                    .or_else(|why: String| v.err(l.span(), "faults.layer", why))?;
                if let Err(why) = kernel_layer_fits(&kind, layer) {
                    return v.err(l.span(), "faults.layer", why);
                }
                layer
            }
        };
        faults.push(Fault {
            kind,
            cycle,
            trigger,
            after,
            heal_after,
            new_connections,
            layer,
        });
    }
    Ok(faults)
}

/// The `[takeover]` table: the twin.
fn takeover(
    v: &Validator,
    t: &Option<RawTakeover>,
    faults: &[Fault],
) -> Result<Option<Takeover>, ScenarioError> {
    Ok(match t {
        Some(t) => {
            if v.protocol == Protocol::V5 {
                return v.err(
                    t.after_ms.span(),
                    "takeover.after_ms",
                    "a takeover runs over MQTT 3.1.1 only for now: the twin is a 3.1.1 client"
                        .to_string(),
                );
            }
            if faults.is_empty() {
                return v.err(
                t.after_ms.span(),
                "takeover.after_ms",
                "a takeover is timed from the first fault: add a [[faults]] entry (e.g. a blackhole)".to_string(),
            );
            }
            Some(Takeover {
                after: v.ms(&t.after_ms, "takeover.after_ms", 0)?,
            })
        }
        None => None,
    })
}

/// The `[monit]` table.
fn monit(
    v: &Validator,
    m: &Option<RawMonit>,
    faults: &[Fault],
) -> Result<MonitSetup, ScenarioError> {
    Ok(match m {
        Some(m) => {
            // The first key given, for errors about the table as a whole.
            let first = [
                m.qos.as_ref().map(|x| (x.span(), "monit.qos")),
                m.clean_session
                    .as_ref()
                    .map(|x| (x.span(), "monit.clean_session")),
                m.away_after_ms
                    .as_ref()
                    .map(|x| (x.span(), "monit.away_after_ms")),
                m.back_after_drop_ms
                    .as_ref()
                    .map(|x| (x.span(), "monit.back_after_drop_ms")),
            ]
            .into_iter()
            .flatten()
            .next();
            if let (Some((span, key)), Protocol::V5) = (&first, v.protocol) {
                return v.err(
                span.clone(),
                key,
                "the [monit] table runs over MQTT 3.1.1 only for now: monit's session and schedule are set on its 3.1.1 client".to_string(),
            );
            }
            let flaky = match (&m.away_after_ms, &m.back_after_drop_ms) {
            (None, None) => None,
            (Some(a), Some(b)) => {
                if faults.is_empty() {
                    return v.err(
                        a.span(),
                        "monit.away_after_ms",
                        "a flaky monit is timed from the first fault: add a [[faults]] entry (e.g. a blackhole)".to_string(),
                    );
                }
                Some(Flaky {
                    away_after: v.ms(a, "monit.away_after_ms", 0)?,
                    back_after_drop: v.ms(b, "monit.back_after_drop_ms", 0)?,
                })
            }
            (Some(x), None) | (None, Some(x)) => {
                return v.err(
                    x.span(),
                    if m.away_after_ms.is_some() {
                        "monit.back_after_drop_ms"
                    } else {
                        "monit.away_after_ms"
                    },
                    "a flaky monit needs both away_after_ms (after the cut) and back_after_drop_ms (after the broker dropped willy)".to_string(),
                )
            }
        };
            MonitSetup {
                qos: match &m.qos {
                    Some(q) => v.int_in(q, "monit.qos", 0, 2)? as u8,
                    None => 0,
                },
                clean_session: m.clean_session.as_ref().map_or(true, |c| *c.get_ref()),
                flaky,
            }
        }
        None => MonitSetup::default(),
    })
}
