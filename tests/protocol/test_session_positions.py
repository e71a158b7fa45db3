"""Positions: resume, duplicates, gaps, catch-up, too far behind, (un)subscribe, revoke."""

from __future__ import annotations

import orjson
from sessionhelp import Driver, message, message_event, subscribe_event, unsubscribe_event

from hubbub.core.events import Control, Event, Scope
from hubbub.protocols.session import Close, Fetch, Limits, Subscribe, Unsubscribe


def seqs(frames: list[dict[str, object]]) -> list[object]:
    return [f["seq"] for f in frames if f["type"] == "message"]


def test_no_message_flows_before_resume_but_is_caught_up() -> None:
    d = Driver()
    d.start((3, 5))
    assert d.session.event(message_event(3, 6)) is False
    assert d.frames() == [] and d.actions() == []
    # the client has 4: it needs 5 and 6, though ready said 5
    assert d.resume({3: 4}) == [{"type": "resumed"}]
    [fetch] = d.actions()
    assert fetch == Fetch(fetch.id, 3, 4, 100)  # type: ignore[union-attr]


def test_resume_at_the_last_seq_goes_live_without_reading() -> None:
    d = Driver()
    d.start((3, 5), (4, 0))
    d.resume({3: 5})
    assert d.actions() == []
    assert d.session.live == {3: 5, 4: 0}
    assert d.session.event(message_event(3, 6)) is True
    assert d.session.event(message_event(4, 1)) is True
    assert d.session.live == {3: 6, 4: 1}


def test_positions_default_to_ready_and_are_clamped() -> None:
    d = Driver()
    d.start((3, 5), (4, 2))
    d.resume({4: 99, 77: 3})  # beyond last_seq: clamped; unknown conversation: ignored
    assert d.session.live == {3: 5, 4: 2}
    assert d.actions() == []


def test_duplicates_are_dropped_and_order_kept() -> None:
    d = Driver()
    d.start((3, 2))
    d.resume()
    assert d.session.event(message_event(3, 2)) is False
    assert d.session.event(message_event(3, 1)) is False
    assert d.session.event(message_event(3, 3)) is True
    assert d.session.event(message_event(3, 3)) is False


def test_a_gap_catches_up_from_the_store_in_pages() -> None:
    d = Driver(Limits(page_size=2))
    d.start((3, 2))
    d.resume()
    assert d.session.event(message_event(3, 6)) is False  # 3..5 missing
    [f1] = d.actions()
    assert isinstance(f1, Fetch) and (f1.conversation, f1.after, f1.limit) == (3, 2, 2)
    assert 3 not in d.session.live
    # live events meanwhile are not sent, only remembered
    assert d.session.event(message_event(3, 7)) is False
    d.session.fetched(f1.id, 3, [message(3, 3), message(3, 4)])
    assert seqs(d.frames()) == [3, 4]
    [f2] = d.actions()
    assert isinstance(f2, Fetch) and f2.after == 4
    d.session.fetched(f2.id, 3, [message(3, 5), message(3, 6)])
    [f3] = d.actions()
    assert isinstance(f3, Fetch) and f3.after == 6
    d.session.fetched(f3.id, 3, [message(3, 7)])  # short page, and 7 reached: live
    assert seqs(d.frames()) == [5, 6, 7]
    assert d.actions() == []
    assert d.session.live[3] == 7
    assert d.session.event(message_event(3, 8)) is True


def test_catch_up_rereads_until_the_highest_seen_seq() -> None:
    d = Driver(Limits(page_size=10))
    d.start((3, 0))
    d.resume()
    d.session.event(message_event(3, 2))
    [f1] = d.actions()
    assert isinstance(f1, Fetch)
    d.session.event(message_event(3, 4))
    # the read raced the commit of 3 and 4: a short page, but 4 was seen live
    d.session.fetched(f1.id, 3, [message(3, 1), message(3, 2)])
    [f2] = d.actions()
    assert isinstance(f2, Fetch) and f2.after == 2 and f2.delay == 0
    d.session.fetched(f2.id, 3, [message(3, 3), message(3, 4)])
    assert seqs(d.frames()) == [1, 2, 3, 4]
    assert d.session.live[3] == 4


def test_stale_and_empty_fetches() -> None:
    d = Driver(Limits(page_size=10, max_empty_fetches=2))
    d.start((3, 0))
    d.resume()
    d.session.event(message_event(3, 3))
    [f1] = d.actions()
    assert isinstance(f1, Fetch)
    d.session.fetched(f1.id + 100, 3, [message(3, 1)])  # not the read asked for
    assert d.frames() == [] and d.actions() == []
    d.session.fetched(f1.id, 3, [])  # published but not readable yet: retry with a delay
    [f2] = d.actions()
    assert isinstance(f2, Fetch) and f2.delay > 0
    d.session.fetch_failed(f2.id, 3)
    [f3] = d.actions()
    assert isinstance(f3, Fetch) and f3.delay > f2.delay
    d.session.fetched(f3.id, 3, [])  # give up: the client pages it over REST
    assert d.frames() == [{"type": "too_far_behind", "conversation": 3, "last_seq": 3}]
    assert d.session.live[3] == 3


def test_too_far_behind_on_resume_and_on_a_gap() -> None:
    d = Driver(Limits(replay_limit=10))
    d.start((3, 50), (4, 5))
    assert d.resume({3: 39, 4: 5}) == [
        {"type": "resumed"},
        {"type": "too_far_behind", "conversation": 3, "last_seq": 50},
    ]
    assert d.actions() == []
    assert d.session.live == {3: 50, 4: 5}
    # a gap of more than 10 on a live conversation: the event itself still comes
    assert d.session.event(message_event(4, 17)) is True
    assert d.frames() == [{"type": "too_far_behind", "conversation": 4, "last_seq": 16}]
    assert d.session.live[4] == 17


def test_a_replay_of_exactly_the_limit_is_still_sent() -> None:
    d = Driver(Limits(replay_limit=10))
    d.start((3, 50))
    d.resume({3: 40})
    [fetch] = d.actions()
    assert isinstance(fetch, Fetch) and fetch.after == 40


def test_subscribe_follows_a_new_conversation_from_its_seq() -> None:
    d = Driver()
    d.start((3, 0))
    d.resume()
    event = subscribe_event(1, 9, 4)
    assert d.session.event(event) is True  # the conversation frame is forwarded
    sub, fetch = d.actions()
    assert sub == Subscribe(9)
    assert isinstance(fetch, Fetch) and (fetch.conversation, fetch.after) == (9, 4)
    d.session.fetched(fetch.id, 9, [message(9, 5)])
    assert seqs(d.frames()) == [5]
    assert d.session.live[9] == 5
    assert d.session.event(event) is True  # again: nothing new to do
    assert d.actions() == []


def test_subscribe_before_resume_waits_for_it() -> None:
    d = Driver()
    d.start((3, 0))
    assert d.session.event(subscribe_event(1, 9, 4)) is True
    assert d.actions() == [Subscribe(9)]
    d.resume()
    [fetch] = d.actions()
    assert isinstance(fetch, Fetch) and (fetch.conversation, fetch.after) == (9, 4)


def test_control_events_while_connecting_shape_the_snapshot() -> None:
    d = Driver()
    assert d.session.event(subscribe_event(1, 9, 4)) is False
    assert d.session.event(unsubscribe_event(1, 3)) is False
    assert d.session.event(message_event(3, 1)) is False
    ready = d.start((3, 0), (5, 2))
    assert [c["id"] for c in ready["conversations"]] == [5, 9]
    d.resume({9: 0})
    [fetch] = d.actions()
    assert isinstance(fetch, Fetch) and (fetch.conversation, fetch.after) == (9, 0)
    assert d.session.live == {5: 2}


def test_unsubscribe_stops_a_conversation_even_mid_catch_up() -> None:
    d = Driver()
    d.start((3, 0), (4, 0))
    d.resume()
    d.session.event(message_event(3, 2))
    [fetch] = d.actions()
    assert isinstance(fetch, Fetch)
    assert d.session.event(unsubscribe_event(1, 3)) is True
    assert d.actions() == [Unsubscribe(3)]
    d.session.fetched(fetch.id, 3, [message(3, 1), message(3, 2)])
    assert d.frames() == []
    assert not d.session.subscribed(3)
    [error] = d.text({"op": "typing", "conversation": 3})
    assert error["code"] == "not_member"


def revoke(payload: dict[str, object]) -> Event:
    return Event(Scope.USER, 1, orjson.dumps(payload), control=Control.REVOKE)


def test_revoke_closes_only_the_named_credential() -> None:
    d = Driver(credential="sess1")
    d.start((3, 0))
    d.resume()
    assert d.session.event(revoke({"type": "revoked", "session": "other"})) is True
    assert d.actions() == []
    assert d.session.event(revoke({"type": "revoked", "token": 5})) is True
    assert d.actions() == []
    assert d.session.event(revoke({"type": "revoked", "session": "sess1"})) is True
    assert d.actions() == [Close(4001, "session revoked")]
    assert d.session.closed
    assert d.session.event(message_event(3, 1)) is False


def test_revoke_of_a_token() -> None:
    d = Driver(credential="token:5")
    d.start((3, 0))
    d.session.event(revoke({"type": "revoked", "token": 5}))
    assert d.actions() == [Close(4001, "session revoked")]


def test_presence_typing_and_read_events_are_forwarded() -> None:
    d = Driver()
    d.start((3, 0))
    presence = Event(Scope.ALL, 0, b'{"type":"presence"}')
    typing = Event(Scope.CONVERSATION, 3, b'{"type":"typing"}', conversation_id=3)
    read = Event(Scope.USER, 1, b'{"type":"read"}', conversation_id=3)
    assert d.session.event(presence) and d.session.event(typing) and d.session.event(read)


class Positions(dict[int, int]):
    """A session's ``live`` that records every read or write of a position;
    asking whether a conversation is followed (``in``, the keys) is allowed."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.touched: list[str] = []

    def __getitem__(self, key: int) -> int:
        self.touched.append("getitem")
        return super().__getitem__(key)

    def get(self, key: int, default: object = None) -> object:  # type: ignore[override]
        self.touched.append("get")
        return super().get(key, default)

    def __setitem__(self, key: int, value: int) -> None:
        self.touched.append("setitem")
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        self.touched.append("delitem")
        super().__delitem__(key)

    def pop(self, *args: object) -> object:  # type: ignore[override]
        self.touched.append("pop")
        return super().pop(*args)  # type: ignore[arg-type]

    def setdefault(self, *args: object) -> object:  # type: ignore[override]
        self.touched.append("setdefault")
        return super().setdefault(*args)  # type: ignore[arg-type]

    def values(self) -> object:  # type: ignore[override]
        self.touched.append("values")
        return super().values()

    def items(self) -> object:  # type: ignore[override]
        self.touched.append("items")
        return super().items()

    def update(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.touched.append("update")
        super().update(*args, **kwargs)  # type: ignore[arg-type]


def test_client_frames_and_op_results_read_no_position() -> None:
    """What the fan-out relies on to leave a connection in its room's shared
    delivery (``Connection.reply``): a live session answers every client frame
    and every op's outcome from its own state, without reading or writing a
    position, and the answer is never an event (only ``ack``, ``pong``,
    ``error``). The fan-out may then hold the positions elsewhere meanwhile."""
    d = Driver(Limits(ops_burst=30, ops_per_second=1.0, max_frame=200))
    d.start((3, 5), (4, 0))
    spy = Positions()
    d.session.live = spy  # before resume: it fills this dict
    d.resume({3: 5})
    assert spy == {3: 5, 4: 0}
    spy.touched.clear()
    answers: list[dict[str, object]] = []

    def text(frame: object) -> None:
        answers.extend(d.text(frame))

    text({"op": "send", "nonce": "n1", "conversation": 3, "text": "hi"})
    [call] = d.actions()
    op = call.op  # type: ignore[union-attr]
    d.session.op_done(op, message(3, 6))
    d.session.op_failed(op, "rate_limited", "slow down", retry_after=0.5)
    d.session.op_failed(op, "internal", "the server failed; try again")
    text({"op": "send", "nonce": "n2", "conversation": 99, "text": "not a member"})
    text({"op": "typing", "conversation": 3})
    text({"op": "typing", "conversation": 3})  # too soon: dropped quietly
    text({"op": "typing", "conversation": 99})
    text({"op": "read", "conversation": 4, "seq": 0})
    text({"op": "read", "conversation": 99, "seq": 1})
    text({"op": "ping", "nonce": "p"})
    text({"op": "resume", "positions": {}})
    text({"op": "nope"})
    text("{not json")
    text({"op": "send", "nonce": "big", "conversation": 3, "text": "x" * 300})
    d.session.receive_binary(10)
    d.session.receive_binary(1000)
    answers.extend(d.frames())
    for _ in range(40):  # past the burst: rate limited
        text({"op": "ping"})
    actions = d.actions()
    assert spy.touched == []
    assert spy == {3: 5, 4: 0}
    kinds = {a["type"] for a in answers}
    assert kinds == {"ack", "pong", "error"}
    assert {a.get("code") for a in answers if a["type"] == "error"} >= {
        "rate_limited",
        "not_member",
        "too_large",
    }
    assert all(type(a).__name__ == "Call" for a in actions)
