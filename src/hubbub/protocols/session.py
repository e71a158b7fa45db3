"""One WebSocket connection's protocol state, without I/O.

Inputs: decoded client text frames (:meth:`Session.receive_text`), bus events
(:meth:`Session.event`), and the results of the work it asked for
(:meth:`Session.fetched`, :meth:`Session.op_done`, :meth:`Session.op_failed`).
Outputs: JSON payloads to send (:meth:`Session.data_to_send`) and actions for
the I/O layer (:meth:`Session.actions_to_run`).

Rules (``docs/protocol.md``, "Positions"):

- Phases run CONNECTING -> AWAIT_RESUME -> LIVE -> CLOSED. In CONNECTING only
  (un)subscribe controls are remembered (the snapshot for ``ready`` is being
  read); ``ready`` moves to AWAIT_RESUME, where no message events are sent; the
  client's ``resume`` moves to LIVE.
- Per conversation the session knows the last seq it sent (``sent``). A live
  event with ``seq == sent + 1`` is sent, ``seq <= sent`` is a duplicate and
  dropped, ``seq > sent + 1`` is a gap: the conversation goes into catch-up.
- Catch-up reads the store after ``sent`` in pages, sends what is next in
  order, and ignores live events meanwhile while remembering the highest seq
  seen (``target``); it goes live once a short page was read and ``sent`` has
  reached ``target``. The store commits before the bus publishes, so whatever
  was seen live is readable.
- Further behind than ``replay_limit``: ``too_far_behind`` with the seq the
  position jumps to; the client pages the rest over REST.

The hot path does not come through here: the fan-out compares and advances
:attr:`Session.live` itself and only hands the session what does not match.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.events import Control, Event, Scope
from ..core.hub import message_payload
from ..core.model import Message
from .wire import (
    BadInput,
    CloseCode,
    ErrorCode,
    Op,
    Ping,
    Read,
    Resume,
    Send,
    Typing,
    dumps,
    error_payload,
    parse_op,
)


class Phase(enum.Enum):
    CONNECTING = "connecting"
    AWAIT_RESUME = "await_resume"
    LIVE = "live"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame: int = 65536  # bytes of one client frame; above: too_large
    replay_limit: int = 2000  # messages replayed per conversation; above: too_far_behind
    page_size: int = 100  # messages per catch-up read
    ops_per_second: float = 20.0  # client frames, averaged
    ops_burst: int = 40
    typing_interval: float = 2.0  # typing ops closer than this are dropped quietly
    max_empty_fetches: int = 5  # catch-up reads without progress before giving up


# -- actions for the I/O layer ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read up to ``limit`` messages after ``after``; answer with :meth:`Session.fetched`."""

    id: int
    conversation: int
    after: int
    limit: int
    delay: float = 0.0  # wait this long first (a retry)


@dataclass(frozen=True, slots=True)
class Call:
    """Run a client op against the Hub; answer with ``op_done`` or ``op_failed``."""

    op: Send | Typing | Read


@dataclass(frozen=True, slots=True)
class Subscribe:
    conversation: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    conversation: int


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = Fetch | Call | Subscribe | Unsubscribe | Close


class _CatchUp:
    __slots__ = ("empty", "fetch_id", "sent", "target")

    def __init__(self, sent: int, target: int, fetch_id: int) -> None:
        self.sent = sent
        self.target = target
        self.fetch_id = fetch_id
        self.empty = 0


class Session:
    """The protocol state of one connection of user ``user_id``.

    ``credential`` is what a REVOKE event names to close this connection: the
    session id for a cookie login, ``"token:<id>"`` for an API token.
    """

    __slots__ = (
        "_actions",
        "_allowance",
        "_catching",
        "_clock",
        "_early",
        "_fetch_ids",
        "_last_op",
        "_out",
        "_start",
        "_typed",
        "credential",
        "limits",
        "live",
        "phase",
        "user_id",
        "user_name",
    )

    def __init__(
        self,
        user_id: int,
        user_name: str,
        credential: str | None,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_id = user_id
        self.user_name = user_name
        self.credential = credential
        self.limits = limits or Limits()
        self.phase = Phase.CONNECTING
        #: conversation id -> last seq sent, for conversations delivering live.
        #: The fan-out reads and advances it directly; never rebind it.
        self.live: dict[int, int] = {}
        self._catching: dict[int, _CatchUp] = {}
        # before resume: conversation id -> (default position, target, must fetch)
        self._start: dict[int, tuple[int, int, bool]] = {}
        self._early: dict[int, Event] = {}  # last (un)subscribe per conversation while CONNECTING
        self._out: list[bytes] = []
        self._actions: list[Action] = []
        self._fetch_ids = 0
        self._clock = clock
        self._allowance = float(self.limits.ops_burst)
        self._last_op = clock()
        self._typed: dict[int, float] | None = None

    # -- outputs ------------------------------------------------------------------
    def data_to_send(self) -> list[bytes]:
        """JSON payloads to send, in order, each one text frame."""
        out, self._out = self._out, []
        return out

    def actions_to_run(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    def subscribed(self, conversation_id: int) -> bool:
        return (
            conversation_id in self.live
            or conversation_id in self._catching
            or conversation_id in self._start
        )

    def conversations(self) -> list[int]:
        """Every conversation this session follows (for the fan-out's index)."""
        return [*self.live, *self._catching, *self._start]

    # -- inputs: lifecycle --------------------------------------------------------
    def start(self, conversations: Iterable[dict[str, Any]], online: list[int]) -> None:
        """The snapshot is read: send ``ready`` and wait for ``resume``.

        ``conversations`` are wire-form conversations (``core.hub.conversation_json``)
        whose ``last_seq`` is no older than the fan-out's own view of it.
        """
        if self.phase is not Phase.CONNECTING:
            return
        views = {c["id"]: c for c in conversations}
        forced: dict[int, int] = {}
        for cid, event in self._early.items():
            if event.control is Control.UNSUBSCRIBE:
                views.pop(cid, None)
            elif cid not in views:  # joined while the snapshot was read: follow from the event
                views[cid] = orjson.loads(event.payload)["conversation"]
                forced[cid] = event.seq or 0
        self._early.clear()
        for cid, view in views.items():
            if cid in forced:
                self._start[cid] = (forced[cid], forced[cid], True)
            else:
                self._start[cid] = (view["last_seq"], view["last_seq"], False)
            self._actions.append(Subscribe(cid))
        self.phase = Phase.AWAIT_RESUME
        self._emit(
            {
                "type": "ready",
                "user": {"id": self.user_id, "name": self.user_name},
                "conversations": list(views.values()),
                "online": online,
                "limits": {
                    "max_frame": self.limits.max_frame,
                    "replay_limit": self.limits.replay_limit,
                },
            }
        )

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.CLOSED
        self._actions.append(Close(code, reason))

    # -- inputs: client frames ------------------------------------------------------
    def receive_text(self, text: str) -> None:
        """One text message from the client."""
        if self.phase is Phase.CLOSED:
            return
        if len(text) > self.limits.max_frame or len(text.encode()) > self.limits.max_frame:
            self._error(ErrorCode.TOO_LARGE, f"a frame is at most {self.limits.max_frame} bytes")
            return
        if not self._allow():
            retry = max(0.001, round((1.0 - self._allowance) / self.limits.ops_per_second, 3))
            self._error(ErrorCode.RATE_LIMITED, "too many frames, slow down", retry_after=retry)
            return
        try:
            op = parse_op(text)
        except BadInput as exc:
            self._error(exc.code, exc.message, nonce=exc.nonce)
            return
        self._dispatch(op)

    def receive_binary(self, size: int) -> None:
        """A binary message: not part of the protocol."""
        if self.phase is Phase.CLOSED:
            return
        if size > self.limits.max_frame:
            self._error(ErrorCode.TOO_LARGE, f"a frame is at most {self.limits.max_frame} bytes")
        else:
            self._error(ErrorCode.BAD_JSON, "frames are JSON in text messages, not binary")

    def _allow(self) -> bool:
        """A token bucket over all client frames (STYLE.md, 7)."""
        now = self._clock()
        limits = self.limits
        self._allowance = min(
            float(limits.ops_burst), self._allowance + (now - self._last_op) * limits.ops_per_second
        )
        self._last_op = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True

    def _dispatch(self, op: Op) -> None:
        if isinstance(op, Ping):
            self._emit(_with_nonce({"type": "pong"}, op.nonce))
            return
        if isinstance(op, Resume):
            if self.phase is not Phase.AWAIT_RESUME:
                self._error(ErrorCode.BAD_FRAME, "resume comes once, first", nonce=op.nonce)
                return
            self._resume(op)
            return
        if self.phase is not Phase.LIVE:
            nonce = op.nonce
            self._error(ErrorCode.NOT_RESUMED, "send resume first", nonce=nonce)
            return
        if isinstance(op, Send):
            self._actions.append(Call(op))
        elif not self.subscribed(op.conversation):
            self._error(
                ErrorCode.NOT_MEMBER, "you are not a member of this conversation", nonce=op.nonce
            )
        elif isinstance(op, Typing):
            now = self._clock()
            typed = self._typed
            if typed is None:
                typed = self._typed = {}
            last = typed.get(op.conversation)
            if last is not None and now - last < self.limits.typing_interval:
                return  # a typing indicator is already showing; nothing to say
            typed[op.conversation] = now
            self._actions.append(Call(op))
        else:
            self._actions.append(Call(op))

    def _resume(self, op: Resume) -> None:
        self.phase = Phase.LIVE
        positions = op.positions
        self._emit(_with_nonce({"type": "resumed"}, op.nonce))
        start, self._start = self._start, {}
        for cid, (default, target, force) in start.items():
            position = positions.get(cid, default)
            if not force:
                position = min(position, target)
            if force or position < target:
                self._catch_up(cid, position, target)
            else:
                self.live[cid] = position

    # -- inputs: results of calls -----------------------------------------------------
    def op_done(self, op: Send | Typing | Read, message: Message | None = None) -> None:
        """A call succeeded; for ``send``, ``message`` is the committed message."""
        if self.phase is Phase.CLOSED or not isinstance(op, Send) or message is None:
            return
        self._emit(
            {
                "type": "ack",
                "nonce": op.nonce,
                "id": message.id,
                "conversation": message.conversation_id,
                "seq": message.seq,
                "ts": message.ts,
            }
        )

    def op_failed(self, op: Send | Typing | Read, code: str, message: str, **details: Any) -> None:
        if self.phase is Phase.CLOSED:
            return
        self._error(code, message, nonce=op.nonce, **details)

    # -- inputs: bus events (the slow path) -------------------------------------------
    def event(self, event: Event) -> bool:
        """An event routed to this connection that the fan-out did not deliver itself.

        Returns whether the event's own frame should be sent, after whatever
        :meth:`data_to_send` now holds.
        """
        phase = self.phase
        if phase is Phase.CLOSED:
            return False
        control = event.control
        if phase is Phase.CONNECTING:
            if control is Control.SUBSCRIBE or control is Control.UNSUBSCRIBE:
                assert event.conversation_id is not None
                self._early[event.conversation_id] = event
            return False
        if control is not None:
            return self._control(event, control)
        seq = event.seq
        if seq is None or event.scope is not Scope.CONVERSATION:
            return True  # typing, presence, read markers: no position, just forwarded
        return self._positioned(event.target, seq)

    def _positioned(self, cid: int, seq: int) -> bool:
        sent = self.live.get(cid)
        if sent is not None:
            if seq <= sent:
                return False  # already sent (replayed, or published twice)
            if seq == sent + 1:
                self.live[cid] = seq
                return True
            # a gap: what lies between is in the store
            del self.live[cid]
            if seq - 1 - sent > self.limits.replay_limit:
                self._too_far_behind(cid, seq - 1)
                self.live[cid] = seq
                return True
            self._catch_up(cid, sent, seq)
            return False
        catching = self._catching.get(cid)
        if catching is not None:
            if seq > catching.target:
                catching.target = seq
            return False
        start = self._start.get(cid)
        if start is not None and seq > start[1]:
            self._start[cid] = (start[0], seq, start[2])
        return False

    def _control(self, event: Event, control: Control) -> bool:
        cid = event.conversation_id
        if control is Control.REVOKE:
            if _revokes(event.payload, self.credential):
                self.close(CloseCode.REVOKED, "session revoked")
            return True
        assert cid is not None
        if control is Control.UNSUBSCRIBE:
            self.live.pop(cid, None)
            self._catching.pop(cid, None)
            self._start.pop(cid, None)
            if self._typed is not None:
                self._typed.pop(cid, None)
            self._actions.append(Unsubscribe(cid))
            return True
        # SUBSCRIBE: follow ``cid`` after ``event.seq``
        if self.subscribed(cid):
            return True  # already following; the frame updates the client's view
        after = event.seq or 0
        self._actions.append(Subscribe(cid))
        if self.phase is Phase.AWAIT_RESUME:
            self._start[cid] = (after, after, True)
        else:
            self._catch_up(cid, after, after)
        return True

    # -- catch-up -------------------------------------------------------------------
    def _catch_up(self, cid: int, sent: int, target: int) -> None:
        if target - sent > self.limits.replay_limit:
            self._too_far_behind(cid, target)
            self.live[cid] = target
            return
        catching = _CatchUp(sent, target, self._next_fetch_id())
        self._catching[cid] = catching
        self._actions.append(Fetch(catching.fetch_id, cid, sent, self.limits.page_size))

    def fetched(self, fetch_id: int, cid: int, messages: list[Message]) -> None:
        """The answer to :class:`Fetch` ``fetch_id``: messages after its ``after``, ascending."""
        catching = self._catching.get(cid)
        if self.phase is Phase.CLOSED or catching is None or catching.fetch_id != fetch_id:
            return  # stale: the conversation was left, or caught up another way
        sent = catching.sent
        for message in messages:
            if message.seq == sent + 1:
                self._out.append(message_payload(message))
                sent = message.seq
            elif message.seq > sent + 1:
                break  # not dense here yet: read again from ``sent``
        progress = sent > catching.sent
        catching.sent = sent
        if sent > catching.target:
            catching.target = sent
        if len(messages) < self.limits.page_size and sent >= catching.target:
            del self._catching[cid]
            self.live[cid] = sent
            return
        if catching.target - sent > self.limits.replay_limit:
            del self._catching[cid]
            self._too_far_behind(cid, catching.target)
            self.live[cid] = catching.target
            return
        self._fetch_again(cid, catching, progress)

    def fetch_failed(self, fetch_id: int, cid: int) -> None:
        """The read for :class:`Fetch` ``fetch_id`` failed; try again later, a few times."""
        catching = self._catching.get(cid)
        if self.phase is Phase.CLOSED or catching is None or catching.fetch_id != fetch_id:
            return
        self._fetch_again(cid, catching, progress=False)

    def _fetch_again(self, cid: int, catching: _CatchUp, progress: bool) -> None:
        if progress:
            catching.empty = 0
        else:
            catching.empty += 1
            if catching.empty > self.limits.max_empty_fetches:
                # What was published cannot be read: let the client page it over REST.
                del self._catching[cid]
                self._too_far_behind(cid, catching.target)
                self.live[cid] = catching.target
                return
        catching.fetch_id = self._next_fetch_id()
        delay = 0.0 if progress else 0.05 * catching.empty
        self._actions.append(
            Fetch(catching.fetch_id, cid, catching.sent, self.limits.page_size, delay)
        )

    def _next_fetch_id(self) -> int:
        self._fetch_ids += 1
        return self._fetch_ids

    def _too_far_behind(self, cid: int, last_seq: int) -> None:
        self._emit({"type": "too_far_behind", "conversation": cid, "last_seq": last_seq})

    # -- helpers ------------------------------------------------------------------------
    def _emit(self, frame: dict[str, Any]) -> None:
        self._out.append(dumps(frame))

    def _error(self, code: str, message: str, *, nonce: str | None = None, **details: Any) -> None:
        self._emit(error_payload(str(code), message, nonce=nonce, **details))


def _with_nonce(frame: dict[str, Any], nonce: str | None) -> dict[str, Any]:
    if nonce is not None:
        frame["nonce"] = nonce
    return frame


def _revokes(payload: bytes, credential: str | None) -> bool:
    """Whether a REVOKE payload names this connection's credential.

    ``{"session": id}`` names a login session, ``{"token": id}`` an API token;
    neither (``{"type": "revoked"}``) revokes every connection of the user.
    """
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(obj, dict):
        return True
    session, token = obj.get("session"), obj.get("token")
    if session is None and token is None:
        return True
    named = str(session) if session is not None else f"token:{token}"
    return credential is not None and named == credential
