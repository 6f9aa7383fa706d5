#!/usr/bin/env bash
# Streams at scale: N concurrent long SSE streams, direct to the upstream and through the
# gateway, side by side. Prints a table (mode, N, CPU per relayed chunk, added delay per chunk,
# RSS per open stream, errors); writes OUT_DIR/summary.md, results.json and runs/*.json.
#
#   bench/streams/run.sh [N...]                  default N: 100 1000 3000; ~2 min per N and repeat
#   REPEATS=1 ROUTES=pass-through bench/streams/run.sh 100
#   BASE=HEAD~3 bench/streams/run.sh 1000        also a gateway cell of that revision, side by side
#
# One upstream (bench/streams/upstream.py) speaks OpenAI chat SSE and Anthropic Messages SSE:
# CHUNKS content chunks per stream, CHUNK_MS +- JITTER_MS apart, usage at the end. Routes:
#   pass-through  OpenAI client -> gateway route gpt-4o-mini -> OpenAI upstream
#   translated    OpenAI client -> gateway route claude-x -> Anthropic upstream
# For every repeat, N and route: a direct cell (load.py straight at the upstream, in the
# upstream's protocol), then (with BASE) a cell of the BASE revision's gateway, then a gateway cell
# of the working tree. The gateway runs pinned to GATEWAY_CPU; the upstream
# and load.py share LOAD_CPU (as in bench/compare_revisions.sh). By default the gateway is
# started fresh for every gateway cell (so its idle RSS is clean) and warmed with WARM_STREAMS
# short streams; FRESH_GATEWAY=0 keeps one gateway for the whole run (faster, for smoke tests).
#
# The soft file-descriptor limit is raised to the hard one (ulimit -n): the gateway holds two
# sockets per stream, load.py and the upstream one each. The gateway closes client connections
# over --max-connections (default 1024) on accept, so it is started with MAX_CONNECTIONS
# (default: the largest N plus WARM_STREAMS plus 100, at least 1024); its upstream connection
# cap follows it.
#
# env (defaults): REPEATS=3 ROUTES="pass-through translated" CHUNKS=300 CHUNK_MS=30 JITTER_MS=10
#   RAMP=3 (s over which the streams start) CELL_TIMEOUT=60 SAMPLE_S=0.5 WARM_STREAMS=20
#   SETTLE=1 PAUSE=1 FRESH_GATEWAY=1 GATEWAY_CPU=0 LOAD_CPU=1 UPSTREAM_PORT=18100
#   GATEWAY_PORT=18188 GATEWAY_ARGS="" MAX_CONNECTIONS=(see above) PYTHON=.venv/bin/python
#   OUT_DIR=bench/results/streams-<ts>
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$(dirname "$HERE")")
NS=${*:-100 1000 3000}
REPEATS=${REPEATS:-3}
ROUTES=${ROUTES:-pass-through translated}
CHUNKS=${CHUNKS:-300}
CHUNK_MS=${CHUNK_MS:-30}
JITTER_MS=${JITTER_MS:-10}
RAMP=${RAMP:-3}
CELL_TIMEOUT=${CELL_TIMEOUT:-60}
SAMPLE_S=${SAMPLE_S:-0.5}
WARM_STREAMS=${WARM_STREAMS:-20}
SETTLE=${SETTLE:-1}
PAUSE=${PAUSE:-1}
FRESH_GATEWAY=${FRESH_GATEWAY:-1}
GATEWAY_CPU=${GATEWAY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UPSTREAM_PORT=${UPSTREAM_PORT:-18100}
GATEWAY_PORT=${GATEWAY_PORT:-18188}
GATEWAY_ARGS=${GATEWAY_ARGS:-}
BASE=${BASE:-}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
OUT_DIR=${OUT_DIR:-$ROOT/bench/results/streams-$(date -u +%Y%m%d-%H%M%S)}

if [ "$(nproc)" -lt 2 ]; then
  echo "run.sh: one CPU only: gateway, upstream and load share it" >&2
  GATEWAY_CPU=0 LOAD_CPU=0
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max_n=$(printf '%s\n' $NS | sort -n | tail -1)
MAX_CONNECTIONS=${MAX_CONNECTIONS:-$((max_n + WARM_STREAMS + 100 > 1024 ? max_n + WARM_STREAMS + 100 : 1024))}
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * max_n + 256)) ]; then
  echo "run.sh: ulimit -n is $(ulimit -n), below 2 x N + 256: raise the hard limit" >&2
fi

mkdir -p "$OUT_DIR/runs"
UP="" GW="" GW_TREE=""
BASE_TREE=""
if [ -n "$BASE" ]; then # that revision's files, run with this venv (same dependencies)
  BASE_TREE="$OUT_DIR/base-tree"
  mkdir -p "$BASE_TREE"
  git -C "$ROOT" archive "$BASE" | tar -x -C "$BASE_TREE"
fi
stop() { # pid: TERM, then KILL after 10 s
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
stop_gateway() { [ -z "$GW" ] || stop "$GW"; GW="" GW_TREE=""; }
cleanup() { stop_gateway; [ -z "$UP" ] || stop "$UP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

taskset -c "$LOAD_CPU" "$PYTHON" "$HERE/upstream.py" --port "$UPSTREAM_PORT" --chunks "$CHUNKS" \
  --chunk-ms "$CHUNK_MS" --jitter-ms "$JITTER_MS" >"$OUT_DIR/upstream.log" 2>&1 &
UP=$!
secret=$("$PYTHON" "$HERE/policy.py" --dir "$OUT_DIR/policy" --upstream-port "$UPSTREAM_PORT")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/health" && break; sleep 0.1; done

start_gateway() { # tree
  [ "$GW_TREE" = "$1" ] && return 0
  stop_gateway
  GW_TREE=$1
  rm -rf "$OUT_DIR/state"
  # shellcheck disable=SC2086  # GATEWAY_ARGS is a list of words
  (cd "$1" && BENCH_ANTHROPIC_KEY=sk-bench exec taskset -c "$GATEWAY_CPU" "$PYTHON" -m gateway.cli \
    serve --policy-repo "$OUT_DIR/policy" --state-dir "$OUT_DIR/state" --host 127.0.0.1 \
    --port "$GATEWAY_PORT" --max-connections "$MAX_CONNECTIONS" $GATEWAY_ARGS) \
    >>"$OUT_DIR/gateway.log" 2>&1 &
  GW=$!
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$GATEWAY_PORT/readyz" && return 0
    kill -0 "$GW" 2>/dev/null || break
    sleep 0.1
  done
  echo "run.sh: the gateway did not get ready; $OUT_DIR/gateway.log:" >&2
  tail -20 "$OUT_DIR/gateway.log" >&2
  exit 1
}

load() { # url protocol model n chunks ramp out [load.py options]
  local url=$1 protocol=$2 model=$3 n=$4 chunks=$5 ramp=$6 out=$7
  shift 7
  timeout $((CELL_TIMEOUT + 30)) taskset -c "$LOAD_CPU" "$PYTHON" "$HERE/load.py" --url "$url" \
    --protocol "$protocol" --model "$model" -n "$n" --chunks "$chunks" --ramp "$ramp" \
    --timeout "$CELL_TIMEOUT" --sample-s "$SAMPLE_S" --upstream-pid "$UP" --out "$out" "$@" \
    2>>"$OUT_DIR/load.log" || echo "{\"n\": $n, \"failed\": \"load.py exit $?\"}" >"$out"
}

cell() { # route target n rep
  local route=$1 target=$2 n=$3 rep=$4 out="$OUT_DIR/runs/$1-$2-n$3-r$4.json"
  local model=gpt-4o-mini protocol=openai
  [ "$route" = translated ] && model=claude-x
  if [ "$target" = direct ]; then
    [ "$route" = translated ] && protocol=anthropic
    curl -sf -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/stats?reset=1"
    load "http://127.0.0.1:$UPSTREAM_PORT" "$protocol" "$model" "$n" "$CHUNKS" "$RAMP" "$out" \
      --auth "x-api-key: sk-bench"
  else
    local tree=$ROOT
    [ "$target" = base ] && tree=$BASE_TREE
    start_gateway "$tree"
    local auth="Authorization: Bearer $secret"
    if [ "$WARM_STREAMS" -gt 0 ]; then # imports, pools and caches on their first use
      load "http://127.0.0.1:$GATEWAY_PORT" openai "$model" "$WARM_STREAMS" 5 0.2 \
        "$OUT_DIR/runs/warm.json" --auth "$auth"
    fi
    sleep "$SETTLE"
    curl -sf -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/stats?reset=1"
    load "http://127.0.0.1:$GATEWAY_PORT" openai "$model" "$n" "$CHUNKS" "$RAMP" "$out" \
      --auth "$auth" --gateway-pid "$GW"
    [ "$FRESH_GATEWAY" = 0 ] || stop_gateway
  fi
  curl -sf --max-time 5 "http://127.0.0.1:$UPSTREAM_PORT/stats" >"$out.upstream" || true
  "$PYTHON" - "$out" "$route" "$target" "$rep" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
g = r.get("gateway") or {}
d = r.get("delay_ms") or {}
print(f"  rep {sys.argv[4]} {sys.argv[2]:12} {sys.argv[3]:7} N={r['n']:<5} "
      f"complete={r.get('complete', 0)} delay p50={d.get('p50')} p99={d.get('p99')} ms "
      f"cpu/chunk={g.get('cpu_us_per_chunk', '-')} us rss/stream={g.get('rss_kb_per_stream', '-')} KB "
      + (r.get("failed") or ""))
EOF
  sleep "$PAUSE"
}

cat >"$OUT_DIR/meta.json" <<EOF
{"ns": "$NS", "repeats": $REPEATS, "routes": "$ROUTES", "chunks": $CHUNKS, "chunk_ms": $CHUNK_MS,
 "jitter_ms": $JITTER_MS, "ramp_s": $RAMP, "gateway_cpu": $GATEWAY_CPU, "load_cpu": $LOAD_CPU,
 "fresh_gateway": $FRESH_GATEWAY, "max_connections": $MAX_CONNECTIONS,
 "gateway_args": "$GATEWAY_ARGS", "base": "$BASE", "nofile": "$(ulimit -n)",
 "revision": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "loadavg_before": "$(cut -d' ' -f1-3 /proc/loadavg)", "started": "$(date -u +%FT%TZ)"}
EOF
echo "streams bench: N=[$NS] routes=[$ROUTES] repeats=$REPEATS ${CHUNKS} chunks ${CHUNK_MS}+-${JITTER_MS} ms," \
  "gateway on CPU $GATEWAY_CPU, upstream+load on CPU $LOAD_CPU, ulimit -n $(ulimit -n), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for rep in $(seq "$REPEATS"); do
  for n in $NS; do
    for route in $ROUTES; do
      cell "$route" direct "$n" "$rep"
      [ -z "$BASE" ] || cell "$route" base "$n" "$rep"
      cell "$route" gateway "$n" "$rep"
    done
  done
done
stop_gateway
"$PYTHON" "$HERE/summarize.py" "$OUT_DIR"
