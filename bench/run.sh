#!/usr/bin/env bash
# ModelGate's overhead benchmark: wrk straight at the fake upstream ("direct") and through the
# gateway, back to back, for non-stream and stream requests at 1 and 32 connections.
#
#   ./dev just bench                       starts everything, runs 3 x 10 s per cell, stops all
#   ./dev just bench DURATION=5 REPEATS=3  knobs as arguments or environment variables
#   GATEWAY_URL=http://127.0.0.1:4000 AUTH_HEADER="Authorization: Bearer sk-..." bench/run.sh
#                                          measures a gateway that is already running
#
# Knobs                                  default
#   DURATION REPEATS WARMUP PAUSE        10 3 3 1        (seconds, count, seconds, seconds)
#   CONNS MODES TARGETS                  "1 32" "nonstream stream" "direct gateway"
#   GATEWAY_URL                          unset: create a policy (bench/setup_policy.py) and start
#                                        `modelgate serve` on it, pinned to GATEWAY_CPU
#   AUTH_HEADER                          header sent to GATEWAY_URL (never written to disk)
#   GATEWAY_PID                          with GATEWAY_URL: process tree sampled for CPU and RSS
#                                        (default: whatever listens on GATEWAY_URL's port)
#   GATEWAY_PORT GATEWAY_ARGS            18088, ""       (for the gateway started here)
#   GATEWAY_CPU UPSTREAM_CPU LOADGEN_CPU 0 1 1
#   UPSTREAM_PORT UPSTREAM_ARGS          18000, ""       (e.g. "--delay-ms 20 --chunk-delay-ms 2")
#   MODEL PYTHON OUT_DIR                 gpt-4o-mini, .venv/bin/python, bench/results/<timestamp>
#
# Writes OUT_DIR/{meta.json, runs/, results.json, summary.md, *.log} and prints summary.md.
set -euo pipefail

for arg in "$@"; do
  case $arg in
    [A-Z_]*=*) export "${arg?}" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg' (knobs are NAME=value)" >&2; exit 2 ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
WARMUP=${WARMUP:-3}
PAUSE=${PAUSE:-1}
CONNS=${CONNS:-"1 32"}
MODES=${MODES:-"nonstream stream"}
TARGETS=${TARGETS:-"direct gateway"}
GATEWAY_URL=${GATEWAY_URL:-}
AUTH_HEADER=${AUTH_HEADER:-}
GATEWAY_PID=${GATEWAY_PID:-}
GATEWAY_PORT=${GATEWAY_PORT:-18088}
GATEWAY_ARGS=${GATEWAY_ARGS:-}
GATEWAY_CPU=${GATEWAY_CPU:-0}
UPSTREAM_CPU=${UPSTREAM_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-18000}
UPSTREAM_ARGS=${UPSTREAM_ARGS:-}
MODEL=${MODEL:-gpt-4o-mini}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
OUT_DIR=${OUT_DIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
CHAT_PATH=/v1/chat/completions
UPSTREAM_URL=http://127.0.0.1:$UPSTREAM_PORT

command -v wrk >/dev/null || { echo "run.sh: wrk is missing: apt-get install -y wrk" >&2; exit 1; }
mkdir -p "$OUT_DIR/runs"
UP_PID="" GW_STARTED=""

stop_pid() { # pid: TERM, up to 10 s, then KILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  if [ -n "$GW_STARTED" ]; then stop_pid "$GW_STARTED"; fi
  if [ -n "$UP_PID" ]; then stop_pid "$UP_PID"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # url seconds [pid]: until the URL answers 200
  local url=$1 tries=$(( $2 * 10 )) pid=${3:-}
  for _ in $(seq 1 "$tries"); do
    curl -sf -o /dev/null --max-time 1 "$url" && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# -------------------------------------------------------------------- fake upstream
if curl -s -o /dev/null --max-time 1 "$UPSTREAM_URL/health"; then
  echo "run.sh: something already listens on $UPSTREAM_URL; stop it or set UPSTREAM_PORT" >&2
  exit 1
fi
# shellcheck disable=SC2086
taskset -c "$UPSTREAM_CPU" "$PYTHON" "$HERE/fake_upstream.py" --port "$UPSTREAM_PORT" \
  $UPSTREAM_ARGS >"$OUT_DIR/upstream.log" 2>&1 &
UP_PID=$!
wait_http "$UPSTREAM_URL/health" 10 "$UP_PID" \
  || { echo "run.sh: the fake upstream did not start:" >&2; cat "$OUT_DIR/upstream.log" >&2; exit 1; }

# -------------------------------------------------------------------- gateway
GATEWAY_DESC="none"
if [ -n "$GATEWAY_URL" ]; then
  GATEWAY_URL=${GATEWAY_URL%/}
  if [ -z "$GATEWAY_PID" ]; then
    port=${GATEWAY_URL##*:}; port=${port%%/*}
    GATEWAY_PID=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  fi
  GATEWAY_DESC="$GATEWAY_URL${GATEWAY_PID:+ (pid $GATEWAY_PID: $(tr '\0' ' ' </proc/"$GATEWAY_PID"/cmdline 2>/dev/null || true))}"
elif [[ " $TARGETS " == *" gateway "* ]]; then
  MODELGATE=$ROOT/.venv/bin/modelgate
  [ -x "$MODELGATE" ] || MODELGATE=$(command -v modelgate || true)
  if [ -z "$MODELGATE" ] || ! "$MODELGATE" serve --help >/dev/null 2>&1; then
    echo "run.sh: no runnable 'modelgate serve' (try ./dev just bench); measuring direct only" >&2
    TARGETS=direct
  else
    secret=$("$PYTHON" "$HERE/setup_policy.py" --dir "$OUT_DIR/policy" \
             --upstream "$UPSTREAM_URL/v1" --model "$MODEL" 2>/dev/null)
    AUTH_HEADER="Authorization: Bearer $secret"
    GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
    if curl -s -o /dev/null --max-time 1 "$GATEWAY_URL/healthz"; then
      echo "run.sh: something already listens on $GATEWAY_URL; set GATEWAY_PORT" >&2; exit 1
    fi
    # shellcheck disable=SC2086
    (cd "$ROOT" && exec taskset -c "$GATEWAY_CPU" "$MODELGATE" serve --policy-repo "$OUT_DIR/policy" \
       --state-dir "$OUT_DIR/state" --host 127.0.0.1 --port "$GATEWAY_PORT" $GATEWAY_ARGS) \
       >"$OUT_DIR/gateway.log" 2>&1 &
    GW_STARTED=$!
    GATEWAY_PID=$GW_STARTED
    if ! wait_http "$GATEWAY_URL/readyz" 60 "$GW_STARTED"; then
      echo "run.sh: the gateway did not become ready; its log:" >&2
      tail -n 40 "$OUT_DIR/gateway.log" >&2; exit 1
    fi
    GATEWAY_DESC="taskset -c $GATEWAY_CPU modelgate serve --port $GATEWAY_PORT $GATEWAY_ARGS"
  fi
fi
if [ -z "$GATEWAY_URL" ]; then TARGETS=direct; fi

probe() { "$PYTHON" "$HERE/procstat.py" ${GATEWAY_PID:+--gateway "$GATEWAY_PID"} --upstream "$UP_PID"; }
url_for() { if [ "$1" = direct ]; then echo "$UPSTREAM_URL$CHAT_PATH"; else echo "$GATEWAY_URL$CHAT_PATH"; fi; }
auth_for() { if [ "$1" = gateway ] && [ -n "$AUTH_HEADER" ]; then printf '%s' "$AUTH_HEADER"; fi; }

probe >"$OUT_DIR/probe_idle.json"
BENCH_META_GATEWAY=$GATEWAY_DESC BENCH_META_DURATION=$DURATION BENCH_META_REPEATS=$REPEATS \
BENCH_META_UPSTREAM_ARGS=$UPSTREAM_ARGS BENCH_META_CPUS="$GATEWAY_CPU $UPSTREAM_CPU $LOADGEN_CPU" \
BENCH_META_CONNS=$CONNS BENCH_META_MODES=$MODES BENCH_META_TARGETS=$TARGETS \
"$PYTHON" - "$OUT_DIR/meta.json" <<'EOF'
import json, os, platform, subprocess, sys, time
env = os.environ
gw, up, lg = env["BENCH_META_CPUS"].split()
cpu_model = next((l.split(":", 1)[1] for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
meta = {
    "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "gateway": env["BENCH_META_GATEWAY"],
    "duration_s": int(env["BENCH_META_DURATION"]), "repeats": int(env["BENCH_META_REPEATS"]),
    "conns": env["BENCH_META_CONNS"].split(), "modes": env["BENCH_META_MODES"].split(),
    "targets": env["BENCH_META_TARGETS"].split(), "upstream_args": env["BENCH_META_UPSTREAM_ARGS"],
    "gateway_cpu": gw, "upstream_cpu": up, "loadgen_cpu": lg, "cpu_model": cpu_model,
    "nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
    "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF

run_wrk() { # target mode conns seconds out verify
  local target=$1 mode=$2 c=$3 secs=$4 out=$5 verify=$6 hdr=()
  [ -n "$(auth_for "$target")" ] && hdr=(-H "$(auth_for "$target")")
  BENCH_STREAM=$([ "$mode" = stream ] && echo 1 || echo 0) BENCH_MODEL=$MODEL \
  BENCH_VERIFY=$verify BENCH_OUT=$out \
    taskset -c "$LOADGEN_CPU" wrk -t1 -c"$c" -d"${secs}s" --timeout 10s -s "$HERE/lua/chat.lua" \
      "${hdr[@]}" "$(url_for "$target")" >"${out%.json}.wrk.txt" 2>&1 \
    || { echo "run.sh: wrk failed:" >&2; cat "${out%.json}.wrk.txt" >&2; return 1; }
}

echo "== checks and warm-up (${WARMUP} s per target and mode, every response verified)"
maxc=$(tr ' ' '\n' <<<"$CONNS" | sort -n | tail -1)
for target in $TARGETS; do
  for mode in $MODES; do
    w=$OUT_DIR/runs/warmup-$target-$mode.json
    run_wrk "$target" "$mode" "$maxc" "$WARMUP" "$w" 1
    "$PYTHON" - "$w" "$target" "$mode" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  {sys.argv[2]:7s} {sys.argv[3]:9s}: {r['requests']} requests, {r['good']} good, "
      f"{r['bad']} bad, errors {r['errors']}")
if r["requests"] == 0 or r["bad"] or r["errors"]["status"]:
    sys.exit("run.sh: bad responses in the warm-up; see " + sys.argv[1].replace(".json", ".wrk.txt"))
EOF
    sleep "$PAUSE"
  done
done

echo "== measuring: $REPEATS x ${DURATION} s, conns [$CONNS], modes [$MODES], targets [$TARGETS]"
for rep in $(seq 1 "$REPEATS"); do
  for mode in $MODES; do
    for c in $CONNS; do
      for target in $TARGETS; do  # direct and gateway back to back: drift hits both alike
        base=$OUT_DIR/runs/$target-$mode-c$c-r$rep
        probe >"$base.before.json"
        run_wrk "$target" "$mode" "$c" "$DURATION" "$base.json" 0
        probe >"$base.after.json"
        "$PYTHON" - "$base.json" "r$rep $target $mode c=$c" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
lat, errors = r["latency_ms"], sum(r["errors"].values())
print(f"  {sys.argv[2]:30s} {r['rps']:9.0f} req/s  p50 {lat['p50']:7.3f} ms  "
      f"p99 {lat['p99']:7.3f} ms  errors {errors}")
EOF
        sleep "$PAUSE"
      done
    done
  done
done
probe >"$OUT_DIR/probe_end.json"

"$PYTHON" "$HERE/summarize.py" "$OUT_DIR"
echo "== $OUT_DIR/summary.md"
cat "$OUT_DIR/summary.md"
