"""policies.edit.PolicyEditor: compare-and-swap commits, replays, refusals, the round trip."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from policies import git_write
from policies.edit import EditConflict, EditRefused, PolicyEditor, PolicyInvalid
from policies.edit_files import EditedFiles
from policies.init import init_repo
from policies.repo import ref_sha


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "policy"
    init_repo(path)
    return path


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Hand Editor",
    "GIT_AUTHOR_EMAIL": "hand@example.com",
    "GIT_COMMITTER_NAME": "Hand Editor",
    "GIT_COMMITTER_EMAIL": "hand@example.com",
}
"""The hand-made commits' identity: the machine's ~/.gitconfig may have none (CI's HOME)."""


def git(path: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True, env=env
    )
    return done.stdout


def test_a_race_between_two_editors_loses_nothing(repo: Path) -> None:
    start = ref_sha(repo, "refs/heads/main")
    first, second = PolicyEditor(repo), PolicyEditor(repo)
    first.create_key("team-a", tier="standard")
    second.create_key("team-b", tier="batch")
    second.set_tier("gold", {"rpm": 1000})
    won = first.commit("keys: create team-a")
    assert won.retries == 0 and won.parent == start
    replayed = second.commit("keys: create team-b")
    assert replayed.retries == 1 and replayed.parent == won.commit  # on top, not over it
    assert ref_sha(repo, "refs/heads/main") == replayed.commit
    ids = [key.id for key in PolicyEditor(repo).policy().keys]
    assert ids == ["demo", "team-a", "team-b"]
    assert "gold: {rpm: 1000}" in git(repo, "show", "HEAD:limits.yaml")


def test_a_replay_that_no_longer_applies_fails_clearly(repo: Path) -> None:
    first, second = PolicyEditor(repo), PolicyEditor(repo)
    first.create_key("same-id")
    second.create_key("same-id")
    won = first.commit("first")
    with pytest.raises(EditConflict, match="'create key same-id' no longer applies"):
        second.commit("second")
    assert ref_sha(repo, "refs/heads/main") == won.commit


def test_a_ref_that_keeps_moving_gives_up_without_writing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = ref_sha(repo, "refs/heads/main")
    editor = PolicyEditor(repo)
    editor.disable_key("demo")
    monkeypatch.setattr(git_write, "compare_and_swap", lambda *args, **kwargs: False)
    with pytest.raises(EditConflict, match="kept moving"):
        editor.commit("disable demo", retries=2)
    assert ref_sha(repo, "refs/heads/main") == start


def test_compare_and_swap_refuses_a_stale_expectation(repo: Path) -> None:
    start = ref_sha(repo, "refs/heads/main")
    editor = PolicyEditor(repo)
    editor.disable_key("demo")
    moved = editor.commit("disable").commit
    from dulwich.repo import Repo

    with Repo(str(repo)) as handle:
        assert start is not None
        stale = git_write.compare_and_swap(handle, "refs/heads/main", start, start.encode(), "x")  # type: ignore[arg-type]
    assert not stale and ref_sha(repo, "refs/heads/main") == moved


def test_an_invalid_result_is_never_committed(repo: Path) -> None:
    start = ref_sha(repo, "refs/heads/main")
    editor = PolicyEditor(repo)
    editor.set_route("claude", ["anthropic/claude-sonnet"])  # no provider 'anthropic'
    markdown, problems = editor.preview()
    assert "does not validate" in markdown and "unknown provider 'anthropic'" in markdown
    assert problems and "unknown provider 'anthropic'" in problems[0].message
    with pytest.raises(PolicyInvalid):
        editor.commit("add claude")
    assert ref_sha(repo, "refs/heads/main") == start


def test_unknown_and_duplicate_keys_are_refused_at_once(repo: Path) -> None:
    editor = PolicyEditor(repo)
    with pytest.raises(EditRefused, match="exists already"):
        editor.create_key("demo")
    with pytest.raises(EditRefused, match="no key with id"):
        editor.rotate_key("nobody")
    with pytest.raises(EditRefused, match="nothing to commit"):
        editor.commit("nothing")


def test_clean_checkout_is_updated_and_a_bare_repo_works(repo: Path, tmp_path: Path) -> None:
    editor = PolicyEditor(repo)
    secret = editor.rotate_key("demo")
    result = editor.commit("rotate demo")
    assert result.worktree_updated and git(repo, "status", "--porcelain") == ""
    assert secret not in git(repo, "log", "-p")
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    editor = PolicyEditor(bare)
    editor.set_route("fast", ["local/llama3.2", "openai/gpt-4o-mini"], strategy="round-robin")
    editor.remove_route("gpt-4o-mini")
    editor.set_default_limits({"rpm": 30})
    done = editor.commit("routes", author="Ann <ann@example.com>")
    assert not done.worktree_updated and done.files == ("limits.yaml", "routes.yaml")
    routes = git(bare, "show", "HEAD:routes.yaml")
    assert "  fast:\n    targets: [local/llama3.2, openai/gpt-4o-mini]\n" in routes
    assert "gpt-4o-mini:\n" not in routes
    assert git(bare, "log", "-1", "--format=%an <%ae>") == "Ann <ann@example.com>\n"


def test_layouts_the_splice_cannot_handle_fall_back_to_a_round_trip() -> None:
    # An alias: the surgical edit refuses, the round trip keeps comments and the data right.
    text = (
        "# shared limits\nbase: &base {rpm: 5}\nkeys:\n  - id: a  # first\n"
        "    hash: sha256:" + "a" * 64 + "\n    limits: *base\n"
    )
    files = EditedFiles({"keys.yaml": text.encode()})
    files.update_key("a", {"disabled": True})
    new = files.current()["keys.yaml"].decode()
    assert "# shared limits" in new and "# first" in new and "disabled: true" in new


def test_concurrent_writers_all_land(repo: Path) -> None:
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for n in range(5):
                editor = PolicyEditor(repo)
                editor.create_key(f"{prefix}-{n}")
                editor.commit(f"create {prefix}-{n}", retries=20)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    ids = {key.id for key in PolicyEditor(repo).policy().keys}
    assert ids == {"demo"} | {f"{side}-{n}" for side in ("left", "right") for n in range(5)}
    assert len(git(repo, "rev-list", "HEAD").split()) == 11


ROUTE_WITH_EVERY_FIELD = (
    "  smart:  # tuned by hand\n"
    "    targets: [openai/gpt-4o-mini, local/llama3.2]\n"
    "    strategy: round-robin\n"
    "    deadline_s: 45\n"
    "    description: the smart one\n"
)


def commit_route(repo: Path, text: str) -> None:
    routes = repo / "routes.yaml"
    routes.write_text(routes.read_text().replace("routes:\n", "routes:\n" + text, 1))
    git(repo, "commit", "-q", "-am", "hand-written route")


def test_a_route_edit_keeps_the_fields_it_was_not_asked_to_change(repo: Path) -> None:
    commit_route(repo, ROUTE_WITH_EVERY_FIELD)
    editor = PolicyEditor(repo)
    editor.set_route("smart", ["local/llama3.2", "openai/gpt-4o-mini"])
    editor.commit("reorder smart")
    route = PolicyEditor(repo).policy().routes["smart"]
    assert route.targets == ("local/llama3.2", "openai/gpt-4o-mini")
    assert (route.strategy, route.deadline_s, route.description) == (
        "round-robin",
        45,
        "the smart one",
    )
    assert "  smart:  # tuned by hand\n" in git(repo, "show", "HEAD:routes.yaml")


def test_a_route_edit_sets_and_removes_deadline_s(repo: Path) -> None:
    commit_route(repo, ROUTE_WITH_EVERY_FIELD)
    editor = PolicyEditor(repo)
    editor.set_route("smart", deadline_s=7.5)
    editor.set_route("gpt-4o-mini", ["openai/gpt-4o-mini"], deadline_s=30)
    editor.commit("deadlines")
    routes = PolicyEditor(repo).policy().routes
    assert routes["smart"].deadline_s == 7.5 and routes["gpt-4o-mini"].deadline_s == 30
    assert routes["smart"].strategy == "round-robin"  # untouched
    editor = PolicyEditor(repo)
    editor.set_route("smart", deadline_s=None, description=None)
    editor.commit("back to the default deadline")
    smart = PolicyEditor(repo).policy().routes["smart"]
    assert "deadline_s" not in smart.model_fields_set and smart.description is None
    assert smart.strategy == "round-robin" and len(smart.targets) == 2


def test_a_new_route_needs_targets_and_a_valid_deadline(repo: Path) -> None:
    editor = PolicyEditor(repo)
    with pytest.raises(EditRefused, match="no route 'nowhere'"):
        editor.set_route("nowhere", deadline_s=5)
    editor.set_route("quick", ["openai/gpt-4o-mini"], deadline_s=0)
    with pytest.raises(PolicyInvalid, match="deadline_s"):
        editor.commit("a zero deadline")
