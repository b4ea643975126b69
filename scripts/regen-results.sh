#!/usr/bin/env bash
# Rebuild results/ from real runs:
#   results/fast/         every scenario on the builtin broker, at the scenario files' timing
#   results/compare/      the seed's four runs on builtin and mosquitto, side by side (COMPARE.md)
#   results/seed-timing/  the seed's four runs at the seed's own timing (keepalive 60 s), on
#                         builtin and mosquitto (about 4 minutes, run in parallel)
#   results/conformance/  the will's spec checks x brokers (CONFORMANCE.md)
#   results/faults/       each network and process fault over TCP and WebSocket, on builtin and
#                         mosquitto (the drop fault is TCP-only and runs in fast/)
#   results/probe/        the will table (unplug probe): builtin, mosquitto, and two brokers from
#                         the registries given by URL, amqtt (PyPI) and aedes (npm); PROBE.md
#   results/tls/          the seed's runs over tcp, tls, ws and wss on builtin and mosquitto
#                         (COMPARE.md), the TLS closes, and TLS passed through the proxy
#   results/proxy/        a device through `unplug proxy` (scripts/proxy-example.sh)
#   results/clients/, compare-clients/, seed-client/   willy drivers and kernel cuts
#   results/seed-broker/  the seed's four on mosquitto 1.4.15, only where that binary exists
#   results/will-storm/   4,000 willies cut at once, on builtin and mosquitto (gzipped journals)
#   results/index.html    every run above: verdicts, checks, pictures, links (unplug index)
#
#   scripts/regen-results.sh            # all of it
#   scripts/regen-results.sh --fast     # everything but the seed timing
#
# mosquitto comes from Debian: apt-get install mosquitto; amqtt and aedes from
# scripts/third-party-brokers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
bin=target/release/unplug
seed="native-no-will native-last-will ws-no-will ws-last-will"
faults="reset close native-crash native-freeze half-open-upstream half-open-downstream
latency-under-keepalive bandwidth-under-keepalive heal-before-timeout refuse-vs-hang"

for d in fast compare faults seed-timing conformance probe proxy tls; do
  mkdir -p "results/$d"
  if [ "$d" != seed-timing ] || [ "${1:-}" != "--fast" ]; then
    find "results/$d" -maxdepth 1 -type f ! -name README.md -delete
  fi
done

status=0
"$bin" suite --out results/fast | tee results/fast/SUITE.txt || status=$?
"$bin" compare --out results/compare | tee results/compare/COMPARE.txt || status=$?
# shellcheck disable=SC2086
"$bin" compare --transports tcp,ws --out results/faults $faults \
  | tee results/faults/COMPARE.txt || status=$?
"$bin" conformance --out results/conformance | tee results/conformance/CONFORMANCE.txt || status=$?
# TLS against plain; its README.md is written by hand from these runs' files.
"$bin" compare --transports tcp,tls,ws,wss --out results/tls native-no-will native-last-will \
  | tee results/tls/COMPARE.txt || status=$?
rm -rf results/tls-closes
"$bin" compare --transports tls --out results/tls-closes close tls-close-without-notify tls-notify-without-fin \
  | tee results/tls/CLOSES.txt || status=$?
mv results/tls-closes/COMPARE.md results/tls/CLOSES.md
mv results/tls-closes/* results/tls/ && rmdir results/tls-closes
for b in builtin mosquitto; do
  "$bin" scenario tls-last-will --broker $b --tls-tap pass-through --name tls-last-will.$b.pass-through \
    --out results/tls -q || status=$?
done
# The will table over TLS (exit 1: the documented deviations are marked `!`).
rm -rf results/tls/probe
"$bin" probe --brokers builtin,mosquitto --transports tls,wss --out results/tls/probe \
  | tee results/tls/PROBE.txt || true
if [ "${1:-}" != "--fast" ]; then
  # shellcheck disable=SC2086
  "$bin" compare --seed-timing --out results/seed-timing $seed \
    | tee results/seed-timing/COMPARE.txt || status=$?
fi
# The probe: the third-party brokers run here, on free loopback ports, for its runs only.
scripts/third-party-brokers.sh
tp=${UNPLUG_THIRD_PARTY:-/opt/unplug-third-party}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
a_tcp=$(port); a_ws=$(port); e_tcp=$(port); e_ws=$(port)
"$tp/amqtt/bin/python" scripts/independent/start-amqtt.py --port "$a_tcp" --ws-port "$a_ws" >/dev/null 2>&1 &
amqtt_pid=$!
node scripts/independent/start-aedes.js --prefix "$tp/aedes" --port "$e_tcp" --ws-port "$e_ws" --ws-path /mqtt >/dev/null 2>&1 &
aedes_pid=$!
trap 'kill $amqtt_pid $aedes_pid 2>/dev/null || true' EXIT
for p in "$a_tcp" "$a_ws" "$e_tcp" "$e_ws"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
"$bin" probe --out results/probe \
  --brokers "builtin,mosquitto,amqtt=tcp://127.0.0.1:$a_tcp,ws://127.0.0.1:$a_ws/mqtt,aedes=tcp://127.0.0.1:$e_tcp,ws://127.0.0.1:$e_ws/mqtt" \
  | tee results/probe/PROBE.txt || true
kill $amqtt_pid $aedes_pid 2>/dev/null || true
# The probe's URLs hold this run's ports: the files say "tcp://127.0.0.1:PORT", nothing secret.
# A device (amqtt's client) through `unplug proxy` in front of mosquitto, cut for 10 s.
scripts/proxy-example.sh "$bin" | tee results/proxy/VERDICT.txt || status=$?

# willy drivers (scripts/drivers.sh) and kernel cuts (root): the clients side by side, and the
# seed's four with mqtt.js through a kernel cut at the seed's timing. Their README.md tables are
# written by hand from these runs' files.
scripts/drivers.sh
mkdir -p results/clients results/seed-client
for t in tcp ws; do
  for w in rumqttc mqttjs paho; do
    "$bin" scenario results/clients/stay-connected-cut.toml --willy $w --transport $t --cut proxy \
      --name stay.$w.$t.proxy --out results/clients -q || status=$?
  done
  # rumqttc through a kernel cut is its own driver, `unplug driver-rumqttc`, in willy's namespace.
  for w in rumqttc mqttjs paho; do
    "$bin" scenario results/clients/stay-connected-cut.toml --willy $w --transport $t --cut kernel \
      --name stay.$w.$t.kernel --out results/clients -q || status=$?
  done
done
# Every willy through both cuts (rumqttc's kernel cells run its driver).
"$bin" compare native-last-will ws-last-will --brokers builtin --transports tcp,ws \
  --willies rumqttc,mqttjs,paho --cuts proxy,kernel --out results/compare-clients \
  | tee results/compare-clients/COMPARE.txt || status=$?
if [ "${1:-}" != "--fast" ]; then
  for sc in ws-no-will ws-last-will native-no-will native-last-will; do
    "$bin" scenario $sc --seed-timing --willy mqttjs --cut kernel --broker mosquitto \
      --name $sc.mqttjs.kernel --out results/seed-client -q &
  done
  wait
  # The same four on the seed's own mosquitto 1.4.15, where it was built
  # (scripts/build-mosquitto-1.4.sh); elsewhere this says SKIPPED and keeps the committed runs.
  scripts/seed-broker.sh "$bin" || status=$?
fi

# The will storm: 4,000 willies cut at once, on each broker, alone on the machine (a fleet's
# harness-lag bound fails it beside other runs). Journals gzipped: 13-17 MB each.
mkdir -p results/will-storm
for b in builtin mosquitto; do
  rm -f results/will-storm/will-storm.$b.*
  "$bin" scenario will-storm --broker $b --name will-storm.$b --out results/will-storm -q || status=$?
  gzip -f results/will-storm/will-storm.$b.events.jsonl
  rm -f results/will-storm/will-storm.$b.log
done

"$bin" index results
echo "results/ regenerated (exit $status)"
exit "$status"
