"""The upstream HTTP engine: httpx's API on top of aiohttp's connection pool.

Executors speak httpx (`client.build_request`, `client.send(request, stream=True)`,
`response.aiter_raw()`, `response.aclose()`). httpx's own transport costs 0.5-1.5 ms of CPU per
request, which alone would break the gateway's budget, so the bytes move through aiohttp and the
client skips the httpx work a gateway does not need (bench/transport_micro.py has the numbers).
What the pipeline relies on:

- chunks are yielded as they arrive from the socket, never held back to fill a buffer;
- `aclose()` on a response that was not read to the end closes its connection: an upstream
  stream the client abandoned stops, and a half-read connection never goes back to the pool;
- `request.extensions["timeout"]` (httpx's per-request timeouts) bounds connect and each read;
- failures raise httpx's exceptions: ConnectError, ConnectTimeout, ReadTimeout, ReadError,
  RemoteProtocolError (the upstream hung up or reset mid-response).

The client keeps no cookies (it serves every caller: one caller's upstream Set-Cookie must not
ride along on another's request), never follows redirects, ignores proxy environment variables,
and asks upstreams for uncompressed bodies, so pass-through bytes can be scanned and relayed as
they are. `response.elapsed` is not recorded; the pipeline times requests itself.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "UpstreamClient", "create_http_client", "read_body"]

DEFAULT_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "modelgate"}
# aiohttp adds these when absent; an executor that sends none means none.
_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Content-Type"})
_MAX_CACHED_URLS = 1024
_FAST_BUILD_KWARGS = frozenset({"content", "headers", "timeout"})
# Before these versions asyncio can leak aborted TLS transports unless aiohttp cleans them up
# (cpython#118960); after them aiohttp warns when asked to.
_SSL_TRANSPORTS_LEAK = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)
_MAX_CACHED_TIMEOUTS = 64


def create_http_client(
    *,
    max_connections: int = 1000,
    connect_timeout: float = 10,
    keepalive_expiry: float = 30,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The worker's shared upstream client; close it (`aclose`) before its event loop ends.

    `max_connections` bounds open upstream connections in all (a request waits for a free one
    up to its pool + connect timeout); an idle connection is kept `keepalive_expiry` seconds.
    `transport` replaces the aiohttp engine: unit tests that mock upstreams with pytest-httpx
    pass `httpx.AsyncHTTPTransport()`, the class pytest-httpx patches.
    """
    engine = transport or AiohttpTransport(
        max_connections=max_connections,
        connect_timeout=connect_timeout,
        keepalive_expiry=keepalive_expiry,
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
        """What httpx's build_request makes of an absolute URL, headers, content and timeout,
        without its merging steps (no base URL, params or cookies to merge here)."""
        headers = dict(self._default_headers)
        for name, value in (kwargs.get("headers") or {}).items():
            headers[name.lower()] = value
        timeout = kwargs.get("timeout", httpx.USE_CLIENT_DEFAULT)
        if timeout is httpx.USE_CLIENT_DEFAULT:
            timeout = self.timeout
        elif not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        return httpx.Request(
            method,
            url,
            headers=list(headers.items()),
            content=kwargs.get("content"),
            extensions={"timeout": timeout.as_dict()},
        )

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


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends through one aiohttp ClientSession (HTTP/1.1)."""

    def __init__(
        self,
        *,
        max_connections: int = 1000,
        connect_timeout: float = 10,
        keepalive_expiry: float = 30,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            ttl_dns_cache=10,  # short: a provider's DNS change is followed within seconds
            # httpx's trust store (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), not the system's.
            ssl=self._ssl_context or httpx.create_ssl_context(),
            enable_cleanup_closed=_SSL_TRANSPORTS_LEAK,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # httpx decodes (aread); aiter_raw must see the wire bytes
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            timeout=self._timeout_for(None),
            trust_env=False,  # else every request looks up proxy settings in a thread
            requote_redirect_url=False,
        )
        return self._session

    def _timeout_for(self, spec: Mapping[str, float | None] | None) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for httpx's `request.extensions["timeout"]` dict, cached."""
        if spec is None:
            key: tuple[float | None, ...] = (self._connect_timeout, None, None)
        else:
            key = (spec.get("connect"), spec.get("read"), spec.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) >= _MAX_CACHED_TIMEOUTS:
                self._timeouts.clear()
            connect, read, pool = key
            # `connect` bounds waiting for a pooled connection plus connecting, `sock_connect`
            # the TCP/TLS connect alone; `sock_read` is the longest silence between reads.
            found = aiohttp.ClientTimeout(
                total=None,
                connect=None if pool is None or connect is None else pool + connect,
                sock_connect=connect,
                sock_read=read,
            )
            self._timeouts[key] = found
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open_session()
        body: bytes | _RequestBody | None
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            body = _RequestBody(request.stream)
        headers = request.headers
        if "transfer-encoding" in headers:
            headers = headers.copy()
            del headers["transfer-encoding"]  # aiohttp frames a streamed body itself
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers.multi_items(),
                data=body,
                allow_redirects=False,
                timeout=self._timeout_for(request.extensions.get("timeout")),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, request) from None
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _RequestBody:
    """httpx's streamed request body as the async iterable aiohttp sends chunked."""

    __slots__ = ("_stream",)

    def __init__(self, stream: object) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._stream
        if isinstance(stream, httpx.AsyncByteStream):
            async for chunk in stream:
                yield chunk
        elif isinstance(stream, Iterable):
            for chunk in stream:
                yield chunk


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives; closing it before the end drops the connection."""

    __slots__ = ("_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._response.content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self._request) from None
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        # A body received in full went back to the pool already (aiohttp releases it at EOF),
        # so this closes only a connection whose response was not finished.
        self._response.close()

    async def read_all(self) -> bytes | None:
        """The whole body in one read, or None when it must be decoded (httpx does that)."""
        encoding = self._response.headers.get("Content-Encoding")
        if encoding is not None and encoding.lower() != "identity":
            return None
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self._request) from None


async def read_body(response: httpx.Response) -> bytes:
    """`response.aread()`, minus httpx's decoder layers when the body came unencoded.

    The engine asks upstreams for identity encoding, so on the hot path this is one aiohttp
    read; other transports (tests' pytest-httpx) and encoded bodies take httpx's way.
    """
    stream = response.stream
    if isinstance(stream, _ResponseStream):
        body = await stream.read_all()
        if body is not None:
            return body
    return await response.aread()


def _translate(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """httpx's exception for an aiohttp failure. The message never holds the URL: a query
    string may carry a credential."""
    error: httpx.TransportError
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        error = httpx.ConnectError(f"cannot connect to {exc.host}:{exc.port}: {reason}")
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout("timed out connecting to the upstream")
    elif isinstance(exc, aiohttp.SocketTimeoutError):
        error = httpx.ReadTimeout("timed out reading from the upstream")
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        error = httpx.RemoteProtocolError("the upstream closed the connection before answering")
    elif isinstance(exc, aiohttp.ClientPayloadError):
        error = httpx.RemoteProtocolError("the upstream broke off its response")
    elif isinstance(exc, aiohttp.ClientResponseError):
        error = httpx.RemoteProtocolError(f"malformed upstream response: {exc.message}")
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        error = httpx.UnsupportedProtocol("the upstream URL is not a valid http(s) URL")
    elif isinstance(exc, TimeoutError):
        error = httpx.ReadTimeout("timed out waiting for the upstream")
    elif isinstance(exc, aiohttp.ClientOSError):
        error = httpx.ReadError(f"the upstream connection failed: {exc.strerror or exc}")
    else:
        error = httpx.TransportError(f"the upstream request failed: {type(exc).__name__}")
    error.request = request
    return error
