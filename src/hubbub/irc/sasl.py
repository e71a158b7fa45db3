"""SASL for IRC (IRCv3 ``sasl`` 3.1/3.2): the AUTHENTICATE payloads.

The payload is base64, sent in chunks of 400 bytes; a payload whose last chunk
is exactly 400 bytes is followed by ``AUTHENTICATE +`` (and an empty payload is
``+``). Numerics: 900 logged in, 901 logged out, 902 nick locked, 903 success,
904 failure, 905 too long, 906 aborted, 907 already authenticated, 908 the
mechanisms the server offers.
"""

from __future__ import annotations

import base64

from .config import Sasl, SaslMechanism

CHUNK = 400
SUCCESS = {"903"}
FAILURE = {"902", "904", "905", "906"}
ALREADY = "907"
MECHANISMS = "908"


def payload(sasl: Sasl) -> bytes:
    if sasl.mechanism is SaslMechanism.PLAIN:
        # RFC 4616: authzid NUL authcid NUL passwd; authzid left empty.
        return b"\x00" + sasl.username.encode() + b"\x00" + sasl.password.encode()
    return b""  # EXTERNAL: the identity is the TLS client certificate.


def chunks(data: bytes) -> list[str]:
    """AUTHENTICATE arguments carrying ``data``."""
    if not data:
        return ["+"]
    text = base64.b64encode(data).decode("ascii")
    out = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    if len(out[-1]) == CHUNK:
        out.append("+")
    return out


def offered(cap_value: str | None, mechanism: SaslMechanism) -> bool:
    """Whether the ``sasl`` cap value (302: ``PLAIN,EXTERNAL``) allows ``mechanism``.

    An empty value (CAP 301 servers) says nothing: try and see.
    """
    if not cap_value:
        return True
    return mechanism.value in {m.strip().upper() for m in cap_value.split(",")}
