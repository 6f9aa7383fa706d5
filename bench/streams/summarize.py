#!/usr/bin/env python3
"""The streams benchmark's table from OUT_DIR/runs/*.json (bench/streams/run.sh).

    python bench/streams/summarize.py OUT_DIR     prints the table; writes summary.md, results.json

One row per mode (direct, pass-through, translated) and N: the median over the repeats, with
(min-max) when there are several. Added delay is a gateway cell's p50 (p99) per-chunk delay minus
its paired direct cell's (same repeat, N and route: back to back, so drift hits both).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROUTES = ("pass-through", "translated")
DIRECT_LABEL = {"pass-through": "direct (OpenAI)", "translated": "direct (Anthropic)"}


def load_runs(out_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted((out_dir / "runs").glob("*-n*-r*.json")):
        route, target, n, rep = path.stem.rsplit("-", 3)
        run = json.loads(path.read_text())
        run |= {"_route": route, "_target": target, "_n": int(n[1:]), "_rep": int(rep[1:])}
        upstream = path.with_suffix(".json.upstream")
        run["_upstream"] = json.loads(upstream.read_text() or "{}") if upstream.exists() else {}
        runs.append(run)
    return runs


def figures(run: dict[str, Any], direct: dict[str, Any] | None) -> dict[str, float | None]:
    """The table's numbers for one cell."""
    delay, gateway, cpu = run.get("delay_ms") or {}, run.get("gateway") or {}, run.get("cpu") or {}
    out: dict[str, float | None] = {
        "complete": run.get("complete", 0),
        "errors": run.get("errors", run["n"]),
        "delay_p50_ms": delay.get("p50"),
        "delay_p99_ms": delay.get("p99"),
        "cpu_us_per_chunk": gateway.get("cpu_us_per_chunk"),
        "rss_kb_per_stream": gateway.get("rss_kb_per_stream"),
        "gateway_cpu_pct": gateway.get("cpu_pct"),
        "cpu0_busy_pct": cpu.get("cpu0", {}).get("busy_pct"),
        "cpu1_busy_pct": cpu.get("cpu1", {}).get("busy_pct"),
        "listen_overflows": run.get("listen_overflows"),
        "ttfb_max_ms": (run.get("ttfb_ms") or {}).get("max"),
        "upstream_late_max_ms": run["_upstream"].get("late_max_ms"),
    }
    if direct is not None:
        base = direct.get("delay_ms") or {}
        for p in ("p50", "p99"):
            ours, theirs = delay.get(p), base.get(p)
            added = round(ours - theirs, 3) if ours is not None and theirs is not None else None
            out[f"added_{p}_ms"] = added
    return out


def cell(values: list[float | None], digits: int = 2) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    middle = f"{statistics.median(known):.{digits}f}"
    if min(known) == max(known):
        return middle
    return f"{middle} ({min(known):.{digits}f}-{max(known):.{digits}f})"


def meta_of(out_dir: Path) -> dict[str, Any]:
    meta_path = out_dir / "meta.json"
    return json.loads(meta_path.read_text()) if meta_path.exists() else {}


def summarize(out_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    runs = load_runs(out_dir)
    by_key = {(r["_route"], r["_target"], r["_n"], r["_rep"]): r for r in runs}
    rows: list[dict[str, Any]] = []
    ns = sorted({r["_n"] for r in runs})
    for n in ns:
        for route in ROUTES:
            for target in ("direct", "base", "gateway"):
                cells = [r for r in runs if r["_route"] == route and r["_target"] == target]
                cells = [r for r in cells if r["_n"] == n]
                if not cells:
                    continue
                per_rep = [
                    figures(
                        r,
                        by_key.get((route, "direct", n, r["_rep"])) if target != "direct" else None,
                    )
                    for r in sorted(cells, key=lambda r: r["_rep"])
                ]
                mode = DIRECT_LABEL[route] if target == "direct" else route
                if target == "base":
                    mode = f"{route}, base {meta_of(out_dir).get('base')}"
                rows.append({"mode": mode, "n": n, "repeats": per_rep})
    meta = meta_of(out_dir)
    lines = [
        f"Streams at scale: {meta.get('chunks')} chunks per stream, {meta.get('chunk_ms')} +- "
        f"{meta.get('jitter_ms')} ms apart; gateway on CPU {meta.get('gateway_cpu')}, upstream and "
        f"load on CPU {meta.get('load_cpu')}; ulimit -n {meta.get('nofile')}; revision "
        f"{meta.get('revision')}; load average before {meta.get('loadavg_before')}.",
        "Median (min-max) over the repeats. Delay: upstream send to client receive, per chunk;"
        " added: gateway minus the paired direct cell.",
        "",
        "| mode | N | complete | CPU µs/chunk | added p50 / p99 ms | delay p50 / p99 ms"
        " | RSS KB/stream | errors | gateway CPU % | CPU0 / CPU1 busy % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        reps = row["repeats"]

        def col(key: str, digits: int = 2, reps: list[dict[str, Any]] = reps) -> str:
            return cell([r.get(key) for r in reps], digits)

        direct = row["mode"].startswith("direct")
        added = "-" if direct else f"{col('added_p50_ms', 3)} / {col('added_p99_ms', 3)}"
        lines.append(
            f"| {row['mode']} | {row['n']} | {col('complete', 0)} "
            f"| {'-' if direct else col('cpu_us_per_chunk', 1)} | {added} "
            f"| {col('delay_p50_ms', 3)} / {col('delay_p99_ms', 3)} "
            f"| {'-' if direct else col('rss_kb_per_stream', 1)} | {col('errors', 0)} "
            f"| {'-' if direct else col('gateway_cpu_pct', 0)} "
            f"| {col('cpu0_busy_pct', 0)} / {col('cpu1_busy_pct', 0)} |"
        )
    overflows = sum(r.get("listen_overflows") or 0 for r in runs)
    if overflows:
        lines.append(f"\nListen queue overflows (kernel, all cells): {overflows}.")
    return "\n".join(lines) + "\n", rows


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: summarize.py OUT_DIR")
    out_dir = Path(sys.argv[1])
    table, rows = summarize(out_dir)
    (out_dir / "summary.md").write_text(table)
    (out_dir / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table, end="")
    print(f"\n(written: {out_dir}/summary.md, results.json, runs/)")


if __name__ == "__main__":
    main()
