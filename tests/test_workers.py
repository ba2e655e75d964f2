"""`serve --workers 2` on one PostgreSQL database, as real processes: both workers take webhooks, one
citizen's messages never interleave, an update sent to both workers at once is done once, and a worker
killed with SIGKILL is started again while nothing it acknowledged is lost.

The workers listen on a Unix socket (the tests open no network connections) and take Zalo OA events,
signed as Zalo signs them; their replies cannot be sent (the OA API points nowhere) and stay in the outbox.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import GOOD, ROOT
from tests.test_crash import SCRIPT, oa_env, wait_up
from tests.test_zalo_oa import event, signed

CITIZENS = 6


def start(db: str, sock: Path, log: Path) -> subprocess.Popen[bytes]:
    env = oa_env()
    command = [sys.executable, "-m", "bot", "serve", "--workers", "2", "--socket", str(sock), "--db", db]
    with log.open("ab") as err:
        return subprocess.Popen([*command, "--content", str(GOOD)], cwd=ROOT, env=env, stdout=err, stderr=err)


def workers_of(parent: subprocess.Popen[bytes]) -> list[int]:
    """The pids of the parent's worker processes (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == parent.pid:
                out.append(int(entry.name))
    return sorted(out)


async def post(http: httpx.AsyncClient, msg_id: str, user: str, text: str) -> bool:
    raw, mac = signed(event("user_send_text", text, msg_id=msg_id, user=user))
    try:
        response = await http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
    except httpx.TransportError:
        return False  # the worker that had it died: Zalo sends it again
    return response.status_code == 200


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_workers_share_the_work_and_survive_one_being_killed(db_url: str, tmp_path: Path) -> None:
    sock, log = tmp_path / "bot.sock", tmp_path / "serve.log"
    parent = start(db_url, sock, log)
    transport = httpx.AsyncHTTPTransport(uds=str(sock))
    acked: set[str] = set()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot", timeout=20) as http:
            await wait_up(http)
            seen: set[int] = set()
            for _ in range(100):  # a new connection each time: the kernel hands each to one worker
                if len(seen) == 2:
                    break
                seen.add((await http.get("/healthz", headers={"Connection": "close"})).json()["worker"])
                await asyncio.sleep(0.05)
            assert len(seen) == 2, "both workers answer on the one socket"
            killed: list[int] = []

            async def citizen(c: int) -> None:
                for i, text in enumerate(SCRIPT):
                    msg_id = f"c{c}m{i}"
                    for _ in range(50):  # as Zalo does: again until a 200
                        # every third message arrives twice at once (a platform retry landing on both workers)
                        copies = 2 if i % 3 == 0 else 1
                        answers = await asyncio.gather(*(post(http, msg_id, f"user-{c}", text) for _ in range(copies)))
                        if any(answers):
                            acked.add(msg_id)
                            break
                        await asyncio.sleep(0.2)
                    if len(acked) >= CITIZENS * len(SCRIPT) // 2 and not killed:
                        victim = workers_of(parent)[0]
                        killed.append(victim)
                        os.kill(victim, signal.SIGKILL)

            await asyncio.gather(*(citizen(c) for c in range(CITIZENS)))
            assert killed, "a worker was killed half-way"
            for _ in range(200):  # the parent notices within a moment and starts a new one
                if killed[0] not in workers_of(parent) and len(workers_of(parent)) == 2:
                    break
                await asyncio.sleep(0.05)
            assert killed[0] not in workers_of(parent) and len(workers_of(parent)) == 2, "and started again"
            assert await post(http, "c0m1", "user-0", "1"), "an update already done is acknowledged again"
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=60)
    text = log.read_text()
    assert parent.returncode == 0, text
    assert "Traceback" not in text
    assert f"exited with -{signal.SIGKILL}" in text
    assert len(acked) == CITIZENS * len(SCRIPT)
    with psycopg.connect(db_url) as conn:
        done = [r[0].split(":", 1)[1] for r in conn.execute("SELECT event_id FROM processed_updates")]
        assert sorted(done) == sorted(acked), "every acknowledged update done, each once"
        rows = conn.execute(
            "SELECT user_key, from_step, to_step FROM events WHERE type = 'step-entered' ORDER BY id"
        ).fetchall()
        questions = conn.execute(
            "SELECT user_key, COUNT(*) FROM events WHERE type IN ('match-confident', 'match-ambiguous', "
            "'switch-offered') GROUP BY user_key"
        ).fetchall()
    chains: dict[str, list[tuple[str | None, str | None]]] = {}
    for user, came_from, went_to in rows:
        chains.setdefault(user, []).append((came_from, went_to))
    assert len(chains) == CITIZENS
    for chain in chains.values():  # each turn read the one before it, whichever worker ran it
        assert all(a[1] == b[0] or b[0] is None for a, b in itertools.pairwise(chain)), chain
    # every citizen typed the same script: the same questions read, once each
    assert len({n for _, n in questions}) == 1 and len(questions) == CITIZENS


def test_several_workers_need_a_server_database_and_say_so_in_one_line(tmp_path: Path) -> None:
    from tests.test_cli import run

    proc = run("serve", "--workers", "2", "--db", str(tmp_path / "bot.db"))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "--workers từ 2 trở lên cần cơ sở dữ liệu PostgreSQL" in proc.stderr
    zero = run("serve", "--workers", "0", "--db", "postgresql://bot@db/dvc")
    assert zero.returncode == 2 and "--workers cần từ 1 đến 64" in zero.stderr
