//! The judge on hand-made record lists.

use super::*;
use crate::event::ConnLastUpstream;
use crate::event::{Actor, Event, Record, Side};
use crate::judge::spec::{
    delivery::no_qos_upgrade,
    will::{will_delay_check, will_timing},
};
use crate::judge::timing::*;
use crate::mqtt::PacketKind;
use crate::tap::{Fields, Framing, WsOpcode};
use chrono::Utc;

fn kind(name: &str) -> PacketKind {
    PacketKind::from_name(name).expect("a packet kind")
}

const WS_MASKED: Framing = Framing::Ws {
    opcode: WsOpcode::Binary,
    masked: true,
};

/// A PUBLISH's fields with what a test cares about; the rest as a QoS 0 message.
fn publish_fields(topic: &str, payload_len: usize, packet_id: Option<u16>, dup: bool) -> Fields {
    Fields::Publish {
        topic: topic.into(),
        qos: u8::from(packet_id.is_some()),
        retain: false,
        dup,
        packet_id,
        payload_len,
    }
}

fn rec(ms: f64, actor: Actor, event: Event) -> Record {
    Record {
        ms,
        t: Utc::now(),
        actor,
        event,
    }
}

fn scenario(name: &str) -> Scenario {
    crate::scenario::load(name).unwrap()
}

fn msg(ms: f64, payload: &str) -> Record {
    rec(
        ms,
        Actor::Monit,
        Event::MessageReceived {
            topic: "test/connected".into(),
            payload: payload.into(),
            retain: false,
            qos: 0,
        },
    )
}

fn cut(ms: f64, last: f64) -> Record {
    rec(
        ms,
        Actor::Proxy,
        Event::FaultApplied {
            fault: "blackhole".into(),
            n: 1,
            last_upstream: vec![ConnLastUpstream {
                conn: 3,
                ms: Some(last),
            }],
        },
    )
}

fn drop_at(ms: f64) -> Record {
    rec(
        ms,
        Actor::Proxy,
        Event::SideClosed {
            conn: 3,
            side: Side::Broker,
            how: "closed (EOF)".into(),
        },
    )
}

fn by_name<'a>(c: &'a [Check], name: &str) -> &'a Check {
    c.iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {c:?}"))
}

/// A flaky-monit run: cut at 1000, monit away at 2000, willy dropped at 4000, monit back
/// at 6000 (session present `present`), then the will copies `wills` (ms, QoS).
fn flaky_run(present: bool, wills: &[(f64, u8)]) -> Vec<Check> {
    let s = scenario("will-qos1-flaky-monit");
    let mut records = vec![
        cut(1000.0, 999.0),
        rec(2000.0, Actor::Monit, Event::ConnectionAbandoned),
        drop_at(4000.0),
        rec(
            6000.0,
            Actor::Monit,
            Event::Connected {
                session_present: present,
            },
        ),
    ];
    for (ms, qos) in wills {
        records.push(rec(
            *ms,
            Actor::Monit,
            Event::MessageReceived {
                topic: "test/connected".into(),
                payload: "false".into(),
                retain: false,
                qos: *qos,
            },
        ));
    }
    let f = Facts::from_records(&s, &records);
    evaluate(&s, &Profile::rumqttd(), &f)
}

#[test]
fn a_will_kept_for_a_flaky_monit_and_sent_once_on_its_return_passes() {
    let c = flaky_run(true, &[(6002.0, 1)]);
    for name in [
        "monit-session-present",
        "will-queued-for-subscriber",
        "will-qos",
        "will-once",
    ] {
        assert!(by_name(&c, name).pass, "{:?}", by_name(&c, name));
    }
    // monit could not see when the broker published it: no will-timing.
    assert!(c.iter().all(|c| c.name != "will-timing"), "{c:?}");
}

#[test]
fn a_flaky_monits_will_lost_twice_or_downgraded_fails() {
    let lost = flaky_run(true, &[]);
    assert!(!by_name(&lost, "will-queued-for-subscriber").pass);
    assert!(!by_name(&lost, "will-once").pass);
    assert!(!by_name(&lost, "will-qos").pass);
    let twice = flaky_run(true, &[(6002.0, 1), (6300.0, 1)]);
    assert!(!by_name(&twice, "will-once").pass);
    assert!(by_name(&twice, "will-queued-for-subscriber").pass);
    let q0 = flaky_run(true, &[(6002.0, 0)]);
    assert!(!by_name(&q0, "will-qos").pass);
    let late = flaky_run(true, &[(6000.0 + QUEUED_WAIT_MS + 1.0, 1)]);
    assert!(!by_name(&late, "will-queued-for-subscriber").pass);
    let no_session = flaky_run(false, &[(6002.0, 1)]);
    assert!(!by_name(&no_session, "monit-session-present").pass);
}

#[test]
fn a_will_published_before_monit_left_is_not_a_queued_delivery() {
    let s = scenario("will-qos1-flaky-monit");
    let records = vec![
        cut(1000.0, 999.0),
        drop_at(1500.0),
        rec(2000.0, Actor::Monit, Event::ConnectionAbandoned),
        rec(
            6000.0,
            Actor::Monit,
            Event::Connected {
                session_present: true,
            },
        ),
        rec(
            6001.0,
            Actor::Monit,
            Event::MessageReceived {
                topic: "test/connected".into(),
                payload: "false".into(),
                retain: false,
                qos: 1,
            },
        ),
    ];
    let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &records));
    assert!(!by_name(&c, "will-queued-for-subscriber").pass);
}

#[test]
fn will_on_time_passes_every_check() {
    let s = scenario("ws-last-will");
    let records = vec![
        rec(
            99.0,
            Actor::Wire,
            Event::Packet {
                conn: 3,
                from: Side::Client,
                dropped: false,
                kind: PacketKind::Publish,
                framing: WS_MASKED,
                size: 22,
                hex: None,
                fields: publish_fields("test/connected", 4, None, false),
            },
        ),
        msg(100.0, "true"),
        cut(101.0, 99.0),
        drop_at(3101.0),
        msg(3102.0, "false"),
        rec(
            4050.0,
            Actor::Willy,
            Event::ConnectionFailed {
                error: "ping timeout".into(),
            },
        ),
    ];
    let f = Facts::from_records(&s, &records);
    assert_eq!(f.last_upstream_ms, Some(99.0));
    assert_eq!(f.will_received_ms, Some(3102.0));
    let checks = evaluate(&s, &Profile::rumqttd(), &f);
    assert!(checks.iter().all(|c| c.pass), "{checks:#?}");
    // No DISCONNECT before the cut: no-will-after-disconnect has no cycle to judge;
    // unaccounted-message: willy's `true` and the will.
    assert_eq!(checks.len(), 5);
}

fn packet(ms: f64, kind_name: &str, dropped: bool) -> Record {
    rec(
        ms,
        Actor::Wire,
        Event::Packet {
            conn: 3,
            from: Side::Client,
            dropped,
            kind: kind(kind_name),
            framing: Framing::Tcp,
            size: 2,
            hex: None,
            fields: Fields::None,
        },
    )
}

#[test]
fn keepalive_is_measured_from_the_last_packet_that_reached_the_broker() {
    let s = scenario("native-last-will");
    let records = vec![
        packet(98.5, "PUBLISH", false),
        cut(101.0, 99.0),
        packet(2099.0, "PINGREQ", true),
        drop_at(3099.0),
        msg(3100.0, "false"),
    ];
    let f = Facts::from_records(&s, &records);
    assert_eq!(f.last_packet_ms, Some(98.5));
    assert_eq!(f.last_packet_kind, Some(PacketKind::Publish));
    assert_eq!(f.reference_ms(), Some(98.5));
    assert_eq!(f.wire_counts[0].pingreq, 1);
    assert_eq!(f.wire_counts[0].pingreq_dropped, 1);
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    assert!(
        by_name(&c, "keepalive-drop").actual.contains("3000 ms")
            || by_name(&c, "keepalive-drop").actual.contains("3001 ms"),
        "{c:#?}"
    );
}

#[test]
fn missing_will_fails() {
    let s = scenario("ws-last-will");
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(3101.0)]);
    let checks = evaluate(&s, &Profile::rumqttd(), &f);
    assert!(!by_name(&checks, "will").pass);
    assert!(!by_name(&checks, "will-timing").pass);
    assert!(by_name(&checks, "keepalive-drop").pass);
}

#[test]
fn a_drop_before_one_and_a_half_keepalive_fails() {
    let s = scenario("native-no-will");
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(2099.0)]);
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    assert!(!by_name(&c, "keepalive-drop").pass, "{c:#?}");
}

#[test]
fn a_drop_later_than_the_profile_allows_fails() {
    let s = scenario("native-no-will");
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 3000.0 + 251.0)]);
    assert!(!by_name(&evaluate(&s, &Profile::rumqttd(), &f), "keepalive-drop").pass);
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 3000.0 + 249.0)]);
    assert!(by_name(&evaluate(&s, &Profile::rumqttd(), &f), "keepalive-drop").pass);
}

#[test]
fn no_will_scenario_fails_when_monit_hears_something() {
    let s = scenario("native-no-will");
    let f = Facts::from_records(
        &s,
        &[cut(101.0, 99.0), drop_at(3101.0), msg(3102.0, "false")],
    );
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    assert!(!by_name(&c, "no-news-without-will").pass);
    assert!(c.iter().all(|c| c.name != "will-timing"));
}

#[test]
fn messages_before_the_cut_are_not_the_will() {
    let s = scenario("ws-last-will");
    let f = Facts::from_records(&s, &[msg(50.0, "false"), cut(101.0, 99.0)]);
    assert_eq!(f.will_received_ms, None);
}

#[test]
fn willys_own_false_after_heal_is_not_the_will() {
    let s = scenario("ws-last-will");
    let records = vec![
        cut(101.0, 99.0),
        rec(
            1000.0,
            Actor::Proxy,
            Event::FaultHealed {
                fault: "blackhole".into(),
                n: 1,
            },
        ),
        rec(
            1500.0,
            Actor::Willy,
            Event::Published {
                topic: "test/connected".into(),
                payload: "true".into(),
            },
        ),
        msg(1501.0, "true"),
        msg(3600.0, "false"),
    ];
    let f = Facts::from_records(&s, &records);
    assert_eq!(f.will_received_ms, None);
    assert_eq!(f.first_news_ms, None);
}

#[test]
fn a_run_that_never_reached_its_trigger_fails() {
    let s = scenario("ws-last-will");
    let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &[]));
    assert_eq!(c.len(), 1);
    assert!(!by_name(&c, "fault-applied").pass);
    // No cycle ran, so no check says one held.
    assert!(c.iter().all(|c| c.name != "no-will-after-disconnect"));
}

/// willy's cycle 1 as the wire tap and monit see it: `false` published and received, then
/// the DISCONNECT; `extra` more copies of `false` at monit after the DISCONNECT.
fn clean_cycle(extra: usize) -> Vec<Record> {
    let publish_false = rec(
        20.0,
        Actor::Wire,
        Event::Packet {
            conn: 1,
            from: Side::Client,
            dropped: false,
            kind: PacketKind::Publish,
            framing: WS_MASKED,
            size: 23,
            hex: None,
            fields: publish_fields("test/connected", 5, None, false),
        },
    );
    let disconnect = rec(
        30.0,
        Actor::Wire,
        Event::Packet {
            conn: 1,
            from: Side::Client,
            dropped: false,
            kind: PacketKind::Disconnect,
            framing: WS_MASKED,
            size: 2,
            hex: Some("e000".into()),
            fields: Fields::None,
        },
    );
    // monit's copy of willy's own `false` may be recorded before the tap's record.
    let mut r = vec![
        rec(0.0, Actor::Willy, Event::CycleStarted { cycle: 1 }),
        msg(19.5, "false"),
        publish_false,
        disconnect,
    ];
    for i in 0..extra {
        r.push(msg(33.0 + i as f64, "false"));
    }
    r
}

#[test]
fn a_will_after_a_clean_disconnect_fails_even_when_it_reads_like_willys_own_false() {
    let s = scenario("ws-last-will");
    let mut records = clean_cycle(1);
    records.extend([msg(5000.0, "true"), cut(5001.0, 4999.0)]);
    let f = Facts::from_records(&s, &records);
    assert_eq!(f.wills_after_clean_disconnect.len(), 1);
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    let bad = by_name(&c, "no-will-after-disconnect");
    assert!(!bad.pass);
    assert!(
        bad.actual.contains("cycle 1") && bad.actual.contains("(e000)"),
        "{}",
        bad.actual
    );
    assert!(bad.actual.contains("3 ms after"), "{}", bad.actual);
}

/// Regression (a mosquitto run by URL, 2026-11-29): rumqttc closed its WebSocket with a
/// PINGRESP unread, the kernel sent RST, and willy's DISCONNECT of cycle 2 never reached the
/// broker, which rightly published the will. Cycle 1's clean DISCONNECT is not to blame: cycle 2's
/// CONNECT ended its window.
#[test]
fn a_will_after_a_reset_cycle_is_not_pinned_on_an_earlier_clean_disconnect() {
    let s = scenario("ws-last-will");
    let mut records = clean_cycle(0);
    let packet = |ms: f64, name: &str, fields: Fields| {
        rec(
            ms,
            Actor::Wire,
            Event::Packet {
                conn: 2,
                from: Side::Client,
                dropped: false,
                kind: kind(name),
                framing: WS_MASKED,
                size: 23,
                hex: None,
                fields,
            },
        )
    };
    records.extend([
        rec(1000.0, Actor::Willy, Event::CycleStarted { cycle: 2 }),
        packet(1001.0, "CONNECT", Fields::None),
        packet(
            3001.0,
            "PUBLISH",
            publish_fields("test/connected", 5, None, false),
        ),
        msg(3001.5, "false"),
        // No DISCONNECT: the connection was reset. The will follows at once.
        msg(3002.0, "false"),
        msg(5000.0, "true"),
        cut(5001.0, 4999.0),
    ]);
    let f = Facts::from_records(&s, &records);
    assert!(
        f.wills_after_clean_disconnect.is_empty(),
        "{:?}",
        f.wills_after_clean_disconnect
    );
}

#[test]
fn willys_own_false_at_monit_is_not_a_will() {
    let s = scenario("native-last-will");
    let mut records = clean_cycle(0);
    records.extend([msg(5000.0, "true"), cut(5001.0, 4999.0)]);
    let f = Facts::from_records(&s, &records);
    assert!(f.wills_after_clean_disconnect.is_empty());
    assert!(
        by_name(
            &evaluate(&s, &Profile::rumqttd(), &f),
            "no-will-after-disconnect"
        )
        .pass
    );
}

#[test]
fn a_late_drop_and_will_are_reported_with_their_ratio() {
    let s = scenario("ws-last-will");
    let records = vec![
        msg(100.0, "true"),
        cut(101.0, 99.0),
        drop_at(6103.0),
        msg(6104.0, "false"),
    ];
    let c = evaluate(&s, &Profile::unknown(), &Facts::from_records(&s, &records));
    let drop = by_name(&c, "keepalive-drop");
    assert!(!drop.pass);
    assert!(
        drop.actual.contains(
            "closed 6004 ms after the last packet = 3.00 x keepalive, 3.0 s late; spec 1.5 x"
        ),
        "{}",
        drop.actual
    );
    let will = by_name(&c, "will-timing");
    assert!(!will.pass);
    assert!(
        will.actual.contains("will 6005 ms after the last packet"),
        "{}",
        will.actual
    );
}

#[test]
fn never_says_how_long_the_run_watched() {
    let s = scenario("ws-last-will");
    let records = vec![
        msg(100.0, "true"),
        cut(101.0, 99.0),
        rec(
            18_200.0,
            Actor::Runner,
            Event::RunEnded { reason: "x".into() },
        ),
    ];
    let c = evaluate(&s, &Profile::unknown(), &Facts::from_records(&s, &records));
    let drop = by_name(&c, "keepalive-drop");
    assert!(
        drop.actual.contains(
            "never closed the connection (observed for 18.1 s after willy's last packet)"
        ),
        "{}",
        drop.actual
    );
}

#[test]
fn client_detection_is_the_first_willy_error_after_the_cut() {
    let s = scenario("ws-last-will");
    let records = vec![
        rec(
            10.0,
            Actor::Willy,
            Event::ConnectionFailed {
                error: "before".into(),
            },
        ),
        cut(101.0, 99.0),
        rec(
            8000.0,
            Actor::Willy,
            Event::ConnectionFailed {
                error: "network timeout".into(),
            },
        ),
        rec(
            14000.0,
            Actor::Willy,
            Event::ConnectionFailed {
                error: "network timeout".into(),
            },
        ),
    ];
    let f = Facts::from_records(&s, &records);
    assert_eq!(f.client_detect_ms, Some(8000.0));
    assert_eq!(f.attempts_failed_after_cut, 2);
}

#[test]
fn a_delayed_will_without_a_session_is_due_at_the_close() {
    let s = scenario("v5-will-delay-no-session");
    let f = |will_after_close: f64| Facts {
        broker_drop_ms: Some(5000.0),
        will_received_ms: Some(5000.0 + will_after_close),
        ..Facts::default()
    };
    let p = Profile::rumqttd();
    assert!(will_delay_check(&s, &p, &f(2.0)).unwrap().holds);
    let late = will_delay_check(&s, &p, &f(2204.0)).unwrap();
    assert!(!late.holds, "{late:?}");
    assert!(late.expected.contains("-50..250 ms"), "{}", late.expected);
    // mosquitto lists waiting out the delay as its deviation, for exactly these runs.
    let m = Profile::mosquitto("2.0.11");
    assert!(m.deviation(&CheckId::WillDelay, &s).is_some());
    assert!(m
        .deviation(&CheckId::WillDelay, &scenario("v5-will-delay"))
        .is_none());
}

/// mosquitto 1.4's will over plain WS comes after libwebsockets' 20 s shutdown wait: the check
/// allows it and names it as that wait, never as a TLS close (there is none over WS).
#[test]
fn a_mosquitto_14_will_over_plain_ws_waits_for_the_peers_fin_not_a_tls_close() {
    let s = scenario("ws-last-will");
    let m = Profile::mosquitto_14("1.4.15");
    let last = 1000.0;
    let bound = keepalive_bound_ms(s.keepalive);
    // Dropped 0.6 s early on its whole-second clock, the will 20.4 s after that.
    let f = Facts {
        broker_drop_ms: Some(last + bound - 600.0),
        will_received_ms: Some(last + bound - 600.0 + 20_400.0),
        ..Facts::default()
    };
    let c = will_timing(&s, &m, &f, last);
    assert!(c.holds, "{c:?}");
    assert!(
        c.expected.contains("over WS mosquitto 1.4.15"),
        "{}",
        c.expected
    );
    assert!(c.expected.contains("peer's FIN"), "{}", c.expected);
    assert!(!c.expected.contains("TLS"), "{}", c.expected);
    // Over TCP there is no such wait: the same will is late.
    let tcp = scenario("native-last-will");
    assert!(!will_timing(&tcp, &m, &f, last).holds);
}

#[test]
fn a_delayed_will_with_a_session_is_due_after_the_shorter_interval() {
    let s = scenario("v5-session-expiry-shorter-than-delay");
    let f = Facts {
        broker_drop_ms: Some(5000.0),
        will_received_ms: Some(6303.0),
        ..Facts::default()
    };
    let c = will_delay_check(&s, &Profile::mosquitto("2.0.11"), &f).unwrap();
    assert!(c.holds, "{c:?}");
    // No will, or no delay: nothing to judge here (the will check says it).
    let none = Facts {
        will_received_ms: None,
        ..f.clone()
    };
    assert!(will_delay_check(&s, &Profile::rumqttd(), &none).is_none());
    assert!(will_delay_check(&scenario("v5-last-will"), &Profile::rumqttd(), &f).is_none());
}

#[test]
fn a_qos0_true_at_a_qos1_subscriber_must_stay_qos0() {
    let mut s = scenario("will-qos1-flaky-monit");
    let f = |q: u8| Facts {
        status_true_qos: vec![(70.0, q)],
        ..Facts::default()
    };
    assert!(no_qos_upgrade(&s, &f(0)).holds);
    let up = no_qos_upgrade(&s, &f(1));
    assert!(!up.holds && up.actual == "QoS 1 at 70 ms", "{up:?}");
    assert!(
        !no_qos_upgrade(&s, &Facts::default()).holds,
        "no true: nothing shown"
    );
    assert!(Profile::rumqttd()
        .deviation(&CheckId::NoQosUpgrade, &s)
        .is_some());
    s.monit.qos = 0;
    assert!(Profile::rumqttd()
        .deviation(&CheckId::NoQosUpgrade, &s)
        .is_none());
}

fn profile_listing(check: CheckId, applies: crate::profile::Applies) -> Profile {
    let mut p = Profile::rumqttd();
    p.deviations.push(crate::profile::Deviation {
        check,
        applies,
        reason: "test",
        evidence: "test",
    });
    p
}

#[test]
fn a_listed_failure_is_a_deviation_not_a_failure() {
    use crate::profile::Applies;
    let s = scenario("native-no-will");
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 2000.0)]);
    let c = evaluate(
        &s,
        &profile_listing(CheckId::KeepaliveDrop, Applies::Always),
        &f,
    );
    let k = by_name(&c, "keepalive-drop");
    assert_eq!(k.status, Status::Deviation);
    assert!(k.pass, "a deviation does not fail the run");
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    assert_eq!(by_name(&c, "keepalive-drop").status, Status::Fail);
}

#[test]
fn a_listed_check_that_holds_is_an_unexpected_pass() {
    use crate::profile::Applies;
    let s = scenario("native-no-will");
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 3001.0)]);
    let c = evaluate(
        &s,
        &profile_listing(CheckId::KeepaliveDrop, Applies::Always),
        &f,
    );
    let k = by_name(&c, "keepalive-drop");
    assert_eq!(k.status, Status::UnexpectedPass);
    assert!(k.pass);
}

#[test]
fn an_odd_keepalive_deviation_is_only_possible_and_only_at_odd_keepalives() {
    use crate::profile::Applies;
    let p = profile_listing(CheckId::KeepaliveDrop, Applies::MayAtOddKeepalive);
    let mut s = scenario("native-no-will");
    // keepalive 2 (even): not listed, an early drop fails.
    let f = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 2000.0)]);
    assert_eq!(
        by_name(&evaluate(&s, &p, &f), "keepalive-drop").status,
        Status::Fail
    );
    s.keepalive = std::time::Duration::from_secs(3);
    let early = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 4100.0)]);
    assert_eq!(
        by_name(&evaluate(&s, &p, &early), "keepalive-drop").status,
        Status::Deviation
    );
    let on_time = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 4600.0)]);
    assert_eq!(
        by_name(&evaluate(&s, &p, &on_time), "keepalive-drop").status,
        Status::Pass
    );
}

#[test]
fn mosquittos_timing_model_allows_its_six_second_scan_and_no_more() {
    let s = scenario("native-no-will");
    let p = Profile::mosquitto("2.0.11");
    // 1.5 x 2 s + one 6 s scan period + 100 ms wake-up + 250 ms margin.
    let ok = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 9350.0)]);
    assert_eq!(
        by_name(&evaluate(&s, &p, &ok), "keepalive-drop").status,
        Status::Pass
    );
    let late = Facts::from_records(&s, &[cut(101.0, 99.0), drop_at(99.0 + 9351.0)]);
    assert_eq!(
        by_name(&evaluate(&s, &p, &late), "keepalive-drop").status,
        Status::Fail
    );
}

// --- pubby's messages at willy: QoS, the persistent session, DUP ---

fn publish_to_willy(ms: f64, conn: u64, id: u16, dup: bool, topic: &str) -> Record {
    rec(
        ms,
        Actor::Wire,
        Event::Packet {
            conn,
            from: Side::Broker,
            dropped: conn == 1,
            kind: PacketKind::Publish,
            framing: Framing::Tcp,
            size: 12,
            hex: None,
            fields: publish_fields(topic, 0, Some(id), dup),
        },
    )
}

/// A persistent-session run: cut at 100, pubby's 1..=n into the cut (sent on conn 1 and
/// lost), heal at 10000, willy back at 10010 and given `got` (payload, qos, dup).
fn session_run(name: &str, n: u32, got: &[(&str, u8, bool)]) -> Vec<Check> {
    let s = scenario(name);
    let topic = s.publisher.as_ref().unwrap().topic.clone();
    let mut r = vec![
        rec(
            1.0,
            Actor::Willy,
            Event::Connected {
                session_present: false,
            },
        ),
        rec(
            2.0,
            Actor::Willy,
            Event::SubscribeGranted {
                filter: topic.clone(),
                granted: vec![s.subscribe.as_ref().unwrap().qos],
            },
        ),
        cut(100.0, 50.0),
    ];
    for i in 1..=n {
        let ms = 100.0 + f64::from(i) * 250.0;
        r.push(rec(
            ms,
            Actor::Pubby,
            Event::Published {
                topic: topic.clone(),
                payload: i.to_string(),
            },
        ));
        r.push(publish_to_willy(ms + 1.0, 1, i as u16, false, &topic));
    }
    r.push(rec(
        10000.0,
        Actor::Proxy,
        Event::FaultHealed {
            fault: "blackhole".into(),
            n: 1,
        },
    ));
    r.push(rec(
        10010.0,
        Actor::Willy,
        Event::Connected {
            session_present: true,
        },
    ));
    for (k, (payload, qos, dup)) in got.iter().enumerate() {
        let ms = 10011.0 + k as f64;
        let id: u16 = payload.parse().unwrap();
        r.push(publish_to_willy(ms, 4, id, *dup, &topic));
        r.push(rec(
            ms,
            Actor::Willy,
            Event::Received {
                topic: topic.clone(),
                payload: payload.to_string(),
                qos: *qos,
                retain: false,
                dup: *dup,
            },
        ));
    }
    let f = Facts::from_records(&s, &r);
    spec_checks(&s, &Profile::rumqttd(), &f)
}

fn verdict(checks: &[Check], name: &str) -> bool {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {checks:#?}"))
        .pass
}

#[test]
fn every_queued_message_delivered_once_with_dup_passes() {
    let got: Vec<(&str, u8, bool)> = ["1", "2", "3"].iter().map(|p| (*p, 2, true)).collect();
    let c = session_run("persistent-session-qos2", 3, &got);
    for name in [
        "delivery-qos",
        "session-present",
        "queued-delivery",
        "dup-on-resend",
        "no-duplicates",
    ] {
        assert!(verdict(&c, name), "{name}: {c:#?}");
    }
}

#[test]
fn a_lost_queued_message_fails_queued_delivery() {
    let c = session_run(
        "persistent-session-qos1",
        3,
        &[("1", 1, true), ("3", 1, true)],
    );
    assert!(!verdict(&c, "queued-delivery"));
    let q = c.iter().find(|c| c.name == "queued-delivery").unwrap();
    assert!(q.actual.contains("missing: 2"), "{}", q.actual);
}

#[test]
fn a_qos2_message_delivered_twice_fails_no_duplicates() {
    let c = session_run(
        "persistent-session-qos2",
        2,
        &[("1", 2, true), ("2", 2, true), ("2", 2, true)],
    );
    assert!(!verdict(&c, "no-duplicates"));
    assert!(verdict(&c, "queued-delivery"));
}

#[test]
fn a_resend_without_dup_fails_dup_on_resend() {
    let c = session_run(
        "persistent-session-qos1",
        2,
        &[("1", 1, false), ("2", 1, true)],
    );
    assert!(!verdict(&c, "dup-on-resend"));
}

#[test]
fn a_message_above_the_lower_qos_fails_delivery_qos() {
    // qos-downgrade: published at QoS 2, subscribed at QoS 0.
    let s = scenario("qos-downgrade");
    let got = |qos| {
        vec![
            rec(
                1.0,
                Actor::Willy,
                Event::SubscribeGranted {
                    filter: "presence".into(),
                    granted: vec![0],
                },
            ),
            rec(
                5.0,
                Actor::Willy,
                Event::Received {
                    topic: "presence".into(),
                    payload: "1".into(),
                    qos,
                    retain: false,
                    dup: false,
                },
            ),
        ]
    };
    let ok = spec_checks(&s, &Profile::rumqttd(), &Facts::from_records(&s, &got(0)));
    assert!(verdict(&ok, "delivery-qos"));
    let bad = spec_checks(&s, &Profile::rumqttd(), &Facts::from_records(&s, &got(2)));
    assert!(!verdict(&bad, "delivery-qos"));
    // No fault, no session: nothing else is judged.
    assert_eq!(bad.len(), 1, "{bad:#?}");
}

// --- client-id takeover ---

fn takeover_run(close: Option<f64>, will: Option<f64>) -> Vec<Check> {
    let s = scenario("client-id-takeover");
    let mut r = vec![
        cut(100.0, 50.0),
        rec(
            600.0,
            Actor::Twin,
            Event::Connecting {
                url: "mqtt://127.0.0.1:1".into(),
                will: None,
                attempt: 1,
            },
        ),
        rec(
            602.0,
            Actor::Twin,
            Event::Connected {
                session_present: false,
            },
        ),
    ];
    if let Some(c) = close {
        r.push(drop_at(c));
    }
    if let Some(w) = will {
        r.push(rec(
            w,
            Actor::Monit,
            Event::MessageReceived {
                topic: "test/will".into(),
                payload: "offline".into(),
                retain: false,
                qos: 0,
            },
        ));
    }
    r.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    spec_checks(&s, &Profile::rumqttd(), &Facts::from_records(&s, &r))
}

#[test]
fn a_takeover_closes_willy_and_publishes_its_will_at_once() {
    let c = takeover_run(Some(601.5), Some(603.0));
    assert!(verdict(&c, "takeover-close"), "{c:#?}");
    assert!(verdict(&c, "takeover-will"), "{c:#?}");
    // The keepalive does not decide this run: its checks are not made.
    assert!(c.iter().all(|c| c.name != "keepalive-drop"), "{c:#?}");
}

#[test]
fn a_will_only_at_the_keepalive_expiry_fails_the_takeover() {
    let c = takeover_run(Some(3050.0), Some(3051.0));
    assert!(!verdict(&c, "takeover-close"));
    assert!(!verdict(&c, "takeover-will"));
    let c = takeover_run(Some(601.5), None);
    assert!(verdict(&c, "takeover-close"));
    assert!(!verdict(&c, "takeover-will"));
}

/// The spec checks alone, as checks whose `pass` is whether the spec holds (no profile read).
fn spec_checks(s: &Scenario, p: &Profile, f: &Facts) -> Vec<Check> {
    spec::spec_checks(s, p, f)
        .into_iter()
        .map(|x| Check {
            name: x.id,
            spec: x.spec,
            status: if x.holds { Status::Pass } else { Status::Fail },
            pass: x.holds,
            expected: x.expected,
            actual: x.actual,
        })
        .collect()
}

/// willy's `false` twice back to back, as the tap records it with `[tap] publishes = "runs"`:
/// one run of two.
fn false_run(ms: f64) -> Record {
    rec(
        ms,
        Actor::Wire,
        Event::PublishRun {
            conn: 1,
            from: Side::Client,
            dropped: false,
            topic: "test/connected".into(),
            qos: 0,
            retain: false,
            payload_len: 5,
            count: 2,
            bytes: 46,
            first_ms: ms,
            last_ms: ms + 1.0,
        },
    )
}

#[test]
fn a_publish_run_pairs_each_of_its_publishes_with_a_copy_at_monit() {
    let s = scenario("ws-last-will");
    let disconnect = clean_cycle(0).pop().unwrap();
    let with = |copies: usize| {
        let mut r = vec![
            rec(0.0, Actor::Willy, Event::CycleStarted { cycle: 1 }),
            false_run(20.0),
        ];
        r.extend((0..copies).map(|i| msg(21.5 + i as f64, "false")));
        r.push(disconnect.clone());
        r.push(msg(40.0, "false")); // after the DISCONNECT: willy's or a will?
        r.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        Facts::from_records(&s, &r)
            .wills_after_clean_disconnect
            .len()
    };
    // Two PUBLISHes: two copies are willy's; a third copy (at 40, after the DISCONNECT at 30)
    // is a will.
    assert_eq!(
        with(1),
        0,
        "the run's second PUBLISH pairs with the copy at 40"
    );
    assert_eq!(
        with(2),
        1,
        "both PUBLISHes paired: the copy at 40 is a will"
    );
}

#[test]
fn after_a_link_cut_the_next_attempt_may_fail_on_no_route_within_the_connect_timeout() {
    // native-last-will: willy disconnects into the cut, its next attempt meets the cut.
    let facts = |after_start: f64| Facts {
        cut_at_ms: Some(1000.0),
        disconnected_before_detect: true,
        detect_attempt_started_ms: Some(4000.0),
        client_detect_ms: Some(4000.0 + after_start),
        ..Facts::default()
    };
    let detect = |s: &Scenario, after_start: f64| {
        crate::judge::spec::faults::fault_checks(s, &facts(after_start))
            .into_iter()
            .find(|c| c.id == CheckId::ClientDetect)
            .expect("a client-detect finding")
    };
    let mut link = scenario("native-last-will");
    link.set_cut_layer(crate::cut::CutLayer::Link).unwrap();
    // The kernel's EHOSTUNREACH (~0.3 s here) or rumqttc's own connection timeout.
    assert!(detect(&link, 270.0).holds);
    assert!(detect(&link, 5000.0).holds);
    let late = detect(&link, 5200.0);
    assert!(!late.holds, "{late:?}");
    assert!(
        late.expected.contains("no route to host"),
        "{}",
        late.expected
    );
    // A kernel drop holds the SYN: only the connection timeout, as through the proxy.
    let mut kernel = scenario("native-last-will");
    kernel.set_cut_layer(crate::cut::CutLayer::Kernel).unwrap();
    assert!(!detect(&kernel, 270.0).holds);
    assert!(detect(&kernel, 5000.0).holds);
}

/// Cycle 1 clean; cycle 2's library says "disconnected" but the connection was reset before its
/// DISCONNECT left, and the broker answered the reset with the will; the cut in cycle 3.
fn reset_in_cycle_2() -> Vec<Record> {
    let packet = |ms: f64, conn: u64, name: &str, fields: Fields| {
        rec(
            ms,
            Actor::Wire,
            Event::Packet {
                conn,
                from: Side::Client,
                dropped: false,
                kind: kind(name),
                framing: WS_MASKED,
                size: 23,
                hex: None,
                fields,
            },
        )
    };
    let false_ = || publish_fields("test/connected", 5, None, false);
    // A cycle up to its clean disconnect: started at `t`, connection `conn`, `false` at
    // `t + f`.
    let cycle = |c: u32, t: f64, conn: u64, f: f64| {
        vec![
            rec(t, Actor::Willy, Event::CycleStarted { cycle: c }),
            rec(
                t + 1.0,
                Actor::Proxy,
                Event::ConnectionAccepted { conn, held: false },
            ),
            packet(t + 2.0, conn, "CONNECT", Fields::None),
            packet(t + f, conn, "PUBLISH", false_()),
            msg(t + f + 0.5, "false"),
            rec(t + f + 1.0, Actor::Willy, Event::DisconnectRequested),
            rec(t + f + 1.5, Actor::Willy, Event::Disconnected),
        ]
    };
    let mut r = cycle(1, 0.0, 1, 2000.0);
    r.push(packet(
        2002.0,
        1,
        "DISCONNECT",
        Fields::Disconnect { reason: None },
    ));
    r.extend(cycle(2, 3000.0, 2, 2036.0));
    r.extend([
        rec(
            5038.0,
            Actor::Proxy,
            Event::SideClosed {
                conn: 2,
                side: Side::Client,
                how: "failed: Connection reset by peer (os error 104)".into(),
            },
        ),
        msg(5040.0, "false"),
        rec(6000.0, Actor::Willy, Event::CycleStarted { cycle: 3 }),
        packet(6002.0, 3, "CONNECT", Fields::None),
        msg(6003.0, "true"),
        cut(6004.0, 6002.0),
    ]);
    r.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    r
}

#[test]
fn a_clean_disconnect_the_library_reported_but_the_wire_never_saw_fails_naming_the_cycle() {
    let s = scenario("ws-last-will");
    let f = Facts::from_records(&s, &reset_in_cycle_2());
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    let clean = by_name(&c, "clean-disconnect");
    assert_eq!(clean.status, Status::Fail);
    assert_eq!(
        clean.actual,
        "cycle 2: willy's library reported a clean disconnect at 5038 ms, but no DISCONNECT \
         reached the broker (the connection was reset at 5038 ms); the will at 5040 ms answers \
         that reset"
    );
    // The will check judged only the cycle whose DISCONNECT reached the broker.
    let will = by_name(&c, "no-will-after-disconnect");
    assert!(will.pass, "{will:?}");
    assert!(will.actual.starts_with("cycle 1: "), "{}", will.actual);
    assert!(
        will.actual.contains("cycle 2 not judged"),
        "{}",
        will.actual
    );
}

#[test]
fn every_disconnect_on_the_wire_passes_and_names_the_cycles_it_judged() {
    let s = scenario("ws-last-will");
    let mut records = reset_in_cycle_2();
    records.push(rec(
        5037.8,
        Actor::Wire,
        Event::Packet {
            conn: 2,
            from: Side::Client,
            dropped: false,
            kind: PacketKind::Disconnect,
            framing: WS_MASKED,
            size: 2,
            hex: Some("e000".into()),
            fields: Fields::Disconnect { reason: None },
        },
    ));
    // Without the will that answered the reset: a DISCONNECT removes it.
    records.retain(|r| r.ms != 5040.0);
    records.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &records));
    let clean = by_name(&c, "clean-disconnect");
    assert!(clean.pass, "{clean:?}");
    assert_eq!(
        clean.actual,
        "cycles 1, 2: the DISCONNECT reached the broker"
    );
    let will = by_name(&c, "no-will-after-disconnect");
    assert!(will.actual.starts_with("cycles 1, 2: "), "{}", will.actual);
}

#[test]
fn a_disconnect_asked_for_inside_a_fault_is_not_the_clients_to_answer_for() {
    let s = scenario("ws-last-will");
    let mut records = reset_in_cycle_2();
    // The same cycle 2, but a fault was in effect from before the request.
    records.push(cut(5000.0, 4999.0));
    records.retain(|r| r.ms != 6004.0);
    records.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &records));
    let clean = by_name(&c, "clean-disconnect");
    assert!(clean.pass, "{clean:?}");
    assert_eq!(clean.actual, "cycle 1: the DISCONNECT reached the broker");
}

#[test]
fn every_message_monit_got_is_accounted_for_and_the_will_is_named_with_its_cycle() {
    let s = scenario("ws-last-will");
    let f = Facts::from_records(&s, &reset_in_cycle_2());
    let sources: Vec<(f64, Source)> = f.messages.iter().map(|m| (m.ms, m.source)).collect();
    assert_eq!(
        sources,
        [
            (2000.5, Source::Willy { cycle: 1 }),
            (5036.5, Source::Willy { cycle: 2 }),
            (5040.0, Source::Will { cycle: 2 }),
            // monit's `true` of cycle 3: the tap saw no PUBLISH of it here, but willy's library
            // said nothing either, so only the wire's PUBLISHes count.
            (6003.0, Source::Unaccounted),
        ]
    );
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    let stray = by_name(&c, "unaccounted-message");
    assert!(!stray.pass);
    assert_eq!(
        stray.actual,
        "nothing in the run published test/connected: true at 6003 ms"
    );
}

#[test]
fn a_retained_replay_and_pubbys_message_are_accounted_for() {
    let s = scenario("ws-last-will");
    let records = vec![
        rec(
            10.0,
            Actor::Monit,
            Event::MessageReceived {
                topic: "test/connected".into(),
                payload: "false".into(),
                retain: true,
                qos: 0,
            },
        ),
        rec(
            20.0,
            Actor::Pubby,
            Event::Published {
                topic: "presence".into(),
                payload: "presence1".into(),
            },
        ),
        rec(
            21.0,
            Actor::Monit,
            Event::MessageReceived {
                topic: "presence".into(),
                payload: "presence1".into(),
                retain: false,
                qos: 0,
            },
        ),
    ];
    let f = Facts::from_records(&s, &records);
    let sources: Vec<Source> = f.messages.iter().map(|m| m.source).collect();
    // Before any cycle: a retained `false` is the will payload, so it is the will (of no cycle).
    assert_eq!(sources, [Source::Will { cycle: 0 }, Source::Pubby]);
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    assert!(by_name(&c, "unaccounted-message").pass);
}

/// `left-open-takeover` as rumqttd runs it: cycle 1 clean; cycle 2 publishes `false` and is
/// left open; cycle 3's CONNECT (conn 3) takes it over: the broker closes conn 2 and the will
/// comes at cycle 3's CONNACK; cycle 3 is cut at 6004 and dropped 3001 ms after its last
/// packet, with no will after it.
fn left_open_in_cycle_2() -> Vec<Record> {
    let packet = |ms: f64, conn: u64, from: Side, name: &str, fields: Fields| {
        rec(
            ms,
            Actor::Wire,
            Event::Packet {
                conn,
                from,
                dropped: false,
                kind: kind(name),
                framing: Framing::Tcp,
                size: 23,
                hex: None,
                fields,
            },
        )
    };
    let false_ = || publish_fields("test/connected", 5, None, false);
    let cycle = |c: u32, t: f64, conn: u64| {
        vec![
            rec(t, Actor::Willy, Event::CycleStarted { cycle: c }),
            rec(
                t + 1.0,
                Actor::Proxy,
                Event::ConnectionAccepted { conn, held: false },
            ),
            packet(t + 2.0, conn, Side::Client, "CONNECT", Fields::None),
            packet(t + 3.0, conn, Side::Broker, "CONNACK", Fields::None),
            rec(
                t + 3.5,
                Actor::Willy,
                Event::Connected {
                    session_present: false,
                },
            ),
        ]
    };
    let mut r = cycle(1, 0.0, 1);
    r.extend([
        packet(2000.0, 1, Side::Client, "PUBLISH", false_()),
        msg(2000.5, "false"),
        rec(2001.0, Actor::Willy, Event::DisconnectRequested),
        packet(
            2002.0,
            1,
            Side::Client,
            "DISCONNECT",
            Fields::Disconnect { reason: None },
        ),
        rec(2003.0, Actor::Willy, Event::Disconnected),
    ]);
    r.extend(cycle(2, 3000.0, 2));
    r.extend([
        packet(5000.0, 2, Side::Client, "PUBLISH", false_()),
        msg(5000.5, "false"),
        rec(5001.0, Actor::Willy, Event::LeftOpen),
    ]);
    r.extend(cycle(3, 6000.0, 3));
    r.extend([
        rec(
            6003.2,
            Actor::Proxy,
            Event::SideClosed {
                conn: 2,
                side: Side::Broker,
                how: "closed (EOF)".into(),
            },
        ),
        msg(6003.4, "false"),
        packet(
            6004.0,
            3,
            Side::Client,
            "PUBLISH",
            publish_fields("test/connected", 4, None, false),
        ),
        msg(6004.5, "true"),
        cut(6005.0, 6004.0),
        drop_at(9005.0),
        rec(
            27000.0,
            Actor::Runner,
            Event::RunEnded {
                reason: "observed".into(),
            },
        ),
    ]);
    r.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    r
}

#[test]
fn a_left_open_cycle_is_judged_by_its_takeover_and_its_will_is_its_own() {
    let s = scenario("left-open-takeover");
    let f = Facts::from_records(&s, &left_open_in_cycle_2());
    let t = f.cycles[1].taken_over.as_ref().expect("cycle 2 taken over");
    assert_eq!(
        (t.by_cycle, t.closed_ms, t.will_ms),
        (3, Some(6003.2), Some(6003.4))
    );
    // The will at the takeover is cycle 2's, though it came in cycle 3.
    let will = f.messages.iter().find(|m| m.ms == 6003.4).unwrap();
    assert_eq!(will.source, crate::judge::facts::Source::Will { cycle: 2 });
    let c = evaluate(&s, &Profile::rumqttd(), &f);
    for name in ["takeover-close", "takeover-will", "unaccounted-message"] {
        assert_eq!(by_name(&c, name).status, Status::Pass, "{name}: {c:#?}");
    }
    assert_eq!(
        by_name(&c, "takeover-will").actual,
        "cycle 2: its will at cycle 3's CONNACK (within 0.5 ms), at 6003 ms"
    );
    // Cycle 2 sent no DISCONNECT: the check names only cycle 1, and says why.
    let nw = by_name(&c, "no-will-after-disconnect");
    assert!(nw.pass, "{nw:?}");
    assert_eq!(
        nw.actual,
        "cycle 1: no will after the DISCONNECT that reached the broker (cycle 2 left open by \
         design, no DISCONNECT: its will is takeover-will's)"
    );
    // No clean disconnect was asked of cycle 2: nothing missing.
    assert_eq!(by_name(&c, "clean-disconnect").status, Status::Pass);
    // rumqttd spent the cut connection's will at the takeover: documented.
    assert_eq!(by_name(&c, "will").status, Status::Deviation);
    assert_eq!(by_name(&c, "will-timing").status, Status::Deviation);
    assert_eq!(by_name(&c, "keepalive-drop").status, Status::Pass);
    // The spec, and mosquitto, have no such excuse.
    let spec = evaluate(&s, &Profile::unknown(), &f);
    assert_eq!(by_name(&spec, "will").status, Status::Fail);
    // With the will after the cut, it passes, and rumqttd's profile calls that out of date.
    let mut records = left_open_in_cycle_2();
    records.push(msg(9006.0, "false"));
    records.sort_by(|a, b| a.ms.total_cmp(&b.ms));
    let f = Facts::from_records(&s, &records);
    let m = evaluate(&s, &Profile::mosquitto("2.0.11"), &f);
    for name in [
        "will",
        "will-timing",
        "takeover-will",
        "no-will-after-disconnect",
    ] {
        assert_eq!(by_name(&m, name).status, Status::Pass, "{name}: {m:#?}");
    }
    let r = evaluate(&s, &Profile::rumqttd(), &f);
    assert_eq!(by_name(&r, "will").status, Status::UnexpectedPass);
}

#[test]
fn a_left_open_connection_the_broker_never_closes_fails_takeover_close_and_will() {
    let s = scenario("left-open-takeover");
    let mut records = left_open_in_cycle_2();
    records.retain(|r| r.ms != 6003.2 && r.ms != 6003.4);
    let c = evaluate(&s, &Profile::rumqttd(), &Facts::from_records(&s, &records));
    let close = by_name(&c, "takeover-close");
    assert_eq!(close.status, Status::Fail);
    assert_eq!(
        close.actual,
        "cycle 2: the broker's close never came between cycle 3's start at 6000 ms and 6103 ms"
    );
    assert_eq!(by_name(&c, "takeover-will").status, Status::Fail);
}
