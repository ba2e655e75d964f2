"""`serve`: the shared webhook server, called in-process (ASGI) with the real PTB code over a fake Bot API."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels import telegram as tg
from bot.server import WebhookServer
from bot.service import Service
from tests.conftest import GOOD, NOW, hold_commits
from tests.telegram_fake import TOKEN, FakeBotApi, text_update
from tests.test_cli import run

SECRET = "s3cret_token-1"
URL = "https://dvc.example.gov.vn/webhook/telegram"


class Setup:
    def __init__(self, server: WebhookServer, api: FakeBotApi, service: Service, client: httpx.AsyncClient) -> None:
        self.server, self.api, self.service, self.client = server, api, service, client

    async def post(self, body: Any, secret: str | None = SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return await self.client.post("/webhook/telegram", json=body, headers=headers)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    api = FakeBotApi()
    service = await Service.open(GOOD, str(tmp_path / "bot.db"), mode="test", reload_interval=0, clock=lambda: NOW)
    ptb = tg.build_bot(TOKEN, request=api.request())
    webhook = tg.TelegramWebhook(tg.TelegramChannel(service.runner, ptb), SECRET)
    await webhook.start(URL)
    server = WebhookServer(service, webhook)
    transport = httpx.ASGITransport(app=server.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.local") as client:
            yield Setup(server, api, service, client)
    finally:
        await server.drain()
        await webhook.stop()
        await service.close()


async def test_registers_the_webhook_with_its_secret_and_update_types(setup: Setup) -> None:
    [params] = [p for m, p in setup.api.calls if m == "setWebhook"]
    assert params["url"] == URL
    assert params["secret_token"] == SECRET
    assert params["allowed_updates"] == ["message", "edited_message", "callback_query"]
    assert "setMyCommands" in setup.api.methods()


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
async def test_missing_or_wrong_secret_is_403_and_nothing_is_processed(setup: Setup, secret: str | None) -> None:
    response = await setup.post(text_update(10, "/start dang-ky-tam-tru"), secret=secret)
    assert response.status_code == 403
    await setup.server.drain()
    assert setup.api.sent() == []
    assert await setup.service.store.events() == []


async def test_right_secret_is_committed_before_the_200_and_processed_once(setup: Setup) -> None:
    update = text_update(11, "/start dang-ky-tam-tru")
    first = await setup.post(update)
    assert first.status_code == 200 and first.json() == {"ok": True}
    # The 200 means the turn is durable: the update is recorded and its replies are in the outbox or sent.
    assert await setup.service.store.is_processed("telegram", "11")
    again = await setup.post(update)  # Telegram redelivers
    assert again.status_code == 200
    await setup.server.drain()
    assert setup.api.sent_texts().count("Bắt đầu thủ tục “Đăng ký tạm trú”.") == 1


async def test_no_200_until_the_turn_is_committed(setup: Setup) -> None:
    store = setup.service.store
    release = hold_commits(store)
    request = asyncio.ensure_future(setup.post(text_update(12, "/start dang-ky-tam-tru")))
    await asyncio.sleep(0.2)
    assert not request.done()  # Telegram has not been told "ok" yet
    assert not await store.is_processed("telegram", "12")
    release.set()
    response = await asyncio.wait_for(request, 5)
    assert response.status_code == 200
    assert await store.is_processed("telegram", "12")


async def test_a_failed_commit_is_not_acknowledged(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    setup.service.store.commit_turn = broken  # type: ignore[method-assign]
    response = await setup.post(text_update(13, "/start dang-ky-tam-tru"))
    assert response.status_code == 500  # so Telegram sends it again
    assert setup.api.sent() == []


async def test_a_database_restarting_is_a_503_and_one_log_line(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    from bot.errors import StoreUnavailable

    async def restarting(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("PostgreSQL không trả lời: terminating connection due to administrator command")

    setup.service.store.commit_turn = restarting  # type: ignore[method-assign]
    response = await setup.post(text_update(14, "/start dang-ky-tam-tru"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"  # Telegram sends it again
    assert setup.api.sent() == []
    [record] = [r for r in caplog.records if "not committed" in r.getMessage()]
    assert record.exc_info is None and "administrator command" in record.getMessage()


async def test_bodies_that_are_not_json_are_400_and_malformed_updates_are_acknowledged(setup: Setup) -> None:
    response = await setup.client.post(
        "/webhook/telegram", content=b"not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status_code == 400
    assert (await setup.post([1, 2])).status_code == 200  # JSON, but not an update: acknowledged, not processed
    health = (await setup.client.get("/healthz")).json()
    assert health["rejected"] == {
        "telegram: not JSON (JSONDecodeError)": 1,
        "telegram: not an update (no integer update_id)": 1,
    }


async def test_healthz(setup: Setup) -> None:
    response = await setup.client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["content_version"] == setup.service.holder.current.catalogue.version


async def test_shutdown_sends_the_queued_replies(setup: Setup) -> None:
    for n in range(3):
        assert (await setup.post(text_update(20 + n, "/start dang-ky-tam-tru", chat_id=100 + n))).status_code == 200
    await setup.server.drain(seconds=5)
    assert setup.api.sent_texts().count("Bắt đầu thủ tục “Đăng ký tạm trú”.") == 3


def test_serve_without_a_channel_or_secret_or_port_is_one_clear_line(tmp_path: Path) -> None:
    proc = run("serve", "--db", str(tmp_path / "a.db"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Lỗi: Chưa cấu hình kênh webhook nào: hãy đặt TELEGRAM_BOT_TOKEN và TELEGRAM_WEBHOOK_SECRET, "
        "hoặc ZALO_BOT_TOKEN và ZALO_BOT_WEBHOOK_SECRET, hoặc ZALO_OA_APP_ID và ZALO_OA_SECRET_KEY."
    ]
    proc = run("serve", "--db", str(tmp_path / "a.db"), TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET="có dấu")
    assert proc.returncode == 1 and "TELEGRAM_WEBHOOK_SECRET phải có 1-256 ký tự" in proc.stderr
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        proc = run(
            "serve",
            "--db",
            str(tmp_path / "a.db"),
            "--port",
            str(port),
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
        )
    finally:
        busy.close()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Lỗi: Không mở được cổng {port} trên 127.0.0.1: Address already in use (có thể cổng đang bận)."
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "a.db").exists()  # it stopped before touching anything


async def test_serve_stops_taking_requests_then_drains_before_returning(setup: Setup) -> None:
    from bot import server as server_module

    sock = server_module.bind("127.0.0.1", 0)
    stop = asyncio.Event()
    running = asyncio.ensure_future(server_module.serve(setup.server, sock, stop))
    await asyncio.sleep(0.2)
    assert (
        await setup.post(text_update(30, "/start dang-ky-tam-tru"))
    ).status_code == 200  # acknowledged just before the signal
    stop.set()  # what SIGTERM / Ctrl+C do
    await asyncio.wait_for(running, timeout=10)
    # uvicorn logged through the root handlers (with their privacy filter), not handlers of its own
    assert logging.getLogger("uvicorn").handlers == [] and logging.getLogger("uvicorn.error").handlers == []
    assert "Bắt đầu thủ tục “Đăng ký tạm trú”." in setup.api.sent_texts()
