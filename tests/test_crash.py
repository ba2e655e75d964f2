"""`serve` killed with SIGKILL while citizens are writing: nothing it acknowledged is lost, nothing is done twice.

The server runs as a real process on a Unix socket (the tests open no network
connections); Zalo OA events are signed as Zalo signs them. Its replies cannot be sent
(the OA API address points nowhere) and stay in the outbox, which is what a crash
between commit and delivery looks like. benchmarks/crash_bench.py does the same at
scale over TCP with Telegram.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import GOOD, ROOT
from tests.test_zalo_oa import APP_ID, VECTOR_SECRET, event, signed

CITIZENS = 4
MESSAGES = 12
SCRIPT = [
    "dk tam tru cho nguoi thue tro",
    "1",
    "1",
    "2",
    "quay lại",
    "1",
    "lặp lại",
    "1",
    "menu",
    "dk tam tru",
    "1",
    "1",
]


def oa_env() -> dict[str, str]:
    """The environment of a `serve` taking Zalo OA events whose replies cannot be sent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_", "ZALO_"))}
    env.update(
        ZALO_OA_APP_ID=APP_ID,
        ZALO_OA_SECRET_KEY=VECTOR_SECRET,
        ZALO_OA_APP_SECRET="app-secret",
        ZALO_OA_REFRESH_TOKEN="R0",
        ZALO_OA_API_BASE_URL="http://127.0.0.1:9",  # nothing listens: replies stay in the outbox
        BOT_RELOAD_SECONDS="0",
        BOT_MESSAGES_PER_MINUTE="0",
        BOT_DRAIN_SECONDS="1",  # the replies cannot go out anyway
    )
    return env


def start(db: Path, sock: Path, log: Path) -> subprocess.Popen[bytes]:
    env = oa_env()
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--socket", str(sock), "--db", str(db), "--content", str(GOOD)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


async def wait_up(http: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("serve did not come up")


async def post_all(
    http: httpx.AsyncClient, acked: set[str], kill_after: int | None, proc: subprocess.Popen[bytes]
) -> None:
    """Each citizen sends its messages in order, the next once the previous was acknowledged."""

    async def citizen(c: int) -> None:
        for i, text in enumerate(SCRIPT[:MESSAGES]):
            msg_id = f"c{c}m{i}"
            if msg_id in acked:
                continue
            raw, mac = signed(event("user_send_text", text, msg_id=msg_id, user=f"user-{c}"))
            try:
                response = await http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
            except httpx.TransportError:
                return  # the server died: Zalo would send this again later
            assert response.status_code == 200
            acked.add(msg_id)
            if kill_after is not None and len(acked) >= kill_after and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)

    await asyncio.gather(*(citizen(c) for c in range(CITIZENS)))


def processed(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0].split(":", 1)[1] for r in conn.execute("SELECT event_id FROM processed_updates")}


async def test_sigkill_under_load_loses_no_acknowledged_message_and_repeats_none(tmp_path: Path) -> None:
    db, sock = tmp_path / "bot.db", tmp_path / "bot.sock"
    transport = httpx.AsyncHTTPTransport(uds=str(sock))
    acked: set[str] = set()
    log = tmp_path / "serve.log"
    proc = start(db, sock, log)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot", timeout=10) as http:
            await wait_up(http)
            await post_all(http, acked, kill_after=CITIZENS * MESSAGES // 2, proc=proc)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert acked <= processed(db)  # every 200 was backed by a committed turn
        with sqlite3.connect(db) as conn:
            waiting = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        assert waiting > 0  # replies committed but not delivered when it died

        proc = start(db, sock, log)  # the left-over socket file of the dead process is taken over
        started = time.perf_counter()
        async with httpx.AsyncClient(transport=transport, base_url="http://bot", timeout=10) as http:
            await wait_up(http)
            assert time.perf_counter() - started < 10
            health = (await http.get("/healthz")).json()
            assert health["ok"] is True
            before = len(acked)
            await post_all(http, acked, kill_after=None, proc=proc)  # Zalo redelivers what got no 200
            # ...and a redelivery of something already acknowledged is answered without being done again
            raw, mac = signed(event("user_send_text", "1", msg_id="c0m1", user="user-0"))
            assert (
                await http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
            ).status_code == 200
        assert len(acked) == CITIZENS * MESSAGES > before
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert processed(db) == acked
    with sqlite3.connect(db) as conn:
        per_user = conn.execute(
            "SELECT user_key, COUNT(*) FROM events WHERE type IN ('match-confident', 'match-ambiguous', 'switch-offered') "
            "GROUP BY user_key"
        ).fetchall()
    # Every citizen typed the same script: the same number of questions read, once each.
    assert len({n for _, n in per_user}) == 1 and len(per_user) == CITIZENS
