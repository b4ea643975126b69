#!/usr/bin/env python3
"""Independent measuring client for unplug's questions, written apart from unplug.

It asks an MQTT broker on 127.0.0.1 what it does with a client that is cut off,
and prints one JSON line per run on stdout. Nothing here shares code with unplug.

Two clients take part in every run:

* the "cut" client: a raw socket (TCP, or WebSocket with subprotocol "mqtt",
  handshake written by hand) that writes a CONNECT packet by hand carrying a
  will (topic --will-topic, payload "false", QoS 0, not retained), reads the
  CONNACK, and then does what the test says. It never sends PINGREQ and never
  answers WebSocket pings: a paho client cannot be used for it because paho
  always pings.
* the "watcher": a paho-mqtt client on TCP (--port) subscribed to the will
  topic's first level + "/#" (default "test/#") before the cut client connects.
  Only a message on exactly the run's will topic is counted. After its SUBACK
  the watcher waits 0.5 s before the cut client connects: without that pause a
  broker that leaves Nagle on (mosquitto, aedes) holds an immediate will back
  until the watcher's delayed ACK of the SUBACK, a steady ~40 ms on Linux.

Tests and what each figure is measured from (all clocks: time.monotonic() in
this one process; "sent" is the instant the socket's sendall() returned,
so figures include the loopback and the broker's own delays):

  silent  The cut client sends CONNECT, reads CONNACK, then sends nothing and
          keeps reading. Reference instant t0 = when the CONNECT was sent (the
          last packet the cut client ever sends; the spec's 1.5 x keepalive
          counts from the last packet the broker received).
            drop_ms = t0 -> the broker closes the connection (EOF, reset, or a
                      WebSocket close frame, whichever comes first; a v5
                      DISCONNECT packet from the broker is reported in
                      "broker_packets" but the drop is the close itself).
            will_ms = t0 -> the will arrives at the watcher.
            drop_x_keepalive = drop_ms / (1000 x keepalive); the spec says 1.5.
  abrupt  Same CONNECT; after CONNACK the cut client closes its socket with no
          DISCONNECT (and over WebSocket with no close frame). t0 = just
          before close() is called (the FIN is the last thing the client sends).
            will_ms = t0 -> the will arrives. drop_ms is null (we closed).
  clean   Same CONNECT; after CONNACK the cut client sends DISCONNECT (e0 00)
          and reads until the broker closes. t0 = when DISCONNECT was sent.
            drop_ms = t0 -> broker's close; will_ms = t0 -> a will arriving,
            which the spec forbids (MQTT-3.1.2-10): expect null.
  connack Only CONNECT and the broker's answer: "connack_rc" (3.1.1 return
          code, or v5 reason code), or null and "closed_ms" if the broker
          closed instead. Use it with --protocol 5 or with/without a login.

"connack_ms" is t(CONNECT sent) -> CONNACK read, for every test.
null means nothing came within the window: 4 x keepalive + 10 s after t0
(--window overrides it). Every wait is bounded; every run ends.

Exit status: 0 when every run was measured; 2 on a connection error (refused,
handshake failure, the watcher not connecting or a CONNACK refusing the cut
client outside the connack test), with a message on stderr. Passwords are
taken from an environment variable (--password-env) and never printed.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid

try:
    import paho.mqtt.client as paho
except ImportError:  # pragma: no cover
    sys.stderr.write("measure.py: paho-mqtt is missing: pip install -r scripts/independent/requirements.txt\n")
    sys.exit(2)


class ConnError(Exception):
    pass


# --------------------------------------------------------------------------- MQTT encoding

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id, keepalive, protocol, will_topic=None, will_payload=b"false",
                   username=None, password=None):
    flags = 0x02  # clean session / clean start
    payload = _str(client_id)
    if will_topic is not None:
        flags |= 0x04  # will flag, QoS 0, not retained
        if protocol == 5:
            payload += _varint(0)  # will properties: none
        payload += _str(will_topic) + _str(will_payload)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
    if password is not None:
        flags |= 0x40
        payload += _str(password)
    vh = _str("MQTT") + bytes([protocol, flags]) + struct.pack("!H", keepalive)
    if protocol == 5:
        vh += _varint(0)  # connect properties: none
    body = vh + payload
    return bytes([0x10]) + _varint(len(body)) + body


DISCONNECT = b"\xe0\x00"
SETTLE_S = 0.5
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 9: "SUBACK", 13: "PINGRESP",
                14: "DISCONNECT", 15: "AUTH"}


class PacketReader:
    """Splits a byte stream into MQTT packets (type, body)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if len(self.buf) < 2:
                return out
            mult, length, i = 1, 0, 1
            while True:
                if i >= len(self.buf) or i > 4:
                    return out
                b = self.buf[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if len(self.buf) < i + length:
                return out
            out.append((self.buf[0] >> 4, bytes(self.buf[i:i + length])))
            del self.buf[:i + length]


# --------------------------------------------------------------------------- transports

class Closed(Exception):
    def __init__(self, how):
        Exception.__init__(self, how)
        self.how = how


class TcpConn:
    def __init__(self, host, port, timeout):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnError("TCP connect to %s:%d failed: %s" % (host, port, e))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, timeout):
        """Bytes, or raises socket.timeout, or Closed(how)."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            raise Closed("reset")
        if not data:
            raise Closed("eof")
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class WsConn(TcpConn):
    """Minimal RFC 6455 client: binary frames, masked; never sends ping/pong/close."""

    def __init__(self, host, port, path, timeout):
        TcpConn.__init__(self, host, port, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
               % (path, host, port, key))
        self.sock.sendall(req.encode())
        head = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in head:
            if time.monotonic() > deadline or len(head) > 16384:
                raise ConnError("WebSocket handshake: no complete answer within %.0f s" % timeout)
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = self.sock.recv(4096)
            except OSError as e:
                raise ConnError("WebSocket handshake failed: %s" % e)
            if not chunk:
                raise ConnError("WebSocket handshake: broker closed (path %s wrong?)" % path)
            head += chunk
        head, self.rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ConnError("WebSocket handshake refused on %s: %s" % (path, lines[0]))
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise ConnError("WebSocket handshake: bad Sec-WebSocket-Accept")
        self.subprotocol = hdrs.get("sec-websocket-protocol")
        self.frames = bytearray(self.rest)
        self.server_pings = 0

    def send(self, data):
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            hdr = bytes([0x82, 0x80 | n])
        elif n < 65536:
            hdr = bytes([0x82, 0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def _frame(self):
        f = self.frames
        if len(f) < 2:
            return None
        op, ln, i = f[0] & 0x0F, f[1] & 0x7F, 2
        if ln == 126:
            if len(f) < 4:
                return None
            ln, i = struct.unpack("!H", bytes(f[2:4]))[0], 4
        elif ln == 127:
            if len(f) < 10:
                return None
            ln, i = struct.unpack("!Q", bytes(f[2:10]))[0], 10
        if f[1] & 0x80:
            i += 4  # servers must not mask; skip a mask anyway
        if len(f) < i + ln:
            return None
        payload = bytes(f[i:i + ln])
        del f[:i + ln]
        return op, payload

    def recv(self, timeout):
        deadline = time.monotonic() + timeout
        out = b""
        for _ in range(100000):
            fr = self._frame()
            if fr is not None:
                op, payload = fr
                if op == 0x8:
                    raise Closed("ws_close")
                if op == 0x9:
                    self.server_pings += 1  # deliberately not answered: the client is cut off
                    continue
                if op in (0x0, 0x1, 0x2):
                    out += payload
                continue
            if out:
                return out
            self.frames += TcpConn.recv(self, deadline - time.monotonic())
        return out


# --------------------------------------------------------------------------- watcher

class Watcher:
    def __init__(self, args, topic):
        self.topic = topic
        self.arrivals = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.connected = threading.Event()
        self.rc = None
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id="indep-watch-" + uuid.uuid4().hex[:8], protocol=paho.MQTTv311)
        if args.username is not None:
            self.c.username_pw_set(args.username, args.password)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a, **k: self.subscribed.set()
        self.c.on_message = self._on_message
        self.sub_filter = topic.split("/")[0] + "/#"
        try:
            self.c.connect(args.host, args.port, keepalive=60)
        except OSError as e:
            raise ConnError("watcher: TCP connect to %s:%d failed: %s" % (args.host, args.port, e))
        self.c.loop_start()
        if not self.connected.wait(10):
            self.stop()
            raise ConnError("watcher: no CONNACK within 10 s")
        if self.rc is not None and self.rc != 0:
            self.stop()
            raise ConnError("watcher: broker refused the connection (%s)" % self.rc)
        self.c.subscribe(self.sub_filter, qos=0)
        if not self.subscribed.wait(10):
            self.stop()
            raise ConnError("watcher: no SUBACK within 10 s")
        # Let the watcher's TCP ACK for the SUBACK go out before the cut client starts: a
        # broker without TCP_NODELAY would otherwise hold the will back (Nagle) until the
        # watcher's delayed ACK, adding ~40 ms on Linux to an immediate will.
        time.sleep(SETTLE_S)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.rc = 0 if not reason_code.is_failure else str(reason_code)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        t = time.monotonic()
        if msg.topic == self.topic:
            with self.lock:
                self.arrivals.append((t, bytes(msg.payload)))

    def first(self):
        with self.lock:
            return self.arrivals[0] if self.arrivals else None

    def stop(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


# --------------------------------------------------------------------------- one run

def open_cut(args, transport):
    if transport == "ws":
        return WsConn(args.host, args.ws_port, args.ws_path, 10)
    return TcpConn(args.host, args.port, 10)


def read_connack(conn, reader, t_sent, timeout, seen):
    deadline = t_sent + timeout
    for _ in range(10000):
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None, None
        try:
            data = conn.recv(left)
        except socket.timeout:
            return None, None, None
        except Closed as c:
            return None, (time.monotonic() - t_sent) * 1000, c.how
        for typ, body in reader.feed(data):
            seen.append(PACKET_NAMES.get(typ, str(typ)))
            if typ == 2:
                return body[1] if len(body) > 1 else None, (time.monotonic() - t_sent) * 1000, None
    return None, None, None


def wait_close(conn, reader, deadline, seen):
    """Read until the broker closes or the deadline. Returns (t_close, how) or (None, None)."""
    for _ in range(100000):
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        try:
            data = conn.recv(left)
        except socket.timeout:
            return None, None
        except Closed as c:
            return time.monotonic(), c.how
        except OSError as e:
            return time.monotonic(), "error:%s" % e.__class__.__name__
        for typ, body in reader.feed(data):
            name = PACKET_NAMES.get(typ, str(typ))
            if typ == 14 and body:
                name += "(rc=0x%02x)" % body[0]
            seen.append(name)
    return None, None


def wait_will(watcher, deadline):
    for _ in range(100000):
        got = watcher.first()
        if got is not None or time.monotonic() >= deadline:
            return got
        time.sleep(0.002)
    return None


def ms(t, t0):
    return None if t is None else round((t - t0) * 1000, 1)


def one_run(args, test, transport, run):
    cid = "indep-cut-" + uuid.uuid4().hex[:8]
    topic = args.will_topic.replace("{client_id}", cid)
    window = args.window if args.window is not None else 4 * args.keepalive + 10
    rec = {"test": test, "transport": transport, "protocol": args.protocol, "keepalive_s": args.keepalive,
           "run": run}
    watcher = Watcher(args, topic) if test != "connack" else None
    conn = None
    try:
        conn = open_cut(args, transport)
        if transport == "ws":
            rec["ws_subprotocol"] = conn.subprotocol
        reader = PacketReader()
        seen = []
        pkt = connect_packet(cid, args.keepalive, args.protocol, will_topic=topic,
                             username=args.username, password=args.password)
        conn.send(pkt)
        t_connect = time.monotonic()
        rc, connack_ms, closed_how = read_connack(conn, reader, t_connect, 10, seen)
        rec["connack_rc"] = rc
        rec["connack_ms"] = round(connack_ms, 1) if connack_ms is not None and closed_how is None else None
        if test == "connack":
            rec["answer"] = "connack" if rc is not None else ("closed:" + closed_how if closed_how else "nothing within 10 s")
            rec["closed_ms"] = round(connack_ms, 1) if closed_how else None
            if closed_how is None and rc is not None:
                t_close, how = wait_close(conn, reader, time.monotonic() + 2, seen)
                rec["closed_after_connack_ms"] = ms(t_close, t_connect)
            rec["broker_packets"] = seen
            return rec
        if rc is None:
            raise ConnError("cut client: no CONNACK (%s)" % (closed_how or "timeout 10 s"))
        if rc != 0:
            raise ConnError("cut client: CONNACK refused with code %d (login needed? --username/--password-env)" % rc)
        rec["will_topic"] = topic
        if test == "silent":
            t0 = t_connect
            rec["ref"] = "connect_sent"
            t_close, how = wait_close(conn, reader, t0 + window, seen)
            rec["drop_ms"] = ms(t_close, t0)
            rec["drop_how"] = how
            rec["drop_x_keepalive"] = None if t_close is None else round((t_close - t0) / args.keepalive, 3)
            got = wait_will(watcher, t0 + window)
        elif test == "abrupt":
            t0 = time.monotonic()
            conn.close()  # FIN with no DISCONNECT (and over WS no close frame)
            rec["ref"] = "close"
            rec["drop_ms"] = None
            got = wait_will(watcher, t0 + window)
        elif test == "clean":
            conn.send(DISCONNECT)
            t0 = time.monotonic()
            rec["ref"] = "disconnect_sent"
            t_close, how = wait_close(conn, reader, t0 + window, seen)
            rec["drop_ms"] = ms(t_close, t0)
            rec["drop_how"] = how
            got = wait_will(watcher, t0 + window)
        else:
            raise ValueError(test)
        rec["will_ms"] = None if got is None else ms(got[0], t0)
        if got is not None and got[1] != b"false":
            rec["will_payload"] = got[1].decode("utf-8", "replace")
        rec["window_s"] = window
        rec["broker_packets"] = seen[1:] if seen[:1] == ["CONNACK"] else seen
        if transport == "ws" and conn is not None and conn.server_pings:
            rec["ws_server_pings_unanswered"] = conn.server_pings
        return rec
    finally:
        if conn is not None:
            conn.close()
        if watcher is not None:
            watcher.stop()


def main():
    ap = argparse.ArgumentParser(description="Independent broker measurements (see the module docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="MQTT over TCP (the watcher always uses it)")
    ap.add_argument("--ws-port", type=int, help="MQTT over WebSocket: also run the tests over it")
    ap.add_argument("--ws-path", default="/mqtt")
    ap.add_argument("--ws-only", action="store_true", help="with --ws-port: cut client over WS only")
    ap.add_argument("--username")
    ap.add_argument("--password-env", help="name of the environment variable holding the password")
    ap.add_argument("--keepalive", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--test", default="all", choices=["silent", "abrupt", "clean", "connack", "all"])
    ap.add_argument("--protocol", type=int, default=4, choices=[4, 5], help="MQTT protocol level: 4 = 3.1.1, 5 = 5.0")
    ap.add_argument("--will-topic", default="test/{client_id}/connected",
                    help="{client_id} is replaced by the cut client's id (unique per run)")
    ap.add_argument("--window", type=float, help="seconds to wait for a drop / will (default 4 x keepalive + 10)")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("only 127.0.0.1 is a target here")
    if not 1 <= args.runs <= 100 or not 1 <= args.keepalive <= 600:
        ap.error("--runs must be 1..100 and --keepalive 1..600")
    args.password = None
    if args.password_env:
        args.password = os.environ.get(args.password_env)
        if args.password is None:
            ap.error("environment variable %s is not set" % args.password_env)
    tests = ["silent", "abrupt", "clean"] if args.test == "all" else [args.test]
    transports = ([] if args.ws_only else ["tcp"]) + (["ws"] if args.ws_port else [])
    for test in tests:
        for transport in transports:
            for run in range(1, args.runs + 1):
                try:
                    rec = one_run(args, test, transport, run)
                except ConnError as e:
                    sys.stderr.write("measure.py: %s [%s %s run %d]\n" % (e, test, transport, run))
                    return 2
                print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
