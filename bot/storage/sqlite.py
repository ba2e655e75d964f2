"""SQLite backend of the Store (aiosqlite, WAL, versioned schema with migrations)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import statistics
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite

from bot.engine import Event, Session
from bot.errors import BotError
from bot.storage import ContentLoad, Instance, OATokens, OAWindow, Outgoing

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
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# Delivery marks wait this long for a turn to ride along with before they get a transaction of their own.
DONE_DELAY: Final = 0.2
# Sessions this process committed are kept in memory for a short while (write-through), so a citizen's
# next message needs no read. Safe because one process is the only writer of its users' sessions in a
# SQLite file (a server database with several workers does not use this cache).
SESSION_CACHE_SIZE: Final = 10_000
# A question answered with choices counts as unresolved when no procedure starts within this long after it.
UNRESOLVED_WITHIN_SECONDS: Final = 3600.0
# What starts and completes a run: a flow started, or a guide jumped into; a flow completed, or a guide
# returned from (recorded under the guide since eff9894).
_STARTS: Final = "type = 'flow-started' OR (type = 'step-entered' AND via = 'jump' AND from_step IS NULL)"
_COMPLETIONS: Final = (
    "type = 'flow-completed' OR (type = 'guide-returned' AND json_extract(detail, '$.guide') = procedure_id)"
)
VIETNAM_OFFSET_SECONDS: Final = 7 * 3600  # reports count days in Vietnam time (UTC+7, no daylight saving)


def _candidate_ids(raw: Any) -> list[str]:
    """The procedure ids of a ``match-ambiguous`` event's stored candidates (ids, or {"id", "score"} objects)."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return []
    return [str(c.get("id")) if isinstance(c, dict) else str(c) for c in items if c][:3]


SESSION_CACHE_SECONDS: Final = 300.0
_T = TypeVar("_T")
_UPSERT_SESSION: Final = (
    "INSERT INTO sessions (user_key, channel, state, content_version, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_key) DO UPDATE SET channel = excluded.channel, state = excluded.state, "
    "content_version = excluded.content_version, updated_at = excluded.updated_at"
)
_INSERT_EVENT: Final = (
    "INSERT INTO events (ts, user_key, channel, procedure_id, content_version, step_id, "
    "type, from_step, to_step, via, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class _TurnWrite:
    """One turn's rows, serialised before they are queued for the next group commit."""

    user_key: str
    channel: str
    session: tuple[str, str, float] | None  # (state JSON, content version, updated at)
    events: list[tuple[Any, ...]]
    processed: tuple[str, str, float] | None
    outbox: tuple[str, str, str, float] | None


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
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._sessions: OrderedDict[str, tuple[float, Session]] = OrderedDict()

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
            await conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed turn survives even a power cut, not only kill -9.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA busy_timeout=5000")
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
        if (
            processed is not None
            and conn.execute("SELECT 1 FROM processed_updates WHERE channel = ? AND event_id = ?", processed).fetchone()
        ):
            return None, True
        row = conn.execute("SELECT state FROM sessions WHERE user_key = ?", (user_key,)).fetchone()
        return (row[0] if row else None), False

    async def is_processed(self, channel: str, event_id: str) -> bool:
        async with self.conn.execute(
            "SELECT 1 FROM processed_updates WHERE channel = ? AND event_id = ?",
            (channel, event_id),
        ) as cur:
            return await cur.fetchone() is not None

    async def commit_turn(
        self,
        user_key: str,
        channel: str,
        session: Session | None,
        events: Sequence[Event],
        processed: tuple[str, str] | None = None,
        outbox: Outgoing | None = None,
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
            [_event_row(e) for e in events],
            (processed[0], processed[1], now) if processed is not None else None,
            (outbox.channel, outbox.chat, json.dumps(outbox.replies, ensure_ascii=False), time.time())
            if outbox is not None
            else None,
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
        while self._writes or self._done:
            if not self._writes:
                # Only delivery marks: give a turn the chance to carry them in its own transaction.
                self._wake.clear()
                timer = asyncio.get_running_loop().call_later(DONE_DELAY, self._wake.set)
                await self._wake.wait()
                timer.cancel()
            batch, self._writes = self._writes, []
            done, self._done = self._done, []
            try:
                async with self._tx:
                    results = await self._run(self._write_batch, [w for w, _ in batch], done)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("store closed"))
                self._done[:0] = done  # not written: they go with the next transaction
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

    def _write_batch(self, writes: list[_TurnWrite], done: list[int]) -> list[bool | int | BaseException]:
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
                conn.execute(_UPSERT_SESSION, (w.user_key, w.channel, *w.session))
            if w.events:
                conn.executemany(_INSERT_EVENT, w.events)
            outbox_id = 0
            if w.outbox is not None:
                cur = conn.execute(
                    "INSERT INTO outbox (channel, chat, replies, created_at) VALUES (?, ?, ?, ?)", w.outbox
                )
                outbox_id = int(cur.lastrowid or 0)
            conn.execute("RELEASE turn")
        except sqlite3.Error as exc:
            # Only this turn is undone; if SQLite already ended the transaction, the batch fails as a whole.
            conn.execute("ROLLBACK TO turn")
            conn.execute("RELEASE turn")
            return exc
        return outbox_id or True

    async def events(self, user_key: str | None = None) -> list[dict[str, Any]]:
        """Events in insertion order (for tests, previews and reports)."""
        sql = "SELECT * FROM events"
        args: tuple[Any, ...] = ()
        if user_key is not None:
            sql += " WHERE user_key = ?"
            args = (user_key,)
        conn = self.conn
        conn.row_factory = aiosqlite.Row
        try:
            async with conn.execute(sql + " ORDER BY id", args) as cur:
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
        await self._write(
            "INSERT INTO content_loads (ts, pid, host, trigger, ok, version, active_version, content_dir, problems) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                load.ts,
                load.pid,
                load.host,
                load.trigger,
                int(load.ok),
                load.version,
                load.active_version,
                load.content_dir,
                json.dumps([dict(p) for p in load.problems], ensure_ascii=False),
            ),
        )

    async def content_loads(self, limit: int = 20) -> list[ContentLoad]:
        async with self.conn.execute(
            "SELECT ts, pid, host, trigger, ok, version, active_version, content_dir, problems "
            "FROM content_loads ORDER BY id DESC LIMIT ?",
            (limit,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            ContentLoad(
                ts=r[0],
                pid=r[1],
                host=r[2],
                trigger=r[3],
                ok=bool(r[4]),
                version=r[5],
                active_version=r[6],
                content_dir=r[7],
                problems=tuple(json.loads(r[8])),
            )
            for r in rows
        ]

    async def register_instance(self, instance: Instance) -> None:
        await self._write(
            "INSERT OR REPLACE INTO instances (host, pid, mode, started_at, content_dir) VALUES (?, ?, ?, ?, ?)",
            (instance.host, instance.pid, instance.mode, instance.started_at, instance.content_dir),
        )

    async def unregister_instance(self, host: str, pid: int) -> None:
        await self._write("DELETE FROM instances WHERE host = ? AND pid = ?", (host, pid))

    async def instances(self) -> list[Instance]:
        async with self.conn.execute(
            "SELECT host, pid, mode, started_at, content_dir FROM instances ORDER BY started_at"
        ) as cur:
            rows = await cur.fetchall()
        return [Instance(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def oa_tokens(self) -> OATokens | None:
        async with self.conn.execute(
            "SELECT access_token, refresh_token, expires_at, origin FROM oa_tokens WHERE id = 1"
        ) as cur:
            row = await cur.fetchone()
        return OATokens(row[0], row[1], row[2], row[3]) if row else None

    async def save_oa_tokens(self, tokens: OATokens) -> None:
        """Replace the pair in one transaction (the old refresh token is dead once Zalo answered)."""
        await self._write(
            "INSERT INTO oa_tokens (id, access_token, refresh_token, expires_at, updated_at, origin) "
            "VALUES (1, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET access_token = excluded.access_token, "
            "refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, "
            "updated_at = excluded.updated_at, origin = excluded.origin",
            (tokens.access_token, tokens.refresh_token, tokens.expires_at, time.time(), tokens.origin),
        )

    async def oa_window(self, user_key: str) -> OAWindow | None:
        async with self.conn.execute(
            "SELECT last_user_at, sent_since, missed FROM oa_windows WHERE user_key = ?", (user_key,)
        ) as cur:
            row = await cur.fetchone()
        return OAWindow(row[0], row[1], bool(row[2])) if row else None

    async def save_oa_window(self, user_key: str, window: OAWindow) -> None:
        await self._write(
            "INSERT INTO oa_windows (user_key, last_user_at, sent_since, missed) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (user_key) DO UPDATE SET last_user_at = excluded.last_user_at, "
            "sent_since = excluded.sent_since, missed = excluded.missed",
            (user_key, window.last_user_at, window.sent_since, int(window.missed)),
        )

    async def open_oa_window(self, user_key: str, at: float) -> None:
        """The citizen wrote at ``at``: a new free-reply window (never moved back by an older message)."""
        await self._write(
            "INSERT INTO oa_windows (user_key, last_user_at, sent_since, missed) VALUES (?, ?, 0, 0) "
            "ON CONFLICT (user_key) DO UPDATE SET last_user_at = excluded.last_user_at, sent_since = 0, missed = 0 "
            "WHERE excluded.last_user_at >= oa_windows.last_user_at",
            (user_key, at),
        )

    async def count_oa_reply(self, user_key: str) -> None:
        """One more free reply used in the current window (counted in SQL, never from a stale copy)."""
        await self._write("UPDATE oa_windows SET sent_since = sent_since + 1 WHERE user_key = ?", (user_key,))

    async def miss_oa_reply(self, user_key: str) -> None:
        """A reply could not be sent in the window: say so at the citizen's next message."""
        await self._write("UPDATE oa_windows SET missed = 1 WHERE user_key = ?", (user_key,))

    async def outbox_pending(self, channel: str, max_age_seconds: float = 86400.0) -> list[tuple[int, Outgoing]]:
        """Replies committed but not marked delivered (a crash in between), oldest first; stale ones dropped."""
        await self.flush()  # delivery marks still queued in memory are not pending
        await self._write("DELETE FROM outbox WHERE created_at < ?", (time.time() - max_age_seconds,))
        async with self.conn.execute(
            "SELECT id, channel, chat, replies FROM outbox WHERE channel = ? ORDER BY id", (channel,)
        ) as cur:
            rows = await cur.fetchall()
        return [(r[0], Outgoing(r[1], r[2], tuple(json.loads(r[3])))) for r in rows]

    async def outbox_done(self, outbox_id: int) -> None:
        """Mark a row delivered; written with the next turn's commit (or on its own shortly after)."""
        self._done.append(outbox_id)
        self._kick(wake=False)

    async def flush(self) -> None:
        """Wait until every queued turn and delivery mark is written."""
        while self._flusher is not None and not self._flusher.done():
            self._wake.set()
            await asyncio.shield(self._flusher)

    @staticmethod
    def _purged(before: float, sessions_before: float | None) -> list[tuple[str, str, float]]:
        sessions = before if sessions_before is None else min(before, sessions_before)
        return [
            ("events", "ts", before),
            ("sessions", "updated_at", sessions),
            ("processed_updates", "seen_at", before),
            ("outbox", "created_at", before),
            ("oa_windows", "last_user_at", before),
        ]

    async def versions(self) -> list[tuple[str, int, float, float]]:
        """The content versions seen in the log: (version, events, first, last event time), newest first."""
        async with self.conn.execute(
            "SELECT content_version, COUNT(*), MIN(ts), MAX(ts) FROM events GROUP BY content_version ORDER BY MAX(ts) DESC"
        ) as cur:
            return [(str(v), int(n), float(a), float(b)) for v, n, a, b in await cur.fetchall()]

    async def purge_counts(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        """How many rows ``purge`` with the same arguments would delete (nothing is deleted)."""
        counts: dict[str, int] = {}
        for table, column, cutoff in self._purged(before, sessions_before):
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
                for table, column, cutoff in self._purged(before, sessions_before):
                    cur = await self.conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))  # noqa: S608
                    counts[table] = cur.rowcount
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
        return counts

    async def analytics(
        self,
        since: float | None = None,
        until: float | None = None,
        procedure: str | None = None,
        channel: str | None = None,
        idle_before: float = 0.0,
        version: str | None = None,
        stages: Mapping[tuple[str, str], int] | None = None,
        apart: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The aggregates behind `report`, computed in SQL over the event log.

        A flow run (a user's events for one procedure) that ended without completion,
        cancellation or leaving, and whose last event is older than ``idle_before``, counts as
        abandoned at the last step it entered. ``stages`` maps (procedure, step) to its stage's
        position: each run's furthest stage is counted, and the time it spent in each stage. The runs of
        ``apart`` (the guides) are left out of the per-day and per-channel totals.
        """
        where = ["1 = 1"]
        args: list[Any] = []
        for clause, value in (
            ("ts >= ?", since),
            ("ts < ?", until),
            ("procedure_id = ?", procedure),
            ("channel = ?", channel),
            ("content_version = ?", version),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        cond = " AND ".join(where)
        # One pass over the log builds every flow run (user x procedure). A run started more than once is
        # split into its attempts (one per start): an attempt that never ended (completed, stopped, left) and
        # went quiet is abandoned at its own last step, on its own last day, so a citizen who gave up and
        # started over is not placed at the step they finished at. (Only those runs: a window over the whole
        # log would cost a second full pass.)
        for table in ("report_runs", "report_attempts", "report_given_up"):
            await self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        await self.conn.execute(
            f"""
            CREATE TEMP TABLE report_runs AS
            SELECT user_key, procedure_id,
                   SUM({_STARTS}) AS started,
                   SUM({_COMPLETIONS}) AS completed,
                   SUM(type = 'flow-cancelled') AS cancelled,
                   SUM(type = 'flow-exited') AS exited,
                   MAX(ts) AS last_ts,
                   MAX(channel) AS channel,
                   MAX(CASE WHEN type = 'step-entered' THEN id END) AS last_step_id
            FROM events WHERE {cond} AND procedure_id IS NOT NULL GROUP BY user_key, procedure_id
            """,  # noqa: S608 - the WHERE clause is built from fixed fragments; values are bound
            args,
        )
        await self.conn.execute(
            f"""
            CREATE TEMP TABLE report_attempts AS
            SELECT user_key, procedure_id,
                   SUM({_STARTS}) AS started,
                   SUM({_COMPLETIONS}) + SUM(type IN ('flow-cancelled', 'flow-exited')) AS ended,
                   MAX(ts) AS last_ts,
                   MAX(CASE WHEN type = 'step-entered' THEN id END) AS last_step_id
            FROM (
                SELECT *, SUM(CASE WHEN {_STARTS} THEN 1 ELSE 0 END)
                          OVER (PARTITION BY user_key, procedure_id ORDER BY id) AS attempt
                FROM events WHERE {cond} AND procedure_id IS NOT NULL
                AND user_key IN (SELECT user_key FROM temp.report_runs WHERE started > 1)
            ) GROUP BY user_key, procedure_id, attempt
            """,  # noqa: S608
            args,
        )
        # the attempts given up: every such attempt of a run started more than once; a run started once
        # (nearly all) is given up when it never ended
        await self.conn.execute(
            """
            CREATE TEMP TABLE report_given_up AS
            SELECT user_key, procedure_id, last_ts, last_step_id FROM temp.report_runs
            WHERE started = 1 AND completed + cancelled + exited = 0 AND last_ts < ?1
            UNION ALL
            SELECT a.user_key, a.procedure_id, a.last_ts, a.last_step_id
            FROM temp.report_attempts a JOIN temp.report_runs r USING (user_key, procedure_id)
            WHERE r.started > 1 AND a.started > 0 AND a.ended = 0 AND a.last_ts < ?1
            """,
            (idle_before,),
        )
        await self.conn.execute("ALTER TABLE temp.report_runs ADD COLUMN abandoned INTEGER DEFAULT 0")
        await self.conn.execute(
            "UPDATE temp.report_runs SET abandoned = (SELECT COUNT(*) FROM temp.report_given_up g "
            "WHERE g.user_key = report_runs.user_key AND g.procedure_id = report_runs.procedure_id) "
            "WHERE (user_key, procedure_id) IN (SELECT user_key, procedure_id FROM temp.report_given_up)"
        )
        flows = {}
        async with self.conn.execute(
            "SELECT procedure_id, SUM(started), SUM(completed), SUM(cancelled), SUM(exited), SUM(abandoned) "
            "FROM temp.report_runs GROUP BY procedure_id",
        ) as cur:
            for pid, started, completed, cancelled, exited, abandoned in await cur.fetchall():
                flows[pid] = {
                    "started": int(started or 0),
                    "completed": int(completed or 0),
                    "cancelled": int(cancelled or 0),
                    "left": int(exited or 0),
                    "abandoned": int(abandoned or 0),
                }
        durations: dict[str, list[float]] = {}
        async with self.conn.execute(
            f"SELECT procedure_id, json_extract(detail, '$.seconds') FROM events WHERE {cond} "  # noqa: S608
            "AND type = 'flow-completed' AND json_extract(detail, '$.seconds') IS NOT NULL",
            args,
        ) as cur:
            for pid, seconds in await cur.fetchall():
                durations.setdefault(pid, []).append(float(seconds))
        sql_steps = f"""
            WITH scoped AS (SELECT * FROM events WHERE {cond} AND procedure_id IS NOT NULL),
            entered AS (
                SELECT user_key, procedure_id, to_step AS step
                FROM scoped WHERE type = 'step-entered' AND to_step IS NOT NULL
            )
            SELECT procedure_id, step, COUNT(DISTINCT user_key), COUNT(*) FROM entered GROUP BY procedure_id, step
        """  # noqa: S608
        steps: dict[tuple[str, str], dict[str, Any]] = {}

        def step_at(pid: str, step: str) -> dict[str, Any]:
            """A step's counts, started empty when only a later query sees it."""
            return steps.setdefault((pid, step), {"reached": 0, "entries": 0, "dropped": 0})

        async with self.conn.execute(sql_steps, args) as cur:
            for pid, step, users, entries in await cur.fetchall():
                steps[(pid, step)] = {"reached": int(users), "entries": int(entries), "dropped": 0}
        async with self.conn.execute(
            f"SELECT procedure_id, from_step, COUNT(DISTINCT user_key) FROM events WHERE {cond} "  # noqa: S608
            "AND type = 'step-entered' AND from_step IS NOT NULL AND COALESCE(via, '') != 'back' "
            "GROUP BY procedure_id, from_step",
            args,
        ) as cur:
            for pid, step, users in await cur.fetchall():
                step_at(pid, step)["moved_on"] = int(users)
        # Time at a step: until the next step, or until the attempt ended there (a stop, a switch, completion),
        # never into a later attempt.
        sql_spent = f"""
            SELECT procedure_id, to_step, user_key, CASE WHEN then_ IS 'flow-started' THEN NULL ELSE until - ts END
            FROM (
                SELECT procedure_id, to_step, user_key, type, ts,
                       LEAD(ts) OVER w AS until, LEAD(type) OVER w AS then_
                FROM events WHERE {cond} AND procedure_id IS NOT NULL
                AND type IN ('step-entered', 'flow-cancelled', 'flow-exited', 'flow-completed', 'flow-started')
                WINDOW w AS (PARTITION BY user_key, procedure_id ORDER BY id)
            ) WHERE type = 'step-entered'
        """  # noqa: S608 (an attempt given up has no end: the time at its last step is unknown, not days)
        spent: dict[tuple[str, str], list[float]] = {}
        stage_of = stages or {}
        furthest: dict[tuple[str, str], int] = {}  # (procedure, user) -> the furthest stage entered
        in_stage: dict[tuple[str, str, int], float] = {}  # (procedure, user, stage) -> seconds spent there
        async with self.conn.execute(sql_spent, args) as cur:
            for pid, step, user, seconds in await cur.fetchall():
                if seconds is not None:
                    spent.setdefault((pid, step), []).append(seconds)
                at = stage_of.get((pid, step))
                if at is None:
                    continue
                run = (pid, user)
                furthest[run] = max(furthest.get(run, at), at)
                if seconds is not None:
                    in_stage[(pid, user, at)] = in_stage.get((pid, user, at), 0.0) + seconds
        for where_, values in spent.items():
            if where_ in steps:
                steps[where_]["median_seconds"] = statistics.median(values)
        stage_runs: dict[tuple[str, int], int] = {}
        for (pid, _), at in furthest.items():
            stage_runs[(pid, at)] = stage_runs.get((pid, at), 0) + 1
        # A citizen lost (never completed; stopped, or went quiet without leaving for something else) is lost
        # at the furthest stage they reached: once, so each stage's losses are the drop to the next.
        stage_lost: dict[tuple[str, int, str], int] = {}
        if furthest:
            async with self.conn.execute(
                "SELECT procedure_id, user_key, cancelled FROM temp.report_runs "
                "WHERE completed = 0 AND (cancelled > 0 OR abandoned > 0)",
            ) as cur:
                for pid, user, cancelled in await cur.fetchall():
                    at = furthest.get((pid, user))
                    if at is not None:
                        key = (pid, at, "cancelled" if cancelled else "dropped")
                        stage_lost[key] = stage_lost.get(key, 0) + 1
        stage_times: dict[tuple[str, int], list[float]] = {}
        for (pid, _, at), seconds in in_stage.items():
            stage_times.setdefault((pid, at), []).append(seconds)
        # Per day (Vietnam time): starts, completions and stops from the log; abandonment on the day of the
        # run's last event.
        trend: dict[int, dict[str, int]] = {}
        day = f"CAST((ts + {VIETNAM_OFFSET_SECONDS}) / 86400 AS INTEGER)"
        # (the same starts and completions as the per-run table, for procedures: a guide used along the way
        # is no extra start or completion)
        apart_ = tuple(apart)
        not_apart = f" AND procedure_id NOT IN ({', '.join('?' * len(apart_))})" if apart_ else ""
        async with self.conn.execute(
            f"SELECT {day} AS d, "  # noqa: S608
            f"SUM({_STARTS}), SUM({_COMPLETIONS}), SUM(type = 'flow-cancelled') FROM events "
            f"WHERE {cond} AND procedure_id IS NOT NULL{not_apart} GROUP BY d",
            [*args, *apart_],
        ) as cur:
            for d, started, completed, cancelled in await cur.fetchall():
                row = {"started": int(started or 0), "completed": int(completed or 0), "cancelled": int(cancelled or 0)}
                if any(row.values()):
                    trend.setdefault(int(d), {}).update(row)
        async with self.conn.execute(
            f"SELECT CAST((last_ts + {VIETNAM_OFFSET_SECONDS}) / 86400 AS INTEGER) AS d, COUNT(*) "  # noqa: S608
            f"FROM temp.report_given_up WHERE 1 = 1{not_apart} GROUP BY d",
            apart_,
        ) as cur:
            for d, count in await cur.fetchall():
                if count:
                    trend.setdefault(int(d), {})["abandoned"] = int(count)
        channels: dict[str, dict[str, int]] = {}
        async with self.conn.execute(
            "SELECT channel, SUM(started), SUM(completed), SUM(cancelled), "  # noqa: S608 - placeholders only
            "SUM(abandoned) "
            f"FROM temp.report_runs WHERE 1 = 1{not_apart} GROUP BY channel",
            apart_,
        ) as cur:
            for channel_, started, completed, cancelled, abandoned in await cur.fetchall():
                channels[str(channel_)] = {
                    "started": int(started or 0),
                    "completed": int(completed or 0),
                    "cancelled": int(cancelled or 0),
                    "abandoned": int(abandoned or 0),
                }
        sql_dropped = """
            SELECT e.procedure_id, e.to_step, COUNT(*)
            FROM temp.report_given_up g JOIN events e ON e.id = g.last_step_id
            GROUP BY e.procedure_id, e.to_step
        """
        async with self.conn.execute(sql_dropped) as cur:
            for pid, step, dropped in await cur.fetchall():
                step_at(pid, step)["dropped"] = int(dropped)
        for table in ("report_runs", "report_attempts", "report_given_up"):
            await self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        async with self.conn.execute(  # a stop is placed at the step where the citizen said it (once per citizen)
            f"SELECT procedure_id, step_id, COUNT(DISTINCT user_key) FROM events WHERE {cond} "  # noqa: S608
            "AND type = 'flow-cancelled' AND step_id IS NOT NULL GROUP BY procedure_id, step_id",
            args,
        ) as cur:
            for pid, step, cancelled in await cur.fetchall():
                step_at(pid, step)["cancelled"] = int(cancelled)
        signals: dict[tuple[str, str], dict[str, int]] = {}
        async with self.conn.execute(
            f"SELECT procedure_id, step_id, type, COUNT(*) FROM events WHERE {cond} "  # noqa: S608
            "AND type IN ('help', 'back', 'repeat', 'not-understood') AND step_id IS NOT NULL "
            "GROUP BY procedure_id, step_id, type",
            args,
        ) as cur:
            for pid, step, kind, count in await cur.fetchall():
                signals.setdefault((pid, step), {})[kind] = int(count)
        reasons: dict[str, dict[str, int]] = {}
        step_reasons: dict[tuple[str, str], dict[str, int]] = {}
        async with self.conn.execute(
            f"SELECT procedure_id, step_id, json_extract(detail, '$.reason'), COUNT(DISTINCT user_key) FROM events WHERE {cond} "  # noqa: S608
            "AND type = 'exit-reason' AND procedure_id IS NOT NULL GROUP BY procedure_id, step_id, 3",
            args,
        ) as cur:
            for pid, step, reason, count in await cur.fetchall():
                by_proc = reasons.setdefault(pid, {})
                by_proc[str(reason)] = by_proc.get(str(reason), 0) + int(count)
                if step is not None:
                    step_reasons.setdefault((pid, step), {})[str(reason)] = int(count)
        unmatched_where = [w for w in where if not w.startswith("procedure_id")]
        unmatched_args = [a for w, a in zip(where[1:], args, strict=True) if not w.startswith("procedure_id")]
        async with self.conn.execute(
            "SELECT json_extract(detail, '$.text') AS t, COUNT(*) AS n FROM events "  # noqa: S608
            f"WHERE {' AND '.join(unmatched_where)} AND type = 'match-none' AND t IS NOT NULL AND t != '' "
            "GROUP BY t ORDER BY n DESC, t LIMIT 50",
            unmatched_args,
        ) as cur:
            unmatched = [(str(t), int(n)) for t, n in await cur.fetchall()]
        # Questions answered with choices that the citizen never took: no procedure started by the same
        # person before they went quiet (the same signal for officials as an unmatched question).
        async with self.conn.execute(
            "SELECT json_extract(a.detail, '$.text') AS t, json_extract(a.detail, '$.candidates') AS c, "  # noqa: S608
            "COUNT(*) AS n FROM events a "
            f"WHERE {' AND '.join('a.' + w if w[0].isalpha() and w != '1 = 1' else w for w in unmatched_where)} "
            "AND a.type = 'match-ambiguous' AND a.ts < ? AND t IS NOT NULL AND t != '' "
            "AND NOT EXISTS (SELECT 1 FROM events b WHERE b.user_key = a.user_key AND b.ts >= a.ts "
            "AND b.type = 'flow-started' AND b.ts <= a.ts + ?) "
            "GROUP BY t ORDER BY n DESC, t LIMIT 50",
            [*unmatched_args, idle_before, UNRESOLVED_WITHIN_SECONDS],
        ) as cur:
            unresolved = [(str(t), _candidate_ids(c), int(n)) for t, c, n in await cur.fetchall()]
        return {
            "flows": flows,
            "durations": durations,
            "steps": steps,
            "signals": signals,
            "exit_reasons": reasons,
            "step_exit_reasons": step_reasons,
            "unmatched": unmatched,
            "unresolved": unresolved,
            "stage_furthest": stage_runs,
            "stage_lost": stage_lost,
            "stage_seconds": {k: statistics.median(v) for k, v in stage_times.items()},
            "trend": trend,
            "channels": channels,
        }

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self.conn.close()


def _event_row(e: Event) -> tuple[Any, ...]:
    return (
        e.ts,
        e.user_key,
        e.channel,
        e.procedure_id,
        e.content_version,
        e.step_id,
        e.type,
        e.from_step,
        e.to_step,
        e.via,
        json.dumps(dict(e.detail), ensure_ascii=False, sort_keys=True),
    )
