"""Running behind a reverse proxy: forwarded headers and a base path.

:class:`ProxyMiddleware` sits outermost in the ASGI stack. Rules:

- Forwarded headers are believed only when ``settings.trust_forwarded`` is on
  **and** the TCP peer is in ``settings.trusted_proxies``. Otherwise they are
  removed from the request, so nothing further in can be fooled by them.
- ``Forwarded`` (RFC 7239) wins over the ``X-Forwarded-*`` family when both
  are sent. The client address is found by walking the chain of ``for``
  addresses from the right, skipping trusted proxies (RFC 7239 section 5.2;
  the leftmost entries are whatever the client wrote). Proto and host come
  from the element that named the client (``Forwarded``), or from the last
  value of ``X-Forwarded-Proto``/``X-Forwarded-Host``, which the trusted proxy
  nearest to us wrote.
- The base path (Hubbub living under ``/chat``) comes from the trusted proxy's
  ``X-Request-Base`` (a path, or a full URL as Convos' proxies send it:
  ``https://example.org/chat``, whose scheme and host apply too), else from
  ``settings.base_path``. It becomes the ASGI ``root_path``; a ``path`` that
  arrives without the prefix (a proxy that strips it) gets it put back, since
  ASGI's ``path`` includes ``root_path``. Starlette then routes on the rest,
  and every URL it builds, and every cookie path taken from ``root_path``,
  carries the prefix.
- Bad values (an unknown scheme, a host with a slash, an address that does not
  parse) are ignored one by one; the request goes on with what was valid.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORWARDED_HEADERS = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-base"}
)
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")
_BASE = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+/?$")
_FORWARDED_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


class ProxyMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.trust = settings.trust_forwarded
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self.base_path = settings.base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        client = scope.get("client")
        base = self.base_path
        if self.trust and client and self.is_trusted(client[0]):
            base = self._apply_forwarded(scope) or base
        elif any(name in _FORWARDED_HEADERS for name, _ in scope["headers"]):
            scope["headers"] = [(n, v) for n, v in scope["headers"] if n not in _FORWARDED_HEADERS]
        if base:
            set_base_path(scope, base)
        await self.app(scope, receive, send)

    def is_trusted(self, address: str) -> bool:
        ip = _parse_ip(address)
        return ip is not None and any(ip in net for net in self.trusted)

    def _apply_forwarded(self, scope: Scope) -> str:
        """Apply the trusted proxy's headers to ``scope``; return its base path, if any."""
        headers: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            if name in _FORWARDED_HEADERS:
                headers.setdefault(name, []).append(value.decode("latin-1"))
        if not headers:
            return ""
        proto = host = None
        client: str | None = None
        if b"forwarded" in headers:
            elements = parse_forwarded(",".join(headers[b"forwarded"]))
            chosen = self._client_element(elements)
            if chosen is not None:
                client = _node_address(chosen.get("for", ""))
                proto = chosen.get("proto")
                host = chosen.get("host")
        else:
            if b"x-forwarded-for" in headers:
                chain = _split(headers[b"x-forwarded-for"])
                client = self._client_from_chain(chain)
            if b"x-forwarded-proto" in headers:
                proto = _last(_split(headers[b"x-forwarded-proto"]))
            if b"x-forwarded-host" in headers:
                host = _last(_split(headers[b"x-forwarded-host"]))
        base = ""
        if b"x-request-base" in headers:
            request_base = headers[b"x-request-base"][-1].strip()
            parts = urlsplit(request_base)
            if parts.scheme and parts.netloc:  # a full URL: scheme and host too
                proto, host, base = parts.scheme, parts.netloc, parts.path
            else:
                base = request_base
            base = base.rstrip("/") if is_clean_base(base) else ""
        if client is not None and _parse_ip(client) is not None:
            scope["client"] = (client, 0)
        if proto is not None:
            proto = proto.lower()
            if proto in ("http", "https"):
                secure = proto == "https"
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = proto
        if host is not None and _HOST.match(host):
            scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"host"]
            scope["headers"].append((b"host", host.encode("latin-1")))
        return base

    def _client_element(self, elements: list[dict[str, str]]) -> dict[str, str] | None:
        """The element whose ``for`` is the first untrusted hop, from the right."""
        for element in reversed(elements):
            address = _node_address(element.get("for", ""))
            if not self.is_trusted(address):
                return element
        return elements[0] if elements else None

    def _client_from_chain(self, chain: list[str]) -> str | None:
        for address in reversed(chain):
            if not self.is_trusted(address):
                return address
        return chain[0] if chain else None


def is_clean_base(base: str) -> bool:
    """A path prefix like ``/chat`` or ``/a/b/``: no dot segments, no query."""
    if not _BASE.match(base):
        return False
    return not any(part in (".", "..") for part in base.split("/"))


def set_base_path(scope: Scope, base: str) -> None:
    """Make ``base`` the scope's ``root_path``, with ``path`` including it (ASGI)."""
    scope["root_path"] = base
    path: str = scope["path"]
    if path != base and not path.startswith(base + "/"):
        scope["path"] = base + path
        raw = scope.get("raw_path")
        if raw is not None:
            scope["raw_path"] = base.encode() + raw


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 section 4: ``for=a;proto=https, for="[2001:db8::1]:4711"``."""
    elements: list[dict[str, str]] = []
    for part in _split_outside_quotes(value, ","):
        element: dict[str, str] = {}
        for pair in _split_outside_quotes(part, ";"):
            match = _FORWARDED_PAIR.fullmatch(pair)
            if match is None:
                continue
            key, raw = match.group(1).lower(), match.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            element[key] = raw
        elements.append(element)
    return elements


def _split_outside_quotes(value: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _node_address(node: str) -> str:
    """The address of an RFC 7239 node: ``[v6]:port``, ``v4:port``, ``v4``, ``v6``."""
    node = node.strip()
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _parse_ip(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def _split(values: Iterable[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _last(items: list[str]) -> str | None:
    return items[-1] if items else None
