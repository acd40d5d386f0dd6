#!/usr/bin/env bash
# A/B of the reliable path: `chinwag bench direct --reliable` against two
# builds, alternating, a fresh daemon on an empty data directory per run
# (under $TMPDIR, which should not be a tmpfs: the store fsyncs). A and B
# are directories each holding a release chinwagd and chinwag.
#   A=/tmp/before B=target/release ROUNDS=4 docs/bench/reliable-ab.sh
# One line per run: label, messages/s, ok, the daemon's CPU s as the bench
# measured it, then the CPU s of the store's writer thread and of the
# runtime's threads over the daemon's whole life (read from /proc at the
# end of the run, so including the bench's account set-up), which tell
# which side sets the pace.
set -u
ROUNDS=${ROUNDS:-4}
# As plain direct and docs/bench/reliable.sh (5,000 before 2026-12-06).
MESSAGES=${MESSAGES:-20000}
ADDR=127.0.0.1:24472
run() { # label, bin
  local label=$1 bin=$2 data out threads
  data=$(mktemp -d)
  "$bin/chinwagd" --listen $ADDR --data-dir "$data" --log warn >/dev/null 2>&1 &
  local hub=$!
  for _ in $(seq 50); do (: <"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null && break; sleep 0.1; done
  if ! kill -0 $hub 2>/dev/null; then echo "$label: chinwagd did not start (is $ADDR taken?)"; rm -rf "$data"; return; fi
  out=$("$bin/chinwag" --server $ADDR --json bench --timeout 900 direct --pairs 50 --size 64 \
    --messages "$MESSAGES" --reliable --server-pid $hub 2>/dev/null | tail -1)
  threads=$(for t in /proc/$hub/task/*; do echo "$(tr ' ' _ <"$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done |
    awk '{a[$1]+=$2} END {printf "writer_cpu_s %.2f runtime_cpu_s %.2f", a["chinwag-store-w"]/100, a["tokio-rt-worker"]/100}')
  echo "$label $(echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(round(d["messages_per_s"] or 0), d["ok"], round(d["cpu"]["server_cpu_s"], 2), end="")') $threads"
  kill $hub
  wait $hub 2>/dev/null
  rm -rf "$data"
}
for _ in $(seq "$ROUNDS"); do
  run A "${A:?A: a directory with chinwagd and chinwag}"
  run B "${B:?B: a directory with chinwagd and chinwag}"
done
