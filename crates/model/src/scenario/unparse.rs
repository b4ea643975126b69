//! A scenario from elsewhere (the one a journal records) checked by the scenario file's own
//! validation: written back as the file that says it, parsed, and compared.
//!
//! ```text
//!  Scenario (from a journal) --to_toml--> TOML text --parse (every rule of a file)--> Scenario'
//!     Scenario' == Scenario (but the name, description, source and --observe)?  ok : the key
//! ```
//!
//! So a journal's scenario holds nothing a scenario file could not: every range, every
//! cross-key rule is the one `parse.rs` applies, in one place.

use std::time::Duration;

use toml::{Table, Value};

use super::faults::FaultName;
use super::*;

/// What the recorded scenario `s` says that a scenario file could not: the TOML key and why,
/// as a [`ScenarioError`] whose file and line are left for the caller (the journal's).
pub fn check_recorded(s: &Scenario) -> Result<(), ScenarioError> {
    let unsaid = |key: &str, message: String| ScenarioError {
        file: String::new(),
        line: None,
        key: Some(key.to_string()),
        message,
    };
    let text = to_toml(s).map_err(|(key, why)| unsaid(key, why))?;
    let mut back = parse(&s.name, &s.source, &text).map_err(|e| ScenarioError {
        file: String::new(),
        line: None,
        ..e
    })?;
    // What a file does not hold: its name and place, and `--observe` (1 s to a day).
    back.description.clone_from(&s.description);
    if let Some(w) = s.observe {
        if w.subsec_nanos() != 0 || !(1..=86_400).contains(&w.as_secs()) {
            return Err(unsaid(
                "observe",
                format!("{w:?} is out of range: expected whole seconds, 1 to 86400 (--observe)"),
            ));
        }
    }
    back.observe = s.observe;
    match first_difference(
        &serde_json::to_value(s).unwrap_or_default(),
        &serde_json::to_value(&back).unwrap_or_default(),
        "",
    ) {
        None => Ok(()),
        Some(key) => Err(unsaid(
            &key,
            "the recorded value is not one a scenario file can say".to_string(),
        )),
    }
}

/// The dotted path of the first place `a` and `b` differ.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => x
            .iter()
            .map(|(k, v)| (k, Some(v), y.get(k)))
            .chain(
                y.iter()
                    .filter(|(k, _)| !x.contains_key(*k))
                    .map(|(k, v)| (k, None, Some(v))),
            )
            .find_map(|(k, v, w)| {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (v, w) {
                    (Some(v), Some(w)) => first_difference(v, w, &key),
                    _ => Some(key),
                }
            }),
        (J::Array(x), J::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{at}[{}]", i + 1))),
        _ => (a != b).then(|| at.to_string()),
    }
}

/// A key the file format has no way to say, and why.
type Unsayable = (&'static str, String);

/// `d` in whole units of `unit` (what a `_ms` or `_s` key holds).
fn whole(d: Duration, unit: Duration, key: &'static str) -> Result<Value, Unsayable> {
    let n = d.as_nanos() / unit.as_nanos();
    if n * unit.as_nanos() != d.as_nanos() {
        return Err((key, format!("{d:?} is not a whole number of {unit:?}")));
    }
    i64::try_from(n)
        .map(Value::Integer)
        .map_err(|_| (key, format!("{d:?} is out of range")))
}

fn ms(d: Duration, key: &'static str) -> Result<Value, Unsayable> {
    whole(d, Duration::from_millis(1), key)
}

fn secs(d: Duration, key: &'static str) -> Result<Value, Unsayable> {
    whole(d, Duration::from_secs(1), key)
}

fn int(n: impl Into<i64>) -> Value {
    Value::Integer(n.into())
}

fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// The serde name of a unit enum value (`"after-true"`, `"hang"`).
fn name_of<T: serde::Serialize>(x: &T) -> Value {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => Value::String(s),
        _ => Value::String(String::new()),
    }
}

/// The scenario file that says `s`.
pub fn to_toml(s: &Scenario) -> Result<String, Unsayable> {
    let mut t = top_keys(s)?;
    if let Some(w) = &s.will {
        t.insert("will".into(), will_table(w));
    }
    if let Some(p) = &s.publisher {
        t.insert("publisher".into(), publisher_table(p)?);
    }
    if let Some(sub) = &s.subscribe {
        let mut x = Table::new();
        x.insert("topic".into(), string(&sub.filter));
        x.insert("qos".into(), int(sub.qos));
        t.insert("subscribe".into(), Value::Table(x));
    }
    if let Some(tk) = &s.takeover {
        let mut x = Table::new();
        x.insert("after_ms".into(), ms(tk.after, "takeover.after_ms")?);
        t.insert("takeover".into(), Value::Table(x));
    }
    if s.monit != MonitSetup::default() {
        t.insert("monit".into(), monit_table(&s.monit)?);
    }
    if let Some(k) = s.broker.max_keepalive_s {
        let mut x = Table::new();
        x.insert("max_keepalive_s".into(), int(k));
        t.insert("broker".into(), Value::Table(x));
    }
    let willy = willy_table(s)?;
    if !willy.is_empty() {
        t.insert("willy".into(), Value::Table(willy));
    }
    let faults = s
        .faults
        .iter()
        .map(fault_table)
        .collect::<Result<Vec<_>, _>>()?;
    if !faults.is_empty() {
        t.insert("faults".into(), Value::Array(faults));
    }
    let mut expect = Table::new();
    expect.insert("will".into(), Value::Boolean(s.expect.will));
    t.insert("expect".into(), Value::Table(expect));
    let mut tap = Table::new();
    if s.publishes != PublishRecords::default() {
        tap.insert("publishes".into(), name_of(&s.publishes));
    }
    if s.tls_tap != TlsTap::default() {
        tap.insert("tls".into(), name_of(&s.tls_tap));
    }
    if !tap.is_empty() {
        t.insert("tap".into(), Value::Table(tap));
    }
    if let Some(f) = &s.fleet {
        let mut x = Table::new();
        x.insert("willies".into(), int(f.willies));
        x.insert("wave_size".into(), int(f.wave_size));
        x.insert(
            "wave_interval_ms".into(),
            ms(f.wave_interval, "fleet.wave_interval_ms")?,
        );
        t.insert("fleet".into(), Value::Table(x));
    }
    toml::to_string(&t).map_err(|e| ("", e.to_string()))
}

/// The file's top-level keys: transport, protocol, the timings, the session and the
/// disconnect.
fn top_keys(s: &Scenario) -> Result<Table, Unsayable> {
    let mut t = Table::new();
    t.insert("transport".into(), string(s.transport.as_str()));
    t.insert("protocol".into(), string(s.protocol.as_str()));
    t.insert("keepalive_s".into(), secs(s.keepalive, "keepalive_s")?);
    t.insert("cycles".into(), int(s.cycles));
    t.insert(
        "connected_for_ms".into(),
        ms(s.connected_for, "connected_for_ms")?,
    );
    t.insert("idle_ms".into(), ms(s.idle, "idle_ms")?);
    t.insert("reconnect_ms".into(), ms(s.reconnect, "reconnect_ms")?);
    t.insert(
        "connect_timeout_s".into(),
        secs(s.connect_timeout, "connect_timeout_s")?,
    );
    if let Some(x) = s.session_expiry_s {
        t.insert("session_expiry_s".into(), int(x));
    }
    if s.late_subscriber {
        t.insert("late_subscriber".into(), Value::Boolean(true));
    }
    if let Some(p) = s.monit_protocol {
        t.insert("monit_protocol".into(), string(p.as_str()));
    }
    let clean = match s.protocol {
        Protocol::V311 => "clean_session",
        Protocol::V5 => "clean_start",
    };
    t.insert(clean.into(), Value::Boolean(s.clean_session));
    if let Some(d) = s.disconnect {
        t.insert("disconnect_reason".into(), int(d.reason));
        t.insert("disconnect_form".into(), name_of(&d.form));
    }
    Ok(t)
}

/// The `[will]` table.
fn will_table(w: &Will) -> Value {
    let mut x = Table::new();
    x.insert("topic".into(), string(&w.topic));
    x.insert("payload".into(), string(&w.payload));
    x.insert("qos".into(), int(w.qos));
    x.insert("retain".into(), Value::Boolean(w.retain));
    if let Some(d) = w.delay_s {
        x.insert("delay_s".into(), int(d));
    }
    if let Some(c) = &w.content_type {
        x.insert("content_type".into(), string(c));
    }
    Value::Table(x)
}

/// The `[publisher]` table.
fn publisher_table(p: &Publisher) -> Result<Value, Unsayable> {
    let mut x = Table::new();
    x.insert("topic".into(), string(&p.topic));
    x.insert("qos".into(), int(p.qos));
    x.insert("every_ms".into(), ms(p.every, "publisher.every_ms")?);
    x.insert("from".into(), name_of(&p.from));
    if let Some(c) = p.count {
        x.insert("count".into(), int(c));
    }
    Ok(Value::Table(x))
}

/// The `[monit]` table.
fn monit_table(m: &MonitSetup) -> Result<Value, Unsayable> {
    let mut x = Table::new();
    x.insert("qos".into(), int(m.qos));
    x.insert("clean_session".into(), Value::Boolean(m.clean_session));
    if let Some(f) = m.flaky {
        x.insert(
            "away_after_ms".into(),
            ms(f.away_after, "monit.away_after_ms")?,
        );
        x.insert(
            "back_after_drop_ms".into(),
            ms(f.back_after_drop, "monit.back_after_drop_ms")?,
        );
    }
    Ok(Value::Table(x))
}

/// The `[willy]` table's keys (none when willy is as by default).
fn willy_table(s: &Scenario) -> Result<Table, Unsayable> {
    let mut willy = Table::new();
    if let Some(p) = s.willy.ws_ping {
        willy.insert("ws_ping_ms".into(), ms(p, "willy.ws_ping_ms")?);
    }
    if let Some(p) = s.willy.ws_pong_timeout {
        willy.insert(
            "ws_pong_timeout_ms".into(),
            ms(p, "willy.ws_pong_timeout_ms")?,
        );
    }
    if !s.willy.mqtt_pings {
        willy.insert("mqtt_pings".into(), Value::Boolean(false));
    }
    if s.client != crate::scenario::WillyKind::default() {
        willy.insert("client".into(), string(s.client.to_string()));
    }
    if !s.willy.leave_open.is_empty() {
        willy.insert(
            "leave_open".into(),
            Value::Array(s.willy.leave_open.iter().map(|c| int(*c)).collect()),
        );
    }
    Ok(willy)
}

/// One `[[faults]]` entry.
fn fault_table(f: &Fault) -> Result<Value, Unsayable> {
    let mut x = Table::new();
    let mut put = |k: &str, v: Value| {
        x.insert(k.into(), v);
    };
    let dir = |d: &Direction| name_of(d);
    let names = |list: Vec<&str>| Value::Array(list.into_iter().map(string).collect());
    let Some(kind) = FaultName::of(&f.kind) else {
        return Err((
            "faults.kind",
            format!(
                "a {} fault is toxiproxy's, not one a scenario file holds",
                f.kind.label()
            ),
        ));
    };
    match &f.kind {
        FaultKind::Blackhole { direction } => put("direction", dir(direction)),
        FaultKind::Latency {
            direction,
            delay,
            jitter,
        } => {
            put("direction", dir(direction));
            put("delay_ms", ms(*delay, "faults.delay_ms")?);
            put("jitter_ms", ms(*jitter, "faults.jitter_ms")?);
        }
        FaultKind::Bandwidth {
            direction,
            bytes_per_s,
        } => {
            put("direction", dir(direction));
            put(
                "bytes_per_s",
                int(i64::try_from(*bytes_per_s).unwrap_or(i64::MAX)),
            );
        }
        FaultKind::Drop { direction, packets } => {
            put("direction", dir(direction));
            put(
                "packets",
                names(packets.iter().map(|&p| crate::mqtt::v311_name(p)).collect()),
            );
        }
        FaultKind::Crash { restart } => put("restart", Value::Boolean(*restart)),
        FaultKind::IdleTimeout { idle, reset } => {
            put("idle_ms", ms(*idle, "faults.idle_ms")?);
            put("close", string(if *reset { "rst" } else { "fin" }));
        }
        FaultKind::WsDrop { direction, frames } => {
            put("direction", dir(direction));
            put(
                "frames",
                names(
                    crate::tap::ws_kinds::KINDS
                        .iter()
                        .filter(|(_, b)| frames & b != 0)
                        .map(|(n, _)| *n)
                        .collect(),
                ),
            );
        }
        // No parameters of their own (toxiproxy's kinds were refused above).
        FaultKind::Reset
        | FaultKind::Close
        | FaultKind::TlsClose { .. }
        | FaultKind::Refuse
        | FaultKind::Hang
        | FaultKind::Freeze
        | FaultKind::Slicer { .. }
        | FaultKind::LimitData { .. }
        | FaultKind::SlowClose { .. } => {}
    }
    put("kind", string(kind.as_str()));
    put("cycle", int(f.cycle));
    put("trigger", name_of(&f.trigger));
    put("after_ms", ms(f.after, "faults.after_ms")?);
    if let Some(h) = f.heal_after {
        put("heal_after_ms", ms(h, "faults.heal_after_ms")?);
    }
    if !f.kind.on_process() {
        put("new_connections", name_of(&f.new_connections));
    }
    if f.layer != crate::cut::CutLayer::Proxy {
        put("layer", string(f.layer.as_str()));
    }
    Ok(Value::Table(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_passes_as_recorded() {
        for (name, text) in BUILTIN {
            let s = parse(name, name, text).unwrap();
            if let Err(e) = check_recorded(&s) {
                panic!("{name}: {e}\n{}", to_toml(&s).unwrap());
            }
        }
    }

    #[test]
    fn a_recorded_value_out_of_a_files_range_is_refused_by_its_key() {
        let mut s = crate::scenario::load("native-last-will").unwrap();
        s.keepalive = Duration::from_secs(u64::MAX / 2);
        let e = check_recorded(&s).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("keepalive_s"), "{e}");
        let mut s = crate::scenario::load("native-last-will").unwrap();
        s.will.as_mut().unwrap().qos = 3;
        let e = check_recorded(&s).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("will.qos"), "{e}");
        assert!(e.message.contains("expected 0 to 2"), "{e}");
        let mut s = crate::scenario::load("native-last-will").unwrap();
        s.faults[0].heal_after = Some(Duration::from_secs(1_000_000_000));
        let e = check_recorded(&s).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("faults.heal_after_ms"), "{e}");
    }

    #[test]
    fn a_recorded_value_no_file_can_say_is_refused_by_its_key() {
        let mut s = crate::scenario::load("native-last-will").unwrap();
        s.connected_for += Duration::from_nanos(1);
        let e = check_recorded(&s).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("connected_for_ms"), "{e}");
        let mut s = crate::scenario::load("native-last-will").unwrap();
        s.faults[0].kind = FaultKind::TlsClose {
            notify: true,
            fin: true,
        };
        assert!(check_recorded(&s).is_err());
        let mut s = crate::scenario::load("native-last-will").unwrap();
        s.faults[0].new_connections = NewConnections::Refuse;
        s.faults[0].kind = FaultKind::Freeze;
        let e = check_recorded(&s).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("faults[1].new_connections"), "{e}");
    }
}
