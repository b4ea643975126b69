#!/bin/bash
# One 16,000-willy storm in 4 shards against one mosquitto; mosquitto's CPU and RSS around it.
set -u
B=${B:-/work/wt28/target/release/unplug}
N=${N:-4}
FLEET=${FLEET:-/tmp/w28/storm16k.toml}
OUT=${OUT:-/tmp/w28/m16}
PORT=${PORT:-18999}
rm -rf "$OUT"; mkdir -p "$OUT"
cat > "$OUT/mosquitto.conf" <<C
listener $PORT 127.0.0.1
allow_anonymous true
max_connections -1
C
ulimit -n 20000
/usr/sbin/mosquitto -c "$OUT/mosquitto.conf" > "$OUT/mosquitto.log" 2>&1 &
MP=$!
trap 'kill $MP 2>/dev/null; wait $MP 2>/dev/null' EXIT
sleep 0.5
grep "open files" /proc/$MP/limits > "$OUT/mosquitto.limits"
tick=$(getconf CLK_TCK)
cpu() { awk -v t=$tick '{printf "%.2f", ($14+$15)/t}' /proc/$MP/stat; }
echo "load before: $(cat /proc/loadavg)" > "$OUT/machine.txt"
c0=$(cpu)
/usr/bin/time -v "$B" storm --shards "$N" --broker "tcp://127.0.0.1:$PORT" --start-in 3 --out "$OUT/storm" "$FLEET" > "$OUT/storm.out" 2> "$OUT/storm.err"
echo "storm exit: $?" >> "$OUT/machine.txt"
c1=$(cpu)
echo "mosquitto cpu s: $c0 -> $c1" >> "$OUT/machine.txt"
grep -E "VmHWM|VmRSS" /proc/$MP/status >> "$OUT/machine.txt"
echo "load after: $(cat /proc/loadavg)" >> "$OUT/machine.txt"
cat "$OUT/mosquitto.limits" >> "$OUT/machine.txt"
cat "$OUT/machine.txt"
