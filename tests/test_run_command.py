"""`python -m bot run` as a process: long polling Telegram and the Zalo Bot Platform at once (both fakes on
loopback), stopped by the signal a service manager sends."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
BOT = {"id": 42, "is_bot": True, "first_name": "DVC", "username": "dvc_test_bot"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fake_platforms(
    polls: list[str], updates: list[dict[str, Any]] | None = None, sent: list[str] | None = None
) -> Starlette:
    """Telegram under /tg/bot<token>/<method>, the Zalo Bot Platform under /zl/bot<token>/<method>. Telegram
    serves ``updates`` until confirmed and records the texts it is sent in ``sent``."""
    waiting = updates if updates is not None else []
    said = sent if sent is not None else []

    async def method(request: Request) -> JSONResponse:
        platform, name = request.path_params["platform"], request.path_params["method"]
        params = dict(parse_qsl((await request.body()).decode()))
        if name == "getUpdates":
            polls.append(platform)
            if platform == "tg":
                offset = int(params.get("offset", 0) or 0)
                waiting[:] = [u for u in waiting if u["update_id"] >= offset]
                if waiting:
                    return JSONResponse({"ok": True, "result": list(waiting)})
            await asyncio.sleep(0.3)  # an idle long poll
            return JSONResponse({"ok": True, "result": []})
        if name == "getMe":
            return JSONResponse({"ok": True, "result": BOT})
        if name == "sendMessage":
            said.append(params.get("text", ""))
            chat = {"id": int(params["chat_id"]), "type": "private"}
            message = {"message_id": len(said), "date": int(time.time()), "chat": chat, "text": "…"}
            return JSONResponse({"ok": True, "result": message})
        return JSONResponse({"ok": True, "result": True})  # setMyCommands, deleteWebhook

    return Starlette(routes=[Route("/{platform}/{token}/{method}", method, methods=["GET", "POST"])])


class RunningBot:
    """`python -m bot run` against the fake platforms on loopback, with ``env`` added (the fakes' port is
    filled in); stopped with SIGTERM, which must end it with exit 0 and no traceback."""

    def __init__(
        self, tmp_path: Path, app: Starlette, env: dict[str, str], db: str = "", port: int | None = None
    ) -> None:
        """``db``: the database (default: a SQLite file here); ``port``: the fakes another RunningBot serves."""
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp_path, self.app, self.extra = tmp_path, app, env
        self.db = db or str(tmp_path / "bot.db")
        self.log = tmp_path / "run.log"
        self.serves = port is None
        self.port = port if port is not None else free_port()

    async def __aenter__(self) -> RunningBot:
        if self.serves:
            self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None))
            self.serving = asyncio.ensure_future(self.server.serve())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_", "ZALO_"))}
        env |= {"BOT_HASH_SECRET": "test-secret", "BOT_DB": self.db}  # (in the environment: it may hold a password)
        env |= {k: v.format(port=self.port) for k, v in self.extra.items()}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    async def until(self, condition: Callable[[], bool], seconds: float = 15.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if condition() or self.proc.poll() is not None:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        await self.until(lambda: self.proc.poll() is not None)
        assert self.proc.returncode == 0, self.log.read_text()
        assert "Traceback" not in self.log.read_text()

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.serves:
            self.server.should_exit = True
            await self.serving


# A citizen on Telegram opening "Đăng ký tạm trú" from a link (update 7, chat 42).
START_TAM_TRU: dict[str, Any] = {
    "update_id": 7,
    "message": {
        "message_id": 7,
        "date": 0,
        "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Lan"},
        "text": "/start dang-ky-tam-tru",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    },
}
TELEGRAM = {"TELEGRAM_BOT_TOKEN": "123:abc", "TELEGRAM_BASE_URL": "http://127.0.0.1:{port}/tg/bot"}


async def test_run_polls_both_platforms_and_sigterm_stops_both_cleanly(tmp_path: Path) -> None:
    polls: list[str] = []
    zalo = {"ZALO_BOT_TOKEN": "zalo-token", "ZALO_BOT_BASE_URL": "http://127.0.0.1:{port}/zl"}
    async with RunningBot(tmp_path, fake_platforms(polls), TELEGRAM | zalo) as bot:
        await bot.until(lambda: {"tg", "zl"} <= set(polls))
        assert {"tg", "zl"} <= set(polls), bot.log.read_text()
        await bot.stop()


async def test_run_reminds_a_citizen_who_stopped_once(tmp_path: Path) -> None:
    """The whole path in a real process: a citizen starts a procedure on Telegram and goes quiet; with a short
    BOT_NUDGE_AFTER_MINUTES the one reminder arrives, and no second one."""
    polls: list[str] = []
    sent: list[str] = []
    start = START_TAM_TRU
    quick = {"BOT_NUDGE_AFTER_MINUTES": "0.02", "BOT_NUDGE_QUIET_HOURS": ""}  # 1.2 seconds, at any hour
    async with RunningBot(tmp_path, fake_platforms(polls, [start], sent), TELEGRAM | quick) as bot:
        await bot.until(lambda: any("hôm trước bạn đang làm" in t for t in sent))
        assert sent and "Bắt đầu thủ tục" in sent[0], bot.log.read_text()
        assert any("hôm trước bạn đang làm thủ tục “Đăng ký tạm trú”" in t for t in sent), bot.log.read_text()
        await asyncio.sleep(2.0)  # longer than another silence: still one reminder
        assert sum("hôm trước bạn đang làm" in t for t in sent) == 1
        await bot.stop()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_run_processes_on_one_database_poll_one_at_a_time_and_the_other_takes_over(
    db_url: str, tmp_path: Path
) -> None:
    """Two `run` processes sharing PostgreSQL: Telegram would answer two getUpdates callers with 409, so only one
    polls; when it is killed (kill -9), the other takes over."""
    inflight, most, polled_at = [0], [0], []

    async def method(request: Request) -> JSONResponse:
        name = request.path_params["method"]
        if name == "getUpdates":
            inflight[0] += 1
            most[0] = max(most[0], inflight[0])
            polled_at.append(time.monotonic())
            await asyncio.sleep(0.3)
            inflight[0] -= 1
            return JSONResponse({"ok": True, "result": []})
        if name == "getMe":
            return JSONResponse({"ok": True, "result": BOT})
        return JSONResponse({"ok": True, "result": True})

    app = Starlette(routes=[Route("/{platform}/{token}/{method}", method, methods=["GET", "POST"])])
    first = RunningBot(tmp_path / "a", app, TELEGRAM, db=db_url)
    async with first:
        await first.until(lambda: bool(polled_at))
        second = RunningBot(tmp_path / "b", app, TELEGRAM, db=db_url, port=first.port)
        async with second:
            await second.until(lambda: "stands by" in second.log.read_text(), seconds=20)
            assert "stands by" in second.log.read_text(), second.log.read_text()
            await asyncio.sleep(1.0)
            assert most[0] == 1, "one poller at a time"
            first.proc.kill()  # kill -9: its database connection, and with it the lock, goes
            first.proc.wait()
            killed_at = time.monotonic()
            await second.until(lambda: any(t > killed_at + 0.5 for t in polled_at), seconds=40)
            assert any(t > killed_at + 0.5 for t in polled_at), second.log.read_text()
            assert "takes over long polling" in second.log.read_text()
            assert most[0] == 1
            await second.stop()
            assert "psycopg" not in second.log.read_text(), "a clean stop gives its lock back, no pool warnings"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_reply_left_by_a_killed_poller_is_sent_by_the_process_that_takes_over(
    db_url: str, tmp_path: Path
) -> None:
    """kill -9 while the first of a committed turn's two messages is with Telegram: the other process takes
    over polling, finds the update already done (not done again) and, once the dead process's claim has run
    out, sends the rest of the turn: the second message, never the first again."""
    import psycopg

    update = START_TAM_TRU
    waiting = [update]
    attempts: list[str] = []  # every sendMessage that reached "Telegram"
    delivered: list[str] = []  # those Telegram answered
    forever = asyncio.Event()

    async def method(request: Request) -> JSONResponse:
        name = request.path_params["method"]
        params = dict(parse_qsl((await request.body()).decode()))
        if name == "getUpdates":
            offset = int(params.get("offset", 0) or 0)
            waiting[:] = [u for u in waiting if u["update_id"] >= offset]
            if waiting:
                return JSONResponse({"ok": True, "result": list(waiting)})
            await asyncio.sleep(0.3)
            return JSONResponse({"ok": True, "result": []})
        if name == "sendMessage":
            attempts.append(params.get("text", ""))
            if len(attempts) == 1:
                await forever.wait()  # the first sender never hears back: it is killed meanwhile
                return JSONResponse({"ok": False, "error_code": 500, "description": "gone"}, status_code=500)
            delivered.append(params.get("text", ""))
            message = {"message_id": len(delivered), "date": 0, "chat": {"id": 42, "type": "private"}, "text": "…"}
            return JSONResponse({"ok": True, "result": message})
        if name == "getMe":
            return JSONResponse({"ok": True, "result": BOT})
        return JSONResponse({"ok": True, "result": True})

    app = Starlette(routes=[Route("/{platform}/{token}/{method}", method, methods=["GET", "POST"])])
    env = TELEGRAM | {"BOT_OUTBOX_LEASE_SECONDS": "2"}
    first = RunningBot(tmp_path / "a", app, env, db=db_url)
    async with first:
        await first.until(lambda: bool(attempts))
        assert attempts, first.log.read_text()
        second = RunningBot(tmp_path / "b", app, env, db=db_url, port=first.port)
        async with second:
            await second.until(lambda: "stands by" in second.log.read_text(), seconds=20)
            first.proc.kill()  # kill -9 in the middle of sending the committed reply
            first.proc.wait()
            forever.set()  # (the fake may now let go of the dead process's request)
            await second.until(lambda: bool(delivered), seconds=40)
            await asyncio.sleep(1.0)  # (anything more would come at once)
            assert attempts[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”.", second.log.read_text()
            assert len(attempts) == 2 and attempts[1] == delivered[0], "the first message is never sent again"
            assert delivered[0].startswith("Đăng ký tạm trú là")
            await second.stop()
    assert "takes over long polling" in second.log.read_text()
    with psycopg.connect(db_url) as conn:
        started = conn.execute("SELECT COUNT(*) FROM events WHERE type = 'flow-started'").fetchone()
        left = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
    assert started == (1,), "the update the dead process had done was not done again"
    assert left == (0,), "and its reply went out"
