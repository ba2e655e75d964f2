"""Zalo OA v3: signed webhook, button payloads, token rotation, -216 and a closed reply window, over fakes.

The fake OA API follows the shapes in ../shared/reference/channels.md §4: ``POST /v3.0/oa/message/cs``
with an ``access_token`` header answers ``{"data": …, "error": 0, "message": "Success"}`` and negative
``error`` codes with HTTP 200; ``POST /v4/oa/access_token`` (form, ``secret_key`` header) returns a new
``access_token`` / ``refresh_token`` pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from bot import texts
from bot.channels import zalo_oa as oa
from bot.engine import Choice, Reply
from bot.privacy import unseal
from bot.runner import Incoming, Runner
from bot.server import WebhookServer
from bot.service import Service
from bot.storage import OATokens
from tests.conftest import GOOD, NOW, Sleeps

# The reference's test vector (channels.md §4).
VECTOR_BODY = (
    b'{"app_id":"2553928453557884079","user_id_by_app":"979122185046046317","event_name":"user_send_text",'
    b'"timestamp":"1699003881354","sender":{"id":"6142494823000000000"},"recipient":{"id":"3662729599332560487"},'
    b'"message":{"text":"Chao","msg_id":"cb31dff1c39642cc1b83"}}'
)
VECTOR_SECRET = "test-oa-secret"
VECTOR_MAC = "mac=af3307514d45e4f72d96820cb001eb6ece9c73990db670d874b6add7bea0a524"
APP_ID = "2553928453557884079"
USER = "6142494823000000000"


def test_the_reference_signature_vector_passes_and_a_tampered_body_fails() -> None:
    assert oa.signature_ok(VECTOR_BODY, VECTOR_MAC, VECTOR_SECRET)
    assert not oa.signature_ok(VECTOR_BODY.replace(b"Chao", b"Chau"), VECTOR_MAC, VECTOR_SECRET)
    assert not oa.signature_ok(VECTOR_BODY, VECTOR_MAC, "other-secret")
    assert not oa.signature_ok(VECTOR_BODY, None, VECTOR_SECRET)
    assert not oa.signature_ok(b"not json", VECTOR_MAC, VECTOR_SECRET)
    # re-serialising the JSON (spaces) changes the bytes, so the check must use the raw body
    assert not oa.signature_ok(json.dumps(json.loads(VECTOR_BODY)).encode(), VECTOR_MAC, VECTOR_SECRET)


def event(name: str, text: str = "", msg_id: str = "m1", user: str = USER) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": APP_ID,
        "event_name": name,
        "timestamp": "1764300000000",
        "sender": {"id": user},
        "recipient": {"id": "oa"},
    }
    if name.startswith("user_send_"):
        body["message"] = {"text": text, "msg_id": msg_id}
    return body


def signed(body: dict[str, Any], secret: str = VECTOR_SECRET) -> tuple[bytes, str]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    mac = hashlib.sha256(body["app_id"].encode() + raw + body["timestamp"].encode() + secret.encode()).hexdigest()
    return raw, f"mac={mac}"


def test_events_become_incoming_messages_and_button_payloads_become_choices() -> None:
    tap = oa.to_incoming(event("user_send_text", "#c:o:tu-nop"))
    assert tap is not None and (tap.kind, tap.choice_id, tap.user_id) == ("choice", "o:tu-nop", USER)
    typed = oa.to_incoming(event("user_send_text", "dk tam tru"))
    assert typed is not None and (typed.kind, typed.text) == ("text", "dk tam tru")
    follow = oa.to_incoming(event("follow"))
    assert follow is not None and follow.kind == "start"
    image = oa.to_incoming(event("user_send_image"))
    assert image is not None and image.kind == "unsupported"
    assert oa.to_incoming(event("unfollow")) is None
    assert oa.to_incoming(event("user_seen_message")) is None


def test_choices_are_hidden_query_buttons_with_the_numbered_list_as_fallback() -> None:
    reply = Reply("Ai là người nộp hồ sơ?", (Choice("o:tu-nop", "Tôi tự nộp"), Choice("o:nho", "Nhờ người nộp")))
    [message] = oa.messages(reply)
    assert message["text"].startswith("Ai là người nộp hồ sơ?\n\n1. Tôi tự nộp\n2. Nhờ người nộp")
    buttons = message["attachment"]["payload"]["buttons"]
    assert buttons[0] == {"title": "Tôi tự nộp", "type": "oa.query.hide", "payload": "#c:o:tu-nop"}
    many = Reply("Chọn", tuple(Choice(f"a:{i}", f"Nhóm {i}") for i in range(8)))
    assert "attachment" not in oa.messages(many)[-1]  # more than 5: the numbered list only
    long = oa.messages(Reply("\n\n".join(["chữ " * 200] * 5), reply.choices))
    assert len(long) > 1 and all(len(m["text"]) <= 2000 for m in long)
    assert "attachment" in long[-1] and "attachment" not in long[0]


class FakeOA:
    """OA API + OAuth server; ``errors`` queues error codes for the next sends."""

    def __init__(self, store: Any, secret: bytes = b"") -> None:
        self.store = store
        self.secret = secret
        self.prefix = ("A", "R")  # the tokens Zalo hands out are these plus a number
        self.sends: list[tuple[str, dict[str, Any]]] = []  # (access token used, body) of accepted sends
        self.errors: list[int] = []
        self.refreshes: list[tuple[dict[str, str], str]] = []
        self.valid_access = "A0"
        self.saved_before_use: list[bool] = []

    def transport(self) -> httpx.MockTransport:
        async def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v4/oa/access_token":
                form = dict(parse_qsl(request.content.decode()))
                self.refreshes.append((form, request.headers.get("secret_key", "")))
                n = len(self.refreshes)
                self.valid_access = f"{self.prefix[0]}{n}"
                return httpx.Response(
                    200,
                    json={
                        "access_token": self.valid_access,
                        "refresh_token": f"{self.prefix[1]}{n}",
                        "expires_in": "90000",
                    },
                )
            assert request.url.path == "/v3.0/oa/message/cs"
            token = request.headers.get("access_token", "")
            body = json.loads(request.content)
            if token != self.valid_access:
                return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})
            if self.refreshes:
                stored = await self.store.oa_tokens()
                readable = unseal(self.secret, stored.access_token, oa.TOKEN_PURPOSE) if stored else None
                self.saved_before_use.append(readable == token)
            if self.errors:
                code = self.errors.pop(0)
                return httpx.Response(200, json={"error": code, "message": "refused"})
            self.sends.append((token, body))
            return httpx.Response(
                200, json={"data": {"message_id": "x", "user_id": USER}, "error": 0, "message": "Success"}
            )

        return httpx.MockTransport(handler)

    def texts(self) -> list[str]:
        return [str(b["message"]["text"]) for _, b in self.sends]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    svc = await Service.open(GOOD, str(tmp_path / "bot.db"), mode="test", reload_interval=0, clock=lambda: NOW)
    yield svc
    await svc.close()


def make(service: Service, access: str = "A0", clock: Any = None) -> tuple[oa.ZaloOAChannel, FakeOA, Sleeps]:
    fake = FakeOA(service.store, service.runner.secret)
    fake.valid_access = access
    sleeps = Sleeps()
    client = oa.ZaloOAClient(
        service.store,
        APP_ID,
        "app-secret",
        OATokens("A0", "R0", 0.0),
        transport=fake.transport(),
        sleep=sleeps,
        secret=service.runner.secret,
    )
    channel = oa.ZaloOAChannel(service.runner, client, VECTOR_SECRET, clock=clock or (lambda: NOW.timestamp()))
    return channel, fake, sleeps


async def handled(channel: oa.ZaloOAChannel, ev: dict[str, Any]) -> None:
    """The event committed (what the webhook waits for), then its replies sent."""
    await channel.handle(ev)
    await channel.dispatcher.idle()


async def test_signed_webhook_conversation_equals_the_console(service: Service) -> None:
    channel, fake, _ = make(service)
    server = WebhookServer(service, None, None, channel)
    console = Runner(service.runner.content, service.store, b"console", clock=lambda: NOW)
    steps = [("follow", ""), ("user_send_text", "dk tam tru cho nguoi thue tro"), ("user_send_text", "#c:next")]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://b") as http:
        raw, mac = signed(event("user_send_text", "dk tam tru", msg_id="bad"))
        assert (
            await http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": "mac=00"})
        ).status_code == 401
        assert (await http.post("/webhook/zalo-oa", content=raw)).status_code == 401
        await server.drain()
        assert fake.sends == [] and await service.store.events() == []
        for i, (name, text) in enumerate(steps):
            before = len(fake.sends)
            raw, mac = signed(event(name, text, msg_id=f"m{i}"))
            response = await http.post("/webhook/zalo-oa", content=raw, headers={"X-ZEvent-Signature": mac})
            assert response.status_code == 200
            await channel.dispatcher.idle()
            if name == "follow":
                incoming = Incoming("console", "c", kind="start")
            elif text.startswith("#c:"):
                incoming = Incoming("console", "c", kind="choice", choice_id=text[3:])
            else:
                incoming = Incoming("console", "c", kind="text", text=text)
            expected = [m["text"] for r in (await console.handle(incoming) or []) for m in oa.messages(r)]
            assert fake.texts()[before:] == expected
    assert texts.WELCOME in fake.texts()[0]
    # ordinary replies keep the form that has always worked (only a reminder names the message it answers)
    assert fake.sends[-1][1]["recipient"] == {"user_id": USER}


async def test_invalid_token_refreshes_once_stores_the_new_pair_first_and_retries(service: Service) -> None:
    channel, fake, _ = make(service, access="A-expired")  # Zalo no longer accepts A0
    fake.valid_access = "nothing-yet"
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="r1"))
    [(form, secret_header)] = fake.refreshes
    assert form == {"app_id": APP_ID, "grant_type": "refresh_token", "refresh_token": "R0"}
    assert secret_header == "app-secret"
    assert {token for token, _ in fake.sends} == {"A1"}
    assert fake.saved_before_use and all(fake.saved_before_use)
    tokens = await channel.client.tokens()
    assert (tokens.access_token, tokens.refresh_token) == ("A1", "R1")
    stored = await service.store.oa_tokens()  # sealed in the database, like outbox chat ids
    assert stored is not None and stored.access_token.startswith("gAAAAA") and stored.refresh_token.startswith("gAAAAA")
    assert unseal(service.runner.secret, stored.refresh_token, oa.TOKEN_PURPOSE) == "R1"
    # the next refresh spends the NEW single-use refresh token
    fake.valid_access = "rotated-again"
    await handled(channel, event("user_send_text", "1", msg_id="r2"))
    assert fake.refreshes[1][0]["refresh_token"] == "R1"


async def test_rate_limits_back_off_and_retry(service: Service) -> None:
    channel, fake, sleeps = make(service)
    fake.errors = [-32, -32]
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="q1"))
    assert sleeps.slept[:2] == [2.0, 4.0]
    assert fake.texts()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."


async def test_a_closed_reply_window_is_logged_and_explained_at_the_next_message(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    channel, fake, _ = make(service)
    fake.errors = [-305]
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="w1"))
    assert fake.sends == []
    assert "window or quota exhausted" in caplog.text
    key = service.runner.key(oa.CHANNEL, USER)
    window = await service.store.oa_window(key)
    assert window is not None and window.missed
    await handled(channel, event("user_send_text", "lặp lại", msg_id="w2"))
    assert fake.texts()[0] == oa.WINDOW_MISSED_NOTE
    window = await service.store.oa_window(key)
    assert window is not None and not window.missed and window.sent_since == len(fake.sends)


async def test_the_missed_reply_note_does_not_shift_a_turns_count_of_messages_sent(service: Service) -> None:
    """The note is put before the turn in memory only; a worker resuming the turn from its outbox row must
    count the same messages, or it would skip the answer."""
    from bot.delivery import Progress

    channel, fake, _ = make(service)
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="n1"))  # opens the window
    before = len(fake.sends)
    marks: list[int] = []

    async def mark(n: int) -> bool:
        marks.append(n)
        return True

    await channel.deliver(USER, [Reply(oa.WINDOW_MISSED_NOTE), Reply("một"), Reply("hai")], Progress(0, mark))
    assert fake.texts()[before:] == [oa.WINDOW_MISSED_NOTE, "một", "hai"]
    assert marks == [1, 2], "the turn's own two messages, the note not counted"
    await channel.deliver(USER, [Reply("một"), Reply("hai")], Progress(1))  # resumed from the row
    assert fake.texts()[before + 3 :] == ["hai"]


async def test_replies_are_not_sent_after_48_hours_or_8_messages(service: Service) -> None:
    now = [NOW.timestamp()]
    channel, fake, _ = make(service, clock=lambda: now[0])
    key = service.runner.key(oa.CHANNEL, USER)
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="t1"))
    sent = len(fake.sends)
    now[0] += 49 * 3600  # a late delivery of more replies
    await channel.deliver(USER, [Reply("muộn")])
    assert len(fake.sends) == sent
    window = await service.store.oa_window(key)
    assert window is not None and window.missed


async def test_a_new_refresh_token_in_the_environment_wins_over_a_dead_stored_one(service: Service) -> None:
    channel, fake, _ = make(service)
    fake.valid_access = "x"
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="e1"))
    stored = await channel.client.tokens()
    assert stored.origin == "R0"  # descends from the configured R0
    # the administrator authorises the OA again: a new refresh token in the environment
    secret = service.runner.secret
    client = oa.ZaloOAClient(
        service.store, APP_ID, "app-secret", OATokens("B0", "S0", 0.0), transport=fake.transport(), secret=secret
    )
    assert (await client.tokens()).refresh_token == "S0"
    same = oa.ZaloOAClient(
        service.store, APP_ID, "app-secret", OATokens("A0", "R0", 0.0), transport=fake.transport(), secret=secret
    )
    assert (await same.tokens()).refresh_token == stored.refresh_token  # unchanged environment: the stored pair
    await client.close()
    await same.close()


async def test_network_errors_are_retried_and_then_explained(service: Service) -> None:
    channel, fake, sleeps = make(service)
    inner = fake.transport()
    calls = {"n": 0}

    async def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("down")
        if calls["n"] == 2:
            return httpx.Response(502, content=b"<html>Bad gateway</html>")
        return await inner.handle_async_request(request)

    channel.client._http = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    await handled(channel, event("user_send_text", "dk tam tru cho nguoi thue tro", msg_id="n1"))
    assert sleeps.slept[:2] == [2.0, 4.0]
    assert fake.texts()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."


def test_events_without_a_message_id_never_carry_the_raw_user_id() -> None:
    follow = oa.to_incoming(event("follow"))
    assert follow is not None and follow.event_id is not None
    assert USER not in follow.event_id


def test_oversized_or_hostile_bodies_fail_the_signature_check_quietly() -> None:
    assert not oa.signature_ok(b"[" * 100000, VECTOR_MAC, VECTOR_SECRET)
    assert not oa.signature_ok(b" " * (300 * 1024), VECTOR_MAC, VECTOR_SECRET)


async def test_outbox_replies_are_resent_at_start_within_the_window(service: Service) -> None:
    channel, fake, _ = make(service)
    delivery = await service.runner.handle_for_delivery(Incoming(oa.CHANNEL, USER, kind="start", event_id="follow:x"))
    assert delivery is not None and delivery.outbox_id
    await service.store.save_oa_window(service.runner.key(oa.CHANNEL, USER), oa.OAWindow(NOW.timestamp()))
    assert await channel.recover() == 1
    await channel.dispatcher.idle()
    assert texts.WELCOME in fake.texts()[0]
    assert await service.store.outbox_pending(oa.CHANNEL) == []


async def test_messages_that_arrive_while_replies_go_out_keep_the_window_open(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    now = [NOW.timestamp()]
    sends: list[str] = []

    async def slow_zalo(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.02)  # a real round trip: the next message arrives while this reply goes out
        sends.append(json.loads(request.content)["message"]["text"])
        return httpx.Response(200, json={"error": 0, "message": "Success"})

    client = oa.ZaloOAClient(
        service.store,
        APP_ID,
        "s",
        OATokens("A0", "R0", 0.0),
        transport=httpx.MockTransport(slow_zalo),
        secret=service.runner.secret,
    )
    channel = oa.ZaloOAChannel(service.runner, client, VECTOR_SECRET, clock=lambda: now[0])
    channel.dispatcher.backlog = 100  # every turn's replies are sent, none superseded
    for i in range(12):  # one message a second, 12 in all: more than 8 replies, but never 8 per message
        now[0] += 1.0
        await channel.handle(event("user_send_text", "menu", msg_id=f"m{i}"))
        await asyncio.sleep(0.015)
    await channel.dispatcher.idle()
    await client.close()
    window = await service.store.oa_window(service.runner.key(oa.CHANNEL, USER))
    assert len(sends) == 12 and "window closed" not in caplog.text
    # The window runs from the last message; replies still going out after it count in it (how many depends
    # on how far sending lagged behind on a busy machine; without the reset at each message it would be 12).
    assert window is not None and window.last_user_at == now[0] and 1 <= window.sent_since < 8 and not window.missed


class Hours:
    """One clock for the engine (Vietnam time) and the OA channel (Unix time), moved by the test."""

    def __init__(self) -> None:
        self.now = NOW.replace(hour=13)

    def __call__(self) -> Any:
        return self.now

    def unix(self) -> float:
        return self.now.timestamp()

    def pass_hours(self, hours: float) -> None:
        from datetime import timedelta

        self.now += timedelta(hours=hours)


@contextlib.asynccontextmanager
async def reminding(
    tmp_path: Path, after_hours: float
) -> AsyncIterator[tuple[Hours, Service, oa.ZaloOAChannel, FakeOA]]:
    """An OA channel whose citizens are reminded after ``after_hours``, on a clock the test moves."""
    from bot.engine import EngineConfig

    hours = Hours()
    config = EngineConfig(remind_after_seconds=after_hours * 3600, quiet_hours=(21, 7))
    service = await Service.open(
        GOOD, str(tmp_path / "bot.db"), mode="test", reload_interval=0, clock=hours, config=config
    )
    try:
        channel, fake, _ = make(service, clock=hours.unix)
        yield hours, service, channel, fake
    finally:
        await service.close()


async def test_an_oa_reminder_is_a_free_reply_to_the_citizens_last_message(tmp_path: Path) -> None:
    async with reminding(tmp_path, after_hours=20) as (hours, _, channel, fake):
        await handled(channel, event("user_send_text", "đăng ký tạm trú", msg_id="m-first"))
        await handled(channel, event("user_send_text", "#c:next", msg_id="m-last"))
        before = len(fake.sends)
        hours.pass_hours(21)
        assert await channel.dispatcher.remind_due() == 1
        await channel.dispatcher.idle()
        [reminder] = fake.sends[before:]
        assert "Đăng ký tạm trú" in reminder[1]["message"]["text"]
        assert reminder[1]["recipient"] == {"user_id": USER, "message_id": "m-last"}


async def test_an_oa_reminder_outside_the_free_window_is_skipped_never_sent_paid(tmp_path: Path) -> None:
    async with reminding(tmp_path, after_hours=50) as (hours, service, channel, fake):
        await handled(channel, event("user_send_text", "đăng ký tạm trú", msg_id="m1"))
        before = len(fake.sends)
        hours.pass_hours(51)
        assert await channel.dispatcher.remind_due() == 0
        await channel.dispatcher.idle()
        assert fake.sends[before:] == []
        skipped = [e for e in await service.store.events() if e["type"] == "reminder-skipped"]
        assert [e["detail"]["reason"] for e in skipped] == ["outside-window"]
        hours.pass_hours(24)
        assert await channel.dispatcher.remind_due() == 0
        again = [e for e in await service.store.events() if e["type"] == "reminder-skipped"]
        assert len(again) == 1, "not tried again"


async def test_an_oa_reminder_after_eight_free_replies_is_skipped(tmp_path: Path) -> None:
    async with reminding(tmp_path, after_hours=20) as (hours, service, channel, _):
        await handled(channel, event("user_send_text", "đăng ký tạm trú", msg_id="m1"))
        key = service.runner.key(oa.CHANNEL, USER)
        for _ in range(8 - (await service.store.oa_window(key)).sent_since):
            await service.store.count_oa_reply(key)  # the window's eight free replies are used up
        hours.pass_hours(21)
        assert await channel.dispatcher.remind_due() == 0
        assert "reminder-skipped" in [e["type"] for e in await service.store.events()]


async def test_an_oa_reminder_with_no_message_to_answer_is_skipped(tmp_path: Path) -> None:
    """A citizen who only followed the OA (no message of theirs to refer to): a reminder would be paid."""
    async with reminding(tmp_path, after_hours=20) as (hours, service, channel, fake):
        await handled(channel, event("user_send_text", "đăng ký tạm trú", msg_id="m1"))
        key = service.runner.key(oa.CHANNEL, USER)
        await handled(channel, event("follow"))  # (a follow keeps the id of the last real message)
        assert (await service.store.oa_window(key)).last_msg_id == "m1"
        await service.store.save_oa_window(key, oa.OAWindow(hours.unix()))  # as if no message id was ever seen
        hours.pass_hours(21)
        assert await channel.dispatcher.remind_due() == 0
        reasons = [e["detail"]["reason"] for e in await service.store.events() if e["type"] == "reminder-skipped"]
        assert reasons == ["no-message-to-answer"] and fake.sends[-1][1]["recipient"] == {"user_id": USER}
