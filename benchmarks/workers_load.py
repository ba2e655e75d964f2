"""Webhook load on PostgreSQL with 1 and 2 workers (`serve --workers N`), and the same under crashes.

    .venv/bin/python benchmarks/workers_load.py --postgres postgresql://… [--citizens 1000] [--messages 10]
        [--connections 100] [--workers 1 2] [--kill-after 3] [--restart-db-after 6 --restart-db "pg_ctl … restart"]
        [--pause S]

Each run gets a new schema on the server, a fake Telegram Bot API process and a `serve` on loopback.
1,000 scripted citizens (benchmarks/citizens.py) post 10 updates each, each citizen's next once the
previous got its 200 (and ``--pause`` seconds more), over at most ``--connections`` connections at once. Printed per run:
* accepted updates per second, and the p50/p99 time from posting an update to its 200 (counted from when
  the request got one of the ``--connections``, like Telegram's max_connections: the server's answer time);
* the time until every reply reached the fake Bot API (the outbox empty);
* exactly once: every update committed (processed ids = the updates sent), and every citizen's events
  equal to what the pure engine writes reading their messages once each, in order;
* every reply delivered once, in order: each chat's texts at the fake API equal the texts the engine's
  replies render to (the messages of turns superseded under backlog excepted, counted apart).

``--kill-after S`` SIGKILLs one worker S seconds into the load (the parent starts it again; updates
that got no 200 are posted again, as Telegram does); ``--restart-db-after S --restart-db CMD`` runs CMD
(which restarts the PostgreSQL server) S seconds in. Replies of turns the killed worker committed but had
not sent are sent by another worker once its claim runs out (60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from citizens import Message, replay  # noqa: E402
from turn_bench import pg_schema  # noqa: E402
from webhook_load import (  # noqa: E402
    deliver,
    free_port,
    scripts,
    start_fake_api,
    start_serve,
    stop,
    update_id,
    wait_healthy,
    wait_port,
)

from bot import engine  # noqa: E402
from bot.channels.telegram import render  # noqa: E402
from bot.content import load  # noqa: E402
from bot.engine import Content, EngineConfig, Session  # noqa: E402
from bot.privacy import user_key  # noqa: E402
from bot.settings import VIETNAM_TZ  # noqa: E402

HASH_SECRET = b"bench-hash-secret"


def rendered(content: Content, messages: list[Message], now: datetime) -> list[str]:
    """The texts Telegram receives for these messages read once each, in order."""
    session, out = Session(), []
    for msg in messages:
        result = engine.step(content, session, msg.inbound("k"), now, EngineConfig())
        session = result.session
        out += [text for reply in result.replies for text, _ in render(reply)]
    return out


def in_order_within(got: list[str], want: list[str]) -> bool:
    """Whether ``got`` is ``want`` with some messages left out: nothing extra, nothing twice, nothing moved."""
    remaining = iter(want)
    return all(any(text == expected for expected in remaining) for text in got)


def workers_of(parent: subprocess.Popen[bytes]) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent.pid:
                    out.append(int(entry.name))
            except OSError:
                continue
    return sorted(out)


def run(args: argparse.Namespace, workers: int, tag: str) -> bool:
    db = pg_schema(args.postgres, f"load_{tag}")
    api_port, port = free_port(), free_port()
    api = start_fake_api(api_port)
    wait_port(api_port)
    env = {"BOT_MESSAGES_PER_MINUTE": "0", "BOT_MAX_IN_FLIGHT": "1000"}
    serve = start_serve(db, port, api_port, workers=workers, **env)
    plan = scripts(args.citizens, args.messages)
    total = args.citizens * args.messages
    timers: list[threading.Timer] = []
    try:
        wait_healthy(port, timeout=60)
        if args.kill_after:
            victim = (workers_of(serve) or [serve.pid])[0] if workers > 1 else serve.pid
            timers.append(threading.Timer(args.kill_after, lambda: os.kill(victim, signal.SIGKILL)))
        if args.restart_db_after and args.restart_db:
            timers.append(
                threading.Timer(args.restart_db_after, lambda: subprocess.run(args.restart_db, shell=True, check=False))
            )
        for timer in timers:
            timer.start()
        acked: set[int] = set()
        latencies: list[float] = []
        start = time.perf_counter()
        asyncio.run(deliver(port, plan, acked, connections=args.connections, pause=args.pause, latencies=latencies))
        while len(acked) < total:  # a worker died under some citizens: post what got no 200 again
            if workers == 1 and serve.poll() is not None:
                serve = start_serve(db, port, api_port, **env)
            wait_healthy(port, timeout=60)
            asyncio.run(deliver(port, plan, acked, skip=set(acked), connections=args.connections))
        committed = time.perf_counter() - start
        with psycopg.connect(db) as conn:
            while True:
                left = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
                if not left or not left[0] or time.perf_counter() - start > 600:
                    break
                time.sleep(0.2)
        all_sent = time.perf_counter() - start
        superseded = int(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["replies_superseded"])
        log = httpx.get(f"http://127.0.0.1:{api_port}/log", timeout=30).json()
        content, now = load(ROOT), datetime.now(VIETNAM_TZ)
        with psycopg.connect(db) as conn:
            processed = {int(r[0]) for r in conn.execute("SELECT event_id FROM processed_updates")}
            events: dict[str, list[str]] = {}
            for key, kind in conn.execute(
                "SELECT user_key, type FROM events WHERE type <> 'replies-superseded' ORDER BY id"
            ):
                events.setdefault(key, []).append(kind)
        expected = {update_id(c, i) for c in range(args.citizens) for i in range(args.messages)}
        events_off = exact = disordered = last_missing = 0
        for c, messages in enumerate(plan):
            key = user_key(HASH_SECRET, "telegram", str(10_000 + c))
            if events.get(key, []) != list(replay(content, messages, now)):
                events_off += 1
            want, got = rendered(content, messages, now), log.get(str(10_000 + c), [])
            exact += got == want
            # superseded turns' messages are left out (a newer turn's replies replaced them); what was
            # sent must still be the expected messages, in order, none twice, and the last one there
            if not in_order_within(got, want) and os.environ.get("LOAD_DEBUG"):
                with open(os.environ["LOAD_DEBUG"], "a") as fh:
                    fh.write(f"citizen {c}\nWANT {[w[:30] for w in want]}\nGOT  {[g[:30] for g in got]}\n")
            disordered += not in_order_within(got, want)
            last_missing += not got or got[-1] != want[-1]
        lat = sorted(latencies)
        print(
            f"{workers} worker(s){' + crash' if timers else ''}: {len(acked)} updates acknowledged in "
            f"{committed:.1f} s = {len(acked) / committed:.0f}/s; 200 after p50 {1000 * lat[len(lat) // 2]:.0f} ms, "
            f"p99 {1000 * lat[int(len(lat) * 0.99)]:.0f} ms; every reply sent after {all_sent:.1f} s"
        )
        print(
            f"    committed {len(processed & expected)}/{total} (missing {len(expected - processed)}); "
            f"citizens whose events differ from one reading: {events_off}; replies: {exact} citizens got exactly "
            f"the expected messages, {disordered} got some twice or out of order, {last_missing} lack the last "
            f"one ({superseded} turns' replies superseded under backlog)"
        )
        return processed == expected and events_off == 0 and disordered == 0 and last_missing == 0
    finally:
        for timer in timers:
            timer.cancel()
        stop(serve)
        stop(api)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, metavar="URL")
    parser.add_argument("--citizens", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--pause", type=float, default=0.0, help="seconds a citizen waits after each 200 (a paced load, not a flood)"
    )
    parser.add_argument("--kill-after", type=float, default=0.0, help="SIGKILL one worker after S seconds")
    parser.add_argument("--restart-db-after", type=float, default=0.0)
    parser.add_argument("--restart-db", default="", help="a shell command that restarts the PostgreSQL server")
    args = parser.parse_args()
    ok = all(run(args, n, f"{n}w{os.getpid()}") for n in args.workers)
    print("RESULT:", "ok" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
