#!/bin/bash
# A/B of the data-path micro bench between a git revision's src/ (A) and the working
# tree (B), with the working tree's bench/data_path.ts for both. On a shared VM one
# process can run the same code at twice the cost of the next, so the two sides run in
# alternating processes, RUNS times each, and each row reports the lowest and the median
# of the runs' best rounds.
#   bench/ab_data_path.sh REV [RUNS] [VAR=value ...]   e.g. bench/ab_data_path.sh HEAD~1 5 MODE=nat,fullnat AF=4
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:?usage: bench/ab_data_path.sh REV [RUNS] [VAR=value ...]}
RUNS=${2:-5}
shift $(( $# >= 2 ? 2 : 1 ))
BUN="$ROOT/node_modules/.bin/bun"
A=$(mktemp -d /tmp/tslb-ab.XXXXXX)
trap 'rm -rf "$A"' EXIT
git -C "$ROOT" archive "$REV" src test package.json | tar -x -C "$A"
mkdir -p "$A/bench"
cp "$ROOT/bench/data_path.ts" "$A/bench/"
ln -s "$ROOT/node_modules" "$A/node_modules"
for _ in $(seq "$RUNS"); do
  for side in A B; do
    dir=$ROOT; [ "$side" = A ] && dir=$A
    # Rows: | method | family | path | median | best | ...: keep the established ones' best round.
    (cd "$dir" && env "$@" "$BUN" bench/data_path.ts | grep established |
      awk -F'|' -v s="$side" '{ gsub(/ /, "", $2); gsub(/ /, "", $3); print s "/" $2 "/" $3, $6 }')
  done
done | sort -k1,1 -k2n | awk '
  { v[$1] = v[$1] " " $2; n[$1]++ }
  END { for (k in v) { split(v[k], x, " "); printf "%s lowest %s median %s (runs:%s)\n", k, x[1], x[int((n[k] + 1) / 2)], v[k] } }' | sort
