//! One `[[faults]]` entry's kind, with the parameters that kind takes.
//!
//! ```text
//!   kind = "..."  --FAULT_KINDS-->  FaultName  --its keys only-->  the kind's own step  -->  FaultKind
//! ```

use std::time::Duration;

use toml::Spanned;

use super::raw::{RawFault, Validator};
use super::*;

/// The kinds a `[[faults]]` entry may name (toxiproxy's own kinds, which only its API makes,
/// are not among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultName {
    Blackhole,
    Reset,
    Close,
    Latency,
    Bandwidth,
    Drop,
    Refuse,
    Hang,
    Crash,
    Freeze,
    IdleTimeout,
    WsDrop,
    CloseWithoutNotify,
    NotifyWithoutFin,
}

/// Every kind once: its name in a scenario file and the optional keys it takes. The order is
/// the order an unknown kind's error lists them in.
const FAULT_KINDS: &[(FaultName, &str, &[&str])] = &[
    (FaultName::Blackhole, "blackhole", &["direction"]),
    (FaultName::Reset, "reset", &[]),
    (FaultName::Close, "close", &[]),
    (
        FaultName::Latency,
        "latency",
        &["direction", "delay_ms", "jitter_ms"],
    ),
    (
        FaultName::Bandwidth,
        "bandwidth",
        &["direction", "bytes_per_s"],
    ),
    (FaultName::Drop, "drop", &["direction", "packets"]),
    (FaultName::Refuse, "refuse", &[]),
    (FaultName::Hang, "hang", &[]),
    (FaultName::Crash, "crash", &["restart"]),
    (FaultName::Freeze, "freeze", &[]),
    (
        FaultName::IdleTimeout,
        "idle-timeout",
        &["idle_ms", "close"],
    ),
    (FaultName::WsDrop, "ws-drop", &["direction", "frames"]),
    (FaultName::CloseWithoutNotify, "close-without-notify", &[]),
    (FaultName::NotifyWithoutFin, "notify-without-fin", &[]),
];

impl FaultName {
    /// The kind a scenario file's `kind = "..."` names, if any.
    fn parse(name: &str) -> Option<FaultName> {
        FAULT_KINDS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(k, _, _)| *k)
    }

    /// Its name in a scenario file.
    pub(super) fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The optional keys it takes.
    fn takes(self) -> &'static [&'static str] {
        self.row().2
    }

    fn row(self) -> &'static (FaultName, &'static str, &'static [&'static str]) {
        FAULT_KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .expect("every FaultName has its row in FAULT_KINDS")
    }

    /// The kind a scenario file names for this fault; None for toxiproxy's kinds, which a
    /// scenario file cannot hold.
    pub(super) fn of(kind: &FaultKind) -> Option<FaultName> {
        Some(match kind {
            FaultKind::Blackhole { .. } => FaultName::Blackhole,
            FaultKind::Reset => FaultName::Reset,
            FaultKind::Close => FaultName::Close,
            FaultKind::TlsClose { notify: false, .. } => FaultName::CloseWithoutNotify,
            FaultKind::TlsClose { notify: true, .. } => FaultName::NotifyWithoutFin,
            FaultKind::Latency { .. } => FaultName::Latency,
            FaultKind::Bandwidth { .. } => FaultName::Bandwidth,
            FaultKind::Drop { .. } => FaultName::Drop,
            FaultKind::Refuse => FaultName::Refuse,
            FaultKind::Hang => FaultName::Hang,
            FaultKind::Crash { .. } => FaultName::Crash,
            FaultKind::Freeze => FaultName::Freeze,
            FaultKind::IdleTimeout { .. } => FaultName::IdleTimeout,
            FaultKind::WsDrop { .. } => FaultName::WsDrop,
            FaultKind::Slicer { .. }
            | FaultKind::LimitData { .. }
            | FaultKind::SlowClose { .. } => return None,
        })
    }
}

/// The kind of one `[[faults]]` entry with its own parameters; a key that belongs to another
/// kind is refused by name, so a typo does not silently do nothing.
pub(super) fn fault_kind(
    v: &Validator<'_>,
    f: &RawFault,
    transport: Transport,
) -> Result<FaultKind, ScenarioError> {
    let name = fault_name(v, f)?;
    refuse_others_keys(v, f, name)?;
    Ok(match name {
        FaultName::Blackhole => FaultKind::Blackhole {
            direction: direction(v, f)?,
        },
        FaultName::Reset => FaultKind::Reset,
        FaultName::Close => FaultKind::Close,
        FaultName::CloseWithoutNotify | FaultName::NotifyWithoutFin => {
            tls_close(v, f, transport, name)?
        }
        FaultName::Latency => latency(v, f)?,
        FaultName::Bandwidth => bandwidth(v, f)?,
        FaultName::Drop => drop(v, f, transport)?,
        FaultName::IdleTimeout => idle_timeout(v, f)?,
        FaultName::WsDrop => ws_drop(v, f, transport)?,
        FaultName::Refuse => FaultKind::Refuse,
        FaultName::Hang => FaultKind::Hang,
        FaultName::Crash => FaultKind::Crash {
            restart: f.restart.as_ref().is_some_and(|r| *r.get_ref()),
        },
        FaultName::Freeze => FaultKind::Freeze,
    })
}

/// `kind`, looked up in [`FAULT_KINDS`].
fn fault_name(v: &Validator<'_>, f: &RawFault) -> Result<FaultName, ScenarioError> {
    let name = f.kind.get_ref().as_str();
    match FaultName::parse(name) {
        Some(k) => Ok(k),
        None => {
            let kinds: Vec<&str> = FAULT_KINDS.iter().map(|(_, n, _)| *n).collect();
            v.err(
                f.kind.span(),
                "faults.kind",
                format!(
                    "unknown fault kind {name:?}: expected one of {}",
                    kinds.join(", ")
                ),
            )
        }
    }
}

/// The first optional key given that this kind does not take, refused by name.
fn refuse_others_keys(
    v: &Validator<'_>,
    f: &RawFault,
    name: FaultName,
) -> Result<(), ScenarioError> {
    let given: [(&str, Option<std::ops::Range<usize>>); 9] = [
        ("direction", f.direction.as_ref().map(|x| x.span())),
        ("delay_ms", f.delay_ms.as_ref().map(|x| x.span())),
        ("jitter_ms", f.jitter_ms.as_ref().map(|x| x.span())),
        ("bytes_per_s", f.bytes_per_s.as_ref().map(|x| x.span())),
        ("packets", f.packets.as_ref().map(|x| x.span())),
        ("restart", f.restart.as_ref().map(|x| x.span())),
        ("idle_ms", f.idle_ms.as_ref().map(|x| x.span())),
        ("close", f.close.as_ref().map(|x| x.span())),
        ("frames", f.frames.as_ref().map(|x| x.span())),
    ];
    let takes = name.takes();
    for (key, span) in given {
        if let Some(span) = span {
            if !takes.contains(&key) {
                let fits = if takes.is_empty() {
                    "it takes no parameters of its own".to_string()
                } else {
                    format!("it takes {}", takes.join(", "))
                };
                return v.err(
                    span,
                    &format!("faults.{key}"),
                    format!("a {} fault has no `{key}`: {fits}", name.as_str()),
                );
            }
        }
    }
    Ok(())
}

/// `direction`, both ways when not given.
fn direction(v: &Validator<'_>, f: &RawFault) -> Result<Direction, ScenarioError> {
    match &f.direction {
        Some(d) => v.choice(d, "faults.direction", "both, upstream, downstream"),
        None => Ok(Direction::Both),
    }
}

/// A duration key in milliseconds, `lo` to an hour.
fn ms(v: &Validator<'_>, x: &Spanned<i64>, key: &str, lo: i64) -> Result<Duration, ScenarioError> {
    Ok(Duration::from_millis(v.int_in(x, key, lo, 3_600_000)?))
}

/// close-without-notify, notify-without-fin: TLS transports only.
fn tls_close(
    v: &Validator<'_>,
    f: &RawFault,
    transport: Transport,
    name: FaultName,
) -> Result<FaultKind, ScenarioError> {
    if !transport.is_tls() {
        return v.err(
            f.kind.span(),
            "faults.kind",
            format!("a {} fault needs transport = \"tls\" or \"wss\": there is no TLS session to close otherwise", name.as_str()),
        );
    }
    Ok(FaultKind::TlsClose {
        notify: name == FaultName::NotifyWithoutFin,
        fin: name == FaultName::CloseWithoutNotify,
    })
}

/// latency: `delay_ms` needed, `jitter_ms` zero when not given.
fn latency(v: &Validator<'_>, f: &RawFault) -> Result<FaultKind, ScenarioError> {
    let Some(delay) = &f.delay_ms else {
        return v.err(
            f.kind.span(),
            "faults.delay_ms",
            "a latency fault needs `delay_ms` (1 to 3600000)".to_string(),
        );
    };
    Ok(FaultKind::Latency {
        direction: direction(v, f)?,
        delay: ms(v, delay, "faults.delay_ms", 1)?,
        jitter: match &f.jitter_ms {
            Some(j) => ms(v, j, "faults.jitter_ms", 0)?,
            None => Duration::ZERO,
        },
    })
}

/// bandwidth: `bytes_per_s` needed.
fn bandwidth(v: &Validator<'_>, f: &RawFault) -> Result<FaultKind, ScenarioError> {
    let Some(rate) = &f.bytes_per_s else {
        return v.err(
            f.kind.span(),
            "faults.bytes_per_s",
            "a bandwidth fault needs `bytes_per_s` (1 to 1000000000)".to_string(),
        );
    };
    Ok(FaultKind::Bandwidth {
        direction: direction(v, f)?,
        bytes_per_s: v.int_in(rate, "faults.bytes_per_s", 1, 1_000_000_000)?,
    })
}

/// drop: a non-empty `packets` of MQTT 3.1.1 packet type names, over plain TCP only.
fn drop(v: &Validator<'_>, f: &RawFault, transport: Transport) -> Result<FaultKind, ScenarioError> {
    let Some(list) = &f.packets else {
        return v.err(
            f.kind.span(),
            "faults.packets",
            "a drop fault needs `packets`, e.g. [\"PINGREQ\"]".to_string(),
        );
    };
    if list.get_ref().is_empty() {
        return v.err(
            list.span(),
            "faults.packets",
            "no packet types given: expected e.g. [\"PINGREQ\"]".to_string(),
        );
    }
    if transport.is_ws() {
        // Dropping one packet inside WebSocket framing means rewriting frames; not yet.
        return v.err(
            f.kind.span(),
            "faults.kind",
            "a drop fault works on transport = \"tcp\" only: over WebSocket one \
             packet cannot be dropped without rewriting the frame that carries it"
                .to_string(),
        );
    }
    let mut packets = Vec::new();
    for p in list.get_ref() {
        let t =
            crate::mqtt::PacketKind::v311().find(|k| k.as_str().eq_ignore_ascii_case(p.get_ref()));
        match t {
            Some(t) => packets.push(t.type_code()),
            None => {
                let names: Vec<&str> = crate::mqtt::PacketKind::v311()
                    .map(|k| k.as_str())
                    .collect();
                return v.err(
                    p.span(),
                    "faults.packets",
                    format!(
                        "unknown MQTT packet type {:?}: expected one of {}",
                        p.get_ref(),
                        names.join(", ")
                    ),
                );
            }
        }
    }
    Ok(FaultKind::Drop {
        direction: direction(v, f)?,
        packets,
    })
}

/// idle-timeout: `idle_ms` needed, `close` "fin" (the default) or "rst".
fn idle_timeout(v: &Validator<'_>, f: &RawFault) -> Result<FaultKind, ScenarioError> {
    let Some(idle) = &f.idle_ms else {
        return v.err(
            f.kind.span(),
            "faults.idle_ms",
            "an idle-timeout fault needs `idle_ms` (100 to 3600000)".to_string(),
        );
    };
    let reset = match &f.close {
        Some(c) => match c.get_ref().as_str() {
            "fin" => false,
            "rst" => true,
            other => {
                return v.err(
                    c.span(),
                    "faults.close",
                    format!("unknown close {other:?}: expected one of fin, rst"),
                )
            }
        },
        None => false,
    };
    Ok(FaultKind::IdleTimeout {
        idle: ms(v, idle, "faults.idle_ms", 100)?,
        reset,
    })
}

/// ws-drop: some WebSocket frame kinds in `frames`, over WebSocket only.
fn ws_drop(
    v: &Validator<'_>,
    f: &RawFault,
    transport: Transport,
) -> Result<FaultKind, ScenarioError> {
    let names = "data, ping, pong, close";
    let Some(list) = &f.frames else {
        return v.err(
            f.kind.span(),
            "faults.frames",
            format!("a ws-drop fault needs `frames`, some of {names}, e.g. [\"pong\"]"),
        );
    };
    if !transport.is_ws() {
        return v.err(
            f.kind.span(),
            "faults.kind",
            "a ws-drop fault works on transport = \"ws\" only: there are no WebSocket frames over plain TCP".to_string(),
        );
    }
    let mut frames = 0u8;
    for x in list.get_ref() {
        match crate::tap::ws_kinds::KINDS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(x.get_ref()))
        {
            Some((_, b)) => frames |= b,
            None => {
                return v.err(
                    x.span(),
                    "faults.frames",
                    format!(
                        "unknown WebSocket frame kind {:?}: expected one of {names}",
                        x.get_ref()
                    ),
                )
            }
        }
    }
    if frames == 0 {
        return v.err(
            list.span(),
            "faults.frames",
            format!("no frame kinds given: expected some of {names}"),
        );
    }
    Ok(FaultKind::WsDrop {
        direction: direction(v, f)?,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_name_has_one_row_and_reads_back() {
        for (k, name, _) in FAULT_KINDS {
            assert_eq!(FaultName::parse(name), Some(*k));
            assert_eq!(k.as_str(), *name);
            assert_eq!(FAULT_KINDS.iter().filter(|(x, _, _)| x == k).count(), 1);
        }
    }
}
