#!/usr/bin/env bash
# Install the third-party brokers the tests judge, from the package registries, into
# ${UNPLUG_THIRD_PARTY:-/opt/unplug-third-party} (nothing else on the machine is touched):
#   amqtt 0.12.1 (PyPI):  never drops a silent client: breaks MQTT-3.1.2-24 (its keepalive
#                         read timeout fires, and its handler does nothing)
#   aedes 1.2.0 (npm):    drops at 1.5 x keepalive, as the spec says; says nothing of its name
# and a client library nobody here wrote, that drives `unplug proxy` (tests/toxiproxy_api.rs):
#   toxiproxy-node-client 4.1.0 (npm): toxiproxy's Node client, used unchanged
# Each takes a few seconds; a second run finds them and does nothing.
set -euo pipefail
dir=${UNPLUG_THIRD_PARTY:-/opt/unplug-third-party}
mkdir -p "$dir"
if ! "$dir/amqtt/bin/python" -c 'import amqtt' 2>/dev/null; then
  python3 -m venv "$dir/amqtt"
  "$dir/amqtt/bin/pip" install --quiet --disable-pip-version-check amqtt==0.12.1
fi
if [ ! -d "$dir/aedes/node_modules/aedes" ] || [ ! -d "$dir/aedes/node_modules/ws" ]; then
  npm install --silent --prefix "$dir/aedes" --no-audit --no-fund aedes@1.2.0 ws@8.23.0 >/dev/null
fi
if [ ! -d "$dir/toxiproxy/node_modules/toxiproxy-node-client" ]; then
  npm install --silent --prefix "$dir/toxiproxy" --no-audit --no-fund toxiproxy-node-client@4.1.0 >/dev/null
fi
echo "toxiproxy-node-client $(node -p "require('$dir/toxiproxy/node_modules/toxiproxy-node-client/package.json').version") in $dir/toxiproxy"
echo "third-party brokers in $dir: amqtt $("$dir/amqtt/bin/python" -c 'import importlib.metadata as m; print(m.version("amqtt"))'), aedes $(node -p "require('$dir/aedes/node_modules/aedes/package.json').version")"
