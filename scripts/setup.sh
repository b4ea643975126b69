#!/usr/bin/env bash
# Install what unplug's build and tests need, on a Debian or Ubuntu machine that has the Rust
# toolchain from rustup (https://rustup.rs). Installs only what is missing; safe to run again.
#
#   apt   build-essential    cc, the linker rustc calls (rustup does not bring one)
#         mosquitto          the second broker: the mosquitto tests run it (with CI=true a
#                            missing one fails them; otherwise they say SKIPPED)
#         fonts-dejavu-core  the picture test renders the SVG's text with DejaVu Sans
#   cargo cargo-nextest      the test runner of `cargo nextest run` (README, .ci/run), built from
#                            crates.io at a pinned version (its rust-version is 1.91)
#   pip   amqtt 0.12.1       a third-party broker that never drops a silent client (a venv)
#   npm   aedes 1.2.0        a third-party broker that follows the spec (its own prefix)
#   npm   mqtt 5.16.0        mqtt.js, the seed's client, for the mqttjs willy driver
#   pip   paho-mqtt 2.2.0    Eclipse Paho's Python client, for the paho willy driver (a venv)
#   apt   nftables iproute2  the kernel-level cut (--cut kernel): nft and ip netns/veth
#   apt   chromium           the live page's browser test (tests/live_page.rs) drives headless
#                            Chromium over its DevTools protocol (with CI=true a missing one
#                            fails it; otherwise it says SKIPPED)
#
# apt needs root: run as root, or with sudo on PATH. cargo-nextest goes to cargo's install root
# ($CARGO_INSTALL_ROOT, else $CARGO_HOME/bin, else ~/.cargo/bin), which rustup puts on PATH.
# Building it takes minutes (measured in docs/guide.md, "Requirements in full").
set -euo pipefail

NEXTEST_VERSION=0.9.143

need_apt=()
if ! command -v cc >/dev/null 2>&1; then
  need_apt+=(build-essential)
fi
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  need_apt+=(mosquitto)
fi
if ! command -v nft >/dev/null 2>&1 && [ ! -x /usr/sbin/nft ]; then
  need_apt+=(nftables)
fi
if ! command -v ip >/dev/null 2>&1 && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then
  need_apt+=(iproute2)
fi
if ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  need_apt+=(fonts-dejavu-core)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "setup: need root (or sudo) to apt-get install ${need_apt[*]}" >&2
      exit 1
    }
    sudo=(sudo)
  fi
  echo "setup: apt-get install ${need_apt[*]}"
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

command -v cargo >/dev/null 2>&1 || {
  echo "setup: cargo not found: install the Rust toolchain with rustup (https://rustup.rs)" >&2
  exit 1
}

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: cargo install cargo-nextest $NEXTEST_VERSION (a few minutes)"
  # Its own temp build dir, not the project's CARGO_TARGET_DIR; without the self-update
  # feature (cargo install is how it is updated here), which also spares its HTTP stack.
  env -u CARGO_TARGET_DIR cargo install --locked "cargo-nextest@$NEXTEST_VERSION" \
    --no-default-features --features default-no-update
  cargo nextest --version >/dev/null 2>&1 || {
    echo "setup: cargo-nextest is installed but cargo does not find it: put cargo's install" \
      "root's bin directory on PATH" >&2
    exit 1
  }
fi
# Brokers nobody here wrote, judged by tests/third_party.rs: amqtt (PyPI) and aedes (npm), into
# their own directory (scripts/third-party-brokers.sh says which and why). python3 also runs
# tests/brokers/misbroker.py, the deliberately misbehaving test broker (standard library only).
for tool in python3 node npm; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "setup: $tool not found: the third-party broker tests need Python 3 and Node.js" >&2
    exit 1
  }
done
"$(dirname "$0")/third-party-brokers.sh"
# The willy drivers' client libraries (mqtt.js, paho-mqtt), into their own directory.
"$(dirname "$0")/drivers.sh"
echo "setup: ready ($(cargo nextest --version | head -n1), $(command -v mosquitto || echo /usr/sbin/mosquitto))"
