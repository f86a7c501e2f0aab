#!/usr/bin/env bash
# Does an unauthenticated request cost the embedded TURN server anything
# lasting? Starts a release huddle with --turn-listen on 127.0.0.1, warms it
# up with 10,000 Allocates without credentials, then sends COUNT more
# (default 1,000,000) from ever new source ports and prints its resident
# memory (VmRSS) before and after. Issue 9 item 3: within a few MiB.
#   scripts/bench-turn-nonces.sh [COUNT]
# PROFILE=debug uses a debug build (no release build needed; slower).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-1000000}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin huddle --example turn_nonce_flood
else
  cargo build --quiet --bin huddle --example turn_nonce_flood
fi
out="$(mktemp)"
target/$PROFILE/huddle --listen 127.0.0.1:0 --turn-listen 127.0.0.1:0 >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do
  grep -q '^TURN server on' "$out" && break
  sleep 0.1
done
turn="$(sed -n 's/^TURN server on \([^ ]*\).*/\1/p' "$out")"
[ -n "$turn" ] || { echo "huddle did not start its TURN server" >&2; exit 1; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
target/$PROFILE/examples/turn_nonce_flood "$turn" 10000 >/dev/null
before="$(rss)"
target/$PROFILE/examples/turn_nonce_flood "$turn" "$COUNT"
after="$(rss)"
echo "huddle RSS: ${before} KiB after warm-up, ${after} KiB after ${COUNT} more ($((after - before)) KiB)"
