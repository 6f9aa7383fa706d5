"""`modelgate init`: a new policy repository with commented starter files and one commit.

Uses dulwich only (the machine may have no `git`). The demo key and admin token are
returned to be printed once; only their hashes are written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from dulwich.repo import Repo

from credentials.keys import generate_secret, hash_secret
from policies.problems import PolicyRepoError

STARTER_FILES = ("providers.yaml", "routes.yaml", "limits.yaml", "keys.yaml")
AUTHOR = b"ModelGate <modelgate@localhost>"
MESSAGE = b"Initial policy"


class InitRefused(PolicyRepoError):
    """`init` would overwrite an existing repository or policy file."""


@dataclass(frozen=True)
class InitResult:
    """The secrets made by `init`: print them once, they are stored nowhere."""

    admin_token: str
    demo_key: str
    commit: str = ""
    """The first commit's sha."""


def init_repo(path: Path) -> InitResult:
    """Create the repository at `path` (branch main) with the starter policy committed."""
    _refuse_existing(path)
    admin_token, demo_key = generate_secret(), generate_secret()
    values = {
        "admin_hash": hash_secret(admin_token),
        "demo_hash": hash_secret(demo_key),
        "today": dt.datetime.now(dt.UTC).date().isoformat(),
    }
    path.mkdir(parents=True, exist_ok=True)
    with Repo.init(str(path), default_branch=b"main") as repo:
        for name in STARTER_FILES:
            (path / name).write_text(starter_text(name, values), encoding="utf-8")
        worktree = repo.get_worktree()
        worktree.stage(list(STARTER_FILES))
        # sign=False: an operator's global commit.gpgsign must not break a first run.
        sha = worktree.commit(message=MESSAGE, author=AUTHOR, committer=AUTHOR, sign=False)
    return InitResult(admin_token, demo_key, sha.decode("ascii"))


def starter_text(name: str, values: dict[str, str]) -> str:
    """One starter file with its placeholders filled in."""
    template = resources.files("policies.starter").joinpath(name).read_text(encoding="utf-8")
    return Template(template).substitute(values)


def _refuse_existing(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise InitRefused(f"{path} exists and is not a directory: choose another path")
    if (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()):
        raise InitRefused(
            f"{path} is already a git repository: use it as it is, or choose an empty directory"
        )
    present = [name for name in STARTER_FILES if (path / name).exists()]
    if present:
        raise InitRefused(
            f"{path} already has {', '.join(present)}: move them away or choose another path"
        )
