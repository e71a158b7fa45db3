from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest
import sqlalchemy as sa

from hubbub.core.errors import InvalidInput, NotFound
from hubbub.core.model import ConversationKind, MessageKind, NewMessage, User, Visibility
from hubbub.store import SqlStore, StoreClosed
from hubbub.store import schema as t


def _msg(conversation_id: int, user: User | None, text: str, nonce: str | None = None, **kw):
    return NewMessage(
        conversation_id=conversation_id,
        kind=kw.pop("kind", MessageKind.TEXT),
        text=text,
        sender_id=user.id if user else None,
        sender=user.name if user else "system",
        nonce=nonce,
        **kw,
    )


async def test_append_assigns_seq_id_and_time(store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    meta = {"tags": {"msgid": "abc"}, "n": [1, 2]}
    first = await store.append(_msg(room.id, alice, "hello", "n1", meta=meta))
    second = await store.append(_msg(room.id, None, "topic set", kind=MessageKind.SYSTEM))
    assert not first.duplicate and first.message.seq == 1 and second.message.seq == 2
    assert first.message.id < second.message.id  # ULIDs sort by time
    assert first.message.ts <= second.message.ts
    assert first.message.meta == meta and first.message.nonce == "n1"
    assert second.message.sender_id is None and second.message.kind is MessageKind.SYSTEM
    assert await store.history(room.id) == [first.message, second.message]
    found = await store.get_conversation(room.id)
    assert found is not None and found.last_seq == 2


async def test_dense_seqs_under_concurrent_appends(store: SqlStore, alice: User, room_factory):
    rooms = [await room_factory(f"r{i}", alice) for i in range(3)]
    plan = [random.choice(rooms).id for _ in range(200)]
    results = await asyncio.gather(
        *(store.append(_msg(cid, alice, f"{cid}:{i}")) for i, cid in enumerate(plan))
    )
    seqs: dict[int, list[int]] = defaultdict(list)
    for cid, result in zip(plan, results, strict=True):
        assert result.message.conversation_id == cid and not result.duplicate
        seqs[cid].append(result.message.seq)
    for room in rooms:
        assert sorted(seqs[room.id]) == list(range(1, plan.count(room.id) + 1))
        stored = await store.history(room.id, limit=1000)
        assert [m.seq for m in stored] == list(range(1, plan.count(room.id) + 1))
    # in one conversation, callers queued earlier get lower seqs
    for room in rooms:
        assert seqs[room.id] == sorted(seqs[room.id])
    assert store.writer_stats.batches < 200  # they were group-committed
    assert store.writer_stats.largest_batch > 1


async def test_dense_seqs_with_two_writers(target, store: SqlStore, alice: User, room_factory):
    """Two stores on one database (two processes, as far as it can tell)."""
    room = await room_factory("busy", alice)
    other = target.open()
    await other.start()
    try:
        results = await asyncio.gather(
            *((store if i % 2 else other).append(_msg(room.id, alice, f"m{i}")) for i in range(120))
        )
    finally:
        await other.close()
    assert sorted(r.message.seq for r in results) == list(range(1, 121))
    assert [m.seq for m in await store.history(room.id, limit=500)] == list(range(1, 121))


async def test_nonce_is_idempotent(store: SqlStore, alice: User, bob: User, room_factory):
    room = await room_factory("lobby", alice)
    first = await store.append(_msg(room.id, alice, "hi", "n"))
    again = await store.append(_msg(room.id, alice, "hi (resent)", "n"))
    assert again.duplicate and again.message == first.message
    assert again.message.text == "hi"
    # another sender may use the same nonce; so may a message without a sender
    other = await store.append(_msg(room.id, bob, "hi", "n"))
    assert not other.duplicate and other.message.seq == 2
    assert not (await store.append(_msg(room.id, None, "x", "n"))).duplicate
    assert not (await store.append(_msg(room.id, None, "y", "n"))).duplicate
    assert [m.seq for m in await store.history(room.id)] == [1, 2, 3, 4]


async def test_same_nonce_twice_in_one_batch(store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    results = await asyncio.gather(
        *(store.append(_msg(room.id, alice, f"try {i}", "same")) for i in range(10)),
        store.append(_msg(room.id, alice, "different", "other")),
    )
    same = results[:10]
    assert sum(not r.duplicate for r in same) == 1
    assert len({r.message.id for r in same}) == 1
    assert store.writer_stats.largest_batch == 11  # really one batch
    assert [m.text for m in await store.history(room.id)] == ["try 0", "different"]


async def test_nonce_survives_reopen(target, alice: User, room_factory, store: SqlStore):
    room = await room_factory("lobby", alice)
    first = await store.append(_msg(room.id, alice, "hi", "n"))
    reopened = target.open()
    await reopened.start()
    try:
        again = await reopened.append(_msg(room.id, alice, "hi", "n"))
    finally:
        await reopened.close()
    assert again.duplicate and again.message == first.message


async def test_same_nonce_from_two_writers(target, store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    other = target.open()
    await other.start()
    try:
        for round_ in range(5):
            results = await asyncio.gather(
                *(s.append(_msg(room.id, alice, "x", f"n{round_}")) for s in (store, other) * 3)
            )
            assert sum(not r.duplicate for r in results) == 1
            assert len({r.message.id for r in results}) == 1
    finally:
        await other.close()
    assert [m.seq for m in await store.history(room.id)] == [1, 2, 3, 4, 5]


async def test_one_bad_item_does_not_fail_its_batch(store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    ghost = User(id=4040, name="ghost", role=alice.role, created_at=0)
    results = await asyncio.gather(
        *(store.append(_msg(room.id, alice, f"ok {i}")) for i in range(5)),
        store.append(_msg(room.id, ghost, "unknown sender")),  # foreign key violation
        store.append(_msg(999, alice, "unknown conversation")),
        *(store.append(_msg(room.id, alice, f"ok {i}")) for i in range(5, 10)),
        return_exceptions=True,
    )
    assert isinstance(results[5], NotFound) and results[5].__cause__ is not None
    assert isinstance(results[6], NotFound)
    good = [r for i, r in enumerate(results) if i not in (5, 6)]
    assert all(not isinstance(r, BaseException) for r in good)
    assert store.writer_stats.retried_batches == 1
    stored = await store.history(room.id)
    assert [m.seq for m in stored] == list(range(1, 11))  # no gap left by the bad one
    assert [m.text for m in stored] == [f"ok {i}" for i in range(10)]


async def test_close_commits_what_is_queued(target, store: SqlStore, alice, room_factory):
    room = await room_factory("lobby", alice)
    pending = [
        asyncio.ensure_future(store.append(_msg(room.id, alice, f"m{i}"))) for i in range(50)
    ]
    await asyncio.sleep(0)  # let them queue
    await store.close()
    assert all(p.done() and not p.cancelled() for p in pending)
    assert sorted(p.result().message.seq for p in pending) == list(range(1, 51))
    with pytest.raises(StoreClosed):
        await store.append(_msg(room.id, alice, "too late"))
    reopened = target.open()
    await reopened.start()
    try:
        assert len(await reopened.history(room.id, limit=100)) == 50
    finally:
        await reopened.close()


async def test_history_paging(store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    other = await room_factory("other", alice)
    for i in range(1, 21):
        await store.append(_msg(room.id, alice, f"m{i}"))
    await store.append(_msg(other.id, alice, "elsewhere"))

    def seqs(messages):
        return [m.seq for m in messages]

    assert seqs(await store.history(room.id, limit=5)) == [16, 17, 18, 19, 20]
    assert seqs(await store.history(room.id, before=16, limit=5)) == [11, 12, 13, 14, 15]
    assert seqs(await store.history(room.id, before=3, limit=5)) == [1, 2]
    assert seqs(await store.history(room.id, after=0, limit=3)) == [1, 2, 3]
    assert seqs(await store.history(room.id, after=18, limit=5)) == [19, 20]
    assert seqs(await store.history(room.id, after=20)) == []
    assert seqs(await store.history(room.id, before=10, after=4, limit=2)) == [5, 6]  # after wins
    assert await store.history(room.id, limit=0) == []
    assert seqs(await store.history(room.id, limit=100)) == list(range(1, 21))
    assert await store.history(999) == []


async def test_search(store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    private = await room_factory("private", alice)
    texts = [
        "the quick brown fox",
        "a lazy dog",
        "Quick thinking!",
        'she said "quick" NEAR(the) * fox',
        "l'été est chaud",
    ]
    for text in texts:
        await store.append(_msg(room.id, alice, text))
    await store.append(_msg(private.id, alice, "quick secret"))

    found = await store.search([room.id], "quick")
    assert [m.text for m in found] == [texts[3], texts[2], texts[0]]  # newest first
    assert [m.text for m in await store.search([room.id], "QUICK fox")] == [texts[3], texts[0]]
    assert len(await store.search([room.id, private.id], "quick")) == 4
    assert [m.text for m in await store.search([room.id], "quick", limit=1)] == [texts[3]]
    assert await store.search([], "quick") == []
    assert await store.search([room.id], "") == []
    assert await store.search([room.id], "cat") == []

    hostile = [
        '"',
        "*",
        "NEAR(",
        "'",
        '"quick',
        "quick*",
        "NEAR(quick",
        "AND OR NOT",
        "-",
        "(",
        ")",
        "fox^2",
        "\\",
        "%",
        "quick:fox",
        "\x00",
        "qu\x00ick",
        "col:quick",
        "{quick}",
    ]
    for query in hostile:
        await store.search([room.id], query)  # never an error
    assert [m.text for m in await store.search([room.id], '"quick')] == [
        texts[3],
        texts[2],
        texts[0],
    ]
    assert len(await store.search([room.id], "été")) == 1


async def test_nul_is_refused_on_every_engine(store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    results = await asyncio.gather(
        store.append(_msg(room.id, alice, "a\x00b")),
        store.append(_msg(room.id, alice, "fine")),
        return_exceptions=True,
    )
    assert isinstance(results[0], InvalidInput)
    assert [m.text for m in await store.history(room.id)] == ["fine"]


async def test_caller_cancelled_before_commit_stores_nothing(
    store: SqlStore, alice: User, room_factory
):
    room = await room_factory("lobby", alice)
    tasks = [asyncio.ensure_future(store.append(_msg(room.id, alice, f"m{i}"))) for i in range(3)]
    await asyncio.sleep(0)  # all three queued; the writer has not run yet
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [m.text for m in await store.history(room.id)] == ["m0", "m2"]
    assert [m.seq for m in await store.history(room.id)] == [1, 2]


async def test_on_batch_hears_each_transaction(target, store: SqlStore, alice: User, room_factory):
    room = await room_factory("lobby", alice)
    sizes: list[int] = []
    async with target.open(on_batch=sizes.append) as other:
        await asyncio.gather(*(other.append(_msg(room.id, alice, f"m{i}")) for i in range(7)))
        await other.append(_msg(room.id, alice, "alone"))
    assert sizes == [7, 1]


async def test_deleting_a_user_drops_their_irc_history(target, store: SqlStore, alice, bob):
    async with store.engine.begin() as conn:
        network_id = await conn.scalar(
            sa.insert(t.networks)
            .values(user_id=bob.id, kind="irc", name="libera", config="{}")
            .returning(t.networks.c.id)
        )
    assert network_id is not None
    channel = await store.create_conversation(
        network_id=network_id,
        kind=ConversationKind.CHANNEL,
        name="#python",
        visibility=Visibility.PRIVATE,
        owner_id=bob.id,
    )
    for i in range(3):
        await store.append(_msg(channel.id, bob, f"irc words {i}"))
    assert len(await store.search([channel.id], "words")) == 3

    await store.delete_user(bob.id)

    assert await store.get_conversation(channel.id) is None
    assert await store.history(channel.id) == []
    assert await store.search([channel.id], "words") == []
    if target.engine == "sqlite":
        async with store.engine.begin() as conn:  # the FTS index followed the cascade
            await conn.execute(
                sa.text(
                    "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)"
                )
            )


async def test_search_with_many_matches_gives_the_newest_of_those_conversations(
    store: SqlStore, alice: User, room_factory
):
    # SQLite walks the FTS index newest first and stops at the limit: the
    # answer must still be the newest matches of the asked conversations only.
    a = await room_factory("many-a", alice)
    b = await room_factory("many-b", alice)
    c = await room_factory("many-c", alice)
    for i in range(60):
        room = (a, b, c)[i % 3]
        text = f"common word {i}" if i % 2 == 0 else f"other {i}"
        await store.append(_msg(room.id, alice, text))
    found = await store.search([a.id, c.id], "common", limit=7)
    expected = [f"common word {i}" for i in range(59, -1, -1) if i % 2 == 0 and i % 3 in (0, 2)][:7]
    assert [m.text for m in found] == expected
    assert len(await store.search([b.id], "common", limit=1000)) == 10
