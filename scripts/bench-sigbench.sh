#!/usr/bin/env bash
# Benchmark huddle's signaling server against reference servers with sigbench
# (../shared/bench/sigbench): floor-server (a minimal relay for the same protocol,
# the "how cheap can it be" floor), matchbox_server 0.15.0, the PeerJS server
# (npm `peer` 1.0.2), and optionally an older huddle build ("huddle-base", to
# compare before/after a change).
#
#   scripts/bench-sigbench.sh                 # ROUNDS=3, results in /tmp/huddle-bench/<UTC time>/
#   ROUNDS=5 PHASES="relay" scripts/bench-sigbench.sh
#
# Phases (in order):
#   check : `sigbench check` against huddle (relay, join, idle self-test; reports failures)
#   idle  : $IDLE_CONNS (10,000) idle joined connections, each server restarted fresh before every run
#   idlebig : the same with $IDLE_BIG_CONNS (19,000: the open-file limit here is 20,000)
#   relay : sigbench relay defaults (50 pairs, 400 B, window 16, 10 s after 2 s warm-up)
#   relaylight : light load for latency: 10 pairs, each sender paced to 200 msgs/s, 5 s after 1 s
#   join  : sigbench join defaults (200 rooms x 5 members, concurrency 200)
# Every phase runs the servers interleaved ($SERVERS in order), once per round.
#
# Servers: huddle, huddle-base ($HUDDLE_BASE_BIN), floor, matchbox, peerjs
# (PeerJS: npm install peer@1.0.2 in $PEERJS_DIR).
#
# Output: $OUT/{check,idle,relay,join}.jsonl, one line per run:
#   {"server":..,"round":..,"rc":..,"r":<last stdout line of sigbench>}
# plus each run's log, meta.txt (machine, versions) and summary.md (medians and ratios).
#
# Needs (see docs/benchmarks.md):
#   sigbench built:  (cd ../shared/bench/sigbench && CARGO_TARGET_DIR=/tmp/sigbench-target cargo build --release)
#   matchbox_server: cargo install matchbox_server --version 0.15.0 --root /tmp/anchors --locked
#   huddle built:    cargo build --release
# The huddle binary is copied into $OUT first, so a rebuild during the run changes nothing.
#
# Loopback only. Every sigbench run is wrapped in `timeout`. The script stops only the
# servers it started, by their pids.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
PHASES=${PHASES:-"check idle relay join"}
SERVERS=${SERVERS:-"huddle floor matchbox"}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_BIG_CONNS=${IDLE_BIG_CONNS:-19000}
QUIET_WAIT=${QUIET_WAIT:-30}          # sigbench --quiet-wait: wait up to this long for other load to drop
RUN_TIMEOUT=${RUN_TIMEOUT:-300}       # hard limit of one sigbench run, seconds
SIGBENCH=${SIGBENCH:-${CARGO_TARGET_DIR_SIGBENCH:-/tmp/sigbench-target}/release/sigbench}
MATCHBOX=${MATCHBOX:-/tmp/anchors/bin/matchbox_server}
HUDDLE_SRC=${HUDDLE_BIN:-$REPO/target/release/huddle}
HUDDLE_BASE_SRC=${HUDDLE_BASE_BIN:-}
PEERJS_DIR=${PEERJS_DIR:-/tmp/anchors/peerjs}
HUDDLE_PORT=${HUDDLE_PORT:-8080}
HUDDLE_BASE_PORT=${HUDDLE_BASE_PORT:-8081}
PEERJS_PORT=${PEERJS_PORT:-9000}
FLOOR_PORT=${FLOOR_PORT:-7000}
MATCHBOX_PORT=${MATCHBOX_PORT:-3536}
# The relay scenario sends thousands of messages per second on each connection; huddle's
# default rate limit (50/s, burst 200) would refuse them, so it is raised for the benchmark.
HUDDLE_ARGS=${HUDDLE_ARGS:-"--rate 10000000 --burst 10000000 --max-connections 60000"}
HUDDLE_BASE_ARGS=${HUDDLE_BASE_ARGS:-$HUDDLE_ARGS}
OUT=${OUT:-/tmp/huddle-bench/$(date -u +%Y%m%dT%H%M%SZ)}

for f in "$SIGBENCH" "$HUDDLE_SRC"; do
  [ -x "$f" ] || { echo "missing $f (see the header of $0)" >&2; exit 2; }
done
case " $SERVERS " in *" matchbox "*) [ -x "$MATCHBOX" ] || { echo "missing $MATCHBOX" >&2; exit 2; } ;; esac
case " $SERVERS " in *" peerjs "*) [ -x "$PEERJS_DIR/node_modules/.bin/peerjs" ] || { echo "missing $PEERJS_DIR/node_modules/.bin/peerjs" >&2; exit 2; } ;; esac
case " $SERVERS " in *" huddle-base "*) [ -x "$HUDDLE_BASE_SRC" ] || { echo "set HUDDLE_BASE_BIN to an older huddle binary" >&2; exit 2; } ;; esac
mkdir -p "$OUT" || exit 2
HUDDLE="$OUT/huddle"
cp "$HUDDLE_SRC" "$HUDDLE" || exit 2
if [ -n "$HUDDLE_BASE_SRC" ]; then cp "$HUDDLE_BASE_SRC" "$OUT/huddle-base" || exit 2; fi
NOFILE=$(ulimit -Hn)
echo "results in $OUT"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "kernel: $(uname -r); debian $(cat /etc/debian_version 2>/dev/null); $(rustc --version 2>/dev/null)"
  echo "nofile hard limit: $NOFILE"
  echo "huddle: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in src/'), binary sha256 $(sha256sum "$HUDDLE" | cut -c1-16)"
  echo "huddle args: $HUDDLE_ARGS"
  [ -n "$HUDDLE_BASE_SRC" ] && echo "huddle-base: $HUDDLE_BASE_SRC, binary sha256 $(sha256sum "$OUT/huddle-base" | cut -c1-16), args: $HUDDLE_BASE_ARGS"
  echo "peerjs: $PEERJS_DIR ($(cd "$PEERJS_DIR" 2>/dev/null && node -e 'console.log(require("peer/package.json").version)' 2>/dev/null)), node $(node --version 2>/dev/null)"
  echo "matchbox: $MATCHBOX (0.15.0), RUST_LOG=warn"
  echo "sigbench: $SIGBENCH"
  echo "rounds: $ROUNDS; phases: $PHASES; idle conns: $IDLE_CONNS; quiet-wait: $QUIET_WAIT s"
} >"$OUT/meta.txt"
cat "$OUT/meta.txt"

declare -A PID PORT PROTO
PORT=([huddle]=$HUDDLE_PORT [huddle-base]=$HUDDLE_BASE_PORT [floor]=$FLOOR_PORT [matchbox]=$MATCHBOX_PORT [peerjs]=$PEERJS_PORT)
PROTO=([huddle]=huddle [huddle-base]=huddle [floor]=huddle [matchbox]=matchbox [peerjs]=peerjs)

listening() { ss -Hltn "sport = :$1" | grep -q .; }

start() { # name
  local name=$1 port=${PORT[$1]} log="$OUT/server-$1.log"
  if listening "$port"; then echo "port $port is already in use; not starting $name" >&2; return 1; fi
  case $name in
  huddle)   # shellcheck disable=SC2086
    ( ulimit -n "$NOFILE"; export RUST_LOG=warn
      exec "$HUDDLE" --listen "127.0.0.1:$port" --max-connections-per-ip 0 $HUDDLE_ARGS ) >>"$log" 2>&1 & ;;
  huddle-base)   # shellcheck disable=SC2086
    ( ulimit -n "$NOFILE"; export RUST_LOG=warn
      exec "$OUT/huddle-base" --listen "127.0.0.1:$port" $HUDDLE_BASE_ARGS ) >>"$log" 2>&1 & ;;
  peerjs)   # exec node directly so that $! is the server's pid; it logs a line per (dis)connect
    ( ulimit -n "$NOFILE"; cd "$PEERJS_DIR" || exit 1
      exec ./node_modules/.bin/peerjs --port "$port" --host 127.0.0.1 --concurrent_limit 1000000 --alive_timeout 120000 ) >/dev/null 2>>"$log" & ;;
  floor)
    ( ulimit -n "$NOFILE"; exec "$SIGBENCH" floor-server --listen "127.0.0.1:$port" ) >>"$log" 2>&1 & ;;
  matchbox)
    ( ulimit -n "$NOFILE"; export RUST_LOG=warn; exec "$MATCHBOX" "127.0.0.1:$port" ) >>"$log" 2>&1 & ;;
  *) echo "unknown server $name" >&2; return 1 ;;
  esac
  PID[$name]=$!
  for _ in $(seq 50); do
    listening "$port" && return 0
    kill -0 "${PID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start; log:" >&2; tail -n 20 "$log" >&2; unset "PID[$name]"; return 1
}

stop() { # name
  local p=${PID[$1]:-}
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  unset "PID[$1]"
}

stop_all() { for s in "${!PID[@]}"; do stop "$s"; done; }
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

run() { # name round scenario [sigbench args...]; results go to $OUT/${TAG:-scenario}.jsonl
  local name=$1 round=$2 scen=$3; shift 3
  local tag=${TAG:-$scen}
  local pid=${PID[$name]:-} log="$OUT/$tag-$name-r$round.log"
  if [ -z "$pid" ]; then
    printf '{"server":"%s","round":%s,"rc":-1,"r":{"error":"server not running"}}\n' "$name" "$round" >>"$OUT/$tag.jsonl"
    return
  fi
  local extra=(--server-pid "$pid")
  [ "$scen" = check ] && extra=()
  timeout -k 10 "$RUN_TIMEOUT" "$SIGBENCH" --quiet-wait "$QUIET_WAIT" "$scen" \
    --proto "${PROTO[$name]}" --addr "127.0.0.1:${PORT[$name]}" "${extra[@]}" "$@" >"$log" 2>"$log.err"
  local rc=$? last
  last=$(tail -n 1 "$log")
  case "$last" in \{*) ;; *) last="{\"error\":\"no JSON line (rc $rc)\"}" ;; esac
  printf '{"server":"%s","round":%s,"rc":%s,"r":%s}\n' "$name" "$round" "$rc" "$last" >>"$OUT/$tag.jsonl"
  grep -v '^{' "$log" | sed "s/^/[$tag $name r$round] /"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "[$name] SERVER DIED during $tag r$round; restarting" | tee -a "$OUT/notes.txt"
    unset "PID[$name]"; start "$name"
  fi
}

for s in $SERVERS; do start "$s" || exit 1; done

for phase in $PHASES; do
  case $phase in
  check)
    case " $SERVERS " in *" huddle "*) run huddle 1 check ;; esac ;;
  idle|idlebig)
    conns=$IDLE_CONNS; [ "$phase" = idlebig ] && conns=$IDLE_BIG_CONNS
    for r in $(seq "$ROUNDS"); do
      for s in $SERVERS; do
        stop "$s"; start "$s" || continue
        TAG=$phase run "$s" "$r" idle --conns "$conns" --hold 10
      done
    done
    for s in $SERVERS; do stop "$s"; start "$s"; done ;; # fresh servers for what follows
  relay|join)
    for r in $(seq "$ROUNDS"); do
      for s in $SERVERS; do run "$s" "$r" "$phase"; done
    done ;;
  relaylight)
    for r in $(seq "$ROUNDS"); do
      for s in $SERVERS; do
        TAG=relaylight run "$s" "$r" relay --pairs 10 --rate 200 --duration 5 --warmup 1
      done
    done ;;
  *) echo "unknown phase $phase" >&2 ;;
  esac
done
stop_all

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
from pathlib import Path

d = Path(sys.argv[1])
ORDER = ["huddle", "huddle-base", "floor", "matchbox", "peerjs"]

def load(name):
    p = d / f"{name}.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

def by_server(rows):
    out = {}
    for x in rows:
        if "error" not in x["r"]:
            out.setdefault(x["server"], []).append(x)
    return [(s, out[s]) for s in ORDER if s in out]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def f(x, nd=1):
    if x is None:
        return "n/a"
    return f"{x:,.{nd}f}" if nd else f"{round(x):,}"

def spread(xs, nd=1):
    xs = [x for x in xs if x is not None]
    return f"{f(med(xs), nd)} ({f(min(xs), nd)}–{f(max(xs), nd)})" if xs else "n/a"

def g(r, *path):
    for k in path:
        r = r.get(k) if isinstance(r, dict) else None
    return r

check = load("check")
if check:
    r = check[-1]["r"]
    print(f"### sigbench check against huddle\n\npassed {r.get('passed')}, failed {r.get('failed')}: {r.get('failures', r.get('error'))}\n")

relay, join, idle = load("relay"), load("join"), load("idle")
light, idlebig = load("relaylight"), load("idlebig")
if relay:
    print("### relay (50 pairs, 400 B, window 16, 10 s after 2 s warm-up): median (min–max) over rounds\n")
    print("| server | runs | delivered msgs/s | server CPU µs/msg | server CPU % | client CPU % | p50 ms | p99 ms | lost / out-of-order | clean closes | other-tenant CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s, rows in by_server(relay):
        rs = [x["r"] for x in rows]
        print(f"| {s} | {len(rs)} | {spread([r['msgs_per_s'] for r in rs], 0)} | {spread([r['server_cpu_us_per_msg'] for r in rs], 2)} | "
              f"{spread([r['server_cpu_pct'] for r in rs], 0)} | {spread([r['client_cpu_pct'] for r in rs], 0)} | "
              f"{spread([g(r, 'latency', 'p50_ms') for r in rs], 2)} | {spread([g(r, 'latency', 'p99_ms') for r in rs], 1)} | "
              f"{sum(r['lost'] for r in rs)} / {sum(r['out_of_order'] for r in rs)} | "
              f"{spread([r['clean_closes'] for r in rs], 0)} of {rs[0]['connections']} | {spread([r['other_cpu_pct'] for r in rs], 1)} |")
    print()
if light:
    print("### relay, light load (10 pairs, each sender paced to 200 msgs/s, 5 s after 1 s): median (min–max) over rounds\n")
    print("| server | runs | delivered msgs/s | p50 ms | p90 ms | p99 ms | max ms | lost / out-of-order | server CPU µs/msg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s, rows in by_server(light):
        rs = [x["r"] for x in rows]
        print(f"| {s} | {len(rs)} | {spread([r['msgs_per_s'] for r in rs], 0)} | {spread([g(r, 'latency', 'p50_ms') for r in rs], 2)} | "
              f"{spread([g(r, 'latency', 'p90_ms') for r in rs], 2)} | {spread([g(r, 'latency', 'p99_ms') for r in rs], 2)} | "
              f"{spread([g(r, 'latency', 'max_ms') for r in rs], 1)} | {sum(r['lost'] for r in rs)} / {sum(r['out_of_order'] for r in rs)} | "
              f"{spread([r['server_cpu_us_per_msg'] for r in rs], 2)} |")
    print()
if join:
    print("### join (200 rooms x 5 members, concurrency 200): median (min–max) over rounds\n")
    print("| server | runs | connect→ready p50 ms | connect→ready p99 ms | everyone knows everyone s | missing / dup / unexpected / failed | clean closes of 1,000 | other-tenant CPU % |")
    print("|---|---|---|---|---|---|---|---|")
    for s, rows in by_server(join):
        rs = [x["r"] for x in rows]
        print(f"| {s} | {len(rs)} | {spread([g(r, 'connect_to_ready_latency', 'p50_ms') for r in rs], 1)} | "
              f"{spread([g(r, 'connect_to_ready_latency', 'p99_ms') for r in rs], 1)} | {spread([r['all_known_s'] for r in rs], 3)} | "
              f"{sum(r['missing'] for r in rs)} / {sum(r['duplicate'] for r in rs)} / {sum(r['unexpected'] for r in rs)} / {sum(r['failed'] for r in rs)} | "
              f"{spread([r['clean_closes'] for r in rs], 0)} | {spread([r['other_cpu_pct'] for r in rs], 1)} |")
    print()
for title, idle_rows in (("idle", idle), ("idle, large", idlebig)):
    if not idle_rows:
        continue
    print(f"### {title} (rooms of 4, hold 10 s, fresh server per run): median (min–max) over rounds\n")
    print("| server | runs | established / attempted | establish s | RSS before → held MiB (median) | KiB/conn | clean closes | other-tenant CPU % |")
    print("|---|---|---|---|---|---|---|---|")
    for s, rows in by_server(idle_rows):
        rs = [x["r"] for x in rows]
        print(f"| {s} | {len(rs)} | {f(med([r['established'] for r in rs]), 0)} / {f(med([r['attempted'] for r in rs]), 0)} | "
              f"{spread([r['establish_s'] for r in rs], 2)} | {f(med([r['server_rss_before_kib'] for r in rs]) / 1024)} → {f(med([r['server_rss_held_kib'] for r in rs]) / 1024)} | "
              f"{spread([r['kib_per_conn'] for r in rs], 1)} | {spread([r['clean_closes'] for r in rs], 0)} | {spread([r.get('other_cpu_establish_pct') for r in rs], 1)} |")
    print()

# Ratios: per round (same round, neighbouring runs), then the median of those.
def per_round(rows, key):
    out = {}
    for x in rows:
        if "error" not in x["r"] and x["r"].get(key) is not None:
            out.setdefault(x["round"], {})[x["server"]] = x["r"][key]
    return out

print("### ratios (median of per-round ratios, min–max)\n")
BASES = ("huddle-base", "floor", "matchbox", "peerjs")
def ratios(rows, key, label, nested=None):
    out = {}
    for x in rows:
        v = x["r"].get(key) if nested is None else g(x["r"], key, nested)
        if "error" not in x["r"] and v is not None:
            out.setdefault(x["round"], {})[x["server"]] = v
    for base in BASES:
        rs = [v["huddle"] / v[base] for v in out.values() if "huddle" in v and base in v and v[base]]
        if rs:
            print(f"* {label}, huddle ÷ {base}: **{spread(rs, 2)}**")
ratios(relay, "server_cpu_us_per_msg", "relay server CPU µs/msg")
ratios(relay, "msgs_per_s", "relay delivered msgs/s")
ratios(light, "latency", "light-load relay p99", "p99_ms")
ratios(join, "connect_to_ready_latency", "join connect→ready p99", "p99_ms")
ratios(join, "all_known_s", "join everyone-knows-everyone")
for title, rows in (("idle", idle), ("idle, large", idlebig)):
    pr = per_round(rows, "kib_per_conn")
    hk = [v["huddle"] for v in pr.values() if "huddle" in v]
    if hk:
        print(f"* {title} KiB/conn, huddle: **{spread(hk, 1)}** (aim ≤ 8)")
    ratios(rows, "kib_per_conn", f"{title} KiB/conn")
PY
