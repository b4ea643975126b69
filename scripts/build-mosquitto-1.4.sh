#!/usr/bin/env bash
# Build the seed's own broker, mosquitto 1.4.15 with WebSocket support, against a libwebsockets
# of its day, into a private prefix (nothing else on the machine is touched):
#
#   scripts/build-mosquitto-1.4.sh MOSQUITTO_SRC [LWS_SRC]
#
#   MOSQUITTO_SRC  a tree of eclipse/mosquitto at tag v1.4.15 (e.g. `git archive v1.4.15`)
#   LWS_SRC        a tree of warmcat/libwebsockets on the 2.x line. v2.0.3 is what Debian 9 and
#                  Ubuntu 18.04 shipped (libwebsockets8) and so what a 2018 mosquitto 1.4.15
#                  package ran on; results/seed-broker uses it. v2.4.1 (the release before
#                  mosquitto 1.4.15) closes the same way; v2.4.2 (8 March 2018) closes a plain
#                  WebSocket at once (commit bf7564cff), so its will comes without the seed's
#                  20 s (results/seed-broker/README.md). Without LWS_SRC the broker is built
#                  without WebSocket support and says so.
#   PREFIX         ${UNPLUG_MOSQUITTO14:-$HOME/.cache/unplug/mosquitto-1.4.15}; the broker ends up
#                  in $PREFIX/sbin/mosquitto, libwebsockets in $PREFIX/lib (found by rpath).
#
# The sources are the user's: this script downloads nothing (CI has no way to reach GitHub, and
# the tests that need the binary skip there and say so). Needs cc, make, cmake, libssl-dev and
# uuid-dev (Debian: apt-get install build-essential cmake libssl-dev uuid-dev). Built on Debian
# bookworm with gcc 12 and OpenSSL 3: both trees predate them, so their warnings are not errors
# here (-Wno-error, -Wno-deprecated-declarations); the code is compiled unchanged.
# Run `--mosquitto-bin $PREFIX/sbin/mosquitto` (or UNPLUG_MOSQUITTO_BIN) to use it.
set -euo pipefail

usage() {
  echo "usage: $0 MOSQUITTO_SRC [LWS_SRC]  (mosquitto v1.4.15 tree, libwebsockets 2.x tree)" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
src=$(cd "$1" 2>/dev/null && pwd) || { echo "error: no directory $1" >&2; exit 2; }
if ! grep -q 'VERSION=1\.4\.15' "$src/config.mk" 2>/dev/null; then
  echo "error: $src is not mosquitto 1.4.15 (config.mk has no VERSION=1.4.15)" >&2
  exit 2
fi
lws=""
if [ $# -eq 2 ]; then
  lws=$(cd "$2" 2>/dev/null && pwd) || { echo "error: no directory $2" >&2; exit 2; }
  if ! grep -q 'CPACK_PACKAGE_VERSION_MAJOR "2"' "$lws/CMakeLists.txt" 2>/dev/null; then
    echo "error: $lws is not libwebsockets 2.x (its CMakeLists.txt sets no major version 2)" >&2
    exit 2
  fi
fi
prefix=${UNPLUG_MOSQUITTO14:-$HOME/.cache/unplug/mosquitto-1.4.15}
build=$prefix/build
jobs=${BUILD_JOBS:-2}
mkdir -p "$prefix/sbin" "$build"
warn="-Wno-error -Wno-deprecated-declarations"

ws=no
if [ -n "$lws" ]; then
  # libwebsockets: a shared library into $prefix/lib, no test apps; OpenSSL for wss listeners.
  lwsflags=$warn
  # libwebsockets 2.0.x calls ERR_remove_thread_state() without its argument when it takes
  # OpenSSL >= 1.1.0-pre5 to have dropped it (lib/ssl.c 200-206); OpenSSL 1.1 and 3 kept the
  # one-argument form. The macro selects the branch that passes NULL (used nowhere else).
  if grep -q 'ERR_remove_thread_state();' "$lws/lib/ssl.c" 2>/dev/null; then
    lwsflags="$lwsflags -DLIBRESSL_VERSION_NUMBER=0"
  fi
  rm -rf "$build/lws"
  mkdir -p "$build/lws"
  (cd "$build/lws" && cmake "$lws" \
      -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_FLAGS="$lwsflags" -DLWS_WITH_SSL=ON -DLWS_WITHOUT_TESTAPPS=ON \
      -DLWS_WITH_STATIC=OFF -DLWS_IPV6=ON -DLWS_WITH_ZLIB=OFF -DLWS_WITH_ZIP_FOPS=OFF -DLWS_WITHOUT_EXTENSIONS=ON \
      -DLWS_LINK_TESTAPPS_DYNAMIC=ON >"$build/lws.cmake.log" 2>&1 \
    && make -j"$jobs" >"$build/lws.make.log" 2>&1 && make install >>"$build/lws.make.log" 2>&1) \
    || { echo "error: libwebsockets build failed; see $build/lws.*.log" >&2; exit 1; }
  ws=yes
fi

# mosquitto: the broker only (src/ compiles the lib/ files it needs), out of a copy of the tree
# so the user's tree stays clean. No docs (xsltproc), no DNS SRV (c-ares): the broker does not
# need them.
rm -rf "$build/mosquitto"
cp -a "$src" "$build/mosquitto"
make -C "$build/mosquitto/src" -j"$jobs" mosquitto \
  WITH_WEBSOCKETS=$ws WITH_DOCS=no WITH_SRV=no WITH_UUID=yes \
  CFLAGS="$warn -I$prefix/include -O2" \
  LDFLAGS="-L$prefix/lib -Wl,-rpath,$prefix/lib" >"$build/mosquitto.make.log" 2>&1 \
  || { echo "error: mosquitto build failed; see $build/mosquitto.make.log" >&2; exit 1; }
install -m 755 "$build/mosquitto/src/mosquitto" "$prefix/sbin/mosquitto"

# mosquitto 1.4 has no --version: its `-h` banner names it ("mosquitto version 1.4.15 (build
# date ...)"), and that is what unplug reads too.
banner=$("$prefix/sbin/mosquitto" -h 2>&1 | head -1 || true)
echo "$banner; websockets=$ws"
echo "built $prefix/sbin/mosquitto"
