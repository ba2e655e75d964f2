"""Whole-turn throughput against raw SQLite, and CPU per webhook update.

    .venv/bin/python benchmarks/turn_bench.py [--messages 6000] [--webhook] [--postgres URL]

1. Raw baseline, measured in the same run, right before each measurement of ours (fsync speed
   drifts on a shared disk; the median of three paired ratios is printed): plain ``sqlite3``
   writing, per message, the rows a turn writes (session upsert, processed id, two events,
   outbox row, and deleting the previous outbox row) in one durable transaction (WAL,
   ``synchronous=FULL``), one after another.
2. Whole turns: the real ``Runner`` (dedupe, per-user lock, engine, group commit with the
   outbox) and ``Dispatcher`` (a no-op send, then the delivery mark) for 1, 10 and 100
   citizens typing at once, on the shipped content, with scripted citizens (benchmarks/citizens.py):
   "buttons": taps and typed numbers only; "questions": every fourth message is a free-text
   question for the matcher instead.
With ``--postgres postgresql://…`` the same two measurements run on PostgreSQL too (each in a
throwaway schema): the raw baseline is plain ``psycopg`` doing the same rows in one transaction per
message, committed durably (the server's own fsync and synchronous_commit settings), one connection.

3. ``--webhook``: ``serve`` as a real process on loopback with a fake Bot API process; 2,000
   updates from 200 citizens over HTTP; the server process's CPU time (user + system, from
   /proc) divided by the updates it committed and answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from citizens import script  # noqa: E402

from bot import engine  # noqa: E402
from bot.content import ContentHolder, load  # noqa: E402
from bot.delivery import Dispatcher  # noqa: E402
from bot.engine import Session  # noqa: E402
from bot.runner import Runner  # noqa: E402
from bot.settings import VIETNAM_TZ  # noqa: E402
from bot.storage.sqlite import MIGRATIONS  # noqa: E402

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=VIETNAM_TZ)
PAYLOADS = ("", "")


def sample_payloads() -> tuple[str, str]:
    """A real session (after 40 messages, a full history) and a real turn's replies, as the bot stores them."""
    content = load(ROOT)
    session, replies = Session(), ()
    for msg in script(content, 3, 40, NOW):
        result = engine.step(content, session, msg.inbound("k"), NOW)
        session, replies = result.session, result.replies
    return json.dumps(session.to_json(), ensure_ascii=False), json.dumps(
        [r.as_dict() for r in replies], ensure_ascii=False
    )


def raw_rate(path: str, messages: int) -> float:
    """Messages per second for plain sqlite3 doing one equivalent durable transaction per message."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for migration in MIGRATIONS:
        conn.executescript(migration)
    state, replies = PAYLOADS
    event = (0.0, "k", "telegram", "dang-ky-tam-tru", "v", "s", "step-entered", "a", "b", "choice", '{"option": "x"}')
    previous = None
    start = time.perf_counter()
    for i in range(messages):
        user = f"u{i % 100}"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT OR IGNORE INTO processed_updates (channel, event_id, seen_at) VALUES (?, ?, ?)",
            ("telegram", str(i), 0.0),
        )
        conn.execute(
            "INSERT INTO sessions (user_key, channel, state, content_version, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (user, "telegram", state, "v", 0.0),
        )
        conn.executemany(
            "INSERT INTO events (ts, user_key, channel, procedure_id, content_version, step_id, type, "
            "from_step, to_step, via, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [event, event],
        )
        cur = conn.execute(
            "INSERT INTO outbox (channel, chat, replies, created_at) VALUES (?, ?, ?, ?)",
            ("telegram", "sealed-chat-id" * 8, replies, 0.0),
        )
        if previous is not None:
            conn.execute("DELETE FROM outbox WHERE id = ?", (previous,))
        previous = cur.lastrowid
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return messages / elapsed


def raw_rate_pg(url: str, messages: int) -> float:
    """Messages per second for plain psycopg doing one equivalent transaction per message."""
    import psycopg

    from bot.storage.postgres import MIGRATIONS as PG_MIGRATIONS

    state, replies = PAYLOADS
    event = (0.0, "k", "telegram", "dang-ky-tam-tru", "v", "s", "step-entered", "a", "b", "choice", '{"option": "x"}')
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in PG_MIGRATIONS:
            for statement in migration.split(";"):
                if statement.strip():
                    conn.execute(statement.encode())
        previous = None
        start = time.perf_counter()
        for i in range(messages):
            user = f"u{i % 100}"
            with conn.transaction():
                conn.execute(
                    "INSERT INTO processed_updates (channel, event_id, seen_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    ("telegram", str(i), 0.0),
                )
                conn.execute(
                    "INSERT INTO sessions (user_key, channel, state, content_version, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_key) DO UPDATE SET state = excluded.state, "
                    "updated_at = excluded.updated_at",
                    (user, "telegram", state, "v", 0.0),
                )
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO events (ts, user_key, channel, procedure_id, content_version, step_id, type, "
                        "from_step, to_step, via, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [event, event],
                    )
                row = conn.execute(
                    "INSERT INTO outbox (channel, chat, replies, created_at) VALUES (%s, %s, %s, %s) RETURNING id",
                    ("telegram", "sealed-chat-id" * 8, replies, 0.0),
                ).fetchone()
                if previous is not None:
                    conn.execute("DELETE FROM outbox WHERE id = %s", (previous,))
                previous = row[0] if row else None
        elapsed = time.perf_counter() - start
    return messages / elapsed


def pg_schema(url: str, name: str) -> str:
    """A new empty schema on the server, and the address that uses it."""
    from urllib.parse import quote

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}".encode())
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-c search_path={name}')}"


async def turn_rate(db: str, citizens: int, messages: int, question_every: int) -> tuple[float, float]:
    """(messages per second, CPU seconds per message) for whole turns."""
    from bot.storage import open_store

    content = load(ROOT)
    store = await open_store(db)
    runner = Runner(ContentHolder(content, ROOT), store, b"bench-secret", clock=lambda: NOW)

    async def send(chat: str, replies: object, progress: object) -> None:
        return None

    dispatcher = Dispatcher("telegram", runner, send)
    per = max(messages // citizens, 1)
    scripts = [script(content, c, per, NOW, question_every) for c in range(citizens)]

    async def citizen(c: int) -> None:
        for i, msg in enumerate(scripts[c]):
            await runner.handle_for_delivery(
                msg.incoming("telegram", str(1000 + c), f"{c}:{i}"), on_commit=dispatcher.submit
            )

    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(citizen(c) for c in range(citizens)))
    await dispatcher.idle()
    await store.flush()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    counted = [
        await store.purge_counts(time.time() + 86400 * 365 * 100)  # (counts every row; deletes nothing)
    ][0]
    rows, left = counted["processed_updates"], counted["outbox"]
    await store.close()
    assert rows == per * citizens and left == 0, (rows, left)
    return per * citizens / elapsed, cpu / (per * citizens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--webhook", action="store_true", help="also measure CPU per webhook update on `serve`")
    parser.add_argument(
        "--postgres", metavar="URL", help="also measure on this PostgreSQL database (throwaway schemas)"
    )
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="turn-bench-")
    global PAYLOADS
    PAYLOADS = sample_payloads()
    print(f"raw rows per message: a session of {len(PAYLOADS[0])} bytes, replies of {len(PAYLOADS[1])} bytes")
    # fsync speed drifts a lot on a shared disk: each measurement is paired with a raw run just before
    # it, three rounds each, and the median of the paired ratios is reported.
    print(f"{'mix':9} {'citizens':>8} {'turns/s':>8} {'raw/s':>8} {'ratio':>6}  {'CPU ms/turn':>11}")
    run = 0
    backends = ["sqlite", *(["postgres"] if args.postgres else [])]
    for backend in backends:
        print(backend)
        for mix, every in (("buttons", 0), ("questions", 4)):
            for citizens in (1, 10, 100):
                rounds = []
                for _ in range(args.rounds):
                    run += 1
                    if backend == "sqlite":
                        raw = raw_rate(os.path.join(tmp, f"raw{run}.db"), args.messages)
                        ours = os.path.join(tmp, f"t{run}.db")
                    else:
                        raw = raw_rate_pg(pg_schema(args.postgres, f"bench_raw{run}"), args.messages)
                        ours = pg_schema(args.postgres, f"bench_turn{run}")
                    rate, cpu = asyncio.run(turn_rate(ours, citizens, args.messages, every))
                    rounds.append((rate / raw, rate, raw, cpu))
                ratio, rate, raw, cpu = sorted(rounds)[len(rounds) // 2]
                print(f"{mix:9} {citizens:8} {rate:8.0f} {raw:8.0f} {100 * ratio:5.1f}%  {cpu * 1000:11.2f}")
    if args.webhook:
        from webhook_load import cpu_per_update

        cpu_per_update(tmp)


if __name__ == "__main__":
    main()
