"""Hostile and broken input at the webhook edge: every shape is answered without a traceback, nothing
unbounded is read, nothing personal is stored, and a flood from one chat costs that chat only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot import texts
from bot.channels import telegram as tg
from bot.channels import zalo_bot as zb
from bot.server import WebhookServer
from bot.service import Service
from tests.conftest import GOOD, NOW, hold_commits
from tests.telegram_fake import TOKEN, FakeBotApi, tap_update, text_update
from tests.test_telegram import FakeTime
from tests.test_zalo_bot import FakeZalo
from tests.test_zalo_bot import text_update as zalo_update
from tests.test_zalo_oa import VECTOR_SECRET, FakeOA, event, make, signed

TG_SECRET = "s3cret_token-1"
ZALO_SECRET = "zalo-secret-123"
TG = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
ZALO = {"X-Bot-Api-Secret-Token": ZALO_SECRET}


class Edge:
    """All three webhook channels on one server, in-process (ASGI), with fake platforms."""

    def __init__(self, server: WebhookServer, service: Service, api: FakeBotApi, zalo: FakeZalo, oa: FakeOA) -> None:
        self.server, self.service, self.api, self.zalo, self.oa = server, service, api, zalo, oa
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://bot.local")

    async def settle(self) -> None:
        for dispatcher in self.server._dispatchers():
            await dispatcher.idle()
        await self.service.store.flush()

    def db_bytes(self) -> bytes:
        """Everything SQLite has on disk: the database, its WAL and shared memory."""
        path = Path(self.service.store.path)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    service = await Service.open(
        GOOD, str(tmp_path / "bot.db"), mode="test", reload_interval=0, clock=lambda: NOW, messages_per_minute=20
    )
    api = FakeBotApi()
    ptb = tg.build_bot(TOKEN, request=api.request())
    time_ = FakeTime()  # the flood limits wait on a fake clock
    sender = tg.Sender(ptb.send_message, sleep=time_.sleep, clock=time_.clock)
    telegram = tg.TelegramWebhook(tg.TelegramChannel(service.runner, ptb, sender), TG_SECRET)
    await telegram.start(None)
    zalo = FakeZalo()
    zalo_client = zb.ZaloBotClient("1:x", transport=zalo.transport())
    zalo_hook = zb.ZaloBotWebhook(zb.ZaloBotChannel(service.runner, zalo_client), ZALO_SECRET)
    oa_channel, oa_fake, _ = make(service)
    server = WebhookServer(service, telegram, zalo_hook, oa_channel)
    e = Edge(server, service, api, zalo, oa_fake)
    try:
        yield e
    finally:
        await e.http.aclose()
        await server.drain()
        await telegram.stop()
        await zalo_client.close()
        await oa_channel.client.close()
        await service.close()


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_an_oversized_body_is_refused_before_it_is_read(edge: Edge) -> None:
    read = {"bytes": 0}

    async def endless() -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        for _ in range(16 * 1024):  # a gigabyte, if anybody read it all
            read["bytes"] += len(chunk)
            yield chunk

    for path, headers in (("/webhook/telegram", TG), ("/webhook/zalo", ZALO), ("/webhook/zalo-oa", {})):
        read["bytes"] = 0
        response = await edge.http.post(path, content=endless(), headers=headers)
        assert response.status_code == 413, path
        assert read["bytes"] <= 512 * 1024, (path, read["bytes"])  # stopped just past the 256 kB limit
    # A declared length over the limit is refused without reading anything.
    response = await edge.http.post(
        "/webhook/zalo-oa", content=b"{}", headers={"Content-Length": str(500 * 1024 * 1024)}
    )
    assert response.status_code == 413
    assert edge.server.rejected["zalo-oa: body too large"] == 2


async def test_json_nested_a_thousand_deep_is_a_one_line_400(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    deep = b"[" * 990 + b"]" * 990
    response = await edge.http.post("/webhook/telegram", content=deep, headers=TG)
    assert response.status_code == 400
    nested = b'{"update_id": 1, "message": ' + b'{"a": ' * 995 + b"1" + b"}" * 995 + b"}"
    assert (await edge.http.post("/webhook/telegram", content=nested, headers=TG)).status_code == 400
    raw, mac = signed(event("user_send_text", "x"))
    deep_oa = raw[:-1] + b', "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    assert (
        await edge.http.post("/webhook/zalo-oa", content=deep_oa, headers={"X-ZEvent-Signature": mac})
    ).status_code == 401
    no_tracebacks(caplog)
    assert [r.getMessage() for r in caplog.records if r.name == "bot.server"] == [
        "telegram: update refused (JSON nested deeper than 32 levels)",
        "telegram: update refused (JSON nested deeper than 32 levels)",
    ]


MALFORMED_TELEGRAM = [
    {"update_id": 1, "message": "hello"},
    {"update_id": 2, "message": {"chat": {"id": "abc", "type": "private"}, "text": "x", "date": 0}},
    {"update_id": 3, "message": {"chat": {"id": 42, "type": "private"}, "text": {"x": 1}, "date": 0}},
    {"update_id": 5, "message": {"chat": 42, "text": "hi"}},
    {"update_id": 6, "callback_query": {"id": 7, "data": "next"}},
    {
        "update_id": 7,
        "callback_query": {"id": "q", "data": ["next"], "message": {"chat": {"id": 42, "type": "private"}}},
    },
    {"update_id": 8, "edited_message": []},
    {"update_id": "9", "message": {"chat": {"id": 42, "type": "private"}, "text": "hi"}},
    {"update_id": True, "message": {}},
    [1, 2],
    "update",
]


async def test_every_malformed_telegram_update_is_acknowledged_counted_and_never_processed(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    for update in MALFORMED_TELEGRAM:
        response = await edge.http.post("/webhook/telegram", json=update, headers=TG)
        assert response.status_code == 200, update
    await edge.settle()
    no_tracebacks(caplog)
    assert sum(edge.server.rejected.values()) == len(MALFORMED_TELEGRAM)
    assert edge.api.sent() == [] and await edge.service.store.events() == []
    assert len([r for r in caplog.records if r.name == "bot.server"]) == len(MALFORMED_TELEGRAM)  # one line each
    # A field the bot never reads may be odd: the message itself is still answered.
    odd = text_update(4, "/start dang-ky-tam-tru")
    odd["message"]["date"] = "yesterday"
    assert (await edge.http.post("/webhook/telegram", json=odd, headers=TG)).status_code == 200
    await edge.settle()
    assert edge.api.sent_texts()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."


MALFORMED_ZALO = [
    {"event_name": "message.text.received", "message": "hi"},
    {"event_name": "message.text.received", "message": {"chat": "u1", "from": {"id": "u1"}, "text": "hi"}},
    {"event_name": "message.text.received", "message": {"chat": {"id": "u1"}, "from": [], "text": "hi"}},
    {"event_name": "message.text.received", "message": {"chat": {"id": {"x": 1}}, "text": "hi"}},
    {"event_name": "message.text.received", "message": {"chat": {"id": "u1", "chat_type": 5}, "text": "hi"}},
    {"event_name": 5, "message": {"chat": {"id": "u1"}, "text": "hi"}},
]


async def test_every_malformed_zalo_update_is_acknowledged_without_a_traceback(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    for update in MALFORMED_ZALO:
        assert (await edge.http.post("/webhook/zalo", json=update, headers=ZALO)).status_code == 200, update
    for body in ({"sender": "u1", "message": {"text": "x"}}, {"sender": {"id": "u1"}, "message": "x"}):
        ev = {**event("user_send_text"), **body}
        raw, mac = signed(ev)
        assert (
            await edge.http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
        ).status_code == 200
    await edge.settle()
    no_tracebacks(caplog)
    assert sum(edge.server.rejected.values()) == len(MALFORMED_ZALO) + 2
    assert edge.zalo.sent() == [] and edge.oa.sends == [] and await edge.service.store.events() == []


async def test_a_zalo_update_without_a_message_id_is_processed_once_however_often_it_comes(edge: Edge) -> None:
    update = zalo_update("", "/start dang-ky-tam-tru")
    del update["message"]["message_id"]
    for _ in range(3):  # getUpdates and webhooks replay
        assert (await edge.http.post("/webhook/zalo", json=update, headers=ZALO)).status_code == 200
    await edge.settle()
    assert [t for t in edge.zalo.sent() if t.startswith("Bắt đầu thủ tục")] == ["Bắt đầu thủ tục “Đăng ký tạm trú”."]


async def test_personal_numbers_in_taps_and_e_mails_never_reach_the_database(edge: Edge) -> None:
    phone, cccd, mail = "0912345678", "079203001234", "lan.tran@cong-ty-abc.vn"
    await edge.http.post("/webhook/telegram", json=text_update(1, "/start dang-ky-tam-tru"), headers=TG)
    await edge.http.post("/webhook/telegram", json=tap_update(2, cccd), headers=TG)  # forged callback_data
    await edge.http.post("/webhook/telegram", json=text_update(3, f"email em là {mail} nhé"), headers=TG)
    await edge.http.post("/webhook/telegram", json=text_update(4, "/menu"), headers=TG)
    await edge.http.post("/webhook/telegram", json=text_update(5, f"hỏi giùm {mail} sdt {phone}"), headers=TG)
    for i, text in enumerate((f"#c:{phone}", f"#c:{cccd}", f"liên hệ {mail}")):
        raw, mac = signed(event("user_send_text", text, msg_id=f"h{i}"))
        assert (
            await edge.http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
        ).status_code == 200
    await edge.settle()
    events = await edge.service.store.events()
    assert [e["detail"]["choice"] for e in events if e["type"] == "stale-choice"] == ["unknown-choice"] * 3
    stored = edge.db_bytes()
    for secret in (phone, cccd, "cong-ty-abc", "cong ty abc", "lan.tran", "lan tran"):
        assert secret.encode() not in stored, secret
    assert b"<email>" in stored  # the question was kept, with the address replaced


async def test_oa_tokens_are_not_in_clear_in_the_database_file(edge: Edge) -> None:
    edge.oa.valid_access = "rotate-now"  # -216 on the first send: the bot refreshes and stores the new pair
    edge.oa.prefix = ("zalo-access-token-", "zalo-refresh-token-")
    raw, mac = signed(event("user_send_text", "dk tam tru", msg_id="t1"))
    assert (
        await edge.http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
    ).status_code == 200
    await edge.settle()
    assert edge.oa.refreshes and edge.oa.sends
    stored = edge.db_bytes()
    assert b"zalo-access-token-1" not in stored and b"zalo-refresh-token-1" not in stored  # sealed at rest


async def test_a_flooding_chat_is_told_once_and_costs_nobody_else(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(40):
        response = await edge.http.post(
            "/webhook/telegram", json=text_update(100 + i, "dk tam tru", chat_id=7), headers=TG
        )
        assert response.status_code == 200
    assert (
        await edge.http.post(
            "/webhook/telegram", json=text_update(500, "/start dang-ky-tam-tru", chat_id=8), headers=TG
        )
    ).status_code == 200
    await edge.settle()
    to_flooder = [m["text"] for m in edge.api.sent() if str(m["chat_id"]) == "7"]
    assert to_flooder.count(texts.RATE_LIMITED) == 1
    assert "Bắt đầu thủ tục “Đăng ký tạm trú”." in [m["text"] for m in edge.api.sent() if str(m["chat_id"]) == "8"]
    events = await edge.service.store.events()
    assert len([e for e in events if e["type"] == "rate-limited"]) == 1
    health = (await edge.http.get("/healthz")).json()
    assert health["rate_limited"] == 19  # 20 answered, 1 told to slow down, 19 dropped
    assert health["replies_waiting"] == 0
    no_tracebacks(caplog)


async def test_beyond_the_in_flight_cap_the_platform_is_told_to_come_back(edge: Edge) -> None:
    edge.server.max_in_flight = 2
    store = edge.service.store
    release = hold_commits(store)
    waiting = [
        asyncio.ensure_future(
            edge.http.post("/webhook/telegram", json=text_update(600 + i, "hi", chat_id=20 + i), headers=TG)
        )
        for i in range(2)
    ]
    await asyncio.sleep(0.2)
    busy = await edge.http.post("/webhook/telegram", json=text_update(700, "hi", chat_id=30), headers=TG)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    release.set()
    assert [r.status_code for r in await asyncio.gather(*waiting)] == [200, 200]
    assert (await edge.http.get("/healthz")).json()["busy"] == 1


async def test_webhook_secret_checks_happen_before_any_body_is_read(edge: Edge) -> None:
    read = {"bytes": 0}

    async def body() -> AsyncIterator[bytes]:
        read["bytes"] += 10
        yield b'{"update_id": 1}'

    assert (await edge.http.post("/webhook/telegram", content=body(), headers={})).status_code == 403
    assert (
        await edge.http.post("/webhook/zalo", content=body(), headers={"X-Bot-Api-Secret-Token": "nope"})
    ).status_code == 403
    assert read["bytes"] == 0
    assert VECTOR_SECRET  # the OA route checks its signature on the (bounded) body instead


async def test_a_sender_that_goes_away_mid_body_is_not_an_error(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    from starlette.requests import Request

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/webhook/telegram", "headers": [], "query_string": b""}

    async def work(raw: bytes) -> None:
        raise AssertionError("nothing must be processed")

    response = await edge.server._accept("telegram", Request(scope, receive), work)
    assert response.status_code == 400
    no_tracebacks(caplog)


async def test_slow_senders_cannot_take_the_places_of_real_updates(edge: Edge, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import server as server_module

    edge.server.max_in_flight = 2
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"{"
        await never.wait()  # and then nothing, forever

    monkeypatch.setattr(server_module, "BODY_SECONDS", 0.3)
    slow = [asyncio.ensure_future(edge.http.post("/webhook/zalo-oa", content=trickle())) for _ in range(5)]
    await asyncio.sleep(0.1)
    real = await edge.http.post("/webhook/telegram", json=text_update(1, "/start dang-ky-tam-tru"), headers=TG)
    assert real.status_code == 200  # the anonymous trickles hold no place
    assert [r.status_code for r in await asyncio.gather(*slow)] == [408] * 5
    assert edge.server.rejected["zalo-oa: body too slow"] == 5


async def test_half_an_emoji_is_stored_and_answered_like_any_text(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    import hashlib
    import json

    def escaped(body: object) -> bytes:  # JSON may carry a lone surrogate as an escape; httpx would not send it
        return json.dumps(body).encode()

    update = zalo_update("", "dk tam tru \ud83d")
    del update["message"]["message_id"]
    for _ in range(2):  # and a replay
        response = await edge.http.post("/webhook/zalo", content=escaped(update), headers=ZALO)
        assert response.status_code == 200
    ev = event("user_send_text", "lặp lại \ud83d", msg_id="\ud83d")
    raw = escaped(ev)
    digest = hashlib.sha256(ev["app_id"].encode() + raw + ev["timestamp"].encode() + VECTOR_SECRET.encode())
    response = await edge.http.post(
        "/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": f"mac={digest.hexdigest()}"}
    )
    assert response.status_code == 200
    tg_update = text_update(77, "/start dang-ky-tam-tru \ud83d")
    assert (await edge.http.post("/webhook/telegram", content=escaped(tg_update), headers=TG)).status_code == 200
    await edge.settle()
    no_tracebacks(caplog)
    assert len([t for t in edge.zalo.sent() if t.startswith("Xin lỗi") or t.startswith("Bắt đầu")]) >= 1
    assert edge.api.sent() and edge.oa.sends
