#!/usr/bin/env bash
# Runs `huddle load` scenarios against a fresh huddle server on loopback and
# keeps the JSON reports.
#
#   scripts/bench-load.sh                      # 1,000 rooms x 5 and 100 rooms x 16, ROUNDS=1
#   ROUNDS=3 SCENARIOS="1000x5" scripts/bench-load.sh
#
# Each scenario is `huddle load --rooms R --room-size N --join-rate $JOIN_RATE
# --duration $HOLD --server-pid PID --json` against a server started fresh for it
# (release build, default settings: the load generator paces each member below the
# default --rate 50 / --burst 200). Output: $OUT/load.jsonl, one report per line,
# and $OUT/summary.md. Loopback only; every run is wrapped in `timeout`; the
# script stops only the server it started.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-1}
SCENARIOS=${SCENARIOS:-"1000x5 100x16"}
JOIN_RATE=${JOIN_RATE:-200}
HOLD=${HOLD:-10s}
PORT=${PORT:-8090}
HUDDLE_SRC=${HUDDLE_BIN:-$REPO/target/release/huddle}
SERVER_ARGS=${SERVER_ARGS:-}
OUT=${OUT:-/tmp/huddle-bench/load-$(date -u +%Y%m%dT%H%M%SZ)}
QUIET_WAIT=${QUIET_WAIT:-60}     # wait up to this many seconds before each run ...
QUIET_BELOW=${QUIET_BELOW:-30}   # ... for the machine's CPU use to fall below this % of one core

[ -x "$HUDDLE_SRC" ] || { echo "missing $HUDDLE_SRC (cargo build --release)" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
HUDDLE="$OUT/huddle"
cp "$HUDDLE_SRC" "$HUDDLE" || exit 2
NOFILE=$(ulimit -Hn)
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "huddle: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null), server args: ${SERVER_ARGS:-defaults}"
  echo "scenarios: $SCENARIOS; join rate $JOIN_RATE/s; hold $HOLD; rounds $ROUNDS"
} | tee "$OUT/meta.txt"

# The machine's CPU use over one second, in % of one core.
busy_pct() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$a $b" | awk -v n="$(nproc)" '{printf "%d", ($3-$1)*100*n/($4-$2)}'
}
quiet_wait() {
  local t=0 b
  while :; do
    b=$(busy_pct)
    if [ "$b" -lt "$QUIET_BELOW" ] || [ "$t" -ge "$QUIET_WAIT" ]; then echo "$b"; return; fi
    t=$((t + 1))
  done
}

PID=
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }
trap stop EXIT

for r in $(seq "$ROUNDS"); do
  for sc in $SCENARIOS; do
    rooms=${sc%x*}; size=${sc#*x}
    if ss -Hltn "sport = :$PORT" | grep -q .; then echo "port $PORT in use" >&2; exit 1; fi
    # shellcheck disable=SC2086
    ( ulimit -n "$NOFILE"; export RUST_LOG=warn; exec "$HUDDLE" --listen "127.0.0.1:$PORT" --max-connections-per-ip 0 $SERVER_ARGS ) \
      >>"$OUT/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 50); do ss -Hltn "sport = :$PORT" | grep -q . && break; sleep 0.1; done
    busy=$(quiet_wait)
    overflows0=$(nstat -az TcpExtListenOverflows 2>/dev/null | awk '/ListenOverflows/{print $2}')
    ( ulimit -n "$NOFILE"
      timeout -k 10 900 "$HUDDLE" load --server "ws://127.0.0.1:$PORT/ws" --rooms "$rooms" --room-size "$size" \
        --join-rate "$JOIN_RATE" --duration "$HOLD" --server-pid "$PID" --json ) >"$OUT/$sc-r$r.json" 2>"$OUT/$sc-r$r.err"
    rc=$?
    overflows1=$(nstat -az TcpExtListenOverflows 2>/dev/null | awk '/ListenOverflows/{print $2}')
    printf '{"scenario":"%s","round":%s,"rc":%s,"busy_before_pct":%s,"listen_overflows":%s,"r":%s}\n' "$sc" "$r" "$rc" "$busy" \
      "$(( ${overflows1:-0} - ${overflows0:-0} ))" "$(cat "$OUT/$sc-r$r.json" 2>/dev/null || echo null)" >>"$OUT/load.jsonl"
    echo "[$sc r$r] rc=$rc (machine busy ${busy}% of a core before the run)"
    stop
  done
done

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, sys
from pathlib import Path
rows = [json.loads(l) for l in (Path(sys.argv[1]) / "load.jsonl").read_text().splitlines() if l.strip()]
print("| scenario | round | rc | joined | calls set up | held | join p50/p99 ms | call set-up p50/p90/p99/max ms | relay p50/p99 ms | relayed msgs/s | server CPU % / µs per relay | server KiB/conn | client CPU % | problems | listen overflows | busy before % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for x in rows:
    r = x["r"]
    if not r:
        print(f"| {x['scenario']} | {x['round']} | {x['rc']} | no report |"); continue
    u = r.get("server_usage") or {}
    p = lambda k: r[k]
    probs = ", ".join(f"{k} {v}" for k, v in r["problems"].items() if v) or "none"
    print(f"| {x['scenario']} | {x['round']} | {x['rc']} | {r['joined']:,} | {r['calls_set_up']:,}/{r['calls_expected']:,} | {r['connections_held']:,} | "
          f"{p('join_ms')['p50']:.1f} / {p('join_ms')['p99']:.1f} | "
          f"{p('call_setup_ms')['p50']:.1f} / {p('call_setup_ms')['p90']:.1f} / {p('call_setup_ms')['p99']:.1f} / {p('call_setup_ms')['max']:.1f} | "
          f"{p('relay_ms')['p50']:.2f} / {p('relay_ms')['p99']:.2f} | {r['relayed_per_s']:,.0f} | "
          f"{u.get('cpu_pct', 0):.0f} / {u.get('cpu_us_per_relay', 0):.2f} | {u.get('kib_per_conn', 0):.1f} | {r.get('client_cpu_pct') or 0:.0f} | {probs} | {x['listen_overflows']} | {x.get('busy_before_pct')} |")
PY
