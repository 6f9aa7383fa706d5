#!/usr/bin/env bash
# Two revisions of the gateway side by side: CPU per request and latency, run alternately in
# one session so that machine drift hits both alike. Use it when you touch the hot path.
#
#   bench/compare_revisions.sh BASE [CANDIDATE]     CANDIDATE defaults to the working tree
#   REPEATS=5 DURATION=8 CONNS="1 32" MODE=stream bench/compare_revisions.sh HEAD~1
#   CANDIDATE_ARGS="--otlp-endpoint http://127.0.0.1:4318" bench/compare_revisions.sh HEAD HEAD
#     (one revision with and without a serve flag; BASE_ARGS likewise for the base)
#   CANDIDATE_POLICY=--prices bench/compare_revisions.sh HEAD HEAD
#     (one revision on two policies: bench/setup_policy.py options; BASE_POLICY likewise)
#
# Each revision is checked out in a temporary worktree and served with this checkout's venv
# (so both run the same dependencies), pinned to CPU 0; the fake upstream and wrk share CPU 1.
# Prints one line per run and a table of medians, with CANDIDATE / BASE ratios.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BASE=${1:?usage: bench/compare_revisions.sh BASE [CANDIDATE]}
CANDIDATE=${2:-}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-6}
CONNS=${CONNS:-"1 32"}
MODE=${MODE:-nonstream}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
UPSTREAM_PORT=${UPSTREAM_PORT:-18000}
GATEWAY_PORT=${GATEWAY_PORT:-18088}
BASE_ARGS=${BASE_ARGS:-}
CANDIDATE_ARGS=${CANDIDATE_ARGS:-}
BASE_POLICY=${BASE_POLICY:-}
CANDIDATE_POLICY=${CANDIDATE_POLICY:-}

command -v wrk >/dev/null || { echo "compare_revisions.sh: wrk is missing (./dev just bench installs it)" >&2; exit 1; }
work=$(mktemp -d -t modelgate-revs-XXXXXX)
UP="" GW=""
cleanup() {
  for pid in $GW $UP; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  git -C "$ROOT" worktree remove --force "$work/base" 2>/dev/null || true
  [ -z "$CANDIDATE" ] || git -C "$ROOT" worktree remove --force "$work/candidate" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

git -C "$ROOT" worktree add --detach -q "$work/base" "$BASE"
if [ -n "$CANDIDATE" ]; then
  git -C "$ROOT" worktree add --detach -q "$work/candidate" "$CANDIDATE"
  candidate_tree=$work/candidate
else
  candidate_tree=$ROOT
  CANDIDATE="working tree"
fi

taskset -c 1 "$PYTHON" "$HERE/fake_upstream.py" --port "$UPSTREAM_PORT" >"$work/upstream.log" 2>&1 &
UP=$!
for side in base candidate; do
  "$PYTHON" "$HERE/setup_policy.py" --dir "$work/policy-$side" --upstream \
    "http://127.0.0.1:$UPSTREAM_PORT/v1" --model gpt-4o-mini \
    $([ $side = base ] && echo "$BASE_POLICY" || echo "$CANDIDATE_POLICY") \
    2>/dev/null >"$work/secret-$side"
done
url=http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions
stream=$([ "$MODE" = stream ] && echo 1 || echo 0)

run_wrk() { # conns seconds verify out
  BENCH_STREAM=$stream BENCH_MODEL=gpt-4o-mini BENCH_VERIFY=$3 BENCH_OUT=$4 \
    taskset -c 1 wrk -t1 -c"$1" -d"$2s" --timeout 10s --latency -s "$HERE/lua/chat.lua" \
      -H "Authorization: Bearer $secret" "$url"
}

echo "rev,conns,rep,requests,rps,p50_ms,cpu_ms_per_req" >"$work/runs.csv"
for rep in $(seq 1 "$REPEATS"); do
  for conns in $CONNS; do
    for side in base candidate; do
      tree=$([ $side = base ] && echo "$work/base" || echo "$candidate_tree")
      extra=$([ $side = base ] && echo "$BASE_ARGS" || echo "$CANDIDATE_ARGS")
      secret=$(cat "$work/secret-$side")
      rm -rf "$work/state"
      # cwd outside both trees, so only PYTHONPATH decides which revision is imported
      (cd "$work" && PYTHONPATH=$tree exec taskset -c 0 "$PYTHON" -c \
        "import sys; sys.argv = ['modelgate', *sys.argv[1:]]; from gateway.cli import main; main()" \
        serve --policy-repo "$work/policy-$side" --state-dir "$work/state" --host 127.0.0.1 \
        --port "$GATEWAY_PORT" $extra) >"$work/gateway-$side.log" 2>&1 &
      GW=$!
      for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$GATEWAY_PORT/readyz" && break; sleep 0.1
      done
      run_wrk "$conns" 2 1 "$work/warmup.json" >/dev/null
      "$PYTHON" -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['good'] and not r['bad'] else 'bad responses in the warm-up')" "$work/warmup.json"
      before=$(awk '{print $14 + $15}' "/proc/$GW/stat")
      run_wrk "$conns" "$DURATION" 0 "$work/run.json" >"$work/wrk.txt"
      after=$(awk '{print $14 + $15}' "/proc/$GW/stat")
      kill "$GW"; wait "$GW" 2>/dev/null || true; GW=""
      "$PYTHON" - "$work/run.json" "$work/wrk.txt" "$side" "$conns" "$rep" "$DURATION" \
        "$before" "$after" "$(getconf CLK_TCK)" >>"$work/runs.csv" <<'EOF'
import json, re, sys
run, wrk, side, conns, rep, secs, before, after, hz = sys.argv[1:]
requests = json.load(open(run))["requests"]
p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", open(wrk).read(), re.M)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
cpu_ms = (float(after) - float(before)) / float(hz) * 1000 / requests
print(f"{side},{conns},{rep},{requests},{requests / float(secs):.0f},"
      f"{float(p50.group(1)) * scale:.3f},{cpu_ms:.4f}")
EOF
      tail -1 "$work/runs.csv" | sed 's/^/  /'
    done
  done
done

"$PYTHON" - "$work/runs.csv" "$BASE" "$CANDIDATE" "$MODE" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
base, candidate, mode = sys.argv[2:]
print(f"\n{mode}: base {base}, candidate {candidate}; median (min-max) over repeats\n")
print("| conns | metric | base | candidate | candidate / base |")
print("|---:|---|---:|---:|---:|")
for conns in dict.fromkeys(r["conns"] for r in rows):
    for metric in ("cpu_ms_per_req", "p50_ms", "rps"):
        cells = {}
        for side in ("base", "candidate"):
            vals = [float(r[metric]) for r in rows if r["rev"] == side and r["conns"] == conns]
            cells[side] = (statistics.median(vals), min(vals), max(vals))
        fmt = lambda c: f"{c[0]:.3f} ({c[1]:.3f}-{c[2]:.3f})"
        ratio = cells["candidate"][0] / cells["base"][0]
        print(f"| {conns} | {metric} | {fmt(cells['base'])} | {fmt(cells['candidate'])} | {ratio:.2f} |")
EOF
