"""One transaction's appends (:class:`Batch`): what the group writer's
statements share on both engines (``writer`` for PostgreSQL and the fallback
path, ``sqlite_writer`` for SQLite's own thread)."""

from __future__ import annotations

from typing import Any

from hubbub.core.errors import NotFound
from hubbub.core.model import AppendResult, Message, NewMessage

from . import rows

Outcome = AppendResult | Exception

# The columns of a new message's row, in the order of ``Batch``'s rows.
COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "ts",
    "sender_id",
    "sender",
    "kind",
    "text",
    "meta",
    "nonce",
    "ext_key",
)
CONVERSATION, SEQ, TS, SENDER = 1, 2, 3, 4  # their positions


class Batch:
    """One transaction's appends: what both engines' statements share.

    Built on the event loop, before the transaction: every message that may
    be stored gets its row here (id, JSON) but for seq and ts. Then, inside
    the transaction:
    ``keys`` (the batch's nonces), ``stored`` for each already stored,
    ``groups``, ``assign`` for each group with its new last seq; ``inserts``
    and ``read_markers`` are then what to write. ``outcomes()`` (on the loop
    again, after the commit) makes the results. The part inside the
    transaction is little Python: on SQLite it runs in aiosqlite's thread,
    where it would contend with the loop for the GIL, and it holds the
    database's write lock.
    """

    def __init__(self, messages: list[NewMessage], ids: list[str], retry: bool) -> None:
        self.messages = messages
        # An earlier try of these messages may have committed: look up ``ids`` too.
        self.retry = retry
        self.ids = ids
        self._outcomes: list[Outcome | None] = [None] * len(messages)
        self._first_of: dict[tuple[int, str], int] = {}
        self._followers: dict[int, int] = {}  # {repeat index: first index}
        self._rows: list[list[Any] | None] = [None] * len(messages)
        self._new: list[int] = []  # indexes stored by this batch, in insert order
        for index, message in enumerate(messages):
            if message.sender_id is not None and message.nonce is not None:
                key = (message.sender_id, message.nonce)
                if key in self._first_of:
                    self._followers[index] = self._first_of[key]
                    continue
                self._first_of[key] = index
            self._rows[index] = [
                ids[index],
                message.conversation_id,
                0,  # seq and
                0,  # ts: set by assign(), under the write lock
                message.sender_id,
                message.sender,
                message.kind.value,
                message.text,
                rows.dump_json(message.meta),
                message.nonce,
                message.ext_key,
            ]

    def keys(self) -> list[tuple[int, str]]:
        """The distinct (sender_id, nonce) pairs to look up."""
        return list(self._first_of)

    def stored(self, row: Any) -> None:
        """A row (with MESSAGE_COLUMNS' attributes) already stored under one of ``keys``."""
        self._outcomes[self._first_of[(row.sender_id, row.nonce)]] = AppendResult(
            rows.message(row), duplicate=True
        )

    def stored_by_us(self, row: Any) -> None:
        """A row (with MESSAGE_COLUMNS' attributes) with one of ``ids``: an earlier
        try of this message committed it. Its caller gets it as new (it is
        theirs), after ``stored()`` (its nonce finds it too)."""
        self._outcomes[self.ids.index(row.id)] = AppendResult(rows.message(row), duplicate=False)

    def groups(self) -> list[tuple[int, list[int]]]:
        """(conversation_id, message indexes) to store, in conversation id order."""
        by_conversation: dict[int, list[int]] = {}
        for index, message in enumerate(self.messages):
            if self._outcomes[index] is None and index not in self._followers:
                by_conversation.setdefault(message.conversation_id, []).append(index)
        return sorted(by_conversation.items())

    def assign(self, conversation_id: int, indexes: list[int], last_seq: Any, ts: int) -> None:
        """The group's seqs end at ``last_seq`` (None: no such conversation)."""
        if last_seq is None:
            missing = NotFound("no such conversation", conversation_id=conversation_id)
            for index in indexes:
                self._outcomes[index] = missing
            return
        seq = int(last_seq) - len(indexes)
        for index in indexes:
            seq += 1
            row = self._rows[index]
            assert row is not None
            row[SEQ] = seq
            row[TS] = ts
        self._new.extend(indexes)

    @property
    def inserts(self) -> list[list[Any]]:
        """The rows to insert, in ascending seq within each conversation."""
        return [self._rows[index] for index in self._new]  # type: ignore[misc]

    def read_markers(self) -> list[dict[str, object]]:
        """A sender has read what they sent: their read marker moves up to it.

        In the same transaction, so unread counts never include your own
        messages (nor your own join). One per (conversation, sender) in the batch.
        """
        newest: dict[tuple[object, object], object] = {}
        for index in self._new:  # ascending seq within each conversation
            row = self._rows[index]
            assert row is not None
            if row[SENDER] is not None:
                newest[(row[CONVERSATION], row[SENDER])] = row[SEQ]
        return [{"c": c, "u": u, "s": s} for (c, u), s in newest.items()]

    def outcomes(self) -> list[Outcome]:
        """After the commit: every message's result, in the batch's order."""
        for index in self._new:
            new, row = self.messages[index], self._rows[index]
            assert row is not None
            self._outcomes[index] = AppendResult(
                Message(
                    id=row[0],
                    conversation_id=new.conversation_id,
                    seq=row[SEQ],
                    ts=row[TS],
                    sender_id=new.sender_id,
                    sender=new.sender,
                    kind=new.kind,
                    text=new.text,
                    meta=new.meta,
                    nonce=new.nonce,
                ),
                duplicate=False,
            )
        for index, leader in self._followers.items():
            first = self._outcomes[leader]
            self._outcomes[index] = (
                AppendResult(first.message, duplicate=True)
                if isinstance(first, AppendResult)
                else first
            )
        done = [outcome for outcome in self._outcomes if outcome is not None]
        assert len(done) == len(self.messages)
        return done
