use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One RFC 6455 frame.
fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= 0xffff => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

const UPGRADE_REQ: &[u8] =
    b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
const UPGRADE_RESP: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

fn decode_with(dir: Direction, level: &Arc<AtomicU8>, chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut d = Decoder::new(dir, level.clone());
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out);
    }
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    assert_eq!(d.offset(), total as u64);
    out
}

fn decode(dir: Direction, bytes: &[u8]) -> Vec<Decoded> {
    decode_with(dir, &Arc::new(AtomicU8::new(0)), &[bytes])
}

/// Decodes whole, then split once at every position, then a byte at a time; all must agree.
fn decode_every_split(dir: Direction, level: u8, bytes: &[u8]) -> Vec<Decoded> {
    let whole = decode_with(dir, &Arc::new(AtomicU8::new(level)), &[bytes]);
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        let split = decode_with(dir, &Arc::new(AtomicU8::new(level)), &[a, b]);
        assert_same(&split, &whole, &format!("split at {i}"));
    }
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    let bytewise = decode_with(dir, &Arc::new(AtomicU8::new(level)), &bytewise);
    assert_same(&bytewise, &whole, "bytewise");
    whole
}

/// Equal, except that an undecodable's excerpt can only show the bytes seen when it was found,
/// so with smaller chunks it may be a prefix of the one seen whole.
fn assert_same(got: &[Decoded], want: &[Decoded], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}");
    for (g, w) in got.iter().zip(want) {
        match (g, w) {
            (
                Decoded::Undecodable {
                    offset: go,
                    hex: gh,
                    reason: gr,
                },
                Decoded::Undecodable {
                    offset: wo,
                    hex: wh,
                    reason: wr,
                },
            ) => {
                assert_eq!((go, gr), (wo, wr), "{what}");
                assert!(wh.starts_with(gh.as_str()), "{what}: {gh} vs {wh}");
            }
            _ => assert_eq!(g, w, "{what}"),
        }
    }
}

fn packet(d: &Decoded) -> &PacketInfo {
    match d {
        Decoded::Packet(p) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

#[test]
fn ws_pingreq_masked_and_pingresp_unmasked() {
    let mut up = UPGRADE_REQ.to_vec();
    up.extend(frame(
        true,
        2,
        Some([0x12, 0x34, 0x56, 0x78]),
        &unhex("c000"),
    ));
    let out = decode_every_split(Direction::Upstream, 0, &up);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        Decoded::HttpUpgrade {
            line: "GET /mqtt HTTP/1.1".into()
        }
    );
    let p = packet(&out[1]);
    assert_eq!(p.kind, PacketKind::Pingreq);
    assert_eq!(p.hex.as_deref(), Some("c000"));
    assert_eq!(p.size, 2);
    assert_eq!(
        p.framing,
        Framing::Ws {
            opcode: WsOpcode::Binary,
            masked: true
        }
    );

    let mut down = UPGRADE_RESP.to_vec();
    down.extend(unhex("8202d000"));
    let out = decode_every_split(Direction::Downstream, 0, &down);
    assert_eq!(
        out[0],
        Decoded::HttpUpgrade {
            line: "HTTP/1.1 101 Switching Protocols".into()
        }
    );
    let p = packet(&out[1]);
    assert_eq!(p.kind, PacketKind::Pingresp);
    assert_eq!(p.hex.as_deref(), Some("d000"));
    assert_eq!(
        p.framing,
        Framing::Ws {
            opcode: WsOpcode::Binary,
            masked: false
        }
    );
}

#[test]
fn connect_v311_sets_level() {
    let level = Arc::new(AtomicU8::new(0));
    let bytes = unhex("100c00044d515454040200050000");
    let out = decode_with(Direction::Upstream, &level, &[&bytes]);
    assert_eq!(level.load(Ordering::Relaxed), 4);
    let p = packet(&out[0]);
    assert_eq!(p.kind, PacketKind::Connect);
    assert_eq!(p.size, 14);
    assert_eq!(p.hex.as_deref(), Some("100c00044d515454040200050000"));
    assert_eq!(
        p.fields,
        Fields::Connect {
            client_id: String::new(),
            protocol_level: 4,
            keepalive_s: 5,
            clean: true,
            will: None,
            session_expiry_s: None,
        }
    );
    decode_every_split(Direction::Upstream, 0, &bytes);
}

#[test]
fn connect_v5_with_session_expiry_and_will_delay() {
    // CONNECT v5, flags: clean + will qos1 retain + username; keepalive 30;
    // props: session expiry 120; client id "c1"; will props: will delay 7; will topic "w/t",
    // will payload "bye"; username "u".
    let body = unhex(
        "0004 4d515454 05 ae 001e  05 11 00000078  0002 6331  05 18 00000007  0003 772f74  0003 627965  0001 75",
    );
    let mut bytes = vec![0x10, body.len() as u8];
    bytes.extend(&body);
    let level = Arc::new(AtomicU8::new(0));
    let out = decode_with(Direction::Upstream, &level, &[&bytes]);
    assert_eq!(level.load(Ordering::Relaxed), 5);
    assert_eq!(
        packet(&out[0]).fields,
        Fields::Connect {
            client_id: "c1".into(),
            protocol_level: 5,
            keepalive_s: 30,
            clean: true,
            will: Some(WillInfo {
                topic: "w/t".into(),
                qos: 1,
                retain: true,
                payload_len: 3,
                delay_s: Some(7),
            }),
            session_expiry_s: Some(120),
        }
    );
    decode_every_split(Direction::Upstream, 0, &bytes);
}

#[test]
fn connect_v3_mqisdp() {
    let body = unhex("0006 4d5149736470 03 02 003c 0003 616263");
    let mut bytes = vec![0x10, body.len() as u8];
    bytes.extend(&body);
    let out = decode(Direction::Upstream, &bytes);
    match &packet(&out[0]).fields {
        Fields::Connect {
            client_id,
            protocol_level,
            keepalive_s,
            ..
        } => {
            assert_eq!(client_id, "abc");
            assert_eq!(*protocol_level, 3);
            assert_eq!(*keepalive_s, 60);
        }
        f => panic!("{f:?}"),
    }
}

#[test]
fn disconnect_forms() {
    let level = Arc::new(AtomicU8::new(5));
    for (hex, reason) in [
        ("e000", None),
        ("e00104", Some(4)),
        ("e0020400", Some(4)),
        ("e0088e0005 1f0002 6869", Some(0x8e)),
    ] {
        let out = decode_with(Direction::Downstream, &level, &[&unhex(hex)]);
        assert_eq!(out.len(), 1, "{hex}");
        let p = packet(&out[0]);
        assert_eq!(p.kind, PacketKind::Disconnect);
        assert_eq!(p.fields, Fields::Disconnect { reason }, "{hex}");
    }
    let out = decode(Direction::Upstream, &unhex("e000"));
    assert_eq!(packet(&out[0]).hex.as_deref(), Some("e000"));
}

#[test]
fn a_v5_connack_shows_its_server_keep_alive() {
    // mosquitto 2.0.11 with max_keepalive 10 to a client that asked for 15: Receive Maximum,
    // Server Keep Alive 10, Topic Alias Maximum.
    let level = Arc::new(AtomicU8::new(5));
    let bytes = unhex("200c00000922000a13000a210014");
    let out = decode_with(Direction::Downstream, &level, &[&bytes]);
    assert_eq!(
        packet(&out[0]).fields,
        Fields::Connack {
            session_present: false,
            code: 0,
            server_keepalive_s: Some(10),
        }
    );
}

#[test]
fn connack_infers_level() {
    let level = Arc::new(AtomicU8::new(0));
    let out = decode_with(Direction::Downstream, &level, &[&unhex("20020100")]);
    assert_eq!(
        packet(&out[0]).fields,
        Fields::Connack {
            session_present: true,
            code: 0,
            server_keepalive_s: None,
        }
    );
    assert_eq!(level.load(Ordering::Relaxed), 4);

    // v5 CONNACK with a Receive Maximum property, then a v5 PUBLISH that only parses right
    // with properties.
    let level = Arc::new(AtomicU8::new(0));
    let bytes = unhex("2006 00 00 03 21 000a   3009 0003 612f62 00 68 6921");
    let out = decode_with(Direction::Downstream, &level, &[&bytes]);
    assert_eq!(level.load(Ordering::Relaxed), 5);
    assert_eq!(
        packet(&out[1]).fields,
        Fields::Publish {
            topic: "a/b".into(),
            qos: 0,
            retain: false,
            dup: false,
            packet_id: None,
            payload_len: 3
        }
    );

    // What CONNECT said wins over inference.
    let level = Arc::new(AtomicU8::new(5));
    decode_with(Direction::Downstream, &level, &[&unhex("20020000")]);
    assert_eq!(level.load(Ordering::Relaxed), 5);
}

#[test]
fn publish_subscribe_acks() {
    let bytes = unhex(
        "3b09 0003 612f62 0007 6869    \
         4002 0007 \
         820e 0009 0003 612f62 01 0003 632f23 02 \
         9005 0009 01 02 80 \
         a207 000a 0003 612f62 \
         b002 000a \
         6202 0007",
    );
    let out = decode_every_split(Direction::Upstream, 4, &bytes);
    let fields: Vec<Fields> = out.iter().map(|d| packet(d).fields.clone()).collect();
    assert_eq!(
        fields,
        vec![
            Fields::Publish {
                topic: "a/b".into(),
                qos: 1,
                retain: true,
                dup: true,
                packet_id: Some(7),
                payload_len: 2
            },
            Fields::Ack { packet_id: 7 },
            Fields::Subscribe {
                packet_id: 9,
                filters: vec![("a/b".into(), 1), ("c/#".into(), 2)]
            },
            Fields::Suback {
                packet_id: 9,
                codes: vec![1, 2, 0x80]
            },
            Fields::Unsubscribe {
                packet_id: 10,
                filters: vec!["a/b".into()]
            },
            Fields::Ack { packet_id: 10 },
            Fields::Ack { packet_id: 7 },
        ]
    );
    assert_eq!(packet(&out[6]).kind, PacketKind::Pubrel);
}

#[test]
fn fragmented_message_with_interleaved_ping() {
    // A PUBLISH split over three frames (binary, continuation, continuation), a ping between
    // the first two, then a second packet starting in the last fragment.
    let publish = unhex("300a 0003 612f62 6869 6a6b 6c");
    let mut stream = publish.clone();
    stream.extend(unhex("c000"));
    let mut bytes = UPGRADE_REQ.to_vec();
    let k = Some([1, 2, 3, 4]);
    bytes.extend(frame(false, 2, k, &stream[..3]));
    bytes.extend(frame(true, 9, k, b"hi"));
    bytes.extend(frame(false, 0, k, &stream[3..9]));
    bytes.extend(frame(true, 0, Some([9, 8, 7, 6]), &stream[9..]));
    let out = decode_every_split(Direction::Upstream, 4, &bytes);
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(
        out[1],
        Decoded::WsControl {
            opcode: WsOpcode::Ping,
            masked: true,
            close_code: None,
            payload_len: 2
        }
    );
    let p = packet(&out[2]);
    assert_eq!(p.kind, PacketKind::Publish);
    assert_eq!(p.size, 12);
    assert_eq!(
        p.framing,
        Framing::Ws {
            opcode: WsOpcode::Binary,
            masked: true
        }
    );
    let p = packet(&out[3]);
    assert_eq!(p.kind, PacketKind::Pingreq);
    assert_eq!(
        p.framing,
        Framing::Ws {
            opcode: WsOpcode::Continuation,
            masked: true
        }
    );
}

#[test]
fn several_packets_in_one_frame_and_extended_lengths() {
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend(unhex("c000"));
    }
    // 200 bytes: 16-bit length form. Then a 70000-byte frame: 64-bit length form.
    let mut bytes = UPGRADE_RESP.to_vec();
    bytes.extend(frame(true, 2, None, &stream));
    let mut publish = vec![0x30];
    let remaining = 2 + 3 + 70_000 - 6;
    let mut r = remaining;
    loop {
        let b = (r & 0x7f) as u8;
        r >>= 7;
        if r == 0 {
            publish.push(b);
            break;
        }
        publish.push(b | 0x80);
    }
    publish.extend(unhex("0003 612f62"));
    publish.resize(publish.len() + 70_000 - 6, 0xab);
    assert!(publish.len() > 65_535);
    bytes.extend(frame(true, 2, None, &publish));
    let out = decode(Direction::Downstream, &bytes);
    assert_eq!(out.len(), 102);
    match &packet(&out[101]).fields {
        Fields::Publish { payload_len, .. } => assert_eq!(*payload_len, 70_000 - 6),
        f => panic!("{f:?}"),
    }
    // Same stream fed in odd-sized chunks.
    let chunks: Vec<&[u8]> = bytes.chunks(777).collect();
    assert_eq!(
        decode_with(Direction::Downstream, &Arc::new(AtomicU8::new(0)), &chunks),
        out
    );
}

#[test]
fn close_frame_with_code() {
    let mut bytes = UPGRADE_RESP.to_vec();
    bytes.extend(frame(true, 8, None, &unhex("03e8 6279 65")));
    bytes.extend(frame(true, 10, None, b""));
    let out = decode_every_split(Direction::Downstream, 4, &bytes);
    assert_eq!(
        out[1],
        Decoded::WsControl {
            opcode: WsOpcode::Close,
            masked: false,
            close_code: Some(1000),
            payload_len: 5
        }
    );
    assert_eq!(
        out[2],
        Decoded::WsControl {
            opcode: WsOpcode::Pong,
            masked: false,
            close_code: None,
            payload_len: 0
        }
    );

    let mut bytes = UPGRADE_REQ.to_vec();
    bytes.extend(frame(
        true,
        8,
        Some([0xde, 0xad, 0xbe, 0xef]),
        &unhex("03e9"),
    ));
    bytes.extend(frame(true, 8, Some([0xde, 0xad, 0xbe, 0xef]), b""));
    let out = decode_every_split(Direction::Upstream, 4, &bytes);
    assert_eq!(
        out[1],
        Decoded::WsControl {
            opcode: WsOpcode::Close,
            masked: true,
            close_code: Some(1001),
            payload_len: 2
        }
    );
    assert_eq!(
        out[2],
        Decoded::WsControl {
            opcode: WsOpcode::Close,
            masked: true,
            close_code: None,
            payload_len: 0
        }
    );
}

fn undecodable(out: &[Decoded]) -> (u64, &str, &str) {
    let bad: Vec<_> = out
        .iter()
        .filter_map(|d| match d {
            Decoded::Undecodable {
                offset,
                hex,
                reason,
            } => Some((*offset, hex.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(bad.len(), 1, "{out:?}");
    assert!(matches!(out.last(), Some(Decoded::Undecodable { .. })));
    bad[0]
}

#[test]
fn garbage_is_one_undecodable() {
    let mut bytes = unhex("c000 d000");
    bytes.extend(b"\x00garbage that goes on and on and on and on");
    let level = Arc::new(AtomicU8::new(0));
    let mut d = Decoder::new(Direction::Upstream, level);
    let mut out = Vec::new();
    d.feed(&bytes, &mut out);
    d.feed(b"more garbage", &mut out);
    d.feed(&unhex("c000"), &mut out);
    assert_eq!(out.len(), 3);
    let (offset, hex, reason) = undecodable(&out);
    assert_eq!(offset, 4);
    assert_eq!(hex.len(), 64);
    assert!(hex.starts_with("0067"));
    assert_eq!(reason, "reserved packet type 0");
    assert!(d.is_dead());
    assert_eq!(d.offset(), bytes.len() as u64 + 12 + 2);
}

#[test]
fn malformed_cases() {
    let cases: &[(&str, Direction, Vec<u8>, &str)] = &[
        (
            "5-byte remaining length",
            Direction::Upstream,
            unhex("30ffffffff01"),
            "remaining length longer than 4 bytes",
        ),
        (
            "string past end",
            Direction::Upstream,
            unhex("3005 0009 612f62"),
            "malformed publish (length past end)",
        ),
        (
            "too large",
            Direction::Downstream,
            unhex("30ffff7f"),
            "packet too large (2097151 bytes remaining)",
        ),
        (
            "bad flags",
            Direction::Upstream,
            unhex("c100"),
            "invalid fixed header flags 0xc1",
        ),
        (
            "qos 3",
            Direction::Upstream,
            unhex("3600"),
            "invalid fixed header flags 0x36",
        ),
        (
            "bad protocol name",
            Direction::Upstream,
            unhex("100c 0004 4d515459 0402 0005 0000"),
            "malformed connect (unknown protocol name)",
        ),
    ];
    for (name, dir, bytes, reason) in cases {
        let out = decode(*dir, bytes);
        let (offset, _, r) = undecodable(&out);
        assert_eq!(offset, 0, "{name}");
        assert_eq!(r, *reason, "{name}");
        // Also when it arrives a byte at a time.
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let out = decode_with(*dir, &Arc::new(AtomicU8::new(0)), &chunks);
        assert_eq!(undecodable(&out).2, *reason, "{name} bytewise");
    }
}

#[test]
fn malformed_ws_cases() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "rsv",
            unhex("c282 00000000 c000"),
            "websocket rsv bits set (extension in use)",
        ),
        (
            "continuation without message",
            frame(true, 0, Some([0; 4]), &unhex("c000")),
            "websocket continuation frame outside a message",
        ),
        (
            "data inside fragmented",
            [
                frame(false, 2, Some([0; 4]), &unhex("c0")),
                frame(true, 2, Some([0; 4]), &unhex("00")),
            ]
            .concat(),
            "websocket data frame inside a fragmented message",
        ),
        (
            "reserved opcode",
            frame(true, 3, Some([0; 4]), b""),
            "reserved websocket opcode 0x3",
        ),
        (
            "long control",
            frame(true, 9, Some([0; 4]), &[0; 126]),
            "websocket control frame longer than 125 bytes",
        ),
        (
            "fragmented control",
            frame(false, 9, Some([0; 4]), b""),
            "fragmented websocket control frame",
        ),
        (
            "mqtt garbage inside ws",
            frame(true, 2, Some([5; 4]), &unhex("0000")),
            "reserved packet type 0",
        ),
    ];
    for (name, frames, reason) in cases {
        let mut bytes = UPGRADE_REQ.to_vec();
        bytes.extend(frame(true, 2, Some([1, 2, 3, 4]), &unhex("c000")));
        let at = bytes.len() as u64;
        bytes.extend(&frames);
        let out = decode_every_split(Direction::Upstream, 4, &bytes);
        let (offset, hex, r) = undecodable(&out);
        assert_eq!(r, reason, "{name}");
        if name == "mqtt garbage inside ws" {
            // Offset of the MQTT bytes (after the 6-byte frame header), hex of the unmasked bytes.
            assert_eq!(offset, at + 6, "{name}");
            assert_eq!(hex, "0000");
        } else if name != "data inside fragmented" {
            assert_eq!(offset, at, "{name}");
        }
    }
}

#[test]
fn refused_upgrade() {
    let mut bytes = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\n".to_vec();
    let out = decode(Direction::Downstream, &bytes);
    assert_eq!(
        out,
        vec![Decoded::HttpUpgrade {
            line: "HTTP/1.1 403 Forbidden".into()
        }]
    );
    bytes.extend(b"nope");
    let out = decode_every_split(Direction::Downstream, 0, &bytes);
    assert_eq!(
        undecodable(&out).2,
        "data after a refused websocket upgrade"
    );
}

#[test]
fn http_head_too_long() {
    let mut bytes = b"GET /".to_vec();
    bytes.resize(MAX_HTTP_HEAD + 10, b'a');
    let out = decode(Direction::Upstream, &bytes);
    assert_eq!(undecodable(&out).2, "http upgrade head too long");
}

#[test]
fn not_quite_http_is_tcp() {
    // "GE" then not "T": the held bytes go to the MQTT layer, where 'G' is not a valid header.
    let out = decode_every_split(Direction::Upstream, 0, b"GEX");
    assert_eq!(undecodable(&out).0, 0);
    // A downstream stream starting with CONNACK is plain MQTT.
    let out = decode(Direction::Downstream, &unhex("20020000"));
    assert_eq!(packet(&out[0]).framing, Framing::Tcp);
}

#[test]
fn unmask_any_phase_and_length() {
    let mask = [0x11, 0x22, 0x33, 0x44];
    for pos in 0..4 {
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            ws::unmask(&mut fast, mask, pos);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[(pos + i) % 4])
                .collect();
            assert_eq!(fast, slow, "pos {pos} len {len}");
            let mut into = vec![0xee; data.len()];
            ws::unmask_into(&mut into, &data, mask, pos);
            assert_eq!(into, slow, "into: pos {pos} len {len}");
        }
    }
}

#[test]
fn kind_names() {
    for t in 1..=15u8 {
        let k = PacketKind::from_type(t).unwrap();
        assert_eq!(PacketKind::from_name(k.as_str()), Some(k));
        assert_eq!(PacketKind::from_name(&k.as_str().to_lowercase()), Some(k));
    }
    assert_eq!(PacketKind::from_type(0), None);
    assert_eq!(PacketKind::from_type(16), None);
    assert_eq!(PacketKind::from_name("pingreq"), Some(PacketKind::Pingreq));
    assert_eq!(PacketKind::from_name("nope"), None);
}

#[test]
fn serializes_to_json() {
    let out = decode(Direction::Upstream, &unhex("3005 0003 612f62"));
    let json = serde_json::to_string(&out[0]).unwrap();
    assert_eq!(
        json,
        r#"{"type":"packet","kind":"PUBLISH","framing":{"transport":"tcp"},"size":7,"hex":"30050003612f62","fields":{"topic":"a/b","qos":0,"retain":false,"dup":false,"packet_id":null,"payload_len":0}}"#
    );
    let ping = Decoded::WsControl {
        opcode: WsOpcode::Close,
        masked: true,
        close_code: Some(1000),
        payload_len: 2,
    };
    assert_eq!(
        serde_json::to_string(&ping).unwrap(),
        r#"{"type":"ws_control","opcode":"close","masked":true,"close_code":1000,"payload_len":2}"#
    );
    let p = decode(Direction::Upstream, &unhex("c000"));
    assert_eq!(
        serde_json::to_string(&p[0]).unwrap(),
        r#"{"type":"packet","kind":"PINGREQ","framing":{"transport":"tcp"},"size":2,"hex":"c000"}"#
    );
    let ws = Framing::Ws {
        opcode: WsOpcode::Binary,
        masked: false,
    };
    assert_eq!(
        serde_json::to_string(&ws).unwrap(),
        r#"{"transport":"ws","opcode":"binary","masked":false}"#
    );
}

#[test]
fn buffer_is_bounded_and_released() {
    // A packet that claims 1 MiB, fed slowly, then the rest: decodes, and the big buffer is not
    // kept afterwards.
    let remaining = MAX_REMAINING;
    let mut bytes = vec![0x30, 0x80, 0x80, 0x40];
    bytes.extend(unhex("0001 61"));
    bytes.resize(4 + remaining, 0);
    let mut d = Decoder::new(Direction::Upstream, Arc::new(AtomicU8::new(4)));
    let mut out = Vec::new();
    for c in bytes.chunks(4096) {
        d.feed(c, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(packet(&out[0]).size, 4 + remaining);
    assert_eq!(d.mqtt_buffer_capacity(), 0);
}

#[test]
fn module_doc_picture() {
    let k = Some([0xa1, 0xb2, 0xc3, 0xd4]);
    let mut bytes = UPGRADE_REQ.to_vec();
    bytes.extend(frame(false, 2, k, &unhex("c000 3009 0003")));
    bytes.extend(frame(true, 9, k, b""));
    bytes.extend(frame(true, 0, k, &unhex("612f62 68692121")));
    let out = decode_every_split(Direction::Upstream, 4, &bytes);
    let kinds: Vec<&str> = out
        .iter()
        .map(|d| match d {
            Decoded::HttpUpgrade { .. } => "upgrade",
            Decoded::Packet(p) => p.kind.as_str(),
            Decoded::WsControl { .. } => "ping",
            Decoded::Undecodable { .. } => "undecodable",
            Decoded::TlsRecord { .. } => "tls",
        })
        .collect();
    assert_eq!(kinds, ["upgrade", "PINGREQ", "ping", "PUBLISH"]);
}

/// TLS passed through: each record's header is read, whatever chunk boundaries fall where,
/// its encrypted body skipped; either way the stream starts with a handshake record.
#[test]
fn tls_records_are_read_at_every_split() {
    let mut bytes = unhex("1603010005 0102030405");
    bytes.extend(unhex("1403030001 01"));
    bytes.extend(unhex("1703030003 aabbcc"));
    for direction in [Direction::Upstream, Direction::Downstream] {
        let out = decode_every_split(direction, 4, &bytes);
        let records: Vec<(&str, usize)> = out
            .iter()
            .map(|d| match d {
                Decoded::TlsRecord {
                    content_type,
                    length,
                } => (*content_type, *length),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            records,
            [
                ("handshake", 5),
                ("change_cipher_spec", 1),
                ("application_data", 3)
            ]
        );
    }
    // A record header that is not one: undecodable, once.
    let mut d = Decoder::new(Direction::Upstream, Arc::new(AtomicU8::new(4)));
    let mut out = Vec::new();
    d.feed(&unhex("1603010001 00 41414141 41"), &mut out);
    assert!(
        matches!(out.last(), Some(Decoded::Undecodable { .. })),
        "{out:?}"
    );
}

#[test]
fn a_frame_kind_follows_its_opcode_and_reserved_ones_have_none() {
    use super::ws_kinds::*;
    let kinds: Vec<u8> = (0u8..16).map(kind_of).collect();
    let mut want = [0u8; 16];
    want[..3].fill(DATA);
    want[0x8] = CLOSE;
    want[0x9] = PING;
    want[0xA] = PONG;
    assert_eq!(kinds, want);
}
