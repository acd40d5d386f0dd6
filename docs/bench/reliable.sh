#!/usr/bin/env bash
# `chinwag bench direct` plain, with --receipts and with --reliable,
# alternating in each round, then --reliable paced at --rate 5000 (the p99
# from SEND to receipt at that load); a fresh daemon on an empty data
# directory per run (a reliable run's store is on disk, fsync'd: the data
# directory is under $TMPDIR, which should not be a tmpfs). BIN is a
# directory holding a release chinwagd and chinwag. The reliable senders
# keep at most 1,024 messages unacknowledged each, as the client library
# does (`bench direct --window`, since 2026-12-05).
#   BIN=target/release ROUNDS=3 docs/bench/reliable.sh
# One line per run: mode, messages/s, ok, daemon CPU s, bench CPU s, then
# for receipts and reliable the receipts received, and p50/p99/max in µs
# from SEND to receipt (and for reliable, from SEND to ACK).
set -u
BIN=${BIN:-target/release}
ROUNDS=${ROUNDS:-3}
MESSAGES=${MESSAGES:-20000}
# The same 20,000 messages each way as plain direct (since 2026-12-06).
# Unpaced, a reliable session's mailbox holds what its client has not
# confirmed yet and counts it against the quota (10,000 messages by
# default). On slower code, past about 8,000 messages the confirmations
# fell far enough behind that the quota refused some (MAILBOX_FULL, told
# as GAP), and the reliable runs sent 5,000. On today's every run of
# 20,000 is clean, and a run that is not says so (`ok` False and its
# failures), never a figure that counts.
RELIABLE_MESSAGES=${RELIABLE_MESSAGES:-20000}
RATE=${RATE:-5000}
RATE_RUNS=${RATE_RUNS:-3}
# 50 pairs at 5,000 messages/s in all: 1,000 messages each way is 20 s.
RATE_MESSAGES=${RATE_MESSAGES:-1000}
ADDR=127.0.0.1:24471
run() { # label, then the options of `bench direct`
  local label=$1 data out
  shift
  data=$(mktemp -d)
  "$BIN/chinwagd" --listen $ADDR --data-dir "$data" --log warn >/dev/null 2>&1 &
  local hub=$!
  # Until the port answers (bash's /dev/tcp: no nc needed).
  for _ in $(seq 50); do (: <"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null && break; sleep 0.1; done
  if ! kill -0 $hub 2>/dev/null; then echo "$label: chinwagd did not start (is $ADDR taken?)"; rm -rf "$data"; return; fi
  out=$("$BIN/chinwag" --server $ADDR --json bench --timeout 900 direct --pairs 50 --size 64 "$@" --server-pid $hub 2>/dev/null | tail -1)
  echo "$label $(echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
line = [round(d["messages_per_s"] or 0), d["ok"], d["cpu"]["server_cpu_s"], d["cpu"]["bench_cpu_s"]]
if "receipts" in d:
    r = d["receipt_latency"] or {}
    line += ["receipts", d["receipts"], "to_receipt_us", round(r.get("p50_us", 0)), round(r.get("p99_us", 0)), round(r.get("max_us", 0))]
if d.get("ack_latency"):
    a = d["ack_latency"]
    line += ["to_ack_us", round(a["p50_us"]), round(a["p99_us"]), round(a["max_us"])]
if not d["ok"]:
    line += d["failures"][:2]
print(*line)')"
  kill $hub
  wait $hub 2>/dev/null
  rm -rf "$data"
}
for _ in $(seq "$ROUNDS"); do
  run plain --messages "$MESSAGES"
  run receipts --messages "$MESSAGES" --receipts
  run reliable --messages "$RELIABLE_MESSAGES" --reliable
done
for _ in $(seq "$RATE_RUNS"); do
  run "reliable-rate-$RATE" --messages "$RATE_MESSAGES" --reliable --rate "$RATE"
done
