#!/usr/bin/env python3
"""One snapshot, as JSON on stdout, of what the benchmark samples before and after each run:
CPU seconds (utime+stime) and RSS of process trees, and busy/steal ticks of every CPU.

    python bench/procstat.py [--gateway PID] [--upstream PID]

A tree is the process and all its descendants, so a multi-worker gateway counts whole.
Standard library only (Linux /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):  # the task may exit while we look
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree(pid: int) -> dict[str, object]:
    cpu_s, rss_kb, hwm_kb, alive = 0.0, 0, 0, []
    for p in descendants(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue  # exited in between
        fields = stat.rsplit(")", 1)[1].split()
        cpu_s += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm_kb += int(line.split()[1])
        alive.append(p)
    return {"pids": alive, "cpu_s": round(cpu_s, 3), "rss_kb": rss_kb, "hwm_kb": hwm_kb}


def cpus() -> dict[str, dict[str, int]]:
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in values[:8]]  # user nice system idle iowait irq softirq steal
            out[name] = {"total": sum(v), "idle": v[3] + v[4], "steal": v[7]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--gateway", type=int)
    ap.add_argument("--upstream", type=int)
    args = ap.parse_args()
    snap: dict[str, object] = {"t": time.time(), "cpus": cpus()}
    for who in ("gateway", "upstream"):
        pid = getattr(args, who)
        if pid:
            snap[who] = tree(pid)
    print(json.dumps(snap))


if __name__ == "__main__":
    main()
