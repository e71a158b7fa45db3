"""Persistent state: the ``Store`` on SQLite (default, WAL) or PostgreSQL.

::

    store = open_store(settings.effective_database_url())
    await store.start()      # migrates to head, starts the group-commit writer
    ...
    await store.close()      # commits queued appends, disposes the engine

``migrate(url)`` upgrades a database without opening a store (e.g. from the CLI).
"""

from __future__ import annotations

from .errors import StoreClosed, StoreUnavailable
from .migrate import migrate
from .sql import SqlStore, open_store

__all__ = ["SqlStore", "StoreClosed", "StoreUnavailable", "migrate", "open_store"]
