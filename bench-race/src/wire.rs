//! The client's packets: MQTT 3.1.1, QoS 0, every PUBLISH exactly [`PACKET`] bytes on the wire.

/// A PUBLISH's size on the wire, fixed header included.
pub const PACKET: usize = 64;

/// CONNECT, MQTT 3.1.1, clean session, keepalive 60 s, no will, client id `id`.
pub fn connect(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4];
    body.extend_from_slice(b"MQTT");
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut p = vec![0x10, body.len() as u8];
    p.extend_from_slice(&body);
    p
}

/// A QoS 0 PUBLISH of exactly [`PACKET`] bytes to `bench/race` (topic 10 bytes, payload 50).
pub fn publish() -> Vec<u8> {
    let topic = b"bench/race";
    let mut p = vec![0x30, (PACKET - 2) as u8, 0, topic.len() as u8];
    p.extend_from_slice(topic);
    p.resize(PACKET, b'!');
    p
}

pub const DISCONNECT: [u8; 2] = [0xe0, 0];
pub const CONNACK_LEN: usize = 4;
