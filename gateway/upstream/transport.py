"""The upstream client: httpx's API, with a short path to the HTTP/1.1 engine (http1.py).

Executors speak httpx (`client.build_request`, `client.send(request, stream=True)`,
`response.aiter_raw()`, `response.aclose()`). httpx's own transport costs 0.5-1.5 ms of CPU per
request, which alone would break the gateway's budget, so the bytes move through the gateway's
own engine and the client skips the httpx work a gateway does not need (bench/transport_micro.py
has the numbers).

The client keeps no cookies (it serves every caller: one caller's upstream Set-Cookie must not
ride along on another's request), never follows redirects, ignores proxy environment variables
(an egress proxy is set explicitly: `--upstream-proxy`, proxy.py),
and asks upstreams for uncompressed bodies, so pass-through bytes can be scanned and relayed as
they are. `response.elapsed` is not recorded; the pipeline times requests itself.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import httpx

from gateway.upstream.http1 import Http1Transport, ResponseBody
from gateway.upstream.proxy import UpstreamProxy

__all__ = [
    "Http1Transport",
    "UpstreamClient",
    "create_http_client",
    "open_files_limit",
    "read_body",
    "upstream_connection_cap",
]

DEFAULT_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "modelgate"}
_MAX_CACHED_URLS = 1024
_FAST_BUILD_KWARGS = frozenset({"content", "headers", "timeout"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FD_RESERVE = 128
"""Open files kept for all but connections: listeners, databases, logs, git, Redis."""


def open_files_limit() -> int | None:
    """This process's soft limit of open files (RLIMIT_NOFILE); None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def upstream_connection_cap(
    client_connections: int, configured: int, open_files: int | None
) -> int:
    """Upstream connections a worker may open: `configured` when set (> 0); else one per
    client connection it accepts (a request holds one at a time, so none waits for one the
    process could open), lowered to what `open_files` holds at two descriptors per relayed
    request (client and upstream), so that the cap, not EMFILE, is what a request meets."""
    if configured > 0:
        return configured
    if open_files is None:
        return client_connections
    return max(1, min(client_connections, (open_files - FD_RESERVE) // 2))


def create_http_client(
    *,
    max_connections: int = 1000,
    connect_timeout: float = 10,
    keepalive_expiry: float = 30,
    transport: httpx.AsyncBaseTransport | None = None,
    proxy: UpstreamProxy | None = None,
    pool_timeout: float | None = None,
) -> httpx.AsyncClient:
    """The worker's shared upstream client; close it (`aclose`) before its event loop ends.

    `max_connections` bounds open upstream connections in all: a request finding them all
    busy waits for a free one up to its pool timeout, or `pool_timeout` when it sets none
    (None: no bound), then gets httpx.PoolTimeout. An idle connection is kept
    `keepalive_expiry` seconds.
    `transport` replaces the engine: unit tests that mock upstreams with pytest-httpx pass
    `httpx.AsyncHTTPTransport()`, the class pytest-httpx patches. `proxy`: an egress proxy
    that connections tunnel through (gateway/upstream/proxy.py).
    """
    engine = transport or Http1Transport(
        max_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
        proxy=proxy,
        pool_timeout=pool_timeout,
    )
    return UpstreamClient(transport=engine, timeout=httpx.Timeout(None, connect=connect_timeout))


class _NoCookies(httpx.Cookies):
    """A cookie store that stores nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        return None


class UpstreamClient(httpx.AsyncClient):
    """httpx.AsyncClient for a gateway: no cookies, and a short path through `send`.

    `send` goes straight to the transport unless the call needs what httpx's long path adds
    (auth, redirects, event hooks). Parsed URLs are cached: parsing costs more than sending.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        super().__init__(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )
        self._engine = transport
        self._no_cookies = _NoCookies()
        self._urls: dict[str, httpx.URL] = {}
        for name in ("Accept", "Connection"):
            self.headers.pop(name, None)  # HTTP/1.1 defaults; one header less per request
        self.headers.update(DEFAULT_HEADERS)
        self._default_headers = {k.lower(): v for k, v in self.headers.items()}

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        return None  # shared across callers: never keeps any

    def build_request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        if isinstance(url, str):
            parsed = self._urls.get(url)
            if parsed is None:
                if len(self._urls) >= _MAX_CACHED_URLS:
                    self._urls.clear()
                parsed = self._urls[url] = httpx.URL(url)
            url = parsed
        if kwargs.keys() <= _FAST_BUILD_KWARGS and url.is_absolute_url:
            return self._build_plain(method, url, kwargs)
        return super().build_request(method, url, **kwargs)

    def _build_plain(self, method: str, url: httpx.URL, kwargs: dict[str, Any]) -> httpx.Request:
        """What httpx's build_request makes of an absolute URL, headers, bytes content and a
        timeout, without its merging and re-encoding steps: headers are complete here (host
        and content-length included), so httpx builds them once instead of three times."""
        content = kwargs.get("content")
        if content is not None and not isinstance(content, bytes):
            return super().build_request(method, url, **kwargs)  # text or a stream
        headers = dict(self._default_headers)
        for name, value in (kwargs.get("headers") or {}).items():
            headers[name.lower()] = value
        if "host" not in headers:
            headers = {"host": url.netloc.decode("ascii"), **headers}
        if content is not None or method in _BODY_METHODS:
            headers.setdefault("content-length", str(len(content or b"")))
        timeout = kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT)
        if timeout is httpx.USE_CLIENT_DEFAULT:
            timeout = self.timeout
        elif not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        request = httpx.Request(
            method,
            url,
            headers=list(headers.items()),
            stream=httpx.ByteStream(content or b""),
            extensions={"timeout": timeout.as_dict()},
        )
        request.read()  # `request.content` as with content=...: the stream is its bytes
        return request

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        hooks = self.event_hooks
        if (
            auth is not httpx.USE_CLIENT_DEFAULT
            or follow_redirects is not httpx.USE_CLIENT_DEFAULT
            or self.auth is not None
            or hooks["request"]
            or hooks["response"]
        ):
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        if "timeout" not in request.extensions:
            request.extensions = {**request.extensions, "timeout": self.timeout.as_dict()}
        response = await self._engine.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response


async def read_body(response: httpx.Response, deadline: float | None) -> bytes:
    """`response.aread()` by `deadline` (event-loop time; TimeoutError after it), minus
    httpx's decoder layers when the body came unencoded.

    The engine asks upstreams for identity encoding, so on the hot path this takes what the
    engine buffered, usually with no wait and no timer; other transports (tests' pytest-httpx)
    and encoded bodies take httpx's way.
    """
    stream = response.stream
    if isinstance(stream, ResponseBody):
        encoding = response.headers.get("content-encoding")
        if encoding is None or encoding.lower() == "identity":
            return await stream.read_all(deadline)
    async with asyncio.timeout_at(deadline):
        return await response.aread()
