#!/usr/bin/env bash
# A/B of `chinwag bench direct` with and without --receipts, two builds
# alternating in each round, a fresh daemon on an empty data directory per
# run. BASE and NEW are directories holding a release chinwagd and chinwag
# (e.g. a copy of target/release before a change, and target/release after).
#   BASE=/tmp/base-bin NEW=target/release ROUNDS=6 docs/bench/ab-receipts.sh
set -u
BASE=${BASE:?a directory with the binaries before}
NEW=${NEW:-target/release}
ROUNDS=${ROUNDS:-5}
ADDR=127.0.0.1:24470
run() { # bin label mode
  local bin=$1 label=$2 mode=$3 data
  data=$(mktemp -d)
  "$bin/chinwagd" --listen $ADDR --data-dir "$data" --log warn >/dev/null 2>&1 & local hub=$!
  for _ in $(seq 50); do nc -z ${ADDR%:*} ${ADDR#*:} 2>/dev/null && break; sleep 0.1; done
  local extra=(); [ "$mode" = receipts ] && extra=(--receipts)
  local out
  out=$("$bin/chinwag" --server $ADDR --json bench direct --pairs 50 --messages 60000 --size 64 "${extra[@]}" --server-pid $hub 2>/dev/null | tail -1)
  echo "$label $mode $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["messages_per_s"]), d["ok"], d["cpu"]["server_cpu_s"])')"
  kill $hub; wait $hub 2>/dev/null; rm -rf "$data"
}
for _ in $(seq "$ROUNDS"); do
  run "$BASE" base plain
  run "$NEW" new plain
  run "$BASE" base receipts
  run "$NEW" new receipts
done
