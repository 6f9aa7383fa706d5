"""Every gateway start and CLI command pays for what it imports: the clients of optional
upstreams and stores (botocore for Bedrock, redis, PyJWT for service accounts) load only when
a policy or setting uses them."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("botocore", "redis", "jwt")


def test_the_server_and_the_cli_start_without_the_optional_clients() -> None:
    probe = (
        "import sys, gateway.app, gateway.cli; "
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({OPTIONAL!r}))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == []
