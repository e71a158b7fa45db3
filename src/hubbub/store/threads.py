"""What the store's worker threads (SQLite's writer, its read connections) share."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


def settle_from_thread(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any, *, failed: bool
) -> None:
    """From a worker thread: give ``future`` (of ``loop``) its result, or
    ``value`` as its exception when ``failed``, in one ``call_soon_threadsafe``.
    A future already done (its caller was cancelled) is left alone; a closed
    loop has nobody waiting any more."""

    def settle() -> None:
        if future.done():
            return
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)

    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
