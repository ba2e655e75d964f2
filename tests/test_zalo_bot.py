"""Zalo Bot Platform: our httpx client against a fake API (httpx.MockTransport), polling and the webhook route."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import texts
from bot.channels import zalo_bot as zb
from bot.content import ContentHolder, load
from bot.engine import Choice, Reply
from bot.errors import BotError
from bot.runner import Incoming, Runner
from bot.server import WebhookServer
from bot.service import Service
from bot.storage.sqlite import SqliteStore
from tests.conftest import GOOD, NOW, Sleeps, fail_commits

TOKEN = "1459000111:ZaLoSeCrEt_token-xyz"
SECRET = "zalo-secret-123"


def text_update(message_id: str, text: str, chat_id: str = "u-abc", chat_type: str = "PRIVATE") -> dict[str, Any]:
    return {
        "event_name": "message.text.received",
        "message": {
            "from": {"id": chat_id, "display_name": "Lan", "is_bot": False},
            "chat": {"id": chat_id, "chat_type": chat_type},
            "text": text,
            "message_id": message_id,
            "date": 1764300000000,
        },
    }


class FakeZalo:
    """The Zalo Bot API: canned answers, a call log, updates served by getUpdates (replayed, no offset).

    Shapes from ../shared/reference/channels.md §3 (official docs as copied on 10/12/2025 and the
    zalo-bot-mcp client): ``<base>/bot<token>/<method>``, ``{"ok", "result"}`` bodies, getUpdates
    returning ONE update object, HTTP 408 for an idle long poll, 429 for quota, 401 for a bad token.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.pending: list[dict[str, Any]] = []
        self.replay: list[dict[str, Any]] = []  # served again on later polls, as the platform does
        self.idle_polls = 0
        self.fail_next_send = 0
        self.bad_token = False

    def sent(self) -> list[str]:
        return [p["text"] for m, p, _ in self.calls if m == "sendMessage" and p.get("_ok")]

    def transport(self) -> httpx.MockTransport:
        async def handler(request: httpx.Request) -> httpx.Response:
            method = request.url.path.rsplit("/", 1)[-1]
            params = json.loads(request.content or b"{}")
            self.calls.append((method, params, str(request.url)))
            if self.bad_token:
                return httpx.Response(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})
            if method == "getUpdates":
                if self.pending:
                    update = self.pending.pop(0)
                    self.replay.append(update)
                    return httpx.Response(200, json={"ok": True, "result": update})
                if self.replay and self.idle_polls % 2 == 0:
                    self.idle_polls += 1
                    return httpx.Response(200, json={"ok": True, "result": self.replay[0]})
                self.idle_polls += 1
                await asyncio.sleep(0.01)
                return httpx.Response(408, json={"ok": False, "error_code": 408, "description": "Request timeout"})
            if method == "sendMessage":
                if self.fail_next_send:
                    self.fail_next_send -= 1
                    return httpx.Response(429, json={"ok": False, "error_code": 429, "description": "quota"})
                params["_ok"] = True
                return httpx.Response(200, json={"ok": True, "result": {"message_id": "m1", "date": 1}})
            if method == "getMe":
                return httpx.Response(200, json={"ok": True, "result": {"id": "1459", "account_name": "bot.Dvc"}})
            return httpx.Response(200, json={"ok": True, "result": {"url": "", "updated_at": 1}})

        return httpx.MockTransport(handler)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "bot.db")
    yield s
    await s.close()


def runner_for(store: SqliteStore) -> Runner:
    return Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)


async def poll_until(fake: FakeZalo, store: SqliteStore, done: Any, sleep: Any = None) -> None:
    stop = asyncio.Event()

    async def watch() -> None:
        while not done():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let replays come back once more
        stop.set()

    watcher = asyncio.ensure_future(watch())
    await asyncio.wait_for(
        zb.run_polling(runner_for(store), TOKEN, stop=stop, transport=fake.transport(), sleep=sleep or Sleeps()),
        timeout=20,
    )
    await watcher


async def test_a_conversation_with_numbered_choices_typed_back(store: SqliteStore) -> None:
    fake = FakeZalo()
    fake.pending = [
        text_update("m1", "/start dang-ky-tam-tru"),
        text_update("m2", "1"),
        text_update("m3", "Tôi nhờ người khác nộp"),
    ]
    await poll_until(fake, store, lambda: any("Văn bản ủy quyền" in t for t in fake.sent()))
    sent = fake.sent()
    assert sent[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."
    assert "1. Tiếp tục" in sent[1] and zb.CHOOSE_HINT in sent[1]
    assert sent[2].startswith("Ai là người nộp hồ sơ?\n\n1. Tôi tự nộp\n2. Tôi nhờ người khác nộp")
    assert "Văn bản ủy quyền" in sent[3]
    assert len(sent) == 4, "replayed updates (no offset on getUpdates) are answered once"
    methods = [m for m, _, _ in fake.calls]
    assert methods[0] == "getMe" and "deleteWebhook" in methods
    assert all(p.get("chat_id") == "u-abc" for m, p, _ in fake.calls if m == "sendMessage")


async def test_a_replayed_update_is_not_answered_again_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    for attempt in (1, 2):
        store = await SqliteStore.open(db)
        fake = FakeZalo()
        fake.pending = [text_update("same-id", "/start dang-ky-tam-tru"), text_update(f"other-{attempt}", "xin chào")]
        await poll_until(fake, store, lambda f=fake: len([c for c in f.calls if c[0] == "getUpdates"]) >= 4)
        await store.close()
        starts = [t for t in fake.sent() if t.startswith("Bắt đầu thủ tục")]
        assert len(starts) == (1 if attempt == 1 else 0)


async def test_quota_errors_are_retried_and_idle_polls_are_not_errors(store: SqliteStore) -> None:
    fake = FakeZalo()
    fake.fail_next_send = 2
    fake.pending = [text_update("q1", "/start dang-ky-tam-tru")]
    sleeps = Sleeps()
    await poll_until(fake, store, lambda: len(fake.sent()) >= 2, sleeps)
    assert fake.sent()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."
    assert sleeps.slept[:2] == [2.0, 4.0]  # backing off on 429, then sent
    assert fake.idle_polls >= 1


async def test_photos_groups_and_bad_tokens(store: SqliteStore) -> None:
    fake = FakeZalo()
    photo = text_update("p1", "")
    photo["event_name"] = "message.image.received"
    del photo["message"]["text"]
    fake.pending = [text_update("g1", "dk tam tru", chat_type="GROUP"), photo]
    await poll_until(fake, store, lambda: bool(fake.sent()))
    assert fake.sent()[0] == texts.UNSUPPORTED_INPUT  # the group message got nothing
    bad = FakeZalo()
    bad.bad_token = True
    with pytest.raises(BotError, match="ZALO_BOT_TOKEN không hợp lệ"):
        await zb.run_polling(runner_for(store), TOKEN, stop=asyncio.Event(), transport=bad.transport())


async def test_the_token_never_reaches_the_logs(store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeZalo()
    fake.pending = [text_update("t1", "/start dang-ky-tam-tru")]
    await poll_until(fake, store, lambda: bool(fake.sent()))
    assert TOKEN in fake.calls[0][2]  # it is in the URL...
    assert "HTTP Request" in caplog.text
    assert TOKEN not in caplog.text and "ZaLoSeCrEt" not in caplog.text  # ...but never in a log line
    assert "bot<token>" in caplog.text


def test_replies_are_split_at_2000_and_choices_numbered() -> None:
    long = "\n\n".join(["Đoạn " + "chữ " * 150] * 6)
    pieces = zb.render(Reply(long, (Choice("next", "Tiếp tục"),)))
    assert all(len(p) <= 2000 for p in pieces) and len(pieces) == 2
    assert pieces[-1].endswith("1. Tiếp tục\n\n" + zb.CHOOSE_HINT)


async def test_webhook_route_checks_the_secret_and_takes_both_body_shapes(tmp_path: Path) -> None:
    fake = FakeZalo()
    service = await Service.open(GOOD, str(tmp_path / "bot.db"), mode="test", reload_interval=0, clock=lambda: NOW)
    client = zb.ZaloBotClient(TOKEN, transport=fake.transport())
    hook = zb.ZaloBotWebhook(zb.ZaloBotChannel(service.runner, client), SECRET)
    server = WebhookServer(service, None, hook)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://b") as http:
            update = text_update("w1", "/start dang-ky-tam-tru")
            for headers in ({}, {"X-Bot-Api-Secret-Token": "wrong-secret"}):
                response = await http.post("/webhook/zalo", json=update, headers=headers)
                assert response.status_code == 403
            await server.drain()
            assert fake.sent() == [] and await service.store.events() == []
            ok = {"X-Bot-Api-Secret-Token": SECRET}
            assert (
                await http.post("/webhook/zalo", json={"ok": True, "result": update}, headers=ok)
            ).status_code == 200
            assert (await http.post("/webhook/zalo", json=update, headers=ok)).status_code == 200  # bare, redelivered
            # JSON but not an update: acknowledged (never resent, never processed) and counted
            assert (await http.post("/webhook/zalo", json={"x": 1}, headers=ok)).status_code == 200
            assert server.rejected == {"zalo-bot: not a Zalo Bot update": 1}
            await server.drain()
            assert [t for t in fake.sent() if t.startswith("Bắt đầu thủ tục")] == ["Bắt đầu thủ tục “Đăng ký tạm trú”."]
            assert (await http.post("/webhook/telegram", json={}, headers=ok)).status_code == 404
    finally:
        await client.close()
        await service.close()


async def test_zalo_says_what_the_console_says(store: SqliteStore) -> None:
    fake = FakeZalo()
    inputs = ["/start dang-ky-tam-tru", "1", "2", "quay lại"]
    fake.pending = [text_update(f"e{i}", text) for i, text in enumerate(inputs)]
    await poll_until(fake, store, lambda: len([c for c in fake.calls if c[0] == "getUpdates"]) >= 8)
    console = Runner(ContentHolder(load(GOOD), GOOD), store, b"console", clock=lambda: NOW)
    expected: list[str] = []
    for text in inputs:
        kind = "start" if text.startswith("/start") else "text"
        payload = text.split(" ", 1)[1] if kind == "start" else None
        replies = await console.handle(Incoming("console", "c", kind=kind, text=text, start_payload=payload)) or []
        expected += [piece for r in replies for piece in zb.render(r)]
    assert fake.sent() == expected


async def test_run_starts_every_configured_polling_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import cli
    from bot.channels import telegram

    started: list[str] = []

    async def fake_poll(name: str, runner: Runner, token: str, base_url: str, stop: asyncio.Event) -> None:
        started.append(name)
        while len(started) < 2:  # both channels poll at once; then each ends by itself
            await asyncio.sleep(0.01)

    monkeypatch.setattr(telegram, "run_polling", lambda *a, **k: fake_poll("telegram", *a, **k))
    monkeypatch.setattr(zb, "run_polling", lambda *a, **k: fake_poll("zalo-bot", *a, **k))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:x")
    monkeypatch.setenv("ZALO_BOT_TOKEN", "2:y")
    args = cli.build_parser().parse_args(["run", "--content", str(GOOD), "--db", str(tmp_path / "b.db")])
    assert await asyncio.wait_for(cli.cmd_run_channels(args), timeout=10) == 0
    assert sorted(started) == ["telegram", "zalo-bot"]


async def test_replies_left_in_the_outbox_by_a_crash_go_out_when_polling_starts(store: SqliteStore) -> None:
    runner = runner_for(store)
    delivery = await runner.handle_for_delivery(
        Incoming(zb.CHANNEL, "u-abc", kind="start", start_payload="dang-ky-tam-tru", event_id="x:1")
    )
    assert delivery is not None and delivery.outbox_id  # committed, never sent
    fake = FakeZalo()
    await poll_until(fake, store, lambda: bool(fake.sent()))
    assert fake.sent()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."
    assert await store.outbox_pending(zb.CHANNEL) == []


async def test_a_polled_update_whose_commit_fails_is_retried_not_dropped(store: SqliteStore) -> None:
    import sqlite3

    fake = FakeZalo()
    fake.pending = [text_update("p1", "/start dang-ky-tam-tru")]
    fail_commits(store, 2, sqlite3.OperationalError("database is locked"))
    sleeps = Sleeps()
    await poll_until(fake, store, lambda: "Bắt đầu thủ tục “Đăng ký tạm trú”." in fake.sent(), sleep=sleeps)
    assert fake.sent().count("Bắt đầu thủ tục “Đăng ký tạm trú”.") == 1
    assert sleeps.slept[:2] == [2.0, 4.0]  # backed off between the attempts
