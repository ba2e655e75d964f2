"""Reminders to citizens who stopped half-way (issue 18): at the engine (when one is planned, what it says, what
the citizen can answer), then through the runner, the store and Telegram. Hours pass on the tests' own clocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import texts
from bot.channels import telegram as tg
from bot.content import ContentHolder, load
from bot.engine import Content, EngineConfig, Inbound, Result, Session, quiet_at, remind, run_of, step
from bot.runner import Runner
from bot.storage.sqlite import SqliteStore
from tests.conftest import GOOD, NOW, open_store
from tests.telegram_fake import TOKEN, FakeBotApi, tap_update, text_update
from tests.test_cli import run

HOUR = 3600.0
CONFIG = EngineConfig(remind_after_seconds=20 * HOUR, quiet_hours=(21, 7))


class Citizen:
    """One citizen talking to the engine as the runner would, keeping the session and the planned reminder."""

    def __init__(self, content: Content, config: EngineConfig = CONFIG, now: datetime = NOW) -> None:
        self.content, self.config, self.now = content, config, now
        self.session = Session()
        self.remind_at: float | None = None
        self.events: list[str] = []
        self.replies: list[str] = []
        self.buttons: list[str] = []

    def _took(self, result: Result, planned: bool = True) -> Result:
        self.session = result.session
        if planned:
            self.remind_at = result.remind_at
        self.events += [e.type for e in result.events]
        self.replies = [r.text for r in result.replies]
        self.buttons = [c.label for c in result.replies[-1].choices] if result.replies else []
        return result

    def says(self, text: str, after_hours: float = 0.01) -> Result:
        self.now += timedelta(hours=after_hours)
        return self._took(step(self.content, self.session, Inbound("telegram", "u", text=text), self.now, self.config))

    def taps(self, choice: str, after_hours: float = 0.01) -> Result:
        self.now += timedelta(hours=after_hours)
        inbound = Inbound("telegram", "u", kind="choice", choice_id=choice)
        return self._took(step(self.content, self.session, inbound, self.now, self.config))

    def starts(self, procedure: str, after_hours: float = 0.01) -> Result:
        self.now += timedelta(hours=after_hours)
        inbound = Inbound("telegram", "u", kind="start", start_payload=procedure)
        return self._took(step(self.content, self.session, inbound, self.now, self.config))

    def reminder_due(self, skip: str | None = None) -> Result:
        """The scheduler's side: at the planned time, the reminder (or what happens instead)."""
        assert self.remind_at is not None
        self.now = datetime.fromtimestamp(self.remind_at, self.now.tzinfo)
        run = run_of(self.session)
        assert run is not None
        result = remind(self.content, self.session, "u", "telegram", run, self.now, self.config, skip)
        self._took(result, planned=False)
        self.remind_at = result.remind_at
        return result


def at_login(content: Content) -> Citizen:
    """A citizen at "đăng nhập VNeID" of đăng ký tạm trú, on a weekday morning."""
    c = Citizen(content, now=NOW.replace(hour=13))  # due at 09:00 the next day
    c.starts("dang-ky-tam-tru")
    c.taps("next")
    c.taps("o:tu-nop")
    c.taps("next")
    assert c.session.position is not None and c.session.position.step == "dang-nhap"
    return c


def test_one_reminder_after_twenty_hours_naming_the_procedure_and_the_step(content: Content) -> None:
    c = at_login(content)
    assert c.events.count("reminder-scheduled") == 1, "scheduled once for the run, however many steps"
    assert c.remind_at == c.now.timestamp() + 20 * HOUR
    result = c.reminder_due()
    assert [e.type for e in result.events] == ["reminder-sent"]
    text = "\n".join(c.replies)
    assert "Đăng ký tạm trú" in text and "đăng nhập" in text.lower()
    assert c.buttons[0] == texts.REMINDER_CONTINUE and texts.REMINDER_OFF in c.buttons
    assert texts.REMINDER_OFFICIAL in c.buttons
    assert all(len(r) <= 600 for r in c.replies)
    # the citizen says nothing more: no second reminder is planned, ever, for this run
    assert c.remind_at is None
    assert remind(content, c.session, "u", "telegram", run_of(c.session) or "", c.now, CONFIG).replies == ()


def test_a_reply_to_the_reminder_resumes_exactly_where_the_citizen_was(content: Content) -> None:
    c = at_login(content)
    c.reminder_due()
    c.says("dạ", after_hours=2)
    assert "reminder-resumed" in c.events
    assert c.session.position is not None and c.session.position.step == "dang-nhap"
    assert "Đã đăng nhập được" in c.buttons, "the step itself is shown again, not a 'start over?' question"
    # and going on later in the same run plans no second reminder
    c.taps("o:roi")
    assert c.remind_at is None and c.events.count("reminder-sent") == 1


def test_the_reminder_button_continue_shows_the_step(content: Content) -> None:
    c = at_login(content)
    c.reminder_due()
    c.taps("resume", after_hours=1)
    assert "Đã đăng nhập được" in c.buttons and c.events.count("reminder-resumed") == 1


def test_writing_again_before_the_reminder_moves_it_and_finishing_drops_it(content: Content) -> None:
    c = at_login(content)
    first = c.remind_at
    c.says("1", after_hours=0.2)  # "Đã đăng nhập được": on to payment
    assert c.remind_at is not None and first is not None and c.remind_at > first
    # the old planned time comes: the scheduler finds the citizen wrote since, and waits
    run = run_of(c.session) or ""
    early = remind(content, c.session, "u", "telegram", run, datetime.fromtimestamp(first, NOW.tzinfo), CONFIG)
    assert early.replies == () and early.remind_at == c.remind_at
    c.taps("paid")
    assert c.session.position is None and c.remind_at is None, "a finished procedure is never reminded"


def test_no_reminder_in_the_quiet_hours_it_waits_for_the_morning(content: Content) -> None:
    c = Citizen(content, now=NOW.replace(hour=23))  # planned at 23:00: due 19:00 next day: fine
    c.starts("dang-ky-tam-tru")
    assert c.remind_at is not None
    assert datetime.fromtimestamp(c.remind_at, NOW.tzinfo).hour == 19
    c = Citizen(content, now=NOW.replace(hour=3))  # 03:00 + 20 h = 23:00, quiet: 07:00 the day after
    c.starts("dang-ky-tam-tru")
    due = datetime.fromtimestamp(c.remind_at or 0, NOW.tzinfo)
    assert (due.hour, due.minute, due.date()) == (7, 0, (NOW + timedelta(days=1)).date())
    # a reminder found due at night (the scheduler was down all evening) also waits for 07:00
    night = replace(CONFIG, quiet_hours=(21, 7))
    c = Citizen(content, config=night)
    c.starts("dang-ky-tam-tru")
    run = run_of(c.session) or ""
    late = NOW.replace(hour=22) + timedelta(days=1)
    result = remind(content, c.session, "u", "telegram", run, late, night)
    assert result.replies == () and result.events == ()
    assert datetime.fromtimestamp(result.remind_at or 0, NOW.tzinfo).hour == 7
    assert quiet_at(NOW.replace(hour=6), (21, 7)) and not quiet_at(NOW.replace(hour=7), (21, 7))
    assert not quiet_at(NOW.replace(hour=3), None)


def test_khong_nhac_nua_stops_every_reminder_until_the_citizen_asks_again(content: Content) -> None:
    c = at_login(content)
    c.reminder_due()
    c.taps("nudge-off", after_hours=1)
    assert "reminder-opted-out" in c.events and "reminder-resumed" not in c.events
    assert c.session.reminders_off and c.remind_at is None
    assert c.replies[0] == texts.REMINDERS_OFF
    c.taps("cmd:menu")
    c.starts("dang-ky-khai-sinh")
    assert c.remind_at is None, "no reminder on any procedure"
    c.says("bật nhắc")
    assert "reminder-opted-in" in c.events and not c.session.reminders_off
    assert c.remind_at is not None


def test_typed_ways_to_say_no_more_reminders(content: Content) -> None:
    for said in ("không nhắc nữa", "khong nhac nua", "Đừng nhắc tôi nữa!", "ko cần nhắc thêm nhé", "/stop"):
        c = at_login(content)
        c.says(said)
        assert c.session.reminders_off, said
        assert c.remind_at is None, said
    for said in ("ko can nhac", "không cần nhắc"):  # short forms: only as an answer to a reminder
        c = at_login(content)
        c.says(said)
        assert not c.session.reminders_off, said
        c.reminder_due()
        c.says(said)
        assert c.session.reminders_off, said
    # "nhắc lại" is "say it again"; "đúng" folds like "đừng": none of these turn reminders off
    for said in (
        "nhắc lại giúp tôi",
        "Không. Nhắc lại giúp tôi",
        "không nhắc lại được",
        "ko nhắc lại à",
        "k nhắc gì cả",
    ):
        for at_reminder in (False, True):
            c = at_login(content)
            if at_reminder:
                c.reminder_due()
            c.says(said)
            assert not c.session.reminders_off, (said, at_reminder)
    for said in ("Đúng nhắc rồi", "không", "khong biet"):
        c = at_login(content)
        c.says(said)
        assert not c.session.reminders_off, said


def test_a_reminder_that_cannot_be_sent_is_recorded_as_skipped_and_not_tried_again(content: Content) -> None:
    c = at_login(content)
    result = c.reminder_due(skip="outside-window")
    assert result.replies == ()
    assert [(e.type, e.detail["reason"]) for e in result.events] == [("reminder-skipped", "outside-window")]
    c.says("dạ", after_hours=30)
    assert "reminder-resumed" not in c.events and c.remind_at is None


def test_help_with_this_step_opens_the_guide_officials_chose(content: Content) -> None:
    c = at_login(content)
    c.taps("o:roi")  # on to the payment step, whose guide is the safe-payment guide
    c.reminder_due()
    assert texts.REMINDER_GUIDE in c.buttons
    c.taps("nudge-guide", after_hours=1)
    assert "guide-entered" in c.events
    assert c.session.position is not None and c.session.position.stack


def test_the_console_and_a_config_without_reminders_plan_none(content: Content) -> None:
    c = Citizen(content, config=EngineConfig())
    c.starts("dang-ky-tam-tru")
    assert c.remind_at is None and "reminder-scheduled" not in c.events


# --- Through the runner, the store and a channel: the reminder goes out once, as a real message -------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def pass_hours(self, hours: float) -> None:
        self.now += timedelta(hours=hours)


class TelegramCitizen:
    """A citizen on Telegram (the real python-telegram-bot over a fake Bot API) and the bot's reminder round."""

    def __init__(self, store: Any, clock: Clock, api: FakeBotApi | None = None) -> None:
        self.api = api or FakeBotApi()
        self.clock = clock
        self.runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=clock, config=CONFIG)
        self.ptb = tg.build_bot(TOKEN, request=self.api.request())
        self.channel = tg.TelegramChannel(self.runner, self.ptb)
        self.next_id = 100

    async def __aenter__(self) -> TelegramCitizen:
        await self.ptb.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.dispatcher.drain(5)
        await self.ptb.shutdown()

    async def _feed(self, update: dict[str, Any]) -> None:
        await self.channel.accept(update)
        await self.channel.dispatcher.idle()
        if self.channel._answers:
            await asyncio.gather(*self.channel._answers)

    async def says(self, text: str) -> None:
        self.next_id += 1
        await self._feed(text_update(self.next_id, text))

    async def taps(self, data: str) -> None:
        self.next_id += 1
        await self._feed(tap_update(self.next_id, data))

    async def reminder_round(self) -> int:
        queued = await self.channel.dispatcher.remind_due()
        await self.channel.dispatcher.idle()
        return queued


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "bot.db")
    yield s
    await s.close()


async def test_telegram_one_reminder_after_the_silence_and_a_tap_resumes(store: SqliteStore) -> None:
    clock = Clock(NOW.replace(hour=13))
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
        await tgc.taps("next")
        await tgc.taps("o:tu-nop")
        await tgc.taps("next")  # at "đăng nhập VNeID"
        sent_before = len(tgc.api.sent())
        clock.pass_hours(19)
        assert await tgc.reminder_round() == 0, "not before twenty hours"
        clock.pass_hours(1.5)
        assert await tgc.reminder_round() == 1
        reminder = tgc.api.sent()[sent_before:]
        assert len(reminder) == 1 and "Đăng ký tạm trú" in reminder[0]["text"]
        labels = [row[0]["text"] for row in reminder[0]["reply_markup"]["inline_keyboard"]]
        assert labels[0] == texts.REMINDER_CONTINUE and texts.REMINDER_OFF in labels
        clock.pass_hours(48)
        assert await tgc.reminder_round() == 0, "one reminder only"
        assert len(tgc.api.sent()) == sent_before + 1
        await tgc.taps("resume")
        assert "Đã đăng nhập được" in str(tgc.api.sent()[-1]["reply_markup"])
    types = [e["type"] for e in await store.events()]
    assert types.count("reminder-sent") == 1 and types.count("reminder-resumed") == 1
    assert types.count("reminder-scheduled") == 1


async def test_slash_stop_on_telegram_means_no_reminder(store: SqliteStore) -> None:
    clock = Clock(NOW.replace(hour=13))
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
        before = len(tgc.api.sent())
        await tgc.says("/stop")
        assert tgc.api.sent_texts()[before] == texts.REMINDERS_OFF
        clock.pass_hours(30)
        assert await tgc.reminder_round() == 0


async def test_a_reminder_planned_before_a_restart_is_sent_after_it(tmp_path: Path) -> None:
    clock = Clock(NOW.replace(hour=13))
    store = await SqliteStore.open(tmp_path / "bot.db")
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
    await store.close()  # the bot stops (or dies) hours before the reminder is due
    clock.pass_hours(21)
    store = await SqliteStore.open(tmp_path / "bot.db")
    try:
        async with TelegramCitizen(store, clock) as again:
            assert await again.reminder_round() == 1
            assert "Đăng ký tạm trú" in again.api.sent_texts()[-1]
    finally:
        await store.close()


async def test_two_workers_at_the_same_due_reminder_send_it_once(db_url: str) -> None:
    clock = Clock(NOW.replace(hour=13))
    a, b = await open_store(db_url), await open_store(db_url)
    api = FakeBotApi()  # one Telegram: both workers send to it
    try:
        async with TelegramCitizen(a, clock, api) as first, TelegramCitizen(b, clock, api) as second:
            for n in range(5):  # five citizens, each stopped half-way
                first.next_id += 1
                update = text_update(first.next_id, "/start dang-ky-tam-tru", chat_id=500 + n)
                await first._feed(update)
            before = len(api.sent())
            clock.pass_hours(21)
            queued = await asyncio.gather(first.reminder_round(), second.reminder_round())
            assert sum(queued) == 5
            assert len(api.sent()) == before + 5, "each citizen got exactly one reminder"
            assert sorted(int(m["chat_id"]) for m in api.sent()[before:]) == [500, 501, 502, 503, 504]
    finally:
        await a.close()
        await b.close()


def test_officials_words_at_a_step_or_its_stage_go_into_the_reminder(content: Content) -> None:
    c = at_login(content)  # dang-nhap has its own reminder (text and guide) in the flow file
    c.reminder_due()
    assert "Nhiều người vướng ở bước đăng nhập VNeID" in c.replies[0]
    assert "“Đăng nhập VNeID”" in c.replies[0], "the step is named by its stage when it has no title"
    c.taps("nudge-guide", after_hours=1)
    assert c.session.position is not None and c.session.position.procedure == "tai-khoan-vneid"
    c = at_login(content)
    c.taps("o:roi")  # the payment step: no reminder of its own, so its stage's, and its payment guide
    c.reminder_due()
    assert "không ai được gọi điện xin mã OTP" in c.replies[0]
    assert texts.REMINDER_GUIDE in c.buttons


def test_validate_warns_about_a_reminder_too_long_for_one_message(tmp_path: Path) -> None:
    import shutil
    from datetime import date

    from bot.render_check import render_problems

    content_dir = tmp_path / "content"
    shutil.copytree(GOOD, content_dir)
    flow = content_dir / "flows" / "dang-ky-tam-tru.yaml"
    long = "Nhiều người vướng ở bước đăng nhập VNeID. " + "Bạn cứ bình tĩnh làm lại từ đầu. " * 20
    flow.write_text(flow.read_text(encoding="utf-8").replace("Nhiều người vướng ở bước đăng nhập VNeID.", long))
    problems = [p.format() for p in render_problems(content_dir, load(content_dir), date(2026, 12, 4))]
    assert [p for p in problems if "lời nhắc" in p] == [
        "flows/dang-ky-tam-tru.yaml:34:13: cảnh báo: bước “dang-nhap”: lời nhắc ở bước này dài 955 ký tự (kể cả các "
        "nút), quá một tin nhắn 600 ký tự. Viết câu nhắc (reminder: text:) ngắn lại, một hai câu."
    ]
    assert not [p for p in render_problems(GOOD, load(GOOD), date(2026, 12, 4)) if "lời nhắc" in p.format()]


def test_an_official_previews_the_reminder_for_a_step_and_answers_it() -> None:
    proc = run("preview", "dang-ky-tam-tru", "--content", str(GOOD), "--step", "dang-nhap", "--reminder", stdin="2\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "im lặng 20 giờ" in out and "hôm trước bạn đang làm thủ tục “Đăng ký tạm trú”" in out
    assert "1. Làm tiếp" in out and "4. Không nhắc nữa" in out
    # "2" is "Hướng dẫn bước này": the VNeID guide opens, as it would for the citizen
    assert out.index("Hướng dẫn bước này") < out.index("Mở ứng dụng VNeID và đăng nhập")
    faster = run(
        "preview",
        "dang-ky-tam-tru",
        "--content",
        str(GOOD),
        "--step",
        "xong",
        "--reminder",
        BOT_NUDGE_AFTER_MINUTES="90",
    )
    assert faster.returncode == 1 and faster.stderr.strip().startswith("Lỗi: Bước “xong” không có lời nhắc")
    assert "Traceback" not in faster.stderr


def test_a_typo_in_the_reminder_settings_is_one_clear_line(tmp_path: Path) -> None:
    for name, value, said in (
        ("BOT_NUDGE_QUIET_HOURS", "21h-7h", "BOT_NUDGE_QUIET_HOURS phải có dạng giờ-giờ, ví dụ 21-7"),
        ("BOT_NUDGES", "tắt", "BOT_NUDGES phải là on hoặc off"),
        ("BOT_NUDGE_AFTER_MINUTES", "20 giờ", "BOT_NUDGE_AFTER_MINUTES phải là một số phút"),
    ):
        proc = run("chat", "--db", str(tmp_path / "b.db"), **{name: value})
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0 and len(lines) == 1 and said in lines[0], (name, proc.stderr)


def test_after_a_reminder_typed_words_answer_it_or_are_read_at_the_step(content: Content) -> None:
    c = at_login(content)
    c.reminder_due()
    c.says("gặp cán bộ", after_hours=1)  # a button's words
    assert "help" in c.events
    c = at_login(content)
    c.reminder_due()
    c.says("lệ phí bao nhiêu vậy", after_hours=1)  # not an answer to the reminder: read as at the step
    assert not any("hôm trước bạn đang làm" in r for r in c.replies), "the reminder is not said twice"
    assert "reminder-resumed" in c.events


def test_bot_nudges_off_plans_no_reminder(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import nudge_settings

    monkeypatch.setenv("BOT_NUDGES", "off")
    assert nudge_settings()[0] == 0.0
    monkeypatch.setenv("BOT_NUDGES", "on")
    monkeypatch.setenv("BOT_NUDGE_QUIET_HOURS", "")
    assert nudge_settings() == (1200 * 60.0, None)


async def test_the_zalo_bot_platform_keeps_the_48_hour_rule(store: SqliteStore) -> None:
    from bot.channels import zalo_bot

    clock = Clock(NOW)
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=clock, config=CONFIG)
    channel = zalo_bot.ZaloBotChannel(runner, zalo_bot.ZaloBotClient("t:k", "http://zalo.invalid"))
    assert await channel.can_remind("k", NOW.timestamp() - 47 * HOUR) is None
    assert await channel.can_remind("k", NOW.timestamp() - 49 * HOUR) == "outside-window"


async def test_a_reminder_refused_with_429_is_waited_out_and_sent_once(store: SqliteStore) -> None:
    clock = Clock(NOW.replace(hour=13))
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
        before = len(tgc.api.sent())
        tgc.api.fail_429, tgc.api.retry_after = 1, 0
        clock.pass_hours(21)
        assert await tgc.reminder_round() == 1
        assert len(tgc.api.sent()) == before + 1
        assert [m for m, _ in tgc.api.calls].count("sendMessage") == before + 2  # refused once, then sent
        clock.pass_hours(1)
        assert await tgc.reminder_round() == 0
        assert await store.outbox_pending("telegram") == []


async def test_a_reminder_overtaken_by_a_new_procedure_leaves_the_new_ones_plan(store: SqliteStore) -> None:
    clock = Clock(NOW.replace(hour=13))
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
        clock.pass_hours(21)
        [due] = await store.reminders_due("telegram", clock.now.timestamp())  # the bot takes it...
        await tgc.says("/start dang-ky-khai-sinh")  # ...while the citizen starts something else
        assert await tgc.runner.remind(due) is None, "the old run's reminder is not sent"
        clock.pass_hours(21)
        [later] = await store.reminders_due("telegram", clock.now.timestamp())
        assert later.run.startswith("dang-ky-khai-sinh@"), "the new procedure's reminder survived"
        assert await tgc.reminder_round() == 1
        assert "Đăng ký khai sinh" in tgc.api.sent_texts()[-1]


def test_under_a_reminder_a_tap_on_the_steps_own_button_is_taken(content: Content) -> None:
    c = at_login(content)
    c.reminder_due()
    c.taps("o:roi", after_hours=1)  # "Đã đăng nhập được", on the step's message just above the reminder
    assert "stale-choice" not in c.events
    assert c.session.position is not None and c.session.position.step == "thanh-toan"


def test_under_a_reminder_a_question_is_read_at_the_step_and_no_restart_is_offered(content: Content) -> None:
    for said in ("lệ phí bao nhiêu vậy", "chưa"):
        c = at_login(content)
        c.reminder_due()
        c.says(said, after_hours=1)
        assert "resume-offered" not in c.events, said
        assert c.session.position is not None and c.session.position.step in ("dang-nhap", "cach-dang-nhap")
    for said in ("dạ thôi", "không làm nữa", "thôi ạ, cảm ơn"):  # "no thanks" to "Bạn muốn làm tiếp không?"
        c = at_login(content)
        c.reminder_due()
        c.says(said, after_hours=1)
        assert "cancel-asked" in c.events, said
        assert "step-entered" not in c.events[c.events.index("reminder-sent") :], "a polite no is not a yes"


def test_one_reminder_per_run_even_after_a_detour_through_a_guide(content: Content) -> None:
    c = at_login(content)
    c.reminder_due()
    c.taps("nudge-guide", after_hours=1)  # into the VNeID guide, a run of its own
    c.taps("next")
    c.taps("next")
    assert c.session.position is not None and c.session.position.procedure == "dang-ky-tam-tru"
    assert c.remind_at is None, "back in the run already reminded: no second reminder planned"


def test_help_with_this_step_inside_that_guide_shows_where_the_citizen_is(content: Content) -> None:
    c = at_login(content)
    c.taps("o:chua")  # "Chưa đăng nhập được": into the VNeID guide
    inside = c.session.position
    assert inside is not None and inside.procedure == "tai-khoan-vneid"
    c.reminder_due()
    c.taps("nudge-guide", after_hours=1)
    assert c.session.position == inside, "not the same guide again inside itself"


def test_a_reminder_for_a_step_a_reload_removed_is_dropped(content: Content) -> None:
    from bot.engine import Frame, Position

    c = at_login(content)
    guide = content.catalogue.flow("tai-khoan-vneid")
    assert guide is not None
    later = c.now + timedelta(hours=21)
    for gone in (
        Position("dang-ky-tam-tru", "buoc-da-xoa"),  # the step itself
        Position("tai-khoan-vneid", guide.start, (Frame("dang-ky-tam-tru", "buoc-da-xoa"),)),  # the step to return to
    ):
        session = replace(c.session, position=gone)
        result = remind(content, session, "u", "telegram", run_of(session) or "", later, CONFIG)
        assert result.replies == () and result.remind_at is None, gone


def test_a_reminder_found_a_day_late_is_skipped_not_sent(content: Content) -> None:
    c = at_login(content)
    assert c.remind_at is not None
    c.remind_at += 30 * HOUR  # the bot was down all that time
    result = c.reminder_due()
    assert result.replies == () and [e.detail["reason"] for e in result.events] == ["too-late"]


async def test_a_reminder_the_engine_fails_on_is_dropped_not_retried_for_ever(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot import engine

    clock = Clock(NOW.replace(hour=13))
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
        clock.pass_hours(21)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(engine, "remind", broken)
        assert await tgc.reminder_round() == 0
        assert "engine failed on a reminder" in caplog.text
        assert await store.reminders_due("telegram", clock.now.timestamp()) == []


async def test_a_reminder_left_in_the_outbox_by_a_crash_is_not_sent_at_night(tmp_path: Path) -> None:
    clock = Clock(NOW.replace(hour=0))  # 00:00 + 20 h: due at 20:00, just before the quiet hours
    store = await SqliteStore.open(tmp_path / "bot.db")
    async with TelegramCitizen(store, clock) as tgc:
        await tgc.says("/start dang-ky-tam-tru")
        clock.pass_hours(20.5)
        [due] = await store.reminders_due("telegram", clock.now.timestamp())
        assert await tgc.runner.remind(due) is not None  # committed to the outbox... and the process dies
    await store.close()
    clock.pass_hours(2)  # 22:30: it restarts
    store = await SqliteStore.open(tmp_path / "bot.db")
    try:
        async with TelegramCitizen(store, clock) as again:
            await again.channel.recover()
            await again.channel.dispatcher.idle()
            assert again.api.sent() == [], "not at night"
            assert await store.outbox_pending("telegram") == []
    finally:
        await store.close()
