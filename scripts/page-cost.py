#!/usr/bin/env python3
"""What the live page costs `unplug proxy`'s data path: a device streams QoS 0 PUBLISHes through
the proxy to mosquitto, rounds alternating with no page open and with pages reading the page's
event stream (/ui/events, as a browser's EventSource does); per round the throughput (first
byte to the PINGRESP that follows the last PUBLISH) and the proxy process's CPU time per GiB.

  cargo build --release && scripts/page-cost.py [--mb 64] [--rounds 5] [--pages 1]
      [--baseline PATH]   (an unplug binary from before the page: a third row, the same rounds)

Everything on 127.0.0.1, ports chosen free; every wait bounded; the processes it starts are
stopped at the end. Needs mosquitto (scripts/setup.sh installs it).
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def mqtt_string(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def packet(first, body):
    n, rem = len(body), b""
    while True:
        d, n = n % 128, n // 128
        rem += bytes([d | (0x80 if n else 0)])
        if not n:
            break
    return bytes([first]) + rem + body


def connect():
    body = mqtt_string("MQTT") + bytes([4, 0x02 | 0x04, 0, 30]) + mqtt_string("page-cost")
    body += mqtt_string("dev/page-cost/status") + mqtt_string("offline")
    return packet(0x10, body)


def publish64():
    body = mqtt_string("dev/page-cost/data")
    body += b"x" * (62 - len(body))
    p = packet(0x30, body)
    assert len(p) == 64
    return p


def read_exact(s, n, deadline):
    got = b""
    while len(got) < n:
        s.settimeout(max(0.01, deadline - time.time()))
        b = s.recv(n - len(got))
        if not b:
            raise RuntimeError("closed")
        got += b
    return got


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def device(proxy, total):
    """CONNECT, `total` bytes of 64-byte PUBLISHes in 64 KiB writes, PINGREQ; seconds until
    the PINGRESP (the broker has everything before it)."""
    s = socket.create_connection(proxy, timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    deadline = time.time() + 10
    s.sendall(connect())
    assert read_exact(s, 4, deadline) == b"\x20\x02\x00\x00"
    batch = publish64() * 1024
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        s.sendall(batch)
        sent += len(batch)
    s.sendall(b"\xc0\x00")
    deadline = time.time() + 120
    assert read_exact(s, 2, deadline) == b"\xd0\x00"
    took = time.perf_counter() - t0
    s.sendall(b"\xe0\x00")
    s.close()
    return took


class Page(threading.Thread):
    """A browser's EventSource, at the socket: reads /ui/events until stopped."""

    def __init__(self, api):
        super().__init__(daemon=True)
        host, port = api
        self.s = socket.create_connection(api, timeout=5)
        self.s.sendall(f"GET /ui/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       "User-Agent: Mozilla/5.0 page-cost\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.bytes = 0
        self.messages = 0
        self.stop = False

    def run(self):
        self.s.settimeout(0.5)
        while not self.stop:
            try:
                b = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not b:
                return
            self.bytes += len(b)
            self.messages += b.count(b"\ndata:") + b.startswith(b"data:")

    def close(self):
        self.stop = True
        self.join(2)
        self.s.close()


def line_with(proc, needle, within=15):
    deadline = time.time() + within
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if needle in line:
            return line
    raise RuntimeError(f"no line with {needle!r}")


def addr_after(line, word):
    rest = line.split(word, 1)[1].replace("http://", "")
    host, port = rest.split(",")[0].split()[0].rstrip(";").rsplit(":", 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pages", type=int, default=1)
    ap.add_argument("--baseline", help="an unplug binary built before the page")
    ap.add_argument("--bin", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "unplug"))
    a = ap.parse_args()
    if not (1 <= a.mb <= 4096 and 1 <= a.rounds <= 50 and 1 <= a.pages <= 8):
        sys.exit("page-cost: --mb 1..4096, --rounds 1..50, --pages 1..8")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    tmp = tempfile.mkdtemp(prefix="unplug-page-cost-")
    port = free_port()
    with open(os.path.join(tmp, "m.conf"), "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    procs = []
    try:
        mq = subprocess.Popen([mosquitto, "-c", os.path.join(tmp, "m.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(mq)
        time.sleep(0.3)
        def start(binary, name):
            px = subprocess.Popen([binary, "proxy", "--listen", "127.0.0.1:0", "--upstream",
                                   f"127.0.0.1:{port}", "--api", "127.0.0.1:0", "--name", name,
                                   "--out", tmp, "--quiet"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(px)
            api = addr_after(line_with(px, "api: "), "HTTP API on ")
            proxy = addr_after(line_with(px, f"proxy {name}: listening on"), "listening on ")
            return px, api, proxy

        total = a.mb << 20
        paths = {}
        if a.baseline:
            paths["before the page (baseline binary)"] = start(a.baseline, "base")
        paths["no page open"] = start(a.bin, "dev")
        paths[f"{a.pages} page(s) open"] = paths["no page open"]
        rows = {mode: [] for mode in paths}
        for _, _, proxy in paths.values():
            device(proxy, 1 << 20)  # warm up
        for r in range(a.rounds):
            # The order rotates each round: the neighbours' noise falls on every row alike.
            modes = list(rows)
            modes = modes[r % len(modes):] + modes[:r % len(modes)]
            for mode in modes:
                px, api, proxy = paths[mode]
                pages = [Page(api) for _ in range(a.pages)] if "open" in mode and "no page" not in mode else []
                for p in pages:
                    p.start()
                time.sleep(0.3)
                c0 = cpu_s(px.pid)
                took = device(proxy, total)
                cpu = cpu_s(px.pid) - c0
                time.sleep(0.6)  # the last messages of the round reach the page
                got = [(p.messages, p.bytes) for p in pages]
                for p in pages:
                    p.close()
                rows[mode].append((total / took / 1e6, cpu / (total / (1 << 30)), got))
        print(f"{a.mb} MiB of 64-byte QoS 0 PUBLISHes per round through `unplug proxy` "
              f"(release) to mosquitto, {a.rounds} rounds each, alternating:")
        print("| | MB/s (median, min..max) | proxy CPU s per GiB (median) | page messages per round |")
        print("|---|---|---|---|")
        for mode, rs in rows.items():
            mbs = [x[0] for x in rs]
            cpu = [x[1] for x in rs]
            msgs = [sum(m for m, _ in x[2]) for x in rs]
            print(f"| {mode} | {statistics.median(mbs):.0f} ({min(mbs):.0f}..{max(mbs):.0f}) | "
                  f"{statistics.median(cpu):.2f} | "
                  f"{statistics.median(msgs) if msgs and rs[0][2] else '-'} |")
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
