#!/usr/bin/env bash
# docs/guide.md's "Use it in front of your own device", for real: mosquitto (Debian), a device
# (amqtt's MQTT client from PyPI, keepalive and a last will; scripts/third-party-brokers.sh
# installs it) connected through `unplug proxy`, the cable pulled with `unplug proxy cut` for
# 10 s, healed, Ctrl-C. Writes results/proxy/sensor-7.{events.jsonl,log,summary.json,svg}.
#
#   scripts/proxy-example.sh [path/to/unplug]     # default: target/release/unplug
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/unplug}
py=${UNPLUG_THIRD_PARTY:-/opt/unplug-third-party}/amqtt/bin/python
out=results/proxy
mkdir -p "$out"
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker=$(free); listen=$(free); api=$(free)
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$broker" > "$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.log" 2>&1 & pids+=($!)
sleep 0.5
"$bin" proxy --listen "127.0.0.1:$listen" --upstream "127.0.0.1:$broker" --name sensor-7 \
  --out "$out" --api "127.0.0.1:$api" > "$tmp/proxy.txt" & proxy=$!; pids+=($proxy)
sleep 1
cat > "$tmp/device.py" <<'PY'
# A device: amqtt's client with a last will, connected for as long as it is given.
import asyncio, sys
from amqtt.client import MQTTClient
async def main(url, seconds):
    c = MQTTClient(client_id="sensor-7", config={"keep_alive": 2, "auto_reconnect": False,
        "will": {"topic": "sensors/7/status", "message": "offline", "qos": 1, "retain": False}})
    await c.connect(url)
    await c.publish("sensors/7/status", b"online", qos=1)
    await asyncio.sleep(seconds)
asyncio.run(main(sys.argv[1], float(sys.argv[2])))
PY
"$py" "$tmp/device.py" "mqtt://127.0.0.1:$listen" 20 > "$tmp/device.txt" 2>&1 & pids+=($!)
sleep 4
"$bin" proxy cut --api "127.0.0.1:$api"
sleep 10
"$bin" proxy heal --api "127.0.0.1:$api"
sleep 2
kill -INT "$proxy"
wait "$proxy"
"$bin" judge "$out/sensor-7.events.jsonl"
