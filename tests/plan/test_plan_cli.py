"""`modelgate policy plan`: the golden plan (Markdown and JSON) of a change that meets every
kind of refusal, and --fail-on's exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.cli import main
from tests.plan.fixture import policy_change, secret_of, trace, write_log

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MG_UPDATE_GOLDEN") == "1"


@pytest.fixture
def change(tmp_path: Path) -> tuple[Path, Path, str, str]:
    repo, old, new = policy_change(tmp_path / "policy")
    write_log(tmp_path / "state", trace())
    return repo.path, tmp_path / "state", old, new


def plan(
    change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    repo, state, old, new = change
    argv = ["policy", "plan", "old", "new", "--repo", str(repo), "--state-dir", str(state)]
    code = main([*argv, "--since", "2025-06-01", *extra])
    out, err = capsys.readouterr()
    # Commits differ from run to run (git stamps the time): the golden names them by role.
    for sha, name in ((old, "OLDSHA"), (new, "NEWSHA")):
        out = out.replace(sha, name).replace(sha[:7], name)
    return code, out, err


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def test_the_markdown_plan_names_every_refusal(
    change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = plan(change, capsys)
    assert code == 0
    check_golden("plan.md", out)
    for why in ("401 the key is not in the policy", "404 no route", "403 the key may not use"):
        assert why in out
    for limit in ("rpm", "tpm", "max_concurrency", "tokens_per_day", "usd_per_day"):
        assert f"| `{limit}` |" in out


def test_the_json_plan(
    change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = plan(change, capsys, "--format", "json")
    assert code == 0
    check_golden("plan.json", out)
    data = json.loads(out)
    assert (data["replayed"], data["newly_refused"], data["newly_admitted"]) == (19, 9, 1)
    limits = {(hit["limit"], hit["scope"]) for hit in data["limits"]}
    assert limits == {
        ("rpm", "key 'alice'"),
        ("tpm", "key 'bob'"),
        ("max_concurrency", "team 'data'"),
        ("tokens_per_day", "key 'frank'"),
        ("usd_per_day", "team 'ml'"),
    }
    lost = {(m["key_id"], m["model"], m["status"]) for m in data["lost_models"]}
    assert lost == {("dave", "legacy", 404), ("erin", "gpt", 403)}


def test_the_plan_carries_no_secret_or_hash(
    change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, markdown, _ = plan(change, capsys)
    _, data, _ = plan(change, capsys, "--format", "json")
    for text in (markdown, data):
        assert "sha256" not in text and secret_of("alice") not in text


@pytest.mark.parametrize(
    ("threshold", "code"),
    [
        ("refusals>1%", 1),  # 9 of the 18 replayed requests OLD admits: 50%
        ("refusals>49.9%", 1),
        ("refusals>50%", 0),
        ("refusals>8", 1),
        ("refusals>9", 0),
    ],
)
def test_fail_on_exits_1_past_the_threshold(
    change: tuple[Path, Path, str, str],
    capsys: pytest.CaptureFixture[str],
    threshold: str,
    code: int,
) -> None:
    got, _, err = plan(change, capsys, "--fail-on", threshold)
    assert got == code
    assert ("exceed --fail-on" in err) == (code == 1)


def test_a_malformed_threshold_or_revision_exits_2(
    change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        plan(change, capsys, "--fail-on", "errors>1%")
    assert exc.value.code == 2
    repo, state, _, _ = change
    argv = ["policy", "plan", "old", "nope", "--repo", str(repo), "--state-dir", str(state)]
    assert main(argv) == 2
    assert "not found" in capsys.readouterr().err


def test_no_request_log_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, _, _ = policy_change(tmp_path / "policy")
    argv = ["policy", "plan", "old", "new", "--repo", str(repo.path)]
    assert main([*argv, "--state-dir", str(tmp_path / "empty")]) == 2
    assert "no request log" in capsys.readouterr().err


def test_relative_repo_and_state_paths_work(
    change: tuple[Path, Path, str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As an operator types it, from inside the policy repository: `--state-dir ../state`."""
    repo, state, _, _ = change
    monkeypatch.chdir(repo)
    relative_state = os.path.relpath(state, repo)
    argv = ["policy", "plan", "old", "new", "--state-dir", relative_state]
    assert main([*argv, "--since", "2025-06-01"]) == 0
    assert "newly refused" in capsys.readouterr().out.lower()
