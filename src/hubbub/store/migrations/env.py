"""Alembic environment: run only programmatically, by ``hubbub.store.migrate``.

The caller hands over an open connection in ``config.attributes["connection"]``
(inside a transaction it commits), so there is no ini file and no URL here.
"""

from __future__ import annotations

from alembic import context

from hubbub.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with hubbub.store.migrate(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
