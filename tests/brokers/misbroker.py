#!/usr/bin/env python3
"""misbroker -- a deliberately misbehaving MQTT test broker for unplug's tests.

unplug measures how MQTT brokers treat a client that is cut off the network.
Its integration tests need a broker whose behaviour can be bent on purpose, so
that they can prove unplug's verdicts catch a non-conforming broker.  This file
is that broker: a small, real MQTT 3.1.1 + MQTT 5 server (real sockets on
127.0.0.1 only), Python 3.11 standard library only (asyncio), one file.
It is test tooling, not a production broker.

Startup: prints exactly ONE line of JSON to stdout and flushes it:
    {"tcp": PORT, "ws": PORT_or_null}
Nothing else is ever written to stdout (diagnostics go to stderr / --log).
Exits with status 0 on SIGTERM / SIGINT (and on stdin EOF with
--exit-on-stdin-eof).  Bad command line: status 2.

Flags
-----
  --tcp PORT              MQTT over TCP listener port on 127.0.0.1 (default 0 =
                          pick a free port; the chosen one is in the JSON line).
  --ws PORT               also listen for MQTT over WebSocket on this port
                          (0 = pick a free one).  Absent: no WS listener, "ws": null.
  --ws-path PATH          only accept the WebSocket upgrade on this request path
                          (other paths get HTTP 404).  Absent: any path.
  --drop-factor F         drop a client that has been silent for F x its keepalive
                          (default 1.5, the value the spec requires), measured from
                          the last complete packet received (from CONNECT on).
                          Precise per-connection timer (loop.call_later, re-armed
                          on each complete packet).  Keepalive 0 = never dropped.
  --no-keepalive          never drop a silent client (violation when keepalive > 0).
  --will-on-clean-disconnect
                          also publish the will after a normal DISCONNECT
                          (3.1.1 `e0 00`, v5 reason 0x00) -- a spec violation.
  --refuse-v5 MODE        MODE close: close the connection right after reading a
                          level-5 CONNECT, without any reply.  MODE connack: answer
                          a 3.1.1-format CONNACK `20 02 00 01` (unacceptable
                          protocol version) then close.  No will in either case.
  --require-login USER:PASS
                          require this username/password.  No username: CONNACK
                          "not authorized" (3.1.1 rc 5, v5 0x87); wrong username or
                          password: "bad user name or password" (3.1.1 rc 4,
                          v5 0x86); then the connection is closed.
  --require-login-env VAR same, USER:PASS read from environment variable VAR
                          (keeps the password off the command line).
                          The password is never printed or logged.
  --sys-version STR       publish a retained `$SYS/broker/version` message with
                          payload STR (QoS 0).  Absent: no such topic.
  --log FILE              append one JSON line per connection event and per packet
                          in/out: {"ms": ms since start, "ev": ..., "kind": ...,
                          "cid": ..., ...}.  Default: no log.  Passwords never logged.
  --exit-on-stdin-eof     exit when stdin reaches EOF (a test that dies and closes
                          the pipe takes the broker with it).
  --connect-timeout S     close a connection that sends no CONNECT within S
                          seconds (default 10).

Implemented
-----------
  * MQTT 3.1.1 (level 4) and MQTT 5 (level 5) CONNECT with all flags and v5
    properties, will (qos/retain/topic/payload, v5 will properties forwarded),
    username/password; CONNACK (v5: properties; Assigned Client Identifier
    when the client sent an empty id).  Level 3 / unknown level: CONNACK rc 1.
  * PUBLISH QoS 0/1/2 in and out (PUBACK, PUBREC/PUBREL/PUBCOMP), delivered at
    min(publish qos, granted qos); v5 subscribers get v5 encoding (with
    forwarded properties: payload format, message expiry (not decremented),
    content type, response topic, correlation data, user properties, plus
    subscription identifiers), 3.1.1 subscribers 3.1.1 encoding.  Incoming v5
    topic aliases are accepted.  Exactly-once receive (QoS 2 packet ids kept
    until PUBREL).
  * SUBSCRIBE/SUBACK with + and # (and $-topics not matched by a leading
    wildcard), v5 subscription options (no local, retain as published, retain
    handling 0/1/2, subscription identifier); UNSUBSCRIBE/UNSUBACK (v5 reason
    codes 0x00 / 0x11).  Overlapping subscriptions: one copy at the max qos.
  * Retained messages (store, empty payload deletes, delivered on subscribe
    with the retain flag set).
  * PINGREQ/PINGRESP; DISCONNECT (3.1.1; v5 with reason code and properties,
    incl. Session Expiry Interval update).
  * Will published when the connection ends without DISCONNECT (EOF, reset,
    keepalive expiry, takeover, malformed packet / protocol error, WS close
    frame) and after a v5 DISCONNECT whose reason is not 0x00 (e.g. 0x04);
    not after DISCONNECT 0x00 / 3.1.1 DISCONNECT (unless
    --will-on-clean-disconnect).  v5 Will Delay Interval is honoured: the will
    is published at min(will delay, session expiry) after the connection ends,
    cancelled if the session is resumed (clean start 0) before that, published
    at once if the client id reconnects with clean start 1.
  * Sessions: 3.1.1 clean session 0 = session kept forever; v5 Session Expiry
    Interval (0 = ends with the connection, 0xFFFFFFFF = never).  Kept
    subscriptions, QoS 1/2 messages queued while offline (max 1000 per session,
    QoS 0 not queued), unacknowledged outgoing QoS 1/2 resent with DUP on resume.
    Session present flag in CONNACK.
  * Client-id takeover: a new CONNECT with the same id closes the old
    connection (v5 old client gets DISCONNECT 0x8E) and publishes its will.
  * Server-side v5 DISCONNECT before closing: 0x8D keepalive timeout,
    0x81 malformed packet, 0x8E session taken over.
  * Framing: remaining length up to 4 bytes, partial reads, several packets per
    read; remaining length > 1 MiB (1048576): connection closed (with will).
    A malformed packet closes only that connection (and publishes its will).
  * WebSocket (RFC 6455): HTTP/1.1 Upgrade on any path (or --ws-path),
    Sec-WebSocket-Protocol "mqtt" answered when offered (else "mqttv3.1" if
    offered), binary frames, client frames must be masked, fragmented /
    continuation frames, ping -> pong, close frame answered; text frames and
    frames > 1 MiB + 16 close the connection.  MQTT packets may span frames.

Not implemented (deliberately small)
------------------------------------
  * No TLS, no listener other than 127.0.0.1, no MQTT 3.1 (level 3), no AUTH
    packet / enhanced authentication (CONNECT with Authentication Method gets
    CONNACK 0x8C), no shared subscriptions (SUBACK 0x9E in v5, 0x80 in 3.1.1).
  * No outgoing topic aliases; Topic Alias Maximum is not advertised (client
    aliases are tolerated anyway).  Receive Maximum (client flow control) is
    not enforced: up to 65535 outgoing QoS>0 messages in flight per session.
    Message Expiry Interval is forwarded but not enforced or decremented.
    Server Keep Alive is never sent.  Request/Response Information ignored.
  * No retransmission within a connection (only on session resume, as the spec
    says).  A subscriber whose socket write buffer exceeds 4 MiB misses
    further publications (logged as "drop_slow").
  * No persistence across broker restarts; no access control beyond the login.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
import struct
import sys
import threading
import time
import traceback

MAX_PACKET = 1024 * 1024          # max remaining length accepted
MAX_WS_FRAME = MAX_PACKET + 16
MAX_QUEUE = 1000                  # offline messages per session
SLOW_LIMIT = 4 * 1024 * 1024      # skip publications to a subscriber above this
HARD_LIMIT = 16 * 1024 * 1024     # drop a connection above this write backlog
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
         6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
         10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
         14: "DISCONNECT", 15: "AUTH"}

# v5 property identifiers by value type
P_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
P_U16 = {0x13, 0x21, 0x22, 0x23}
P_U32 = {0x02, 0x11, 0x18, 0x27}
P_VAR = {0x0B}
P_STR = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
P_BIN = {0x09, 0x16}
P_PAIR = {0x26}
# properties of an application message forwarded to v5 subscribers
FWD_PROPS = {0x01, 0x02, 0x03, 0x08, 0x09, 0x26}


class Malformed(Exception):
    pass


# ---------------------------------------------------------------- encoding

def enc_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_str(s):
    b = s.encode("utf-8")
    return struct.pack("!H", len(b)) + b


def enc_bin(b):
    return struct.pack("!H", len(b)) + bytes(b)


def enc_props(props):
    body = bytearray()
    for pid, v in props:
        body += enc_varint(pid)
        if pid in P_BYTE:
            body.append(v)
        elif pid in P_U16:
            body += struct.pack("!H", v)
        elif pid in P_U32:
            body += struct.pack("!I", v)
        elif pid in P_VAR:
            body += enc_varint(v)
        elif pid in P_STR:
            body += enc_str(v)
        elif pid in P_BIN:
            body += enc_bin(v)
        elif pid in P_PAIR:
            body += enc_str(v[0]) + enc_str(v[1])
    return enc_varint(len(body)) + bytes(body)


def packet(first, body):
    return bytes([first]) + enc_varint(len(body)) + body


class Rd:
    """Bounds-checked reader over one packet body."""
    __slots__ = ("b", "p")

    def __init__(self, b):
        self.b = b
        self.p = 0

    def left(self):
        return len(self.b) - self.p

    def take(self, n):
        if self.p + n > len(self.b):
            raise Malformed("truncated packet")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        val, shift = 0, 0
        for _ in range(4):
            b = self.u8()
            val |= (b & 0x7F) << shift
            if not b & 0x80:
                return val
            shift += 7
        raise Malformed("variable byte integer longer than 4 bytes")

    def bin(self):
        return self.take(self.u16())

    def str(self):
        raw = self.bin()
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("invalid UTF-8 string") from None
        if "\x00" in s:
            raise Malformed("U+0000 in string")
        return s

    def props(self):
        n = self.varint()
        end = self.p + n
        if end > len(self.b):
            raise Malformed("property length beyond packet")
        out, seen = [], set()
        while self.p < end:
            pid = self.varint()
            if pid in P_BYTE:
                v = self.u8()
            elif pid in P_U16:
                v = self.u16()
            elif pid in P_U32:
                v = self.u32()
            elif pid in P_VAR:
                v = self.varint()
            elif pid in P_STR:
                v = self.str()
            elif pid in P_BIN:
                v = self.bin()
            elif pid in P_PAIR:
                v = (self.str(), self.str())
            else:
                raise Malformed("unknown property 0x%02x" % pid)
            if pid not in (0x26, 0x0B):
                if pid in seen:
                    raise Malformed("duplicate property 0x%02x" % pid)
                seen.add(pid)
            out.append((pid, v))
        if self.p != end:
            raise Malformed("property overran its length")
        return out


def valid_topic(t):
    return bool(t) and "+" not in t and "#" not in t


def valid_filter(f):
    if not f:
        return False
    levels = f.split("/")
    for i, lv in enumerate(levels):
        if "#" in lv and (lv != "#" or i != len(levels) - 1):
            return False
        if "+" in lv and lv != "+":
            return False
    return True


def topic_matches(filt, topic):
    if topic.startswith("$") and filt[:1] in ("+", "#"):
        return False
    f = filt.split("/")
    t = topic.split("/")
    for i, fl in enumerate(f):
        if fl == "#":
            return True
        if i >= len(t):
            return False
        if fl != "+" and fl != t[i]:
            return False
    return len(f) == len(t)


class Message:
    __slots__ = ("topic", "payload", "qos", "retain", "props")

    def __init__(self, topic, payload, qos, retain, props):
        self.topic = topic
        self.payload = bytes(payload)
        self.qos = qos
        self.retain = retain
        self.props = props


class Sub:
    __slots__ = ("qos", "nl", "rap", "rh", "subid")

    def __init__(self, qos, nl, rap, rh, subid):
        self.qos, self.nl, self.rap, self.rh, self.subid = qos, nl, rap, rh, subid


# ---------------------------------------------------------------- transports

class TcpIO:
    kind = "tcp"

    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer

    async def recv(self):
        return await self.r.read(65536)

    def write(self, data):
        if not self.w.is_closing():
            self.w.write(data)

    def backlog(self):
        return self.w.transport.get_write_buffer_size()

    def close(self):
        tr = self.w.transport
        if not self.w.is_closing():
            self.w.close()
        # a cut-off peer may never drain the buffer: bound the lingering close
        asyncio.get_running_loop().call_later(5.0, tr.abort)


class WsIO(TcpIO):
    kind = "ws"

    def __init__(self, reader, writer):
        super().__init__(reader, writer)
        self.fragmenting = False
        self.close_sent = False

    async def handshake(self, want_path):
        try:
            raw = await self.r.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            return False, "bad http request"
        try:
            lines = raw.decode("latin-1").split("\r\n")
            method, path, _ver = lines[0].split(" ", 2)
        except ValueError:
            return False, "bad request line"
        hdr = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdr[k.strip().lower()] = v.strip()
        key = hdr.get("sec-websocket-key")
        if (method != "GET" or "websocket" not in hdr.get("upgrade", "").lower()
                or "upgrade" not in hdr.get("connection", "").lower() or not key):
            self.w.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            return False, "not a websocket upgrade"
        if want_path is not None and path.split("?", 1)[0] != want_path:
            self.w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            return False, "wrong path %s" % path
        accept = base64.b64encode(
            hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        offered = [p.strip() for p in hdr.get("sec-websocket-protocol", "").split(",")
                   if p.strip()]
        resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept)
        for proto in ("mqtt", "mqttv3.1"):
            if proto in offered:
                resp += "Sec-WebSocket-Protocol: %s\r\n" % proto
                break
        self.w.write((resp + "\r\n").encode())
        return True, "path=%s protocols=%s" % (path, ",".join(offered))

    @staticmethod
    def frame(op, data):
        n = len(data)
        if n < 126:
            hdr = bytes([0x80 | op, n])
        elif n < 65536:
            hdr = bytes([0x80 | op, 126]) + struct.pack("!H", n)
        else:
            hdr = bytes([0x80 | op, 127]) + struct.pack("!Q", n)
        return hdr + bytes(data)

    async def recv(self):
        """Return the next chunk of MQTT bytes, b'' on EOF / close frame."""
        try:
            while True:  # ends by return/raise; each turn consumes one frame
                h = await self.r.readexactly(2)
                fin, rsv, op = h[0] & 0x80, h[0] & 0x70, h[0] & 0x0F
                masked, ln = h[1] & 0x80, h[1] & 0x7F
                if rsv:
                    raise Malformed("ws RSV bits set")
                if ln == 126:
                    ln = struct.unpack("!H", await self.r.readexactly(2))[0]
                elif ln == 127:
                    ln = struct.unpack("!Q", await self.r.readexactly(8))[0]
                if not masked:
                    raise Malformed("unmasked client ws frame")
                if ln > MAX_WS_FRAME:
                    raise Malformed("ws frame too large")
                key = await self.r.readexactly(4)
                data = await self.r.readexactly(ln)
                if ln:
                    k = (key * (ln // 4 + 1))[:ln]
                    data = (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")
                            ).to_bytes(ln, "big")
                if op >= 8:  # control frame
                    if not fin or ln > 125:
                        raise Malformed("bad ws control frame")
                    if op == 8:
                        if not self.close_sent:
                            self.close_sent = True
                            self.write(self.frame(8, data[:2]))
                        return b""
                    if op == 9:
                        self.write(self.frame(10, data))
                    elif op != 10:
                        raise Malformed("unknown ws opcode %d" % op)
                    continue
                if op == 1:
                    raise Malformed("ws text frame (MQTT needs binary)")
                if op == 2:
                    if self.fragmenting:
                        raise Malformed("ws data frame inside fragmented message")
                elif op == 0:
                    if not self.fragmenting:
                        raise Malformed("ws continuation without start")
                else:
                    raise Malformed("unknown ws opcode %d" % op)
                self.fragmenting = not fin
                if data:
                    return data
        except asyncio.IncompleteReadError:
            return b""

    def write_mqtt(self, data):
        self.write(self.frame(2, data))

    def close(self):
        if not self.close_sent:
            self.close_sent = True
            self.write(self.frame(8, struct.pack("!H", 1000)))
        super().close()


# ---------------------------------------------------------------- broker

class Session:
    def __init__(self, cid):
        self.cid = cid
        self.subs = {}
        self.queue = []            # offline messages: (msg, qos, retain, subids)
        self.inflight = {}         # pid -> [state 'pub'|'rel', msg, qos, retain, subids]
        self.in_qos2 = set()
        self.next_pid = 0
        self.conn = None
        self.expiry = 0            # seconds; None = never
        self.expiry_handle = None
        self.pending_will = None   # (Message, TimerHandle)

    def alloc_pid(self):
        if len(self.inflight) >= 65535:
            return None
        for _ in range(65535):
            self.next_pid = self.next_pid % 65535 + 1
            if self.next_pid not in self.inflight:
                return self.next_pid
        return None


class Broker:
    def __init__(self, args, login):
        self.args = args
        self.login = login
        self.sessions = {}
        self.retained = {}
        self.conns = set()
        self.t0 = time.monotonic()
        self.auto_id = 0
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        if args.sys_version is not None:
            self.retained["$SYS/broker/version"] = Message(
                "$SYS/broker/version", args.sys_version.encode(), 0, True, [])

    def ms(self):
        return round((time.monotonic() - self.t0) * 1000, 1)

    def log(self, ev, **kw):
        if self.logf:
            rec = {"ms": self.ms(), "ev": ev}
            rec.update(kw)
            try:
                self.logf.write(json.dumps(rec, default=str) + "\n")
            except OSError:
                pass

    def publish(self, msg, sender):
        if msg.retain:
            if msg.payload:
                self.retained[msg.topic] = Message(msg.topic, msg.payload, msg.qos,
                                                   True, msg.props)
            else:
                self.retained.pop(msg.topic, None)
        for s in list(self.sessions.values()):
            best, subids, rap = None, [], False
            for f, sub in s.subs.items():
                if sub.nl and sender is not None and s.cid == sender:
                    continue
                if topic_matches(f, msg.topic):
                    if best is None or sub.qos > best:
                        best = sub.qos
                    if sub.subid:
                        subids.append(sub.subid)
                    rap = rap or sub.rap
            if best is None:
                continue
            qos = min(msg.qos, best)
            retain = msg.retain and rap
            c = s.conn
            if c is not None and c.connected and not c.closed:
                c.send_publish(msg, qos, retain, subids)
            elif qos > 0:
                if len(s.queue) < MAX_QUEUE:
                    s.queue.append((msg, qos, retain, subids))
                else:
                    self.log("drop_queue_full", cid=s.cid, topic=msg.topic)

    def publish_will(self, cid, msg):
        self.log("will_publish", cid=cid, topic=msg.topic, qos=msg.qos,
                 retain=msg.retain)
        self.publish(msg, None)

    def end_session(self, s):
        if self.sessions.get(s.cid) is s:
            del self.sessions[s.cid]
        if s.expiry_handle:
            s.expiry_handle.cancel()
            s.expiry_handle = None
        if s.pending_will:
            msg, h = s.pending_will
            s.pending_will = None
            h.cancel()
            self.publish_will(s.cid, msg)
        self.log("session_end", cid=s.cid)

    def expire_session(self, s):
        s.expiry_handle = None
        self.log("session_expired", cid=s.cid)
        self.end_session(s)

    def fire_delayed_will(self, s):
        if s.pending_will:
            msg, _h = s.pending_will
            s.pending_will = None
            self.publish_will(s.cid, msg)

    def shutdown(self):
        for c in list(self.conns):
            c.drop("broker shutdown", will=False)


class Conn:
    def __init__(self, broker, io, peer):
        self.b = broker
        self.io = io
        self.peer = peer
        self.cid = None
        self.v5 = False
        self.session = None
        self.will = None
        self.will_delay = 0
        self.timeout = 0.0
        self.timer = None
        self.closed = False
        self.connected = False
        self.task = None
        self.aliases = {}
        self.max_out = None

    # -- plumbing
    def send(self, pkt, kind, **info):
        if self.closed:
            return
        if self.io.backlog() > HARD_LIMIT:
            self.drop("write backlog over %d bytes" % HARD_LIMIT, will=True)
            return
        if isinstance(self.io, WsIO):
            self.io.write_mqtt(pkt)
        else:
            self.io.write(pkt)
        self.b.log("out", kind=kind, cid=self.cid, **info)

    def touch(self):
        if self.connected and self.timeout > 0:
            if self.timer:
                self.timer.cancel()
            self.timer = asyncio.get_running_loop().call_later(
                self.timeout, self.on_keepalive_expired)

    def on_keepalive_expired(self):
        self.timer = None
        self.drop("keepalive timeout (%.3fs silent)" % self.timeout, will=True,
                  v5_reason=0x8D)

    def on_connect_timeout(self):
        self.timer = None
        if not self.connected:
            self.drop("no CONNECT in time", will=False)

    def drop(self, reason, will, v5_reason=None):
        """Idempotent end of the connection; publishes/schedules the will."""
        if self.closed:
            return
        self.closed = True
        if self.timer:
            self.timer.cancel()
            self.timer = None
        self.b.conns.discard(self)
        w = self.will if (will and self.connected) else None
        self.will = None
        self.b.log("drop", cid=self.cid, reason=reason, will=bool(w),
                   transport=self.io.kind)
        try:
            if self.connected and self.v5 and v5_reason is not None:
                pkt = packet(0xE0, bytes([v5_reason, 0]))
                if isinstance(self.io, WsIO):
                    self.io.write_mqtt(pkt)
                else:
                    self.io.write(pkt)
                self.b.log("out", kind="DISCONNECT", cid=self.cid, rc=v5_reason)
        except Exception:
            pass
        s = self.session
        loop = asyncio.get_running_loop()
        if s is not None and s.conn is self:
            s.conn = None
            if w:
                if self.will_delay > 0 and s.expiry != 0:
                    delay = self.will_delay if s.expiry is None else min(
                        self.will_delay, s.expiry)
                    h = loop.call_later(delay, self.b.fire_delayed_will, s)
                    s.pending_will = (w, h)
                    self.b.log("will_delayed", cid=self.cid, delay_s=delay)
                else:
                    self.b.publish_will(self.cid, w)
            if s.expiry == 0:
                self.b.end_session(s)
            elif s.expiry is not None:
                s.expiry_handle = loop.call_later(s.expiry, self.b.expire_session, s)
        elif w:
            self.b.publish_will(self.cid, w)
        try:
            self.io.close()
        except Exception:
            pass
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    # -- main loop
    async def run(self):
        self.task = asyncio.current_task()
        self.b.conns.add(self)
        self.b.log("accept", peer=self.peer, transport=self.io.kind)
        self.timer = asyncio.get_running_loop().call_later(
            self.b.args.connect_timeout, self.on_connect_timeout)
        buf = bytearray()
        try:
            while not self.closed:
                data = await self.io.recv()
                if not data:
                    self.drop("peer closed (EOF)", will=True)
                    break
                buf += data
                pos = 0
                while not self.closed:
                    if len(buf) - pos < 2:
                        break
                    i, rl, shift = 1, 0, 0
                    while True:  # at most 4 length bytes
                        if i > 4:
                            raise Malformed("remaining length longer than 4 bytes")
                        if pos + i >= len(buf):
                            rl = None
                            break
                        byte = buf[pos + i]
                        rl |= (byte & 0x7F) << shift
                        shift += 7
                        i += 1
                        if not byte & 0x80:
                            break
                    if rl is None:
                        break
                    if rl > MAX_PACKET:
                        raise Malformed("packet of %d bytes over the 1 MiB limit" % rl)
                    if len(buf) - pos < i + rl:
                        break
                    first = buf[pos]
                    body = bytes(buf[pos + i:pos + i + rl])
                    pos += i + rl
                    self.on_packet(first, body)
                if pos:
                    del buf[:pos]
        except Malformed as e:
            self.drop("protocol error: %s" % e, will=True, v5_reason=0x81)
        except (ConnectionError, OSError) as e:
            self.drop("network error: %r" % e, will=True)
        except asyncio.CancelledError:
            self.drop("cancelled", will=True)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            self.drop("internal error: %r" % e, will=True)
        finally:
            self.drop("end", will=True)

    def on_packet(self, first, body):
        ptype, flags = first >> 4, first & 0x0F
        if not self.connected:
            if ptype != 1:
                raise Malformed("first packet is not CONNECT")
            self.on_connect(flags, body)
            return
        self.touch()
        if ptype == 3:
            self.on_publish(flags, body)
            return
        self.b.log("in", kind=NAMES.get(ptype, str(ptype)), cid=self.cid)
        want_flags = 2 if ptype in (6, 8, 10) else 0
        if flags != want_flags:
            raise Malformed("bad fixed header flags for %s" % NAMES.get(ptype))
        if ptype == 4:      # PUBACK
            pid = Rd(body).u16()
            e = self.session.inflight.get(pid)
            if e and e[0] == "pub" and e[2] == 1:
                del self.session.inflight[pid]
        elif ptype == 5:    # PUBREC
            r = Rd(body)
            pid = r.u16()
            rc = r.u8() if (self.v5 and r.left()) else 0
            e = self.session.inflight.get(pid)
            if e and e[2] == 2 and rc >= 0x80:
                del self.session.inflight[pid]
                return
            if e and e[2] == 2:
                e[0] = "rel"
            self.send(packet(0x62, struct.pack("!H", pid)), "PUBREL", pid=pid)
        elif ptype == 6:    # PUBREL
            pid = Rd(body).u16()
            self.session.in_qos2.discard(pid)
            self.send(packet(0x70, struct.pack("!H", pid)), "PUBCOMP", pid=pid)
        elif ptype == 7:    # PUBCOMP
            pid = Rd(body).u16()
            e = self.session.inflight.get(pid)
            if e and e[0] == "rel":
                del self.session.inflight[pid]
        elif ptype == 8:
            self.on_subscribe(body)
        elif ptype == 10:
            self.on_unsubscribe(body)
        elif ptype == 12:   # PINGREQ
            if body:
                raise Malformed("PINGREQ with payload")
            self.send(b"\xd0\x00", "PINGRESP")
        elif ptype == 14:
            self.on_disconnect(body)
        elif ptype == 1:
            raise Malformed("second CONNECT")
        else:
            raise Malformed("unexpected packet type %d" % ptype)

    # -- CONNECT
    def connack(self, code, session_present=False, props=()):
        body = bytes([1 if (session_present and code == 0) else 0, code])
        if self.v5:
            body += enc_props(list(props))
        self.send(packet(0x20, body), "CONNACK", rc=code,
                  session_present=bool(session_present and code == 0))

    def refuse(self, v3code, v5code, why):
        self.connack(v5code if self.v5 else v3code)
        self.drop("CONNECT refused: %s" % why, will=False)

    def on_connect(self, flags, body):
        args = self.b.args
        if flags:
            raise Malformed("CONNECT fixed header flags")
        r = Rd(body)
        proto = r.str()
        level = r.u8()
        self.b.log("in", kind="CONNECT", proto=proto, level=level)
        if proto not in ("MQTT", "MQIsdp"):
            raise Malformed("unknown protocol name")
        if proto != "MQTT" or level not in (4, 5):
            self.send(b"\x20\x02\x00\x01", "CONNACK", rc=1)
            self.drop("unsupported protocol level %d" % level, will=False)
            return
        if level == 5 and args.refuse_v5 == "close":
            self.drop("refuse-v5 close: level-5 CONNECT closed without reply",
                      will=False)
            return
        if level == 5 and args.refuse_v5 == "connack":
            self.send(b"\x20\x02\x00\x01", "CONNACK", rc=1, format="3.1.1")
            self.drop("refuse-v5 connack", will=False)
            return
        self.v5 = level == 5
        cflags = r.u8()
        if cflags & 0x01:
            raise Malformed("CONNECT reserved flag set")
        clean = bool(cflags & 0x02)
        will_flag = bool(cflags & 0x04)
        will_qos = (cflags >> 3) & 3
        will_retain = bool(cflags & 0x20)
        pw_flag = bool(cflags & 0x40)
        user_flag = bool(cflags & 0x80)
        if will_qos == 3 or (not will_flag and (will_qos or will_retain)):
            raise Malformed("bad will flags")
        if not self.v5 and pw_flag and not user_flag:
            raise Malformed("password flag without username flag")
        keepalive = r.u16()
        props = dict()
        for k, v in (r.props() if self.v5 else []):
            props[k] = v
        cid = r.str()
        will = None
        wdelay = 0
        if will_flag:
            wprops = r.props() if self.v5 else []
            wtopic = r.str()
            wpayload = r.bin()
            if not valid_topic(wtopic):
                raise Malformed("invalid will topic")
            will = Message(wtopic, wpayload, will_qos, will_retain,
                           [p for p in wprops if p[0] in FWD_PROPS])
            wdelay = dict(wprops).get(0x18, 0)
        username = r.str() if user_flag else None
        password = bytes(r.bin()) if pw_flag else None
        if r.left():
            raise Malformed("trailing bytes in CONNECT")
        self.cid = cid
        self.b.log("connect_info", cid=cid, level=level, clean=clean,
                   keepalive=keepalive, will=bool(will),
                   will_topic=will.topic if will else None,
                   username=username, password=password is not None,
                   transport=self.io.kind)
        if self.v5 and 0x15 in props:
            self.refuse(5, 0x8C, "enhanced authentication not supported")
            return
        if self.b.login is not None:
            user, pw = self.b.login
            if username is None:
                self.refuse(5, 0x87, "no username")
                return
            if username != user or password != pw:
                self.refuse(4, 0x86, "bad username or password")
                return
        cprops = []
        if not cid:
            if not self.v5 and not clean:
                self.refuse(2, 0x85, "empty client id with clean session 0")
                return
            self.b.auto_id += 1
            cid = self.cid = "misbroker-auto-%d" % self.b.auto_id
            if self.v5:
                cprops.append((0x12, cid))
        if self.v5:
            exp = props.get(0x11, 0)
            expiry = None if exp == 0xFFFFFFFF else exp
            self.max_out = props.get(0x27)
        else:
            expiry = 0 if clean else None

        # takeover
        old = self.b.sessions.get(cid)
        if old is not None and old.conn is not None:
            old.conn.drop("taken over by a new connection", will=True,
                          v5_reason=0x8E)
        s = self.b.sessions.get(cid)
        present = False
        if s is not None and not clean:
            present = True
            if s.expiry_handle:
                s.expiry_handle.cancel()
                s.expiry_handle = None
            if s.pending_will:
                s.pending_will[1].cancel()
                s.pending_will = None
                self.b.log("will_cancelled", cid=cid)
        else:
            if s is not None:
                self.b.end_session(s)
            s = Session(cid)
            self.b.sessions[cid] = s
        s.expiry = expiry
        s.conn = self
        self.session = s
        self.will = will
        self.will_delay = wdelay
        self.connack(0, present, cprops)
        if self.closed:
            return
        self.connected = True
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if keepalive and not args.no_keepalive:
            self.timeout = keepalive * args.drop_factor
        self.touch()
        # resume: resend unacknowledged, then the offline queue
        if present:
            for pid in sorted(s.inflight):
                st, msg, qos, retain, subids = s.inflight[pid]
                if st == "pub":
                    self.send_publish(msg, qos, retain, subids, pid=pid, dup=True)
                else:
                    self.send(packet(0x62, struct.pack("!H", pid)), "PUBREL", pid=pid)
            q, s.queue = s.queue, []
            for msg, qos, retain, subids in q:
                self.send_publish(msg, qos, retain, subids)

    # -- PUBLISH
    def send_publish(self, msg, qos, retain, subids, pid=None, dup=False):
        s = self.session
        if self.closed:
            return
        if pid is None and self.io.backlog() > SLOW_LIMIT:
            self.b.log("drop_slow", cid=self.cid, topic=msg.topic)
            return
        if qos > 0 and pid is None:
            pid = s.alloc_pid()
            if pid is None:
                self.b.log("drop_no_packet_id", cid=self.cid, topic=msg.topic)
                return
            s.inflight[pid] = ["pub", msg, qos, retain, subids]
        first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
        body = enc_str(msg.topic)
        if qos:
            body += struct.pack("!H", pid)
        if self.v5:
            body += enc_props(msg.props + [(0x0B, i) for i in subids])
        body += msg.payload
        pkt = packet(first, body)
        if self.max_out and len(pkt) > self.max_out:
            s.inflight.pop(pid, None)
            self.b.log("drop_too_big_for_client", cid=self.cid, topic=msg.topic)
            return
        self.send(pkt, "PUBLISH", topic=msg.topic, qos=qos, retain=retain,
                  pid=pid, dup=dup, bytes=len(msg.payload))

    def on_publish(self, flags, body):
        qos = (flags >> 1) & 3
        dup = bool(flags & 0x08)
        retain = bool(flags & 0x01)
        if qos == 3:
            raise Malformed("PUBLISH qos 3")
        if qos == 0 and dup:
            raise Malformed("PUBLISH qos 0 with DUP")
        r = Rd(body)
        topic = r.str()
        pid = r.u16() if qos else None
        if qos and pid == 0:
            raise Malformed("packet id 0")
        props = r.props() if self.v5 else []
        payload = r.take(r.left())
        alias = None
        for k, v in props:
            if k == 0x23:
                alias = v
        if alias is not None:
            if alias == 0:
                raise Malformed("topic alias 0")
            if topic:
                self.aliases[alias] = topic
            elif alias in self.aliases:
                topic = self.aliases[alias]
            else:
                raise Malformed("unknown topic alias")
        self.b.log("in", kind="PUBLISH", cid=self.cid, topic=topic, qos=qos,
                   retain=retain, pid=pid, dup=dup, bytes=len(payload))
        if not valid_topic(topic):
            raise Malformed("invalid topic name")
        msg = Message(topic, payload, qos, retain,
                      [p for p in props if p[0] in FWD_PROPS])
        if qos == 0:
            self.b.publish(msg, self.cid)
        elif qos == 1:
            self.b.publish(msg, self.cid)
            self.send(packet(0x40, struct.pack("!H", pid)), "PUBACK", pid=pid)
        else:
            if pid not in self.session.in_qos2:
                self.session.in_qos2.add(pid)
                self.b.publish(msg, self.cid)
            self.send(packet(0x50, struct.pack("!H", pid)), "PUBREC", pid=pid)

    # -- SUBSCRIBE / UNSUBSCRIBE
    def on_subscribe(self, body):
        r = Rd(body)
        pid = r.u16()
        props = r.props() if self.v5 else []
        subid = None
        for k, v in props:
            if k == 0x0B:
                if v == 0:
                    raise Malformed("subscription identifier 0")
                subid = v
        items = []
        while r.left():
            items.append((r.str(), r.u8()))
        if not items:
            raise Malformed("SUBSCRIBE without topic filters")
        codes, to_send = [], []
        s = self.session
        for f, o in items:
            qos, nl, rap, rh = o & 3, bool(o & 4), bool(o & 8), (o >> 4) & 3
            if qos == 3 or (self.v5 and (o & 0xC0 or rh == 3)) or (
                    not self.v5 and o & 0xFC):
                raise Malformed("bad subscription options 0x%02x" % o)
            if not self.v5:
                nl, rap, rh = False, False, 0
            if not valid_filter(f):
                codes.append(0x8F if self.v5 else 0x80)
                continue
            if f.startswith("$share/"):
                codes.append(0x9E if self.v5 else 0x80)
                continue
            existed = f in s.subs
            s.subs[f] = Sub(qos, nl, rap, rh, subid)
            codes.append(qos)
            if rh == 0 or (rh == 1 and not existed):
                to_send.append((f, qos))
        self.b.log("subscribe", cid=self.cid,
                   filters=[f for f, _o in items], codes=codes)
        out = struct.pack("!H", pid)
        if self.v5:
            out += b"\x00"
        self.send(packet(0x90, out + bytes(codes)), "SUBACK", pid=pid, codes=codes)
        for f, qos in to_send:
            for t, m in list(self.b.retained.items()):
                if topic_matches(f, t):
                    self.send_publish(m, min(m.qos, qos), True,
                                      [subid] if subid else [])

    def on_unsubscribe(self, body):
        r = Rd(body)
        pid = r.u16()
        if self.v5:
            r.props()
        filters = []
        while r.left():
            filters.append(r.str())
        if not filters:
            raise Malformed("UNSUBSCRIBE without topic filters")
        codes = []
        for f in filters:
            codes.append(0x00 if self.session.subs.pop(f, None) else 0x11)
        self.b.log("unsubscribe", cid=self.cid, filters=filters)
        out = struct.pack("!H", pid)
        if self.v5:
            out += b"\x00" + bytes(codes)
        self.send(packet(0xB0, out), "UNSUBACK", pid=pid)

    # -- DISCONNECT
    def on_disconnect(self, body):
        rc = 0
        if body:
            if not self.v5:
                raise Malformed("3.1.1 DISCONNECT with payload")
            r = Rd(body)
            rc = r.u8()
            if r.left():
                for k, v in r.props():
                    if k == 0x11:
                        if self.session.expiry == 0 and v != 0:
                            raise Malformed("session expiry raised from 0 at DISCONNECT")
                        self.session.expiry = None if v == 0xFFFFFFFF else v
            if r.left():
                raise Malformed("trailing bytes in DISCONNECT")
        with_will = rc != 0 or self.b.args.will_on_clean_disconnect
        self.drop("client DISCONNECT rc=0x%02x" % rc, will=with_will)


# ---------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="misbroker.py",
        description="Deliberately misbehaving MQTT 3.1.1/5 test broker (127.0.0.1 only).")
    p.add_argument("--tcp", type=int, default=0, metavar="PORT")
    p.add_argument("--ws", type=int, default=None, metavar="PORT")
    p.add_argument("--ws-path", default=None, metavar="PATH")
    p.add_argument("--drop-factor", type=float, default=1.5, metavar="F")
    p.add_argument("--no-keepalive", action="store_true")
    p.add_argument("--will-on-clean-disconnect", action="store_true")
    p.add_argument("--refuse-v5", choices=["close", "connack"], default=None)
    p.add_argument("--require-login", default=None, metavar="USER:PASS")
    p.add_argument("--require-login-env", default=None, metavar="VAR")
    p.add_argument("--sys-version", default=None, metavar="STR")
    p.add_argument("--log", default=None, metavar="FILE")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S")
    a = p.parse_args(argv)
    if a.drop_factor <= 0:
        p.error("--drop-factor must be > 0")
    login = None
    spec = a.require_login
    if a.require_login_env is not None:
        spec = os.environ.get(a.require_login_env)
        if spec is None:
            p.error("environment variable %s is not set" % a.require_login_env)
    if spec is not None:
        if ":" not in spec:
            p.error("login must have the form USER:PASS")  # value not echoed
        user, pw = spec.split(":", 1)
        login = (user, pw.encode("utf-8"))
    a.require_login = None  # do not keep the secret around in args
    return a, login


async def main(argv):
    args, login = parse_args(argv)
    broker = Broker(args, login)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def on_tcp(reader, writer):
        peer = writer.get_extra_info("peername")
        await Conn(broker, TcpIO(reader, writer), peer).run()

    async def on_ws(reader, writer):
        peer = writer.get_extra_info("peername")
        io = WsIO(reader, writer)
        try:
            ok, info = await asyncio.wait_for(io.handshake(args.ws_path),
                                              args.connect_timeout)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            ok, info = False, "handshake timeout/error"
        broker.log("ws_handshake", peer=peer, ok=ok, info=info)
        if not ok:
            io.close_sent = True
            io.close()
            return
        await Conn(broker, io, peer).run()

    tcp_srv = await asyncio.start_server(on_tcp, "127.0.0.1", args.tcp)
    ws_srv = None
    if args.ws is not None:
        ws_srv = await asyncio.start_server(on_ws, "127.0.0.1", args.ws)
    ports = {"tcp": tcp_srv.sockets[0].getsockname()[1],
             "ws": ws_srv.sockets[0].getsockname()[1] if ws_srv else None}
    broker.log("listen", **ports)
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        def watch_stdin():
            try:
                while sys.stdin.buffer.read1(4096):
                    pass
            except Exception:
                pass
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=watch_stdin, daemon=True).start()

    await stop.wait()
    broker.log("shutdown")
    tcp_srv.close()
    if ws_srv:
        ws_srv.close()
    broker.shutdown()
    await asyncio.sleep(0.05)
    if broker.logf:
        broker.logf.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
    sys.exit(0)
