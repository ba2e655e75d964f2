"""Drive `python -m bot serve` as a real process over loopback, against the fake Bot API process.

Used by turn_bench.py (--webhook: CPU per webhook update) and crash_bench.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from citizens import Message, script  # noqa: E402

from bot.content import load  # noqa: E402
from bot.settings import VIETNAM_TZ  # noqa: E402

TOKEN = "123456:BENCH-token"
SECRET = "bench_secret"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake_api(port: int, send_per_second: float = 0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            PYTHON,
            str(ROOT / "benchmarks" / "fake_bot_api.py"),
            "--port",
            str(port),
            "--send-per-second",
            str(send_per_second),
        ]
    )


def start_serve(db: str, port: int, api_port: int, workers: int = 1, **env: str) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_BASE_URL": f"http://127.0.0.1:{api_port}/bot",
        "BOT_RELOAD_SECONDS": "0",
        "BOT_HASH_SECRET": "bench-hash-secret",
        **env,
    }
    return subprocess.Popen(
        [PYTHON, "-m", "bot", "serve", "--db", db, "--port", str(port), "--content", str(ROOT)]
        + (["--workers", str(workers)] if workers != 1 else []),
        cwd=ROOT,
        env=environ,
    )


def wait_healthy(port: int, timeout: float = 30.0) -> float:
    """Seconds until GET /healthz answers 200."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"serve on {port} did not become healthy in {timeout} s")


def wait_port(port: int, timeout: float = 30.0) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def update_for(update_id: int, chat: int, msg: Message) -> dict[str, Any]:
    """The Telegram update a citizen's message arrives as."""
    user = {"id": chat, "is_bot": False, "first_name": "Dân"}
    chat_obj = {"id": chat, "type": "private", "first_name": "Dân"}
    if msg.kind == "choice":
        return {
            "update_id": update_id,
            "callback_query": {
                "id": f"cq{update_id}",
                "from": user,
                "chat_instance": "ci",
                "data": msg.value,
                "message": {"message_id": 1, "date": 0, "chat": chat_obj, "text": "…"},
            },
        }
    text = f"/start {msg.value}" if msg.kind == "start" else msg.value
    message: dict[str, Any] = {"message_id": update_id, "date": 0, "chat": chat_obj, "from": user, "text": text}
    if msg.kind == "start":
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": 6}]
    return {"update_id": update_id, "message": message}


def scripts(citizens: int, per_citizen: int) -> list[list[Message]]:
    from datetime import datetime

    content = load(ROOT)
    now = datetime.now(VIETNAM_TZ)
    return [script(content, c, per_citizen, now, question_every=0) for c in range(citizens)]


def update_id(citizen: int, index: int) -> int:
    return citizen * 1000 + index + 1


async def deliver(
    port: int,
    plan: Sequence[Sequence[Message]],
    acked: set[int],
    skip: set[int] | None = None,
    connections: int = 40,
    pause: float = 0.0,
    latencies: list[float] | None = None,
) -> None:
    """Post every citizen's updates in order (the next after the previous got its answer), like Telegram.

    An update answered 200 goes into ``acked``; any other answer or a broken connection is
    retried after a pause, as Telegram does; when the server is gone, the citizen stops.
    At most ``connections`` requests are outstanding (Telegram's ``max_connections``); a latency
    is timed from when the request got its connection, so it is the server's answer time, not the
    wait of updates queued at the platform.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    slots = asyncio.Semaphore(connections)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:

        async def citizen(c: int) -> None:
            if pause:  # a paced load starts spread over one pause, not as one burst
                await asyncio.sleep(pause * c / len(plan))
            for i, msg in enumerate(plan[c]):
                uid = update_id(c, i)
                if skip and uid in skip:
                    continue
                for _ in range(50):
                    try:
                        async with slots:
                            asked = time.perf_counter()
                            response = await http.post(
                                "/webhook/telegram", json=update_for(uid, 10_000 + c, msg), headers=headers
                            )
                    except httpx.HTTPError:
                        return  # the server died: what was not acknowledged is delivered again later
                    if response.status_code == 200:
                        if latencies is not None:
                            latencies.append(time.perf_counter() - asked)
                        acked.add(uid)
                        break
                    await asyncio.sleep(0.2)
                if pause:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(citizen(c) for c in range(len(plan))))


def fake_sent(api_port: int) -> int:
    return int(httpx.get(f"http://127.0.0.1:{api_port}/stats").json()["sent"])


def settle(api_port: int, quiet: float = 1.0, timeout: float = 120.0) -> int:
    """Wait until the fake Bot API stops receiving messages; how many it received."""
    start = time.perf_counter()
    last, since = -1, time.perf_counter()
    while time.perf_counter() - start < timeout:
        now = fake_sent(api_port)
        if now != last:
            last, since = now, time.perf_counter()
        elif time.perf_counter() - since >= quiet:
            return now
        time.sleep(0.1)
    return last


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def health(port: int) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json())


def cpu_per_update(tmp: str) -> None:
    """CPU of the `serve` process per webhook update: a burst, and a steady pace with every reply delivered."""
    api_port, port = free_port(), free_port()
    api = start_fake_api(api_port)
    wait_port(api_port)
    serve = start_serve(os.path.join(tmp, "webhook.db"), port, api_port)
    try:
        wait_healthy(port)
        # 1. A burst: 200 citizens send 10 updates each as fast as they are acknowledged.
        plan = scripts(200, 10)
        before = cpu_seconds(serve.pid)
        acked: set[int] = set()
        start = time.perf_counter()
        asyncio.run(deliver(port, plan, acked))
        committed = time.perf_counter() - start
        sent = settle(api_port)
        cpu = cpu_seconds(serve.pid) - before
        print(
            f"webhook burst: {len(acked)} updates committed and acknowledged in {committed:.1f} s "
            f"({len(acked) / committed:.0f}/s over HTTP); {sent} messages delivered, "
            f"{health(port)['replies_superseded']} turns' replies superseded; "
            f"CPU {1000 * cpu / len(acked):.2f} ms per update"
        )
        # 2. A steady pace Telegram's 30 messages/s can serve: 60 citizens, one message every 4 s each.
        plan = [[*p[:5]] for p in scripts(60, 5)]
        base = 500  # other citizens than the burst's
        plan = [[] for _ in range(base)] + plan
        before, sent_before = cpu_seconds(serve.pid), fake_sent(api_port)
        acked = set()
        asyncio.run(deliver(port, plan, acked, pause=4.0))
        sent = settle(api_port, quiet=2.0) - sent_before
        cpu = cpu_seconds(serve.pid) - before
        print(
            f"webhook steady: {len(acked)} updates, {sent} messages delivered, "
            f"{health(port)['replies_superseded']} superseded in all; CPU {1000 * cpu / len(acked):.2f} ms per update "
            "(commit, acknowledgement and delivery)"
        )
    finally:
        stop(serve)
        stop(api)
