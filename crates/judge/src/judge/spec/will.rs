//! The will: published when the connection ends without DISCONNECT, on time, after its
//! delay, retained when asked, and never after a DISCONNECT that removes it.

use super::{finding, ms, observed, Finding};
use crate::judge::facts::*;
use crate::judge::id::CheckId;
use crate::judge::timing;
use crate::profile::Profile;
use crate::scenario::Scenario;

/// [MQTT-3.14.4-3]: on a DISCONNECT with reason 0x00 (either encoding) the server discards
/// the will; with 0x04 "Disconnect with Will Message" it publishes it [MQTT-3.14.2-1 table].
/// Named after the bytes willy wrote (`will-on-disconnect e00104`), because brokers differ by
/// encoding and a profile's deviation names exactly one.
pub(crate) fn will_on_disconnect(d: crate::scenario::V5Disconnect, f: &Facts) -> Finding {
    let bytes = crate::mqtt::disconnect(d.reason, d.form).unwrap_or_default();
    let wrong: Vec<String> = f
        .disconnects
        .iter()
        .filter(|d| (d.reason == Some(0x04)) != d.will_ms.is_some())
        .map(|d| {
            let r = d
                .reason
                .map_or("none (e000)".to_string(), |r| format!("0x{r:02x}"));
            match d.will_ms {
                Some(w) => format!(
                    "reason {r} at {:.0} ms: will published {:.0} ms later",
                    d.ms,
                    w - d.ms
                ),
                None => format!("reason {r} at {:.0} ms: no will", d.ms),
            }
        })
        .collect();
    let seen: Vec<String> = f
        .disconnects
        .iter()
        .map(|d| {
            let r = d
                .reason
                .map_or("e000".to_string(), |r| format!("0x{r:02x}"));
            match d.will_ms {
                Some(w) => format!("{r}: will after {:.0} ms", w - d.ms),
                None => format!("{r}: no will"),
            }
        })
        .collect();
    Finding {
        id: CheckId::WillOnDisconnect(bytes),
        spec: Some("MQTT-3.14.4-3, MQTT-3.1.2-10".into()),
        holds: !f.disconnects.is_empty() && wrong.is_empty(),
        expected: "each DISCONNECT with reason 0x04 is followed by the will; 0x00 (e000 or a reason byte) never".into(),
        actual: if f.disconnects.is_empty() {
            "no DISCONNECT from willy reached the broker".into()
        } else if wrong.is_empty() {
            seen.join("; ")
        } else {
            wrong.join("; ")
        },
    }
}

/// [MQTT-3.1.2-10], [MQTT-3.14.4-3]: a DISCONNECT that reached the broker removes the will, so
/// no clean cycle may end in one. Judged in every run with a will (3.1.1 and 5, TCP and WS)
/// whose DISCONNECT is willy's default; a chosen v5 DISCONNECT has `will-on-disconnect`. It
/// names only the cycles it judged: those whose DISCONNECT reached the broker before the cut
/// (a cycle without one is `clean-disconnect`'s, a cycle left open `takeover-will`'s); None
/// when there was none.
pub(crate) fn no_will_after_clean_disconnect(
    w: &crate::scenario::Will,
    f: &Facts,
) -> Option<Finding> {
    let before_cut = |ms: f64| f.cut_at_ms.map_or(true, |c| ms < c);
    let judged: Vec<u32> = f
        .cycles
        .iter()
        .filter(|c| c.disconnect_reached_ms.is_some_and(before_cut))
        .map(|c| c.cycle)
        .collect();
    let unjudged: Vec<u32> = f
        .cycles
        .iter()
        .filter(|c| c.disconnect_missing() && c.disconnect_reported_ms.is_some_and(before_cut))
        .map(|c| c.cycle)
        .collect();
    if judged.is_empty() && f.wills_after_clean_disconnect.is_empty() {
        return None;
    }
    let wrong: Vec<String> = f
        .wills_after_clean_disconnect
        .iter()
        .map(|x| {
            format!(
                "cycle {}: the will {}: {} reached monit {:.0} ms after willy's DISCONNECT ({}) reached the broker at {:.0} ms",
                x.cycle,
                w.topic,
                w.payload,
                x.will_ms - x.disconnect_ms,
                if x.disconnect_hex.is_empty() { "?" } else { &x.disconnect_hex },
                x.disconnect_ms
            )
        })
        .collect();
    let left_open: Vec<u32> = f
        .cycles
        .iter()
        .filter(|c| c.left_open_ms.is_some_and(before_cut))
        .map(|c| c.cycle)
        .collect();
    let mut not_judged = match unjudged.is_empty() {
        true => String::new(),
        false => format!(
            " ({} not judged: no DISCONNECT of its reached the broker, see clean-disconnect)",
            super::design::cycles_words(&unjudged)
        ),
    };
    if !left_open.is_empty() {
        not_judged += &format!(
            " ({} left open by design, no DISCONNECT: its will is takeover-will's)",
            super::design::cycles_words(&left_open)
        );
    }
    Some(finding(
        CheckId::NoWillAfterDisconnect,
        Some("MQTT-3.1.2-10, MQTT-3.14.4-3"),
        wrong.is_empty(),
        "no will after a DISCONNECT that reached the broker: monit gets only what willy published"
            .into(),
        if wrong.is_empty() {
            format!(
                "{}: no will after the DISCONNECT that reached the broker{not_judged}",
                super::design::cycles_words(&judged)
            )
        } else {
            wrong.join("; ") + &not_judged
        },
    ))
}

/// [MQTT-3.1.2-17]: a will with Will Retain 1 is published as a retained message, so a
/// subscriber that comes later still learns willy is gone; with Will Retain 0 it must not be.
pub(crate) fn retained_will(w: &crate::scenario::Will, f: &Facts) -> Finding {
    let actual = match (
        f.will_received_ms,
        f.late_subscribed_ms,
        f.late_will_retained,
    ) {
        (None, _, _) => "no will was published, so nothing to retain".to_string(),
        (Some(_), None, _) => "the late subscriber never subscribed".to_string(),
        (Some(_), Some(t), None) => {
            format!("the late subscriber (subscribed at {t:.0} ms) got no will")
        }
        (Some(_), Some(_), Some(r)) => format!(
            "the late subscriber got the will with retain {}",
            u8::from(r)
        ),
    };
    Finding {
        id: CheckId::RetainedWill,
        spec: Some(
            if w.retain {
                "MQTT-3.1.2-17"
            } else {
                "MQTT-3.1.2-16"
            }
            .into(),
        ),
        holds: f.will_received_ms.is_some()
            && f.late_subscribed_ms.is_some()
            && if w.retain {
                f.late_will_retained == Some(true)
            } else {
                f.late_will_retained.is_none()
            },
        expected: if w.retain {
            "a subscriber arriving after the will gets it, retained".into()
        } else {
            "a subscriber arriving after the will gets nothing (will retain 0)".into()
        },
        actual,
    }
}

/// [MQTT-3.1.2-8]: the will is published when the connection closes without DISCONNECT;
/// [MQTT-3.1.2-10]: it is removed on DISCONNECT. No will set: nothing but willy's own publishes.
pub(crate) fn will(s: &Scenario, f: &Facts) -> Finding {
    match &s.will {
        Some(w) => Finding {
            id: CheckId::Will,
            spec: Some("MQTT-3.1.2-8, MQTT-3.1.2-10".into()),
            holds: f.will_received_ms.is_some() == s.expect.will,
            expected: if s.expect.will {
                format!("monit receives the will {}: {}", w.topic, w.payload)
            } else {
                "the will never reaches monit".into()
            },
            actual: match f.will_received_ms {
                Some(t) => format!("will received at {t:.0} ms"),
                None => format!(
                    "no will received ({})",
                    observed(f, f.reference_ms().unwrap_or(f.cut_at_ms.unwrap_or(0.0)))
                ),
            },
        },
        None => Finding {
            id: CheckId::NoNewsWithoutWill,
            spec: Some("MQTT-3.1.2-8".into()),
            holds: f.first_news_ms.is_none(),
            expected: "no will set: monit hears nothing of willy after the cut".into(),
            actual: match (&f.first_news, f.first_news_ms) {
                (Some(m), Some(t)) => format!("monit received {m} at {t:.0} ms"),
                _ => "monit heard nothing".into(),
            },
        },
    }
}

/// The will follows the broker's keepalive close [MQTT-3.1.2-8], after the will delay if there
/// is one [MQTT-3.1.3-9]: measured from willy's last packet (`last`).
pub(crate) fn will_timing(s: &Scenario, p: &Profile, f: &Facts, last: f64) -> Finding {
    let (lo, hi) = will_window(s, p);
    let delta = f.will_received_ms.map(|w| w - last);
    let delay = crate::judge::will_delay_ms(s);
    Finding {
        id: CheckId::WillTiming,
        spec: Some(
            if delay > 0.0 || s.will.as_ref().is_some_and(|w| w.delay_s.is_some()) {
                "MQTT-3.1.2-24, MQTT-3.1.3-9".into()
            } else {
                "MQTT-3.1.2-24, MQTT-3.1.2-8".into()
            },
        ),
        holds: delta.is_some_and(|d| d >= lo && d <= hi),
        expected: {
            let wss = p.close_wait(s.transport);
            let wss = if wss > 0 {
                format!(
                    "; over {} {} waits up to {wss} ms for {} before the will",
                    s.transport.as_str().to_uppercase(),
                    p.broker,
                    p.close_wait_words(s.transport)
                )
            } else {
                String::new()
            };
            if delay > 0.0 {
                format!("the will reaches monit {lo:.0}..{hi:.0} ms after willy's last packet ({} keepalive, then the will delay of {delay:.0} ms{wss})", timing::FACTOR_WORDS)
            } else if wss.is_empty() {
                format!("the will reaches monit {lo:.0}..{hi:.0} ms after willy's last packet")
            } else {
                format!(
                    "the will reaches monit {lo:.0}..{hi:.0} ms after willy's last packet ({})",
                    wss.trim_start_matches("; ")
                )
            }
        },
        actual: match delta {
            Some(d) => format!(
                "will {d:.0} ms after the last packet (at {}): {}",
                ms(f.will_received_ms),
                timing::ratio(d, s.keepalive, delay)
            ),
            None => format!("no will ({})", observed(f, last)),
        },
    }
}

/// When the will must reach monit, in ms after willy's last packet: the keepalive close, then
/// the will delay.
pub(crate) fn will_window(s: &Scenario, p: &Profile) -> (f64, f64) {
    let (lo, hi) = timing::keepalive_window(s.keepalive, p.will_late_ms(s.transport));
    let delay = crate::judge::will_delay_ms(s);
    (lo + delay, hi + delay)
}

/// MQTT 5 (3.1.3.2.2, 3.1.2.11.2): a delayed will is published when the Will Delay Interval has
/// passed or the session has ended, whichever is first; with no Session Expiry the session ends
/// at the close. Measured from the broker's close, so a late keepalive drop does not hide it.
pub(crate) fn will_delay_check(s: &Scenario, p: &Profile, f: &Facts) -> Option<Finding> {
    let delay_s = s.will.as_ref()?.delay_s.filter(|d| *d > 0)?;
    if s.protocol != crate::scenario::Protocol::V5 {
        return None;
    }
    let (drop, will) = (f.broker_drop_ms?, f.will_received_ms?);
    let due = crate::judge::will_delay_ms(s);
    let late = p.will_delay_late(s.transport);
    let (lo, hi) = timing::will_delay_window(due, late);
    let d = will - drop;
    Some(Finding {
        id: CheckId::WillDelay,
        spec: Some("MQTT 5 3.1.3.2.2, 3.1.2.11.2".into()),
        holds: d >= lo && d <= hi,
        expected: format!(
            "the will {lo:.0}..{hi:.0} ms after the broker's close: min(Will Delay {delay_s} s, Session Expiry {} s), {} late allowance {} ms{}",
            s.session_expiry_s.unwrap_or(0),
            p.broker,
            p.will_delay_late_ms,
            match p.close_wait(s.transport) {
                0 => String::new(),
                w => format!(
                    ", and over {} {w} ms for {}, which the delay follows",
                    s.transport.as_str().to_uppercase(),
                    p.close_wait_words(s.transport)
                ),
            }
        ),
        actual: format!("{d:.0} ms after the close"),
    })
}
