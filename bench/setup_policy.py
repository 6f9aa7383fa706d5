#!/usr/bin/env python3
"""Create the benchmark's policy repository: one provider (the fake upstream), one route, one
key. Prints the key's secret on stdout (and the repository's path on stderr).

    python bench/setup_policy.py [--dir PATH] [--upstream http://127.0.0.1:18000/v1] [--prices]

Without --prices the target has no known price (genai-prices does not know an
openai-compatible provider on 127.0.0.1), so requests are served unpriced: pricing off.
--prices adds a prices.yaml pricing it (cached-input rate included): pricing on.

The repository is made with dulwich, committed on refs/heads/main; no git binary needed.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
import tempfile
from pathlib import Path

from dulwich import porcelain
from dulwich.repo import Repo

AUTHOR = b"ModelGate bench <bench@localhost>"


PRICES = "prices:\n  fake/*: {input: 0.15, output: 0.6, cached_input: 0.075}\n"
"""gpt-4o-mini's list price, so every request is charged (bench/README.md: Pricing on/off)."""


def policy_files(upstream: str, model: str, key_hash: str, prices: bool = False) -> dict[str, str]:
    files = {
        "providers.yaml": (
            "providers:\n"
            "  fake:                 # bench/fake_upstream.py\n"
            "    type: openai-compatible\n"
            f"    base_url: {upstream}\n"
            "    credentials: []\n"
        ),
        "routes.yaml": f"routes:\n  {model}:\n    targets: [fake/{model}]\n",
        "keys.yaml": f'keys:\n  - id: bench\n    owner: bench@localhost\n    hash: "{key_hash}"\n',
    }
    if prices:
        files["prices.yaml"] = PRICES
    return files


def create(path: Path, upstream: str, model: str, prices: bool = False) -> str:
    """Write and commit the policy at `path` (which must not hold a repository); the secret."""
    secret = "mg-" + secrets.token_urlsafe(32)
    key_hash = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
    path.mkdir(parents=True, exist_ok=True)
    if (path / ".git").exists():
        raise SystemExit(f"{path} already holds a git repository; pass an empty --dir")
    with Repo.init(str(path), default_branch=b"main") as repo:
        files = policy_files(upstream, model, key_hash, prices)
        for name, text in files.items():
            (path / name).write_text(text)
        porcelain.add(repo, [str(path / name) for name in files])
        porcelain.commit(repo, message=b"bench policy", author=AUTHOR, committer=AUTHOR)
    return secret


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dir", type=Path, help="where to create it (default: a new temp dir)")
    ap.add_argument("--upstream", default="http://127.0.0.1:18000/v1", help="provider base_url")
    ap.add_argument("--model", default="gpt-4o-mini", help="the route name (and upstream model)")
    ap.add_argument("--prices", action="store_true", help="price the target (pricing on)")
    args = ap.parse_args()
    path = args.dir or Path(tempfile.mkdtemp(prefix="modelgate-bench-policy-"))
    secret = create(path, args.upstream, args.model, args.prices)
    print(path, file=sys.stderr)
    print(secret)


if __name__ == "__main__":
    main()
