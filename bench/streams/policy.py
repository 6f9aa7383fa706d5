#!/usr/bin/env python3
"""The streams benchmark's policy repository: bench/setup_policy.py's pass-through route plus a
translated one. Prints the key's secret on stdout.

    python bench/streams/policy.py --dir PATH --upstream-port 18100

Routes: `gpt-4o-mini` -> provider `fake` (openai-compatible, .../v1/chat/completions) and
`claude-x` -> provider `fakeanth` (anthropic, .../v1/messages, credential env:BENCH_ANTHROPIC_KEY),
both at bench/streams/upstream.py.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from pathlib import Path

from dulwich import porcelain
from dulwich.repo import Repo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from setup_policy import AUTHOR, policy_files  # bench/ is not a package

TRANSLATED_MODEL = "claude-x"
ANTHROPIC_KEY_ENV = "BENCH_ANTHROPIC_KEY"


def streams_policy(upstream_port: int, key_hash: str) -> dict[str, str]:
    files: dict[str, str] = policy_files(
        f"http://127.0.0.1:{upstream_port}/v1", "gpt-4o-mini", key_hash
    )
    files["providers.yaml"] += (
        "  fakeanth:             # bench/streams/upstream.py, Anthropic Messages\n"
        "    type: anthropic\n"
        f"    base_url: http://127.0.0.1:{upstream_port}\n"
        f"    credentials: [env:{ANTHROPIC_KEY_ENV}]\n"
    )
    files["routes.yaml"] += f"  {TRANSLATED_MODEL}:\n    targets: [fakeanth/{TRANSLATED_MODEL}]\n"
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--dir", type=Path, required=True, help="an empty or new directory")
    ap.add_argument("--upstream-port", type=int, default=18100)
    args = ap.parse_args()
    secret = "mg-" + secrets.token_urlsafe(32)
    key_hash = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
    args.dir.mkdir(parents=True, exist_ok=True)
    with Repo.init(str(args.dir), default_branch=b"main") as repo:
        files = streams_policy(args.upstream_port, key_hash)
        for name, text in files.items():
            (args.dir / name).write_text(text)
        porcelain.add(repo, [str(args.dir / name) for name in files])
        porcelain.commit(repo, message=b"streams bench policy", author=AUTHOR, committer=AUTHOR)
    print(secret)


if __name__ == "__main__":
    main()
