"""The fan-out's hot path without sockets: one frame per event, shared; one
write per socket per loop pass; the buffer bound."""

from __future__ import annotations

import asyncio

import orjson

from hubbub.core.events import Event, Scope
from hubbub.core.model import Message, MessageKind
from hubbub.protocols.session import Session
from hubbub.protocols.wire import frame_payloads, text_frame
from hubbub.web.fanout import Connection, Fanout


class FakeWriter:
    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.buffered = buffered

    def write_frames(self, data: bytes) -> int:
        self.writes.append(data)
        return self.buffered

    def close_now(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class FakeConnection(Connection):
    __slots__ = ("ran",)

    def __init__(self, fanout: Fanout, session: Session, writer: FakeWriter) -> None:
        super().__init__(fanout, session, writer)
        self.ran: list[object] = []

    def run(self, action: object) -> None:  # type: ignore[override]
        self.ran.append(action)


def live_connection(
    fanout: Fanout, user_id: int, cid: int, seq: int, buffered: int = 0
) -> tuple[FakeConnection, FakeWriter]:
    session = Session(user_id, f"u{user_id}", None)
    writer = FakeWriter(buffered)
    conn = FakeConnection(fanout, session, writer)
    fanout.add(conn)
    conn.start([{"id": cid, "last_seq": seq}], [])
    session.receive_text('{"op":"resume"}')
    conn.drain()
    return conn, writer


def message(cid: int, seq: int) -> Event:
    return Event(
        Scope.CONVERSATION, cid, b'{"type":"message","seq":%d}' % seq, conversation_id=cid, seq=seq
    )


async def test_one_frame_per_event_shared_and_one_write_per_pass() -> None:
    fanout = Fanout()
    conns = [live_connection(fanout, uid, 3, 0) for uid in range(1, 6)]
    await asyncio.sleep(0)  # ready + resumed flushed
    for _, w in conns:
        w.writes.clear()
    for seq in (1, 2, 3):
        fanout.on_event(message(3, seq))
    # all five are in step: the room holds the three frames once, for all of them
    room = fanout.rooms[3]
    assert room.steady == {c for c, _ in conns} and not room.others
    assert len(room.frames) == 3 and all(not c.pending for c, _ in conns)
    await asyncio.sleep(0)
    for c, w in conns:
        assert len(w.writes) == 1 and not c.pending
        assert frame_payloads(w.writes[0]) == [
            b'{"type":"message","seq":%d}' % s for s in (1, 2, 3)
        ]
        c.settle()  # the session's position is brought up to date before it is read
        assert c.live == {3: 3} and not c.pending
    assert fanout.known_seq(3) == 3


async def test_gaps_and_duplicates_go_to_the_session() -> None:
    fanout = Fanout()
    conn, writer = live_connection(fanout, 1, 3, 5)
    await asyncio.sleep(0)
    writer.writes.clear()
    fanout.on_event(message(3, 5))  # duplicate: dropped
    fanout.on_event(message(3, 8))  # gap: a catch-up read
    await asyncio.sleep(0)
    assert writer.writes == []
    [fetch] = conn.ran
    assert (fetch.conversation, fetch.after) == (3, 5)  # type: ignore[attr-defined]


async def test_a_full_buffer_closes_with_4008_and_leaves_the_fanout() -> None:
    fanout = Fanout(send_buffer=1000)
    slow, slow_writer = live_connection(fanout, 1, 3, 0, buffered=5000)
    _, fast_writer = live_connection(fanout, 2, 3, 0)
    await asyncio.sleep(0)
    assert slow_writer.closed == (4008, "too slow")
    assert slow not in fanout.everyone and slow not in fanout.conversations.get(3, set())
    fanout.on_event(message(3, 1))
    await asyncio.sleep(0)
    assert fast_writer.writes[-1] == text_frame(b'{"type":"message","seq":1}')
    assert fast_writer.closed is None


def test_text_frame_lengths() -> None:
    for n in (0, 125, 126, 65535, 65536, 70000):
        payload = b"x" * n
        frame = text_frame(payload)
        assert frame[0] == 0x81
        assert frame_payloads(frame + frame) == [payload, payload]


async def test_equal_pending_lists_are_joined_once_and_others_get_their_own_bytes() -> None:
    fanout = Fanout()
    conns = [live_connection(fanout, uid, 3, 0) for uid in range(1, 4)]
    behind, behind_writer = live_connection(fanout, 9, 4, 0)
    fanout.subscribe(behind, 3)
    behind.live[3] = 1  # already has seq 2 below: gets only 2 and 3 of room 3
    await asyncio.sleep(0)
    for _, w in [*conns, (behind, behind_writer)]:
        w.writes.clear()
    for seq in (1, 2, 3):
        fanout.on_event(message(3, seq))
    fanout.on_event(message(4, 1))
    await asyncio.sleep(0)
    writes = [w.writes for _, w in conns]
    assert all(len(ws) == 1 for ws in writes)
    assert writes[0][0] is writes[1][0] is writes[2][0]  # one join for the three
    assert frame_payloads(writes[0][0]) == [b'{"type":"message","seq":%d}' % s for s in (1, 2, 3)]
    [data] = behind_writer.writes
    assert frame_payloads(data) == [b'{"type":"message","seq":%d}' % s for s in (2, 3)] + [
        b'{"type":"message","seq":1}'
    ]
    assert all(not c.pending for c, _ in conns) and not behind.pending


async def test_a_pass_is_written_in_slices_with_the_loop_running_in_between() -> None:
    """More sockets than one slice: the rest go out in later callbacks, each
    connection still in one write with all its frames in order, including
    frames that arrived for it before its slice ran."""
    fanout = Fanout()
    fanout.slice_size = 4
    conns = [live_connection(fanout, uid, 3, 0) for uid in range(1, 11)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for _, w in conns:
        w.writes.clear()
    fanout.on_event(message(3, 1))
    await asyncio.sleep(0)  # the first slice only
    written = [c for c, w in conns if w.writes]
    assert len(written) == 4
    fanout.on_event(message(3, 2))  # before the later slices ran
    for _ in range(5):
        await asyncio.sleep(0)
    for c, w in conns:
        payloads = [p for data in w.writes for p in frame_payloads(data)]
        assert payloads == [b'{"type":"message","seq":%d}' % s for s in (1, 2)]
        c.settle()
        assert not c.pending and c.live == {3: 2}
        if c in written:
            assert len(w.writes) == 2
    # those whose slice had not run when the second pass was flushed got both in one write
    assert any(len(w.writes) == 1 for _, w in conns)


def payloads(writer: FakeWriter) -> list[bytes]:
    return [p for data in writer.writes for p in frame_payloads(data)]


async def test_a_steady_connection_keeps_the_order_across_rooms_and_its_own_frames() -> None:
    """In step with room 3 (its frames held by the room), then an event of
    room 4 and a frame of its own: room 3's frames go first, each once."""
    fanout = Fanout()
    conn, writer = live_connection(fanout, 1, 3, 0)
    fanout.subscribe(conn, 4)
    conn.live[4] = 0
    other, other_writer = live_connection(fanout, 2, 3, 0)
    await asyncio.sleep(0)
    writer.writes.clear()
    other_writer.writes.clear()
    fanout.on_event(message(3, 1))
    fanout.on_event(message(3, 2))
    assert conn.room is fanout.rooms[3] and not conn.pending
    fanout.on_event(message(4, 1))  # leaves room 3's shared delivery, in order
    assert conn.room is None and conn.live == {3: 2, 4: 1}
    conn.push(text_frame(b'{"type":"own"}'))
    fanout.on_event(message(3, 3))
    await asyncio.sleep(0)
    assert payloads(writer) == [
        b'{"type":"message","seq":1}',
        b'{"type":"message","seq":2}',
        b'{"type":"message","seq":1}',
        b'{"type":"own"}',
        b'{"type":"message","seq":3}',
    ]
    assert payloads(other_writer) == [b'{"type":"message","seq":%d}' % s for s in (1, 2, 3)]
    conn.settle()
    other.settle()
    assert conn.live == {3: 3, 4: 1} and other.live == {3: 3}


async def test_a_gap_in_a_steady_room_goes_to_every_session() -> None:
    fanout = Fanout()
    conns = [live_connection(fanout, uid, 3, 0) for uid in (1, 2)]
    await asyncio.sleep(0)
    for _, w in conns:
        w.writes.clear()
    fanout.on_event(message(3, 1))
    assert fanout.rooms[3].steady
    fanout.on_event(message(3, 1))  # a duplicate: dropped by each session
    fanout.on_event(message(3, 4))  # a gap: each session asks for a catch-up read
    await asyncio.sleep(0)
    for c, w in conns:
        assert payloads(w) == [b'{"type":"message","seq":1}']
        [fetch] = c.ran
        assert (fetch.conversation, fetch.after) == (3, 1)  # type: ignore[attr-defined]


async def test_a_steady_connection_past_its_buffer_is_closed_with_4008() -> None:
    fanout = Fanout(send_buffer=1000)
    conn, writer = live_connection(fanout, 1, 3, 0)
    _, fast_writer = live_connection(fanout, 2, 3, 0)
    await asyncio.sleep(0)
    fanout.on_event(message(3, 1))
    assert conn.room is fanout.rooms[3]
    writer.buffered = 5000
    fanout.on_event(message(3, 2))  # still the same pass: both owed together
    await asyncio.sleep(0)
    assert writer.closed == (4008, "too slow")
    assert conn not in fanout.everyone and conn not in fanout.conversations.get(3, set())
    assert conn not in fanout.rooms[3].steady
    fanout.on_event(message(3, 3))
    await asyncio.sleep(0)
    assert payloads(fast_writer)[-3:] == [b'{"type":"message","seq":%d}' % s for s in (1, 2, 3)]


def send_op(conn: FakeConnection, nonce: str, cid: int = 3) -> object:
    """The client sends a message: the session asks for a Hub call."""
    op = {"op": "send", "nonce": nonce, "conversation": cid, "text": "hi"}
    conn.session.receive_text(orjson.dumps(op).decode())
    conn.reply()
    call = conn.ran.pop()
    return call.op  # type: ignore[attr-defined]


def ack(conn: FakeConnection, op: object, seq: int) -> None:
    """The op's message is committed (seq ``seq``): the session acks it."""
    msg = Message(
        id=f"M{seq}",
        conversation_id=3,
        seq=seq,
        ts=seq,
        sender_id=1,
        sender="u1",
        kind=MessageKind.TEXT,
        text="hi",
    )
    conn.session.op_done(op, msg)  # type: ignore[arg-type]
    conn.reply()


def frame_types(writer: FakeWriter) -> list[object]:
    out: list[object] = []
    for p in payloads(writer):
        obj = orjson.loads(p)
        out.append(obj.get("seq") if obj["type"] == "message" else obj["type"])
    return out


async def test_a_sender_stays_in_its_room_and_its_ack_follows_the_room_frames() -> None:
    """A steady connection's op and ack do not settle it: the ack waits in its
    pending list and goes out after the room's frames, in the same write."""
    fanout = Fanout()
    sender, sender_writer = live_connection(fanout, 1, 3, 0)
    other, other_writer = live_connection(fanout, 2, 3, 0)
    await asyncio.sleep(0)
    fanout.on_event(message(3, 1))  # both join the room's shared delivery
    await asyncio.sleep(0)
    room = fanout.rooms[3]
    assert room.steady == {sender, other}
    sender_writer.writes.clear()
    other_writer.writes.clear()
    op = send_op(sender, "n2")
    fanout.on_event(message(3, 2))  # its message, committed and published
    ack(sender, op, 2)
    fanout.on_event(message(3, 3))  # someone else's, in the same pass
    assert sender.room is room and room.steady == {sender, other}
    assert len(sender.pending) == 1  # only the ack; the events are the room's
    await asyncio.sleep(0)
    assert len(sender_writer.writes) == 1
    assert frame_types(sender_writer) == [2, 3, "ack"]
    assert frame_types(other_writer) == [2, 3]
    assert sender.room is room and not sender.pending and sender.owed is None
    sender.settle()
    assert sender.live == {3: 3}


async def test_answers_of_a_steady_connection_stay_behind_its_room_frames() -> None:
    """Settled with an ack pending (another room's event, or the room's frames
    of a later pass arriving before the ack's slice ran): the room's frames go
    first, then the ack, then the new event; each once."""
    fanout = Fanout()
    conn, writer = live_connection(fanout, 1, 3, 0)
    fanout.subscribe(conn, 4)
    conn.live[4] = 0
    await asyncio.sleep(0)
    fanout.on_event(message(3, 1))
    await asyncio.sleep(0)
    writer.writes.clear()
    op = send_op(conn, "n2")
    fanout.on_event(message(3, 2))
    ack(conn, op, 2)
    assert conn.room is fanout.rooms[3] and len(conn.pending) == 1
    fanout.on_event(message(4, 1))  # leaves room 3's shared delivery, in order
    assert conn.room is None and conn.live == {3: 2, 4: 1}
    await asyncio.sleep(0)
    assert frame_types(writer) == [2, "ack", 1]


async def test_an_ack_in_a_late_slice_does_not_overtake_an_older_room_frame() -> None:
    """A steady connection's answers go out after every room frame published
    before them, even when its slice of a pass runs after the room got a
    frame of the next pass."""
    fanout = Fanout()
    fanout.slice_size = 2
    conns = [live_connection(fanout, uid, 3, 0) for uid in range(1, 6)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    fanout.on_event(message(3, 1))
    for _ in range(3):
        await asyncio.sleep(0)
    assert fanout.rooms[3].steady == {c for c, _ in conns}
    for _, w in conns:
        w.writes.clear()
    # five acks in one pass: the senders' writes go out in three slices
    ops = [send_op(c, f"n{i}") for i, (c, _) in enumerate(conns)]
    for i, ((c, _), op) in enumerate(zip(conns, ops, strict=True)):
        fanout.on_event(message(3, 2 + i))
        ack(c, op, 2 + i)
    await asyncio.sleep(0)  # the first slice only
    fanout.on_event(message(3, 7))  # before the later slices ran: the room holds it
    late, late_writer = conns[2]  # in the second slice, which runs before that pass
    op = send_op(late, "late")
    ack(late, op, 8)  # published after 7: joins its pending list, must stay behind 7
    for _ in range(5):
        await asyncio.sleep(0)
    for i, (c, w) in enumerate(conns):
        got = frame_types(w)
        assert [x for x in got if x != "ack"] == [2, 3, 4, 5, 6, 7], got
        assert got.count("ack") == (2 if c is late else 1)
        assert got.index("ack") > got.index(2 + i)  # after its message, here
    got = frame_types(late_writer)
    assert got[-1] == "ack" and got.index(7) < len(got) - 1  # the late ack after 7
    for c, _ in conns:
        c.settle()
        assert c.live == {3: 7} and not c.pending


async def test_a_steady_connection_with_answers_past_its_buffer_is_closed_with_4008() -> None:
    fanout = Fanout(send_buffer=1000)
    conn, writer = live_connection(fanout, 1, 3, 0)
    _, fast_writer = live_connection(fanout, 2, 3, 0)
    await asyncio.sleep(0)
    fanout.on_event(message(3, 1))
    await asyncio.sleep(0)
    assert conn.room is fanout.rooms[3]
    op = send_op(conn, "n2")
    fanout.on_event(message(3, 2))
    ack(conn, op, 2)
    writer.buffered = 5000
    await asyncio.sleep(0)
    assert writer.closed == (4008, "too slow")
    assert conn not in fanout.everyone and conn not in fanout.rooms[3].steady
    fanout.on_event(message(3, 3))
    await asyncio.sleep(0)
    assert payloads(fast_writer)[-3:] == [b'{"type":"message","seq":%d}' % s for s in (1, 2, 3)]
