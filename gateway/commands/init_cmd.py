"""`modelgate init PATH`: a policy repository with commented starter files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from policies.init import InitRefused, InitResult, init_repo


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    parser = sub.add_parser("init", help="create a policy repository")
    parser.add_argument("path", type=Path)
    parser.set_defaults(handler=run)


def print_secrets(result: InitResult) -> None:
    print("These secrets are shown once; only their SHA-256 hashes were committed.")
    print(f"  admin token (id ops):       {result.admin_token}")
    print(f"  demo client key (id demo):  {result.demo_key}")


def run(args: argparse.Namespace) -> int:
    try:
        result = init_repo(args.path)
    except InitRefused as exc:
        print(f"modelgate init: {exc}", file=sys.stderr)
        return 1
    print(f"Created a policy repository at {args.path}.")
    print_secrets(result)
    return 0
