#!/usr/bin/env python3
"""Turn one bench/run.sh output directory into results.json and summary.md.

    python bench/summarize.py bench/results/<ts>

Every cell is the median over repeats, with (min-max). Added latency is computed per repeat
(gateway minus direct of the same repeat, run back to back) and then summarized the same way.
Standard library only.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

NOISY = 0.10  # (max - min) / median above this flags a cell with "!"
# wrk + upstream, not the gateway, set the pace when their core is this busy while the
# gateway's core is below GATEWAY_SATURATED.
HARNESS_BOUND = 95.0
GATEWAY_SATURATED = 85.0
# The gateway's core this much busier than the gateway itself: something else ran there.
SHARED_CORE = 15.0
TARGETS = (
    # (label, mode, conns, metric, limit)
    ("added p50 latency, non-stream, 1 connection", "nonstream", 1, "added_p50_ms", 0.5),
    ("added p50 latency, stream (full response), 1 connection", "stream", 1, "added_p50_ms", 1.0),
    ("gateway CPU per request, non-stream, 32 connections", "nonstream", 32, "cpu_ms_per_req", 0.3),
)
RUN_NAME = re.compile(r"(direct|gateway)-(nonstream|stream)-c(\d+)-r(\d+)\.json$")

Stats = dict[str, Any]


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def stats(values: list[float]) -> Stats | None:
    if not values:
        return None
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    spread = (hi - lo) / abs(med) if med else 0.0
    return {"median": med, "min": lo, "max": hi, "n": len(values), "noisy": spread > NOISY}


def fmt(s: Stats | None, digits: int, spread: bool = True) -> str:
    if s is None:
        return "-"
    text = f"{s['median']:.{digits}f}"
    if spread and s["n"] > 1:
        text += f" ({s['min']:.{digits}f}-{s['max']:.{digits}f})"
    return text + (" !" if s["noisy"] and s["n"] > 1 else "")


def busy(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    out = {}
    for cpu, b in before["cpus"].items():
        a = after["cpus"].get(cpu)
        dt = a["total"] - b["total"] if a else 0
        if dt > 0:
            out[cpu] = 100.0 * (dt - (a["idle"] - b["idle"])) / dt
    return out


def steal(before: dict[str, Any], after: dict[str, Any]) -> float:
    """The largest share of any CPU's time the hypervisor took during the run, in %."""
    worst = 0.0
    for cpu, b in before["cpus"].items():
        a = after["cpus"].get(cpu)
        dt = a["total"] - b["total"] if a else 0
        if dt > 0 and "steal" in b:
            worst = max(worst, 100.0 * (a["steal"] - b["steal"]) / dt)
    return worst


def read_runs(out: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted((out / "runs").glob("*.json")):
        m = RUN_NAME.match(path.name)
        if not m:
            continue
        wrk = load(path)
        run: dict[str, Any] = {
            "target": m[1],
            "mode": m[2],
            "conns": int(m[3]),
            "rep": int(m[4]),
            "rps": wrk["rps"],
            "requests": wrk["requests"],
            "errors": sum(wrk["errors"].values()),
            "p50": wrk["latency_ms"]["p50"],
            "p99": wrk["latency_ms"]["p99"],
        }
        before, after = path.with_suffix(".before.json"), path.with_suffix(".after.json")
        if before.exists() and after.exists():
            b, a = load(before), load(after)
            run["busy"] = busy(b, a)
            run["steal_pct"] = steal(b, a)
            if "gateway" in b and "gateway" in a and wrk["requests"]:
                cpu_s = a["gateway"]["cpu_s"] - b["gateway"]["cpu_s"]
                run["cpu_ms_per_req"] = 1000.0 * cpu_s / wrk["requests"]
                run["cpu_util_pct"] = 100.0 * cpu_s / max(a["t"] - b["t"], 1e-9)
        runs.append(run)
    return runs


def cells(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[tuple[str, str, int], dict[int, dict[str, Any]]] = {}
    for r in runs:
        by.setdefault((r["target"], r["mode"], r["conns"]), {})[r["rep"]] = r
    out = []
    for mode, conns in sorted({(m, c) for _, m, c in by}, key=lambda k: (k[0] != "nonstream", k)):
        direct = by.get(("direct", mode, conns), {})
        gateway = by.get(("gateway", mode, conns), {})
        paired = sorted(set(direct) & set(gateway))
        cell: dict[str, Any] = {"mode": mode, "conns": conns}
        for who, reps in (("direct", direct), ("gateway", gateway)):
            rows = list(reps.values())
            cell[who] = {
                "rps": stats([r["rps"] for r in rows]),
                "p50_ms": stats([r["p50"] for r in rows]),
                "p99_ms": stats([r["p99"] for r in rows]),
                "errors": sum(r["errors"] for r in rows),
                "busy_pct": {
                    cpu: stats([r["busy"][cpu] for r in rows if cpu in r.get("busy", {})])
                    for cpu in sorted({cpu for r in rows for cpu in r.get("busy", {})})
                },
            }
        g = [gateway[k] for k in sorted(gateway)]
        cell["cpu_ms_per_req"] = stats([r["cpu_ms_per_req"] for r in g if "cpu_ms_per_req" in r])
        cell["cpu_util_pct"] = stats([r["cpu_util_pct"] for r in g if "cpu_util_pct" in r])
        cell["added_p50_ms"] = stats([gateway[k]["p50"] - direct[k]["p50"] for k in paired])
        cell["added_p99_ms"] = stats([gateway[k]["p99"] - direct[k]["p99"] for k in paired])
        cell["rps_ratio"] = stats([gateway[k]["rps"] / direct[k]["rps"] for k in paired])
        out.append(cell)
    return out


def memory(out: Path) -> dict[str, float] | None:
    idle, end = out / "probe_idle.json", out / "probe_end.json"
    if not (idle.exists() and end.exists()):
        return None
    i, e = load(idle).get("gateway"), load(end).get("gateway")
    if not i or not e:
        return None
    return {
        "idle_mb": i["rss_kb"] / 1024,
        "after_mb": e["rss_kb"] / 1024,
        "peak_mb": e["hwm_kb"] / 1024,
    }


def _notes(own: Stats | None, core: Stats | None, harness: Stats | None) -> tuple[str, str]:
    """Flags for the gateway's core (others ran there) and the harness's (it set the pace)."""
    if own is None or core is None or harness is None:
        return "", ""
    shared = core["median"] - own["median"] >= SHARED_CORE
    bound = harness["median"] >= HARNESS_BOUND and core["median"] < GATEWAY_SATURATED
    return (" (shared)" if shared else ""), (" (harness-bound)" if bound else "")


def render(
    meta: dict[str, Any],
    table: list[dict[str, Any]],
    mem: dict[str, float] | None,
    max_steal: float | None = None,
) -> str:
    has_gw = any(c["gateway"]["rps"] for c in table)
    gw_cpu, lg_cpu = meta.get("gateway_cpu", "0"), meta.get("loadgen_cpu", "1")
    lines = [
        f"# ModelGate overhead benchmark, {meta.get('started', '')}",
        "",
        f"- gateway: `{meta.get('gateway', 'none')}`",
        f"- {meta.get('repeats')} repeats x {meta.get('duration_s')} s per cell, wrk -t1, "
        f"upstream `fake_upstream.py {meta.get('upstream_args') or ''}`".rstrip()
        + ",",
        f"  pinning: gateway CPU {meta.get('gateway_cpu')}, upstream CPU "
        f"{meta.get('upstream_cpu')}, wrk CPU {meta.get('loadgen_cpu')}",
        f"- {meta.get('cpu_model', '').strip()}, {meta.get('nproc')} CPUs, "
        f"Python {meta.get('python', '')}",
        "",
        "Median (min-max) over repeats; ` !` marks a spread over 10 %. Latency is wrk's time to "
        "the full response (for streams: the last chunk).",
        "",
    ]
    if has_gw:
        lines += [
            "| mode | conns | direct RPS | gateway RPS | ratio | direct p50 ms | gateway p50 ms "
            "| added p50 ms | added p99 ms | gateway CPU ms/req | gateway CPU % "
            f"| CPU{gw_cpu} busy % | CPU{lg_cpu} busy % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines += [
            f"| mode | conns | direct RPS | direct p50 ms | direct p99 ms | CPU{lg_cpu} busy % |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    for c in table:
        d, g = c["direct"], c["gateway"]
        if has_gw:
            own = c["cpu_util_pct"]
            core = g["busy_pct"].get(f"cpu{gw_cpu}")
            harness = g["busy_pct"].get(f"cpu{lg_cpu}")
            core_note, harness_note = _notes(own, core, harness)
            lines.append(
                f"| {c['mode']} | {c['conns']} | {fmt(d['rps'], 0)} | {fmt(g['rps'], 0)} | "
                f"{fmt(c['rps_ratio'], 2, False)} | {fmt(d['p50_ms'], 3, False)} | "
                f"{fmt(g['p50_ms'], 3)} | {fmt(c['added_p50_ms'], 3)} | "
                f"{fmt(c['added_p99_ms'], 3)} | {fmt(c['cpu_ms_per_req'], 3)} | "
                f"{fmt(own, 0, False)} | {fmt(core, 0, False)}{core_note} | "
                f"{fmt(harness, 0, False)}{harness_note} |"
            )
        else:
            lines.append(
                f"| {c['mode']} | {c['conns']} | {fmt(d['rps'], 0)} | {fmt(d['p50_ms'], 3)} | "
                f"{fmt(d['p99_ms'], 3)} | {fmt(d['busy_pct'].get(f'cpu{lg_cpu}'), 0, False)} |"
            )
    errors = sum(c["direct"]["errors"] + c["gateway"]["errors"] for c in table)
    if errors:
        lines += ["", f"**{errors} wrk errors (non-2xx or socket errors); see runs/*.json.**"]
    if mem:
        lines += [
            "",
            f"Gateway RSS: {mem['idle_mb']:.0f} MB idle, {mem['after_mb']:.0f} MB after the "
            f"load, {mem['peak_mb']:.0f} MB peak.",
        ]
    if max_steal is not None:
        lines += [
            "",
            f"CPU steal (time the hypervisor gave to other guests): at most {max_steal:.1f} % "
            "of a core in any run; above a few percent, absolute figures are pessimistic.",
        ]
    if has_gw:
        lines += ["", "| goal | limit | measured | |", "|---|---:|---:|---|"]
        for label, mode, conns, metric, limit in TARGETS:
            cell = next((c for c in table if c["mode"] == mode and c["conns"] == conns), None)
            s = cell[metric] if cell else None
            verdict = "-" if s is None else ("met" if s["median"] <= limit else "**missed**")
            lines.append(f"| {label} | {limit} ms | {fmt(s, 3)} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: summarize.py RESULTS_DIR")
    out = Path(sys.argv[1])
    meta = load(out / "meta.json") if (out / "meta.json").exists() else {}
    runs = read_runs(out)
    table = cells(runs)
    mem = memory(out)
    steals = [r["steal_pct"] for r in runs if "steal_pct" in r]
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "cells": table, "memory": mem}, indent=1) + "\n"
    )
    (out / "summary.md").write_text(render(meta, table, mem, max(steals) if steals else None))


if __name__ == "__main__":
    main()
