"""Webhook deliveries, off the request path: a POST of `{"text": ...}` (the Slack and
Mattermost incoming-webhook format), retried with exponential backoff.

The URL is a credential reference (env:NAME / file:NAME), resolved at each delivery like
provider credentials; it is a secret (a Slack webhook URL is its own token), so neither it
nor an exception text that may quote it is ever logged: only the reference and the status.
A receiver answering 5xx or 429, or not answering, is tried again, at most `attempts` times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

log = logging.getLogger("modelgate.alerts")

ATTEMPTS = 5
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
TIMEOUT_S = 10.0
MAX_PENDING = 100
"""Deliveries in progress at once; more are dropped (and logged): alerts are rare."""


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class WebhookSender:
    def __init__(
        self,
        resolve: Callable[[str], str],
        *,
        client: httpx.AsyncClient | None = None,
        attempts: int = ATTEMPTS,
        first_delay_s: float = FIRST_DELAY_S,
    ) -> None:
        self._resolve = resolve
        """env:/file: reference -> URL (credentials.pool.CredentialResolver)."""
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        self._attempts = attempts
        self._first_delay_s = first_delay_s
        self._pending: set[asyncio.Task[bool]] = set()

    def send(self, ref: str, text: str) -> None:
        """Start a delivery in the background (never waits, never raises)."""
        if len(self._pending) >= MAX_PENDING:
            log.warning("alert webhook %s: too many deliveries in progress; dropped one", ref)
            return
        task = asyncio.get_running_loop().create_task(self.deliver(ref, text))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def deliver(self, ref: str, text: str) -> bool:
        """POST until a 2xx, a final refusal, or the last attempt; True when delivered."""
        delay = self._first_delay_s
        for attempt in range(1, self._attempts + 1):
            try:
                url = self._resolve(ref)
            except Exception as exc:  # e.g. the variable is not set: say which reference
                log.warning("alert webhook %s cannot be resolved: %s", ref, exc)
                return False
            if not url.startswith(("https://", "http://")):
                log.warning("alert webhook %s does not hold an http(s) URL; not sent", ref)
                return False
            why = await self._post(url, text)
            if why is None:
                return True
            if not why.startswith("retry"):
                log.warning("alert webhook %s: %s; not retried", ref, why)
                return False
            if attempt < self._attempts:
                log.info(
                    "alert webhook %s: %s (attempt %d); again in %gs", ref, why, attempt, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
        log.warning("alert webhook %s: not delivered after %d attempts", ref, self._attempts)
        return False

    async def _post(self, url: str, text: str) -> str | None:
        """None when delivered; else why, starting with 'retry' when worth another try."""
        try:
            response = await self._client.post(url, json={"text": text})
        except httpx.HTTPError as exc:  # its text may quote the URL: only its kind is told
            return f"retry: {type(exc).__name__}"
        if response.is_success:
            return None
        if _retryable(response.status_code):
            return f"retry: the receiver answered {response.status_code}"
        return f"the receiver answered {response.status_code}"

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*self._pending)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self._client.aclose()
