"""Reading messages: history pages and full-text search.

Appending is the group-commit writer's job (``writer.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa

from hubbub.core.model import Message

from . import rows
from . import schema as t
from .base import StoreBase

msg = t.messages

MAX_PAGE = 1000
MAX_TERMS = 16
_WORD = re.compile(r"\w")


def search_terms(query: str) -> list[str]:
    """The words of a user's query: whitespace-separated, each with a letter or digit.

    Terms without one would match nothing anyway (both engines drop punctuation).
    """
    words = query.replace("\x00", " ").split()  # PostgreSQL text cannot hold NUL
    return [word for word in words if _WORD.search(word)][:MAX_TERMS]


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: every term a quoted string, all required.

    Quoting makes ``*``, ``NEAR(``, ``AND``, ``-`` and quotes plain text, so no
    user input becomes FTS5 syntax (https://sqlite.org/fts5.html#fts5_strings).
    """
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


_PAGE = sa.select(*rows.MESSAGE_COLUMNS).where(msg.c.conversation_id == sa.bindparam("cid"))
_AFTER = (
    _PAGE.where(msg.c.seq > sa.bindparam("seq")).order_by(msg.c.seq).limit(sa.bindparam("limit"))
)
_BEFORE = (
    _PAGE.where(msg.c.seq < sa.bindparam("seq"))
    .order_by(msg.c.seq.desc())
    .limit(sa.bindparam("limit"))
)
_LATEST = _PAGE.order_by(msg.c.seq.desc()).limit(sa.bindparam("limit"))


class MessageQueries(StoreBase):
    async def history(
        self,
        conversation_id: int,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """Messages in ascending seq: the newest ``limit`` below ``before``, or
        the oldest ``limit`` above ``after`` (``after`` wins when both are set);
        with neither, the newest ``limit``."""
        limit = max(0, min(limit, MAX_PAGE))
        if limit == 0:
            return []
        # Compiled once, and on SQLite a read connection of its own (StoreBase._fetch):
        # every resuming client reads here, a reconnect storm thousands of times a second.
        if after is not None:
            params = {"seq": after}
            stmt = _AFTER
        elif before is not None:
            params = {"seq": before}
            stmt = _BEFORE
        else:
            params = {}
            stmt = _LATEST
        found = [
            rows.message(row)
            for row in await self._fetch(stmt, cid=conversation_id, limit=limit, **params)
        ]
        if after is None:
            found.reverse()
        return found

    async def search(
        self, conversation_ids: Sequence[int], query: str, *, limit: int = 50
    ) -> list[Message]:
        """Messages in those conversations with every word of ``query``, newest first."""
        terms = search_terms(query)
        limit = max(0, min(limit, MAX_PAGE))
        ids = sorted(set(conversation_ids))
        if not terms or not ids or limit == 0:
            return []
        stmt = sa.select(*rows.MESSAGE_COLUMNS).where(msg.c.conversation_id.in_(ids))
        if self._sqlite:
            # Ordered by the FTS rowid (= messages.pk), not by messages.pk: FTS5 then
            # walks its doclist newest first and stops after ``limit`` rows in these
            # conversations, instead of sorting every match (55 ms -> 0.1 ms for a
            # word in every 10th of 1M messages; docs/performance.md, scenario 4).
            fts = sa.table("messages_fts", sa.column("rowid"))
            stmt = (
                stmt.join(fts, fts.c.rowid == msg.c.pk)
                .where(
                    sa.text("messages_fts MATCH :fts_query").bindparams(fts_query=fts5_query(terms))
                )
                .order_by(fts.c.rowid.desc())
            )
        else:
            # plainto_tsquery takes any text: words, all required, no syntax.
            stmt = stmt.where(
                sa.text("messages.text_tsv @@ plainto_tsquery('simple', :pg_query)").bindparams(
                    pg_query=" ".join(terms)
                )
            )
            stmt = stmt.order_by(msg.c.pk.desc())
        stmt = stmt.limit(limit)
        async with self._read() as conn:
            return [rows.message(row) for row in await conn.execute(stmt)]
