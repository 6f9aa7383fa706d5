"""`modelgate policy check`: positions, secrets anywhere in the repository, GitHub annotations."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.commands.policy_cmd import github_annotation
from policies.problems import Problem
from tests.support.policy_repo import PolicyRepo, standard_policy


@pytest.fixture
def repo(policy_repo: PolicyRepo) -> PolicyRepo:
    standard_policy(policy_repo, "http://127.0.0.1:9")
    return policy_repo


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["policy", "check", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def fake(prefix: str, length: int = 40) -> str:
    """A fresh random secret-shaped string (never a real credential)."""
    return prefix + secrets.token_urlsafe(length)[:length]


def test_a_valid_working_tree_passes(repo: PolicyRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, "--repo", str(repo.path))
    assert code == 0 and out[-1].startswith("OK")
    # The fake upstream's models have no known price: a warning each, which fails nothing.
    assert all(": warning: no known price for " in line for line in out[:-1])


def test_schema_and_cross_file_problems_with_positions(
    repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (repo.path / "keys.yaml").read_text()
    text = text.replace("  - id: bob\n", "  - id: bob\n    tier: gold\n")
    (repo.path / "keys.yaml").write_text(text)
    tier_line = text.splitlines().index("    tier: gold") + 1
    routes = (repo.path / "routes.yaml").read_text()
    routes = routes.replace("[fake/upstream-mini]\n", "[fake/upstream-mini]\n    retries: 3\n")
    (repo.path / "routes.yaml").write_text(routes)
    retries_line = routes.splitlines().index("    retries: 3") + 1
    code, out, err = check(capsys, "--repo", str(repo.path))
    assert code == 1 and "2 problem(s)" in err
    assert out[0].startswith(f"keys.yaml:{tier_line}:11: unknown tier 'gold'")
    assert out[1].startswith(f"routes.yaml:{retries_line}:5: ")
    assert "retries" in out[1]


def test_secrets_anywhere_are_found_with_their_positions(
    repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    openai, anthropic, google = fake("sk-proj-"), fake("sk-ant-api03-"), fake("AIzaSy", 33)
    client_key = fake("mg-", 43)
    aws = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    generic = secrets.token_hex(20)
    (repo.path / "README.md").write_text(
        f"# Policy\n\nDo not do this: {openai}\n  anthropic = '{anthropic}'\n"
    )
    (repo.path / "notes").mkdir()
    (repo.path / "notes" / "setup.sh").write_text(
        f"export GOOGLE_KEY={google}\nexport AWS_ACCESS_KEY_ID={aws}\napi_key: {generic}\n"
    )
    providers = (repo.path / "providers.yaml").read_text()
    (repo.path / "providers.yaml").write_text(
        providers + f"    headers: {{x-extra: {client_key}}}\n"
    )
    (repo.path / "image.bin").write_bytes(b"\x00\x01" + openai.encode())  # binary: skipped
    code, out, _ = check(capsys, "--repo", str(repo.path))
    joined = "\n".join(out)
    assert code == 1
    provider_line = len(providers.splitlines()) + 1
    expected = {
        "README.md:3:17: this looks like an OpenAI API key",
        "README.md:4:16: this looks like an Anthropic API key",
        "notes/setup.sh:1:19: this looks like a Google API key",
        "notes/setup.sh:2:26: this looks like an AWS access key id",
        "notes/setup.sh:3:10: this looks like a secret value",
        f"providers.yaml:{provider_line}:24: this looks like a raw ModelGate client key",
    }
    for prefix in expected:
        assert prefix in joined, (prefix, joined)
    assert "image.bin" not in joined
    for secret in (openai, anthropic, google, client_key, aws, generic):
        assert secret not in joined  # never repeated


def test_references_and_hashes_are_not_secrets(
    repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.path / "README.md").write_text(
        "credentials: [env:OPENAI_API_KEY]\nexample: sk-...\n"
        "token: ${{ secrets.GITHUB_TOKEN }}\ntokens_per_day: 2000000\n"
    )
    code, out, _ = check(capsys, "--repo", str(repo.path))
    assert code == 0, out


def test_ignored_files_are_not_scanned(
    repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.path / ".gitignore").write_text("local/\n")
    (repo.path / "local").mkdir()
    (repo.path / "local" / "env").write_text(f"OPENAI={fake('sk-')}\n")
    code, _, _ = check(capsys, "--repo", str(repo.path))
    assert code == 0


def test_github_format(repo: PolicyRepo, capsys: pytest.CaptureFixture[str]) -> None:
    (repo.path / "docs, notes.md").write_text(f"key: {fake('sk-')}\n")
    code, out, _ = check(capsys, "--repo", str(repo.path), "--format", "github")
    assert code == 1 and len(out) == 1
    prefix = "::error file=docs%2C notes.md,line=1,col=6::this looks like an OpenAI API key"
    assert out[0].startswith(prefix)


def test_github_annotation_escapes() -> None:
    problem = Problem("a:b,c.yaml", 3, 4, "50% wrong\nsecond line")
    assert github_annotation(problem) == (
        "::error file=a%3Ab%2Cc.yaml,line=3,col=4::50%25 wrong%0Asecond line"
    )


def test_a_committed_revision_is_checked_not_the_working_tree(
    repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    good = repo.head()
    (repo.path / "routes.yaml").write_text("routes:\n  x:\n    targets: [nowhere/x]\n")
    bad = repo.commit("break routes")
    (repo.path / "routes.yaml").write_text("routes: {}\n")  # the working tree is fine again
    assert check(capsys, "--repo", str(repo.path))[0] == 0
    code, out, _ = check(capsys, "--repo", str(repo.path), "--rev", "HEAD")
    assert code == 1 and out[0].startswith("routes.yaml:3:15: unknown provider 'nowhere'")
    assert check(capsys, "--repo", str(repo.path), "--rev", good)[0] == 0
    assert check(capsys, "--repo", str(repo.path), "--rev", bad[:8])[0] == 1
    code, _, err = check(capsys, "--repo", str(repo.path), "--rev", "no-such-branch")
    assert code == 2 and "not found" in err


def test_a_secret_in_history_files_of_a_revision(
    repo: PolicyRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.path / "docs").mkdir()
    (repo.path / "docs" / "howto.txt").write_text(f"\n\n  {fake('mg-', 43)}\n")
    repo.commit("oops")
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    code, out, _ = check(capsys, "--repo", str(bare))  # a bare repository: HEAD is checked
    assert code == 1 and out[0].startswith("docs/howto.txt:3:3: this looks like a raw ModelGate")


def test_credential_reference_must_stay_in_the_credentials_dir(
    repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (repo.path / "providers.yaml").read_text()
    (repo.path / "providers.yaml").write_text(
        text.replace("[env:FAKE_UPSTREAM_KEY]", "[env:FAKE_UPSTREAM_KEY, file:../../etc/key]")
    )
    code, out, _ = check(capsys, "--repo", str(repo.path))
    assert code == 1
    assert out[0].startswith("providers.yaml:5:42: credential reference 'file:../../etc/key'")
