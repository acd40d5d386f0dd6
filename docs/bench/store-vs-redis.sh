#!/bin/bash
# chinwag bench store against redis-server --appendfsync always, alternating,
# a fresh server and data directory each run (docs/performance.md, "Stored
# messages"). Run from the checkout after `cargo build --release -p chinwagd
# -p chinwag-client`; needs redis-server and redis-tools.
# usage: BIN=dir ROUNDS=n W=16 store-vs-redis.sh
BIN=${BIN:-target/release}; ROUNDS=${ROUNDS:-3}; W=${W:-16}
MSGS=${MSGS:-300000}; RN=${RN:-1000000}
for r in $(seq $ROUNDS); do
  DIR=$(mktemp -d /tmp/store-bench.XXXXXX)
  $BIN/chinwagd --listen 127.0.0.1:24470 --data-dir $DIR/chinwag --log warn & HUB=$!
  for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/24470) 2>/dev/null && break; sleep 0.1; done
  $BIN/chinwag --server 127.0.0.1:24470 bench --server-pid $HUB store --senders 50 --messages $MSGS --size 256 --window $W --json > $DIR/out.json 2>/dev/null
  python3 -c "import json,sys; d=json.load(open('$DIR/out.json')); print('chinwag', round(d['stored_per_s']), {k:v for k,v in d.items() if isinstance(v,(list,dict))})"
  kill -INT $HUB; wait $HUB; rm -rf $DIR
  DIR=$(mktemp -d /tmp/store-bench.XXXXXX)
  redis-server --port 16379 --bind 127.0.0.1 --dir $DIR --appendonly yes --appendfsync always --save '' >/dev/null & REDIS=$!
  for i in $(seq 50); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -h 127.0.0.1 -p 16379 -c 50 -n $RN -d 256 -P $W -t rpush --csv | tail -1 | sed 's/^/redis /'
  redis-cli -p 16379 shutdown nosave >/dev/null; wait $REDIS; rm -rf $DIR
done
