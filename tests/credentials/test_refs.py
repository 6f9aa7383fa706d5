"""env:/file: credential references: values found, errors that never show a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from credentials.refs import CredentialUnavailable, resolve_ref

SECRET = "sk-test-0123456789abcdef"


def test_env_reference_is_read_and_stripped(tmp_path: Path) -> None:
    assert resolve_ref("env:UPSTREAM_KEY", tmp_path, {"UPSTREAM_KEY": f" {SECRET}\n"}) == SECRET


@pytest.mark.parametrize("environ", [{}, {"UPSTREAM_KEY": "  \n"}])
def test_missing_or_empty_env_names_the_reference(tmp_path: Path, environ: dict[str, str]) -> None:
    with pytest.raises(CredentialUnavailable) as caught:
        resolve_ref("env:UPSTREAM_KEY", tmp_path, environ)
    assert "env:UPSTREAM_KEY" in str(caught.value)
    assert "UPSTREAM_KEY" in caught.value.reason


def test_file_reference_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "gemini.key").write_text(f"\n  {SECRET}  \n")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "a.key").write_text(SECRET)
    assert resolve_ref("file:gemini.key", tmp_path, {}) == SECRET
    assert resolve_ref("file:team/a.key", tmp_path, {}) == SECRET


def test_missing_and_empty_files_are_unavailable(tmp_path: Path) -> None:
    with pytest.raises(CredentialUnavailable, match=r"file:nope\.key.*create the file nope\.key"):
        resolve_ref("file:nope.key", tmp_path, {})
    (tmp_path / "empty.key").write_text(" \n")
    with pytest.raises(CredentialUnavailable, match="empty"):
        resolve_ref("file:empty.key", tmp_path, {})


def test_file_names_cannot_escape_the_credentials_dir(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    outside = tmp_path / "outside.key"
    outside.write_text(SECRET)
    (creds / "link.key").symlink_to(outside)
    for ref in ("file:../outside.key", f"file:{outside}", "file:link.key", "file:."):
        with pytest.raises(CredentialUnavailable) as caught:
            resolve_ref(ref, creds, {})
        assert SECRET not in str(caught.value)
        assert "inside" in caught.value.reason


@pytest.mark.parametrize("ref", ["vault:x", "OPENAI_KEY", "env:", SECRET, f"{SECRET}:x"])
def test_malformed_references_are_refused_without_echoing_a_value(tmp_path: Path, ref: str) -> None:
    with pytest.raises(CredentialUnavailable) as caught:
        resolve_ref(ref, tmp_path, {"OPENAI_KEY": SECRET})
    assert "env:NAME or file:NAME" in caught.value.reason
    assert SECRET not in str(caught.value) and SECRET not in caught.value.ref
