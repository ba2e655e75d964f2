"""`python -m bot run` as a process: long polling Telegram and the Zalo Bot Platform at once (both fakes on
loopback), stopped by the signal a service manager sends."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

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


def fake_platforms(polls: list[str]) -> Starlette:
    """Telegram under /tg/bot<token>/<method>, the Zalo Bot Platform under /zl/bot<token>/<method>."""

    async def method(request: Request) -> JSONResponse:
        platform, name = request.path_params["platform"], request.path_params["method"]
        if name == "getUpdates":
            polls.append(platform)
            await asyncio.sleep(0.3)  # an idle long poll
            return JSONResponse({"ok": True, "result": []})
        if name == "getMe":
            return JSONResponse({"ok": True, "result": BOT})
        return JSONResponse({"ok": True, "result": True})  # setMyCommands, deleteWebhook

    return Starlette(routes=[Route("/{platform}/{token}/{method}", method, methods=["GET", "POST"])])


async def test_run_polls_both_platforms_and_sigterm_stops_both_cleanly(tmp_path: Path) -> None:
    polls: list[str] = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake_platforms(polls), host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.ensure_future(server.serve())
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_BASE_URL": f"http://127.0.0.1:{port}/tg/bot",
        "ZALO_BOT_TOKEN": "zalo-token",
        "ZALO_BOT_BASE_URL": f"http://127.0.0.1:{port}/zl",
        "BOT_HASH_SECRET": "test-secret",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--db", str(tmp_path / "bot.db")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            if {"tg", "zl"} <= set(polls) or proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert {"tg", "zl"} <= set(polls), log.read_text()
        proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert proc.returncode == 0, log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.should_exit = True
        await serving
