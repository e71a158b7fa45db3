"""Property: whatever the bus does (reorder, duplicate, drop) and however reads
interleave with commits, the client sees every seq exactly once, in order."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sessionhelp import Driver, message, message_event

from hubbub.protocols.session import Fetch, Limits, Session

CID = 3


class Model:
    def __init__(self, committed: int, position: int, limits: Limits) -> None:
        self.d = Driver(limits)
        self.session: Session = self.d.session
        self.committed = committed
        self.outbox: list[int] = []  # committed, not yet published
        self.published: list[int] = []
        self.fetches: list[tuple[Fetch, int]] = []  # with the committed seq when issued
        self.position = position  # what the client has, in order
        self.resumed = False
        self.d.start((CID, committed))

    # the client ------------------------------------------------------------------
    def take_output(self, frame_of_event: bytes | None = None) -> None:
        payloads = self.session.data_to_send()
        if frame_of_event is not None:
            payloads.append(frame_of_event)
        for payload in payloads:
            frame = orjson.loads(payload)
            if frame["type"] == "message":
                assert frame["seq"] == self.position + 1, (frame["seq"], self.position)
                self.position = frame["seq"]
            elif frame["type"] == "too_far_behind":
                assert frame["last_seq"] >= self.position
                self.position = frame["last_seq"]  # paged over REST: every seq up to it
        for action in self.session.actions_to_run():
            if isinstance(action, Fetch):
                self.fetches.append((action, self.committed))

    # the world ---------------------------------------------------------------------
    def resume(self) -> None:
        if not self.resumed:
            self.resumed = True
            self.session.receive_text(
                orjson.dumps({"op": "resume", "positions": {str(CID): self.position}}).decode()
            )
            self.take_output()

    def commit(self) -> None:
        self.committed += 1
        self.outbox.append(self.committed)

    def deliver(self, seq: int) -> None:
        """What the fan-out does: the hot path, else the session decides."""
        event = message_event(CID, seq)
        live = self.session.live
        if live.get(CID) == seq - 1:
            live[CID] = seq
            self.take_output(event.payload)
        elif self.session.event(event):
            self.take_output(event.payload)
        else:
            self.take_output()

    def publish(self, index: int, drop: bool = False) -> None:
        if self.outbox:
            seq = self.outbox.pop(index % len(self.outbox))
            if not drop:
                self.published.append(seq)
                self.deliver(seq)

    def duplicate(self, index: int) -> None:
        if self.published:
            self.deliver(self.published[index % len(self.published)])

    def read(self, index: int) -> None:
        if self.fetches:
            fetch, issued = self.fetches.pop(index % len(self.fetches))
            # the read's snapshot is taken somewhere between issuing it and now
            snapshot = issued + index % (self.committed - issued + 1)
            seqs = range(fetch.after + 1, min(snapshot, fetch.after + fetch.limit) + 1)
            self.session.fetched(fetch.id, CID, [message(CID, s) for s in seqs])
            self.take_output()


step = st.tuples(
    st.sampled_from(["commit", "publish", "drop", "duplicate", "read", "resume"]),
    st.integers(0, 50),
)


@settings(max_examples=400, deadline=None)
@given(
    committed=st.integers(0, 30),
    behind=st.integers(0, 30),
    page=st.integers(1, 5),
    replay_limit=st.integers(1, 40),
    steps=st.lists(step, max_size=80),
)
def test_every_seq_once_in_order(
    committed: int, behind: int, page: int, replay_limit: int, steps: list[tuple[str, int]]
) -> None:
    model = Model(
        committed, max(0, committed - behind), Limits(page_size=page, replay_limit=replay_limit)
    )
    for op, n in steps:
        if op == "commit":
            model.commit()
        elif op == "publish":
            model.publish(n)
        elif op == "drop":
            model.publish(n, drop=True)
        elif op == "duplicate":
            model.duplicate(n)
        elif op == "read":
            model.read(n)
        else:
            model.resume()
    # the end: the client has resumed, a last message is committed and published
    # (a lost wake-up is found by the next one), and every read completes
    model.resume()
    while model.outbox:
        model.publish(0)
    if model.committed > committed and model.committed not in model.published:
        model.commit()  # the newest was lost on the bus: only a later one reveals it
        model.publish(0)
    for _ in range(10_000):
        if not model.fetches:
            break
        model.read(0)
    assert not model.fetches
    assert model.position == model.committed
    assert model.session.live == {CID: model.committed}
