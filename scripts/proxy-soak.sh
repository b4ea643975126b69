#!/usr/bin/env bash
# `unplug proxy` with its defaults, in front of mosquitto, carrying a device that streams N 64-byte
# QoS 0 PUBLISHes (a raw-socket client: CONNECT, then PUBLISHes as fast as the socket takes them),
# then Ctrl-C. Samples the proxy's RSS every 20 ms while it streams, reads the kernel's peak
# (VmHWM) before and through the stop, and prints one line of figures: PUBLISHes/s, RSS, the
# peak before Ctrl-C and over its whole life, journal and stdout bytes, SIGINT-to-exit seconds.
#
#   scripts/proxy-soak.sh [N] [path/to/unplug]     # default: 2000000, target/release/unplug
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
bin=${2:-target/release/unplug}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker=$(free); listen=$(free); api=$(free)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$broker" > "$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.log" 2>&1 & pids+=($!)
# Listening before the proxy asks it which broker it is (else: "unknown broker").
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$broker") 2>/dev/null && break; sleep 0.05; done
"$bin" proxy --listen "127.0.0.1:$listen" --upstream "127.0.0.1:$broker" --name soak \
  --out "$tmp" --api "127.0.0.1:$api" > "$tmp/stdout.txt" 2>"$tmp/stderr.txt" & proxy=$!; pids+=($proxy)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null && break; sleep 0.05; done

# RSS sampler: "phase kB" lines; the phase file says streaming or stopping.
echo streaming > "$tmp/phase"
( while kill -0 "$proxy" 2>/dev/null; do
    kb=$(awk '/^VmRSS/ {print $2}' "/proc/$proxy/status" 2>/dev/null || true)
    [ -n "$kb" ] && echo "$(cat "$tmp/phase") $kb"
    sleep 0.02
  done ) > "$tmp/rss.txt" & pids+=($!)

python3 - "$listen" "$n" > "$tmp/device.txt" <<'PY'
import socket, struct, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
cid = b"soak-device"
body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack(">H", len(cid)) + cid
s.sendall(bytes([0x10, len(body)]) + body)
assert s.recv(4)[:1] == b"\x20", "no CONNACK"
topic = b"soak/t"
payload = b"x" * (64 - 2 - 2 - len(topic))
one = bytes([0x30, 2 + len(topic) + len(payload)]) + struct.pack(">H", len(topic)) + topic + payload
assert len(one) == 64
batch = one * 1000
t0 = time.monotonic()
for _ in range(n // 1000):
    s.sendall(batch)
s.sendall(b"\xe0\x00")
dt = time.monotonic() - t0
print(f"{n / dt:.0f}")
s.close()
PY
sleep 1
echo stopping > "$tmp/phase"
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$proxy/status" 2>/dev/null || true; }
hwm_streaming=$(hwm)
t0=$(date +%s.%N)
kill -INT "$proxy"
# The kernel's high-water mark of the proxy's RSS, read until it exits: the peak of its whole
# life, stop included, however short the stop.
hwm_all=$hwm_streaming
while kill -0 "$proxy" 2>/dev/null; do h=$(hwm); [ -n "$h" ] && [ "$h" -gt "$hwm_all" ] && hwm_all=$h; done
wait "$proxy" || true
t1=$(date +%s.%N)
sleep 0.1
peak() { awk -v p="$1" '$1 == p && $2 > m {m = $2} END {printf "%.1f", m / 1024}' "$tmp/rss.txt"; }
journal=$(stat -c %s "$tmp/soak.events.jsonl")
printf 'publishes=%s per_s=%s rss_streaming_mb=%s peak_rss_mb=%.1f peak_rss_with_stop_mb=%.1f journal_bytes=%s stdout_bytes=%s stop_s=%s\n' \
  "$n" "$(cat "$tmp/device.txt")" "$(peak streaming)" "$(echo "$hwm_streaming" | awk '{print $1 / 1024}')" \
  "$(echo "$hwm_all" | awk '{print $1 / 1024}')" "$journal" \
  "$(stat -c %s "$tmp/stdout.txt")" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
if [ -s "$tmp/stderr.txt" ]; then echo "stderr:"; head -5 "$tmp/stderr.txt"; fi
tail -4 "$tmp/stdout.txt"
