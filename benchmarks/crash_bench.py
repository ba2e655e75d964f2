"""Crash under load: `serve` is killed with SIGKILL in the middle of a burst, restarted, and every
update that got no 200 is delivered again, as Telegram does.

    .venv/bin/python benchmarks/crash_bench.py [--citizens 500] [--messages 10] [--kill-after 4]

Checks, and prints:
* acknowledged updates lost: updates answered 200 before the kill whose turn is not in the
  database after it (must be 0);
* updates processed twice: every citizen's events, in order, must equal what the pure engine
  writes for that citizen's script (benchmarks/citizens.py) read once, message by message;
  a lost or doubled message changes the sequence (must be 0 citizens off);
* the outbox rows pending at the kill, and the time from the restart to GET /healthz
  answering 200 (goal: within 2 s with 1,000 rows pending), while they are resent in the
  background.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from citizens import replay  # noqa: E402
from webhook_load import (  # noqa: E402
    deliver,
    free_port,
    scripts,
    settle,
    start_fake_api,
    start_serve,
    stop,
    update_id,
    wait_healthy,
    wait_port,
)

from bot.content import load  # noqa: E402
from bot.privacy import user_key  # noqa: E402
from bot.settings import VIETNAM_TZ  # noqa: E402

HASH_SECRET = b"bench-hash-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10, help="messages per citizen")
    parser.add_argument("--kill-after", type=float, default=4.0, help="seconds of load before SIGKILL")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="crash-bench-")
    db = os.path.join(tmp, "bot.db")
    env = {"BOT_MESSAGES_PER_MINUTE": "0"}  # every update counts here; the rate limit has its own tests
    api_port, port = free_port(), free_port()
    api = start_fake_api(api_port)
    wait_port(api_port)
    plan = scripts(args.citizens, args.messages)
    total = args.citizens * args.messages

    serve = start_serve(db, port, api_port, **env)
    try:
        wait_healthy(port)
        acked: set[int] = set()
        killer = threading.Timer(args.kill_after, lambda: serve.send_signal(signal.SIGKILL))
        killer.start()
        asyncio.run(deliver(port, plan, acked))
        serve.wait()
        killer.cancel()

        with sqlite3.connect(db) as conn:
            processed = {
                int(r[0]) for r in conn.execute("SELECT event_id FROM processed_updates WHERE channel = 'telegram'")
            }
            pending = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        lost = acked - processed
        print(
            f"before the kill: {len(acked)} of {total} updates acknowledged, {len(processed)} committed, "
            f"{len(processed - acked)} committed without a 200 yet; {pending} outbox rows pending"
        )
        print(f"acknowledged but lost: {len(lost)}")

        serve = start_serve(db, port, api_port, **env)
        started = time.perf_counter()
        wait_healthy(port, timeout=60)
        print(f"restart: /healthz answered after {time.perf_counter() - started:.2f} s with {pending} rows to resend")

        asyncio.run(deliver(port, plan, acked, skip=set(acked)))
        sent = settle(api_port, quiet=3.0, timeout=600)
        stop(serve)

        content = load(ROOT)
        now = datetime.now(VIETNAM_TZ)
        with sqlite3.connect(db) as conn:
            processed = {
                int(r[0]) for r in conn.execute("SELECT event_id FROM processed_updates WHERE channel = 'telegram'")
            }
            left = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            off = 0
            for c, messages in enumerate(plan):
                key = user_key(HASH_SECRET, "telegram", str(10_000 + c))
                got = [
                    r[0]
                    for r in conn.execute(
                        "SELECT type FROM events WHERE user_key = ? AND type NOT IN ('replies-superseded') ORDER BY id",
                        (key,),
                    )
                ]
                if got != list(replay(content, messages, now)):
                    off += 1
        expected = {update_id(c, i) for c in range(args.citizens) for i in range(args.messages)}
        print(
            f"after redelivery: {len(processed & expected)} of {total} updates committed, "
            f"{len(expected - processed)} missing; citizens whose events differ from one reading of their "
            f"messages: {off}; {sent} messages delivered to the fake Bot API in all; {left} outbox rows left"
        )
        ok = not lost and processed >= expected and off == 0
        print("RESULT:", "ok" if ok else "FAILED")
        sys.exit(0 if ok else 1)
    finally:
        stop(serve)
        stop(api)


if __name__ == "__main__":
    main()
