"""Users: accounts whose names are never given to another person."""

from __future__ import annotations

import sqlalchemy as sa

from hubbub.core.errors import NameTaken, NotFound
from hubbub.core.model import Role, User, now_ms
from hubbub.core.names import fold

from . import rows
from . import schema as t
from .base import StoreBase, translating

_live = ~t.users.c.deleted
_USER_COLUMNS = (t.users.c.id, t.users.c.name, t.users.c.role, t.users.c.created_at)


class UserQueries(StoreBase):
    async def create_user(self, name: str, password_hash: str | None) -> User:
        """Create a user; the very first user becomes admin (atomically).

        Raises NameTaken when the folded name exists, deleted users included.
        """
        created_at = now_ms()
        with translating(unique=NameTaken(f"the name {name!r} is taken")):
            async with self._write() as conn:
                if not self._sqlite:
                    # Two first users at once must not both become admin. SQLite
                    # needs nothing: BEGIN IMMEDIATE already serialises writers.
                    await conn.execute(sa.text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
                anyone = await conn.scalar(sa.select(t.users.c.id).limit(1))
                role = Role.MEMBER if anyone is not None else Role.ADMIN
                user_id = await conn.scalar(
                    sa.insert(t.users)
                    .values(
                        name=name,
                        name_key=fold(name),
                        password_hash=password_hash,
                        role=role.value,
                        created_at=created_at,
                        deleted=False,
                    )
                    .returning(t.users.c.id)
                )
        assert user_id is not None
        return User(id=user_id, name=name, role=role, created_at=created_at)

    async def get_user(self, user_id: int) -> User | None:
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(*_USER_COLUMNS).where(t.users.c.id == user_id, _live))
            ).first()
        return None if row is None else rows.user(row)

    async def get_user_by_name(self, name: str) -> User | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(*_USER_COLUMNS).where(t.users.c.name_key == fold(name), _live)
                )
            ).first()
        return None if row is None else rows.user(row)

    async def list_users(self, *, after_id: int = 0, limit: int = 100) -> list[User]:
        async with self._read() as conn:
            result = await conn.execute(
                sa.select(*_USER_COLUMNS)
                .where(t.users.c.id > after_id, _live)
                .order_by(t.users.c.id)
                .limit(max(0, min(limit, 1000)))
            )
            return [rows.user(row) for row in result]

    async def count_users(self) -> int:
        async with self._read() as conn:
            count = await conn.scalar(sa.select(sa.func.count()).where(_live))
        return int(count or 0)

    async def get_password_hash(self, user_id: int) -> str | None:
        async with self._read() as conn:
            value = await conn.scalar(
                sa.select(t.users.c.password_hash).where(t.users.c.id == user_id, _live)
            )
        return None if value is None else str(value)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._update_user(user_id, password_hash=password_hash)

    async def set_role(self, user_id: int, role: Role) -> None:
        await self._update_user(user_id, role=role.value)

    async def _update_user(self, user_id: int, **values: object) -> None:
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(t.users).where(t.users.c.id == user_id, _live).values(**values)
            )
        if result.rowcount == 0:
            raise NotFound("no such user", user_id=user_id)

    async def delete_user(self, user_id: int) -> None:
        """Remove the account's sessions, tokens, memberships and IRC networks.

        The row stays, marked deleted, so the name stays reserved.
        Raises NotFound when there is no such (live) user.
        """
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id, _live)
                .values(deleted=True, password_hash=None)
            )
            if result.rowcount == 0:
                raise NotFound("no such user", user_id=user_id)
            for table in (t.sessions, t.api_tokens, t.members, t.networks):
                await conn.execute(sa.delete(table).where(table.c.user_id == user_id))
