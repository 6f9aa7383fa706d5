"""Wheels of distributions already installed in this venv, so that a fresh venv can install
modelgate's wheel with `pip install --no-index --find-links` where no index is reachable (the
test run has loopback only).

Each wheel is repacked from the installed files its RECORD lists (the files a wheel install
wrote into site-packages), under the tag its WHEEL file names. Console scripts come back from
entry_points.txt; compiled bytecode is left out, as pip writes its own.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from importlib.metadata import Distribution, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import sys_tags

SKIPPED = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
"""Files of a .dist-info an install writes, not the wheel."""


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(requirements: Iterable[str]) -> list[Distribution]:
    """The installed distributions `requirements` need, with their own, extras followed."""
    found: dict[str, Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]  # (requirement, extra it came with)
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        dist = distribution(req.name)
        key = normalized(req.name)
        if key not in found:
            found[key] = dist
            todo += [(Requirement(r), "") for r in dist.requires or []]
        todo += [(Requirement(r), e) for e in req.extras for r in dist.requires or []]
    return list(found.values())


def repack(dist: Distribution, into: Path) -> Path:
    """One installed distribution as a wheel in `into` (entries stored, not compressed: quick,
    and still a valid wheel)."""
    info = Path(str(dist._path))  # type: ignore[attr-defined]  # its .dist-info directory
    site = info.parent
    tags = [
        line.split(":", 1)[1].strip()
        for line in (info / "WHEEL").read_text().splitlines()
        if line.startswith("Tag:")
    ]
    supported = {str(t) for t in sys_tags()}
    tag = next(t for t in tags if t in supported)  # py2-none-any may come before py3-...
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    wheel = into / f"{name}-{dist.version}-{tag}.whl"
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for line in (info / "RECORD").read_text().splitlines():
            path = line.split(",", 1)[0]
            if not path or _not_in_wheel(path, info.name):
                continue
            zf.write(site / path, path)
            record.append(line)
        record.append(f"{info.name}/RECORD,,")
        zf.writestr(f"{info.name}/RECORD", "\n".join(record) + "\n")
    return wheel


def _not_in_wheel(path: str, info_name: str) -> bool:
    if path.startswith("..") or "__pycache__" in path or path.endswith(".pyc"):
        return True  # scripts (made again from entry points), bytecode
    head, _, tail = path.partition("/")
    return head == info_name and tail in SKIPPED
