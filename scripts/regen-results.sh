#!/usr/bin/env bash
# Rebuild results/ from real runs: every scenario at fast timing (keepalive from the scenario
# files, 1-2 s), and the seed's four runs at the seed's own timing (keepalive 60 s; about
# 3 minutes, run in parallel).
#
#   scripts/regen-results.sh            # both
#   scripts/regen-results.sh --fast     # fast timing only
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
bin=target/release/unplug
seed="native-no-will native-last-will ws-no-will ws-last-will"

mkdir -p results/fast results/seed-timing
rm -f results/fast/* results/seed-timing/*

status=0
"$bin" suite --jobs 4 --out results/fast | tee results/fast/SUITE.txt || status=$?
if [ "${1:-}" != "--fast" ]; then
  # shellcheck disable=SC2086
  "$bin" suite --jobs 4 --seed-timing --out results/seed-timing $seed | tee results/seed-timing/SUITE.txt || status=$?
fi
echo "results/ regenerated (exit $status)"
exit "$status"
