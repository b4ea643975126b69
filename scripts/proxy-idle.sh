#!/usr/bin/env bash
# What idle proxies cost: `unplug proxy` with its API (no --listen), N proxies created through
# toxiproxy's API (POST /proxies, listen 127.0.0.1:0, upstream a mosquitto started here), left
# idle for W seconds. Prints the process's CPU over the window (utime + stime from
# /proc/PID/stat, as % of one core), its threads and RSS at the end of the window, then sends
# SIGINT and prints how long it took to exit and its exit status. Issue 23: 200 idle proxies
# under 1% of a core.
#
#   scripts/proxy-idle.sh [N] [W] [path/to/unplug]     # default: 200, 60, target/release/unplug
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
window=${2:-60}
bin=${3:-target/release/unplug}
[ -x "$bin" ] || { echo "no $bin: cargo build --release first" >&2; exit 2; }
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker=$(free); api=$(free)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$broker" > "$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.log" 2>&1 & pids+=($!)
"$bin" proxy --out "$tmp/journals" --api "127.0.0.1:$api" > "$tmp/stdout.txt" 2>"$tmp/stderr.txt" &
proxy=$!; pids+=($proxy)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$api/version" > /dev/null && break; sleep 0.05; done

created=0
for i in $(seq "$n"); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$api/proxies" \
    -H 'Content-Type: application/json' \
    -d "{\"name\":\"idle$i\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$broker\"}")
  [ "$code" = 201 ] && created=$((created + 1))
done
listed=$(curl -s "http://127.0.0.1:$api/proxies" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
# Each new proxy asks the broker which it is (a connection of its own, ending within ~3 s).
sleep 5

ticks() { awk '{print $14 + $15}' "/proc/$proxy/stat"; }
hz=$(getconf CLK_TCK)
c0=$(ticks); t0=$(date +%s.%N)
sleep "$window"
c1=$(ticks); t1=$(date +%s.%N)
threads=$(awk '/^Threads/ {print $2}' "/proc/$proxy/status")
rss=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$proxy/status")
cpu=$(python3 -c "print(f'{($c1 - $c0) / $hz / ($t1 - $t0) * 100:.2f}')")

s0=$(date +%s.%N)
kill -INT "$proxy"
status=0; wait "$proxy" || status=$?
s1=$(date +%s.%N)
stop=$(python3 -c "print(f'{$s1 - $s0:.2f}')")
echo "proxies: $created created (201), $listed listed; idle ${window} s: CPU ${cpu}% of a core ($((c1 - c0)) ticks at ${hz}/s), $threads threads, RSS $rss MB; SIGINT: exit $status in $stop s"
