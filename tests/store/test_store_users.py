from __future__ import annotations

import asyncio

import pytest

from hubbub.core.errors import NameTaken, NotFound
from hubbub.core.model import MemberRole, Role
from hubbub.store import SqlStore


async def test_first_user_is_admin_then_members(store: SqlStore) -> None:
    first = await store.create_user("Alice", "h1")
    second = await store.create_user("bob", None)
    assert first.role is Role.ADMIN and first.is_admin
    assert second.role is Role.MEMBER
    assert await store.get_user(first.id) == first
    assert await store.count_users() == 2


async def test_concurrent_first_users_make_exactly_one_admin(store: SqlStore) -> None:
    users = await asyncio.gather(*(store.create_user(f"user{i}", None) for i in range(8)))
    assert [u.role for u in users].count(Role.ADMIN) == 1


async def test_names_are_unique_case_insensitively(store: SqlStore) -> None:
    await store.create_user("Alice", None)
    for clash in ("alice", "ALICE", "\uff21lice"):  # fullwidth A folds to "a" under NFKC
        with pytest.raises(NameTaken) as info:
            await store.create_user(clash, None)
        assert info.value.__cause__ is not None  # chained to the database error
    found = await store.get_user_by_name("aLiCe")
    assert found is not None and found.name == "Alice"
    assert await store.get_user_by_name("nobody-here") is None


async def test_deleted_user_is_gone_but_name_stays_taken(store: SqlStore, room_factory) -> None:
    alice = await store.create_user("Alice", "h")
    bob = await store.create_user("bob", "h")
    room = await room_factory("lobby", alice)
    await store.add_member(room.id, bob.id, MemberRole.MEMBER)
    await store.create_session(
        secret_hash="s", user_id=bob.id, expires_at=2**62, user_agent="ua", address="::1"
    )
    await store.create_token(user_id=bob.id, name="bot", token_hash="t")

    await store.delete_user(bob.id)

    assert await store.get_user(bob.id) is None
    assert await store.get_user_by_name("bob") is None
    assert await store.get_password_hash(bob.id) is None
    assert await store.count_users() == 1
    assert [u.id for u in await store.list_users()] == [alice.id]
    assert await store.session_user("s", 0) is None
    assert await store.token_user("t") is None
    assert await store.list_tokens(bob.id) == []
    assert await store.get_member(room.id, bob.id) is None
    with pytest.raises(NameTaken):
        await store.create_user("BOB", None)
    with pytest.raises(NotFound):
        await store.delete_user(bob.id)


async def test_password_hash_and_role(store: SqlStore) -> None:
    alice = await store.create_user("Alice", None)
    bob = await store.create_user("bob", "old")
    assert await store.get_password_hash(alice.id) is None
    assert await store.get_password_hash(bob.id) == "old"
    await store.set_password_hash(bob.id, "new")
    assert await store.get_password_hash(bob.id) == "new"
    await store.set_role(bob.id, Role.ADMIN)
    updated = await store.get_user(bob.id)
    assert updated is not None and updated.role is Role.ADMIN
    with pytest.raises(NotFound):
        await store.set_role(999, Role.ADMIN)
    with pytest.raises(NotFound):
        await store.set_password_hash(999, "x")


async def test_list_users_pages_by_id(store: SqlStore) -> None:
    created = [await store.create_user(f"u{i}", None) for i in range(5)]
    page1 = await store.list_users(limit=2)
    page2 = await store.list_users(after_id=page1[-1].id, limit=2)
    page3 = await store.list_users(after_id=page2[-1].id, limit=2)
    assert [u.id for u in page1 + page2 + page3] == [u.id for u in created]
    assert await store.get_user(12345) is None
