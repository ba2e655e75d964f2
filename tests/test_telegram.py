"""Telegram channel: the real python-telegram-bot Application over a fake Bot API (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot import texts
from bot.channels import telegram as tg
from bot.content import ContentHolder, load
from bot.engine import Reply
from bot.errors import BotError
from bot.runner import Incoming, Runner
from bot.storage.sqlite import SqliteStore
from tests.conftest import GOOD, NOW, Sleeps, fail_commits
from tests.telegram_fake import TOKEN, FakeBotApi, edited_update, photo_update, tap_update, text_update


class FakeTime:
    """A clock the Sender sleeps on without really waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += max(seconds, 0.0)


class Bot:
    """The Telegram channel wired like production over the real PTB ``Bot``, plus helpers to feed updates."""

    def __init__(self, channel: tg.TelegramChannel, api: FakeBotApi, runner: Runner, time_: FakeTime) -> None:
        self.channel, self.api, self.runner, self.time = channel, api, runner, time_
        self.next_id = 1

    async def feed(self, data: dict[str, Any]) -> None:
        await self.channel.accept(data)
        await settle(self.channel)

    async def say(self, text: str, chat_id: int = 42) -> list[dict[str, Any]]:
        before = len(self.api.sent())
        await self.feed(text_update(self.uid(), text, chat_id))
        return self.api.sent()[before:]

    async def tap(self, data: str, chat_id: int = 42) -> list[dict[str, Any]]:
        before = len(self.api.sent())
        await self.feed(tap_update(self.uid(), data, chat_id))
        return self.api.sent()[before:]

    def uid(self) -> int:
        self.next_id += 1
        return self.next_id


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "bot.db")
    yield s
    await s.close()


async def settle(channel: tg.TelegramChannel) -> None:
    """Wait until the replies queued so far are sent and every tap is answered."""
    await channel.dispatcher.idle()
    if channel._answers:
        await asyncio.gather(*channel._answers)
    await channel.runner.store.flush()


@pytest.fixture
async def bot(store: SqliteStore) -> AsyncIterator[Bot]:
    api = FakeBotApi()
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    time_ = FakeTime()
    ptb = tg.build_bot(TOKEN, request=api.request())
    channel = tg.TelegramChannel(runner, ptb, tg.Sender(ptb.send_message, sleep=time_.sleep, clock=time_.clock))
    async with ptb:
        yield Bot(channel, api, runner, time_)


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {"inline_keyboard": []}
    return [(row[0]["text"], row[0]["callback_data"]) for row in markup["inline_keyboard"]]


async def test_a_whole_procedure_by_taps_and_by_typing(bot: Bot) -> None:
    first = await bot.say("/start dang-ky-tam-tru")
    assert first[0]["text"] == "Bắt đầu thủ tục “Đăng ký tạm trú”."
    assert "làm trực tuyến được" in first[1]["text"]
    assert buttons(first[1])[0] == ("Tiếp tục", "next")
    assert all(len(data.encode()) <= 64 for m in first for _, data in buttons(m))

    step = await bot.tap("next")
    assert step[-1]["text"] == "Ai là người nộp hồ sơ?"
    assert [label for label, _ in buttons(step[-1])][:2] == ["Tôi tự nộp", "Tôi nhờ người khác nộp"]
    answered = [p for m, p in bot.api.calls if m == "answerCallbackQuery"]
    assert len(answered) == 1 and answered[0]["callback_query_id"].startswith("cq")

    step = await bot.say("2")  # typed number = second button
    assert "Văn bản ủy quyền" in step[-1]["text"]
    step = await bot.say("Tôi đã có đủ giấy tờ")  # typed label
    assert step[-1]["text"] == "Bạn đã đăng nhập VNeID mức 2 chưa?"
    step = await bot.tap("o:roi")
    assert "7.000" in step[-2]["text"] and texts.SAFETY in step[-1]["text"]  # the fee, then safety with the buttons
    step = await bot.tap("paid")
    assert any("Xong! Lệ phí là" in m["text"] for m in step)
    assert bot.api.methods().count("answerCallbackQuery") == 3
    # No "typing…": the reply is committed within milliseconds, and every extra call costs flood budget.
    assert "sendChatAction" not in bot.api.methods()
    for method, params in bot.api.calls:
        if method == "sendMessage":
            assert params["chat_id"] == 42 or params["chat_id"] == "42"


async def test_telegram_says_what_the_console_says(bot: Bot, store: SqliteStore) -> None:
    steps: list[tuple[str, str]] = [("say", "/start dang-ky-tam-tru"), ("tap", "next"), ("tap", "o:nho-nguoi")]
    console = Runner(bot.runner.content, store, b"other-secret", clock=lambda: NOW)
    for kind, value in steps:
        sent = await (bot.say(value) if kind == "say" else bot.tap(value))
        if kind == "say":
            incoming = Incoming("console", "c1", kind="start", start_payload=value.split(" ", 1)[1])
        else:
            incoming = Incoming("console", "c1", kind="choice", choice_id=value)
        replies = await console.handle(incoming) or []
        assert [(m["text"], [label for label, _ in buttons(m)]) for m in sent] == [
            (r.text, [c.label for c in r.choices]) for r in replies
        ]


async def test_deep_link_edit_photo_and_other_chats(bot: Bot) -> None:
    await bot.say("/start@dvc_test_bot dang-ky-khai-sinh")
    assert "Đăng ký khai sinh" in bot.api.sent_texts()[0]
    before = len(bot.api.sent())
    await bot.feed(edited_update(bot.uid(), "1"))
    assert bot.api.sent_texts()[before:] == [texts.EDIT_IGNORED]
    before = len(bot.api.sent())
    await bot.feed(photo_update(bot.uid()))
    assert bot.api.sent_texts()[before] == texts.UNSUPPORTED_INPUT
    before = len(bot.api.sent())
    await bot.feed(text_update(bot.uid(), "dk tam tru", chat_id=-100, kind="group"))
    assert bot.api.sent()[before:] == []  # groups are ignored: the bot is for private chats
    await bot.say("/menu")
    assert bot.api.sent_texts()[-1] == texts.MENU_PROMPT


async def test_the_same_update_twice_is_processed_once(bot: Bot, store: SqliteStore) -> None:
    update = text_update(77, "/start dang-ky-tam-tru")
    await bot.feed(update)
    sent = len(bot.api.sent())
    await bot.feed(update)
    assert len(bot.api.sent()) == sent
    tap = tap_update(78, "next")
    await bot.feed(tap)
    await bot.feed(tap)
    assert bot.api.sent_texts().count("Ai là người nộp hồ sơ?") == 1
    assert bot.api.methods().count("answerCallbackQuery") == 2  # both taps stop spinning
    assert await store.is_processed("telegram", "77")


async def test_a_429_is_waited_out_and_the_reply_is_sent_once(bot: Bot) -> None:
    bot.api.fail_429 = 1
    bot.api.retry_after = 3
    sent = await bot.say("/start dang-ky-tam-tru")
    assert [m["text"] for m in sent].count("Bắt đầu thủ tục “Đăng ký tạm trú”.") == 1
    assert bot.api.methods().count("sendMessage") == len(sent) + 1  # one refused, then each once
    assert 3.0 in bot.time.slept


async def test_flood_limits_per_chat() -> None:
    time_ = FakeTime()
    sent: list[tuple[int, float]] = []

    async def send(chat_id: int, text: str, reply_markup: Any) -> None:
        sent.append((chat_id, time_.now))

    sender = tg.Sender(send, sleep=time_.sleep, clock=time_.clock, per_chat_interval=1.0, burst=3)
    for _ in range(6):
        await sender.send(42, "x", None)
    times = [t - 1000.0 for _, t in sent]
    assert times[:3] == [0.0, 0.0, 0.0]  # a short burst goes out at once
    assert times[3:] == pytest.approx([1.0, 2.0, 3.0])  # then one per second


async def test_overall_limit_of_30_per_second() -> None:
    time_ = FakeTime()
    stamps: list[float] = []

    async def send(chat_id: int, text: str, reply_markup: Any) -> None:
        stamps.append(time_.now)

    sender = tg.Sender(send, sleep=time_.sleep, clock=time_.clock)
    await asyncio.gather(*(sender.send(chat, "x", None) for chat in range(40)))
    assert sum(1 for t in stamps if t < 1001.0) == 30
    assert len(stamps) == 40


def test_long_replies_are_split_at_paragraphs_then_lines() -> None:
    para = "Đoạn " + "chữ " * 300  # ~1,500 characters
    text = "\n\n".join([para.strip()] * 5)
    pieces = tg.split_text(text)
    assert all(len(p) <= 4096 for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert pieces[0].endswith("chữ") and not pieces[1].startswith("\n")
    one_line = "x" * 5000
    assert [len(p) for p in tg.split_text(one_line)] == [4096, 904]
    lines = "\n".join(["dòng " * 100] * 20)
    assert all(len(p) <= 4096 for p in tg.split_text(lines))
    rendered = tg.render(Reply(text, ()))
    assert len(rendered) == len(pieces)


def test_long_choice_ids_become_numbers() -> None:
    long_id = "p:" + "a" * 70
    assert tg.callback_data(long_id, 3) == "n:3"
    assert tg.callback_data("o:roi", 1) == "o:roi"
    incoming = tg.parse_update(tap_update(5, "n:3")).incoming
    assert incoming is not None and (incoming.kind, incoming.text) == ("text", "3")
    assert tg.to_incoming(Update.de_json(tap_update(5, "n:3"), None)) == incoming


async def test_polling_registers_commands_and_answers(store: SqliteStore) -> None:
    api = FakeBotApi()
    api.updates = [text_update(900, "/start dang-ky-tam-tru")]
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    stop = asyncio.Event()

    async def stop_when_answered() -> None:
        while not any("Bắt đầu thủ tục" in t for t in api.sent_texts()):
            await asyncio.sleep(0.01)
        stop.set()

    watcher = asyncio.ensure_future(stop_when_answered())
    await asyncio.wait_for(tg.run_polling(runner, TOKEN, tg.DEFAULT_BASE_URL, stop, request=api.request()), timeout=20)
    await watcher
    methods = api.methods()
    assert methods[0] == "getMe"
    commands = next(p for m, p in api.calls if m == "setMyCommands")["commands"]
    assert [c["command"] for c in commands] == ["start", "menu", "help", "cancel"]
    assert all(c["description"] for c in commands)
    assert "deleteWebhook" in methods
    polls = [p for m, p in api.calls if m == "getUpdates"]
    assert polls[0]["allowed_updates"] == ["message", "edited_message", "callback_query"]


async def test_polling_confirms_an_update_only_after_its_turn_is_committed(store: SqliteStore) -> None:
    api = FakeBotApi()
    api.updates = [text_update(900, "/start dang-ky-tam-tru")]
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    fail_commits(store, 1, sqlite3.OperationalError("disk I/O error"))
    stop = asyncio.Event()

    async def stop_when_answered() -> None:
        while "Bắt đầu thủ tục “Đăng ký tạm trú”." not in api.sent_texts():
            await asyncio.sleep(0.01)
        while "901" not in [p.get("offset") for m, p in api.calls if m == "getUpdates"]:
            await asyncio.sleep(0.01)
        stop.set()

    watcher = asyncio.ensure_future(stop_when_answered())
    await asyncio.wait_for(
        tg.run_polling(runner, TOKEN, tg.DEFAULT_BASE_URL, stop, request=api.request(), sleep=Sleeps()), timeout=20
    )
    await watcher
    offsets = [p.get("offset") for m, p in api.calls if m == "getUpdates"]
    assert offsets[:2] == [None, None]  # the batch whose commit failed was fetched again, not confirmed
    assert "901" in offsets  # (form-encoded) confirmed once committed
    assert api.sent_texts().count("Bắt đầu thủ tục “Đăng ký tạm trú”.") == 1


async def test_a_wrong_token_is_one_clear_error(store: SqliteStore) -> None:
    api = FakeBotApi()
    api.invalid_token = True
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    with pytest.raises(BotError, match="TELEGRAM_BOT_TOKEN không hợp lệ"):
        await tg.run_polling(runner, TOKEN, tg.DEFAULT_BASE_URL, asyncio.Event(), request=api.request())


async def test_an_update_handled_before_a_restart_is_not_handled_again(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    update = text_update(4242, "/start dang-ky-tam-tru")
    for attempt in (1, 2):  # two processes, one after the other, on the same database
        store = await SqliteStore.open(db)
        api = FakeBotApi()
        runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
        ptb = tg.build_bot(TOKEN, request=api.request())
        channel = tg.TelegramChannel(runner, ptb)
        async with ptb:
            await channel.accept(update)
            await settle(channel)
        await store.close()
        assert len(api.sent()) == (2 if attempt == 1 else 0)


async def test_one_users_messages_reach_the_engine_in_arrival_order(store: SqliteStore) -> None:
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    first = asyncio.ensure_future(
        runner.handle(Incoming("telegram", "7", kind="start", start_payload="dang-ky-tam-tru"))
    )
    second = asyncio.ensure_future(runner.handle(Incoming("telegram", "7", kind="text", text="1")))
    replies = await asyncio.gather(first, second)
    assert replies[1] is not None and replies[1][-1].text == "Ai là người nộp hồ sơ?"


async def test_replies_committed_before_a_crash_are_sent_at_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    store = await SqliteStore.open(db)
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    # the turn is committed with its replies queued... and the process dies before sending
    delivery = await runner.handle_for_delivery(
        Incoming("telegram", "42", kind="start", start_payload="dang-ky-tam-tru", event_id="31")
    )
    assert delivery is not None and delivery.outbox_id
    await store.close()

    store = await SqliteStore.open(db)
    api = FakeBotApi()
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    ptb = tg.build_bot(TOKEN, request=api.request())
    channel = tg.TelegramChannel(runner, ptb)
    async with ptb:
        assert await channel.recover() == 1
        await settle(channel)
        assert api.sent_texts()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”."
        assert buttons(api.sent()[-1])[0] == ("Tiếp tục", "next")
        assert await channel.recover() == 0  # sent once
        await channel.accept(text_update(31, "/start dang-ky-tam-tru"))
        await settle(channel)
    assert len(api.sent()) == 2  # the update itself is not handled again
    assert await store.outbox_pending("telegram") == []  # no chat id left behind
    await store.close()


async def stopped_while_sending(db: Path, api: FakeBotApi) -> None:
    """A process commits a citizen's "/start dang-ky-tam-tru" (two messages) and stops 0.1 s after its first
    send reached ``api``."""
    store = await SqliteStore.open(db)
    ptb = tg.build_bot(TOKEN, request=api.request())
    channel = tg.TelegramChannel(Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW), ptb)
    try:
        async with ptb:
            await channel.accept(text_update(31, "/start dang-ky-tam-tru"))
            for _ in range(200):
                if "sendMessage" in api.methods():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            await channel.close(seconds=0.1)
    finally:
        await store.close()


async def sent_at_next_start(db: Path) -> FakeBotApi:
    """The next process's start: what it resends from the outbox, and the outbox is empty after."""
    store = await SqliteStore.open(db)
    api = FakeBotApi()
    ptb = tg.build_bot(TOKEN, request=api.request())
    channel = tg.TelegramChannel(Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW), ptb)
    try:
        async with ptb:
            assert await channel.recover() == 1
            await settle(channel)
        assert await store.outbox_pending("telegram") == []
    finally:
        await store.close()
    return api


async def test_a_turn_cut_off_mid_send_is_resumed_after_the_message_on_its_way_never_from_its_start(
    tmp_path: Path,
) -> None:
    """The process stops while Telegram holds the first of a turn's two messages (the request reached it, so
    the citizen has it); at the next start only the second message is sent."""
    api = FakeBotApi()
    api.hold_sends = 1
    await stopped_while_sending(tmp_path / "bot.db", api)
    assert [p["text"] for m, p in api.calls if m == "sendMessage"] == ["Bắt đầu thủ tục “Đăng ký tạm trú”."]
    api = await sent_at_next_start(tmp_path / "bot.db")
    assert len(api.sent()) == 1 and "làm trực tuyến được" in api.sent()[0]["text"], api.sent_texts()
    assert buttons(api.sent()[0])[0] == ("Tiếp tục", "next")


async def test_a_message_refused_by_a_flood_limit_is_sent_after_a_restart_not_counted_as_sent(
    tmp_path: Path,
) -> None:
    """Telegram answers 429 to the first message; the process stops while waiting it out. That message
    certainly did not arrive, so the next start sends the whole turn."""
    api = FakeBotApi()
    api.fail_429, api.retry_after = 1, 30
    await stopped_while_sending(tmp_path / "bot.db", api)
    assert api.sent() == [] and api.methods().count("sendMessage") == 1
    api = await sent_at_next_start(tmp_path / "bot.db")
    assert api.sent_texts()[0] == "Bắt đầu thủ tục “Đăng ký tạm trú”." and len(api.sent()) == 2


async def test_a_delivered_turn_leaves_nothing_in_the_outbox(bot: Bot, store: SqliteStore) -> None:
    await bot.say("/start dang-ky-tam-tru")
    await bot.tap("next")
    assert await store.outbox_pending("telegram") == []
