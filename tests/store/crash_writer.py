"""Run by test_store_crash.py in a child process: append forever, print each ack.

An ack line (``seq id``) is printed only after ``append`` returned, i.e. after
the commit, just as a session acknowledges a client.
"""

from __future__ import annotations

import asyncio
import sys

from hubbub.core.model import ConversationKind, MessageKind, NewMessage, Visibility
from hubbub.store import open_store


async def main(url: str, schema: str | None) -> None:
    store = open_store(url, schema=schema)
    await store.start()
    user = await store.create_user("writer", None)
    room = await store.create_conversation(
        network_id=1, kind=ConversationKind.ROOM, name="crash", visibility=Visibility.PUBLIC
    )
    print("ready", room.id, flush=True)

    async def one(i: int) -> None:
        result = await store.append(
            NewMessage(room.id, MessageKind.TEXT, f"m{i}", user.id, "writer", nonce=str(i))
        )
        sys.stdout.write(f"{result.message.seq} {result.message.id}\n")
        sys.stdout.flush()

    i = 0
    while True:
        await asyncio.gather(*(one(i + k) for k in range(25)))
        i += 25


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] or None))
