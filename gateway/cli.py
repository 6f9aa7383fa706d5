"""The `modelgate` command line: each subcommand lives in its own module under commands/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.commands import init_cmd, keys_cmd, policy_cmd, serve_cmd, tui_cmd, usage_cmd
from gateway.settings import default_environ


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate", description="A GitOps gateway for LLM APIs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    environ = default_environ()
    serve_cmd.register(sub, environ)
    init_cmd.register(sub, environ)
    usage_cmd.register(sub, environ)
    policy_cmd.register(sub, environ)
    keys_cmd.register(sub, environ)
    tui_cmd.register(sub, environ)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
