"""`modelgate keys ...`: client keys, changed by commit to the policy repository.

The secret of a new or rotated key goes to stdout alone on its line, once; everything else
goes to stderr, so `SECRET=$(modelgate keys create ID)` works.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from policies.diff_words import LIMIT_WORDS, dollars
from policies.edit import CommitResult, PolicyEditor
from policies.git_write import PushFailed, push
from policies.models import Key
from policies.problems import PolicyInvalid, PolicyRepoError

LIMIT_FLAGS = ("rpm", "tpm", "max_concurrency", "tokens_per_day", "tokens_per_month")
BUDGET_FLAGS = ("usd_per_day", "usd_per_month")
MICRO_USD_EXPONENT = -6
"""Budgets go to the micro-dollar at most (policies.models.Usd)."""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    parser = sub.add_parser("keys", help="create, list, disable, enable, rotate client keys")
    commands = parser.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    repo_default = environ.get("MG_POLICY_REPO", ".")
    ref_default = environ.get("MG_REF", "refs/heads/main")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        cmd = commands.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--repo", type=Path, default=Path(repo_default), help="policy repo")
        cmd.add_argument("--ref", default=ref_default, help="the watched ref (refs/heads/main)")
        cmd.set_defaults(handler=handler)
        return cmd

    create = command("create", "make a key: its secret is printed once", run_create)
    create.add_argument("id")
    _key_fields(create)
    create.add_argument("--file", help="keys file to add it to (default keys.yaml)")
    _commit_options(create)

    update = command(
        "update", "change a key's models, tier, team, limits, budgets, expiry or owner", run_update
    )
    update.add_argument("id")
    _key_fields(update)
    update.add_argument("--no-team", action="store_true", help="take the key out of its team")
    update.add_argument("--all-models", action="store_true", help="allow every route")
    update.add_argument("--no-tier", action="store_true", help="use the default limits")
    update.add_argument("--no-expiry", action="store_true", help="the key never expires")
    _commit_options(update)

    command("list", "list the keys at the watched ref (never their hashes)", run_list)
    for name, text in (
        ("disable", "refuse a key (401) until it is enabled again"),
        ("enable", "accept a disabled key again"),
        ("rotate", "give a key a new secret, printed once; the old one stops working"),
        ("revoke", "remove a key for good"),
    ):
        cmd = command(name, text, run_simple)
        cmd.add_argument("id")
        _commit_options(cmd)


def _key_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", metavar="GLOB", help="route globs it may use")
    parser.add_argument("--tier", help="a tier from limits.yaml")
    for name in LIMIT_FLAGS:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, type=_count, metavar="N", help="override the tier's")
    for name in BUDGET_FLAGS:
        flag = "--" + name.replace("_", "-")
        help_text = f"{LIMIT_WORDS[name]} in US dollars, e.g. 5 or 0.05 (overrides the tier's)"
        parser.add_argument(flag, dest=name, type=_usd, metavar="USD", help=help_text)
    parser.add_argument("--team", help="a team from teams.yaml: its limits and budgets apply too")
    parser.add_argument("--expires", type=_date, metavar="YYYY-MM-DD", help="last valid day")
    parser.add_argument("--owner", help="who to ask about the key (an email)")
    parser.add_argument("--description", help="free text for operators")


def _commit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--branch", help="commit on this branch (for a pull request)")
    parser.add_argument("--push", action="store_true", help="push the commit to origin")
    parser.add_argument("--message", "-m", help="commit message")
    parser.add_argument("--author", help="'Name <email>' (default: git config user.*)")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _usd(text: str) -> Decimal:
    """A budget as policies.models.Usd takes it: 0 or more, to the micro-dollar."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError("write US dollars as a number, e.g. 5 or 0.05") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more US dollars")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < MICRO_USD_EXPONENT:
        raise argparse.ArgumentTypeError("at most 6 decimal places (a micro-dollar)")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use the form YYYY-MM-DD") from None


# handlers ---------------------------------------------------------------------------------


def run_create(args: argparse.Namespace) -> int:
    def edit(editor: PolicyEditor) -> str | None:
        return editor.create_key(
            args.id,
            models=args.models,
            tier=args.tier,
            team=args.team,
            limits=_limits(args) or None,
            expires=args.expires,
            owner=args.owner,
            description=args.description,
            file=args.file,
        )

    what = f"{args.id}{_team_and_budgets(args)}"
    return _commit(args, edit, f"keys: create {what}", f"Created key {what}")


def run_update(args: argparse.Namespace) -> int:
    if args.team is not None and args.no_team:
        print("modelgate keys update: give --team or --no-team, not both", file=sys.stderr)
        return 2
    fields: dict[str, Any] = {}
    for name in ("models", "tier", "team", "expires", "owner", "description"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    limits = _limits(args)
    if limits:
        fields["limits"] = limits
    for flag, name in (
        ("all_models", "models"),
        ("no_tier", "tier"),
        ("no_team", "team"),
        ("no_expiry", "expires"),
    ):
        if getattr(args, flag):
            fields[name] = None
    if not fields:
        print("modelgate keys update: name at least one change, e.g. --rpm 300", file=sys.stderr)
        return 2

    def edit(editor: PolicyEditor) -> None:
        editor.set_key_fields(args.id, **fields)

    what = f"{args.id}{_team_and_budgets(args)}"
    return _commit(args, edit, f"keys: update {what}", f"Updated key {what}")


def _limits(args: argparse.Namespace) -> dict[str, int | Decimal]:
    """The limit and budget flags given (the others keep the file's value)."""
    names = LIMIT_FLAGS + BUDGET_FLAGS
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _team_and_budgets(args: argparse.Namespace) -> str:
    """` (team search, daily budget $5)`: the team and budgets given, as `policy diff` says
    them; empty when none is."""
    parts = [f"team {args.team}"] if args.team is not None else []
    if getattr(args, "no_team", False):
        parts.append("no team")
    for name in BUDGET_FLAGS:
        if getattr(args, name) is not None:
            parts.append(f"{LIMIT_WORDS[name]} {dollars(getattr(args, name))}")
    return f" ({', '.join(parts)})" if parts else ""


def run_simple(args: argparse.Namespace) -> int:
    action = args.keys_command

    def edit(editor: PolicyEditor) -> str | None:
        if action == "rotate":
            return editor.rotate_key(args.id)
        {"disable": editor.disable_key, "enable": editor.enable_key, "revoke": editor.revoke_key}[
            action
        ](args.id)
        return None

    past = {"disable": "Disabled", "enable": "Enabled", "rotate": "Rotated", "revoke": "Revoked"}
    return _commit(args, edit, f"keys: {action} {args.id}", f"{past[action]} key {args.id}")


def run_list(args: argparse.Namespace) -> int:
    try:
        editor = PolicyEditor(args.repo, args.ref)
        keys = editor.list_keys()
    except PolicyInvalid as exc:
        print(f"The policy at {args.ref} does not validate:\n{exc}", file=sys.stderr)
        return 1
    except PolicyRepoError as exc:
        print(f"modelgate keys list: {exc}", file=sys.stderr)
        return 1
    today = dt.datetime.now(dt.UTC).date()
    header = ("ID", "STATE", "OWNER", "TEAM", "TIER", "LIMITS", "MODELS", "EXPIRES")
    rows: list[tuple[str, ...]] = [header]
    rows += [_row(key, today) for key in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _row(key: Key, today: dt.date) -> tuple[str, ...]:
    state = "disabled" if key.disabled else "active"
    if key.expires is not None and key.expires < today:
        state = "expired"
    limits = key.limits.model_dump(exclude_none=True) if key.limits else {}
    return (
        key.id,
        state,
        key.owner or "-",
        key.team or "-",
        key.tier or "(default)",
        ",".join(f"{k}={_cell(v)}" for k, v in limits.items()) or "-",
        ",".join(key.models) if key.models is not None else "(all)",
        key.expires.isoformat() if key.expires else "-",
    )


def _cell(value: object) -> str:
    """A limit as the list shows it: budgets in dollars ($0.05), counts as written."""
    return dollars(value) if isinstance(value, Decimal) else str(value)


# committing -------------------------------------------------------------------------------


def _commit(
    args: argparse.Namespace,
    edit: Callable[[PolicyEditor], str | None],
    default_message: str,
    done: str,
) -> int:
    command = f"modelgate keys {args.keys_command}"
    try:
        editor = PolicyEditor(args.repo, args.ref, args.branch)
        secret = edit(editor)
        result = editor.commit(args.message or default_message, args.author, args.branch)
    except PolicyInvalid as exc:
        print(
            f"{command}: the result would not be a valid policy; nothing was committed:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except (PolicyRepoError, ValueError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    _report(done, result, args.branch)
    if secret is not None:
        print("The secret is shown once; only its SHA-256 hash was committed:", file=sys.stderr)
        print(secret, flush=True)
    if args.push:
        try:
            push(args.repo, result.ref)
        except PushFailed as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 1
        print(f"Pushed {result.ref} to origin.", file=sys.stderr)
    return 0


def _report(done: str, result: CommitResult, branch: str | None) -> None:
    where = f"branch {branch}" if branch else result.ref
    files = ", ".join(result.files)
    print(f"{done}: commit {result.commit[:12]} on {where} ({files}).", file=sys.stderr)
    if result.retries:
        print(
            f"  (another writer committed first; replayed on top, {result.retries}x)",
            file=sys.stderr,
        )
    if result.worktree_updated:
        print("  The working tree and index were updated to the new commit.", file=sys.stderr)
    if branch:
        print(
            f"  Open a pull request from {branch} to have it reviewed and merged.", file=sys.stderr
        )
