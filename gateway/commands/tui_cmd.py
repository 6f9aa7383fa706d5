"""`modelgate tui`: the operators' terminal UI (the Textual app lives in the tui package)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    parser = sub.add_parser(
        "tui",
        help="the operators' terminal UI: live traffic, keys, routes, policy edits",
        description=(
            "Watch a gateway (--gateway, --admin-token) and edit its policy repository "
            "(--repo). Either half works alone."
        ),
    )
    parser.add_argument(
        "--gateway",
        default=environ.get("MG_GATEWAY_URL"),
        metavar="URL",
        help="the gateway to watch, e.g. http://127.0.0.1:18080 (or MG_GATEWAY_URL)",
    )
    parser.add_argument(
        "--admin-token",
        default=environ.get("MG_ADMIN_TOKEN"),
        metavar="TOKEN",
        help="an admin token from keys.yaml's admins (MG_ADMIN_TOKEN keeps it out of ps)",
    )
    repo = environ.get("MG_POLICY_REPO")
    parser.add_argument(
        "--repo",
        type=Path,
        default=Path(repo) if repo else None,
        metavar="PATH",
        help="the policy repository to edit (or MG_POLICY_REPO)",
    )
    parser.add_argument(
        "--ref",
        default=environ.get("MG_REF", "refs/heads/main"),
        help="the watched ref, where commits go by default (refs/heads/main)",
    )
    web = parser.add_argument_group("in a browser (textual-serve)")
    web.add_argument(
        "--web",
        action="store_true",
        help="serve this UI to browsers instead of the terminal, behind a sign-in with the "
        "admin token",
    )
    web.add_argument(
        "--host",
        default=environ.get("MG_TUI_HOST", "127.0.0.1"),
        help="address to listen on with --web (127.0.0.1: this machine only)",
    )
    web.add_argument(
        "--port", type=int, default=int(environ.get("MG_TUI_PORT", "8081")), help="with --web"
    )
    web.add_argument(
        "--public-url",
        default=environ.get("MG_TUI_PUBLIC_URL"),
        metavar="URL",
        help="the URL browsers use, when not http://HOST:PORT (a proxy, https)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.gateway is None and args.repo is None:
        print(
            "modelgate tui: give --gateway URL (to watch), --repo PATH (to edit), or both",
            file=sys.stderr,
        )
        return 2
    if args.gateway is not None and not args.admin_token:
        print(
            "modelgate tui: watching a gateway needs an admin token: --admin-token TOKEN "
            "or MG_ADMIN_TOKEN (`modelgate init` printed one)",
            file=sys.stderr,
        )
        return 2
    if args.repo is not None and not args.repo.exists():
        print(
            f"modelgate tui: no policy repository at {args.repo}: "
            f"create one with `modelgate init {args.repo}`",
            file=sys.stderr,
        )
        return 2
    if args.web:
        return _serve_web(args)
    from tui.app import ModelGateApp, TuiOptions  # Textual loads only for this command
    from tui.client import AdminClient

    client = AdminClient(args.gateway, args.admin_token) if args.gateway else None
    options = TuiOptions(repo=args.repo, ref=args.ref)
    app = ModelGateApp(options, client)
    app.run()
    return app.return_code or 0


def _serve_web(args: argparse.Namespace) -> int:
    if not args.admin_token:
        print(
            "modelgate tui --web: browsers sign in with the admin token: give --admin-token "
            "TOKEN or MG_ADMIN_TOKEN",
            file=sys.stderr,
        )
        return 2
    from tui.web import serve_web

    serve_web(
        args.admin_token,
        args.gateway,
        args.repo,
        args.ref,
        args.host,
        args.port,
        args.public_url,
    )
    return 0
