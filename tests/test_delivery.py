"""The dispatcher: committed replies go out per chat in commit order, never piling up, and survive a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bot.content import ContentHolder, load
from bot.delivery import Dispatcher, Progress
from bot.engine import Reply
from bot.runner import Delivery, Incoming, Runner
from bot.storage.sqlite import SqliteStore
from tests.conftest import GOOD, NOW


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[Runner]:
    store = await SqliteStore.open(tmp_path / "bot.db")
    yield Runner(ContentHolder(load(GOOD), GOOD), store, b"secret", clock=lambda: NOW)
    await store.close()


async def committed(runner: Runner, chat: str, n: int, submit: object) -> None:
    for i in range(n):
        await runner.handle_for_delivery(
            Incoming("telegram", chat, kind="text", text="menu", event_id=f"{chat}:{i}"),
            on_commit=submit,  # type: ignore[arg-type]
        )


async def test_one_chats_turns_go_out_in_commit_order_and_chats_do_not_wait_for_each_other(runner: Runner) -> None:
    sent: list[tuple[str, str]] = []
    gate = asyncio.Event()

    async def send(chat: str, replies: Sequence[Reply], progress: Progress) -> None:
        if chat == "slow":
            await gate.wait()
        for reply in replies:
            await asyncio.sleep(0)  # let any other turn of the same chat try to cut in
            sent.append((chat, reply.text))

    dispatcher = Dispatcher("telegram", runner, send)
    dispatcher.submit(Delivery([Reply("A1"), Reply("A2"), Reply("A3")], 0, "fast"))
    dispatcher.submit(Delivery([Reply("B1"), Reply("B2")], 0, "fast"))
    dispatcher.submit(Delivery([Reply("S1")], 0, "slow"))
    await asyncio.sleep(0.05)
    assert [t for c, t in sent if c == "fast"] == ["A1", "A2", "A3", "B1", "B2"]  # the slow chat did not hold them up
    gate.set()
    await dispatcher.idle()
    assert ("slow", "S1") in sent and dispatcher.waiting == 0


async def test_a_backlog_keeps_the_newest_turns_and_records_the_superseded_ones(runner: Runner) -> None:
    gate = asyncio.Event()
    sent: list[str] = []

    async def send(chat: str, replies: Sequence[Reply], progress: Progress) -> None:
        await gate.wait()
        sent.extend(r.text for r in replies)

    dispatcher = Dispatcher("telegram", runner, send, backlog=3)
    await committed(runner, "7", 8, dispatcher.submit)  # eight turns while the platform is stuck
    assert dispatcher.waiting == 3  # one being sent, three waiting; four gave way
    assert dispatcher.superseded == 4
    gate.set()
    await dispatcher.idle()
    await runner.store.flush()
    assert len(await runner.store.outbox_pending("telegram")) == 0  # superseded rows are cleared too
    events = await runner.store.events()  # type: ignore[attr-defined]
    superseded = [e for e in events if e["type"] == "replies-superseded"]
    assert sum(e["detail"]["turns"] for e in superseded) == 4
    assert superseded[0]["user_key"] == runner.key("telegram", "7")


async def test_a_reply_that_cannot_be_sent_is_logged_and_the_chat_goes_on(
    runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[str] = []

    async def send(chat: str, replies: Sequence[Reply], progress: Progress) -> None:
        if replies[0].text == "boom":
            raise RuntimeError("platform answered nonsense")
        sent.extend(r.text for r in replies)

    dispatcher = Dispatcher("telegram", runner, send)
    dispatcher.submit(Delivery([Reply("boom")], 0, "9"))
    dispatcher.submit(Delivery([Reply("after")], 0, "9"))
    await dispatcher.idle()
    assert sent == ["after"]
    assert "a reply could not be delivered" in caplog.text


async def test_recovery_queues_the_outbox_at_once_and_sends_it_in_the_background(runner: Runner) -> None:
    gate = asyncio.Event()
    sent: list[str] = []

    async def send(chat: str, replies: Sequence[Reply], progress: Progress) -> None:
        await gate.wait()
        sent.append(chat)

    for chat in ("1", "2", "3"):
        await runner.handle_for_delivery(Incoming("telegram", chat, kind="start", event_id=f"s{chat}"))
    dispatcher = Dispatcher("telegram", runner, send)
    assert await asyncio.wait_for(dispatcher.recover(), 1) == 3  # returns while nothing could be sent yet
    assert sent == []
    gate.set()
    await dispatcher.idle()
    assert sorted(sent) == ["1", "2", "3"]
    assert await runner.store.outbox_pending("telegram") == []


async def test_a_shutdown_leaves_what_was_not_sent_in_the_outbox_for_the_next_start(runner: Runner) -> None:
    async def stuck(chat: str, replies: Sequence[Reply], progress: Progress) -> None:
        await asyncio.Event().wait()

    dispatcher = Dispatcher("telegram", runner, stuck)
    await committed(runner, "5", 2, dispatcher.submit)
    await dispatcher.drain(seconds=0.1)
    assert len(await runner.store.outbox_pending("telegram")) == 2


async def test_a_turn_taken_over_by_another_worker_stops_being_sent_here(runner: Runner) -> None:
    """When recording a message finds the row no longer this worker's (its claim ran out and another worker
    took it over), this worker stops sending that turn and leaves the row to the other."""
    sent: list[str] = []

    async def send(chat: str, replies: Sequence[Reply], progress: Progress) -> None:
        for index, reply in enumerate(replies):
            await progress.going(index)
            sent.append(reply.text)

    async def not_mine(outbox_id: int, upto: int) -> bool:
        return False

    runner.store.outbox_sending = not_mine  # type: ignore[method-assign]
    dispatcher = Dispatcher("telegram", runner, send)
    await committed(runner, "5", 1, dispatcher.submit)
    await dispatcher.idle()
    assert sent == []
    assert len(await runner.store.outbox_pending("telegram")) == 1, "not marked delivered: the other worker has it"
