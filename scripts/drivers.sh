#!/usr/bin/env bash
# Install the willy drivers' client libraries from the package registries into
# ${UNPLUG_DRIVERS:-/opt/unplug-drivers} (nothing else on the machine is touched):
#   mqtt 5.16.0 (npm)        mqtt.js, the seed's client; brings ws 8.x for WebSocket
#   paho-mqtt 2.2.0 (PyPI)   Eclipse Paho's Python client, in a venv
# The drivers (drivers/mqttjs/driver.js, drivers/paho/driver.py) find them there (docs/guide.md,
# "willy drivers"). A few seconds each; a second run finds them and does nothing.
set -euo pipefail
dir=${UNPLUG_DRIVERS:-/opt/unplug-drivers}
mkdir -p "$dir"
if [ ! -f "$dir/mqttjs/node_modules/mqtt/package.json" ]; then
  npm install --silent --prefix "$dir/mqttjs" --no-audit --no-fund mqtt@5.16.0 >/dev/null
fi
if ! "$dir/paho/bin/python" -c 'import paho.mqtt.client' 2>/dev/null; then
  python3 -m venv "$dir/paho"
  "$dir/paho/bin/pip" install --quiet --disable-pip-version-check paho-mqtt==2.2.0
fi
echo "willy drivers' libraries in $dir: mqtt.js $(node -p "require('$dir/mqttjs/node_modules/mqtt/package.json').version") (ws $(node -p "require('$dir/mqttjs/node_modules/ws/package.json').version")), paho-mqtt $("$dir/paho/bin/python" -c 'import importlib.metadata as m; print(m.version("paho-mqtt"))')"
