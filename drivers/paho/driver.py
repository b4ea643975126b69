#!/usr/bin/env python3
"""unplug's willy driver for paho-mqtt 2.x (Python).

The line protocol is in README.md, "willy drivers": one JSON command per line on stdin
(connect, publish, disconnect, quit), one JSON report per line on stdout, each with `ms` (this
process's monotonic clock) and `says` (paho's own words). The harness runs the cycles; paho's
own reconnects are never used (loop_start's thread does not reconnect after a failed connect()
and we never call reconnect()). paho 2.x has no CONNACK timeout of its own, so this driver
reports `connection_failed` itself when none came within the command's connect_timeout_ms.
"""
import json
import sys
import ssl
import threading
import time
import urllib.parse

try:
    import paho.mqtt.client as mqtt
    from importlib.metadata import version as _version

    VERSION = _version("paho-mqtt")
except ImportError as e:
    sys.stderr.write(f"the PyPI package paho-mqtt is not installed ({e}): run scripts/drivers.sh\n")
    sys.exit(2)

T0 = time.monotonic()
OUT = threading.Lock()


def report(kind, **fields):
    line = json.dumps({"report": kind, "ms": (time.monotonic() - T0) * 1000.0, **fields})
    with OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Attempt:
    """One connection: its client, and whether it connected, failed or was told to end."""

    def __init__(self, c):
        self.connected = False
        self.done = False
        self.ending = False
        self.lock = threading.Lock()
        u = urllib.parse.urlsplit(c["url"])
        transport = "websockets" if u.scheme in ("ws", "wss") else "tcp"
        cl = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=c["client_id"],
            clean_session=c["clean"],
            protocol=mqtt.MQTTv311,
            transport=transport,
            reconnect_on_failure=False,
        )
        if transport == "websockets":
            cl.ws_set_options(path=u.path or "/mqtt")
        tls = c.get("tls")
        if tls:
            # mqtts:// and wss://. Python's ssl checks the certificate against the host paho
            # connects to (the URL's address: the run's certificate names it too), not
            # `servername`; the CA goes in through a context, no file needed.
            ctx = ssl.create_default_context(cadata=tls.get("ca_pem"))
            if tls.get("insecure"):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            cl.tls_set_context(ctx)
        if c.get("username") is not None:
            cl.username_pw_set(c["username"], c.get("password"))
        w = c.get("will")
        if w:
            cl.will_set(w["topic"], w["payload"], w.get("qos", 0), w.get("retain", False))
        cl.on_connect = self.on_connect
        cl.on_disconnect = self.on_disconnect
        cl.on_publish = self.on_publish
        self.client = cl
        self.topics = {}
        self.timer = threading.Timer(c["connect_timeout_ms"] / 1000.0, self.on_timeout)
        self.timer.daemon = True
        try:
            cl.connect(u.hostname, u.port, keepalive=c["keepalive_s"])
        except Exception as e:  # socket errors: refused, unreachable, timed out
            self.fail(f"connect: {type(e).__name__}: {e}")
            return
        self.timer.start()
        cl.loop_start()

    def fail(self, says, kind=None):
        with self.lock:
            if self.done:
                return
            self.done = True
        self.timer.cancel()
        report(kind or ("disconnected" if self.connected else "connection_failed"), says=says)

    def on_timeout(self):
        if not self.connected:
            self.fail("no CONNACK within connect_timeout_ms (the driver's timer: paho has none)")
            self.client.disconnect()
            self.client.loop_stop()

    def on_connect(self, client, userdata, flags, reason_code, properties):
        self.timer.cancel()
        if reason_code.is_failure:
            self.fail(f"on_connect: {reason_code}")
            return
        self.connected = True
        report("connected", session_present=bool(flags.session_present), says=f"on_connect: {reason_code}")

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self.ending:
            report("closed", says=f"on_disconnect: {reason_code}")
            return
        self.fail(f"on_disconnect: {reason_code}")

    def on_publish(self, client, userdata, mid, reason_code, properties):
        topic, payload = self.topics.pop(mid, ("", ""))
        report("published", topic=topic, says=f"{payload} was published (on_publish mid {mid})")


current = None


def main():
    global current
    report("ready", says=f"paho-mqtt {VERSION} on Python {sys.version.split()[0]}")
    for line in sys.stdin:
        try:
            c = json.loads(line)
        except ValueError as e:
            report("bad_command", says=f"not JSON: {e}")
            continue
        cmd = c.get("cmd")
        if cmd == "connect":
            if current is not None:
                current.ending = True
                current.client.disconnect()
                current.client.loop_stop()
            current = Attempt(c)
        elif cmd == "publish":
            if current is None:
                report("bad_command", says="publish before connect")
                continue
            info = current.client.publish(c["topic"], c["payload"], c.get("qos", 0), c.get("retain", False))
            current.topics[info.mid] = (c["topic"], c["payload"])
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                report("publish_failed", topic=c["topic"], says=mqtt.error_string(info.rc))
        elif cmd == "disconnect":
            if current is None:
                report("bad_command", says="disconnect before connect")
                continue
            current.ending = True
            rc = current.client.disconnect()
            report("disconnect_returned", says=f"disconnect() returned {rc}")
        elif cmd == "quit":
            break
        else:
            report("bad_command", says=f"unknown command {cmd!r}")
    if current is not None:
        current.client.loop_stop()


if __name__ == "__main__":
    main()
