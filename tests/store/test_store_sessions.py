from __future__ import annotations

import pytest

from hubbub.core.errors import NotFound
from hubbub.core.model import User, now_ms
from hubbub.store import SqlStore
from hubbub.store.sessions import TOUCH_INTERVAL_MS


async def _session(store: SqlStore, user: User, secret: str = "secret", ttl: int = 3_600_000):
    return await store.create_session(
        secret_hash=secret,
        user_id=user.id,
        expires_at=now_ms() + ttl,
        user_agent="Firefox",
        address="192.0.2.1",
    )


async def test_session_lifecycle(store: SqlStore, alice: User, bob: User) -> None:
    info = await _session(store, alice)
    assert info.user_id == alice.id and info.user_agent == "Firefox"
    assert len(info.id) >= 16 and info.id != "secret"

    found = await store.session_user("secret", now_ms())
    assert found is not None
    session, user = found
    assert session.id == info.id and user == alice
    assert await store.session_user("other", now_ms()) is None

    other = await _session(store, alice, "secret2")
    assert {s.id for s in await store.list_sessions(alice.id)} == {info.id, other.id}
    assert await store.list_sessions(bob.id) == []

    assert not await store.delete_session(bob.id, info.id)  # not bob's
    assert await store.delete_session(alice.id, info.id)
    assert not await store.delete_session(alice.id, info.id)
    assert await store.session_user("secret", now_ms()) is None

    await store.delete_session_by_hash("secret2")
    assert await store.list_sessions(alice.id) == []


async def test_expired_session_is_refused_and_removed(store: SqlStore, alice: User) -> None:
    info = await _session(store, alice, ttl=1000)
    assert await store.session_user("secret", info.expires_at - 1) is not None
    assert await store.session_user("secret", info.expires_at) is None
    # gone for good, even when asked with an earlier clock
    assert await store.session_user("secret", info.created_at) is None


async def test_session_touches_last_seen(store: SqlStore, alice: User) -> None:
    info = await _session(store, alice)
    later = info.created_at + TOUCH_INTERVAL_MS + 5
    found = await store.session_user("secret", later)
    assert found is not None and found[0].last_seen == later
    (listed,) = await store.list_sessions(alice.id)
    assert listed.last_seen == later
    # within the interval: reported, not written
    soon = later + 10
    found = await store.session_user("secret", soon)
    assert found is not None and found[0].last_seen == soon
    (listed,) = await store.list_sessions(alice.id)
    assert listed.last_seen == later


async def test_session_for_unknown_user(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.create_session(
            secret_hash="x", user_id=404, expires_at=now_ms() + 1000, user_agent="", address=""
        )


async def test_token_lifecycle(store: SqlStore, alice: User, bob: User) -> None:
    token = await store.create_token(user_id=alice.id, name="ci", token_hash="th")
    assert token.last_used is None and token.name == "ci"
    found = await store.token_user("th")
    assert found is not None
    used, user = found
    assert user == alice and used.id == token.id and used.last_used is not None
    assert await store.token_user("nope") is None

    listed = await store.list_tokens(alice.id)
    assert [t.id for t in listed] == [token.id]
    assert listed[0].last_used is not None
    assert await store.list_tokens(bob.id) == []

    assert not await store.delete_token(bob.id, token.id)
    assert await store.delete_token(alice.id, token.id)
    assert await store.token_user("th") is None
    with pytest.raises(NotFound):
        await store.create_token(user_id=404, name="x", token_hash="y")


async def test_a_deleted_users_token_and_session_stop_working(
    store: SqlStore, alice: User, bob: User
) -> None:
    # token_user and session_user run SQL compiled once (StoreBase._fetch_compiled):
    # the same answers as the statement, including the deleted-user filter.
    await store.create_token(user_id=alice.id, name="a", token_hash="ta")
    await store.create_token(user_id=bob.id, name="b", token_hash="tb")
    await store.create_session(
        secret_hash="sb", user_id=bob.id, expires_at=now_ms() + 60_000, user_agent="", address=""
    )
    for _ in range(2):  # compiled on the first call, reused on the second
        found = await store.token_user("tb")
        assert found is not None and found[1] == bob
        session = await store.session_user("sb", now_ms())
        assert session is not None and session[1] == bob
    await store.delete_user(bob.id)
    assert await store.token_user("tb") is None
    assert await store.session_user("sb", now_ms()) is None
    found = await store.token_user("ta")
    assert found is not None and found[1] == alice
