"""SQLite store: one transaction per turn, dedupe, migrations, and the runner's commit-before-reply."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.content import ContentHolder, load
from bot.engine import Content, Event, Frame, Position, Session
from bot.errors import BotError
from bot.runner import Incoming, Runner
from bot.storage.sqlite import SCHEMA_VERSION, SqliteStore
from tests.conftest import GOOD, NOW, sample_event


async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "bot.db")
    assert await store.schema_version() == SCHEMA_VERSION
    await store.close()
    conn = sqlite3.connect(tmp_path / "bot.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(BotError, match="mới hơn chương trình"):
        await SqliteStore.open(tmp_path / "bot.db")


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BotError, match="Không mở được cơ sở dữ liệu"):
        await SqliteStore.open(path)


async def test_unreadable_session_state_starts_fresh(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "bot.db")
    await store.conn.execute(
        "INSERT INTO sessions (user_key, channel, state, content_version, updated_at) VALUES ('k','t','{bad','v',0)"
    )
    assert await store.load_session("k") is None
    await store.close()


async def _runner(tmp_path: Path, content: Content) -> tuple[Runner, SqliteStore]:
    store = await SqliteStore.open(tmp_path / "bot.db")
    return Runner(ContentHolder(content, GOOD), store, b"secret", clock=lambda: NOW), store


async def test_runner_never_stores_the_raw_chat_id(tmp_path: Path, content: Content) -> None:
    runner, store = await _runner(tmp_path, content)
    await runner.handle(Incoming("telegram", "987654321", text="dk tam tru cho nguoi thue tro"))
    await store.close()
    raw = (tmp_path / "bot.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("bot.db-*"))
    assert b"987654321" not in raw


async def test_runner_dedupes_redelivered_updates(tmp_path: Path, content: Content) -> None:
    runner, store = await _runner(tmp_path, content)
    first = await runner.handle(Incoming("telegram", "42", text="dk tam tru cho nguoi thue tro", event_id="100"))
    again = await runner.handle(Incoming("telegram", "42", text="dk tam tru cho nguoi thue tro", event_id="100"))
    assert first and again is None
    assert [e["type"] for e in await store.events()].count("flow-started") == 1
    await store.close()


async def test_one_user_is_handled_one_message_at_a_time(tmp_path: Path, content: Content) -> None:
    runner, store = await _runner(tmp_path, content)
    await runner.handle(Incoming("t", "42", text="dk tam tru cho nguoi thue tro"))
    # A double tap on "Tiếp tục" and a second message arrive together: they must not interleave.
    await asyncio.gather(
        runner.handle(Incoming("t", "42", kind="choice", choice_id="next")),
        runner.handle(Incoming("t", "42", kind="choice", choice_id="o:tu-nop")),
        runner.handle(Incoming("t", "43", text="khai sinh")),
    )
    session = await store.load_session(runner.key("t", "42"))
    assert session is not None and session.position is not None
    assert session.position.step == "giay-to"
    steps = [e["to_step"] for e in await store.events(runner.key("t", "42")) if e["type"] == "step-entered"]
    assert steps == ["gioi-thieu", "ai-nop", "giay-to"]
    assert runner._locks == {}, "locks of idle users are released"
    await store.close()


async def test_engine_crash_gets_an_apology_and_is_recorded(
    tmp_path: Path, content: Content, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, store = await _runner(tmp_path, content)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("bot.engine.step", boom)
    replies = await runner.handle(Incoming("t", "42", text="xin chao"))
    assert replies and "hệ thống đang gặp trục trặc" in replies[0].text
    assert [e["type"] for e in await store.events()] == ["error"]
    await store.close()


async def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    first, second = await asyncio.gather(SqliteStore.open(path), SqliteStore.open(path))
    try:
        assert await first.schema_version() == await second.schema_version() > 0
    finally:
        await first.close()
        await second.close()


async def test_an_unusable_database_directory_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(BotError, match="Không tạo được thư mục cho cơ sở dữ liệu"):
        await SqliteStore.open(blocker / "sub" / "bot.db")


def test_sealed_chat_ids_read_back_only_with_the_secret() -> None:
    from bot.privacy import seal, unseal

    token = seal(b"secret-a", "123456789")
    assert "123456789" not in token
    assert unseal(b"secret-a", token) == "123456789"
    assert unseal(b"secret-b", token) is None
    assert unseal(b"secret-a", token[:-4] + "AAAA") is None


async def test_the_outbox_never_holds_a_readable_chat_id(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    store = await SqliteStore.open(db)
    runner = Runner(ContentHolder(load(GOOD), GOOD), store, b"s3cret", clock=lambda: NOW)
    delivery = await runner.handle_for_delivery(Incoming("telegram", "987654321", kind="start"))
    assert delivery is not None and delivery.outbox_id
    [pending] = await runner.pending("telegram")
    assert pending.chat == "987654321" and pending.replies == delivery.replies
    await store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("bot.db"))
    assert b"987654321" not in raw


async def test_purge_deletes_old_rows_and_reports_how_many(tmp_path: Path) -> None:
    import time

    from tests.test_cli import run

    db = tmp_path / "bot.db"
    store = await SqliteStore.open(db)
    old = time.time() - 200 * 86400
    new = time.time()
    for i, ts in enumerate([old, old, new]):
        event = Event(ts=ts, user_key=f"u{i}", channel="t", type="help", content_version="v")
        await store.commit_turn(f"u{i}", "t", Session(last_seen=ts), [event], ("t", str(i)))
    await store.close()
    asked = run("purge", "--older-than", "180d", "--db", str(db))  # no terminal to say yes: nothing deleted
    assert asked.returncode == 1 and "Chưa xoá gì" in asked.stderr
    assert asked.stdout.startswith("Sẽ xoá dữ liệu cũ hơn 180d: 2 sự kiện, 2 phiên trò chuyện, 2 mã tin đã xử lý")
    proc = run("purge", "--older-than", "180d", "--db", str(db), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "Đã xoá dữ liệu cũ hơn 180d: 2 sự kiện, 2 phiên trò chuyện, 2 mã tin đã xử lý" in proc.stdout
    store = await SqliteStore.open(db)
    assert [e["user_key"] for e in await store.events()] == ["u2"]
    await store.close()
    bad = run("purge", "--older-than", "nửa năm", "--db", str(db))
    assert bad.returncode == 2 and "--older-than cần dạng như 180d" in bad.stderr


async def test_purge_keeps_the_sessions_of_citizens_still_talking(tmp_path: Path) -> None:
    import time

    from tests.test_cli import run

    db = tmp_path / "bot.db"
    store = await SqliteStore.open(db)
    now = time.time()
    for i, ts in enumerate([now - 3 * 86400, now - 600]):  # one left three days ago, one talking now
        event = Event(ts=ts, user_key=f"u{i}", channel="t", type="help", content_version="v")
        await store.commit_turn(f"u{i}", "t", Session(last_seen=ts), [event], ("t", str(i)))
    assert (await store.purge_counts(now, now - 86400))["sessions"] == 1  # what `purge` shows before asking
    counts = await store.purge(now, sessions_before=now - 86400)  # every event, but not the active session
    assert (counts["events"], counts["sessions"]) == (2, 1)
    assert await store.begin_turn("u1", ("t", "9")) != (None, False)
    await store.close()
    zero = run("purge", "--older-than", "0d", "--db", str(db), "--yes")
    assert zero.returncode == 2 and "lớn hơn 0" in zero.stderr


async def test_turns_committed_together_keep_their_own_results(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "bot.db")
    batches: list[int] = []
    real = store._write_batch

    def counting(writes: list, done: list, progress: dict) -> list:  # type: ignore[type-arg]
        batches.append(len(writes))
        return real(writes, done, progress)

    store._write_batch = counting  # type: ignore[method-assign]
    session = Session(position=Position("p", "s"), last_seen=1.0)
    results = await asyncio.gather(
        *(store.commit_turn(f"u{i}", "test", session, [sample_event()], ("test", f"e{i}")) for i in range(20)),
        store.commit_turn("u0", "test", session, [sample_event()], ("test", "e0")),  # the same update again
    )
    assert results == [True] * 20 + [False]  # the duplicate undid only itself
    assert sum(batches) == 21 and len(batches) < 21  # written in fewer transactions than turns
    assert len(await store.events()) == 20
    await store.close()


async def test_delivery_marks_ride_along_and_are_never_lost_at_close(tmp_path: Path) -> None:
    from bot.storage import Outgoing

    store = await SqliteStore.open(tmp_path / "bot.db")
    session = Session(last_seen=1.0)
    outbox = Outgoing("telegram", "sealed", ({"text": "x"},))
    first = await store.commit_turn("u", "test", session, [], ("test", "1"), outbox)
    assert isinstance(first, int)
    await store.outbox_done(first)  # queued, not yet written
    second = await store.commit_turn("u", "test", session, [], ("test", "2"), outbox)
    assert [i for i, _ in await store.outbox_pending("telegram")] == [second]  # the mark went with turn 2
    await store.outbox_done(int(second))
    await store.close()  # a mark still queued is written before the database closes
    store = await SqliteStore.open(tmp_path / "bot.db")
    assert await store.outbox_pending("telegram") == []
    await store.close()


async def test_a_commit_that_fails_fails_only_its_callers_and_the_store_goes_on(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "bot.db")
    await store.conn.execute(
        "CREATE TRIGGER no_bad BEFORE INSERT ON events WHEN NEW.type = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    session = Session(last_seen=1.0)
    good, bad = await asyncio.gather(
        store.commit_turn("a", "test", session, [sample_event()], ("test", "g")),
        store.commit_turn("b", "test", session, [sample_event("bad")], ("test", "b")),
        return_exceptions=True,
    )
    assert good is True and isinstance(bad, sqlite3.IntegrityError)
    assert await store.is_processed("test", "g") and not await store.is_processed("test", "b")
    assert await store.load_session("b") is None
    assert await store.commit_turn("c", "test", session, [sample_event()], ("test", "c")) is True
    await store.close()


async def test_a_session_is_read_from_memory_only_while_it_is_what_the_database_holds(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "bot.db")
    first = Session(position=Position("p", "s1"), last_seen=1.0)
    assert await store.commit_turn("u", "test", first, [sample_event()], ("test", "1"))
    reads: list[str] = []
    real = store._read_turn

    def counting(user_key: str, processed: object) -> object:
        reads.append(user_key)
        return real(user_key, processed)  # type: ignore[arg-type]

    store._read_turn = counting  # type: ignore[method-assign]
    assert await store.begin_turn("u", ("test", "2")) == (first, False)
    assert reads == []  # the next message of a citizen needs no read
    await store.conn.execute(
        "CREATE TRIGGER no_bad BEFORE INSERT ON events WHEN NEW.type = 'bad' BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    second = Session(position=Position("p", "s2"), last_seen=2.0)
    with pytest.raises(sqlite3.IntegrityError):
        await store.commit_turn("u", "test", second, [sample_event("bad")], ("test", "2"))
    assert await store.begin_turn("u", ("test", "3")) == (first, False)  # what was committed, read again
    assert reads == ["u"]
    assert await store.commit_turn("u", "test", second, [sample_event()], ("test", "1")) is False  # a repeat
    assert await store.begin_turn("u", ("test", "3")) == (first, False)  # the repeat changed nothing
    await store.purge(before=10.0)
    assert await store.begin_turn("u", ("test", "4")) == (None, False)  # purged is gone, from memory too
    await store.close()


async def test_sessions_written_in_the_older_form_are_still_read(tmp_path: Path) -> None:
    import json

    store = await SqliteStore.open(tmp_path / "bot.db")
    old = {
        "position": {"procedure": "p", "step": "s", "stack": [["g", "r"]]},
        "history": [{"procedure": "p", "step": "a", "stack": []}],
        "answers": {"p/q": "x"},
        "ticks": [],
        "prompt": None,
        "content_version": "v",
        "last_seen": 1.0,
        "started_at": None,
    }
    await store.conn.execute(
        "INSERT INTO sessions (user_key, channel, state, content_version, updated_at) VALUES ('u', 't', ?, 'v', 1)",
        (json.dumps(old),),
    )
    session = await store.load_session("u")
    assert session is not None and session.position == Position("p", "s", (Frame("g", "r"),))
    assert session.history == (Position("p", "a"),) and session.answers == {"p/q": "x"}
    assert Session.from_json(session.to_json()) == session
    await store.close()


async def test_delivery_marks_survive_a_commit_that_fails(tmp_path: Path) -> None:
    from bot.storage import Outgoing

    store = await SqliteStore.open(tmp_path / "bot.db")
    row = await store.commit_turn("u1", "test", None, [], ("test", "1"), Outgoing("test", "sealed", ({"text": "x"},)))
    two = Outgoing("test", "sealed", ({"text": "a"}, {"text": "b"}))
    going = await store.commit_turn("u3", "test", None, [], ("test", "3"), two)
    await store.outbox_done(int(row))
    await store.outbox_sending(int(going), 1)
    await store.conn.execute(
        "CREATE TRIGGER no_bad BEFORE INSERT ON processed_updates WHEN NEW.event_id = 'bad' "
        "BEGIN SELECT RAISE(FAIL, 'disk trouble'); END"
    )
    real = store._write_batch

    def failing(writes: list, done: list, progress: dict) -> list:  # type: ignore[type-arg]
        if writes:
            raise sqlite3.OperationalError("database is locked")  # the whole transaction fails
        return real(writes, done, progress)

    store._write_batch = failing  # type: ignore[method-assign]
    with pytest.raises(sqlite3.OperationalError):
        await store.commit_turn("u2", "test", None, [], ("test", "2"))  # would have carried the mark
    store._write_batch = real  # type: ignore[method-assign]
    await store.flush()
    [(left, rest)] = await store.outbox_pending("test")  # the marks were written later, not lost
    assert left == going and rest.sent == 1
    await store.close()
