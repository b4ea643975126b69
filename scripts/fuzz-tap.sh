#!/usr/bin/env bash
# Fuzz the traffic decoder (crates/wire/src/tap) for N seconds (default 180).
#
#   scripts/fuzz-tap.sh [SECONDS]
#
# cargo-fuzz wants a nightly compiler; on a stable toolchain RUSTC_BOOTSTRAP=1 lets it use the
# nightly-only flags. Install it once with `cargo install cargo-fuzz`. Crashes land in
# fuzz/artifacts/tap/, the corpus in fuzz/corpus/tap/ (both ignored by git).
set -euo pipefail

secs="${1:-180}"
cd "$(dirname "$0")/../fuzz"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

# Seed the corpus with a few real streams so that the fuzzer starts past the framing detection.
mkdir -p corpus/tap
seed() { printf "$2" > "corpus/tap/$1"; }
seed tcp-connect '\x00\x10\x0c\x00\x04MQTT\x04\x02\x00\x05\x00\x00\xc0\x00\xe0\x00'
seed tcp-connack '\x01\x20\x02\x00\x00\x30\x07\x00\x03a/bhi\xd0\x00'
seed ws-up '\x05GET /mqtt HTTP/1.1\r\n\r\n\x82\x82\x01\x02\x03\x04\xc1\x02\x89\x80\x00\x00\x00\x00'
seed ws-down '\x06HTTP/1.1 101 Switching Protocols\r\n\r\n\x82\x02\xd0\x00\x88\x02\x03\xe8'

export RUSTC_BOOTSTRAP=1
exec cargo fuzz run tap -- -max_total_time="$secs" -max_len=4096
