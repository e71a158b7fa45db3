"""Browser sessions and API tokens; only hashes of their secrets are stored."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from hubbub.core.model import ApiToken, Role, SessionInfo, User, now_ms

from . import rows
from . import schema as t
from .base import StoreBase, translating

TOUCH_INTERVAL_MS = 60_000
"""``last_seen``/``last_used`` are written at most this often: a write (and on
SQLite an fsync) per request would cost more than the minute of precision."""

_USER_COLUMNS = (
    t.users.c.id.label("u_id"),
    t.users.c.name.label("u_name"),
    t.users.c.role.label("u_role"),
    t.users.c.created_at.label("u_created_at"),
)


# Looked up at every WebSocket handshake and REST request: compiled once, on SQLite
# read without a pool checkout (StoreBase._fetch).
_TOKEN_USER = (
    sa.select(t.api_tokens, *_USER_COLUMNS)
    .join(t.users, t.users.c.id == t.api_tokens.c.user_id)
    .where(t.api_tokens.c.token_hash == sa.bindparam("token_hash"), ~t.users.c.deleted)
)
_SESSION_USER = (
    sa.select(t.sessions, *_USER_COLUMNS)
    .join(t.users, t.users.c.id == t.sessions.c.user_id)
    .where(t.sessions.c.secret_hash == sa.bindparam("secret_hash"), ~t.users.c.deleted)
)


def _joined_user(row: Any) -> User:
    return User(id=row.u_id, name=row.u_name, role=Role(row.u_role), created_at=row.u_created_at)


class SessionQueries(StoreBase):
    async def create_session(
        self, *, secret_hash: str, user_id: int, expires_at: int, user_agent: str, address: str
    ) -> SessionInfo:
        now = now_ms()
        info = SessionInfo(
            id=secrets.token_urlsafe(12),
            user_id=user_id,
            created_at=now,
            last_seen=now,
            expires_at=expires_at,
            user_agent=user_agent,
            address=address,
        )
        with translating(missing="no such user"):
            async with self._write() as conn:
                await conn.execute(
                    sa.insert(t.sessions).values(
                        id=info.id,
                        secret_hash=secret_hash,
                        user_id=user_id,
                        created_at=now,
                        last_seen=now,
                        expires_at=expires_at,
                        user_agent=user_agent,
                        address=address,
                    )
                )
        return info

    async def session_user(self, secret_hash: str, now: int) -> tuple[SessionInfo, User] | None:
        """The live session and its user for a secret's hash, touching last_seen.

        An expired session is deleted on sight.
        """
        found = await self._fetch(_SESSION_USER, secret_hash=secret_hash)
        row = found[0] if found else None
        if row is None:
            return None
        if row.expires_at <= now:
            await self.delete_session_by_hash(secret_hash)
            return None
        info = rows.session(row)
        if now - info.last_seen >= TOUCH_INTERVAL_MS:
            async with self._write() as conn:
                await conn.execute(
                    sa.update(t.sessions)
                    .where(t.sessions.c.id == info.id, t.sessions.c.last_seen < now)
                    .values(last_seen=now)
                )
        if now > info.last_seen:
            info = replace(info, last_seen=now)
        return info, _joined_user(row)

    async def list_sessions(self, user_id: int) -> list[SessionInfo]:
        """The user's unexpired sessions, most recently seen first."""
        async with self._read() as conn:
            result = await conn.execute(
                sa.select(t.sessions)
                .where(t.sessions.c.user_id == user_id, t.sessions.c.expires_at > now_ms())
                .order_by(t.sessions.c.last_seen.desc(), t.sessions.c.id)
            )
            return [rows.session(row) for row in result]

    async def delete_session(self, user_id: int, session_id: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(t.sessions).where(
                    t.sessions.c.id == session_id, t.sessions.c.user_id == user_id
                )
            )
        return bool(result.rowcount)

    async def delete_session_by_hash(self, secret_hash: str) -> None:
        async with self._write() as conn:
            await conn.execute(sa.delete(t.sessions).where(t.sessions.c.secret_hash == secret_hash))

    async def create_token(self, *, user_id: int, name: str, token_hash: str) -> ApiToken:
        now = now_ms()
        with translating(missing="no such user"):
            async with self._write() as conn:
                token_id = await conn.scalar(
                    sa.insert(t.api_tokens)
                    .values(user_id=user_id, name=name, token_hash=token_hash, created_at=now)
                    .returning(t.api_tokens.c.id)
                )
        assert token_id is not None
        return ApiToken(id=token_id, user_id=user_id, name=name, created_at=now, last_used=None)

    async def token_user(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The token and its user, touching last_used."""
        found = await self._fetch(_TOKEN_USER, token_hash=token_hash)
        row = found[0] if found else None
        if row is None:
            return None
        token = rows.token(row)
        now = now_ms()
        if token.last_used is None or now - token.last_used >= TOUCH_INTERVAL_MS:
            async with self._write() as conn:
                await conn.execute(
                    sa.update(t.api_tokens)
                    .where(t.api_tokens.c.id == token.id)
                    .values(last_used=now)
                )
            token = replace(token, last_used=now)
        return token, _joined_user(row)

    async def list_tokens(self, user_id: int) -> list[ApiToken]:
        async with self._read() as conn:
            result = await conn.execute(
                sa.select(t.api_tokens)
                .where(t.api_tokens.c.user_id == user_id)
                .order_by(t.api_tokens.c.id)
            )
            return [rows.token(row) for row in result]

    async def delete_token(self, user_id: int, token_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(t.api_tokens).where(
                    t.api_tokens.c.id == token_id, t.api_tokens.c.user_id == user_id
                )
            )
        return bool(result.rowcount)
