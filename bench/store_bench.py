#!/usr/bin/env python3
"""Store benchmarks for bench/run.py: durable sends, history and full-text search.

    .venv/bin/python bench/store_bench.py durable --url URL [--schema S]
        [--concurrency C] [--duration S] [--rate MSGS_PER_S]
    .venv/bin/python bench/store_bench.py history --url URL --count M [--queries Q]

Both print one JSON object on stdout. They use Hubbub's own store
(``hubbub.store.open_store``) in this process, which bench/run.py pins to the
server's core, so the figures are those of the store and its group-commit
writer without the WebSocket layer in front (scenario 1 measures that).

``durable``: C tasks each append, wait for the commit (the ack), append the
next: acknowledged messages per second at saturation; with --rate, the
appends start at that total rate (open loop, one task per append) and the
latency from the scheduled start to the commit is the ack latency. Every
append carries a nonce; the result checks that every acked message was stored
once (count and dense seqs).

``history``: bulk-loads M messages into a fresh SQLite database with plain SQL
(the FTS index is rebuilt once at the end instead of by the per-row trigger),
half of them in the measured room and the rest spread over 15 others, then
times ``Store.history`` (latest 50; 50 before a random seq deep in the past)
and ``Store.search`` (a common word, a rare word, two words) through the store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hubbub.core.model import (
    LOCAL_NETWORK_ID,
    ConversationKind,
    MemberRole,
    MessageKind,
    NewMessage,
    Visibility,
    new_message_id,
)
from hubbub.store import open_store


def quantiles(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {}
    xs = sorted(samples_s)

    def q(p: float) -> float:
        return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 3)

    return {
        "count": len(xs),
        "p50_ms": q(0.5),
        "p90_ms": q(0.9),
        "p99_ms": q(0.99),
        "max_ms": round(xs[-1] * 1000, 3),
        "mean_ms": round(statistics.fmean(xs) * 1000, 3),
    }


# -- durable sends -------------------------------------------------------------------


async def durable(args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(args.url, schema=args.schema)
    await store.start()
    try:
        run = f"{time.time_ns():x}"
        users = [await store.create_user(f"d{run}{i}", None) for i in range(8)]
        room = await store.create_conversation(
            network_id=LOCAL_NETWORK_ID,
            kind=ConversationKind.ROOM,
            name=f"durable-{run}",
            visibility=Visibility.PUBLIC,
            owner_id=users[0].id,
        )
        for u in users[1:]:
            await store.add_member(room.id, u.id, MemberRole.MEMBER)
        counter = 0
        latencies: list[float] = []
        append_latencies: list[float] = []  # fixed rate: from the append call, not the due time
        acked = 0
        # SQLite: the WAL file's size, sampled every 50 ms (it must stay bounded).
        wal = Path(store.engine.url.database) if store.engine.url.database else None
        wal_sizes: list[int] = []

        def sample_wal() -> None:
            with contextlib.suppress(OSError):
                wal_sizes.append(Path(f"{wal}-wal").stat().st_size)
            if loop.time() < t_end:
                loop.call_later(0.05, sample_wal)

        def new() -> NewMessage:
            nonlocal counter
            counter += 1
            u = users[counter % len(users)]
            return NewMessage(
                conversation_id=room.id,
                kind=MessageKind.TEXT,
                text=f"durable message {counter} " + "x" * 40,
                sender_id=u.id,
                sender=u.name,
                nonce=f"{run}-{counter}",
            )

        loop = asyncio.get_running_loop()
        t_end = loop.time() + args.warmup + args.duration
        t_measure = loop.time() + args.warmup
        cpu: list[float] = []  # this process's CPU seconds at t_measure and at the end

        def cpu_now() -> float:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime

        loop.call_at(t_measure, lambda: cpu.append(cpu_now()))
        if wal is not None:
            sample_wal()
        if args.rate <= 0:

            async def worker() -> None:
                nonlocal acked
                while (t0 := loop.time()) < t_end:
                    p0 = time.perf_counter()
                    await store.append(new())
                    if t0 >= t_measure:
                        acked += 1
                        latencies.append(time.perf_counter() - p0)

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            cpu.append(cpu_now())
        else:
            # Only the appends in flight are kept: holding every finished task
            # (20,000 in a 4 s run) made the bench's own heap grow until the
            # garbage collector's full passes stopped the loop for ~50 ms, twice
            # a run, which was most of the ack p99 it reported
            # (docs/performance/durable.md).
            tasks: set[asyncio.Task[None]] = set()

            # Latencies by perf_counter: uvloop's loop.time() counts whole milliseconds.
            async def one(due: float, measured: bool) -> None:
                nonlocal acked
                start = time.perf_counter()
                await store.append(new())
                if measured:
                    end = time.perf_counter()
                    acked += 1
                    latencies.append(end - due)
                    append_latencies.append(end - start)

            t0 = loop.time()
            p0 = time.perf_counter()
            i = 0
            while True:
                due = t0 + i / args.rate
                now = loop.time()
                if due >= t_end:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                task = asyncio.create_task(one(p0 + i / args.rate, due >= t_measure))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.gather(*tasks)
            cpu.append(cpu_now())
        stats = store.writer_stats
        # Every acked message stored exactly once, with dense seqs.
        async with store.engine.connect() as conn:
            from sqlalchemy import text

            prefix = "" if args.schema is None else f"{args.schema}."
            row = (
                await conn.execute(
                    text(
                        f"SELECT count(*), min(seq), max(seq), count(DISTINCT nonce) "
                        f"FROM {prefix}messages WHERE conversation_id = :c"
                    ),
                    {"c": room.id},
                )
            ).one()
        return {
            "outcome": "ok",
            "engine": "sqlite" if args.url.startswith("sqlite") else "postgresql",
            "mode": "saturating" if args.rate <= 0 else "fixed-rate",
            "concurrency": args.concurrency if args.rate <= 0 else None,
            "rate": args.rate or None,
            "duration_s": args.duration,
            "acked": acked,
            "acked_per_s": round(acked / args.duration, 1),
            "ack_latency": quantiles(latencies),
            "append_latency": quantiles(append_latencies) or None,
            "wal_max_bytes": max(wal_sizes) if wal_sizes else None,
            "appended": counter,
            "stored": row[0],
            "dense": row[0] == counter and row[1] == 1 and row[2] == counter,
            "distinct_nonces": row[3],
            "batches": stats.batches,
            "mean_batch": round(stats.messages / stats.batches, 1) if stats.batches else 0,
            "largest_batch": stats.largest_batch,
            # CPU of this process (loop, writer, aiosqlite's thread) per acked
            # message while measured: what each ack costs, whatever else runs
            # on the core (the latencies are not: they wait for the core).
            "cpu_us_per_ack": round((cpu[-1] - cpu[0]) / acked * 1e6, 1)
            if len(cpu) == 2 and acked
            else None,
        }
    finally:
        if args.schema and args.drop_schema:
            from sqlalchemy import text as sql_text

            async with store.engine.begin() as conn:
                await conn.execute(sql_text(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE'))
        await store.close()


# -- history and search --------------------------------------------------------------

ROOMS = 16
COMMON = "lorem"  # in every 10th message
RARE = "zanzibar"  # in every 100,000th message


def load(db: Path, count: int) -> dict[str, Any]:
    """Create the schema through Hubbub's migrations, then bulk-insert ``count`` messages."""

    async def prepare() -> None:
        store = open_store(f"sqlite+aiosqlite:///{db}")
        await store.start()
        users = [await store.create_user(f"h{i}", None) for i in range(8)]
        for r in range(ROOMS):
            await store.create_conversation(
                network_id=LOCAL_NETWORK_ID,
                kind=ConversationKind.ROOM,
                name=f"history-{r}",
                visibility=Visibility.PUBLIC,
                owner_id=users[0].id,
            )
        await store.close()

    asyncio.run(prepare())
    t0 = time.monotonic()
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous = OFF")  # a bench database, thrown away afterwards
    con.execute("PRAGMA cache_size = -262144")
    users = con.execute("SELECT id, name FROM users ORDER BY id").fetchall()
    rooms = [r for (r,) in con.execute("SELECT id FROM conversations ORDER BY id")]
    con.execute("DROP TRIGGER messages_fts_ai")
    rng = random.Random(5)
    vocab = [f"w{i:x}" for i in range(20000)]
    seqs = dict.fromkeys(rooms, 0)
    ts0 = int(time.time() * 1000) - count * 10
    chunk = 100_000
    for start in range(0, count, chunk):
        batch = []
        for i in range(start, min(count, start + chunk)):
            # half of all messages in rooms[0], the rest spread over the others
            cid = rooms[0] if i % 2 == 0 else rooms[1 + (i // 2) % (len(rooms) - 1)]
            seqs[cid] += 1
            uid, name = users[i % len(users)]
            words = rng.choices(vocab, k=8)
            if i % 10 == 0:
                words[3] = COMMON
            if i % 100_000 == 7:
                words[5] = RARE
            batch.append(
                (new_message_id(), cid, seqs[cid], ts0 + i * 10, uid, name, "text", " ".join(words))
            )
        con.executemany(
            "INSERT INTO messages (id, conversation_id, seq, ts, sender_id, sender, kind, text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        con.commit()
    t_rows = time.monotonic() - t0
    con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    con.execute(
        "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts(rowid, text) VALUES (new.pk, new.text); END"
    )
    for cid, seq in seqs.items():
        con.execute("UPDATE conversations SET last_seq = ? WHERE id = ?", (seq, cid))
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return {
        "count": count,
        "rows_s": round(t_rows, 1),
        "load_s": round(time.monotonic() - t0, 1),
        "room": rooms[0],
        "room_messages": seqs[rooms[0]],
        "db_mib": round(db.stat().st_size / 2**20, 1),
    }


async def measure_history(db: Path, info: dict[str, Any], queries: int) -> dict[str, Any]:
    store = open_store(f"sqlite+aiosqlite:///{db}")
    await store.start()
    room, top = info["room"], info["room_messages"]
    rooms = list(range(room, room + ROOMS))
    rng = random.Random(9)
    out: dict[str, Any] = {}
    try:

        async def timed(name: str, make: Any, n: int = queries) -> None:
            await make()  # warm
            xs, found = [], 0
            stop = time.perf_counter() + 10.0  # at most 10 s per query kind (at least 20 queries)
            for i in range(n):
                if i >= 20 and time.perf_counter() > stop:
                    break
                t0 = time.perf_counter()
                got = await make()
                xs.append(time.perf_counter() - t0)
                found = len(got)
            out[name] = {**quantiles(xs), "results": found}

        await timed("latest_50", lambda: store.history(room, limit=50))
        await timed(
            "deep_page_50",
            lambda: store.history(room, before=rng.randint(51, max(52, top // 10)), limit=50),
        )
        await timed("search_common_50", lambda: store.search(rooms, COMMON, limit=50))
        await timed("search_rare", lambda: store.search(rooms, RARE, limit=50))
        await timed("search_two_words_50", lambda: store.search(rooms, f"{COMMON} w1a", limit=50))
    finally:
        await store.close()
    return out


def history(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-history-", dir=args.dir) as tmp:
        db = Path(tmp) / "history.db"
        info = load(db, args.count)
        print(f"store_bench: loaded {info}", file=sys.stderr, flush=True)
        result = asyncio.run(measure_history(db, info, args.queries))
    return {"outcome": "ok", "engine": "sqlite", "load": info, **result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("durable")
    d.add_argument("--url", required=True)
    d.add_argument("--schema", help="PostgreSQL: a schema of its own")
    d.add_argument("--drop-schema", action="store_true", help="drop that schema afterwards")
    d.add_argument("--concurrency", type=int, default=512)
    d.add_argument("--rate", type=float, default=0.0)
    d.add_argument("--duration", type=float, default=3.0)
    d.add_argument("--warmup", type=float, default=1.0)
    h = sub.add_parser("history")
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--queries", type=int, default=200)
    h.add_argument("--dir", default=None)
    args = ap.parse_args()
    if args.cmd == "durable":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        out = asyncio.run(durable(args))
    else:
        out = history(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
