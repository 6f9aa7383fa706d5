"""policies.remote: clone, fetch, fast-forward and forced updates, over file:// and HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.remote import RemoteSync, RemoteSyncError, clone_policy_repo, redact_url
from policies.repo import ref_sha
from tests.gitops.support import GitHttpServer, Origin
from tests.support.policy_repo import standard_policy


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    origin = Origin(tmp_path)
    standard_policy(origin.work, "http://127.0.0.1:9")
    origin.push()
    return origin


def add_route(origin: Origin, name: str) -> str:
    text = (origin.work.path / "routes.yaml").read_text()
    origin.work.write("routes.yaml", text + f"  {name}:\n    targets: [fake/{name}]\n")
    return origin.commit_and_push(f"route {name}")


@pytest.mark.parametrize("form", ["file-url", "plain-path"])
def test_clone_then_fast_forward(origin: Origin, tmp_path: Path, form: str) -> None:
    url = origin.url if form == "file-url" else str(origin.bare)
    local = tmp_path / "local"
    assert clone_policy_repo(url, local) == origin.head()
    sync = RemoteSync(local, url)
    assert sync.fetch().moved is False
    head = add_route(origin, "r1")
    result = sync.fetch()
    assert (result.after, result.forced, result.error) == (head, False, None)
    assert result.moved and "fast-forwarded" in result.message
    assert ref_sha(local, "refs/heads/main") == head


def test_force_push_is_followed_not_merged(origin: Origin, tmp_path: Path) -> None:
    local = tmp_path / "local"
    clone_policy_repo(origin.url, local)
    sync = RemoteSync(local, origin.url)
    old = add_route(origin, "r1")
    sync.fetch()
    new = origin.rewrite_last("r1, reworded")
    assert new != old
    result = sync.fetch()
    assert result.forced and result.before == old and result.after == new
    assert "force push" in result.message
    assert ref_sha(local, "refs/heads/main") == new  # reset to the remote's, no merge commit
    assert sync.arrived_by_force(new) and not sync.arrived_by_force(old)
    status = sync.status_dict()
    assert status["forced"] is True and status["fetched_commit"] == new


def test_sync_over_smart_http(origin: Origin, tmp_path: Path) -> None:
    with GitHttpServer(origin.bare) as server:
        local = tmp_path / "local"
        assert clone_policy_repo(server.url, local) == origin.head()
        sync = RemoteSync(local, server.url)
        head = add_route(origin, "over-http")
        result = sync.fetch()
        assert result.error is None and result.after == head
        assert ref_sha(local, "refs/heads/main") == head
        new = origin.rewrite_last("rewritten over http")
        assert sync.fetch().forced
        assert ref_sha(local, "refs/heads/main") == new


def test_unreachable_remote_keeps_the_ref_and_hides_credentials(
    origin: Origin, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    clone_policy_repo(origin.url, local)
    before = ref_sha(local, "refs/heads/main")
    url = "http://deploy:hunter2-token@127.0.0.1:9/policy.git"
    result = RemoteSync(local, url).fetch()
    assert result.error is not None and not result.moved
    assert "hunter2" not in result.error and "***@127.0.0.1" in result.error
    assert ref_sha(local, "refs/heads/main") == before


def test_clone_failure_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "var" / "policy"  # parents are created as needed
    with pytest.raises(RemoteSyncError, match="could not clone"):
        clone_policy_repo(str(tmp_path / "nowhere"), target)
    assert not target.exists()


def test_redact_url() -> None:
    assert redact_url("https://user:pw@host/x.git") == "https://***@host/x.git"
    assert redact_url("file:///srv/policy.git") == "file:///srv/policy.git"
