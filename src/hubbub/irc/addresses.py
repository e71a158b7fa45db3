"""Which addresses an IRC connection may reach: a guard against SSRF.

A user adding a network chooses a host and a port, so without a guard any
user could make Hubbub open TCP connections into its own network (loopback,
RFC 1918, cloud metadata at 169.254.169.254 …). :func:`refusal` is the one
place that classifies an address (pure, :mod:`ipaddress` only);
:func:`resolve` resolves a host and checks *every* address it gets, so the
caller connects to an address that was checked (never to the name again: a
second lookup could answer differently, DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressNotAllowed(Exception):
    """The host is, or resolves to, an address connections may not go to."""


def refusal(address: str | IPAddress) -> str | None:
    """Why connecting out to ``address`` is refused (e.g. ``"a loopback address"``),
    or ``None`` for a public (globally routable unicast) address.

    IPv6 addresses that carry an IPv4 address (v4-mapped ``::ffff:a.b.c.d``,
    6to4, NAT64 ``64:ff9b::/96``) are judged by that IPv4 address as well.
    A string that is not an IP address raises ``ValueError``.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            why = refusal(embedded)
            if why is not None:
                return why
            if ip.ipv4_mapped is not None:
                return None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "not a public address"
    return None


def literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (``[::1]`` too), else ``None``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses of ``host`` to connect to, in the resolver's order.

    Unless ``allow_private``, every address is checked and one refused address
    refuses the host (:class:`AddressNotAllowed`, whose message says why).
    A failed lookup raises ``OSError`` (``socket.gaierror``).
    """
    name = host.strip("[]")
    if literal(name) is not None:
        addresses = [name]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise socket.gaierror(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            why = refusal(address.partition("%")[0])
            if why is not None:
                what = f"is {why}" if address == name else f"resolves to {address}, {why}"
                raise AddressNotAllowed(
                    f"{host} {what}: connecting there is not allowed on this server"
                )
    return addresses
