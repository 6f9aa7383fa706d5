"""What a real gateway sends on /admin/api/status, /admin/api/usage and /admin/api/events has
exactly the fields gateway/payloads.py declares (the types the terminal UI reads them by)."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import httpx
import openai

from gateway import payloads
from tests.conftest import Deployment
from tests.operations.sse import Viewer

HI = [{"role": "user", "content": "hi"}]


def mismatches(value: Any, hint: Any, where: str = "$") -> list[str]:
    """Where `value` (parsed JSON) differs from the type `hint`: missing, extra or mistyped."""
    origin = get_origin(hint)
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        fields = get_type_hints(hint)
        found = [f"{where}.{k}: missing" for k in hint.__required_keys__ - set(value)]
        found += [f"{where}.{k}: not declared" for k in set(value) - set(fields)]
        for name in set(value) & set(fields):
            found += mismatches(value[name], fields[name], f"{where}.{name}")
        return found
    if origin in (Union, types.UnionType):
        options = [mismatches(value, option, where) for option in get_args(hint)]
        return [] if any(not o for o in options) else min(options, key=len)
    if origin is Literal:
        return [] if value in get_args(hint) else [f"{where}: {value!r} not in {get_args(hint)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [m for i, v in enumerate(value) for m in mismatches(v, get_args(hint)[0], where)]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        return [m for v in value.values() for m in mismatches(v, get_args(hint)[1], where)]
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if hint is float:  # JSON writes 2.0 as 2
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{where}: {value!r} is not {hint.__name__}"]


def test_the_checker_sees_a_missing_an_extra_and_a_mistyped_field() -> None:
    use = {"limit": None, "used": 1}
    assert mismatches(use, payloads.Use) == []
    assert mismatches({"used": 1}, payloads.Use) == ["$.limit: missing"]
    assert mismatches({**use, "new": 1}, payloads.Use) == ["$.new: not declared"]
    assert mismatches({**use, "used": "1"}, payloads.Use) == ["$.used: '1' is not int"]


def test_status_usage_and_events_match_their_declared_types(
    ops_deployment: Deployment, open_viewer: Callable[..., Viewer]
) -> None:
    d = ops_deployment
    viewer = open_viewer()
    with openai.OpenAI(base_url=d.gateway.url + "/v1", api_key=d.keys["alice"]) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    [event] = viewer.requests(1)
    auth = {"authorization": f"Bearer {d.keys['admin']}"}
    status = httpx.get(d.gateway.url + "/admin/api/status", headers=auth).json()
    usage = httpx.get(d.gateway.url + "/admin/api/usage", headers=auth).json()
    assert mismatches(event.data, payloads.RequestEvent) == []
    assert mismatches(status, payloads.Status) == []
    assert mismatches(usage, payloads.Usage) == []
    assert usage["keys"] and usage["models"] and status["policy"]["attempts"]  # not vacuous


def test_the_payloads_module_imports_neither_the_server_nor_the_terminal_ui() -> None:
    code = "import sys, gateway.payloads\n"
    code += "print(sorted({m.split('.')[0] for m in sys.modules} & {'sanic', 'textual'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
