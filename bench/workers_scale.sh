#!/usr/bin/env bash
# Workers scale: requests/s and CPU per request of `modelgate serve --workers 1` and
# `--workers 2` with Redis (limits on, so every request is admitted and settled in Redis), and
# Redis's own CPU per request. Nothing is pinned: on a 2-core machine wrk and the fake upstream
# share the cores, so the figures are what this machine gives, not the gateway's ceiling.
#
#   bench/workers_scale.sh        # REPEATS=3 x (1, 2 workers), 8 s each at 32 connections
set -u
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE"); PY=${PYTHON:-$ROOT/.venv/bin/python}
work=$(mktemp -d)
redis-server --port 18700 --save "" --appendonly no --daemonize no > $work/redis.log 2>&1 & RD=$!
"$PY" "$HERE/fake_upstream.py" --port 18701 > /dev/null 2>&1 & UP=$!
secret=$($PY $HERE/setup_policy.py --dir $work/policy --upstream http://127.0.0.1:18701/v1 --model gpt-4o-mini 2>/dev/null)
cpu() { # utime+stime in clock ticks of pid $1 (and its children with "tree")
  "$PY" - "$@" <<'PY'
import subprocess, sys
def ticks(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])
pids = [sys.argv[1]]
if sys.argv[2:] == ["tree"]:
    pids += subprocess.run(["pgrep", "-P", sys.argv[1]], capture_output=True, text=True).stdout.split()
print(sum(ticks(p) for p in pids))
PY
}
printf 'default: {rpm: 100000000, tpm: 10000000000, tokens_per_day: 100000000000}\ntiers: {}\n' > $work/policy/limits.yaml
git -C $work/policy add limits.yaml && git -C $work/policy -c user.name=b -c user.email=b@b commit -qm limits
for rep in $(seq "${REPEATS:-3}"); do for w in 1 2; do
  (cd "$ROOT" && exec "$PY" -m gateway.cli serve --policy-repo $work/policy --state-dir $work/state-$w-$rep --port 18702 --workers $w --redis-url redis://127.0.0.1:18700/0) > $work/gw.log 2>&1 & GW=$!
  for _ in $(seq 300); do curl -sf -o /dev/null http://127.0.0.1:18702/readyz && break; sleep 0.1; done; sleep 2
  BENCH_STREAM=0 BENCH_MODEL=gpt-4o-mini BENCH_VERIFY=0 BENCH_OUT=$work/w0.json wrk -t1 -c32 -d2s -s $HERE/lua/chat.lua -H "Authorization: Bearer $secret" http://127.0.0.1:18702/v1/chat/completions > /dev/null
  g0=$(cpu $GW tree); r0=$(cpu $RD)
  BENCH_STREAM=0 BENCH_MODEL=gpt-4o-mini BENCH_VERIFY=0 BENCH_OUT=$work/w.json wrk -t1 -c32 -d8s -s $HERE/lua/chat.lua -H "Authorization: Bearer $secret" http://127.0.0.1:18702/v1/chat/completions > $work/wrk.txt
  g1=$(cpu $GW tree); r1=$(cpu $RD)
  n=$(python3 -c "import json;print(json.load(open('$work/w.json'))['requests'])"); rps=$(python3 -c "import json;print(json.load(open('$work/w.json'))['rps'])")
  errs=$(python3 -c "import json;d=json.load(open('$work/w.json'))['errors'];print(sum(d.values()))")
  echo "workers=$w rep=$rep rps=$rps errors=$errs gw_cpu_ms_per_req=$(python3 -c "print(round(($g1-$g0)*1000/$(getconf CLK_TCK)/$n,3))") redis_cpu_ms_per_req=$(python3 -c "print(round(($r1-$r0)*1000/$(getconf CLK_TCK)/$n,4))")"
  kill $GW; wait $GW 2>/dev/null
done; done
kill $UP $RD; wait 2>/dev/null; rm -rf $work
