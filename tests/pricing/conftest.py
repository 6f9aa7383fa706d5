"""The in-process gateway of tests/inprocess, reused: its policy's targets have no catalog
price (made-up hosts and models), so a test prices them in prices.yaml or leaves them
unpriced."""

from tests.inprocess.conftest import clock, gateway, repo, secrets, upstream

__all__ = ["clock", "gateway", "repo", "secrets", "upstream"]
