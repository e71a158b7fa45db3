"""What the catch-up cache (:class:`~hubbub.core.tail.HistoryTail`) keeps per conversation.

A :class:`Tail` is one conversation's cached run of messages, ``lo .. hi``,
with their estimated sizes, its end-check task and the next end check
(:class:`Round`) that waiters join; :func:`dense` tells whether a store read
is such a run. The rules they serve are in :mod:`.tail`.
"""

from __future__ import annotations

import asyncio

from .model import Message

ENTRY_OVERHEAD = 512  # bytes per conversation, besides its messages


class Round:
    """One end check: the waiters that arrived before its read starts, and its answer."""

    __slots__ = ("done", "empty", "lo", "lowest", "messages", "ok")

    def __init__(self, after: int) -> None:
        self.done = asyncio.Event()
        self.lowest = after  # the position of the waiter furthest behind
        self.ok = False  # the read reached the end: ``messages`` run from ``lo`` to it
        self.empty = False  # the store had nothing after ``lowest``
        self.messages: list[Message] = []
        self.lo = 0


class Tail:
    """One conversation's cached run, ``lo .. hi``, and its end checks."""

    __slots__ = (
        "built",
        "checked",
        "conversation_id",
        "dead",
        "lo",
        "messages",
        "next_round",
        "size",
        "sizes",
        "task",
    )

    def __init__(self, conversation_id: int, built: float) -> None:
        self.conversation_id = conversation_id
        self.built = built
        # messages[i].seq == lo + i. Never changed in place, only replaced: a
        # round's answer keeps the list it confirmed.
        self.messages: list[Message] = []
        self.sizes: list[int] = []
        self.lo = 0
        self.size = ENTRY_OVERHEAD
        self.dead = False  # dropped: results of reads in flight are thrown away
        self.next_round: Round | None = None
        self.task: asyncio.Task[None] | None = None
        self.checked = float("-inf")  # loop time the last end check ended

    @property
    def hi(self) -> int:
        return self.lo + len(self.messages) - 1


class NotConfirmed(Exception):
    """An end check that did not reach the end: its waiters read the store."""


def dense(messages: list[Message], first: int, conversation_id: int) -> bool:
    """Whether ``messages`` are the conversation's run from seq ``first``, without a gap."""
    return all(
        m.seq == first + i and m.conversation_id == conversation_id for i, m in enumerate(messages)
    )
