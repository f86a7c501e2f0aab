#!/usr/bin/env bash
# Media measurements with `huddle bot` (docs/benchmarks.md, "Media in the
# mesh"): CPU per bot, join -> first frame between two bots, and the largest
# mesh room in which every member still receives >= 90 % of every other
# member's frames, with the server's CPU meanwhile.
#
#   cargo build --release
#   OUT=/tmp/huddle-bot-bench scripts/bench-bot.sh
#
# Everything runs on 127.0.0.1: one release server, bots bound to 127.0.0.1.
# Knobs (environment): SIZES ("4 6 8 10 12 14 16"), ROUNDS (3), HOLD (20s),
# JOINS (10, join -> first frame samples), CPU_HOLD (25), PHASES ("cpu join
# mesh": which parts to run).
# Needs jq and /proc (Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HUDDLE_BIN:-target/release/huddle}
OUT=${OUT:-/tmp/huddle-bot-bench}
SIZES=${SIZES:-"4 6 8 10 12 14 16"}
ROUNDS=${ROUNDS:-3}
HOLD=${HOLD:-20s}
JOINS=${JOINS:-10}
CPU_HOLD=${CPU_HOLD:-25}
PHASES=${PHASES:-"cpu join mesh"}
phase() { case " $PHASES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
HZ=$(getconf CLK_TCK)
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "bench-bot: $BIN not found (cargo build --release)" >&2; exit 2; }
cp "$BIN" "$OUT/huddle"
BIN="$OUT/huddle"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

RUST_LOG=warn "$BIN" --listen 127.0.0.1:0 --max-connections-per-ip 0 --ice-servers '[]' --max-room-size 64 >"$OUT/server.out" 2>"$OUT/server.err" &
srv=$!
pids+=("$srv")
for _ in $(seq 100); do grep -q listening "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$OUT/server.out")
echo "server $URL (pid $srv)"
bot() { RUST_LOG=warn "$BIN" bot --server "$URL" --bind 127.0.0.1 --json --report-every 0s "$@"; }
# For `bot_exec … &`: the background job becomes the bot itself, so $! is
# the bot's pid (whose /proc/PID/stat counts its CPU).
bot_exec() { RUST_LOG=warn exec "$BIN" bot --server "$URL" --bind 127.0.0.1 --json --report-every 0s "$@"; }

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/meta.txt"

# 1. CPU per bot: rooms of 2 and of 4, one process per bot, steady state
#    (from 5 s after the last join to the end).
if phase cpu; then
: >"$OUT/cpu.tsv"
for size in 2 4; do
  room="cpu-$size-$RANDOM"
  bpids=()
  for i in $(seq "$size"); do
    bot_exec --room "$room" --name "b$i" --duration "${CPU_HOLD}s" >"$OUT/cpu-$size-$i.jsonl" 2>&1 &
    bpids+=($!)
    pids+=($!)
    sleep 0.3
  done
  sleep 5
  t0=$(now); declare -A c0=()
  for p in "${bpids[@]}"; do c0[$p]=$(ticks "$p"); done
  sleep $((CPU_HOLD - 8))
  t1=$(now)
  for p in "${bpids[@]}"; do
    c1=$(ticks "$p")
    echo -e "$size\t$(echo "($c1 - ${c0[$p]}) / $HZ / ($t1 - $t0) * 100" | bc -l)" >>"$OUT/cpu.tsv"
  done
  wait "${bpids[@]}" || true
done
echo "CPU per bot (% of a core), by room size:"
awk '{s[$1]=s[$1]" "sprintf("%.1f",$2)} END {for (k in s) print "  room of " k ":" s[k]}' "$OUT/cpu.tsv"
fi

# 2. join -> first frame between two bots (the joiner's view).
if phase join; then
: >"$OUT/join-bot.txt"
for i in $(seq "$JOINS"); do
  room="jff-$i-$RANDOM"
  bot --room "$room" --name first --duration 5s >/dev/null 2>&1 &
  a=$!
  sleep 1
  bot --room "$room" --name second --duration 3s >"$OUT/join-$i.jsonl" 2>&1 || true
  wait "$a" || true
  jq -r 'select(.type=="report" and .final and .peer=="first") | .join_to_first_frame_ms' "$OUT/join-$i.jsonl" >>"$OUT/join-bot.txt"
done
echo "join -> first frame, bot joins bot (ms): $(sort -n "$OUT/join-bot.txt" | xargs)"
fi

# 3. Mesh capacity: one room of N bots in one process, HOLD after the last join.
if phase mesh; then
echo -e "size\tround\tall_ok\tmin_ratio\tmedian_fps\tpairs_ok\tpairs\tbots_cpu_pct\tserver_cpu_pct\tseconds" >"$OUT/mesh.tsv"
for round in $(seq "$ROUNDS"); do
  for n in $SIZES; do
    s0=$(ticks "$srv"); t0=$(now)
    bot_exec --rooms 1 --room-size "$n" --room "mesh$round" --name "m$n" --duration "$HOLD" \
      --join-interval 200ms >"$OUT/mesh-$n-$round.jsonl" 2>"$OUT/mesh-$n-$round.err" &
    b=$!
    pids+=("$b")
    last=0
    while kill -0 "$b" 2>/dev/null; do
      v=$(ticks "$b"); [ "$v" -gt 0 ] && last=$v
      sleep 0.2
    done
    wait "$b" || true
    t1=$(now); s1=$(ticks "$srv")
    secs=$(echo "$t1 - $t0" | bc -l)
    bcpu=$(echo "$last / $HZ / $secs * 100" | bc -l)
    scpu=$(echo "($s1 - $s0) / $HZ / $secs * 100" | bc -l)
    jq -r --arg n "$n" --arg r "$round" --arg b "$bcpu" --arg s "$scpu" --arg t "$secs" \
      'select(.type=="summary") | [$n, $r, .all_ok, .min_ratio, .median_fps, .pairs_ok, .pairs, ($b|tonumber|.*10|round/10), ($s|tonumber|.*100|round/100), ($t|tonumber|round)] | @tsv' \
      "$OUT/mesh-$n-$round.jsonl" | tee -a "$OUT/mesh.tsv"
  done
done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/meta.txt"
column -t "$OUT/mesh.tsv"
