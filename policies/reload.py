"""Watch the policy ref and swap in each new commit that validates; refuse the rest.

The serving loop only ever reads `PolicyHolder.snapshot`, replaced by one assignment. Loading
and compiling run in a worker thread; the loop itself only reads the ref (a file or two).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from credentials.refs import UNRESTRICTED, AllowedRefs
from gateway.payloads import AttemptStatus, PolicyState, PolicyStatus, utc_iso
from policies.loader import load_policy
from policies.problems import PolicyInvalid, PolicyRepoError
from policies.remote import RemoteSync
from policies.repo import open_repo, read_policy_files, ref_sha
from policies.snapshot import Snapshot

log = logging.getLogger("modelgate.policy")

MAX_ATTEMPTS = 20


@dataclass
class Attempt:
    """One try at applying a commit."""

    commit: str
    at: float
    """Unix time of the attempt."""
    ok: bool
    error: str | None
    forced: bool = False
    """The commit arrived by a forced update of the remote (its history was rewritten)."""

    def as_dict(self) -> AttemptStatus:
        return {
            "commit": self.commit,
            "at": utc_iso(self.at),
            "ok": self.ok,
            "error": self.error,
            "forced": self.forced,
        }


class PolicyHolder:
    """The snapshot being served and the story of how it got there (for /admin/api/status)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.applied_commit: str | None = None
        self.applied_at: float | None = None
        self.state: PolicyState = "pending"
        self.error: str | None = None
        """The rejected commit's problems, one `file:line:col: message` per line."""
        self.rejected_commit: str | None = None
        self.attempted_commit: str | None = None
        self.attempts: deque[Attempt] = deque(maxlen=MAX_ATTEMPTS)
        self.remote: RemoteSync | None = None
        """The remote this policy follows (`serve --remote`), for its fetch history."""

    def apply(self, snapshot: Snapshot, at: float | None = None) -> Attempt:
        """Serve `snapshot` from now on; a later good commit clears any rejection."""
        when = time.time() if at is None else at
        self.snapshot = snapshot  # the one assignment requests observe
        self.applied_commit, self.applied_at = snapshot.commit, when
        self.state, self.error, self.rejected_commit = "synced", None, None
        return self._record(Attempt(snapshot.commit, when, True, None))

    def reject(self, commit: str, error: str, at: float | None = None) -> Attempt:
        """Refuse `commit`; the last good snapshot (if any) keeps serving."""
        when = time.time() if at is None else at
        self.state, self.error, self.rejected_commit = "rejected", error, commit
        return self._record(Attempt(commit, when, False, error))

    def back_to_applied(self) -> None:
        """The ref points at the applied commit again: nothing is rejected or missing now."""
        self.state, self.error, self.rejected_commit = "synced", None, None

    def status_dict(self) -> PolicyStatus:
        """The `policy` object of /admin/api/status, plus the recent attempts."""
        return {
            "commit": self.applied_commit,
            "applied_at": utc_iso(self.applied_at) if self.applied_at is not None else None,
            "state": self.state,
            "error": self.error,
            "rejected_commit": self.rejected_commit,
            "attempted_commit": self.attempted_commit,
            "message": self.message(),
            "attempts": [a.as_dict() for a in reversed(self.attempts)],
            "remote": self.remote.status_dict() if self.remote is not None else None,
        }

    def message(self) -> str:
        """One line on where the policy stands, in GitOps words."""
        applied = self.applied_commit
        serving = f"serving {applied[:12]}" if applied else "serving nothing"
        if self.state == "rejected" and self.rejected_commit:
            count = len((self.error or "").splitlines())
            text = f"commit {self.rejected_commit[:12]} rejected ({count} problem(s)); {serving}"
        elif self.applied_commit is None:
            text = self.error or "waiting for a valid policy commit"
        else:
            text = f"applied {self.applied_commit[:12]}"
            if self.attempts and self.attempts[-1].forced:
                text += " after a forced update of the remote (history rewritten)"
        last = self.remote.last if self.remote is not None else None
        if last is not None and last.error is not None:
            text += f"; remote: {last.error}"
        return text

    def _record(self, attempt: Attempt) -> Attempt:
        if self.remote is not None and self.remote.arrived_by_force(attempt.commit):
            attempt.forced = True
        self.attempted_commit = attempt.commit
        self.attempts.append(attempt)
        return attempt


def build_snapshot(repo_path: Path, commit: str, allowed: AllowedRefs = UNRESTRICTED) -> Snapshot:
    """Read, validate and compile one commit; raises PolicyInvalid or PolicyRepoError."""
    with _collector_paused():
        with open_repo(repo_path) as repo:
            files = read_policy_files(repo, commit)
        return Snapshot.compile(load_policy(files, allowed), commit)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep the cyclic GC from scanning the whole heap while a big policy is built.

    A 10,000-key commit creates a few hundred thousand objects; left alone, the collector
    runs full passes over the heap in the middle of the load, holding the GIL for tens of
    milliseconds each time, and the serving loop stalls. Paused, then frozen on success,
    the new snapshot's objects are never scanned again; the old snapshot's are still freed
    by reference counting when the last request holding it ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


class PolicyWatcher:
    """Applies every new commit on `ref` within one poll; refuses commits that do not validate.

    `fetch` is the hook for a remote: when given, it runs (every `fetch_interval` seconds in
    `run`, and on `check_now(fetch=True)`) before the ref is read. `allowed` is what the
    operator lets commits name as credentials; a commit naming anything else is refused.
    """

    def __init__(
        self,
        holder: PolicyHolder,
        repo_path: Path,
        ref: str = "refs/heads/main",
        poll_interval: float = 0.5,
        *,
        fetch: Callable[[], Awaitable[object]] | None = None,
        fetch_interval: float = 10.0,
        on_attempt: Callable[[Attempt], None] | None = None,
        allowed: AllowedRefs = UNRESTRICTED,
    ) -> None:
        self.holder = holder
        self.repo_path = repo_path
        self.ref = ref
        self.poll_interval = poll_interval
        self.fetch = fetch
        self.fetch_interval = fetch_interval
        self.on_attempt = on_attempt
        self.allowed = allowed
        self._lock = asyncio.Lock()
        self._invalid_commit: str | None = None
        self._last_fetch = 0.0

    def load_initial(self) -> bool:
        """Apply the ref's commit synchronously (at startup); whether a snapshot is served."""
        commit = ref_sha(self.repo_path, self.ref)
        if commit is None:
            self._ref_missing()
            return False
        self._finish(commit, self._build(commit))
        return self.holder.snapshot is not None

    async def check_now(self, fetch: bool = False) -> bool:
        """Apply the ref's commit if it moved; whether the served policy or its state changed."""
        async with self._lock:
            if self.fetch is not None and (fetch or self._fetch_due()):
                self._last_fetch = time.monotonic()
                await self.fetch()
            commit = ref_sha(self.repo_path, self.ref)  # a file read or two: fine on the loop
            if commit is None:
                return self._ref_missing()
            holder = self.holder
            if commit == holder.applied_commit:
                if holder.state == "synced" and holder.error is None:
                    return False
                holder.back_to_applied()  # a revert to it, or the ref is back
                return True
            if commit == self._invalid_commit:
                return False  # refused before: do not parse the same commit every poll
            outcome = await asyncio.to_thread(self._build, commit)
            return self._finish(commit, outcome)

    async def run(self) -> None:
        """Poll until cancelled; an unexpected error is logged and the next poll goes on."""
        while True:
            try:
                await self.check_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("policy poll failed; retrying in %.1fs", self.poll_interval)
            await asyncio.sleep(self.poll_interval)

    def _fetch_due(self) -> bool:
        return time.monotonic() - self._last_fetch >= self.fetch_interval

    def _build(self, commit: str) -> Snapshot | PolicyInvalid | PolicyRepoError:
        try:
            return build_snapshot(self.repo_path, commit, self.allowed)
        except (PolicyInvalid, PolicyRepoError) as exc:
            return exc
        except Exception as exc:  # a damaged repository or a bug: keep serving, say so
            log.exception("loading policy %s failed", commit[:12])
            message = f"could not load commit {commit[:12]} ({type(exc).__name__}); see the log"
            return PolicyRepoError(message)

    def _finish(self, commit: str, outcome: Snapshot | PolicyInvalid | PolicyRepoError) -> bool:
        if isinstance(outcome, Snapshot):
            attempt = self.holder.apply(outcome)
            log.info("policy %s applied", commit[:12])
        elif isinstance(outcome, PolicyInvalid):
            self._invalid_commit = commit
            attempt = self.holder.reject(commit, str(outcome))
            log.warning(
                "policy %s rejected: %d problem(s)\n%s", commit[:12], len(outcome.problems), outcome
            )
        else:  # the repository itself failed us (e.g. mid-gc): try again next poll
            attempt = self.holder.reject(commit, str(outcome))
            log.warning("policy %s could not be read: %s", commit[:12], outcome)
        if self.on_attempt is not None:
            self.on_attempt(attempt)
        return True

    def _ref_missing(self) -> bool:
        message = f"ref {self.ref} not found in {self.repo_path}: commit a policy to it"
        changed = self.holder.error != message
        if changed:
            self.holder.error = message
            log.warning("%s", message)
        return changed
