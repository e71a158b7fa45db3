"""Accounts: registration, login, sessions, API tokens and the admin's operations.

Secrets (session cookies, API tokens) are shown once and stored only as their
SHA-256 (:mod:`hubbub.auth.tokens`); passwords only as argon2id hashes, made in
a worker thread (:mod:`hubbub.auth.passwords`). A revoked session or removed
user is announced on the bus (``Control.REVOKE``) so its open WebSockets close.

Login failures count against the account and against the address, each in a
15-minute window; a wrong password and an unknown name get the same answer,
after the same work, so neither the message nor its timing tells which names
exist.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Protocol

from ..auth.passwords import MAX_PASSWORD, MIN_PASSWORD
from ..auth.tokens import (
    hash_secret,
    new_api_token,
    new_session_secret,
    plausible_api_token,
    plausible_session_secret,
)
from .errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    RegistrationClosed,
    TooLong,
    Unauthorized,
)
from .events import Control, Event, Scope, dumps
from .model import ApiToken, Role, SessionInfo, User, now_ms
from .names import check_user_name, fold
from .ratelimit import Clock, WindowCounter

if TYPE_CHECKING:
    from ..config import Settings
    from .ports import Bus, Store

log = logging.getLogger(__name__)

LOGIN_WINDOW = 15 * 60.0
"""Seconds over which failed logins are counted."""

REGISTRATION_WINDOW = 3600.0
"""Seconds over which self-registrations per address are counted (the limit is the
``registrations_per_address`` setting; admins and the CLI are not limited)."""

MAX_TOKENS_PER_USER = 50
MAX_TOKEN_NAME = 64
MAX_USER_AGENT = 256
MAX_LOGIN_NAME = 64  # longer than any valid name; longer input is not looked up

WRONG_CREDENTIALS = "wrong name or password"


class WrongPassword(Forbidden):
    """The current password given to change it is wrong (403, not 401: the
    session itself is fine)."""

    code = "wrong_password"


class PasswordHashing(Protocol):
    """What accounts need from a password hasher (:class:`hubbub.auth.passwords.PasswordHasher`)."""

    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...
    async def verify_dummy(self, password: str) -> None: ...
    def needs_rehash(self, password_hash: str) -> bool: ...


def address_key(address: str) -> str:
    """The rate-limit key of a client address: IPv6 by its /64, since one host
    usually holds a whole /64; anything unparsable as itself (bounded)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password is at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise TooLong(f"a password is at most {MAX_PASSWORD} characters")


class Accounts:
    """The account service: the web layer and the CLI call it, never the store directly."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        hasher: PasswordHashing,
        bus: Bus,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.hasher = hasher
        self.bus = bus
        self._failed_by_account = WindowCounter(
            settings.login_attempts_per_account, LOGIN_WINDOW, clock=clock
        )
        self._failed_by_address = WindowCounter(
            settings.login_attempts_per_address, LOGIN_WINDOW, clock=clock
        )
        self._registrations = WindowCounter(
            settings.registrations_per_address, REGISTRATION_WINDOW, clock=clock
        )

    # registration -------------------------------------------------------------
    async def register(
        self, name: str, password: str, *, trusted: bool = False, address: str | None = None
    ) -> User:
        """Create an account. The store makes the very first user admin.

        ``trusted`` (an admin, or the CLI) may register while registration is
        closed, and is not rate-limited by address.
        """
        if not trusted and not self.settings.registration_open:
            raise RegistrationClosed("registration is closed on this server")
        check_user_name(name)
        check_password(password)
        if not trusted and address is not None:
            key = address_key(address)
            self._registrations.check(key)
            self._registrations.hit(key)
        user = await self.store.create_user(name, await self.hasher.hash(password))
        log.info("registered: %s (%s)", user.name, user.role.value)
        return user

    # login and sessions -------------------------------------------------------
    async def login(
        self, name: str, password: str, address: str, user_agent: str
    ) -> tuple[str, SessionInfo, User]:
        """Check a name and password and open a session: (secret, session, user).

        Raises Unauthorized with the same message whether the name is unknown
        or the password wrong, and RateLimited past the configured attempts.
        """
        account = fold(name[:MAX_LOGIN_NAME])
        client = address_key(address)
        # Check and count in one step (no await in between), so concurrent
        # attempts cannot all slip under the limit; a success is uncounted below.
        try:
            self._failed_by_account.check(account)
            self._failed_by_address.check(client)
        except RateLimited:
            log.warning("login refused: too many failed attempts (address %s)", client)
            raise
        self._failed_by_account.hit(account)
        self._failed_by_address.hit(client)

        user = None
        if len(name) <= MAX_LOGIN_NAME and len(password) <= MAX_PASSWORD:
            user = await self.store.get_user_by_name(name)
        stored = await self.store.get_password_hash(user.id) if user is not None else None
        if user is None or stored is None:
            if len(password) <= MAX_PASSWORD:
                await self.hasher.verify_dummy(password)
            # Not the name: people type their password into the name field.
            log.info("login failed: unknown name (address %s)", address)
            raise Unauthorized(WRONG_CREDENTIALS)
        if not await self.hasher.verify(stored, password):
            log.info("login failed: wrong password for %s (address %s)", user.name, address)
            raise Unauthorized(WRONG_CREDENTIALS)

        self._failed_by_account.undo(account)
        self._failed_by_address.undo(client)
        if self.hasher.needs_rehash(stored):
            await self.store.set_password_hash(user.id, await self.hasher.hash(password))
        secret, session = await self.start_session(user, address, user_agent)
        log.info("login: %s (address %s, session %s)", user.name, address, session.id)
        return secret, session, user

    async def start_session(
        self, user: User, address: str, user_agent: str
    ) -> tuple[str, SessionInfo]:
        """Open a session for a user already authenticated (login, registration)."""
        secret = new_session_secret()
        session = await self.store.create_session(
            secret_hash=hash_secret(secret),
            user_id=user.id,
            expires_at=now_ms() + self.settings.session_days * 86_400_000,
            user_agent=_printable(user_agent)[:MAX_USER_AGENT],
            address=address[:64],
        )
        return secret, session

    async def authenticate_session(self, secret: str) -> tuple[SessionInfo, User] | None:
        """The live session and user behind a session secret, or None."""
        if not plausible_session_secret(secret):
            return None
        return await self.store.session_user(hash_secret(secret), now_ms())

    async def authenticate_token(self, token: str) -> tuple[ApiToken, User] | None:
        """The token and user behind an API token, or None."""
        if not plausible_api_token(token):
            return None
        return await self.store.token_user(hash_secret(token))

    async def sessions(self, user: User) -> list[SessionInfo]:
        return await self.store.list_sessions(user.id)

    async def revoke_session(self, user: User, session_id: str) -> None:
        """End one of the user's sessions (logout is revoking your own)."""
        if len(session_id) > 128 or not await self.store.delete_session(user.id, session_id):
            raise NotFound("no such session")
        log.info("session ended: %s (session %s)", user.name, session_id)
        await self._announce_revoked(user.id, session=session_id)

    async def change_password(
        self, user: User, old: str, new: str, *, keep_session: str | None = None
    ) -> None:
        """Change one's own password; every other session is logged out.

        API tokens stay: they are separate credentials, revoked one by one.
        """
        check_password(new)
        account = fold(user.name)
        self._failed_by_account.check(account)
        self._failed_by_account.hit(account)
        stored = await self.store.get_password_hash(user.id)
        if stored is None or not await self.hasher.verify(stored, old):
            raise WrongPassword("the current password is wrong")
        self._failed_by_account.undo(account)
        await self.store.set_password_hash(user.id, await self.hasher.hash(new))
        log.info("password changed: %s; other sessions end", user.name)
        await self._revoke_sessions(user.id, keep=keep_session)

    # API tokens ---------------------------------------------------------------
    async def create_token(self, user: User, name: str) -> tuple[str, ApiToken]:
        """A new API token: (secret, token). The secret is never shown again."""
        name = name.strip()
        if not name:
            raise InvalidInput("a token needs a name")
        if len(name) > MAX_TOKEN_NAME:
            raise TooLong(f"a token name is at most {MAX_TOKEN_NAME} characters")
        if _printable(name) != name:
            raise InvalidInput("a token name may not contain control characters")
        if len(await self.store.list_tokens(user.id)) >= MAX_TOKENS_PER_USER:
            raise InvalidInput(f"at most {MAX_TOKENS_PER_USER} tokens per user; delete one first")
        secret = new_api_token()
        token = await self.store.create_token(
            user_id=user.id, name=name, token_hash=hash_secret(secret)
        )
        log.info("API token created: %s (token %d)", user.name, token.id)
        return secret, token

    async def tokens(self, user: User) -> list[ApiToken]:
        return await self.store.list_tokens(user.id)

    async def delete_token(self, user: User, token_id: int) -> None:
        if not await self.store.delete_token(user.id, token_id):
            raise NotFound("no such token")
        log.info("API token revoked: %s (token %d)", user.name, token_id)
        await self._announce_revoked(user.id, token=token_id)

    # the admin's operations (CLI) ---------------------------------------------
    async def user_named(self, name: str) -> User:
        user = await self.store.get_user_by_name(name) if len(name) <= MAX_LOGIN_NAME else None
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    async def users(self, *, after_id: int = 0, limit: int = 100) -> list[User]:
        return await self.store.list_users(after_id=after_id, limit=limit)

    async def set_password(self, name: str, password: str) -> User:
        """Set a user's password without the old one; logs out all their sessions."""
        check_password(password)
        user = await self.user_named(name)
        await self.store.set_password_hash(user.id, await self.hasher.hash(password))
        log.info("password set by an admin: %s; their sessions end", user.name)
        await self._revoke_sessions(user.id)
        return user

    async def set_admin(self, name: str, admin: bool = True) -> User:
        user = await self.user_named(name)
        await self.store.set_role(user.id, Role.ADMIN if admin else Role.MEMBER)
        updated = await self.store.get_user(user.id)
        assert updated is not None
        log.info("role of %s is now %s", updated.name, updated.role.value)
        return updated

    async def remove_user(self, name: str) -> User:
        """Delete an account; its name stays taken (a name is an identity)."""
        user = await self.user_named(name)
        await self.store.delete_user(user.id)
        log.info("user removed: %s", user.name)
        await self._announce_revoked(user.id)  # naming no credential: every connection
        return user

    # internals ------------------------------------------------------------------
    async def _revoke_sessions(self, user_id: int, *, keep: str | None = None) -> None:
        for session in await self.store.list_sessions(user_id):
            if session.id != keep and await self.store.delete_session(user_id, session.id):
                await self._announce_revoked(user_id, session=session.id)

    async def _announce_revoked(
        self, user_id: int, *, session: str | None = None, token: int | None = None
    ) -> None:
        """Tell the user's connections that a credential is gone, so the ones
        opened with it close (the WebSocket session acts on ``Control.REVOKE``).

        ``{"session": id}`` names a login session, ``{"token": id}`` an API
        token, and neither means every connection of the user.
        """
        payload: dict[str, object] = {"type": "revoked"}
        if session is not None:
            payload["session"] = session
        if token is not None:
            payload["token"] = token
        await self.bus.publish(Event(Scope.USER, user_id, dumps(payload), control=Control.REVOKE))


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())
