"""What is wrong with a policy revision, as users read it: `file:line:col: message`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one policy file; line and col are 1-based."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class PolicyInvalid(Exception):
    """A policy revision that does not validate; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PolicyRepoError(Exception):
    """The policy repository or the requested revision cannot be read."""


class RevisionNotFound(PolicyRepoError):
    """The revision (ref, branch or commit) does not exist in the repository."""
