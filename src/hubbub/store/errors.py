"""The store's own errors, shared by its modules (``base``, ``reads``, ``writer``)."""

from __future__ import annotations

from hubbub.core.errors import HubbubError


class StoreUnavailable(HubbubError):
    """The database cannot be reached or stayed locked too long; try again later."""

    code = "unavailable"
    status = 503


class StoreClosed(StoreUnavailable):
    """The store is closed (or closing) and takes no more appends."""
