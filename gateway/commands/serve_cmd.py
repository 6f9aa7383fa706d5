"""`modelgate serve`: run the gateway."""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from credentials.refs import AllowedRefs
from gateway.commands.init_cmd import print_secrets
from gateway.logs import configure_logging
from gateway.settings import Settings, add_serve_arguments, settings_from_args
from gateway.upstream.proxy import ProxyConfigError, UpstreamProxy
from policies.init import init_repo
from policies.problems import PolicyRepoError
from policies.remote import RemoteSyncError, clone_policy_repo, redact_url
from policies.repo import open_repo


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    parser = sub.add_parser("serve", help="run the gateway")
    add_serve_arguments(parser, environ)
    parser.set_defaults(handler=run)


def _is_repository(path: Path) -> bool:
    try:
        open_repo(path).close()
    except PolicyRepoError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if settings.workers > 1 and not settings.redis_url:
        print(
            "modelgate serve: --workers above 1 needs --redis-url, so that limits stay exact "
            "across processes. Start Redis and pass --redis-url redis://127.0.0.1:6379/0, "
            "or run one worker.",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if settings.webhook_secret and not settings.webhook_secret.startswith(("env:", "file:")):
        print(
            "modelgate serve: --webhook-secret takes a reference, env:NAME or file:NAME, "
            "never the secret itself.",
            file=sys.stderr,
        )
        return 2
    if problem := _bounds_problem(settings):
        print(f"modelgate serve: {problem}", file=sys.stderr)
        return 2
    try:
        AllowedRefs.parse(settings.credential_env_prefix)
    except ValueError as exc:
        print(f"modelgate serve: --credential-env-prefix: {exc}.", file=sys.stderr)
        return 2
    if settings.upstream_proxy:
        try:
            UpstreamProxy.parse(settings.upstream_proxy, settings.no_proxy)
        except ProxyConfigError as exc:
            print(f"modelgate serve: --upstream-proxy: {exc}.", file=sys.stderr)
            return 2
    if not _is_repository(settings.policy_repo):
        if settings.remote:
            return _clone(settings) or _serve(settings)
        result = init_repo(settings.policy_repo)
        print(f"No policy repository at {settings.policy_repo}: created one.")
        print_secrets(result)
    return _serve(settings)


def _bounds_problem(settings: Settings) -> str | None:
    if settings.max_connections < 1:
        return "--max-connections must be at least 1."
    if settings.upstream_max_connections < 0:
        return "--upstream-max-connections must be 0 (automatic) or more."
    if settings.upstream_pool_timeout_s <= 0:
        return "--upstream-pool-timeout must be a positive number of seconds."
    if settings.backlog < 1:
        return "--backlog must be at least 1."
    if settings.body_timeout_s <= 0:
        return "--body-timeout must be a positive number of seconds."
    if settings.max_inflight_body_mb * 1024 * 1024 < settings.max_body_bytes:
        return (
            "--max-inflight-body-mb must hold at least one body of --max-body-bytes; "
            "raise it, or lower --max-body-bytes."
        )
    return None


def _clone(settings: Settings) -> int:
    """Clone --remote into --policy-repo; 0 on success, else the exit code."""
    assert settings.remote is not None
    try:
        clone_policy_repo(settings.remote, settings.policy_repo)
    except RemoteSyncError as exc:
        print(f"modelgate serve: {exc}", file=sys.stderr)
        return 1
    print(f"Cloned {redact_url(settings.remote)} into {settings.policy_repo}.", flush=True)
    return 0


def _serve(settings: Settings) -> int:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    serve(settings)
    return 0


def serve_app(settings: Settings) -> Any:
    """The app each serving process runs: create_app's, draining on SIGTERM (gateway/drain.py).

    Module level, so that Sanic can pickle it for its worker processes."""
    from gateway.app import create_app
    from gateway.drain import install_signal_handlers

    app = create_app(settings)

    @app.after_server_start  # after Sanic's own handlers, which it replaces
    async def drain_on_signal(app: Any) -> None:
        install_signal_handlers(app, app.ctx.drain)

    return app


def serve(settings: Settings) -> None:
    # Imported here: the other subcommands should not pay for loading the server.
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from gateway.drain import defer_shutdown_while_starting
    from gateway.front_door import FrontDoorProtocol

    # Workers of this gateway, and no other on the same Redis, share their events.
    settings = dataclasses.replace(settings, instance=secrets.token_hex(8))
    loader = AppLoader(factory=partial(serve_app, settings))
    app = loader.load()
    single = settings.workers == 1
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        single_process=single,
        access_log=False,
        motd=False,
        protocol=FrontDoorProtocol,
        backlog=settings.backlog,
    )
    print(f"ModelGate serving on http://{settings.host}:{settings.port}", flush=True)
    if single:
        Sanic.serve_single(primary=app)
    else:

        @app.main_process_ready
        async def hold_shutdown_while_starting(app: Any) -> None:
            defer_shutdown_while_starting(app.manager, settings.workers)

        Sanic.serve(primary=app, app_loader=loader)
