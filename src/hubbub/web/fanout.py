"""Fan-out: every bus event to the WebSocket connections that should see it.

The hot path of the server (issue 2, "Performance constraints"; DESIGN.md,
"Flow of one message", 5):

- each event's frame is built **once** (:func:`~hubbub.protocols.wire.text_frame`)
  and the same ``bytes`` object is appended to every receiving connection's
  ``pending`` list; per delivery the work is one dict lookup, one compare, one
  store and one list append;
- connections with pending frames are flushed **once per event-loop pass**
  (one ``loop.call_soon`` for all of them), with one ``write`` per socket;
- each socket's buffer is bounded: past ``send_buffer`` bytes still queued
  after a flush, the connection is closed with 4008 "too slow" and the client
  recovers by reconnecting and resuming.

Anything the hot path cannot decide (a gap, a duplicate, a control event, a
connection still waiting for ``resume``) goes to the connection's
:class:`~hubbub.protocols.session.Session`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from ..core.events import Control, Event, Scope
from ..protocols.session import (
    Action,
    Close,
    Session,
    Subscribe,
    Unsubscribe,
)
from ..protocols.wire import CloseCode, text_frame
from .auth import CredentialCache


class FrameWriter(Protocol):
    """Where a connection's bytes go: the raw transport, or ASGI ``send`` as a fallback."""

    def write_frames(self, data: bytes) -> int:
        """Queue pre-built frames; return how many bytes are still buffered (a
        writer may say 0 for any amount up to the fan-out's ``send_buffer``)."""

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame after what was written, then end the connection."""


class Connection:
    """One WebSocket connection as the fan-out sees it.

    Subclasses run the actions that need I/O (:meth:`run`): store reads for
    catch-up and calls into the Hub.
    """

    __slots__ = (
        "closed",
        "fanout",
        "live",
        "owed",
        "pending",
        "room",
        "session",
        "started",
        "writer",
    )

    def __init__(self, fanout: Fanout, session: Session, writer: FrameWriter) -> None:
        self.fanout = fanout
        self.session = session
        self.live = session.live  # the hot path's view of the session's positions
        self.writer = writer
        self.pending: list[bytes] = []
        self.closed = False
        self.started = False  # ``ready`` was sent: events without positions go straight out
        #: the room this connection is in step with (see :class:`Room`), or None
        self.room: Room | None = None
        #: bytes of the room's shared frames a pass owes this connection, not yet written
        self.owed: bytes | None = None

    def start(self, conversations: list[dict[str, Any]], online: list[int]) -> None:
        """Start the session on its snapshot and send ``ready`` (no await in between)."""
        self.session.start(conversations, online)
        self.started = True
        self.drain()

    def settle(self) -> None:
        """Leave the room's shared delivery: its frames become this connection's
        pending frames and the session's position is brought up to date. Called
        before anything reads the session or queues a frame of its own."""
        if self.room is not None:
            self.fanout.settle(self)

    # called by the fan-out -------------------------------------------------------
    def deliver_slow(self, event: Event, frame: bytes) -> None:
        """An event the hot path could not decide on: the session decides."""
        self.settle()
        self.drain(frame if self.session.event(event) else None)

    # output ----------------------------------------------------------------------
    def push(self, frame: bytes) -> None:
        if self.closed:
            return
        self.settle()
        pending = self.pending
        if not pending:
            self.fanout.mark_dirty(self)
        pending.append(frame)

    def drain(self, frame: bytes | None = None) -> None:
        """Send the session's output, then ``frame``, then run its actions."""
        self.settle()
        session = self.session
        for payload in session.data_to_send():
            self.push(text_frame(payload))
        if frame is not None:
            self.push(frame)
        for action in session.actions_to_run():
            self.act(action)

    def reply(self) -> None:
        """Send the session's answer to a client frame or to an op's result, then
        run its actions; a connection in step with a room stays in it.

        What the session says there is its own (``ack``, ``pong``, ``error``),
        never an event, and it reads no position to say it
        (``tests/protocol/test_session_positions.py``), so nothing is settled:
        the frames wait in ``pending`` and go out after what the room owes the
        connection, in the same write (:meth:`Fanout.settle` and the flush keep
        them behind it). An ``ack`` may come before or after its message's
        event (``docs/protocol.md``): here it may follow events of the room
        published after it, and never precedes one published before it.
        """
        session = self.session
        out = session.data_to_send()
        if out and not self.closed:
            pending = self.pending
            if not pending:
                self.fanout.mark_dirty(self)
            for payload in out:
                pending.append(text_frame(payload))
        for action in session.actions_to_run():
            self.act(action)

    def act(self, action: Action) -> None:
        if isinstance(action, Subscribe):
            self.fanout.subscribe(self, action.conversation)
        elif isinstance(action, Unsubscribe):
            self.fanout.unsubscribe(self, action.conversation)
        elif isinstance(action, Close):
            self.close(action.code, action.reason)
        else:
            self.run(action)

    def run(self, action: Action) -> None:
        """Start an action that needs I/O (catch-up reads, Hub calls)."""
        raise NotImplementedError

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Leave the fan-out and close the socket, after what is pending unless ``flush`` is false."""
        if self.closed:
            return
        self.settle()
        self.session.close(code, reason)
        self.session.actions_to_run()  # the Close just queued: this is it
        self.fanout.remove(self)
        self.closed = True
        pending, self.pending = self.pending, []
        if flush and pending:
            self.writer.write_frames(b"".join(pending))
        self.writer.close_now(code, reason)

    def lost(self) -> None:
        """The socket is gone: stop everything without writing."""
        if self.closed:
            return
        self.settle()
        self.session.close(CloseCode.NORMAL, "")
        self.session.actions_to_run()
        self.fanout.remove(self)
        self.closed = True
        self.pending = []


class Room:
    """The connections of one conversation, as the hot path sees them.

    ``steady`` connections are in step with the room: live in it, no event
    pending of their own (only their own answers may wait, see
    :meth:`Connection.reply`), not steady in another room, since before the
    first of the frames the room holds. The hot path does no work
    per steady connection per event: the room keeps the pass's frames once
    (``frames``, the seqs up to ``seq``) and the flush writes their join to
    each of them, as the C ceiling writes its one pass buffer. Their session
    positions are not touched meanwhile; :meth:`Fanout.settle` brings one up to
    date (position ``seq``, shared frames moved to its own pending list,
    before its answers) before anything reads its session or queues an event
    for it, so a connection still gets every event once and in order. The others go
    through the per-connection path, and join ``steady`` when they are found
    in step with nothing pending.
    """

    __slots__ = ("cid", "dirty", "frames", "others", "seq", "steady")

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.others: set[Connection] = set()
        self.steady: set[Connection] = set()
        self.frames: list[bytes] = []
        self.seq = 0  # the position of every steady connection, ``frames`` included
        self.dirty = False


class Fanout:
    """Routes bus events to connections; register :meth:`on_event` as a bus listener."""

    #: sockets written per event-loop callback (see :meth:`flush`)
    slice_size = 128

    def __init__(self, *, send_buffer: int = 1 << 20) -> None:
        self.send_buffer = send_buffer
        self.conversations: dict[int, set[Connection]] = {}
        self.users: dict[int, set[Connection]] = {}
        self.everyone: set[Connection] = set()
        #: highest seq published per conversation, as seen by this process: a
        #: connection's starting position is never older than this (no missed
        #: event between reading the snapshot and subscribing).
        self.last_seq: dict[int, int] = {}
        #: credentials of recent WebSocket upgrades; revocations (below) clear them
        self.credentials = CredentialCache()
        self.rooms: dict[int, Room] = {}
        self._dirty: list[Connection] = []
        self._dirty_rooms: list[Room] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # membership -----------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        """Start routing the user's and everyone's events to ``conn``."""
        self.everyone.add(conn)
        self.users.setdefault(conn.session.user_id, set()).add(conn)

    def remove(self, conn: Connection) -> None:
        self.everyone.discard(conn)
        user = self.users.get(conn.session.user_id)
        if user is not None:
            user.discard(conn)
            if not user:
                del self.users[conn.session.user_id]
        for cid in conn.session.conversations():
            self.unsubscribe(conn, cid)

    def subscribe(self, conn: Connection, conversation_id: int) -> None:
        conns = self.conversations.get(conversation_id)
        if conns is None:
            conns = self.conversations[conversation_id] = set()
            self.rooms[conversation_id] = Room(conversation_id)
        conns.add(conn)
        self.rooms[conversation_id].others.add(conn)

    def unsubscribe(self, conn: Connection, conversation_id: int) -> None:
        conns = self.conversations.get(conversation_id)
        if conns is not None:
            room = self.rooms[conversation_id]
            if conn.room is room:
                self.settle(conn)
            conns.discard(conn)
            room.others.discard(conn)
            if not conns:
                del self.conversations[conversation_id]
                del self.rooms[conversation_id]

    def settle(self, conn: Connection) -> None:
        """``conn`` leaves its room's shared delivery (see :class:`Room`)."""
        room = conn.room
        if room is None:
            return
        conn.room = None
        room.steady.discard(conn)
        room.others.add(conn)
        # What the room owes it goes before its own answers queued meanwhile
        # (:meth:`Connection.reply`), in place: callers hold the list.
        pending = conn.pending
        answers = len(pending)
        owed = conn.owed
        if owed is not None:
            conn.owed = None
            pending.append(owed)
        if room.frames:
            pending.extend(room.frames)
            if not room.steady:
                room.frames = []
        if answers and len(pending) > answers:
            pending[:] = pending[answers:] + pending[:answers]
        live = conn.live
        if room.cid in live:
            live[room.cid] = room.seq
        if pending and not answers:
            self.mark_dirty(conn)

    def known_seq(self, conversation_id: int) -> int:
        return self.last_seq.get(conversation_id, 0)

    def connection_count(self) -> int:
        return len(self.everyone)

    # the hot path -----------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Bus listener: called in the event loop for every event of every process."""
        scope = event.scope
        if scope is Scope.CONVERSATION:
            cid = event.target
            seq = event.seq
            if seq is not None and seq > self.last_seq.get(cid, 0):
                self.last_seq[cid] = seq
            room = self.rooms.get(cid)
            if room is None:
                return
            frame = text_frame(event.payload)
            dirty = self._dirty
            steady = room.steady
            promote: list[Connection] | None = None
            if seq is None:  # typing: no position
                for conn in room.others:
                    pending = conn.pending
                    if conn.room is not None:
                        self.settle(conn)  # steady in another room: its frames first
                    if not pending:
                        dirty.append(conn)
                    pending.append(frame)
            else:
                prev = seq - 1
                if steady and room.seq != prev:
                    # not the next seq: every connection's session decides
                    for conn in tuple(steady):
                        self.settle(conn)
                if not steady:
                    room.seq = prev
                # Join ``steady`` only at the start of the room's pass: the frames
                # already held are owed to the connections steady before them.
                can_promote = not room.frames
                for conn in room.others:
                    live = conn.live
                    if live.get(cid) == prev:
                        live[cid] = seq
                        pending = conn.pending
                        if conn.room is not None:
                            self.settle(conn)  # steady in another room: its frames first
                        elif can_promote and not pending:
                            if promote is None:
                                promote = [conn]
                            else:
                                promote.append(conn)
                            continue
                        if not pending:
                            dirty.append(conn)
                        pending.append(frame)
                    else:
                        conn.deliver_slow(event, frame)
                if promote is not None:
                    others = room.others
                    for conn in promote:
                        others.discard(conn)
                        conn.room = room
                    steady.update(promote)
            if steady:
                room.frames.append(frame)
                if seq is not None:
                    room.seq = seq
                if not room.dirty:
                    room.dirty = True
                    self._dirty_rooms.append(room)
        else:
            if event.control is Control.REVOKE:
                if scope is Scope.USER:
                    self.credentials.forget_user(event.target)
                else:
                    self.credentials.clear()
            targets = self.users.get(event.target) if scope is Scope.USER else self.everyone
            if not targets:
                return
            frame = text_frame(event.payload)
            if event.control is None:
                # presence, read markers: forwarded to every connection past ``ready``
                dirty = self._dirty
                for conn in targets:
                    if conn.started:
                        pending = conn.pending
                        if conn.room is not None:
                            self.settle(conn)  # its room's frames (and its answers) first
                        if not pending:
                            dirty.append(conn)
                        pending.append(frame)
                    else:
                        conn.deliver_slow(event, frame)
            else:
                # a control: the session decides, and may close or (un)subscribe
                for conn in tuple(targets):
                    conn.deliver_slow(event, frame)
        if (self._dirty or self._dirty_rooms) and not self._scheduled:
            self._schedule()

    def mark_dirty(self, conn: Connection) -> None:
        """``conn`` has its first pending frame of this pass (outside :meth:`on_event`)."""
        self._dirty.append(conn)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self._scheduled = True
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every connection's pending frames, one write per socket.

        The writes of one pass go out in slices of :attr:`slice_size` sockets,
        one event-loop callback each: between two slices the loop runs what
        became ready meanwhile, above all the store's commit steps (each
        statement of a transaction is a round trip through the loop), so the
        next message's commit does not wait for 5000 writes several times over.
        A connection keeps its place: frames that arrive for it before its
        slice runs join its pending list and go out in the same write, in order.
        """
        self._scheduled = False
        rooms, self._dirty_rooms = self._dirty_rooms, []
        owing: list[list[Connection]] = []
        for room in rooms:
            room.dirty = False
            frames = room.frames
            if not frames:
                continue
            room.frames = []
            data = b"".join(frames)
            conns = list(room.steady)
            for conn in conns:
                owed = conn.owed
                conn.owed = data if owed is None else owed + data
            owing.append(conns)
        # The connections with frames of their own first: a steady one among
        # them writes what the room owes it and its answers in one write.
        dirty, self._dirty = self._dirty, []
        self._write(dirty, 0)
        for conns in owing:
            self._write_owed(conns, 0)

    def _write_owed(self, conns: list[Connection], start: int) -> None:
        """Write the room's shared bytes to its steady connections, a slice at a time."""
        limit = self.send_buffer
        end = start + self.slice_size
        if end < len(conns):
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._write_owed, conns, end)
        for conn in conns[start:end]:
            data = conn.owed
            if data is None:  # settled since, or written with a later pass
                continue
            conn.owed = None
            if conn.writer.write_frames(data) > limit:
                conn.close(CloseCode.TOO_SLOW, "too slow", flush=False)

    def _write(self, dirty: list[Connection], start: int) -> None:
        limit = self.send_buffer
        end = start + self.slice_size
        if end < len(dirty):
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._write, dirty, end)
        # Connections of one room usually have the very same frames pending in a
        # pass (the same bytes objects, in the same order): join them once. The
        # list compare is by identity first, in C: much cheaper than a join.
        last: list[bytes] = []
        data = b""
        for conn in dirty[start:end]:
            pending = conn.pending
            if not pending:
                continue
            room = conn.room
            if room is not None:
                # Steady, with answers of its own (Connection.reply): they follow
                # what the room owes it, in the same write; unless the room holds
                # frames not handed over yet (an earlier pass's slice running
                # late), which may be older than the answers: settle first.
                if room.frames:
                    self.settle(conn)
                else:
                    conn.pending = []
                    owed = conn.owed
                    own = b"".join(pending)
                    if owed is not None:
                        conn.owed = None
                        own = owed + own
                    if conn.writer.write_frames(own) > limit:
                        conn.close(CloseCode.TOO_SLOW, "too slow", flush=False)
                    continue
            if pending != last:
                data = b"".join(pending)
                last = pending
            conn.pending = []
            if conn.writer.write_frames(data) > limit:
                conn.close(CloseCode.TOO_SLOW, "too slow", flush=False)
