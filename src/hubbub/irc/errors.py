"""Errors of the IRC client.

Every error raised by ``hubbub.irc`` derives from :class:`IRCError`::

    IRCError
    ├── ProtocolError        the server broke the protocol (garbage, endless line)
    │   └── LineTooLong      a line longer than the bound, or a buffer without end
    ├── SendError            a line we were asked to send cannot be sent
    │   ├── SendQueueFull    the bounded send queue is full
    │   └── NotConnected     the client is not registered / has no connection
    └── ConnectError         TCP or TLS could not be set up
        ├── TLSVerifyError   the server's certificate was refused
        └── AddressRefused   the host is (or resolves to) a refused address

Foreign exceptions (``OSError``, ``ssl.SSLError``, irctokens' ``ValueError``)
are translated at the boundary and chained with ``raise ... from``.
"""

from __future__ import annotations


class IRCError(Exception):
    """Root of every error of the IRC client."""


class ProtocolError(IRCError):
    """The server sent something that breaks the IRC protocol."""


class LineTooLong(ProtocolError):
    """A received line (or the unterminated rest of the buffer) passed the bound."""


class SendError(IRCError):
    """A line cannot be sent."""


class SendQueueFull(SendError):
    """The bounded send queue is full; the caller sends faster than the throttle."""


class NotConnected(SendError):
    """There is no registered connection to send on."""


class ConnectError(IRCError):
    """TCP or TLS could not be set up."""


class TLSVerifyError(ConnectError):
    """The server's certificate failed verification (and self-signed is not allowed)."""


class AddressRefused(ConnectError):
    """The host is, or resolves to, an address connections may not go to (loopback,
    private, link-local …; :mod:`hubbub.irc.addresses`). Final: retrying cannot fix it."""
