"""prices.yaml's cross-file check: a literal provider name must exist in providers.yaml.

A key whose provider part is a glob (`*/gpt-4o`) may match no provider yet; that is fine.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.crosscheck import Issue
from policies.models import Provider, TokenPrice

_WILDCARDS = "*?["


def price_issues(
    file: str, prices: Mapping[str, TokenPrice], providers: Mapping[str, Provider] | None
) -> list[Issue]:
    """Problems of prices.yaml's keys; `providers` None when providers.yaml failed itself."""
    if providers is None:
        return []
    issues = []
    for pattern in prices:
        name = pattern.partition("/")[0]
        if any(ch in name for ch in _WILDCARDS) or name in providers:
            continue
        known = ", ".join(sorted(providers)) or "none"
        issues.append(
            Issue(
                file,
                ("prices", pattern),
                f"'{name}' is not a provider in providers.yaml (known: {known}): a price key "
                "is PROVIDER/MODEL with the provider's name, or a glob such as */MODEL",
                on_key=True,
            )
        )
    return issues
