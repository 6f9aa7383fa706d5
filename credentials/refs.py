"""Upstream credential references: `env:NAME` and `file:NAME`.

Policy files name where a secret lives, never the secret. Errors name the reference and
what to do, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class CredentialUnavailable(Exception):
    """A credential reference that cannot be resolved right now."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"credential {ref} is unavailable: {reason}")
        self.ref = ref
        self.reason = reason


def resolve_ref(ref: str, credentials_dir: Path, environ: Mapping[str, str]) -> str:
    """The secret behind `ref`, whitespace-stripped; raises CredentialUnavailable."""
    kind, _, name = ref.partition(":")
    if kind == "env" and name:
        return _from_environment(ref, name, environ)
    if kind == "file" and name:
        return _from_file(ref, name, credentials_dir)
    # Not a reference at all, perhaps a pasted secret: never repeat it.
    raise CredentialUnavailable("(malformed reference)", "write it as env:NAME or file:NAME")


def _from_environment(ref: str, name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if value is None:
        raise CredentialUnavailable(ref, f"set the environment variable {name}")
    value = value.strip()
    if not value:
        raise CredentialUnavailable(ref, f"the environment variable {name} is empty")
    return value


def _from_file(ref: str, name: str, credentials_dir: Path) -> str:
    base = credentials_dir.resolve()
    path = (base / name).resolve()
    # Policy authors choose `name`: it must not reach files outside the credentials dir.
    if Path(name).is_absolute() or not path.is_relative_to(base) or path == base:
        raise CredentialUnavailable(ref, f"the file name must stay inside {credentials_dir}")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CredentialUnavailable(
            ref, f"create the file {name} in the credentials directory {credentials_dir}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = f"cannot read {name} in {credentials_dir} ({type(exc).__name__})"
        raise CredentialUnavailable(ref, reason) from None
    if not value:
        raise CredentialUnavailable(ref, f"the file {name} in {credentials_dir} is empty")
    return value
