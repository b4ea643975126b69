#!/usr/bin/env bash
# `unplug proxy` with its defaults left running in front of mosquitto for MINUTES, carrying a
# device that publishes RATE 64-byte QoS 0 PUBLISHes a second (with keepalive PINGREQs between
# bursts), and a proxy cut for 10 s every 10 minutes. Every minute one line: elapsed minutes,
# RSS MB, journal MB (the files of --out), CPU % of a core over the minute, threads. Then Ctrl-C
# and the stop's seconds. For the "days in front of a device" figures in docs/measurements.md.
#
#   scripts/proxy-long.sh [MINUTES] [RATE] [path/to/unplug]   # default: 60, 2000, target/release/unplug
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
rate=${2:-2000}
bin=${3:-target/release/unplug}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker=$(free); listen=$(free); api=$(free)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$broker" > "$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.log" 2>&1 & pids+=($!)
# The proxy asks the broker which it is as it starts: a broker not yet listening is "unknown",
# judged by the spec's own 250 ms allowance instead of mosquitto 2.0's.
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$broker") 2>/dev/null && break; sleep 0.05; done
"$bin" proxy --listen "127.0.0.1:$listen" --upstream "127.0.0.1:$broker" --name long \
  --out "$tmp/out" --api "127.0.0.1:$api" > "$tmp/stdout.txt" 2>"$tmp/stderr.txt" & proxy=$!; pids+=($proxy)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null && break; sleep 0.05; done

# The device: reconnects after a cut (its keepalive 5 s notices), publishes RATE a second.
python3 - "$listen" "$rate" "$((minutes * 60))" > "$tmp/device.txt" 2>&1 <<'PY' & pids+=($!)
import socket, struct, sys, time
port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cid = b"long-device"
wt, wp = b"devices/long/s", b"offline"
will = struct.pack(">H", len(wt)) + wt + struct.pack(">H", len(wp)) + wp
body = b"\x00\x04MQTT\x04\x06\x00\x05" + struct.pack(">H", len(cid)) + cid + will
topic = b"devices/long/t"
payload = b"x" * (64 - 2 - 2 - len(topic))
one = bytes([0x30, 2 + len(topic) + len(payload)]) + struct.pack(">H", len(topic)) + topic + payload
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=6)
        s.sendall(bytes([0x10, len(body)]) + body)
        if s.recv(4)[:1] != b"\x20":
            raise OSError("no CONNACK")
        last_ping = time.monotonic()
        while time.monotonic() < end:
            t = time.monotonic()
            s.sendall(one * (rate // 10))
            if t - last_ping > 4:
                s.sendall(b"\xc0\x00")
                last_ping = t
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
    except OSError:
        time.sleep(1)
PY

ticks() { awk '{print $14 + $15}' "/proc/$proxy/stat"; }
hz=$(getconf CLK_TCK)
echo "minute rss_mb journal_mb cpu_pct threads"
prev=$(ticks)
since=$(date +%s.%N)
for m in $(seq "$minutes"); do
  sleep 60
  if [ $((m % 10)) -eq 5 ]; then
    "$bin" proxy cut --api "127.0.0.1:$api" >/dev/null
    sleep 10
    "$bin" proxy heal --api "127.0.0.1:$api" >/dev/null
  fi
  now=$(ticks)
  at=$(date +%s.%N)
  rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$proxy/status")
  threads=$(awk '/^Threads/ {print $2}' "/proc/$proxy/status")
  journal=$(du -sm "$tmp/out" | cut -f1)
  echo "$m $rss $journal $(awk -v a="$prev" -v b="$now" -v hz="$hz" -v s="$(awk -v a="$since" -v b="$at" 'BEGIN {print b - a}')" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}') $threads"
  prev=$now
  since=$at
done
t0=$(date +%s.%N)
kill -INT "$proxy"
wait "$proxy" || true
t1=$(date +%s.%N)
echo "stop_s $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') stdout_bytes $(stat -c %s "$tmp/stdout.txt")"
tail -12 "$tmp/stdout.txt"
