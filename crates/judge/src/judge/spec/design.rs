//! The run's design: each step willy's cycles were to take, seen on the wire. A step that did
//! not happen is a finding about the client, never silence.

use super::Finding;
use crate::judge::facts::{Facts, Source};
use crate::judge::id::CheckId;
use crate::scenario::Scenario;

/// [MQTT-3.14.4-1]: a clean disconnect is a DISCONNECT the client writes before it closes the
/// network connection. Each cycle whose library reported one (with no fault in effect, on a
/// connection the tap could read) must show that DISCONNECT on the wire; a library that says
/// "disconnected" but resets the socket first leaves the broker to publish the will. None when
/// no cycle disconnected that way: no verdict on a step that was not taken.
pub(crate) fn clean_disconnect(f: &Facts) -> Option<Finding> {
    let judged: Vec<u32> = f
        .cycles
        .iter()
        .filter(|c| c.disconnect_judged())
        .map(|c| c.cycle)
        .collect();
    if judged.is_empty() {
        return None;
    }
    let missing: Vec<String> = f
        .cycles
        .iter()
        .filter_map(|c| c.missing_disconnect_words())
        .collect();
    Some(super::finding(
        CheckId::CleanDisconnect,
        Some("MQTT-3.14.4-1"),
        missing.is_empty(),
        "each clean disconnect willy's library reports puts a DISCONNECT on the wire before the close".into(),
        if missing.is_empty() {
            format!("{}: the DISCONNECT reached the broker", cycles_words(&judged))
        } else {
            missing.join("; ")
        },
    ))
}

/// A fault the scenario put in one cycle took effect in another: the run was not the
/// experiment it claims. None when every fault acted where it was meant to (or none did: that
/// is `fault-applied`'s own failure).
pub(crate) fn fault_cycles(s: &Scenario, f: &Facts) -> Option<Finding> {
    let wrong = crate::judge::facts::misplaced_faults(s, &f.cycles);
    if wrong.is_empty() {
        return None;
    }
    Some(super::finding(
        CheckId::FaultApplied,
        None,
        false,
        "each fault acts in the cycle the scenario puts it in".into(),
        wrong
            .iter()
            .map(|m| m.words.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

/// `cycle 2` or `cycles 1, 2`.
pub(crate) fn cycles_words(cycles: &[u32]) -> String {
    let list: Vec<String> = cycles.iter().map(u32::to_string).collect();
    match list.len() {
        1 => format!("cycle {}", list[0]),
        _ => format!("cycles {}", list.join(", ")),
    }
}

/// Every message monit got came from someone in the run: willy, its will, a retained replay,
/// pubby. One nothing accounts for is shown (a broker inventing or repeating a message, or a
/// run that was not the experiment it claims). None when monit got nothing.
pub(crate) fn unaccounted_message(f: &Facts) -> Option<Finding> {
    if f.messages.is_empty() {
        return None;
    }
    let stray: Vec<String> = f
        .messages
        .iter()
        .filter(|m| m.source == Source::Unaccounted)
        .map(|m| format!("{}: {} at {:.0} ms", m.topic, m.payload, m.ms))
        .collect();
    let count = |pick: fn(&Source) -> bool| f.messages.iter().filter(|m| pick(&m.source)).count();
    let wills = count(|s| matches!(s, Source::Will { .. }));
    let own = count(|s| matches!(s, Source::Willy { .. }));
    let others = f.messages.len() - wills - own - stray.len();
    Some(super::finding(
        CheckId::UnaccountedMessage,
        None,
        stray.is_empty(),
        "every message monit gets is willy's, its will, a retained replay or pubby's".into(),
        if stray.is_empty() {
            format!(
                "{} messages: {own} willy's, {wills} will{}, {others} retained or pubby's",
                f.messages.len(),
                if wills == 1 { "" } else { "s" }
            )
        } else {
            format!("nothing in the run published {}", stray.join(", "))
        },
    ))
}
