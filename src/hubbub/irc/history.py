"""Gap filling after a reconnect: what to ask for, and what to drop as seen.

After a reconnect the client asks ``CHATHISTORY AFTER`` each conversation's
last stored message (by msgid, else by timestamp), or ``LATEST`` when nothing
is stored. The server may return messages we already have (ours, a timestamp
anchor at second precision, a live line that raced the batch), so every
history message is checked against the keys of what is stored.

The key of a message is its ``msgid`` when there is one (IRCv3 message-ids:
unique per network), else its time (to the millisecond), sender, kind and
text. Both kinds of key are recorded for messages with a msgid, so a stored
line without msgid still matches its replay with one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from .events import Message

#: Keys remembered per conversation (the recent tail is all a gap can overlap).
DEFAULT_KEEP = 1000


def content_key(msg: Message) -> str:
    t = (
        msg.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{msg.time.microsecond // 1000:03d}"
    )
    return f"t:{t}\x00{msg.nick.lower()}\x00{msg.kind.value}\x00{msg.text}"


def keys(msg: Message) -> tuple[str, ...]:
    if msg.msgid:
        return (f"id:{msg.msgid}", content_key(msg))
    return (content_key(msg),)


def format_time(t: datetime) -> str:
    """IRCv3 server-time format: ``YYYY-MM-DDThh:mm:ss.sssZ``."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Anchor:
    """The last message stored for a conversation."""

    msgid: str | None
    time: datetime


def chathistory_params(target: str, anchor: Anchor | None, limit: int) -> list[str]:
    """Parameters of the ``CHATHISTORY`` command that fills the gap after ``anchor``."""
    if anchor is None:
        return ["LATEST", target, "*", str(limit)]
    ref = f"msgid={anchor.msgid}" if anchor.msgid else f"timestamp={format_time(anchor.time)}"
    return ["AFTER", target, ref, str(limit)]


class SeenSet:
    """Bounded record of message keys per conversation."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.keep = keep
        self._seen: dict[str, OrderedDict[str, None]] = {}
        self._anchors: dict[str, Anchor] = {}

    def add(self, conversation: str, msg: Message) -> None:
        conv = conversation.lower()
        seen = self._seen.setdefault(conv, OrderedDict())
        for key in keys(msg):
            seen[key] = None
            seen.move_to_end(key)
        while len(seen) > self.keep:
            seen.popitem(last=False)
        anchor = self._anchors.get(conv)
        if anchor is None or msg.time >= anchor.time:
            self._anchors[conv] = Anchor(msg.msgid, msg.time)

    def seen(self, conversation: str, msg: Message) -> bool:
        seen = self._seen.get(conversation.lower())
        return seen is not None and any(k in seen for k in keys(msg))

    def filter_new(self, conversation: str, messages: tuple[Message, ...]) -> list[Message]:
        """The messages not seen before, in order; each is recorded as seen."""
        fresh: list[Message] = []
        for msg in messages:
            if not self.seen(conversation, msg):
                fresh.append(msg)
                self.add(conversation, msg)
        return fresh

    def anchor(self, conversation: str) -> Anchor | None:
        return self._anchors.get(conversation.lower())

    def forget(self, conversation: str) -> None:
        self._seen.pop(conversation.lower(), None)
        self._anchors.pop(conversation.lower(), None)
