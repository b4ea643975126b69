#!/usr/bin/env bash
# The functions longer than N lines (default 100) in src/ and crates/*/src/, longest first, one a
# line: "lines file:line name". A function runs from its `fn` line to the `}` at the same indent
# (the code is rustfmt'd, so that brace closes it); doc comments and attributes are not counted,
# a function nested in another counts in the outer one only. Declarations without a body (trait
# items ending in `;`) are skipped.
#
#   scripts/long-functions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
min=${1:-100}
dirs=()
for d in src crates/*/src; do [ -d "$d" ] && dirs+=("$d"); done
find "${dirs[@]}" -name '*.rs' -print0 | sort -z | xargs -0 awk -v min="$min" '
FNR == 1 { open = 0 }
open && waiting {                     # in a signature spread over lines
  if (index($0, indent) == 1 && substr($0, length(indent) + 1, 1) !~ /[ \t]/ && /;[ \t]*$/) open = 0
  else if (/\{[ \t]*$/) waiting = 0
  next
}
open {
  if ($0 == indent "}") {
    n = FNR - start + 1
    if (n > min) printf "%d %s:%d %s\n", n, FILENAME, start, name
    open = 0
  }
  next
}
match($0, /^[ \t]*((pub(\([^)]*\))?|const|async|unsafe|extern "[^"]*") +)*fn +[A-Za-z_][A-Za-z0-9_]*/) {
  name = substr($0, RSTART, RLENGTH); sub(/^.*fn +/, "", name)
  indent = $0; sub(/[^ \t].*$/, "", indent)
  start = FNR
  if (/;[ \t]*$/ || /\}[ \t]*$/) next   # no body, or all on one line
  open = 1
  waiting = !/\{[ \t]*$/
}' | sort -k1,1nr -k2,2
