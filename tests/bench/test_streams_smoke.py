"""The streams-at-scale benchmark (bench/streams/run.sh) at a toy size, so the tool does not rot:
20 streams of 30 chunks 5 ms apart on each route, direct and through a real gateway, in a few
seconds. It checks that the tool runs end to end and its numbers are sane, not the gateway's speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway_process import free_port

ROOT = Path(__file__).resolve().parents[2]
N, CHUNKS = 20, 30
MODES = ("direct (OpenAI)", "pass-through", "direct (Anthropic)", "translated")


TOOLS = ("curl", "taskset", "timeout")


def run_benchmark(out: Path) -> subprocess.CompletedProcess[str]:
    knobs = {
        "REPEATS": "1",
        "CHUNKS": str(CHUNKS),
        "CHUNK_MS": "5",
        "JITTER_MS": "0",
        "RAMP": "0.2",
        "WARM_STREAMS": "2",
        "SETTLE": "0.2",
        "PAUSE": "0",
        "SAMPLE_S": "0.05",
        "CELL_TIMEOUT": "20",
        "FRESH_GATEWAY": "0",  # one gateway start (seconds) instead of one per cell
        "UPSTREAM_PORT": str(free_port()),
        "GATEWAY_PORT": str(free_port()),
        "OUT_DIR": str(out),
        "PYTHON": sys.executable,
    }
    return subprocess.run(
        [str(ROOT / "bench" / "streams" / "run.sh"), str(N)],
        env={**os.environ, **knobs},
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.skipif(not all(map(shutil.which, TOOLS)), reason=f"run.sh needs {', '.join(TOOLS)}")
def test_the_streams_benchmark_runs_both_routes_and_its_numbers_are_sane(tmp_path: Path) -> None:
    out = tmp_path / "streams"
    result = run_benchmark(out)
    assert result.returncode == 0, result.stderr[-3000:]

    rows: dict[str, dict[str, Any]] = {
        row["mode"]: row["repeats"][0] for row in json.loads((out / "results.json").read_text())
    }
    assert set(rows) == set(MODES)
    for mode, figures in rows.items():
        assert (figures["complete"], figures["errors"]) == (N, 0), mode
        assert 0 <= figures["delay_p50_ms"] <= figures["delay_p99_ms"] < 1000, mode
    for mode in ("pass-through", "translated"):
        figures = rows[mode]
        assert 0 < figures["cpu_us_per_chunk"] < 20_000, mode
        assert -5 < figures["added_p50_ms"] < 500, mode
        assert -1000 < figures["rss_kb_per_stream"] < 1000, mode

    for route, anthropic in (("pass-through", 0), ("translated", N)):
        for target in ("direct", "gateway"):
            cell = out / "runs" / f"{route}-{target}-n{N}-r1.json"
            assert json.loads(cell.read_text())["chunks_received"] == N * CHUNKS, cell.name
            upstream = json.loads(cell.with_suffix(".json.upstream").read_text())
            # the translated route really reached the Anthropic protocol's endpoint
            assert (upstream["streams_done"], upstream["anthropic_streams"]) == (N, anthropic)

    table = result.stdout
    assert "| mode | N | complete | CPU µs/chunk | added p50 / p99 ms |" in table
    assert f"| translated | {N} | {N} |" in table
