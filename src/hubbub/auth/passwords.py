"""Password hashing with argon2id (RFC 9106), off the event loop.

Hashing is deliberately slow (tens of milliseconds and tens of MiB), so every
hash and verify runs in a worker thread: the loop keeps serving sockets while a
login is checked. A stored hash made with older parameters still verifies and
is reported by :meth:`PasswordHasher.needs_rehash`, so the caller can store a
fresh one after a successful login.
"""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class PasswordHasher:
    """argon2id with the library's defaults (RFC 9106 "low memory"), or given parameters."""

    def __init__(
        self,
        *,
        time_cost: int = argon2.DEFAULT_TIME_COST,
        memory_cost: int = argon2.DEFAULT_MEMORY_COST,
        parallelism: int = argon2.DEFAULT_PARALLELISM,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None

    @classmethod
    def fast(cls) -> PasswordHasher:
        """Cheap parameters for tests only: never use them for real accounts."""
        return cls(time_cost=1, memory_cost=8, parallelism=1)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; a malformed stored hash never matches."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verify, for a user that does not exist.

        Without it, "unknown user" answers faster than "wrong password" and the
        timing tells which names exist.
        """
        if self._dummy is None:
            self._dummy = await self.hash("not the password of anyone")
        await self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
