"""The WebSocket upgrade's short-lived credential cache: fewer store reads in a
reconnect storm, and never a revoked credential accepted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from wshelp import TIMEOUT, LiveServer, make_account, open_client

from hubbub.core.model import Role, User
from hubbub.web.auth import CredentialCache, Principal


def principal(user_id: int, name: str = "alice") -> Principal:
    user = User(id=user_id, name=name, role=Role.MEMBER, created_at=0)  # type: ignore[call-arg]
    return Principal(user=user, via="token", token_id=1)


def test_entries_live_for_the_ttl_and_revocations_end_them() -> None:
    now = [100.0]
    cache = CredentialCache(ttl=2.0, clock=lambda: now[0])
    a, b = cache.key("token", "a"), cache.key("token", "b")
    assert a != b and len(a) == 16
    cache.put(a, principal(1), cache.generation)
    cache.put(b, principal(2, "bob"), cache.generation)
    assert cache.get(a) is not None
    now[0] += 2.5
    assert cache.get(a) is None  # past the ttl
    cache.put(a, principal(1), cache.generation)
    cache.forget_user(1)
    assert cache.get(a) is None
    assert cache.get(b) is None  # b expired meanwhile too
    cache.put(b, principal(2, "bob"), cache.generation)
    cache.forget_user(1)
    assert cache.get(b) is not None  # another user's revocation leaves it


def test_a_lookup_overtaken_by_a_revocation_is_not_kept() -> None:
    cache = CredentialCache()
    key = cache.key("session", "s")
    generation = cache.generation  # the store read starts
    cache.forget_user(7)  # a revocation (of anyone) commits meanwhile
    cache.put(key, principal(1), generation)
    assert cache.get(key) is None
    cache.put(key, principal(1), cache.generation)
    assert cache.get(key) is not None


async def test_concurrent_lookups_share_a_read_but_not_across_a_revocation() -> None:
    cache = CredentialCache()
    key = cache.key("token", "t")
    reads: list[asyncio.Future[tuple[Principal | None, int]]] = []

    async def fetch() -> tuple[Principal | None, int]:
        read = asyncio.get_running_loop().create_future()
        reads.append(read)
        return await read

    first = asyncio.create_task(cache.lookup(key, fetch))
    second = asyncio.create_task(cache.lookup(key, fetch))
    await asyncio.sleep(0)
    assert len(reads) == 1  # the second shares the first's read
    cache.forget_user(1)  # a revocation while it runs
    third = asyncio.create_task(cache.lookup(key, fetch))
    await asyncio.sleep(0)
    assert len(reads) == 2  # started after the revocation: a read of its own
    reads[0].set_result((principal(1), 0))
    reads[1].set_result((None, 0))
    assert (await first) is not None and (await second) is not None
    assert await third is None
    assert cache.get(key) is None  # the first read began before the revocation: not kept


def test_a_session_entry_ends_with_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CredentialCache(ttl=60.0)
    key = cache.key("session", "s")
    monkeypatch.setattr("time.time", lambda: 1000.0)
    cache.put(key, principal(1), cache.generation, expires_ms=1_000_000 - 1)  # expired already
    assert cache.get(key) is None


def test_the_cache_stays_bounded() -> None:
    cache = CredentialCache(max_entries=10)
    for i in range(25):
        cache.put(cache.key("token", str(i)), principal(i), cache.generation)
        assert len(cache._entries) <= 10


async def refused(server: LiveServer, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(server.url, additional_headers=headers, open_timeout=TIMEOUT):
            pass
    return info.value.response.status_code


async def test_a_storm_reads_a_credential_once_and_revocation_still_refuses(
    ws_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = ws_server.services
    alice = await make_account(services, "alice")
    calls: list[str] = []
    for name in ("authenticate_token", "authenticate_session"):
        original = getattr(services.accounts, name)

        async def counted(secret: str, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return await _original(secret)

        monkeypatch.setattr(services.accounts, name, counted)
    clients = await asyncio.gather(*(open_client(ws_server, alice) for _ in range(5)))
    clients += [await open_client(ws_server, alice, bearer=False) for _ in range(3)]
    assert calls.count("authenticate_token") == 1  # concurrent upgrades share one read
    assert calls.count("authenticate_session") == 1
    # revoking the session: its cached entry must not open another connection
    await services.accounts.revoke_session(alice.user, alice.session_id)
    cookie = {"Cookie": f"hubbub_session={alice.cookie}", "Origin": ws_server.origin}
    assert await refused(ws_server, cookie) == 401
    # nor a deleted token's
    [token] = await services.accounts.tokens(alice.user)
    await services.accounts.delete_token(alice.user, token.id)
    assert await refused(ws_server, {"Authorization": f"Bearer {alice.token}"}) == 401
    for c in clients:
        await c.ws.close()


async def test_a_removed_user_cannot_reconnect(ws_server: LiveServer) -> None:
    services = ws_server.services
    bob = await make_account(services, "bob")
    client = await open_client(ws_server, bob)
    await services.accounts.remove_user("bob")
    assert await refused(ws_server, {"Authorization": f"Bearer {bob.token}"}) == 401
    await client.ws.close()
