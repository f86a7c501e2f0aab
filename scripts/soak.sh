#!/usr/bin/env bash
# The soak test (not part of CI): a release build of huddle holds 19,000
# signaling connections with churn (joins, leaves, clean closes, dropped
# connections that resume or stay away past the grace period, room changes,
# relays) for 10 minutes after a warm-up, and reports the server's RSS and
# CPU every 30 s. It fails when RSS at the end is more than 5 % above RSS
# after the warm-up, or when the server refused anything it should not have.
#
#   scripts/soak.sh                       # the defaults above
#   CONNECTIONS=2000 DURATION=1m scripts/soak.sh   # a quick one
#
# Loopback only: the server listens on 127.0.0.1:$PORT, the driver
# (examples/soak.rs) connects from 127.0.0.1-127.0.0.4. Output goes to
# $OUT/soak.txt as well.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-19000}
DURATION=${DURATION:-10m}
WARMUP=${WARMUP:-60s}
PORT=${PORT:-8095}
OUT=${OUT:-/tmp/huddle-bench/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

cargo build --release --quiet --bin huddle --example soak
ulimit -n "$(ulimit -Hn)"

# Every connection of the soak comes from loopback, so the per-address cap
# is off; the connection cap sits just above the population.
target/release/huddle --listen "127.0.0.1:$PORT" \
  --max-connections "$((CONNECTIONS + 500))" --max-connections-per-ip 0 \
  >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

{
  echo "# soak: $(git rev-parse --short HEAD), $(nproc) CPUs, $CONNECTIONS connections, warm-up $WARMUP, then $DURATION"
  timeout --kill-after=30s 40m target/release/examples/soak \
    --server "127.0.0.1:$PORT" --server-pid "$SERVER" \
    --connections "$CONNECTIONS" --warmup "$WARMUP" --duration "$DURATION"
} 2>&1 | tee "$OUT/soak.txt"
