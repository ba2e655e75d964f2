"""The Store contract, checked the same way on every backend: SQLite (the embedded default) and PostgreSQL.

Each test gets a new empty database from the ``db_url`` fixture (tests/conftest.py): a SQLite
file, or a throwaway PostgreSQL schema. PostgreSQL cases need BOT_TEST_POSTGRES.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, Final

import pytest

from bot.content import ContentHolder
from bot.engine import Content, Event, Position, Session
from bot.runner import Incoming, Runner
from bot.storage import ContentLoad, Instance, OATokens, OAWindow, Outgoing, is_server
from bot.storage.analytics import ReportScope
from tests.conftest import GOOD, NOW, open_store, sample_event


async def test_a_turn_is_saved_whole_and_read_back_after_reopening(db_url: str) -> None:
    store = await open_store(db_url)
    session = Session(position=Position("p", "s"), answers={"p/q": "a"}, content_version="v", last_seen=5.0)
    assert await store.commit_turn("k", "test", session, [sample_event(), sample_event("back")])
    await store.close()
    store = await open_store(db_url)
    try:
        assert await store.load_session("k") == session
        assert await store.load_session("someone-else") is None
        rows = await store.events()
        assert [r["type"] for r in rows] == ["step-entered", "back"]
        assert rows[0]["detail"] == {"option": "x", "text": "chữ có dấu"}
        assert (rows[0]["from_step"], rows[0]["to_step"], rows[0]["via"]) == ("a", "s", "choice")
        assert [r["type"] for r in await store.events("k")] == ["step-entered", "back"]
        assert await store.events("nobody") == []
    finally:
        await store.close()


async def test_an_update_is_committed_once(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        assert await store.commit_turn("k", "test", Session(last_seen=1.0), [sample_event()], ("test", "7"))
        assert await store.is_processed("test", "7")
        assert not await store.is_processed("test", "8")
        assert not await store.commit_turn("k", "test", Session(last_seen=9.0), [sample_event()], ("test", "7"))
        assert len(await store.events()) == 1, "a duplicate writes nothing"
        assert (await store.load_session("k")) == Session(last_seen=1.0), "nor its session"
    finally:
        await store.close()
    store = await open_store(db_url)  # (a process that just wrote the session may skip the lookup)
    try:
        assert await store.begin_turn("k", ("test", "7")) == (None, True), "a redelivery is seen before the engine"
    finally:
        await store.close()


async def test_a_turn_that_fails_writes_nothing_and_the_store_goes_on(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        bad = Event(ts=1.0, user_key="k", channel="test", type="x", detail={"not json": object()})
        with pytest.raises(TypeError):
            await store.commit_turn("k", "test", Session(last_seen=1.0), [sample_event(), bad], ("test", "1"))
        assert await store.events() == []
        assert not await store.is_processed("test", "1")
        assert await store.load_session("k") is None
        assert await store.commit_turn("k", "test", Session(last_seen=2.0), [sample_event()], ("test", "1"))
        assert len(await store.events()) == 1
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_same_update_committed_by_two_stores_at_once_is_written_once(db_url: str) -> None:
    """(PostgreSQL only: one SQLite file has one process writing it.)

    Two workers given one update (a platform's retry) race to commit it: one wins, one writes nothing."""
    first, second = await open_store(db_url), await open_store(db_url)
    first.outbox_lease_seconds = second.outbox_lease_seconds = 0.0  # (left to whoever asks; see below)
    try:
        out = Outgoing("telegram", "sealed", ({"text": "chào"},))
        results = await asyncio.gather(
            *(
                store.commit_turn(
                    "k", "telegram", Session(last_seen=float(i)), [sample_event()], ("telegram", "55"), out
                )
                for i, store in enumerate([first, second, first, second])
            )
        )
        assert sum(r is not False for r in results) == 1, results
        assert len(await first.events()) == 1
        assert len(await second.outbox_pending("telegram")) == 1, "one reply to send, not two"
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_session_written_by_another_worker_is_what_the_next_turn_reads(db_url: str) -> None:
    first, second = await open_store(db_url), await open_store(db_url)
    try:
        await first.commit_turn("k", "t", Session(position=Position("p", "a"), last_seen=1.0), [])
        assert (await first.load_session("k")) is not None
        await second.commit_turn("k", "t", Session(position=Position("p", "b"), last_seen=2.0), [])
        again = await first.load_session("k")
        assert again is not None and again.position == Position("p", "b")
    finally:
        await first.close()
        await second.close()


async def test_outbox_rows_wait_until_marked_delivered_and_stale_ones_are_dropped(db_url: str) -> None:
    store = await open_store(db_url)
    store.outbox_lease_seconds = 0.0  # no live claim on them: as a restarted process finds them
    try:
        out = Outgoing("telegram", "sealed-42", ({"text": "hi", "choices": [], "links": []},))
        first = await store.commit_turn("k", "telegram", Session(last_seen=1.0), [], ("telegram", "1"), out)
        assert isinstance(first, int) and not isinstance(first, bool) and first > 0
        second = await store.commit_turn("k", "telegram", None, [], ("telegram", "2"), out)
        assert isinstance(second, int) and second > first
        assert [i for i, _ in await store.outbox_pending("telegram")] == [first, second], "oldest first"
        assert (await store.outbox_pending("telegram"))[0][1] == out
        assert await store.outbox_pending("zalo-bot") == []
        await store.outbox_done(first)
        await store.flush()
        assert [i for i, _ in await store.outbox_pending("telegram")] == [second]
        assert await store.outbox_pending("telegram", max_age_seconds=-1) == []  # older than allowed: dropped
    finally:
        await store.close()
    store = await open_store(db_url)
    try:
        assert await store.outbox_pending("telegram") == [], "dropping was durable"
    finally:
        await store.close()


async def test_content_loads_and_instances_are_kept_for_officials(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        problem = {"file": "flows/x.yaml", "line": 3, "message": "thiếu 'next'", "severity": "error"}
        for i, ok in enumerate([True, False]):
            await store.record_content_load(
                ContentLoad(float(i), 10 + i, "host", "watch", ok, f"v{i}", "v0", "/c", () if ok else (problem,))
            )
        newest, oldest = await store.content_loads()
        assert (newest.version, newest.ok, newest.problems) == ("v1", False, (problem,))
        assert (oldest.version, oldest.ok, oldest.trigger, oldest.pid) == ("v0", True, "watch", 10)
        assert len(await store.content_loads(limit=1)) == 1
        await store.register_instance(Instance("h", 1, "serve", 5.0, "/c"))
        await store.register_instance(Instance("h", 2, "run", 6.0, "/c"))
        await store.register_instance(Instance("h", 1, "serve", 7.0, "/c"))  # a restart with the same pid
        assert [(i.pid, i.started_at) for i in await store.instances()] == [(2, 6.0), (1, 7.0)]
        await store.unregister_instance("h", 2)
        assert [i.pid for i in await store.instances()] == [1]
    finally:
        await store.close()


async def test_oa_tokens_are_replaced_whole_and_windows_count_atomically(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        assert await store.oa_tokens() is None
        await store.save_oa_tokens(OATokens("a1", "r1", 100.0, "env-1"))
        await store.save_oa_tokens(OATokens("a2", "r2", 200.0, "env-1"))
        assert await store.oa_tokens() == OATokens("a2", "r2", 200.0, "env-1")
        assert await store.oa_window("u") is None
        await store.open_oa_window("u", 50.0)
        await asyncio.gather(*(store.count_oa_reply("u") for _ in range(5)))
        assert await store.oa_window("u") == OAWindow(50.0, 5, False)
        await store.miss_oa_reply("u")
        assert await store.oa_window("u") == OAWindow(50.0, 5, True)
        await store.open_oa_window("u", 40.0, "m-old")  # an older message arriving late does not reopen the window
        assert await store.oa_window("u") == OAWindow(50.0, 5, True)
        await store.open_oa_window("u", 60.0, "m-60")
        assert await store.oa_window("u") == OAWindow(60.0, 0, False, "m-60")  # replies refer to this message
        await store.save_oa_window("u", OAWindow(70.0, 2, True))
        assert await store.oa_window("u") == OAWindow(70.0, 2, True)
    finally:
        await store.close()


async def test_a_turn_plans_moves_and_drops_its_citizens_reminder(db_url: str) -> None:
    from bot.storage import Remind

    store = await open_store(db_url)
    try:
        await store.commit_turn(
            "u1", "telegram", Session(last_seen=1.0), [], remind=Remind(100.0, "telegram", "c1", "p@1")
        )
        await store.commit_turn(
            "u2", "zalo-oa", Session(last_seen=1.0), [], remind=Remind(100.0, "zalo-oa", "c2", "p@1")
        )
        await store.commit_turn(
            "u3", "telegram", Session(last_seen=1.0), [], remind=Remind(500.0, "telegram", "c3", "q@2")
        )
        assert [r.user_key for r in await store.reminders_due("telegram", 200.0)] == ["u1"]
        # the citizen wrote again: the reminder moves (and a claim on it is let go)
        await store.commit_turn(
            "u1", "telegram", Session(last_seen=2.0), [], remind=Remind(300.0, "telegram", "c1", "p@1")
        )
        assert await store.reminders_due("telegram", 200.0) == []
        due = await store.reminders_due("telegram", 600.0)
        assert [(r.user_key, r.chat, r.run, r.due) for r in due] == [
            ("u1", "c1", "p@1", 300.0),
            ("u3", "c3", "q@2", 500.0),
        ]
        await store.commit_turn("u3", "telegram", None, [], remind=Remind(None))  # finished: dropped
        await store.commit_turn("u1", "telegram", None, [])  # no word on it: kept
        assert store.outbox_lease_seconds == 0 or await store.reminders_due("telegram", 600.0) == [], "claimed above"
        assert [r.user_key for r in await store.reminders_due("zalo-oa", 600.0)] == ["u2"]
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_workers_asking_for_due_reminders_at_once_get_each_once(db_url: str) -> None:
    from bot.storage import Remind

    a, b = await open_store(db_url), await open_store(db_url)
    try:
        for n in range(40):
            plan = Remind(float(n), "telegram", f"c{n}", "p@1")
            await a.commit_turn(f"u{n}", "telegram", Session(last_seen=1.0), [], remind=plan)
        got = await asyncio.gather(a.reminders_due("telegram", 100.0, 25), b.reminders_due("telegram", 100.0, 25))
        keys = [r.user_key for batch in got for r in batch]
        assert sorted(keys) == sorted(f"u{n}" for n in range(40)) and len(keys) == 40
    finally:
        await a.close()
        await b.close()


async def test_purge_counts_then_deletes_old_rows_but_keeps_sessions_still_talking(db_url: str) -> None:
    store = await open_store(db_url)
    now = time.time()
    try:
        for i, ts in enumerate([now - 200 * 86400, now - 3 * 86400, now - 600]):
            event = Event(ts=ts, user_key=f"u{i}", channel="t", type="help", content_version="v")
            await store.commit_turn(f"u{i}", "t", Session(last_seen=ts), [event], ("t", str(i)))
        await store.open_oa_window("u0", now - 200 * 86400)
        planned = await store.purge_counts(now - 86400, now - 86400)
        assert (planned["events"], planned["sessions"], planned["processed_updates"]) == (2, 2, 2)
        assert planned["oa_windows"] == 1
        assert len(await store.events()) == 3, "counting deletes nothing"
        counts = await store.purge(now, sessions_before=now - 86400)
        assert (counts["events"], counts["sessions"]) == (3, 2)
        assert await store.events() == []
        assert await store.load_session("u2") is not None, "a citizen talking now keeps the conversation"
        assert await store.load_session("u1") is None
    finally:
        await store.close()


async def test_versions_list_each_content_version_in_the_log_newest_first(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        for ts, version in [(1.0, "a"), (2.0, "a"), (5.0, "b")]:
            await store.append_events([Event(ts=ts, user_key="u", channel="t", type="help", content_version=version)])
        assert await store.versions() == [("b", 1, 5.0, 5.0), ("a", 2, 1.0, 2.0)]
    finally:
        await store.close()


async def test_several_processes_opening_a_new_database_at_once_all_migrate_it_once(db_url: str) -> None:
    stores = await asyncio.gather(*(open_store(db_url) for _ in range(3)))
    try:
        versions = {await s.schema_version() for s in stores}
        assert len(versions) == 1 and versions.pop() >= 1
        assert await stores[0].commit_turn("k", "t", Session(last_seen=1.0), [sample_event()])
        assert len(await stores[2].events()) == 1
    finally:
        for s in stores:
            await s.close()


async def test_the_runner_on_this_backend_dedupes_and_never_stores_the_raw_chat_id(
    db_url: str, content: Content
) -> None:
    store = await open_store(db_url)
    store.outbox_lease_seconds = 0.0  # no live claim on the reply: as a restarted process finds it
    try:
        runner = Runner(ContentHolder(content, GOOD), store, b"secret", clock=lambda: NOW)
        msg = Incoming("telegram", "987654321", text="dk tam tru cho nguoi thue tro", event_id="100")
        first = await runner.handle_for_delivery(msg)
        again = await runner.handle_for_delivery(msg)
        assert first is not None and first.replies and again is None
        events = await store.events()
        assert [e["type"] for e in events].count("flow-started") == 1
        assert all("987654321" not in repr(e) for e in events)
        [pending] = await runner.pending("telegram")
        assert pending.chat == "987654321" and pending.replies == first.replies, (
            "the outbox gives the chat back, sealed at rest"
        )
        session = await store.load_session(runner.key("telegram", "987654321"))
        assert session is not None and session.position is not None
    finally:
        await store.close()


async def test_the_address_picks_the_backend(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        assert type(store).__name__ == ("PostgresStore" if is_server(db_url) else "SqliteStore")
    finally:
        await store.close()


async def test_a_key_value_connection_string_is_refused_not_taken_for_a_file_name(tmp_path: object) -> None:
    from bot.errors import UsageError

    with pytest.raises(UsageError, match="postgresql://"):
        await open_store("host=db dbname=bot user=bot")


async def test_an_unreachable_server_is_one_clear_line_without_the_password() -> None:
    from bot.errors import BotError

    with pytest.raises(BotError) as caught:
        await open_store("postgresql://bot:hunter2@/dvc?host=/nonexistent-dir&connect_timeout=2")
    message = str(caught.value)
    assert message.startswith("Không kết nối được PostgreSQL tại /nonexistent-dir:5432/dvc: ")
    assert "\n" not in message and "hunter2" not in message


def _report_log() -> list[Event]:
    """The report tests' synthetic log, plus what exercises the rest of the SQL: a guide jumped into and
    returned from, a citizen who started over, questions answered with choices, several days and channels
    (some late in a Vietnam day, where rounding a day number would differ from flooring it)."""
    from tests.test_report import PROC, ev, synthetic

    events = synthetic()
    guide = "tai-khoan-vneid"
    for u in range(200, 207):
        events.append(ev(u, "flow-started", 86400 * 2 + 40000, procedure_id=PROC, step_id="gioi-thieu", via="match"))
        events.append(
            ev(u, "step-entered", 86400 * 2 + 40005, procedure_id=guide, step_id="b", to_step="b", via="jump")
        )
        if u < 204:
            events.append(
                ev(u, "guide-returned", 86400 * 2 + 40009, procedure_id=guide, step_id="xong", detail={"guide": guide})
            )
    for attempt in range(3):  # started three times: gave up twice at different steps, then finished
        t = 86400 * 3 + 1000 * attempt
        events.append(ev(300, "flow-started", t, procedure_id=PROC, step_id="gioi-thieu", via="match"))
        for i, step in enumerate(["gioi-thieu", "ai-nop", "giay-to"][: attempt + 1]):
            events.append(ev(300, "step-entered", t + i + 1, procedure_id=PROC, step_id=step, to_step=step))
    events.append(ev(300, "flow-completed", 86400 * 3 + 2500, procedure_id=PROC, detail={"seconds": 12.5}))
    offered = {"text": "lam the can cuoc", "candidates": [{"id": PROC, "score": 52.0}]}
    events += [ev(400, "match-ambiguous", 0, detail=offered), ev(401, "match-ambiguous", 3, detail=offered)]
    events.append(ev(401, "flow-started", 30, procedure_id=PROC, step_id="gioi-thieu", via="disambiguate"))
    return [e if e.user_key[-1] not in "02468" else Event(**{**e.__dict__, "channel": "zalo-oa"}) for e in events]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_report_numbers_are_the_same_on_postgresql_as_on_sqlite(db_url: str, tmp_path: object) -> None:
    from pathlib import Path

    from tests.test_report import OLD, PROC

    assert isinstance(tmp_path, Path)
    server, embedded = await open_store(db_url), await open_store(str(tmp_path / "report.db"))
    try:
        log = _report_log()
        for store in (server, embedded):
            await store.commit_turn("seed", "telegram", Session(), log)
        stages = {(PROC, "gioi-thieu"): 0, (PROC, "ai-nop"): 0, (PROC, "giay-to"): 1, (PROC, "dang-nhap"): 2}
        late = OLD + 86400 * 10
        scopes = [
            ReportScope(idle_before=late),
            ReportScope(idle_before=OLD + 86400 * 3 + 1500),  # the citizen who started over is mid-attempt
            ReportScope(procedure=PROC, idle_before=late, stages=stages),
            ReportScope(channel="zalo-oa", apart=["tai-khoan-vneid"], idle_before=late),
            ReportScope(since=OLD + 86400, until=OLD + 86400 * 4, version="v", idle_before=late),
        ]
        for scope in scopes:
            assert await server.analytics(scope) == await embedded.analytics(scope), scope
        numbers = await server.analytics(ReportScope(idle_before=OLD + 86400 * 10, stages=stages))
        assert numbers["flows"][PROC]["started"] == 100 + 7 + 3 + 1
        assert numbers["flows"]["tai-khoan-vneid"] == {
            "started": 7,
            "completed": 4,
            "cancelled": 0,
            "left": 0,
            "abandoned": 3,
        }
        assert numbers["unresolved"] == [("lam the can cuoc", [PROC], 1)]
        assert numbers["unmatched"][0] == ("giay phep lai tau", 3)
        assert sorted(numbers["trend"]) == sorted({int((OLD + 25200) // 86400) + d for d in (0, 2, 3)})
    finally:
        await server.close()
        await embedded.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_citizens_turn_on_one_worker_waits_for_their_turn_on_another(db_url: str) -> None:
    """(PostgreSQL only.) Worker B begins a turn for the same citizen while worker A is in one: B waits
    until A commits, then reads what A wrote; a turn given up (an update already handled) unlocks too."""
    first, second = await open_store(db_url), await open_store(db_url)
    try:
        await first.begin_turn("k", ("t", "1"))
        waiting = asyncio.ensure_future(second.begin_turn("k", ("t", "2")))
        other = await second.begin_turn("someone-else", ("t", "3"))  # another citizen is not held up
        assert other == (None, False)
        await second.end_turn("someone-else")
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the same citizen's next turn waits"
        await first.commit_turn("k", "t", Session(position=Position("p", "a"), last_seen=1.0), [], ("t", "1"))
        session, seen = await asyncio.wait_for(waiting, 5)
        assert session is not None and session.position == Position("p", "a") and not seen
        await second.commit_turn("k", "t", Session(position=Position("p", "b"), last_seen=2.0), [], ("t", "2"))
        # a redelivery begun on one worker and given up there does not keep the citizen locked
        assert await first.begin_turn("k", ("t", "2")) == (None, True)
        await first.end_turn("k")
        again, _ = await asyncio.wait_for(second.begin_turn("k", None), 5)
        assert again is not None and again.position == Position("p", "b")
        await second.end_turn("k")
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_workers_taking_one_citizens_messages_at_once_lose_none(db_url: str, content: Content) -> None:
    """Forty citizens each tap two buttons at once, one landing on each worker. Every turn reads the turn
    before it: each citizen's steps form one chain, and ends where one of the two orders leads."""
    stores = [await open_store(db_url), await open_store(db_url)]
    try:
        runners = [Runner(ContentHolder(content, GOOD), s, b"secret", clock=lambda: NOW) for s in stores]
        users = [str(1000 + i) for i in range(40)]
        for u in users:
            await runners[0].handle(Incoming("t", u, text="dk tam tru cho nguoi thue tro"))
        await asyncio.gather(
            *(
                r.handle(Incoming("t", u, kind="choice", choice_id=c))
                for u in users
                for r, c in ((runners[0], "next"), (runners[1], "o:tu-nop"))
            )
        )
        for u in users:
            key = runners[0].key("t", u)
            entered = [e for e in await stores[1].events(key) if e["type"] == "step-entered"]
            chain = [(e["from_step"], e["to_step"]) for e in entered]
            assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), chain
            session = await stores[1].load_session(key)
            assert session is not None and session.position is not None
            assert session.position.step == entered[-1]["to_step"] in ("ai-nop", "giay-to")
    finally:
        for s in stores:
            await s.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_dead_workers_replies_are_sent_by_exactly_one_other_and_a_live_ones_never(db_url: str) -> None:
    """(PostgreSQL only.) Replies are claimed by the worker that committed them; while it renews its claim
    no one else takes them; when it stops renewing (it died), one other worker takes each row, once."""
    alive, dead, b, c = [await open_store(db_url) for _ in range(4)]
    try:
        for store in (alive, dead):
            store.outbox_lease_seconds = 0.4
        out = Outgoing("telegram", "sealed", ({"text": "chào"},))
        kept = await alive.commit_turn("k1", "telegram", None, [], ("telegram", "1"), out)
        lost = await dead.commit_turn("k2", "telegram", None, [], ("telegram", "2"), out)
        forgotten = await alive.commit_turn("k3", "telegram", None, [], ("telegram", "3"), out)
        assert await b.outbox_pending("telegram") == [], "both workers are delivering their own"
        for _ in range(3):
            await asyncio.sleep(0.2)
            await alive.renew_outbox_claims([kept])  # `dead` stopped renewing
        taken = await asyncio.gather(b.outbox_pending("telegram"), c.outbox_pending("telegram"))
        # the dead worker's row, and a live one's row it never renewed (it lost track of it after an
        # error), each to one worker
        assert sorted(i for rows in taken for i, _ in rows) == sorted([lost, forgotten])
        assert kept != lost
        await dead.renew_outbox_claims([lost])  # a worker that was only slow does not take its row back
        assert await c.outbox_pending("telegram") == [] and await b.outbox_pending("telegram") == []
    finally:
        for store in (alive, dead, b, c):
            await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_worker_sends_the_replies_another_committed_and_died_before_sending(
    db_url: str, content: Content
) -> None:
    """(PostgreSQL only.) Worker A commits a citizen's turn and dies before delivering it; worker B,
    running, sends that reply once its claim runs out, exactly once, and keeps its own replies."""
    from bot.delivery import Dispatcher

    a, b = await open_store(db_url), await open_store(db_url)
    a.outbox_lease_seconds = b.outbox_lease_seconds = 0.3
    try:
        runner_a = Runner(ContentHolder(content, GOOD), a, b"secret", clock=lambda: NOW)
        runner_b = Runner(ContentHolder(content, GOOD), b, b"secret", clock=lambda: NOW)
        sent: list[tuple[str, str]] = []

        async def send(chat: str, replies: object, progress: object) -> None:
            assert isinstance(replies, list)
            sent.append((chat, replies[0].text))

        dispatcher = Dispatcher("telegram", runner_b, send)
        assert await dispatcher.recover() == 0  # and B starts watching for replies left by dead workers
        orphan = await runner_a.handle_for_delivery(Incoming("telegram", "555", kind="start", event_id="1"))
        assert orphan is not None  # committed on A, never sent: A is gone
        own = await runner_b.handle_for_delivery(Incoming("telegram", "777", kind="start", event_id="2"))
        assert own is not None
        dispatcher.submit(own)
        for _ in range(30):
            await asyncio.sleep(0.1)
            if len(sent) >= 2:
                break
        await asyncio.sleep(0.5)  # a few more sweeps: nothing is sent twice
        await dispatcher.drain(1)
        assert sorted(chat for chat, _ in sent) == ["555", "777"]
        assert await b.outbox_pending("telegram") == [], "both rows delivered and marked"
    finally:
        await a.close()
        await b.close()


async def test_exclusive_holds_a_name_against_other_holders_until_the_block_ends(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        async with store.exclusive("job") as held:
            assert held
            async with store.exclusive("job", wait=False) as again:
                assert not again, "held elsewhere: not given"
            async with store.exclusive("other-job", wait=False) as other:
                assert other, "another name is free"
        async with store.exclusive("job", wait=False) as after:
            assert after, "free again once the block ended"
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_one_worker_long_polls_and_another_takes_over_when_it_stops(db_url: str) -> None:
    from bot.service import one_at_a_time

    a, b = await open_store(db_url), await open_store(db_url)
    a.lock_check_seconds = b.lock_check_seconds = 0.05  # (a new poller waits two checks before polling)
    stop = asyncio.Event()
    polling: list[str] = []
    try:

        def poller(name: str) -> Any:
            async def poll(halt: asyncio.Event) -> None:
                polling.append(name)
                await halt.wait()

            return poll

        first = asyncio.ensure_future(one_at_a_time(a, "telegram", poller("a"), stop, every=0.1))
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(one_at_a_time(b, "telegram", poller("b"), stop, every=0.1))
        await asyncio.sleep(0.5)
        assert polling == ["a"], "one poller; the other stands by"
        first.cancel()  # worker a dies: its lock goes with it
        await asyncio.sleep(0.5)
        assert polling == ["a", "b"]
        stop.set()
        await asyncio.wait_for(second, 5)
    finally:
        stop.set()
        await a.close()
        await b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_poller_whose_database_lock_is_lost_stops_polling_so_two_never_poll_at_once(db_url: str) -> None:
    """The server drops the long-polling lock with its connection (a restart, a network cut): the worker
    holding it must notice and stop, or it would go on polling beside the worker that takes over."""
    import psycopg

    from bot.service import one_at_a_time
    from bot.storage.postgres import NAMED_LOCKS, PostgresStore

    a, b = await open_store(db_url), await open_store(db_url)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    a.lock_check_seconds = b.lock_check_seconds = 0.1
    stop = asyncio.Event()
    polling: list[str] = []  # who polls, in order
    now_polling: set[str] = set()
    overlaps: list[set[str]] = []
    try:

        def poller(name: str) -> Any:
            async def poll(halt: asyncio.Event) -> None:
                polling.append(name)
                now_polling.add(name)
                if len(now_polling) > 1:
                    overlaps.append(set(now_polling))
                try:
                    await halt.wait()
                finally:
                    now_polling.discard(name)

            return poll

        first = asyncio.ensure_future(one_at_a_time(a, "telegram", poller("a"), stop, every=0.1))
        await asyncio.sleep(0.3)
        second = asyncio.ensure_future(one_at_a_time(b, "telegram", poller("b"), stop, every=0.1))
        await asyncio.sleep(0.3)
        assert polling == ["a"]
        async with await psycopg.AsyncConnection.connect(b.url, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::bigint::oid AND granted",
                (NAMED_LOCKS,),
            )
            (holder,) = [r[0] for r in await cur.fetchall()]
            await admin.execute("SELECT pg_terminate_backend(%s)", (holder,))
        for _ in range(40):
            await asyncio.sleep(0.1)
            if len(polling) > 1 and now_polling:
                break
        assert len(polling) == 2 and now_polling == {polling[1]}, "someone polls again, once"
        assert overlaps == [], "two workers never poll at the same time"
        stop.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)
    finally:
        stop.set()
        await a.close()
        await b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_workers_needing_a_new_oa_token_at_once_spend_the_refresh_token_once(db_url: str) -> None:
    """The Zalo OA refresh token works once: two workers whose access token expired together refresh once."""
    import httpx

    from bot.channels.zalo_oa import ZaloOAClient

    refreshes: list[str] = []

    async def token_server(request: httpx.Request) -> httpx.Response:
        used = dict(httpx.QueryParams(request.content.decode()))["refresh_token"]
        refreshes.append(used)
        await asyncio.sleep(0.2)  # Zalo takes a moment: both workers are in the race
        n = len(refreshes)
        return httpx.Response(200, json={"access_token": f"A{n}", "refresh_token": f"R{n}", "expires_in": "90000"})

    stores = [await open_store(db_url), await open_store(db_url)]
    clients = [
        ZaloOAClient(s, "app", "app-secret", OATokens("A0", "R0", 0.0), transport=httpx.MockTransport(token_server))
        for s in stores
    ]
    try:
        used = await clients[0].tokens()
        fresh = await asyncio.gather(*(c.refresh(used) for c in clients))
        assert refreshes == ["R0"], "one refresh, with the one refresh token"
        assert fresh[0] == fresh[1] and fresh[0].access_token == "A1"
    finally:
        for client in clients:
            await client.close()
        for s in stores:
            await s.close()


async def test_status_lists_workers_on_other_machines_by_their_heartbeat_with_their_content(db_url: str) -> None:
    from bot import status

    store = await open_store(db_url)
    now = time.time()
    try:
        await store.register_instance(Instance("may-2", 41, "serve", now - 600, "/c", "v7", now - 5))
        await store.register_instance(Instance("may-3", 42, "serve", now - 900, "/c", "v6", now - 900))
        report = await status.gather(store)
        assert [(i.host, i.content_version) for i in report.running] == [("may-2", "v7")]
        assert [i.host for i in report.others] == ["may-3"]
        text = status.format_report(report, "db")
        assert "Bot đang chạy: tiến trình 41 trên máy may-2 (serve, phiên bản v7)" in text
        assert "Bot trên máy may-3, tiến trình 42 (serve): không có tín hiệu từ" in text
        await store.heartbeat("may-3", 42, "v8", time.time())  # it was only slow; it reloaded since
        report = await status.gather(store)
        assert sorted((i.host, i.content_version) for i in report.running) == [("may-2", "v7"), ("may-3", "v8")]
        assert report.as_dict()["running"][0]["content_version"] in ("v7", "v8")
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_connections_dropped_by_a_database_restart_are_replaced_without_failing_the_next_work(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """(PostgreSQL only.) A restart drops every connection the pool holds idle; the next turn and the next
    bookkeeping write still succeed, at once, instead of failing or waiting out the pool's back-off; and the
    log gets one line about it from the pool, not one per dropped connection."""
    import logging

    import psycopg

    caplog.set_level(logging.INFO)
    store = await open_store(db_url)
    try:
        await asyncio.gather(*(store.instances() for _ in range(20)))  # several idle connections
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        started = time.monotonic()
        await store.heartbeat("h", 1, "v", 1.0)
        assert await store.begin_turn("k", ("t", "1")) == (None, False)
        assert await store.commit_turn("k", "t", Session(last_seen=1.0), [sample_event()], ("t", "1"))
        assert await store.instances() == []
        assert time.monotonic() - started < 3
        await asyncio.gather(*(store.instances() for _ in range(20)))
        pool_lines = [r for r in caplog.records if r.name.startswith("psycopg")]
        assert len(pool_lines) <= 1, [r.getMessage() for r in pool_lines]
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_one_citizens_replies_from_two_workers_arrive_in_turn_order_each_once(
    db_url: str, content: Content
) -> None:
    """(PostgreSQL only.) Worker A is still sending turn 1's reply (Telegram allows about one message a
    second per chat) when the citizen's turns 2 (on A, queued) and 3 (on B) are committed: B lets A send
    turns 1 and 2 first, as one process would: nothing arrives twice or out of order, nothing is left out,
    and the newest reply is last."""
    from bot.delivery import Dispatcher

    a, b = await open_store(db_url), await open_store(db_url)
    sent: list[tuple[str, str]] = []
    try:
        runners = [Runner(ContentHolder(content, GOOD), s, b"secret", clock=lambda: NOW) for s in (a, b)]

        def sender(worker: str, pause: float) -> Any:
            async def send(chat: str, replies: Any, progress: Any) -> None:
                await asyncio.sleep(pause)
                sent.extend((worker, r.text) for r in replies)

            return send

        slow, fast = Dispatcher("t", runners[0], sender("a", 0.5)), Dispatcher("t", runners[1], sender("b", 0))
        first = await runners[0].handle_for_delivery(Incoming("t", "42", text="dk tam tru cho nguoi thue tro"))
        second = await runners[0].handle_for_delivery(Incoming("t", "42", kind="choice", choice_id="next"))
        third = await runners[1].handle_for_delivery(Incoming("t", "42", kind="choice", choice_id="o:tu-nop"))
        assert first and second and third
        slow.submit(first)
        slow.submit(second)  # queued behind the first on worker a
        await asyncio.sleep(0.1)
        fast.submit(third)
        await asyncio.wait_for(asyncio.gather(slow.idle(), fast.idle()), 10)
        expected = [("a", r.text) for r in first.replies + second.replies] + [("b", r.text) for r in third.replies]
        assert sent == expected, "turns 1, 2 and 3, in order"
        assert fast.superseded == 0
        assert await a.outbox_pending("t") == []
    finally:
        await a.close()
        await b.close()


ONE_REPLY: Final = Outgoing("telegram", "sealed", ({"text": "x"},))


async def turns_on(first: Any, second: Any, n: int = 1) -> tuple[int, int]:
    """Citizen "k"'s turns n and n+1, committed by two workers in that order: their outbox rows."""
    older = await first.commit_turn("k", "telegram", None, [], ("telegram", str(n)), ONE_REPLY)
    newer = await second.commit_turn("k", "telegram", None, [], ("telegram", str(n + 1)), ONE_REPLY)
    return older, newer


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_reply_left_by_a_dead_worker_is_not_sent_after_a_newer_one_reached_the_citizen(db_url: str) -> None:
    """(PostgreSQL only.) Worker A dies while sending turn 1's reply; worker B sends turn 2's once A's
    claim ran out; the worker that later takes turn 1's row over drops it instead of sending it last."""
    a, b, c = [await open_store(db_url) for _ in range(3)]
    try:
        for store in (a, b, c):
            store.outbox_lease_seconds = 0.3
        first, second = await turns_on(a, b)
        assert await a.start_delivery(first) == (True, 0)  # ...and worker a dies mid-send
        assert await asyncio.wait_for(b.start_delivery(second), 5) == (True, 1), "waits for a, then supersedes it"
        await b.outbox_done(second)
        await asyncio.sleep(0.4)
        assert await c.outbox_pending("telegram") == [], "what a had on its way counts as sent; the rest is replaced"
    finally:
        for store in (a, b, c):
            await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_older_reply_taken_over_never_starts_once_a_newer_one_is_on_its_way(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(PostgreSQL only.) Worker A dies sending turn 1; worker B starts turn 2 and waits for A; worker C takes
    turn 1 over when A's claim runs out. C must not send it: B's newer reply is already on its way, and two
    workers sending one citizen's turns at once would mix their messages."""
    from bot.storage import postgres

    monkeypatch.setattr(postgres, "SENDING_POLL_SECONDS", 1.5)  # b looks again only after c took turn 1 over
    a, b, c = [await open_store(db_url) for _ in range(3)]
    try:
        a.outbox_lease_seconds = 0.3  # (b lives: its claim lasts)
        first, second = await turns_on(a, b)
        assert await a.start_delivery(first) == (True, 0)  # ...and worker a dies mid-send
        waiting = asyncio.ensure_future(b.start_delivery(second))
        await asyncio.sleep(0.5)
        [(taken, _)] = await c.outbox_pending("telegram")
        assert taken == first
        assert await c.start_delivery(first) == (False, 1), "a newer reply is on its way: this one is superseded"
        assert await asyncio.wait_for(waiting, 5) == (True, 0)
        assert [i for i, _ in await c.outbox_pending("telegram", max_age_seconds=86400)] == []
    finally:
        for store in (a, b, c):
            await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_older_reply_another_worker_queued_goes_first_within_a_bound(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(PostgreSQL only.) A quick typist's turns 1 and 2 land on workers A and B; A has not started turn 1 yet
    (its chat is busy). B lets it go first instead of replacing it, as one process would; but not forever:
    a reply A never starts is replaced after the bound."""
    from bot.storage import postgres

    monkeypatch.setattr(postgres, "QUEUED_WAIT_SECONDS", 1.0)
    a, b = [await open_store(db_url) for _ in range(2)]
    try:
        first, second = await turns_on(a, b)
        waiting = asyncio.ensure_future(b.start_delivery(second))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "b lets a's reply go first"
        assert await a.start_delivery(first) == (True, 0), "and it is not replaced"
        await asyncio.sleep(0.3)
        assert not waiting.done(), "b waits while a sends it"
        await a.outbox_done(first)
        assert await asyncio.wait_for(waiting, 5) == (True, 0)
        await b.outbox_done(second)

        third, fourth = await turns_on(a, b, 3)
        started = time.monotonic()
        assert await asyncio.wait_for(b.start_delivery(fourth), 5) == (True, 1), "a never started it: replaced"
        assert 0.9 <= time.monotonic() - started < 3
        assert await a.start_delivery(third) == (False, 0), "gone"
        await b.outbox_done(fourth)

        # A reply b took over from a dead worker sits in b's own queue behind b's newer one: never waited for
        # (it would wait on itself), replaced at once.
        a.outbox_lease_seconds = 0.2
        fifth, sixth = await turns_on(a, b, 5)  # ...and a dies
        await asyncio.sleep(0.3)
        assert [i for i, _ in await b.outbox_pending("telegram")] == [fifth]
        started = time.monotonic()
        assert await b.start_delivery(sixth) == (True, 1)
        assert time.monotonic() - started < 0.5
    finally:
        for store in (a, b):
            await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_worker_whose_claim_ran_out_learns_it_at_its_next_message(db_url: str) -> None:
    """(PostgreSQL only.) Worker A, alive but cut off from the database longer than its claim, comes back to
    find its turn taken over by B: recording its next message says so (A stops), and B goes on."""
    a, b = [await open_store(db_url) for _ in range(2)]
    try:
        a.outbox_lease_seconds = 0.2
        out = Outgoing("telegram", "sealed", ({"text": "1"}, {"text": "2"}))
        row = await a.commit_turn("k", "telegram", None, [], ("telegram", "1"), out)
        assert (await a.start_delivery(row))[0] and await a.outbox_sending(row, 1)
        await asyncio.sleep(0.3)
        [(taken, left)] = await b.outbox_pending("telegram")
        assert taken == row and left.sent == 1
        assert not await a.outbox_sending(row, 2), "no longer a's"
        assert await b.outbox_sending(row, 2)
        await b.outbox_sending(row, 1)  # (refused by the platform: counted back)
        await asyncio.sleep(0.01)
        b.outbox_lease_seconds = 0.0
        await b.renew_outbox_claims([row])
        [(_, again)] = await a.outbox_pending("telegram")
        assert again.sent == 1
    finally:
        for store in (a, b):
            await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_worker_stopping_with_replies_unsent_frees_them_for_the_others_at_once(
    db_url: str, content: Content
) -> None:
    """(PostgreSQL only.) A worker told to stop while a reply is still being sent (the platform slow) lets
    the others take it over at once, not after its claim runs out; they resume after what was on its way."""
    from bot.delivery import Dispatcher, Progress

    a, b = await open_store(db_url), await open_store(db_url)
    try:
        runner = Runner(ContentHolder(content, GOOD), a, b"secret", clock=lambda: NOW)
        reached = asyncio.Event()

        async def slow(chat: str, replies: Any, progress: Progress) -> None:
            await progress.going(0)
            reached.set()
            await asyncio.Event().wait()  # the platform never answers

        dispatcher = Dispatcher("t", runner, slow)
        delivery = await runner.handle_for_delivery(Incoming("t", "42", text="dk tam tru cho nguoi thue tro"))
        assert delivery is not None and len(delivery.replies) >= 2
        dispatcher.submit(delivery)
        await asyncio.wait_for(reached.wait(), 5)
        await dispatcher.drain(seconds=0.1)
        [(taken, left)] = await b.outbox_pending("t")
        assert taken == delivery.outbox_id and left.sent == 1
        assert await b.start_delivery(taken) == (True, 0)
    finally:
        await a.close()
        await b.close()


async def test_a_row_counted_and_delivered_together_is_gone_and_another_keeps_its_count(db_url: str) -> None:
    """On SQLite the counts and the delivery marks of several rows go in one transaction."""
    a = await open_store(db_url)
    try:
        a.outbox_lease_seconds = min(a.outbox_lease_seconds, 0.3)
        two = Outgoing("telegram", "sealed", ({"text": "1"}, {"text": "2"}))
        done = await a.commit_turn("k1", "telegram", None, [], ("telegram", "1"), two)
        going = await a.commit_turn("k2", "telegram", None, [], ("telegram", "2"), two)
        for row in (done, going):
            assert (await a.start_delivery(row))[0] and await a.outbox_sending(row, 1)
        assert await a.outbox_sending(done, 2)
        await a.outbox_done(done)
        await a.flush()
    finally:
        await a.close()  # ...and stopped before the second row went out
    await asyncio.sleep(0.4)
    b = await open_store(db_url)
    try:
        [(left, rest)] = await b.outbox_pending("telegram")
        assert left == going and rest.sent == 1
    finally:
        await b.close()


async def test_a_turn_taken_over_resumes_after_the_messages_already_on_their_way(db_url: str) -> None:
    """A worker records each message of a turn just before it goes out; whoever sends the turn again after a
    crash (another worker, or the restarted process) is told how many to skip."""
    a = await open_store(db_url)
    try:
        a.outbox_lease_seconds = min(a.outbox_lease_seconds, 0.3)
        out = Outgoing("telegram", "sealed", ({"text": "1"}, {"text": "2"}, {"text": "3"}))
        row = await a.commit_turn("k", "telegram", None, [], ("telegram", "1"), out)
        assert (await a.start_delivery(row))[0]
        for upto in (1, 2, 3):
            assert await a.outbox_sending(row, upto)
        assert await a.outbox_sending(row, 2)  # the platform refused the third (429): it is not sent
        await a.flush()
    finally:
        await a.close()  # ...as if it died here: the row was never marked delivered
    await asyncio.sleep(0.4)
    b = await open_store(db_url)
    try:
        [(taken, left)] = await b.outbox_pending("telegram")
        assert taken == row and left.sent == 2 and left.replies == out.replies
    finally:
        await b.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_connection_pool_size_comes_from_bot_db_pool(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DB_POOL", "3")
    store = await open_store(db_url)
    try:
        assert store.pool.max_size == 3
        await asyncio.gather(*(store.instances() for _ in range(12)))  # more requests than connections: they wait
        assert store.pool.get_stats()["pool_size"] <= 3
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_database_user_who_may_not_create_tables_gets_one_clear_line(db_url: str) -> None:
    import uuid

    import psycopg

    from bot.errors import BotError

    role = f"weak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN".encode())
    try:
        weak = db_url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        if weak == db_url:
            pytest.skip("BOT_TEST_POSTGRES does not connect as postgres@: cannot name another user in it")
        with pytest.raises(BotError) as caught:
            await open_store(weak)
        assert str(caught.value).startswith("Không chuẩn bị được cơ sở dữ liệu ") and "\n" not in str(caught.value)
    finally:
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}".encode())


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_worker_never_waits_for_its_own_older_row_taken_over_from_a_dead_one(db_url: str) -> None:
    """(PostgreSQL only.) Worker b took over turn 1's row from a dead worker and queued it behind its own
    newer turn 2: sending turn 2 does not wait for turn 1 (that would wait forever); turn 1 is then late."""
    dead, b = await open_store(db_url), await open_store(db_url)
    try:
        dead.outbox_lease_seconds = 0.2
        out = Outgoing("telegram", "sealed", ({"text": "x"},))
        first = await dead.commit_turn("k", "telegram", None, [], ("telegram", "1"), out)
        await asyncio.sleep(0.3)
        [(taken, _)] = await b.outbox_pending("telegram")  # b now owns turn 1's row, with a live claim
        second = await b.commit_turn("k", "telegram", None, [], ("telegram", "2"), out)
        assert await asyncio.wait_for(b.start_delivery(second), 2) == (True, 1), "turn 1's row superseded"
        await b.outbox_done(second)
        assert await b.start_delivery(taken) == (False, 0) and taken == first
    finally:
        await dead.close()
        await b.close()


def test_the_pool_log_quieter_lets_one_line_through_per_interval_and_says_how_many_it_left_out() -> None:
    import logging

    from bot.storage.postgres import PoolLogQuieter

    now = [0.0]
    quieter = PoolLogQuieter(seconds=30, clock=lambda: now[0])

    def line(text: str) -> logging.LogRecord:
        return logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1, text, (), None)

    assert quieter.filter(line("discarding closed connection: %s"))
    assert not any(quieter.filter(line("error connecting")) for _ in range(12))
    now[0] = 31.0
    record = line("error connecting in %r")
    record.args = ("pool-1",)
    assert quieter.filter(record)
    assert record.getMessage() == "error connecting in 'pool-1' [and 12 lines like it left out]"
    assert not quieter.filter(line("again"))
