"""`modelgate policy check` and `modelgate policy diff`: the pull request's two helpers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from credentials.refs import ENV_PREFIX_OPTION, ENV_PREFIX_VARIABLE, AllowedRefs
from gateway.plan.cli import register_plan
from policies.audit_log import LogFilter, policy_log
from policies.check import check_revision, check_worktree, revision_warnings, worktree_warnings
from policies.diff import diff_revisions
from policies.git_write import PushFailed, push
from policies.problems import PolicyInvalid, PolicyRepoError, Problem
from policies.repo import open_repo
from policies.rollback import RollbackRaced, branch_ref, commit_rollback, plan_rollback


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
    _register_rollback(commands, environ)
    _register_log(commands, environ)
    register_plan(commands, environ)


def _repo_and_branch(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    repo = environ.get("MG_POLICY_REPO", ".")
    branch = environ.get("MG_REF", "refs/heads/main").removeprefix("refs/heads/")
    parser.add_argument("--repo", type=Path, default=Path(repo), help=f"repository ({repo})")
    parser.add_argument("--branch", default=branch, help=f"the branch ({branch}) or a full ref")


def _register_rollback(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    rollback = commands.add_parser(
        "rollback",
        help="one new commit that restores an earlier revision's policy",
        description="Commit, on top of the branch, the tree of REV (an ancestor of the branch "
        "head), with a message naming the commits it undoes. REV must pass `policy check`. "
        "If anyone commits meanwhile, nothing is written (run it again).",
    )
    rollback.add_argument("rev", help="the revision to go back to, e.g. HEAD~1 or a commit")
    _repo_and_branch(rollback, environ)
    rollback.add_argument("--push", action="store_true", help="push the commit to origin")
    rollback.add_argument("--author", help="'Name <email>' (default: git config user.*)")
    rollback.add_argument("--message", "-m", help="commit message (default: what it undoes)")
    rollback.add_argument("--dry-run", action="store_true", help="print the plan; commit nothing")
    rollback.add_argument(
        ENV_PREFIX_OPTION,
        dest="credential_env_prefix",
        default=environ.get(ENV_PREFIX_VARIABLE),
        metavar="PREFIXES",
        help=f"as `policy check {ENV_PREFIX_OPTION}` (default: ${ENV_PREFIX_VARIABLE})",
    )
    rollback.set_defaults(handler=run_rollback)


def _register_log(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], environ: Mapping[str, str]
) -> None:
    log = commands.add_parser(
        "log",
        help="who changed what and when: the branch's commits with their policy diff lines",
        description="The commits on the branch, newest first, each with who made it, when, and "
        "its `policy diff` lines. --key or --team keeps the commits that touched it.",
    )
    which = log.add_mutually_exclusive_group()
    which.add_argument("--key", metavar="ID", help="only commits that change this client key")
    which.add_argument("--team", metavar="T", help="only commits that change this team or its keys")
    _repo_and_branch(log, environ)
    log.add_argument("-n", type=_positive, metavar="N", help="at most N commits")
    log.set_defaults(handler=run_log)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


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
    if not problems:  # warnings (unpriced targets) never fail the check
        found = worktree_warnings(repo) if args.rev is None else revision_warnings(repo, args.rev)
        for warning in found:
            print(github_annotation(warning, "warning") if args.format == "github" else warning)
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


def run_rollback(args: argparse.Namespace) -> int:
    command, ref = "modelgate policy rollback", branch_ref(args.branch)
    try:
        allowed = AllowedRefs.parse(args.credential_env_prefix)
    except ValueError as exc:
        print(f"{command}: {ENV_PREFIX_OPTION}: {exc}", file=sys.stderr)
        return 2
    try:
        plan = plan_rollback(args.repo, args.rev, ref, allowed)
    except PolicyRepoError as exc:
        print(f"{command}: {exc}; nothing was committed", file=sys.stderr)
        return 1
    print(plan.markdown, end="")
    if plan.problems:
        print(f"{command}: {args.rev} does not pass `policy check`:", file=sys.stderr)
        for problem in plan.problems:
            print(f"  {problem}", file=sys.stderr)
        print("Nothing was committed: roll back to a commit that validates.", file=sys.stderr)
        return 1
    if args.dry_run:
        print(f"Dry run: would commit\n\n{plan.message}", file=sys.stderr)
        return 0
    try:
        result = commit_rollback(args.repo, plan, author=args.author, message=args.message)
    except RollbackRaced as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    except (PolicyInvalid, PolicyRepoError, ValueError) as exc:
        print(f"{command}: {exc}; nothing was committed", file=sys.stderr)
        return 1
    undone = len(plan.undone)
    print(
        f"Rolled back {result.ref} to {plan.target[:12]}: commit {result.commit[:12]} undoes "
        f"{undone} commit(s) ({', '.join(result.files) or 'no file'}).",
        file=sys.stderr,
    )
    if result.worktree_updated:
        print("  The working tree and index were updated to the new commit.", file=sys.stderr)
    if args.push:
        try:
            push(args.repo, result.ref)
        except PushFailed as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 1
        print(f"Pushed {result.ref} to origin.", file=sys.stderr)
    return 0


def run_log(args: argparse.Namespace) -> int:
    match = LogFilter(key=args.key, team=args.team)
    shown = 0
    try:
        for entry in policy_log(args.repo, branch_ref(args.branch), match):
            when = entry.when.strftime("%Y-%m-%d %H:%M %z")
            who, subject = _printable(entry.author), _printable(entry.subject)
            print(f"{entry.commit[:12]}  {when}  {who}  {subject}")
            for line in entry.lines:
                print(f"    - {line}")
            shown += 1
            if args.n is not None and shown >= args.n:
                break
    except PolicyRepoError as exc:
        print(f"modelgate policy log: {exc}", file=sys.stderr)
        return 2
    if not shown and match.active:
        what = f"key {args.key}" if args.key else f"team {args.team}"
        print(f"No commit on {args.branch} changes {what}.", file=sys.stderr)
    return 0


def _printable(text: str) -> str:
    """Anyone's words (authors, subjects) with control characters shown escaped: a commit
    must not be able to send escape sequences to the operator's terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def github_annotation(problem: Problem, level: str = "error") -> str:
    """A GitHub Actions workflow command that marks the problem on the pull request's diff."""
    props = f"file={_escape_property(problem.file)},line={problem.line},col={problem.col}"
    return f"::{level} {props}::{_escape_data(problem.message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _is_bare(path: Path) -> bool:
    if (path / ".git").exists() or not (path / "HEAD").is_file():
        return False
    with open_repo(path) as repo:
        return bool(repo.bare)
