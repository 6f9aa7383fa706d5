"""`modelgate policy check` and `modelgate policy diff`: the pull request's two helpers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from credentials.refs import ENV_PREFIX_OPTION, ENV_PREFIX_VARIABLE, AllowedRefs
from policies.check import check_revision, check_worktree
from policies.diff import diff_revisions
from policies.problems import PolicyRepoError, Problem
from policies.repo import open_repo


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    parser = sub.add_parser("policy", help="check a policy revision, or summarize a change")
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="validate the working tree or a revision; exit 1 on any problem",
        description="Validate a policy revision as the gateway would, and look for raw secrets "
        "in every file. Prints file:line:col: message per problem; exits 1 if any.",
    )
    check.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    check.add_argument("--rev", help="a committed revision (default: the files on disk)")
    check.add_argument(
        "--format",
        choices=["text", "github"],
        default="text",
        help="github: workflow annotations (::error file=...::message)",
    )
    check.add_argument(
        ENV_PREFIX_OPTION,
        dest="credential_env_prefix",
        default=environ.get(ENV_PREFIX_VARIABLE),
        metavar="PREFIXES",
        help="refuse env: references not starting with one of these (comma list), as `serve "
        f"{ENV_PREFIX_OPTION}` does (default: ${ENV_PREFIX_VARIABLE})",
    )
    check.set_defaults(handler=run_check)

    diff = commands.add_parser(
        "diff",
        help="Markdown summary of what changes between two revisions",
        description="Summarize, in operators' words, what changes from OLD to NEW (for a pull "
        "request comment). Never prints hashes or secrets.",
    )
    diff.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    diff.add_argument("old", help="the revision before, e.g. origin/main")
    diff.add_argument("new", help="the revision after, e.g. HEAD")
    diff.set_defaults(handler=run_diff)


def run_check(args: argparse.Namespace) -> int:
    repo: Path = args.repo
    try:
        allowed = AllowedRefs.parse(args.credential_env_prefix)
    except ValueError as exc:
        print(f"modelgate policy check: {ENV_PREFIX_OPTION}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.rev is None and _is_bare(repo):
            args.rev = "HEAD"  # a bare repository has no files on disk to check
        if args.rev is None:
            problems, what = check_worktree(repo, allowed), f"the working tree at {repo}"
        else:
            sha, problems = check_revision(repo, args.rev, allowed)
            what = f"{args.rev} ({sha[:12]})"
    except PolicyRepoError as exc:
        print(f"modelgate policy check: {exc}", file=sys.stderr)
        return 2
    if not allowed.env_prefixes:
        print(
            "note: any environment variable may be named as a credential; to check references "
            f"as a gateway run with {ENV_PREFIX_OPTION} does, pass it here too (or set "
            f"{ENV_PREFIX_VARIABLE}).",
            file=sys.stderr,
        )
    for problem in problems:
        print(github_annotation(problem) if args.format == "github" else str(problem))
    if problems:
        print(f"{len(problems)} problem(s) in {what}.", file=sys.stderr)
        return 1
    print(f"OK: {what} is a valid policy with no secrets in it.")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    try:
        print(diff_revisions(args.repo, args.old, args.new), end="")
    except PolicyRepoError as exc:
        print(f"modelgate policy diff: {exc}", file=sys.stderr)
        return 2
    return 0


def github_annotation(problem: Problem) -> str:
    """A GitHub Actions workflow command that marks the problem on the pull request's diff."""
    props = f"file={_escape_property(problem.file)},line={problem.line},col={problem.col}"
    return f"::error {props}::{_escape_data(problem.message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _is_bare(path: Path) -> bool:
    if (path / ".git").exists() or not (path / "HEAD").is_file():
        return False
    with open_repo(path) as repo:
        return bool(repo.bare)
