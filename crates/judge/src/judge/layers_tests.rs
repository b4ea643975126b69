//! The layer checks on hand-made record lists: an idle timeout's close, the Server Keep Alive
//! that binds.

use super::*;
use crate::event::{Actor, ConnLastUpstream, Event, Record, Side};
use crate::mqtt::PacketKind;
use crate::profile::Profile;
use crate::tap::{Fields, Framing};
use chrono::Utc;

fn rec(ms: f64, actor: Actor, event: Event) -> Record {
    Record {
        ms,
        t: Utc::now(),
        actor,
        event,
    }
}

fn packet(ms: f64, from: Side, kind: &str, fields: Fields) -> Record {
    rec(
        ms,
        Actor::Wire,
        Event::Packet {
            conn: 1,
            from,
            dropped: false,
            kind: PacketKind::from_name(kind).expect("a packet kind"),
            framing: Framing::Tcp,
            size: 2,
            hex: None,
            fields,
        },
    )
}

fn swallowed(mut r: Record) -> Record {
    if let Event::Packet { dropped, .. } = &mut r.event {
        *dropped = true;
    }
    r
}

fn applied(ms: f64, fault: &str) -> Record {
    rec(
        ms,
        Actor::Proxy,
        Event::FaultApplied {
            fault: fault.into(),
            n: 1,
            last_upstream: vec![ConnLastUpstream {
                conn: 1,
                ms: Some(ms),
            }],
        },
    )
}

fn will(ms: f64) -> Record {
    rec(
        ms,
        Actor::Monit,
        Event::MessageReceived {
            topic: "test/connected".into(),
            payload: "false".into(),
            retain: false,
            qos: 0,
        },
    )
}

fn status(checks: &[Check], id: CheckId) -> Status {
    checks
        .iter()
        .find(|c| c.name == id)
        .unwrap_or_else(|| panic!("no {id} in {checks:#?}"))
        .status
}

#[test]
fn an_idle_close_two_seconds_after_the_last_byte_of_a_well_behaved_willy_passes_with_its_figures() {
    let s = crate::scenario::load("lb-idle-timeout").unwrap();
    let cut = rec(
        2030.0,
        Actor::Proxy,
        Event::ConnectionCut {
            conn: 1,
            fault: crate::event::IDLE_TIMEOUT_FAULT.into(),
            how: "no bytes either way for 2000 ms: FIN to willy and to the broker".into(),
        },
    );
    let records = vec![
        packet(10.0, Side::Broker, "CONNACK", Fields::None),
        applied(12.0, "idle-timeout 2000 ms fin"),
        packet(20.0, Side::Client, "PUBLISH", Fields::None),
        cut,
        will(2032.0),
    ];
    let f = Facts::from_records(&s, &records);
    let checks = evaluate(&s, &Profile::rumqttd(), &f);
    assert_eq!(status(&checks, CheckId::IdleTimeoutCut), Status::Pass);
    assert_eq!(status(&checks, CheckId::WillAfterIdleCut), Status::Pass);
    let c = checks
        .iter()
        .find(|c| c.name == CheckId::IdleTimeoutCut)
        .unwrap();
    assert!(
        c.actual.contains("2.01 s after the last packet"),
        "{}",
        c.actual
    );

    // Closed a second late: the intermediary did not do what it was set to.
    let mut late = records.clone();
    late[3].ms = 3030.0;
    late[4].ms = 3032.0;
    let f = Facts::from_records(&s, &late);
    let checks = evaluate(&s, &Profile::rumqttd(), &f);
    assert_eq!(status(&checks, CheckId::IdleTimeoutCut), Status::Fail);
}

#[test]
fn a_server_keep_alive_in_the_connack_is_the_keepalive_every_check_measures_against() {
    let s = crate::scenario::load("v5-server-keepalive").unwrap();
    let connack = Fields::Connack {
        session_present: false,
        code: 0,
        server_keepalive_s: Some(10),
    };
    let records = vec![
        packet(10.0, Side::Broker, "CONNACK", connack),
        packet(20.0, Side::Client, "PUBLISH", Fields::None),
        applied(60.0, "blackhole"),
        // willy's first PINGREQ, 10 s after the CONNACK, into the cut.
        swallowed(packet(10_012.0, Side::Client, "PINGREQ", Fields::None)),
        rec(
            15_030.0,
            Actor::Proxy,
            Event::SideClosed {
                conn: 1,
                side: Side::Broker,
                how: "closed (EOF)".into(),
            },
        ),
        will(15_032.0),
    ];
    let f = Facts::from_records(&s, &records);
    assert_eq!(f.layers.server_keepalive_s, Some(10));
    let checks = evaluate(&s, &Profile::mosquitto("2.0.11"), &f);
    assert_eq!(status(&checks, CheckId::ServerKeepalive), Status::Pass);
    // 15.01 s after the last packet: 1.5 x the server's 10 s, not the client's 15 s.
    assert_eq!(status(&checks, CheckId::KeepaliveDrop), Status::Pass);
    let kd = checks
        .iter()
        .find(|c| c.name == CheckId::KeepaliveDrop)
        .unwrap();
    assert!(kd.expected.contains("1.5 x 10 s"), "{}", kd.expected);
}
