#!/usr/bin/env bash
# The seed's four scenarios at the seed's timing on the seed's own broker, mosquitto 1.4.15
# (scripts/build-mosquitto-1.4.sh), through a kernel cut with mqtt.js as willy, into
# results/seed-broker (README.md there holds the table, written by hand from these runs).
#
#   scripts/seed-broker.sh [UNPLUG_BIN]
#
# The broker is $UNPLUG_MOSQUITTO14_BIN, else the build script's default prefix. Without it
# (CI, a fresh machine: building it needs the sources from GitHub) this says SKIPPED and exits
# 0, leaving the committed runs alone. Needs root (the kernel cut) and mqtt.js (scripts/drivers.sh).
set -euo pipefail
bin=${1:-target/release/unplug}
m14=${UNPLUG_MOSQUITTO14_BIN:-$HOME/.cache/unplug/mosquitto-1.4.15/sbin/mosquitto}
if [ ! -x "$m14" ]; then
  echo "SKIPPED results/seed-broker: no mosquitto 1.4.15 at $m14 (scripts/build-mosquitto-1.4.sh)"
  exit 0
fi
mkdir -p results/seed-broker
status=0
pids=()
for sc in ws-no-will ws-last-will native-no-will native-last-will; do
  "$bin" scenario $sc --seed-timing --willy mqttjs --cut kernel --broker mosquitto \
    --mosquitto-bin "$m14" --name $sc.mqttjs.kernel --out results/seed-broker -q &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit "$status"
