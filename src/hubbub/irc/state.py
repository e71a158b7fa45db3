"""The states of one IRC session (see :mod:`hubbub.irc.client`)."""

from __future__ import annotations

import enum


class State(enum.Enum):
    NEW = "new"
    REGISTERING = "registering"
    REGISTERED = "registered"
    CLOSED = "closed"
