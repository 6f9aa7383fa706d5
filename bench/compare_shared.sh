#!/usr/bin/env bash
# Measure ModelGate with the shared reference harness (../shared/bench, relative to the repo
# root), the one that produced the LiteLLM and nginx baselines, so the numbers sit in the same
# table as theirs. That harness starts its own fake upstream on 127.0.0.1:18000; this script
# creates a bench policy routing gpt-4o-mini there, starts `modelgate serve` pinned to CPU 0,
# runs the harness against it, and stops the gateway.
#
#   bench/compare_shared.sh                      3 x 10 s, conns 1 32 64 (the baselines' settings)
#   DURATION=5 REPEATS=3 bench/compare_shared.sh other knobs: see ../shared/bench/README.md
#
# Results go to bench/results/shared-modelgate-<timestamp>/ (the shared tree is read-only).
# The baselines to compare with: ../shared/bench/baseline/*.md and ../shared/bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
MODELGATE=${MODELGATE:-$ROOT/.venv/bin/modelgate}
GATEWAY_PORT=${GATEWAY_PORT:-18088}
GATEWAY_CPU=${GATEWAY_CPU:-0}
OUT_DIR=${OUT_DIR:-$HERE/results/shared-modelgate-$(date +%Y%m%d-%H%M%S)}

[ -x "$SHARED/run_bench.sh" ] || { echo "compare_shared.sh: no harness at $SHARED" >&2; exit 1; }
[ -x "$MODELGATE" ] || { echo "compare_shared.sh: $MODELGATE missing; run via ./dev" >&2; exit 1; }
mkdir -p "$OUT_DIR"
work=$(mktemp -d -t modelgate-shared-bench-XXXXXX)
GW=""
cleanup() {
  if [ -n "$GW" ] && kill -0 "$GW" 2>/dev/null; then kill "$GW"; wait "$GW" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

secret=$("$PYTHON" "$HERE/setup_policy.py" --dir "$work/policy" \
         --upstream http://127.0.0.1:18000/v1 2>/dev/null)
(cd "$ROOT" && exec taskset -c "$GATEWAY_CPU" "$MODELGATE" serve --policy-repo "$work/policy" \
   --state-dir "$work/state" --host 127.0.0.1 --port "$GATEWAY_PORT") >"$OUT_DIR/gateway.log" 2>&1 &
GW=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$GATEWAY_PORT/readyz" && break
  kill -0 "$GW" 2>/dev/null || { tail -n 40 "$OUT_DIR/gateway.log" >&2; exit 1; }
  sleep 0.1
done

PROXY_PID=$GW PYTHON=$PYTHON LABEL=modelgate OUT_DIR=$OUT_DIR \
  "$SHARED/run_bench.sh" "http://127.0.0.1:$GATEWAY_PORT" "Authorization: Bearer $secret"
echo "== compare with the LiteLLM and nginx rows in $SHARED/README.md (Results so far)"
