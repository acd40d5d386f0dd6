#!/usr/bin/env bash
# Issue 20: chinwag fan-out 1->100 and direct 50 pairs over plain TCP, TLS,
# WebSocket and WebSocket over TLS (chinwag bench --ws), next to nats-server
# (hubload, plain TCP); alternating in each round, a fresh daemon on an
# empty data directory per run (docs/performance.md, 2026-12-04,
# WebSocket). Run from the workspace after
# `cargo build --release -p chinwagd -p chinwag-client`, with hubload built
# as "Reproducing" says. One line per run:
#   label workload deliveries-or-messages/s ok server_cpu_s bench_cpu_s
set -u
BIN=${BIN:-$PWD/target/release}
HUBLOAD=${HUBLOAD:-/tmp/hubload/target/release/hubload}
ROUNDS=${ROUNDS:-5}
LABELS=${LABELS:-plain tls ws wss nats}
WORK=${WORK:-/tmp/ab-ws}
mkdir -p "$WORK" && cd "$WORK" || exit 1
[ -f cert.pem ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj /CN=localhost -keyout key.pem -out cert.pem \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE 2>/dev/null
# Waits until something accepts on 127.0.0.1:$1 (the daemon is listening).
wait_port() {
  for _ in $(seq 500); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.01
  done
  echo "port $1 never opened" >&2; return 1
}
run_chinwag() { # label workload
  local label=$1 work=$2 daemon=() client=() port
  case $label in
    plain) port=24460; client=(--server 127.0.0.1:24460);;
    tls) port=24461; daemon=(--tls-listen 127.0.0.1:24461 --tls-cert cert.pem --tls-key key.pem); client=(--tls --ca cert.pem --server 127.0.0.1:24461);;
    ws) port=24462; daemon=(--web-listen 127.0.0.1:24462); client=(--server 127.0.0.1:24462 bench --ws);;
    wss) port=24462; daemon=(--web-listen 127.0.0.1:24462 --web-tls --tls-cert cert.pem --tls-key key.pem); client=(--tls --ca cert.pem --server 127.0.0.1:24462 bench --ws);;
  esac
  [ "${client[-1]}" = --ws ] || client+=(bench)
  $BIN/chinwagd --listen 127.0.0.1:24460 --data-dir $WORK/data-$label --log warn "${daemon[@]}" >/dev/null & local hub=$!
  wait_port $port
  if [ "$work" = fanout ]; then args=(fanout --subscribers 100 --messages 100000 --size 64); else args=(direct --pairs 50 --messages 50000 --size 64); fi
  local out; out=$($BIN/chinwag --json "${client[@]}" "${args[@]}" --server-pid $hub 2>$WORK/last.err | tail -1)
  echo "$label $work $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d.get("deliveries_per_s") or d.get("messages_per_s")), d["ok"], d["cpu"]["server_cpu_s"], d["cpu"].get("bench_cpu_s"))' 2>/dev/null || echo "FAILED $(tail -1 $WORK/last.err)")"
  kill $hub; wait $hub 2>/dev/null; rm -rf $WORK/data-$label
}
run_nats() {
  local work=$1
  nats-server -a 127.0.0.1 -p 14222 >/dev/null 2>&1 & local nats=$!
  wait_port 14222
  if [ "$work" = fanout ]; then args=(fanout --subs 100 --msgs 100000 --size 64); else args=(direct --pairs 50 --msgs 50000 --size 64); fi
  echo "nats $work $($HUBLOAD --adapter nats --addr 127.0.0.1:14222 --server-pid $nats "${args[@]}" 2>/dev/null | tail -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["results"]["summary"]; print(round(s.get("deliveries_per_s") or s.get("messages_per_s") or 0), d["ok"], d["results"]["cpu"]["server_cpu_s"], d["results"]["cpu"].get("loadgen_cpu_s"))')"
  kill $nats; wait $nats 2>/dev/null
}
for r in $(seq $ROUNDS); do
  for w in fanout direct; do
    for label in $LABELS; do
      if [ $label = nats ]; then run_nats $w; else run_chinwag $label $w; fi
    done
  done
done
