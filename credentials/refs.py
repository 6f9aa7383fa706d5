"""Upstream credential references: `env:NAME` and `file:NAME`.

Policy files name where a secret lives, never the secret. Errors name the reference and
what to do, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX_OPTION = "--credential-env-prefix"
ENV_PREFIX_VARIABLE = "MG_CREDENTIAL_ENV_PREFIX"
"""How an operator restricts the environment variables policies may name (serve, policy check)."""
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]+$")


class CredentialUnavailable(Exception):
    """A credential reference that cannot be resolved right now."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"credential {ref} is unavailable: {reason}")
        self.ref = ref
        self.reason = reason


@dataclass(frozen=True)
class AllowedRefs:
    """Which credential references a policy commit may name; set by the operator.

    A policy author chooses references, the operator's environment holds the values: without
    a restriction a commit could name any variable of the gateway's environment (or any file)
    and send it to a `base_url` of its choosing.
    """

    env_prefixes: tuple[str, ...] = ()
    """An `env:NAME` reference must start with one of these; empty: any name (the default)."""

    @classmethod
    def parse(cls, text: str | None) -> AllowedRefs:
        """From a comma list such as `MG_CRED_,OPENAI_`; raises ValueError naming a bad entry."""
        prefixes = tuple(p.strip() for p in (text or "").split(",") if p.strip())
        for prefix in prefixes:
            if not _PREFIX.match(prefix):
                raise ValueError(
                    f"'{prefix}' is not an environment variable prefix: use letters, digits "
                    "and '_' (several prefixes: a comma list, e.g. MG_CRED_,OPENAI_)"
                )
        return cls(prefixes)

    def refusal(self, ref: str) -> str | None:
        """Why a policy may not name `ref`, or None when it may."""
        kind, _, name = ref.partition(":")
        if kind == "file" and leaves_directory(name):
            return (
                f"credential reference '{ref}' leaves the credentials directory: name a file "
                "inside it (file:NAME or file:DIR/NAME, without '..' or a leading '/')"
            )
        if kind == "env" and self.env_prefixes and not name.startswith(self.env_prefixes):
            allowed = " or ".join(f"'{p}'" for p in self.env_prefixes)
            return (
                f"credential reference '{ref}' names an environment variable this gateway does "
                f"not lend to policies: the operator allows only names starting with {allowed} "
                f"({ENV_PREFIX_OPTION}); rename the variable, or ask the operator"
            )
        return None


UNRESTRICTED = AllowedRefs()
"""No --credential-env-prefix: any environment variable (today's behaviour, kept for
compatibility); `file:` references still stay inside the credentials directory."""


def leaves_directory(name: str) -> bool:
    """Whether a `file:` reference's name points outside the credentials directory."""
    return name.startswith("/") or ".." in name.split("/")


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
