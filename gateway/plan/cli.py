"""`modelgate policy plan OLD NEW`: what a policy change would do to last week's traffic."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.plan.compare import Plan, build_plan
from gateway.plan.render import DENOMINATOR, plan_json, render_markdown
from gateway.plan.trace import TraceError, TraceRow, fetch_from_gateway, read_log
from gateway.settings import Settings
from gateway.usage.request_log import DEFAULT_FILE
from gateway.usage.request_report import parse_since
from policies.loader import load_policy_at
from policies.problems import PolicyInvalid, PolicyRepoError
from policies.snapshot import Snapshot

COMMAND = "modelgate policy plan"
ADMIN_TOKEN_VARIABLE = "MG_ADMIN_TOKEN"
_FAIL_ON = re.compile(r"^\s*refusals\s*>\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True, slots=True)
class FailOn:
    """`refusals>1%` (a share of the requests OLD admits) or `refusals>100` (a count)."""

    threshold: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> FailOn:
        found = _FAIL_ON.match(text)
        if found is None:
            raise argparse.ArgumentTypeError(
                f"cannot read {text!r}: write refusals>1% (a share) or refusals>100 (a count)"
            )
        return cls(float(found.group(1)), found.group(2) == "%")

    def exceeded(self, plan: Plan) -> bool:
        if self.percent:
            return plan.refused_share * 100 > self.threshold
        return plan.newly_refused > self.threshold

    def __str__(self) -> str:
        return f"refusals>{self.threshold:g}{'%' if self.percent else ''}"


def register_plan(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    plan = commands.add_parser(
        "plan",
        help="replay recorded traffic through a change: who would be refused, what it costs",
        description="Replay the recorded requests (the state directory's request log, or a "
        "gateway's export) through OLD and NEW, counted as the gateway's limiter counts, and "
        "report per key and team the requests NEW would newly refuse or admit and why (401 key, "
        "404 route gone, 403 model not allowed, 429 by which limit and its peak window), the "
        "spend change, and the keys that would lose a model they used. Never prints hashes, "
        "secrets or prompts.",
    )
    plan.add_argument("old", help="the revision before, e.g. origin/main")
    plan.add_argument("new", help="the revision after, e.g. HEAD")
    plan.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    plan.add_argument("--since", default="7d", help="traffic from (7d, 24h, a date; default 7d)")
    plan.add_argument(
        "--state-dir",
        type=Path,
        default=Path(environ.get("MG_STATE_DIR", str(Settings().state_dir))),
        help="the gateway's state dir (holds requests.sqlite3)",
    )
    plan.add_argument("--gateway", metavar="URL", help="read the traffic from this gateway instead")
    plan.add_argument(
        "--admin-token",
        default=environ.get(ADMIN_TOKEN_VARIABLE),
        help=f"the gateway's admin token (default: ${ADMIN_TOKEN_VARIABLE})",
    )
    plan.add_argument("--format", choices=["markdown", "json"], default="markdown")
    plan.add_argument(
        "--fail-on",
        type=FailOn.parse,
        metavar="refusals>N%",
        help=f"exit 1 when newly refused requests exceed N%% of the {DENOMINATOR} "
        "(or N requests, without %%)",
    )
    plan.set_defaults(handler=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    """0: within the threshold; 1: --fail-on exceeded; 2: the revisions or traffic unreadable."""
    try:
        since = parse_since(args.since, time.time())
    except ValueError as exc:
        return _error(str(exc))
    if args.gateway and not args.admin_token:
        return _error(f"--gateway needs --admin-token (or ${ADMIN_TOKEN_VARIABLE})")
    try:
        old_sha, old_policy = load_policy_at(args.repo, args.old)
        new_sha, new_policy = load_policy_at(args.repo, args.new)
    except PolicyInvalid as exc:
        return _error(f"a revision does not validate (run `modelgate policy check`): {exc}")
    except PolicyRepoError as exc:
        return _error(str(exc))
    old = Snapshot.compile(old_policy, old_sha)
    new = Snapshot.compile(new_policy, new_sha)
    source, rows = _traffic(args, since)
    try:
        plan = build_plan(old, new, rows, source, since)
    except TraceError as exc:
        return _error(str(exc))
    old_label, new_label = _label(args.old, old_sha), _label(args.new, new_sha)
    if args.format == "json":
        out = orjson.dumps(plan_json(plan, old_label, new_label), option=orjson.OPT_INDENT_2)
        print(out.decode())
    else:
        print(render_markdown(plan, old_label, new_label), end="")
    fail_on: FailOn | None = args.fail_on
    if fail_on is not None and fail_on.exceeded(plan):
        print(
            f"{COMMAND}: {plan.newly_refused:,} newly refused requests "
            f"({plan.refused_share:.2%} of the {plan.old_admitted:,} {DENOMINATOR}) "
            f"exceed --fail-on {fail_on}",
            file=sys.stderr,
        )
        return 1
    return 0


def _traffic(args: argparse.Namespace, since: float) -> tuple[str, Iterator[TraceRow]]:
    if args.gateway:
        return "the gateway's request export", fetch_from_gateway(
            args.gateway, args.admin_token, since
        )
    path: Path = args.state_dir / DEFAULT_FILE
    return "the request log", read_log(path, since)


def _label(rev: str, sha: str) -> str:
    return sha[:7] if sha.startswith(rev) else f"{rev} ({sha[:7]})"


def _error(message: str) -> int:
    print(f"{COMMAND}: {message}", file=sys.stderr)
    return 2
