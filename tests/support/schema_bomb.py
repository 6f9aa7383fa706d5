"""The schema bomb's `$defs`: three definitions, each referencing the next twice and itself,
so a schema whose `$ref` points at `a` is a few hundred bytes that write out to 3**32 nodes."""

from __future__ import annotations

from typing import Any


def bomb_defs() -> dict[str, Any]:
    return {
        n: {
            "properties": {
                "x": {"$ref": f"#/$defs/{m}"},
                "y": {"$ref": f"#/$defs/{m}"},
                "z": {"$ref": f"#/$defs/{n}"},
            }
        }
        for n, m in (("a", "b"), ("b", "c"), ("c", "a"))
    }
