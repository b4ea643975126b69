//! The scenario format on hand-written files and the built-in scenarios.

use super::*;

const GOOD: &str = r#"
description = "WebSocket willy with a last will; network cut in cycle 3"
transport = "ws"
protocol = "3.1.1"
keepalive_s = 2
cycles = 4
connected_for_ms = 2000
idle_ms = 1000
reconnect_ms = 1000
[will]
topic = "test/connected"
payload = "false"
[[faults]]
kind = "blackhole"
cycle = 3
trigger = "after-true"
[expect]
will = true
"#;

fn parse_err(text: &str) -> ScenarioError {
    parse("t", "t.toml", text).unwrap_err()
}

#[test]
fn the_issue_example_parses() {
    let s = parse("ws-last-will", "x.toml", GOOD).unwrap();
    assert_eq!(s.transport, Transport::Ws);
    assert_eq!(s.keepalive, Duration::from_secs(2));
    assert_eq!(s.cycles, 4);
    assert_eq!(s.faults[0].cycle, 3);
    assert_eq!(s.faults[0].trigger, Trigger::AfterTrue);
    assert_eq!(s.faults[0].new_connections, NewConnections::Hang);
    assert!(s.expect.will);
    assert_eq!(s.connect_timeout, Duration::from_secs(5));
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = parse_err(&GOOD.replace("idle_ms = 1000", "idle_ms = 1000\nidle_s = 1"));
    let msg = e.to_string();
    assert!(msg.starts_with("t.toml:9:"), "{msg}");
    assert!(msg.contains("idle_s"), "{msg}");
}

#[test]
fn cut_cycle_beyond_cycles_is_refused_with_its_line() {
    let e = parse_err(&GOOD.replace("cycle = 3", "cycle = 5"));
    assert_eq!(e.line, Some(15));
    assert_eq!(e.key.as_deref(), Some("faults.cycle"));
    assert!(e.message.contains("beyond"), "{e}");
}

#[test]
fn keepalive_zero_is_refused() {
    let e = parse_err(&GOOD.replace("keepalive_s = 2", "keepalive_s = 0"));
    assert_eq!(e.key.as_deref(), Some("keepalive_s"));
    assert_eq!(e.line, Some(5));
    assert!(e.to_string().contains("expected 1 to 65535"), "{e}");
}

#[test]
fn unknown_transport_lists_the_choices() {
    let e = parse_err(&GOOD.replace("\"ws\"", "\"quic\""));
    assert_eq!(e.key.as_deref(), Some("transport"));
    assert!(e.message.contains("tcp, ws"), "{e}");
}

#[test]
fn unknown_trigger_lists_the_choices() {
    let e = parse_err(&GOOD.replace("after-true", "whenever"));
    assert!(e.message.contains("after-true"), "{e}");
    assert_eq!(e.line, Some(16));
}

#[test]
fn missing_key_is_named() {
    // The timing keys have defaults (raw.rs TIMING); a will's payload has none.
    let e = parse_err(&GOOD.replace("payload = \"false\"\n", ""));
    assert!(e.message.contains("payload"), "{e}");
    let s = parse("t", "t.toml", &GOOD.replace("cycles = 4\n", "")).unwrap();
    assert_eq!(s.cycles, 4);
}

#[test]
fn wildcard_will_topic_is_refused() {
    let e = parse_err(&GOOD.replace("topic = \"test/connected\"", "topic = \"test/#\""));
    assert_eq!(e.key.as_deref(), Some("will.topic"));
}

#[test]
fn no_will_means_no_will_expected_by_default() {
    let text = GOOD
        .replace(
            "[will]\ntopic = \"test/connected\"\npayload = \"false\"\n",
            "",
        )
        .replace("will = true", "");
    let s = parse("t", "t.toml", &text).unwrap();
    assert!(s.will.is_none());
    assert!(!s.expect.will);
}

#[test]
fn seed_timing_overrides() {
    let mut s = parse("t", "t.toml", GOOD).unwrap();
    s.apply(Overrides {
        seed_timing: true,
        ..Overrides::default()
    });
    assert_eq!(s.keepalive, Duration::from_secs(60));
    assert_eq!(s.connected_for, Duration::from_secs(20));
    assert_eq!(s.idle, Duration::from_secs(10));
}

#[test]
fn every_builtin_scenario_parses() {
    assert!(BUILTIN.len() >= 4);
    for (name, _) in BUILTIN {
        load(name).unwrap_or_else(|e| panic!("{e}"));
    }
}

const BUSY: &str = "\n[publisher]\ntopic = \"busy/ticks\"\nqos = 1\nevery_ms = 300\n[subscribe]\ntopic = \"busy/+\"\nqos = 1\n";

#[test]
fn publisher_and_subscribe_parse() {
    let s = parse(
        "t",
        "t.toml",
        &GOOD.replace("[[faults]]", &format!("{BUSY}[[faults]]")),
    )
    .unwrap();
    let p = s.publisher.unwrap();
    assert_eq!(p.topic, "busy/ticks");
    assert_eq!(p.qos, 1);
    assert_eq!(p.every, Duration::from_millis(300));
    assert_eq!(p.from, PublishFrom::Start);
    assert_eq!(p.count, None);
    assert_eq!(p.limit(), Publisher::MAX_COUNT);
    let sub = s.subscribe.unwrap();
    assert_eq!((sub.filter.as_str(), sub.qos), ("busy/+", 1));
}

fn busy_err(from: &str, to: &str) -> ScenarioError {
    parse_err(&GOOD.replace(
        "[[faults]]",
        &format!("{}[[faults]]", BUSY.replace(from, to)),
    ))
}

#[test]
fn publisher_errors_name_line_and_key() {
    let e = busy_err("every_ms = 300", "every_ms = 0");
    assert_eq!(e.key.as_deref(), Some("publisher.every_ms"));
    assert_eq!(e.line, Some(17));
    assert!(
        e.to_string()
            .starts_with("t.toml:17: key `publisher.every_ms`"),
        "{e}"
    );
    let e = busy_err("qos = 1\nevery", "qos = 3\nevery");
    assert_eq!(e.key.as_deref(), Some("publisher.qos"));
    let e = busy_err("\"busy/ticks\"", "\"busy/#\"");
    assert_eq!(e.key.as_deref(), Some("publisher.topic"));
    let e = busy_err("every_ms = 300", "every_ms = 300\nfrom = \"later\"");
    assert_eq!(e.key.as_deref(), Some("publisher.from"));
    assert!(e.message.contains("start, cut"), "{e}");
    let e = busy_err("every_ms = 300", "every_ms = 300\ncount = 0");
    assert_eq!(e.key.as_deref(), Some("publisher.count"));
    let e = busy_err("every_ms = 300", "every_ms = 300\nevery_s = 1");
    assert!(e.message.contains("every_s"), "{e}");
    assert_eq!(e.line, Some(18));
}

#[test]
fn subscribe_errors_name_line_and_key() {
    let e = busy_err("\"busy/+\"", "\"busy/#/x\"");
    assert_eq!(e.key.as_deref(), Some("subscribe.topic"));
    assert_eq!(e.line, Some(19));
    let e = busy_err("qos = 1\n", "qos = 1\nqos = 7\n");
    assert!(e.line.is_some(), "{e}");
    let e = parse_err(
        &GOOD
            .replace("\"ws\"", "\"tcp\"")
            .replace("\"3.1.1\"", "\"5\"")
            .replace("[[faults]]", &format!("{BUSY}[[faults]]")),
    );
    assert_eq!(e.key.as_deref(), Some("subscribe.topic"));
    assert!(e.message.contains("3.1.1"), "{e}");
}

#[test]
fn clean_session_is_named_as_each_protocol_names_it() {
    let s = parse(
        "t",
        "t.toml",
        &GOOD.replace("cycles = 4", "cycles = 4\nclean_session = false"),
    )
    .unwrap();
    assert!(!s.clean_session);
    assert!(parse("t", "t.toml", GOOD).unwrap().clean_session);
    let e = parse_err(&GOOD.replace("cycles = 4", "cycles = 4\nclean_start = false"));
    assert_eq!(e.key.as_deref(), Some("clean_start"));
    assert_eq!(e.line, Some(7));
    assert!(e.message.contains("clean_session"), "{e}");
    let v5 = GOOD
        .replace("\"ws\"", "\"tcp\"")
        .replace("\"3.1.1\"", "\"5\"");
    let e = parse_err(&v5.replace("cycles = 4", "cycles = 4\nclean_session = false"));
    assert_eq!(e.key.as_deref(), Some("clean_session"));
    let s = parse(
        "t",
        "t.toml",
        &v5.replace("cycles = 4", "cycles = 4\nclean_start = false"),
    )
    .unwrap();
    assert!(!s.clean_session);
}

#[test]
fn a_takeover_needs_a_fault_to_follow() {
    let t = GOOD.replace("[[faults]]", "[takeover]\nafter_ms = 500\n[[faults]]");
    let s = parse("t", "t.toml", &t).unwrap();
    assert_eq!(s.takeover.unwrap().after, Duration::from_millis(500));
    let no_fault =
        GOOD.split("[[faults]]").next().unwrap().to_string() + "[takeover]\nafter_ms = 500\n";
    let e = parse_err(&no_fault);
    assert_eq!(e.key.as_deref(), Some("takeover.after_ms"));
    assert_eq!(e.line, Some(14));
    assert!(e.message.contains("[[faults]]"), "{e}");
    let e = parse_err(&t.replace("after_ms = 500", "after_ms = -1"));
    assert_eq!(e.key.as_deref(), Some("takeover.after_ms"));
    let e = parse_err(&t.replace("after_ms = 500", "after = 500"));
    assert!(e.message.contains("after"), "{e}");
}

#[test]
fn a_v311_monit_and_a_will_content_type_need_a_v5_willy() {
    let v5 = GOOD
        .replace("\"ws\"", "\"tcp\"")
        .replace("\"3.1.1\"", "\"5\"");
    let mixed = v5
        .replace("cycles = 4", "cycles = 4\nmonit_protocol = \"3.1.1\"")
        .replace(
            "payload = \"false\"",
            "payload = \"false\"\ncontent_type = \"text/plain\"",
        );
    let s = parse("t", "t.toml", &mixed).unwrap();
    assert_eq!(s.monit_protocol(), Protocol::V311);
    assert_eq!(s.protocol, Protocol::V5);
    assert_eq!(s.will.unwrap().content_type.as_deref(), Some("text/plain"));
    // Unset, or the same as willy's: monit speaks willy's protocol.
    assert_eq!(
        parse("t", "t.toml", &v5).unwrap().monit_protocol(),
        Protocol::V5
    );
    let same = v5.replace("cycles = 4", "cycles = 4\nmonit_protocol = \"5\"");
    assert_eq!(
        parse("t", "t.toml", &same).unwrap().monit_protocol(),
        Protocol::V5
    );
    // On a 3.1.1 willy both are refused with their line.
    let e = parse_err(&GOOD.replace("cycles = 4", "cycles = 4\nmonit_protocol = \"3.1.1\""));
    assert_eq!(e.key.as_deref(), Some("monit_protocol"));
    assert_eq!(e.line, Some(7));
    assert!(e.message.contains("protocol = \"5\""), "{e}");
    let e = parse_err(&GOOD.replace(
        "payload = \"false\"",
        "payload = \"false\"\ncontent_type = \"text/plain\"",
    ));
    assert_eq!(e.key.as_deref(), Some("will.content_type"));
    assert_eq!(e.line, Some(13));
    let e = parse_err(&v5.replace("cycles = 4", "cycles = 4\nmonit_protocol = \"3\""));
    assert_eq!(e.key.as_deref(), Some("monit_protocol"));
    assert!(
        e.to_string().starts_with("t.toml:7: key `monit_protocol`"),
        "{e}"
    );
    assert!(e.message.contains("\"3.1.1\" or \"5\""), "{e}");
}

#[test]
fn a_flaky_monit_needs_both_times_a_fault_and_mqtt_3_1_1() {
    const MONIT: &str = "[monit]\nqos = 1\nclean_session = false\naway_after_ms = 1000\nback_after_drop_ms = 2000\n";
    let with = |t: &str| GOOD.replace("[[faults]]", &format!("{t}[[faults]]"));
    let s = parse("t", "t.toml", &with(MONIT)).unwrap();
    assert_eq!((s.monit.qos, s.monit.clean_session), (1, false));
    let fl = s.monit.flaky.unwrap();
    assert_eq!(fl.away_after, Duration::from_millis(1000));
    assert_eq!(fl.back_after_drop, Duration::from_millis(2000));
    assert_eq!(
        parse("t", "t.toml", GOOD).unwrap().monit,
        MonitSetup::default()
    );
    let e = parse_err(&with(&MONIT.replace("back_after_drop_ms = 2000\n", "")));
    assert_eq!(e.key.as_deref(), Some("monit.back_after_drop_ms"));
    assert_eq!(e.line, Some(16));
    let e = parse_err(&with(&MONIT.replace("qos = 1", "qos = 3")));
    assert!(
        e.to_string().starts_with("t.toml:14: key `monit.qos`"),
        "{e}"
    );
    let e = parse_err(&with(&MONIT.replace("away_after_ms", "away_ms")));
    assert!(e.message.contains("away_ms"), "{e}");
    let no_fault = GOOD.split("[[faults]]").next().unwrap().to_string() + MONIT;
    let e = parse_err(&no_fault);
    assert_eq!(e.key.as_deref(), Some("monit.away_after_ms"));
    assert!(e.message.contains("[[faults]]"), "{e}");
    let v5 = with(MONIT)
        .replace("\"ws\"", "\"tcp\"")
        .replace("\"3.1.1\"", "\"5\"");
    let e = parse_err(&v5);
    assert_eq!(e.key.as_deref(), Some("monit.qos"));
    assert!(e.message.contains("3.1.1"), "{e}");
}

#[test]
fn unknown_name_suggests_the_closest() {
    let e = load("ws-last-wil").unwrap_err();
    assert!(e.message.contains("did you mean `ws-last-will`"), "{e}");
}

#[test]
fn tap_publishes_is_each_unless_the_file_says_runs() {
    assert_eq!(
        parse("t", "t.toml", GOOD).unwrap().publishes,
        PublishRecords::Each
    );
    let runs = format!("{GOOD}\n[tap]\npublishes = \"runs\"\n");
    assert_eq!(
        parse("t", "t.toml", &runs).unwrap().publishes,
        PublishRecords::Runs
    );
    let e = parse_err(&format!("{GOOD}\n[tap]\npublishes = \"some\"\n"));
    assert_eq!(e.key.as_deref(), Some("tap.publishes"));
    assert!(e.message.contains("each, runs"), "{}", e.message);
}

/// GOOD with `[willy] leave_open = LIST` on line 20.
fn left_open(list: &str) -> String {
    format!("{GOOD}[willy]\nleave_open = {list}\n")
}

#[test]
fn a_left_open_cycle_parses_sorted_and_reads_back_from_a_journal() {
    let s = parse("t", "t.toml", &left_open("[2, 1]")).unwrap();
    assert_eq!(s.willy.leave_open, vec![1, 2]);
    assert!(s.willy.leaves_open(2) && !s.willy.leaves_open(3));
    assert_eq!(check_recorded(&s), Ok(()));
    let builtin = load("left-open-takeover").unwrap();
    assert_eq!(builtin.willy.leave_open, vec![2]);
    assert!(builtin.expect.will);
}

#[test]
fn a_left_open_cycle_is_refused_where_it_cannot_be_judged_with_line_and_key() {
    let err = |text: &str| {
        let e = parse_err(text);
        assert_eq!(e.key.as_deref(), Some("willy.leave_open"), "{e}");
        assert_eq!(e.line, Some(20), "{e}");
        e.message
    };
    // No next cycle to take it over.
    assert!(err(&left_open("[4]")).contains("no next cycle"));
    assert!(err(&left_open("[0]")).contains("out of range"));
    assert!(err(&left_open("[1, 1]")).contains("named twice"));
    assert!(err(&left_open("[]")).contains("empty list"));
    // At or after the cut (cycle 3): its takeover's will would be taken for the cut's.
    assert!(err(&left_open("[3]")).contains("before the first fault"));
    // The twin, a chosen v5 DISCONNECT, a driver.
    let twin = left_open("[2]") + "[takeover]\nafter_ms = 500\n";
    assert!(err(&twin).contains("[takeover]"));
    let driver = left_open("[2]") + "client = \"mqttjs\"\n";
    assert!(err(&driver).contains("driver protocol"));
    // (The extra line moves [willy] down one.)
    let v5 = left_open("[2]").replace(
        "protocol = \"3.1.1\"",
        "protocol = \"5\"\ndisconnect_reason = 0",
    );
    let e = parse_err(&v5);
    assert_eq!(e.key.as_deref(), Some("willy.leave_open"), "{e}");
    assert!(e.message.contains("disconnect_reason"), "{e}");
}
