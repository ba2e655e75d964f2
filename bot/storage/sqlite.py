"""SQLite backend of the Store (aiosqlite, WAL, versioned schema with migrations)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite

from bot.engine import Event, Session
from bot.errors import BotError
from bot.storage import ContentLoad, DueReminder, Instance, OATokens, OAWindow, Outgoing, Remind, event_row
from bot.storage import analytics as report_sql
from bot.storage import statements as sql
from bot.storage.analytics import ReportScope

logger = logging.getLogger(__name__)

# Each entry moves the schema from version i to i+1. Never edit a shipped entry: append.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE sessions (
        user_key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        content_version TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        user_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        procedure_id TEXT,
        content_version TEXT NOT NULL,
        step_id TEXT,
        type TEXT NOT NULL,
        from_step TEXT,
        to_step TEXT,
        via TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_proc_type_ts ON events (procedure_id, type, ts);
    CREATE INDEX events_user_ts ON events (user_key, ts);
    CREATE TABLE processed_updates (
        channel TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (channel, event_id)
    );
    CREATE INDEX processed_seen ON processed_updates (seen_at);
    """,
    # 2: content reloads that officials see with `status`, and running processes for `reload`.
    """
    CREATE TABLE content_loads (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        trigger TEXT NOT NULL,
        ok INTEGER NOT NULL,
        version TEXT NOT NULL,
        active_version TEXT NOT NULL,
        content_dir TEXT NOT NULL,
        problems TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE instances (
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        mode TEXT NOT NULL,
        started_at REAL NOT NULL,
        content_dir TEXT NOT NULL,
        PRIMARY KEY (host, pid)
    );
    """,
    # 3: Zalo OA: the rotating token pair (single-use refresh token) and each user's reply window.
    """
    CREATE TABLE oa_tokens (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        access_token TEXT NOT NULL,
        refresh_token TEXT NOT NULL,
        expires_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE oa_windows (
        user_key TEXT PRIMARY KEY,
        last_user_at REAL NOT NULL,
        sent_since INTEGER NOT NULL DEFAULT 0,
        missed INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 4: where the stored OA token pair came from (so a re-authorisation in the environment wins).
    """
    ALTER TABLE oa_tokens ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    """,
    # 5: the outbox: a turn's replies are written with the turn and deleted once delivered, so a
    # crash between commit and send resends them at the next start. The chat id is needed to send;
    # it stays only until delivery (and rows older than a day are dropped unsent).
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        chat TEXT NOT NULL,
        replies TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX outbox_channel ON outbox (channel, id);
    """,
    # 6: each process's content version and heartbeat, for `status`.
    """
    ALTER TABLE instances ADD COLUMN content_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE instances ADD COLUMN seen_at REAL NOT NULL DEFAULT 0;
    """,
    # 7: reminders to citizens who stopped in the middle of a procedure: one planned per citizen, moved
    # by each of their turns, dropped when sent or no longer wanted. The sealed chat id is needed to send.
    """
    CREATE TABLE reminders (
        user_key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        chat TEXT NOT NULL,
        run TEXT NOT NULL,
        due REAL NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        lease_until REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX reminders_due ON reminders (channel, due);
    ALTER TABLE oa_windows ADD COLUMN last_msg_id TEXT NOT NULL DEFAULT '';
    """,
    # 8: how many of a turn's messages went out (or were on their way): after a crash, the rest of the
    # turn is sent, never its beginning again.
    """
    ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# Delivery marks wait this long for a turn to ride along with before they get a transaction of their own.
DONE_DELAY: Final = 0.2
# Sessions this process committed are kept in memory for a short while (write-through), so a citizen's
# next message needs no read. Safe because one process is the only writer of its users' sessions in a
# SQLite file (a server database with several workers does not use this cache).
SESSION_CACHE_SIZE: Final = 10_000
SESSION_CACHE_SECONDS: Final = 300.0
WAL_SWITCH_SECONDS: Final = 5.0
_T = TypeVar("_T")


async def _switch_to_wal(conn: aiosqlite.Connection) -> None:
    """WAL mode. Switching a new file needs it to itself, and SQLite does not wait for that (no busy
    handler): processes creating the file together retry for up to WAL_SWITCH_SECONDS."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class _TurnWrite:
    """One turn's rows, serialised before they are queued for the next group commit."""

    user_key: str
    channel: str
    session: tuple[str, str, float] | None  # (state JSON, content version, updated at)
    events: list[tuple[Any, ...]]
    processed: tuple[str, str, float] | None
    outbox: tuple[str, str, str, float] | None
    remind: Remind | None = None


class SqliteStore:
    """Sessions, events and processed updates in one SQLite file."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        # One connection is shared by all users' turns: transactions on it must not overlap.
        self._tx = asyncio.Lock()
        # aiosqlite runs every call on the connection's own thread, one after another. A whole turn
        # (or a whole batch of turns) is handed over as ONE function, so it costs one round trip
        # instead of one per statement. `_execute` is aiosqlite's own queueing primitive (the public
        # methods are built on it); its presence is checked at open and the version is pinned.
        self._run: Callable[..., Awaitable[Any]] = conn._execute
        self._writes: list[tuple[_TurnWrite, asyncio.Future[bool | int]]] = []
        self._done: list[int] = []
        self._progress: dict[int, int] = {}  # outbox row -> messages of its turn sent or on their way
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._sessions: OrderedDict[str, tuple[float, Session]] = OrderedDict()
        self._named: dict[str, asyncio.Lock] = {}
        self.outbox_lease_seconds = 0.0  # one process owns the file: leftovers are recovered at its start

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        path = str(path)
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BotError(f"Không tạo được thư mục cho cơ sở dữ liệu {path}: {exc.strerror}.") from None
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise BotError(f"Không mở được cơ sở dữ liệu {path}: {exc}.") from exc
        if not callable(getattr(conn, "_execute", None)):  # pragma: no cover - guards an aiosqlite upgrade
            await conn.close()
            raise BotError("Phiên bản aiosqlite này không được hỗ trợ; hãy cài lại theo pyproject.toml.")
        store = cls(conn, path)
        try:
            # First: another process opening the file at the same moment (migrating) makes this one wait,
            # not fail with "database is locked".
            await conn.execute("PRAGMA busy_timeout=5000")
            await _switch_to_wal(conn)
            # FULL: a committed turn survives even a power cut, not only kill -9.
            await conn.execute("PRAGMA synchronous=FULL")
            # Deleted rows (a delivered outbox row holds a chat id) are overwritten, not left in free pages.
            await conn.execute("PRAGMA secure_delete=ON")
            await store.migrate()
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise BotError(f"Không mở được cơ sở dữ liệu {path}: {exc}.") from exc
            raise
        return store

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        current = await self.schema_version()
        if current > SCHEMA_VERSION:
            raise BotError(
                f"Cơ sở dữ liệu ở phiên bản {current}, mới hơn chương trình ({SCHEMA_VERSION}). "
                "Hãy cập nhật chương trình."
            )
        for version in range(current, SCHEMA_VERSION):
            await self.conn.execute("BEGIN IMMEDIATE")
            if await self.schema_version() > version:  # another process migrated meanwhile
                await self.conn.execute("COMMIT")
                continue
            try:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        await self.conn.execute(statement)
                await self.conn.execute(f"PRAGMA user_version={version + 1}")
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            logger.info("database migrated to schema version %d", version + 1)

    async def load_session(self, user_key: str) -> Session | None:
        session, _ = await self.begin_turn(user_key, None)
        return session

    async def begin_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[Session | None, bool]:
        """The user's session and whether the update was already handled, in one round trip, or none.

        A session this process committed a moment ago comes from memory; the update is then
        not looked up: were it a repeat, its commit finds the processed id and writes nothing.
        """
        cached = self._sessions.get(user_key)
        if cached is not None and time.monotonic() - cached[0] < SESSION_CACHE_SECONDS:
            self._sessions.move_to_end(user_key)
            return cached[1], False
        state, seen = await self._run(self._read_turn, user_key, processed)
        if seen or state is None:
            return None, seen
        try:
            return Session.from_json(json.loads(state)), False
        except (ValueError, KeyError, TypeError, IndexError):
            logger.warning("unreadable session state replaced by a fresh one")
            return None, False

    def _read_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[str | None, bool]:
        conn = self.conn._conn  # on aiosqlite's thread
        if processed is not None and conn.execute(sql.SELECT_PROCESSED, processed).fetchone():
            return None, True
        row = conn.execute("SELECT state FROM sessions WHERE user_key = ?", (user_key,)).fetchone()
        return (row[0] if row else None), False

    async def end_turn(self, user_key: str) -> None:
        """Nothing to give up: one process writes this file, and its runner already locks each user."""

    async def is_processed(self, channel: str, event_id: str) -> bool:
        async with self.conn.execute(sql.SELECT_PROCESSED, (channel, event_id)) as cur:
            return await cur.fetchone() is not None

    async def commit_turn(
        self,
        user_key: str,
        channel: str,
        session: Session | None,
        events: Sequence[Event],
        processed: tuple[str, str] | None = None,
        outbox: Outgoing | None = None,
        remind: Remind | None = None,
    ) -> bool | int:
        """Save the session, append the events, mark the update processed and queue the replies atomically.

        Turns that arrive while a commit is running are written together in the next one
        (group commit): each keeps its own savepoint, so a duplicate update or a failing row
        undoes only its own turn, and every caller learns its result after the durable COMMIT.
        """
        now = session.last_seen if session is not None and session.last_seen else time.time()
        write = _TurnWrite(
            user_key,
            channel,
            (json.dumps(session.to_json(), ensure_ascii=False), session.content_version, session.last_seen or 0.0)
            if session is not None
            else None,
            [event_row(e) for e in events],
            (processed[0], processed[1], now) if processed is not None else None,
            (outbox.channel, outbox.chat, json.dumps(outbox.replies, ensure_ascii=False), time.time())
            if outbox is not None
            else None,
            remind,
        )
        future: asyncio.Future[bool | int] = asyncio.get_running_loop().create_future()
        self._writes.append((write, future))
        self._kick(wake=True)
        try:
            result = await future
        except BaseException:
            self._sessions.pop(user_key, None)  # whatever is stored now, it is read again next time
            raise
        if session is not None and result is not False:
            self._sessions[user_key] = (time.monotonic(), session)
            self._sessions.move_to_end(user_key)
            if len(self._sessions) > SESSION_CACHE_SIZE:
                self._sessions.popitem(last=False)
        return result

    async def append_events(self, events: Sequence[Event]) -> None:
        """Events that belong to no turn (replies superseded while waiting to be sent)."""
        if events:
            await self.commit_turn(events[0].user_key, events[0].channel, None, events)

    def _kick(self, wake: bool) -> None:
        if wake:
            self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._writes or self._done or self._progress:
            if not self._writes:
                # Only delivery marks: give a turn the chance to carry them in its own transaction.
                self._wake.clear()
                timer = asyncio.get_running_loop().call_later(DONE_DELAY, self._wake.set)
                await self._wake.wait()
                timer.cancel()
            batch, self._writes = self._writes, []
            done, self._done = self._done, []
            progress, self._progress = self._progress, {}
            try:
                async with self._tx:
                    results = await self._run(self._write_batch, [w for w, _ in batch], done, progress)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("store closed"))
                self._done[:0] = done  # not written: they go with the next transaction
                for row, upto in progress.items():
                    self._progress.setdefault(row, upto)  # (a newer count, given meanwhile, wins)
                if not isinstance(exc, Exception):
                    raise
                if not batch:
                    logger.warning("delivered replies could not be marked yet (%s); trying again shortly", exc)
                    await asyncio.sleep(DONE_DELAY)  # the database is busy: do not spin
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _write_batch(
        self, writes: list[_TurnWrite], done: list[int], progress: dict[int, int]
    ) -> list[bool | int | BaseException]:
        """One transaction for a batch of turns (on aiosqlite's thread).

        A batch with no turn only marks replies delivered: losing that on a power cut means a
        reply may be sent twice, never lost, so it skips the fsync (a process crash keeps it,
        since the WAL is already written to the operating system).
        """
        conn = self.conn._conn
        durable = bool(writes)
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        results: list[bool | int | BaseException] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for w in writes:
                    results.append(self._write_one(conn, w))
                gone = set(done)  # (a row delivered in the same batch is deleted: no count to write)
                counts = [(n, row) for row, n in progress.items() if row not in gone]
                if counts:
                    conn.executemany("UPDATE outbox SET sent = ? WHERE id = ?", counts)
                if done:
                    conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in done])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
        return results

    @staticmethod
    def _write_one(conn: sqlite3.Connection, w: _TurnWrite) -> bool | int | BaseException:
        conn.execute("SAVEPOINT turn")
        try:
            if w.processed is not None:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO processed_updates (channel, event_id, seen_at) VALUES (?, ?, ?)", w.processed
                )
                if cur.rowcount == 0:
                    conn.execute("ROLLBACK TO turn")
                    conn.execute("RELEASE turn")
                    return False
            if w.session is not None:
                conn.execute(sql.UPSERT_SESSION, (w.user_key, w.channel, *w.session))
            if w.events:
                conn.executemany(sql.INSERT_EVENT, w.events)
            outbox_id = 0
            if w.outbox is not None:
                cur = conn.execute(
                    "INSERT INTO outbox (channel, chat, replies, created_at) VALUES (?, ?, ?, ?)", w.outbox
                )
                outbox_id = int(cur.lastrowid or 0)
            if w.remind is not None:
                conn.execute(*sql.reminder_write(w.user_key, w.remind))
            conn.execute("RELEASE turn")
        except sqlite3.Error as exc:
            # Only this turn is undone; if SQLite already ended the transaction, the batch fails as a whole.
            conn.execute("ROLLBACK TO turn")
            conn.execute("RELEASE turn")
            return exc
        return outbox_id or True

    async def events(self, user_key: str | None = None) -> list[dict[str, Any]]:
        """Events in insertion order (for tests, previews and reports)."""
        query = "SELECT * FROM events"
        args: tuple[Any, ...] = ()
        if user_key is not None:
            query += " WHERE user_key = ?"
            args = (user_key,)
        conn = self.conn
        conn.row_factory = aiosqlite.Row
        try:
            async with conn.execute(query + " ORDER BY id", args) as cur:
                rows = await cur.fetchall()
        finally:
            conn.row_factory = None
        out = []
        for row in rows:
            d = dict(row)
            d["detail"] = json.loads(d["detail"])
            out.append(d)
        return out

    async def _write(self, sql: str, args: Sequence[Any]) -> None:
        """One statement as its own transaction, never inside another coroutine's turn."""
        async with self._tx:
            await self.conn.execute(sql, tuple(args))

    async def record_content_load(self, load: ContentLoad) -> None:
        await self._write(sql.INSERT_CONTENT_LOAD, sql.content_load_args(load))

    async def content_loads(self, limit: int = 20) -> list[ContentLoad]:
        async with self.conn.execute(sql.SELECT_CONTENT_LOADS, (limit,)) as cur:
            return [sql.content_load_of(r) for r in await cur.fetchall()]

    async def register_instance(self, instance: Instance) -> None:
        await self._write(
            sql.UPSERT_INSTANCE,
            sql.instance_args(instance),
        )

    async def heartbeat(self, host: str, pid: int, content_version: str, at: float) -> None:
        await self._write(sql.HEARTBEAT, (at, content_version, host, pid))

    async def unregister_instance(self, host: str, pid: int) -> None:
        await self._write(sql.DELETE_INSTANCE, (host, pid))

    async def instances(self) -> list[Instance]:
        async with self.conn.execute(sql.SELECT_INSTANCES) as cur:
            return [Instance(*r) for r in await cur.fetchall()]

    async def oa_tokens(self) -> OATokens | None:
        async with self.conn.execute(sql.SELECT_OA_TOKENS) as cur:
            row = await cur.fetchone()
        return OATokens(*row) if row else None

    async def save_oa_tokens(self, tokens: OATokens) -> None:
        """Replace the pair in one transaction (the old refresh token is dead once Zalo answered)."""
        await self._write(
            sql.UPSERT_OA_TOKENS,
            (tokens.access_token, tokens.refresh_token, tokens.expires_at, time.time(), tokens.origin),
        )

    async def oa_window(self, user_key: str) -> OAWindow | None:
        async with self.conn.execute(sql.SELECT_OA_WINDOW, (user_key,)) as cur:
            row = await cur.fetchone()
        return OAWindow(row[0], row[1], bool(row[2]), str(row[3])) if row else None

    async def save_oa_window(self, user_key: str, window: OAWindow) -> None:
        await self._write(
            sql.UPSERT_OA_WINDOW,
            (user_key, window.last_user_at, window.sent_since, int(window.missed), window.last_msg_id),
        )

    async def open_oa_window(self, user_key: str, at: float, msg_id: str = "") -> None:
        """The citizen wrote at ``at``: a new free-reply window (never moved back by an older message)."""
        await self._write(sql.OPEN_OA_WINDOW, (user_key, at, msg_id))

    async def count_oa_reply(self, user_key: str) -> None:
        """One more free reply used in the current window (counted in SQL, never from a stale copy)."""
        await self._write(sql.COUNT_OA_REPLY, (user_key,))

    async def miss_oa_reply(self, user_key: str) -> None:
        """A reply could not be sent in the window: say so at the citizen's next message."""
        await self._write(sql.MISS_OA_REPLY, (user_key,))

    async def outbox_pending(self, channel: str, max_age_seconds: float = 86400.0) -> list[tuple[int, Outgoing]]:
        """Replies committed but not marked delivered (a crash in between), oldest first; stale ones dropped."""
        await self.flush()  # delivery marks still queued in memory are not pending
        await self._write(sql.DELETE_STALE_OUTBOX, (time.time() - max_age_seconds,))
        async with self.conn.execute(sql.SELECT_OUTBOX, (channel,)) as cur:
            rows = await cur.fetchall()
        return [(r[0], Outgoing(r[1], r[2], tuple(json.loads(r[3])), int(r[4]))) for r in rows]

    async def reminders_due(self, channel: str, now: float, limit: int = 100) -> list[DueReminder]:
        """One process owns a SQLite file: due reminders are simply read (each is dropped or moved by the
        turn that handles it)."""
        await self.flush()
        async with self.conn.execute(
            "SELECT user_key, channel, chat, run, due FROM reminders WHERE channel = ? AND due <= ? ORDER BY due LIMIT ?",
            (channel, now, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [DueReminder(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]

    async def start_delivery(self, outbox_id: int) -> tuple[bool, int]:
        """One process sends its replies itself, per chat in commit order (bot.delivery)."""
        return True, 0

    async def renew_outbox_claims(self, ids: Collection[int]) -> None:
        """One process owns a SQLite file: no other worker could take its replies over."""

    async def release_outbox_claims(self, ids: Collection[int]) -> None:
        """One process owns a SQLite file: its replies are resent at its next start."""

    async def outbox_sending(self, outbox_id: int, upto: int) -> bool:
        """How many of a row's turn's messages are out or on their way; written with the delivery marks (a
        crash within that moment sends the message again, as for a delivered row not yet marked). One
        process owns its rows: always True."""
        self._progress[outbox_id] = upto
        self._kick(wake=False)
        return True

    async def outbox_done(self, outbox_id: int) -> None:
        """Mark a row delivered; written with the next turn's commit (or on its own shortly after)."""
        self._done.append(outbox_id)
        self._kick(wake=False)

    async def flush(self) -> None:
        """Wait until every queued turn and delivery mark is written."""
        while self._flusher is not None and not self._flusher.done():
            self._wake.set()
            await asyncio.shield(self._flusher)

    async def versions(self) -> list[tuple[str, int, float, float]]:
        """The content versions seen in the log: (version, events, first, last event time), newest first."""
        async with self.conn.execute(sql.SELECT_VERSIONS) as cur:
            return [(str(v), int(n), float(a), float(b)) for v, n, a, b in await cur.fetchall()]

    async def purge_counts(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        """How many rows ``purge`` with the same arguments would delete (nothing is deleted)."""
        counts: dict[str, int] = {}
        for table, column, cutoff in sql.purge_cutoffs(before, sessions_before):
            cur = await self.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} < ?", (cutoff,))  # noqa: S608
            row = await cur.fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts

    async def purge(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        """Delete events, sessions, processed-update ids and outbox rows older than ``before`` (epoch seconds);
        sessions only when also older than ``sessions_before`` (a citizen still in a conversation keeps it)."""
        counts: dict[str, int] = {}
        self._sessions.clear()
        async with self._tx:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                for table, column, cutoff in sql.purge_cutoffs(before, sessions_before):
                    cur = await self.conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))  # noqa: S608
                    counts[table] = cur.rowcount
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
        return counts

    async def analytics(self, scope: ReportScope) -> dict[str, Any]:
        """The aggregates behind `report` (bot.storage.analytics), on this file."""

        async def run(statement: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
            async with self.conn.execute(statement, tuple(args)) as cur:
                return [tuple(r) for r in await cur.fetchall()]

        return await report_sql.analytics(run, report_sql.SQLITE, scope)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str, wait: bool = True, lost: asyncio.Event | None = None) -> AsyncIterator[bool]:
        """One process owns a SQLite file: ``name`` needs holding only against this process's own tasks
        (so it is never lost while held)."""
        lock = self._named.setdefault(name, asyncio.Lock())
        if not wait and lock.locked():
            yield False
            return
        async with lock:
            yield True

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self.conn.close()
