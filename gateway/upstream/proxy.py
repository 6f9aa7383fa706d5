"""An egress proxy for upstream calls: each connection is a CONNECT tunnel through it.

`--upstream-proxy http://[user:password@]host:port` sends every upstream connection through
the proxy, except to hosts on `--no-proxy` (a comma list: exact names or addresses, and
domain suffixes, `example.com` matching `api.example.com` too; by default the local host,
where Ollama and vLLM usually run). A tunnel carries TLS end to end: the proxy sees the
host and port, never the requests or the upstream credentials. The proxy URL is never put in
a log line or an error (it may carry a password).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_NO_PROXY = "localhost,127.0.0.1,::1"


class ProxyConfigError(ValueError):
    """The proxy setting cannot be used (the message never repeats its password)."""


@dataclass(frozen=True, slots=True)
class UpstreamProxy:
    host: str
    port: int
    authorization: bytes | None
    """The Proxy-Authorization header's value, from the URL's user and password."""
    no_proxy: tuple[str, ...]

    @classmethod
    def parse(cls, url: str, no_proxy: str = DEFAULT_NO_PROXY) -> UpstreamProxy:
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            raise ProxyConfigError("the upstream proxy is not a valid URL") from None
        if parts.scheme != "http" or not parts.hostname:
            raise ProxyConfigError(
                "the upstream proxy must be an http:// URL with a host, e.g. "
                "http://proxy.internal:3128 (upstream TLS goes through it in a tunnel)"
            )
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization = b"Basic " + base64.b64encode(pair)
        # curl's reading: a leading dot changes nothing, a suffix matches its subdomains
        hosts = tuple(
            h.strip().lower().strip("[]").lstrip(".") for h in no_proxy.split(",") if h.strip()
        )
        return cls(parts.hostname, port, authorization, hosts)

    def applies_to(self, host: str) -> bool:
        """Whether a connection to `host` goes through the proxy."""
        host = host.lower().strip("[]")
        for entry in self.no_proxy:
            if entry == "*" or host == entry or host.endswith("." + entry):
                return False
        return True

    def connect_request(self, host: str, port: int) -> bytes:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode()
        if self.authorization is not None:
            head += b"Proxy-Authorization: " + self.authorization + b"\r\n"
        return head + b"\r\n"
