#!/bin/sh
# Runs the browser tests (or, with "bench", the join benchmark) inside a
# network namespace that has only loopback, so nothing can leave 127.0.0.1.
# Works as well when already inside such a namespace.
#
#   sh tests/e2e/run.sh                 # all tests/e2e/*.test.mjs
#   sh tests/e2e/run.sh tests/e2e/x.test.mjs …   # some of them
#   sh tests/e2e/run.sh bench [runs]    # tests/e2e/bench-join.mjs
#   sh tests/e2e/run.sh bench-turn [runs]   # tests/e2e/bench-turn.mjs
#   sh tests/e2e/run.sh bench-files [runs] [MiB]   # tests/e2e/bench-files.mjs
#   sh tests/e2e/run.sh bench-cpu [rounds] [seconds]   # tests/e2e/bench-cpu.mjs
#   sh tests/e2e/run.sh bench-netchange [rounds] [down-ms]   # tests/e2e/bench-netchange.mjs (REF_BIN: a build to compare with)
#
# HUDDLE_BIN: the server binary (default target/debug/huddle).
set -eu
cd "$(dirname "$0")/../.."
export HUDDLE_BIN="${HUDDLE_BIN:-target/debug/huddle}"

if [ ! -x "$HUDDLE_BIN" ]; then
  echo "run.sh: $HUDDLE_BIN not found; build it first (cargo build)" >&2
  exit 2
fi

if [ "${1:-}" = bench ]; then
  shift
  set -- node tests/e2e/bench-join.mjs "$@"
elif [ "${1:-}" = bench-turn ]; then
  shift
  set -- node tests/e2e/bench-turn.mjs "$@"
elif [ "${1:-}" = bench-files ]; then
  shift
  set -- node tests/e2e/bench-files.mjs "$@"
elif [ "${1:-}" = bench-cpu ]; then
  shift
  set -- node tests/e2e/bench-cpu.mjs "$@"
elif [ "${1:-}" = bench-netchange ]; then
  shift
  set -- node tests/e2e/bench-netchange.mjs "$@"
elif [ $# -eq 0 ]; then
  set -- tests/e2e/*.test.mjs
fi
if [ "$1" != node ]; then
  # A test that hangs fails after E2E_TEST_TIMEOUT ms (default 10 min; a describe block counts as one test), and
  # the run ends when the tests do, even if something was left open.
  set -- node --test --test-concurrency=1 --test-force-exit \
    --test-timeout="${E2E_TEST_TIMEOUT:-600000}" "$@"
fi

command -v ip >/dev/null || { echo "run.sh: needs ip (iproute2) and unshare (util-linux)" >&2; exit 2; }

# Only "lo" present: already in a loopback-only namespace.
if [ -z "$(ip -o link show 2>/dev/null | grep -v ': lo:' || true)" ]; then
  ip link set lo up 2>/dev/null || true
  exec "$@"
fi

exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
