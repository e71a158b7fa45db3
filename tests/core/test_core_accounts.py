"""Accounts on a real SQLite store: edge cases the REST tests do not reach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubbub.auth.passwords import PasswordHasher
from hubbub.auth.tokens import hash_secret
from hubbub.bus import LocalBus
from hubbub.config import Settings
from hubbub.core import accounts as accounts_module
from hubbub.core.accounts import Accounts, WrongPassword, address_key
from hubbub.core.errors import (
    InvalidInput,
    InvalidName,
    NameTaken,
    NotFound,
    RateLimited,
    RegistrationClosed,
    TooLong,
    Unauthorized,
)
from hubbub.core.events import Control, Event
from hubbub.core.model import Role, now_ms
from hubbub.store import SqlStore, open_store

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingHasher(PasswordHasher):
    """The fast hasher, counting the work it does."""

    def __init__(self, **params: int) -> None:
        super().__init__(**({"time_cost": 1, "memory_cost": 8, "parallelism": 1} | params))
        self.verifies = 0
        self.dummies = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verifies += 1
        return await super().verify(password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        self.dummies += 1
        await super().verify_dummy(password)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        login_attempts_per_account=3,
        login_attempts_per_address=5,
        registrations_per_address=4,
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[SqlStore]:
    s = open_store(settings.effective_database_url())
    await s.start()
    yield s
    await s.close()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def bus(events: list[Event]) -> LocalBus:
    b = LocalBus()
    b.add_listener(events.append)
    return b


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def accounts(
    store: SqlStore, settings: Settings, hasher: CountingHasher, bus: LocalBus, clock: Clock
) -> Accounts:
    return Accounts(store, settings, hasher, bus, clock=clock)


async def test_register_rules(accounts: Accounts, settings: Settings) -> None:
    first = await accounts.register("Alice", PASSWORD)
    assert first.role is Role.ADMIN
    second = await accounts.register("bob", PASSWORD)
    assert second.role is Role.MEMBER
    with pytest.raises(NameTaken):
        await accounts.register("aLiCe", PASSWORD)
    with pytest.raises(InvalidName):
        await accounts.register("Admin", PASSWORD)
    with pytest.raises(InvalidInput):
        await accounts.register("carol", "1234567")
    with pytest.raises(TooLong):
        await accounts.register("carol", "x" * 1025)
    await accounts.register("carol", "x" * 1024)
    await accounts.register("dave", "12345678")
    settings.registration_open = False
    with pytest.raises(RegistrationClosed):
        await accounts.register("erin", PASSWORD)
    assert (await accounts.register("erin", PASSWORD, trusted=True)).name == "erin"


async def test_registrations_limited_per_address(
    accounts: Accounts, settings: Settings, clock: Clock
) -> None:
    for i in range(settings.registrations_per_address):
        await accounts.register(f"user{i}", PASSWORD, address="10.0.0.1")
    with pytest.raises(RateLimited):
        await accounts.register("onemore", PASSWORD, address="10.0.0.1")
    await accounts.register("onemore", PASSWORD, address="10.0.0.2")
    await accounts.register("trusted", PASSWORD, address="10.0.0.1", trusted=True)
    clock.now += accounts_module.REGISTRATION_WINDOW + 1
    await accounts.register("later", PASSWORD, address="10.0.0.1")


async def test_unknown_user_costs_a_verify(accounts: Accounts, hasher: CountingHasher) -> None:
    await accounts.register("alice", PASSWORD)
    with pytest.raises(Unauthorized) as unknown:
        await accounts.login("nobody", PASSWORD, "10.0.0.1", "ua")
    assert hasher.dummies == 1
    with pytest.raises(Unauthorized) as wrong:
        await accounts.login("alice", "wrong password", "10.0.0.1", "ua")
    assert hasher.verifies == 2  # the dummy's verify, then the real one
    assert str(unknown.value) == str(wrong.value) == "wrong name or password"
    assert unknown.value.code == wrong.value.code == "unauthorized"


async def test_absurd_login_input_is_not_hashed(accounts: Accounts, hasher: CountingHasher) -> None:
    await accounts.register("alice", PASSWORD)
    for name, password in [("alice", "x" * 100_000), ("a" * 100_000, PASSWORD)]:
        with pytest.raises(Unauthorized):
            await accounts.login(name, password, "10.0.0.1", "ua")
    assert hasher.verifies == 1  # only the dummy, for the long name with a normal password


async def test_login_limits_and_window(accounts: Accounts, clock: Clock) -> None:
    await accounts.register("alice", PASSWORD)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await accounts.login("ALICE", "wrong password", "10.0.0.1", "ua")
    with pytest.raises(RateLimited) as limited:
        await accounts.login("alice", PASSWORD, "10.0.0.9", "ua")  # any address
    assert 0 < limited.value.retry_after <= accounts_module.LOGIN_WINDOW
    clock.now += accounts_module.LOGIN_WINDOW + 1
    secret, session, user = await accounts.login("alice", PASSWORD, "10.0.0.9", "ua")
    assert user.name == "alice"
    assert session.address == "10.0.0.9"
    assert await accounts.authenticate_session(secret) is not None


async def test_ipv6_neighbours_share_a_limit(accounts: Accounts) -> None:
    for i in range(5):
        with pytest.raises(Unauthorized):
            await accounts.login(f"user{i}", "wrong password", f"2001:db8::{i + 1}", "ua")
    with pytest.raises(RateLimited):
        await accounts.login("other", "wrong password", "2001:db8::ffff:1", "ua")
    with pytest.raises(Unauthorized):
        await accounts.login("other", "wrong password", "2001:db8:0:1::1", "ua")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("10.1.2.3", "10.1.2.3"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:DB8:0:0:ffff::2", "2001:db8::/64"),
        ("unix-socket", "unix-socket"),
        ("", ""),
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


async def test_rehash_when_parameters_change(
    store: SqlStore, settings: Settings, bus: LocalBus
) -> None:
    old = Accounts(store, settings, CountingHasher(time_cost=1), bus)
    user = await old.register("alice", PASSWORD)
    before = await store.get_password_hash(user.id)
    assert before is not None and before.startswith("$argon2id$")
    new = Accounts(store, settings, CountingHasher(time_cost=2), bus)
    await new.login("alice", PASSWORD, "10.0.0.1", "ua")
    after = await store.get_password_hash(user.id)
    assert after != before
    assert after is not None and "t=2" in after
    await new.login("alice", PASSWORD, "10.0.0.1", "ua")
    assert await store.get_password_hash(user.id) == after  # no needless rehash


async def test_secrets_are_stored_only_hashed(
    accounts: Accounts, store: SqlStore, settings: Settings
) -> None:
    user = await accounts.register("alice", PASSWORD)
    cookie, _, _ = await accounts.login("alice", PASSWORD, "10.0.0.1", "ua")
    token, info = await accounts.create_token(user, "bot")
    assert token.startswith("hb_")
    found = await store.token_user(hash_secret(token))
    assert found is not None and found[0].id == info.id
    assert await store.session_user(hash_secret(cookie), now_ms()) is not None
    await store.close()
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("hubbub.db*"))
    for secret in (cookie, token, PASSWORD):
        assert secret.encode() not in raw


async def test_garbage_secrets(accounts: Accounts) -> None:
    for secret in ["", "x" * 10_000, "hb_" + "y" * 10_000, "\x00"]:
        assert await accounts.authenticate_session(secret) is None
        assert await accounts.authenticate_token(secret) is None
    assert await accounts.authenticate_token("not-a-token") is None


async def test_expired_session(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    await accounts.register("alice", PASSWORD)
    secret, _, _ = await accounts.login("alice", PASSWORD, "10.0.0.1", "ua")
    later = now_ms() + 31 * 86_400_000
    monkeypatch.setattr(accounts_module, "now_ms", lambda: later)
    assert await accounts.authenticate_session(secret) is None


async def test_user_agent_is_bounded_and_printable(accounts: Accounts) -> None:
    await accounts.register("alice", PASSWORD)
    _, session, _ = await accounts.login("alice", PASSWORD, "10.0.0.1", "evil\r\nX: y" + "a" * 1000)
    assert session.user_agent.startswith("evilX: y")
    assert len(session.user_agent) == accounts_module.MAX_USER_AGENT


async def test_change_password(accounts: Accounts, events: list[Event]) -> None:
    user = await accounts.register("alice", PASSWORD)
    keep, kept, _ = await accounts.login("alice", PASSWORD, "10.0.0.1", "ua")
    other, ended, _ = await accounts.login("alice", PASSWORD, "10.0.0.1", "ua")
    token, _ = await accounts.create_token(user, "bot")
    with pytest.raises(WrongPassword):
        await accounts.change_password(user, "not the password", "new password")
    with pytest.raises(InvalidInput):
        await accounts.change_password(user, PASSWORD, "short")
    await accounts.change_password(user, PASSWORD, "new password", keep_session=kept.id)
    assert await accounts.authenticate_session(keep) is not None
    assert await accounts.authenticate_session(other) is None
    assert await accounts.authenticate_token(token) is not None  # tokens stay
    revokes = [e for e in events if e.control is Control.REVOKE]
    assert [e.payload for e in revokes] == [
        b'{"type":"revoked","session":"%s"}' % ended.id.encode()
    ]


async def test_wrong_old_passwords_are_limited(accounts: Accounts) -> None:
    user = await accounts.register("alice", PASSWORD)
    for _ in range(3):
        with pytest.raises(WrongPassword):
            await accounts.change_password(user, "guess guess", "new password")
    with pytest.raises(RateLimited):
        await accounts.change_password(user, PASSWORD, "new password")


async def test_token_rules(accounts: Accounts, events: list[Event]) -> None:
    alice = await accounts.register("alice", PASSWORD)
    bob = await accounts.register("bob", PASSWORD)
    secret, token = await accounts.create_token(alice, "  spaced  ")
    assert token.name == "spaced"
    with pytest.raises(NotFound):
        await accounts.delete_token(bob, token.id)  # not bob's
    assert await accounts.authenticate_token(secret) is not None
    for i in range(accounts_module.MAX_TOKENS_PER_USER - 1):
        await accounts.create_token(alice, f"t{i}")
    with pytest.raises(InvalidInput):
        await accounts.create_token(alice, "one too many")
    await accounts.delete_token(alice, token.id)
    assert await accounts.authenticate_token(secret) is None
    assert events[-1].payload == b'{"type":"revoked","token":%d}' % token.id
    assert events[-1].target == alice.id


async def test_admin_operations(accounts: Accounts, events: list[Event]) -> None:
    await accounts.register("alice", PASSWORD)
    bob = await accounts.register("bob", PASSWORD)
    secret, session, _ = await accounts.login("bob", PASSWORD, "10.0.0.1", "ua")
    token, _ = await accounts.create_token(bob, "bot")

    assert (await accounts.set_admin("BOB")).role is Role.ADMIN
    assert (await accounts.set_admin("bob", admin=False)).role is Role.MEMBER

    await accounts.set_password("bob", "reset by admin")
    assert await accounts.authenticate_session(secret) is None
    assert events[-1].payload == b'{"type":"revoked","session":"%s"}' % session.id.encode()
    await accounts.login("bob", "reset by admin", "10.0.0.1", "ua")

    removed = await accounts.remove_user("bob")
    assert removed.id == bob.id
    assert events[-1].payload == b'{"type":"revoked"}'
    assert events[-1].control is Control.REVOKE
    assert await accounts.authenticate_token(token) is None
    with pytest.raises(Unauthorized):
        await accounts.login("bob", "reset by admin", "10.0.0.1", "ua")
    with pytest.raises(NameTaken):  # a name is an identity: never reused
        await accounts.register("Bob", PASSWORD)
    for op in (accounts.remove_user, accounts.set_admin, accounts.user_named):
        with pytest.raises(NotFound):
            await op("bob")
    assert [u.name for u in await accounts.users()] == ["alice"]
