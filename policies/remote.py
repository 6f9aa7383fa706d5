"""Follow a remote policy repository: clone it once, then fetch and move the watched ref.

GitOps semantics: the remote is the source of truth. A fetch resets the local ref to the
remote's (never a merge), so a history rewrite on the remote (a force push) is followed and
recorded as `forced`. Everything here is blocking (network and disk): call it from a thread.
Remotes are anything dulwich's clients speak: plain paths, file://, smart HTTP(S), ssh.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dulwich import porcelain
from dulwich.client import GitClient, default_urllib3_manager, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException
from dulwich.graph import can_fast_forward
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from gateway.payloads import FetchStatus, RemoteStatus, utc_iso
from policies.problems import PolicyRepoError
from policies.repo import open_repo

log = logging.getLogger("modelgate.policy.remote")

MAX_FETCHES = 20
FETCH_TIMEOUT_S = 30.0
DEFAULT_REMOTE_BRANCH = "refs/heads/main"
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


class RemoteSyncError(PolicyRepoError):
    """The remote could not be cloned or fetched; the message never carries credentials."""


def redact_url(url: str) -> str:
    """`url` without a `user:password@` part, for logs and status."""
    return _USERINFO.sub("***@", url)


def remote_ref_for(local_ref: str) -> str:
    """The remote branch a local ref follows: the same branch, else the remote's main."""
    return local_ref if local_ref.startswith("refs/heads/") else DEFAULT_REMOTE_BRANCH


def clone_policy_repo(url: str, path: Path) -> str | None:
    """Clone `url` into `path` as a bare repository; the sha of its main branch, if any."""
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with porcelain.clone(url, str(path), bare=True, checkout=False, errstream=io.BytesIO()):
            pass
    except Exception as exc:
        if not existed:  # no half-made clone left behind to trip the next start
            shutil.rmtree(path, ignore_errors=True)
        raise RemoteSyncError(_failure("clone", url, exc)) from None
    with open_repo(path) as repo:
        sha = repo.refs.as_dict().get(Ref(DEFAULT_REMOTE_BRANCH.encode()))
    return sha.decode("ascii") if sha else None


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did to the local ref."""

    at: float
    """Unix time the fetch finished."""
    before: str | None
    """The local ref before."""
    after: str | None
    """The local ref after: the remote's commit, or `before` when the fetch failed."""
    forced: bool = False
    """The remote's commit does not descend from the local one: history was rewritten."""
    error: str | None = None

    @property
    def moved(self) -> bool:
        return self.before != self.after

    @property
    def message(self) -> str:
        if self.error is not None:
            return self.error
        if not self.moved:
            return f"up to date at {_short(self.after)}"
        if self.forced:
            return (
                f"history rewritten on the remote (force push): reset from "
                f"{_short(self.before)} to {_short(self.after)}"
            )
        return f"fast-forwarded from {_short(self.before)} to {_short(self.after)}"

    def as_dict(self) -> FetchStatus:
        return {
            "at": utc_iso(self.at),
            "before": self.before,
            "after": self.after,
            "forced": self.forced,
            "ok": self.error is None,
            "message": self.message,
        }


@dataclass
class RemoteSync:
    """Fetches `url` into the repository at `repo_path` and moves `ref` to the remote's."""

    repo_path: Path
    url: str
    ref: str = "refs/heads/main"
    history: deque[FetchResult] = field(default_factory=lambda: deque(maxlen=MAX_FETCHES))
    """Recent fetches that moved the ref or failed (quiet ones would crowd them out)."""
    last: FetchResult | None = None

    @property
    def remote_ref(self) -> str:
        return remote_ref_for(self.ref)

    def fetch(self) -> FetchResult:
        """Fetch once; failures are returned (and logged), never raised."""
        before = self._local_sha()
        try:
            result = self._fetch(before)
        except Exception as exc:  # network, protocol, disk: keep serving, say so in status
            message = _failure("fetch", self.url, exc)
            log.warning("%s", message)
            result = FetchResult(time.time(), before, before, error=message)
        self.last = result
        if result.moved or result.error is not None:
            self.history.append(result)
        if result.moved:
            level = logging.WARNING if result.forced else logging.INFO
            log.log(level, "policy remote %s: %s", redact_url(self.url), result.message)
        return result

    def arrived_by_force(self, commit: str) -> bool:
        """Whether `commit` was reached by a forced (non fast-forward) update."""
        return any(r.forced and r.after == commit for r in self.history)

    def status_dict(self) -> RemoteStatus:
        """The `remote` object of the policy status."""
        last = self.last
        fetched = last.after if last else None
        return {
            "url": redact_url(self.url),
            "ref": self.remote_ref,
            "last_fetch_at": utc_iso(last.at) if last else None,
            "fetched_commit": fetched,
            "forced": fetched is not None and self.arrived_by_force(fetched),
            "error": last.error if last else None,
            "message": last.message if last else "not fetched yet",
            "fetches": [r.as_dict() for r in reversed(self.history)],
        }

    def _fetch(self, before: str | None) -> FetchResult:
        remote_ref = Ref(self.remote_ref.encode())
        client, path = _client_for(self.url)
        with open_repo(self.repo_path) as repo:

            def wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
                sha = refs.get(remote_ref)
                return [sha] if sha is not None and sha not in repo.object_store else []

            fetched = client.fetch(path, repo, determine_wants=wants)
            remote_sha = fetched.refs.get(remote_ref)
            if remote_sha is None:
                message = f"the remote has no {self.remote_ref}: push a policy commit to it"
                return FetchResult(time.time(), before, before, error=message)
            after = remote_sha.decode("ascii")
            if after == before:
                return FetchResult(time.time(), before, after)
            forced = before is not None and not _descends(repo, before, after)
            old = _oid(before) if before is not None else None
            if not _move_ref(repo, self.ref, old, remote_sha, forced):
                now = repo.refs.as_dict().get(Ref(self.ref.encode()))
                if now != remote_sha:  # another writer won: try again at the next sync
                    message = f"{self.ref} moved locally during the fetch; retrying at next sync"
                    return FetchResult(time.time(), before, before, error=message)
                # another worker on the same repository moved it to the same commit: fine
        return FetchResult(time.time(), before, after, forced=forced)

    def _local_sha(self) -> str | None:
        try:
            with open_repo(self.repo_path) as repo:
                sha = repo.refs.as_dict().get(Ref(self.ref.encode()))
        except PolicyRepoError:
            return None
        return sha.decode("ascii") if sha else None


def _client_for(url: str) -> tuple[GitClient, str]:
    if url.startswith(("http://", "https://")):
        # A hung Git host must not hold the watcher (and POST /admin/api/sync) forever.
        manager = default_urllib3_manager(config=None, timeout=FETCH_TIMEOUT_S)
        return get_transport_and_path(url, quiet=True, pool_manager=manager)  # type: ignore[arg-type]
    return get_transport_and_path(url, quiet=True)


def fetch_hook(sync: RemoteSync) -> Callable[[], Awaitable[FetchResult]]:
    """The PolicyWatcher's `fetch`: one fetch in a worker thread, off the serving loop."""

    async def fetch() -> FetchResult:
        return await asyncio.to_thread(sync.fetch)

    return fetch


def _descends(repo: Repo, ancestor: str, commit: str) -> bool:
    try:
        return can_fast_forward(repo, _oid(ancestor), _oid(commit))
    except KeyError:  # the old commit is gone (e.g. a shallow or pruned store)
        return False


def _oid(sha: str) -> ObjectID:
    return ObjectID(sha.encode("ascii"))


def _move_ref(repo: Repo, ref: str, old: ObjectID | None, new: ObjectID, forced: bool) -> bool:
    name = Ref(ref.encode())
    reason = b"modelgate sync: " + (b"forced update" if forced else b"fast-forward")
    if old is None:
        return bool(repo.refs.add_if_new(name, new, message=reason))
    return bool(repo.refs.set_if_equals(name, old, new, message=reason))


def _failure(action: str, url: str, exc: Exception) -> str:
    kind = type(exc).__name__
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
    if isinstance(exc, HangupException | GitProtocolError | OSError):
        detail = f"{kind}: {detail}"
    # The exception text can quote the URL with its credentials: scrub it.
    detail = redact_url(detail.replace(url, redact_url(url)))
    advice = "check the URL, the network and the credentials"
    if action == "fetch":
        advice += "; the last applied policy keeps serving"
    return f"could not {action} {redact_url(url)} ({detail}); {advice}"


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"
