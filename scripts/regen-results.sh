#!/usr/bin/env bash
# Rebuild results/ from real runs:
#   results/fast/         every scenario on the builtin broker, at the scenario files' timing
#   results/compare/      the seed's four runs on builtin and mosquitto, side by side (COMPARE.md)
#   results/seed-timing/  the seed's four runs at the seed's own timing (keepalive 60 s), on
#                         builtin and mosquitto (about 4 minutes, run in parallel)
#   results/conformance/  the will's spec checks x brokers (CONFORMANCE.md)
#   results/faults/       each network and process fault over TCP and WebSocket, on builtin and
#                         mosquitto (the drop fault is TCP-only and runs in fast/)
#   results/index.html    every run above: verdicts, checks, pictures, links (unplug index)
#
#   scripts/regen-results.sh            # all of it
#   scripts/regen-results.sh --fast     # everything but the seed timing
#
# mosquitto comes from Debian: apt-get install mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
bin=target/release/unplug
seed="native-no-will native-last-will ws-no-will ws-last-will"
faults="reset close native-crash native-freeze half-open-upstream half-open-downstream
latency-under-keepalive bandwidth-under-keepalive heal-before-timeout refuse-vs-hang"

for d in fast compare faults seed-timing conformance; do
  mkdir -p "results/$d"
  if [ "$d" != seed-timing ] || [ "${1:-}" != "--fast" ]; then
    find "results/$d" -maxdepth 1 -type f -delete
  fi
done

status=0
"$bin" suite --jobs 6 --out results/fast | tee results/fast/SUITE.txt || status=$?
"$bin" compare --jobs 6 --out results/compare | tee results/compare/COMPARE.txt || status=$?
# shellcheck disable=SC2086
"$bin" compare --jobs 6 --transports tcp,ws --out results/faults $faults \
  | tee results/faults/COMPARE.txt || status=$?
"$bin" conformance --jobs 6 --out results/conformance | tee results/conformance/CONFORMANCE.txt || status=$?
if [ "${1:-}" != "--fast" ]; then
  # shellcheck disable=SC2086
  "$bin" compare --jobs 8 --seed-timing --out results/seed-timing $seed \
    | tee results/seed-timing/COMPARE.txt || status=$?
fi
"$bin" index results
echo "results/ regenerated (exit $status)"
exit "$status"
