#!/usr/bin/env bash
# Soak: run the whole suite N times back to back with a CPU burner on every core but one, then
# report each scenario's verdicts across the runs. A scenario whose verdict differs between
# runs is flaky: the script lists it and exits 1.
#
#   scripts/soak.sh N [JOBS]     (JOBS: the suite's --jobs, default the suite's own: all at once)
#
# Each suite writes into $SOAK_DIR/suite-I (default: a fresh /tmp/unplug-soak.XXXXXX) with its
# SUITE.md and --json file; the summary is printed and saved as $SOAK_DIR/SOAK.md. Extra suite
# arguments can be given in $SOAK_ARGS (e.g. "--broker mosquitto").
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:?usage: scripts/soak.sh N [JOBS]}
JOBS=${2:-}
case "$N$JOBS" in *[!0-9]*) echo "soak: N and JOBS are whole numbers" >&2; exit 2 ;; esac

cargo build --release --locked --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/unplug"
DIR=${SOAK_DIR:-$(mktemp -d /tmp/unplug-soak.XXXXXX)}
mkdir -p "$DIR"

# The burner: a busy loop per core but one, so the suite shares the machine with a CPU hog.
cores=$(nproc)
burners=()
stop_burners() {
  for p in "${burners[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${burners[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_burners EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 1 $((cores > 1 ? cores - 1 : 1))); do
  (while :; do :; done) &
  burners+=($!)
done
echo "soak: $N suites, --jobs ${JOBS:-default}, ${#burners[@]} CPU burner(s) on $cores cores, into $DIR"

start=$(date +%s)
for i in $(seq 1 "$N"); do
  out="$DIR/suite-$i"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  if "$BIN" suite ${JOBS:+--jobs "$JOBS"} --out "$out" --json "$out.json" ${SOAK_ARGS:-} \
    >"$out.stdout" 2>"$out.stderr"; then code=0; else code=$?; fi
  echo "soak: suite $i/$N exit $code in $(($(date +%s) - t0)) s"
  if [ "$code" -ge 128 ]; then
    echo "soak: suite $i was interrupted; stopping" >&2
    break
  fi
done
stop_burners
trap - EXIT

# Each scenario's verdicts over the suites, from the SUITE.md tables: the last cell of each row
# (an error's reason collapsed to "error", since the reason text varies).
awk -F' [|] ' '
  /^\| scenario \|/ { next }
  /^\| / {
    name = substr($1, 3)
    v = $NF; sub(/ \|$/, "", v)
    if (v ~ /^error/) v = "error"
    if (!(name in seen)) { order[++n] = name; seen[name] = 1 }
    count[name, v]++
    if (!((name, v) in has)) { has[name, v] = 1; kinds[name] = kinds[name] SUBSEP v; nk[name]++ }
  }
  END {
    printf "| scenario | verdicts over the suites | flaky |\n|---|---|---|\n"
    flaky = 0
    for (i = 1; i <= n; i++) {
      name = order[i]; split(substr(kinds[name], 2), vs, SUBSEP); line = ""
      for (k = 1; k <= nk[name]; k++) line = line (k > 1 ? "; " : "") vs[k] " x" count[name, vs[k]]
      f = nk[name] > 1 ? "FLAKY" : ""
      if (f != "") flaky++
      printf "| %s | %s | %s |\n", name, line, f
    }
    printf "\n%d scenarios, %d flaky\n", n, flaky
  }' "$DIR"/suite-*/SUITE.md | tee "$DIR/SOAK.md"

suites=$(ls -d "$DIR"/suite-*/SUITE.md 2>/dev/null | wc -l)
echo "soak: $suites suites in $(($(date +%s) - start)) s; summary in $DIR/SOAK.md"
grep -q ' 0 flaky$' "$DIR/SOAK.md"
