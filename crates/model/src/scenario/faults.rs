//! One `[[faults]]` entry's kind, with the parameters that kind takes.

use std::time::Duration;

use toml::Spanned;

use super::raw::{RawFault, Validator};
use super::*;

/// The kind of one `[[faults]]` entry with its own parameters; a key that belongs to another
/// kind is refused by name, so a typo does not silently do nothing.
pub(super) fn fault_kind(
    v: &Validator<'_>,
    f: &RawFault,
    transport: Transport,
) -> Result<FaultKind, ScenarioError> {
    const KINDS: &str =
        "blackhole, reset, close, latency, bandwidth, drop, refuse, hang, crash, freeze, idle-timeout, ws-drop, close-without-notify, notify-without-fin";
    let name = f.kind.get_ref().as_str();
    let direction = |v: &Validator<'_>| -> Result<Direction, ScenarioError> {
        match &f.direction {
            Some(d) => v.choice(d, "faults.direction", "both, upstream, downstream"),
            None => Ok(Direction::Both),
        }
    };
    let ms = |x: &Spanned<i64>, key: &str, lo: i64| -> Result<Duration, ScenarioError> {
        Ok(Duration::from_millis(v.int_in(x, key, lo, 3_600_000)?))
    };
    // Which optional keys each kind takes.
    let takes: &[&str] = match name {
        "blackhole" => &["direction"],
        "latency" => &["direction", "delay_ms", "jitter_ms"],
        "bandwidth" => &["direction", "bytes_per_s"],
        "drop" => &["direction", "packets"],
        "crash" => &["restart"],
        "idle-timeout" => &["idle_ms", "close"],
        "ws-drop" => &["direction", "frames"],
        "reset"
        | "close"
        | "refuse"
        | "hang"
        | "freeze"
        | "close-without-notify"
        | "notify-without-fin" => &[],
        other => {
            return v.err(
                f.kind.span(),
                "faults.kind",
                format!("unknown fault kind {other:?}: expected one of {KINDS}"),
            )
        }
    };
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
                    format!("a {name} fault has no `{key}`: {fits}"),
                );
            }
        }
    }
    Ok(match name {
        "blackhole" => FaultKind::Blackhole {
            direction: direction(v)?,
        },
        "reset" => FaultKind::Reset,
        "close" => FaultKind::Close,
        "close-without-notify" | "notify-without-fin" => {
            if !transport.is_tls() {
                return v.err(
                    f.kind.span(),
                    "faults.kind",
                    format!("a {name} fault needs transport = \"tls\" or \"wss\": there is no TLS session to close otherwise"),
                );
            }
            FaultKind::TlsClose {
                notify: name == "notify-without-fin",
                fin: name == "close-without-notify",
            }
        }
        "latency" => {
            let Some(delay) = &f.delay_ms else {
                return v.err(
                    f.kind.span(),
                    "faults.delay_ms",
                    "a latency fault needs `delay_ms` (1 to 3600000)".to_string(),
                );
            };
            FaultKind::Latency {
                direction: direction(v)?,
                delay: ms(delay, "faults.delay_ms", 1)?,
                jitter: match &f.jitter_ms {
                    Some(j) => ms(j, "faults.jitter_ms", 0)?,
                    None => Duration::ZERO,
                },
            }
        }
        "bandwidth" => {
            let Some(rate) = &f.bytes_per_s else {
                return v.err(
                    f.kind.span(),
                    "faults.bytes_per_s",
                    "a bandwidth fault needs `bytes_per_s` (1 to 1000000000)".to_string(),
                );
            };
            FaultKind::Bandwidth {
                direction: direction(v)?,
                bytes_per_s: v.int_in(rate, "faults.bytes_per_s", 1, 1_000_000_000)?,
            }
        }
        "drop" => {
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
                let t = crate::mqtt::PacketKind::v311()
                    .find(|k| k.as_str().eq_ignore_ascii_case(p.get_ref()));
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
            FaultKind::Drop {
                direction: direction(v)?,
                packets,
            }
        }
        "idle-timeout" => {
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
            FaultKind::IdleTimeout {
                idle: ms(idle, "faults.idle_ms", 100)?,
                reset,
            }
        }
        "ws-drop" => {
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
                match crate::mqtt::ws_kinds::KINDS
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
            FaultKind::WsDrop {
                direction: direction(v)?,
                frames,
            }
        }
        "refuse" => FaultKind::Refuse,
        "hang" => FaultKind::Hang,
        "crash" => FaultKind::Crash {
            restart: f.restart.as_ref().is_some_and(|r| *r.get_ref()),
        },
        _ => FaultKind::Freeze,
    })
}
