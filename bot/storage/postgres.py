"""PostgreSQL backend of the Store (psycopg 3 with its async connection pool).

The server database for deployments that outgrow one process: every worker of a
province's bot shares it. Each turn is one transaction; nothing is cached in memory
between turns, because another worker may have written the citizen's session since.
Migrations are versioned like SQLite's and run under an advisory lock, so workers
starting together apply each one once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from typing import Any, Final

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.engine import Event, Session
from bot.errors import BotError, StoreUnavailable
from bot.storage import (
    ContentLoad,
    DueReminder,
    Instance,
    OATokens,
    OAWindow,
    Outgoing,
    Remind,
    event_row,
    shown_db,
)
from bot.storage import analytics as report_sql
from bot.storage import statements as sql
from bot.storage.analytics import ReportScope

logger = logging.getLogger(__name__)

# Each entry moves the schema from version i to i+1. Never edit a shipped entry: append.
# Version 1 is the SQLite schema at its version 5, in PostgreSQL's types.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE sessions (
        user_key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        content_version TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        user_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        procedure_id TEXT,
        content_version TEXT NOT NULL,
        step_id TEXT,
        type TEXT NOT NULL,
        from_step TEXT,
        to_step TEXT,
        via TEXT,
        detail JSONB NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_proc_type_ts ON events (procedure_id, type, ts);
    CREATE INDEX events_user_ts ON events (user_key, ts);
    CREATE TABLE processed_updates (
        channel TEXT NOT NULL,
        event_id TEXT NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (channel, event_id)
    );
    CREATE INDEX processed_seen ON processed_updates (seen_at);
    CREATE TABLE content_loads (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        trigger TEXT NOT NULL,
        ok INTEGER NOT NULL,
        version TEXT NOT NULL,
        active_version TEXT NOT NULL,
        content_dir TEXT NOT NULL,
        problems JSONB NOT NULL DEFAULT '[]'
    );
    CREATE TABLE instances (
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        mode TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        content_dir TEXT NOT NULL,
        PRIMARY KEY (host, pid)
    );
    CREATE TABLE oa_tokens (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        access_token TEXT NOT NULL,
        refresh_token TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        origin TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE oa_windows (
        user_key TEXT PRIMARY KEY,
        last_user_at DOUBLE PRECISION NOT NULL,
        sent_since INTEGER NOT NULL DEFAULT 0,
        missed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        channel TEXT NOT NULL,
        chat TEXT NOT NULL,
        replies TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX outbox_channel ON outbox (channel, id);
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: outbox rows are claimed: the worker that committed a turn delivers it while its lease lasts
    # (renewed while the worker lives); a row whose lease ran out is taken over by another worker.
    """
    ALTER TABLE outbox ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;
    CREATE INDEX outbox_lease ON outbox (channel, lease_until);
    """,
    # 3: each worker's content version and heartbeat, for `status` (workers on other machines).
    """
    ALTER TABLE instances ADD COLUMN content_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE instances ADD COLUMN seen_at DOUBLE PRECISION NOT NULL DEFAULT 0;
    """,
    # 4: one citizen's replies go out in order whichever worker committed them: rows know their citizen
    # (the pseudonymous key) and whether a worker is sending them right now.
    """
    ALTER TABLE outbox ADD COLUMN user_key TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN sending BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX outbox_user ON outbox (user_key, id);
    """,
    # 5: the newest reply delivered to each citizen: an older one found later (its worker died before
    # sending it, and a newer one went out meanwhile) is superseded, never sent out of order.
    """
    CREATE TABLE delivered (
        user_key TEXT PRIMARY KEY,
        upto BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    """,
    # 6: reminders to citizens who stopped in the middle of a procedure: one planned per citizen, moved
    # by each of their turns, dropped when sent or no longer wanted; claimed like the outbox.
    """
    CREATE TABLE reminders (
        user_key TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        chat TEXT NOT NULL,
        run TEXT NOT NULL,
        due DOUBLE PRECISION NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE INDEX reminders_due ON reminders (channel, due);
    ALTER TABLE oa_windows ADD COLUMN last_msg_id TEXT NOT NULL DEFAULT '';
    """,
    # 7: how many of a turn's messages went out (or were on their way): a worker resuming the turn of one
    # that died sends the rest of it, never its beginning again.
    """
    ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
# pg_advisory_xact_lock key held while migrating ("dvcbot" in ASCII, as a number).
MIGRATION_LOCK: Final = 0x647663626F74
NAMED_LOCKS: Final = 0x64766362  # the first int4 key of `exclusive` locks ("dvcb")
# How often a lock held for a long time (the long-polling worker's) is checked to be still held.
LOCK_CHECK_SECONDS: Final = 5.0
POOL_SIZE: Final = 10
# How long a worker's claim on the replies it committed lasts without renewal. A worker renews its claims
# every third of this while it lives; a row whose claim ran out (its worker died between commit and
# delivery) is sent by another worker within about this long.
OUTBOX_LEASE_SECONDS: Final = 60.0
# How often a worker looks whether an older reply to the same citizen, being sent by another worker, is out.
SENDING_POLL_SECONDS: Final = 0.05
# How long a worker about to send lets an older reply to the same citizen, queued by another worker and not
# started yet, go first; and from how many such replies on it does not wait (the newest replaces them).
QUEUED_WAIT_SECONDS: Final = 5.0
QUEUED_WAIT_MOST: Final = 3
CONNECT_TIMEOUT_SECONDS: Final = 10


def _q(statement: str) -> bytes:
    """A shared qmark statement (bot.storage.statements) in psycopg's placeholder style."""
    return statement.replace("?", "%s").encode()


_UPSERT_SESSION: Final = _q(sql.UPSERT_SESSION)
_INSERT_EVENT: Final = _q(sql.INSERT_EVENT)
_OUTBOX_SENT_MINE: Final = "UPDATE outbox SET sent = ? WHERE id = ? AND owner = ? RETURNING id"


# The connection pool logs a line per dropped connection and per failed reconnection: dozens each time the
# server restarts. The first goes through; then at most one line per this many seconds.
POOL_LOG_SECONDS: Final = 30.0


class PoolLogQuieter(logging.Filter):
    """Lets the pool's first line through, then one line per ``seconds`` saying how many were left out."""

    def __init__(self, seconds: float = POOL_LOG_SECONDS, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.seconds, self.clock = seconds, clock
        self.until = float("-inf")
        self.left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if now < self.until:
            self.left_out += 1
            return False
        if self.left_out:
            # (no "%" in the added text: the record's own arguments are formatted later)
            record.msg = f"{record.msg} [and {self.left_out} lines like it left out]"
        self.until, self.left_out = now + self.seconds, 0
        return True


def quiet_pool_logs() -> None:
    """Install the quieter on psycopg's pool logger once, whoever configured logging."""
    log = logging.getLogger("psycopg.pool")
    if not any(isinstance(f, PoolLogQuieter) for f in log.filters):
        log.addFilter(PoolLogQuieter())


def _unreachable(url: str, exc: BaseException) -> BotError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BotError(f"Không kết nối được PostgreSQL tại {shown_db(url)}: {reason}")


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """A turn that finds the server gone (restarting) fails as the expected StoreUnavailable, one line."""
    try:
        yield
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailable(f"PostgreSQL không trả lời: {reason}") from exc


def _session(state: str) -> Session | None:
    try:
        return Session.from_json(json.loads(state))
    except (ValueError, KeyError, TypeError, IndexError):
        logger.warning("unreadable session state replaced by a fresh one")
        return None


class PostgresStore:
    """Sessions, events, processed updates and the outbox in a PostgreSQL database, shared by workers."""

    def __init__(self, pool: AsyncConnectionPool, url: str, lease_seconds: float = OUTBOX_LEASE_SECONDS) -> None:
        self.pool = pool
        self.url = url
        # this process among the workers sharing the database (it owns the outbox rows it committed)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.outbox_lease_seconds = lease_seconds
        self.lock_check_seconds = LOCK_CHECK_SECONDS
        self.path = shown_db(url)
        self._held: dict[str, psycopg.AsyncConnection[Any]] = {}  # user key -> the connection of their turn
        self._checking: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, url: str, pool_size: int = POOL_SIZE, lease_seconds: float = OUTBOX_LEASE_SECONDS
    ) -> PostgresStore:
        """Connect, migrate, and keep a pool; an unreachable server is one clear BotError."""
        try:
            # One direct attempt first: the pool would only time out, without the server's reason.
            probe = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        except (psycopg.Error, OSError) as exc:
            raise _unreachable(url, exc) from None
        await probe.close()
        quiet_pool_logs()
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as exc:
            await pool.close()
            raise _unreachable(url, exc) from None
        store = cls(pool, url, lease_seconds)
        try:
            await store.migrate()
        except psycopg.Error as exc:
            await pool.close()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            # e.g. a database user without the right to create tables (PostgreSQL 15: schema public)
            raise BotError(f"Không chuẩn bị được cơ sở dữ liệu {shown_db(url)}: {reason}") from None
        except BaseException:
            await pool.close()
            raise
        return store

    async def schema_version(self) -> int:
        async with self._conn() as conn:
            return await self._version(conn)

    @staticmethod
    async def _version(conn: psycopg.AsyncConnection[Any]) -> int:
        cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        exists = await cur.fetchone()
        if not exists or not exists[0]:
            return 0
        cur = await conn.execute("SELECT version FROM schema_version")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Apply the migrations this database lacks, each once even when workers start together."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            current = await self._version(conn)
            if current > SCHEMA_VERSION:
                raise BotError(
                    f"Cơ sở dữ liệu ở phiên bản {current}, mới hơn chương trình ({SCHEMA_VERSION}). "
                    "Hãy cập nhật chương trình."
                )
            if current == 0:
                await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                await conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        await conn.execute(statement.encode())
                await conn.execute("UPDATE schema_version SET version = %s", (version + 1,))
                logger.info("database migrated to schema version %d", version + 1)

    # -- turns -----------------------------------------------------------------

    async def load_session(self, user_key: str) -> Session | None:
        """The user's saved session (a plain read: no turn is begun, nothing is held)."""
        rows = await self._rows("SELECT state FROM sessions WHERE user_key = ?", (user_key,))
        return _session(rows[0][0]) if rows else None

    async def begin_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[Session | None, bool]:
        """Begin the user's turn: lock the user, then read their session and whether the update was handled.

        The lock is a transaction-level advisory lock on the user key, held on a connection kept for
        this turn until ``commit_turn`` commits it (or ``end_turn`` gives it up). Any worker beginning a
        turn for the same citizen waits here, so one citizen's messages run one at a time, in the order
        the workers asked, and each reads what the previous one committed.
        """
        with _reachable():
            return await self._begin_turn(user_key, processed)

    async def _begin_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[Session | None, bool]:
        if user_key in self._held:  # (the runner's own per-user lock makes this impossible; be safe anyway)
            await self.end_turn(user_key)
        conn = await self.pool.getconn()
        try:
            await conn.execute("BEGIN")
        except psycopg.OperationalError:
            if not conn.broken:
                await self._give_back(conn, commit=False)
                raise
            # a connection the server dropped (it restarted) before this turn used it: take another
            await self.pool.putconn(conn)
            await self._check_pool()  # the others idle beside it are most likely dropped too
            conn = await self.pool.getconn()
            try:
                await conn.execute("BEGIN")
            except BaseException:
                await self._give_back(conn, commit=False)
                raise
        except BaseException:
            await self._give_back(conn, commit=False)
            raise
        try:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (user_key,))
            cur = await conn.execute(
                "SELECT (SELECT state FROM sessions WHERE user_key = %s), "
                "EXISTS (SELECT 1 FROM processed_updates WHERE channel = %s AND event_id = %s)",
                (user_key, *(processed or ("", ""))),
            )
            row = await cur.fetchone()
        except BaseException as exc:
            self._broken(exc)
            await self._give_back(conn, commit=False)
            raise
        self._held[user_key] = conn
        state, seen = (row[0], bool(row[1]) and processed is not None) if row else (None, False)
        if seen or state is None:
            return None, seen
        return _session(state), False

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; one found broken (the server restarted) has the whole pool checked."""
        async with self.pool.connection() as conn:
            try:
                yield conn
            except BaseException as exc:
                self._broken(exc)
                raise

    def _broken(self, exc: BaseException) -> None:
        """After a server restart every idle connection is dead: check them all at once, in the background,
        rather than finding them one request at a time (the pool's own check backs off between tries)."""
        if isinstance(exc, psycopg.OperationalError) and (self._checking is None or self._checking.done()):
            self._checking = asyncio.ensure_future(self._check_pool())

    async def _check_pool(self) -> None:
        try:
            await self.pool.check()
        except Exception as exc:  # the server still down: the next failure checks again
            logger.warning("database connections could not be checked (%s)", exc)

    async def end_turn(self, user_key: str) -> None:
        """Give up a turn begun and not committed (an update already handled, a failure): unlock the user."""
        conn = self._held.pop(user_key, None)
        if conn is not None:
            await self._give_back(conn, commit=False)

    async def _give_back(self, conn: psycopg.AsyncConnection[Any], commit: bool) -> None:
        """End the connection's transaction and return it to the pool (a broken one is replaced by the pool)."""
        try:
            if not conn.closed:
                await conn.execute("COMMIT" if commit else "ROLLBACK")
        except psycopg.Error as exc:
            self._broken(exc)
            if commit:
                raise
        finally:
            await self.pool.putconn(conn)

    async def is_processed(self, channel: str, event_id: str) -> bool:
        return bool(await self._rows(sql.SELECT_PROCESSED, (channel, event_id)))

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

        In the transaction ``begin_turn`` opened for this user when there is one (then the user is
        unlocked by the commit), else in a transaction of its own. The processed-update row is
        inserted first: a second worker committing the same update waits on its primary key, finds
        it taken, and writes nothing (returns False).
        """
        with _reachable():
            held = self._held.pop(user_key, None)
            if held is None:
                async with self._conn() as conn, conn.transaction():
                    return await self._write_turn(conn, user_key, channel, session, events, processed, outbox, remind)
            try:
                result = await self._write_turn(held, user_key, channel, session, events, processed, outbox, remind)
            except BaseException as exc:
                self._broken(exc)
                await self._give_back(held, commit=False)
                raise
            await self._give_back(held, commit=result is not False)
            return result

    async def _write_turn(
        self,
        conn: psycopg.AsyncConnection[Any],
        user_key: str,
        channel: str,
        session: Session | None,
        events: Sequence[Event],
        processed: tuple[str, str] | None,
        outbox: Outgoing | None,
        remind: Remind | None = None,
    ) -> bool | int:
        now = session.last_seen if session is not None and session.last_seen else time.time()
        if processed is not None:
            cur = await conn.execute(
                "INSERT INTO processed_updates (channel, event_id, seen_at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (processed[0], processed[1], now),
            )
            if cur.rowcount == 0:
                return False
        if session is not None:
            await conn.execute(
                _UPSERT_SESSION,
                (
                    user_key,
                    channel,
                    json.dumps(session.to_json(), ensure_ascii=False),
                    session.content_version,
                    session.last_seen or 0.0,
                ),
            )
        if events:
            async with conn.cursor() as cur:
                await cur.executemany(_INSERT_EVENT, [event_row(e) for e in events])
        if remind is not None:
            statement, values = sql.reminder_write(user_key, remind)
            await conn.execute(_q(statement), values)
        if outbox is not None:
            now = time.time()
            cur = await conn.execute(
                "INSERT INTO outbox (channel, chat, replies, created_at, owner, lease_until, user_key) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    outbox.channel,
                    outbox.chat,
                    json.dumps(outbox.replies, ensure_ascii=False),
                    now,
                    self.worker,
                    now + self.outbox_lease_seconds,
                    user_key,
                ),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else True
        return True

    async def append_events(self, events: Sequence[Event]) -> None:
        """Events that belong to no turn (never inside a turn another task holds for the same user)."""
        if events:
            async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.executemany(_INSERT_EVENT, [event_row(e) for e in events])

    async def events(self, user_key: str | None = None) -> list[dict[str, Any]]:
        """Events in insertion order (for tests, previews and reports)."""
        query = b"SELECT * FROM events" + (b" WHERE user_key = %s" if user_key is not None else b"") + b" ORDER BY id"
        async with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, (user_key,) if user_key is not None else ())
            return list(await cur.fetchall())

    # -- the outbox --------------------------------------------------------------

    async def outbox_pending(self, channel: str, max_age_seconds: float = 86400.0) -> list[tuple[int, Outgoing]]:
        """Replies committed and not delivered whose worker's claim ran out (it died, or this is a restart):
        claimed for this worker, oldest first; stale ones dropped. Rows a live worker holds are left to it,
        and two workers asking at once never get the same row (FOR UPDATE SKIP LOCKED)."""
        now = time.time()
        await self._write(sql.DELETE_STALE_OUTBOX, (now - max_age_seconds,))
        rows = await self._rows(
            "UPDATE outbox SET owner = ?, lease_until = ?, sending = FALSE WHERE id IN ("
            "SELECT id FROM outbox WHERE channel = ? AND lease_until < ? ORDER BY id LIMIT 1000 "
            "FOR UPDATE SKIP LOCKED) RETURNING id, channel, chat, replies, sent",
            (self.worker, now + self.outbox_lease_seconds, channel, now),
        )
        return sorted(
            ((int(r[0]), Outgoing(r[1], r[2], tuple(json.loads(r[3])), int(r[4]))) for r in rows), key=lambda r: r[0]
        )

    async def reminders_due(self, channel: str, now: float, limit: int = 100) -> list[DueReminder]:
        """Due reminders no live worker holds, claimed for this one (FOR UPDATE SKIP LOCKED: two workers
        asking at once never get the same row; a worker that dies lets its rows go when the claim ends)."""
        rows = await self._rows(
            "UPDATE reminders SET owner = ?, lease_until = ? WHERE user_key IN ("
            "SELECT user_key FROM reminders WHERE channel = ? AND due <= ? AND lease_until < ? ORDER BY due LIMIT ? "
            "FOR UPDATE SKIP LOCKED) RETURNING user_key, channel, chat, run, due",
            (self.worker, now + self.outbox_lease_seconds, channel, now, now, limit),
        )
        out = [DueReminder(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]
        return sorted(out, key=lambda r: r.due)

    async def renew_outbox_claims(self, ids: Collection[int]) -> None:
        """This worker lives and still has these replies to send: its claims on them last another lease.
        (Only these: a row this worker committed but never queued, after an error, expires and is swept.)"""
        if ids:
            await self._write(
                "UPDATE outbox SET lease_until = ? WHERE owner = ? AND id = ANY(?)",
                (time.time() + self.outbox_lease_seconds, self.worker, list(ids)),
            )

    async def release_outbox_claims(self, ids: Collection[int]) -> None:
        """Stopping: these rows are no longer being sent, and free for any worker now."""
        if ids:
            await self._write(
                "UPDATE outbox SET lease_until = 0, sending = FALSE WHERE owner = ? AND id = ANY(?)",
                (self.worker, list(ids)),
            )

    async def start_delivery(self, outbox_id: int) -> tuple[bool, int]:
        """Before a worker sends the row ``outbox_id``: (whether to send it, how many older rows of the same
        citizen it supersedes). The row is marked as being sent, unless another worker already sent it (then:
        do not send). It is superseded instead (deleted: a newer reply replaces it, as one process does under
        a backlog) when a newer reply of the citizen already reached them or is being sent. Older rows not
        being sent are superseded; an older row being sent by a live worker is waited for, and one whose
        worker died mid-send (its claim ran out) is superseded: the messages it had on their way count as
        sent, the rest are replaced by this reply. So the citizen's messages arrive in the order of the
        turns, never twice, the newest always among them.

        An older reply another live worker committed and has not started yet (it waits there behind that
        worker's earlier reply to the same chat) is first given up to ``QUEUED_WAIT_SECONDS`` to start, so
        a quick typist gets a reply to each message, as from one process (unless ``QUEUED_WAIT_MOST`` or
        more wait: then the newest replaces them, as one process does under a backlog)."""
        deadline = time.time() + QUEUED_WAIT_SECONDS
        while True:
            queued = await self._rows(
                "SELECT COUNT(o.id) FROM outbox me JOIN outbox o ON o.user_key = me.user_key AND o.id < me.id "
                "WHERE me.id = ? AND me.user_key <> '' AND NOT me.sending "
                "AND NOT o.sending AND o.owner <> ? AND o.lease_until >= ?",
                (outbox_id, self.worker, time.time()),
            )
            waiting = int(queued[0][0]) if queued else 0
            if not waiting or waiting >= QUEUED_WAIT_MOST or time.time() >= deadline:
                break
            await asyncio.sleep(SENDING_POLL_SECONDS)
        late = await self._rows(
            "DELETE FROM outbox o WHERE id = ? AND ("
            "id < (SELECT upto FROM delivered d WHERE d.user_key = o.user_key) OR (NOT sending AND user_key <> '' "
            "AND EXISTS (SELECT 1 FROM outbox n WHERE n.user_key = o.user_key AND n.id > o.id AND n.sending))"
            ") RETURNING id",
            (outbox_id,),
        )
        if late:
            return False, 1  # a newer reply reached the citizen or is on its way: this one would arrive out of order
        rows = await self._rows(
            "WITH mine AS (UPDATE outbox SET sending = TRUE WHERE id = ? AND NOT sending RETURNING user_key), "
            "older AS (DELETE FROM outbox WHERE user_key = (SELECT user_key FROM mine) AND user_key <> '' "
            "AND id < ? AND NOT sending RETURNING id) "
            "SELECT (SELECT user_key FROM mine), (SELECT COUNT(*) FROM older)",
            (outbox_id, outbox_id),
        )
        if not rows or rows[0][0] is None:
            return False, 0
        key, superseded = str(rows[0][0]), int(rows[0][1])
        # However long the other worker takes (Telegram allows about one message a second per chat and
        # thirty in all): its claim is renewed while it lives, and runs out if it died mid-send.
        while key:
            # Only rows being sent: waiting for rows merely queued by other workers can deadlock (queues hold
            # rows taken over from a dead worker behind newer ones), so those are superseded instead.
            now = time.time()
            [(dead, busy)] = await self._rows(
                "WITH dead AS (DELETE FROM outbox WHERE user_key = ? AND id < ? AND sending AND lease_until < ? "
                "RETURNING id) SELECT (SELECT COUNT(*) FROM dead), "
                "EXISTS (SELECT 1 FROM outbox WHERE user_key = ? AND id < ? AND sending AND lease_until >= ?)",
                (key, outbox_id, now, key, outbox_id, now),
            )
            superseded += int(dead)
            if not busy:
                break
            await asyncio.sleep(SENDING_POLL_SECONDS)
        return True, superseded

    async def outbox_sending(self, outbox_id: int, upto: int) -> bool:
        """Committed before the message goes to the platform, only while the row is this worker's (see
        ``Store.outbox_sending``)."""
        return bool(await self._rows(_OUTBOX_SENT_MINE, (upto, outbox_id, self.worker)))

    async def outbox_done(self, outbox_id: int) -> None:
        """Delivered (or given up): the row goes, and the citizen's newest delivered reply moves up to it."""
        await self._write(
            "WITH gone AS (DELETE FROM outbox WHERE id = ? RETURNING user_key, id) "
            "INSERT INTO delivered (user_key, upto, at) SELECT user_key, id, ? FROM gone WHERE user_key <> '' "
            "ON CONFLICT (user_key) DO UPDATE SET upto = GREATEST(delivered.upto, excluded.upto), at = excluded.at",
            (outbox_id, time.time()),
        )

    async def flush(self) -> None:
        """Nothing waits in memory: every write is committed before its call returns."""

    # -- officials' records ------------------------------------------------------

    async def _write(self, statement: str, args: Sequence[Any]) -> None:
        """One qmark statement as its own transaction."""
        await self._rows(statement, args)

    async def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One qmark statement as its own transaction, and its rows. Tried again once on another connection
        when the one given turned out dropped by the server (it restarted): the statement never ran."""
        for attempt in (1, 2):
            async with self._conn() as conn:
                try:
                    cur = await conn.execute(_q(statement), tuple(args))
                    return list(await cur.fetchall()) if cur.description else []
                except psycopg.OperationalError:
                    if attempt == 2 or not conn.broken:
                        raise
            await self._check_pool()  # the others idle beside it are most likely dropped too
        raise AssertionError("unreachable")

    async def record_content_load(self, load: ContentLoad) -> None:
        await self._write(sql.INSERT_CONTENT_LOAD, sql.content_load_args(load))

    async def content_loads(self, limit: int = 20) -> list[ContentLoad]:
        return [sql.content_load_of(r) for r in await self._rows(sql.SELECT_CONTENT_LOADS, (limit,))]

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
        return [Instance(*r) for r in await self._rows(sql.SELECT_INSTANCES)]

    async def shared_secret(self) -> bytes:
        """The secret for pseudonymous user keys, made once and shared by every worker of this database."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO secrets (name, value) VALUES ('hash', %s) ON CONFLICT DO NOTHING",
                (secrets.token_hex(32),),
            )
            cur = await conn.execute("SELECT value FROM secrets WHERE name = 'hash'")
            row = await cur.fetchone()
        assert row is not None  # inserted above when missing
        return str(row[0]).encode()

    # -- Zalo OA -----------------------------------------------------------------

    async def oa_tokens(self) -> OATokens | None:
        rows = await self._rows(sql.SELECT_OA_TOKENS)
        return OATokens(*rows[0]) if rows else None

    async def save_oa_tokens(self, tokens: OATokens) -> None:
        await self._write(
            sql.UPSERT_OA_TOKENS,
            (tokens.access_token, tokens.refresh_token, tokens.expires_at, time.time(), tokens.origin),
        )

    async def oa_window(self, user_key: str) -> OAWindow | None:
        rows = await self._rows(sql.SELECT_OA_WINDOW, (user_key,))
        return OAWindow(rows[0][0], rows[0][1], bool(rows[0][2]), str(rows[0][3])) if rows else None

    async def save_oa_window(self, user_key: str, window: OAWindow) -> None:
        await self._write(
            sql.UPSERT_OA_WINDOW,
            (user_key, window.last_user_at, window.sent_since, int(window.missed), window.last_msg_id),
        )

    async def open_oa_window(self, user_key: str, at: float, msg_id: str = "") -> None:
        await self._write(sql.OPEN_OA_WINDOW, (user_key, at, msg_id))

    async def count_oa_reply(self, user_key: str) -> None:
        await self._write(sql.COUNT_OA_REPLY, (user_key,))

    async def miss_oa_reply(self, user_key: str) -> None:
        await self._write(sql.MISS_OA_REPLY, (user_key,))

    # -- retention ---------------------------------------------------------------

    async def versions(self) -> list[tuple[str, int, float, float]]:
        return [(str(v), int(n), float(a), float(b)) for v, n, a, b in await self._rows(sql.SELECT_VERSIONS)]

    async def purge_counts(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self._conn() as conn:
            for table, column, cutoff in sql.purge_cutoffs(before, sessions_before):
                cur = await conn.execute(
                    pgsql.SQL("SELECT COUNT(*) FROM {} WHERE {} < %s").format(
                        pgsql.Identifier(table), pgsql.Identifier(column)
                    ),
                    (cutoff,),
                )
                row = await cur.fetchone()
                counts[table] = int(row[0]) if row else 0
        return counts

    async def purge(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self._conn() as conn, conn.transaction():
            for table, column, cutoff in sql.purge_cutoffs(before, sessions_before):
                cur = await conn.execute(
                    pgsql.SQL("DELETE FROM {} WHERE {} < %s").format(pgsql.Identifier(table), pgsql.Identifier(column)),
                    (cutoff,),
                )
                counts[table] = cur.rowcount
            await conn.execute("DELETE FROM delivered WHERE at < %s", (before,))
        return counts

    async def analytics(self, scope: ReportScope) -> dict[str, Any]:
        """The aggregates behind `report` (bot.storage.analytics), on one connection (its temporary tables)."""
        async with self._conn() as conn:

            async def run(statement: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
                cur = await conn.execute(_q(statement), tuple(args))
                return list(await cur.fetchall()) if cur.description else []

            return await report_sql.analytics(run, report_sql.POSTGRES, scope)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str, wait: bool = True, lost: asyncio.Event | None = None) -> AsyncIterator[bool]:
        """A session-level advisory lock on ``name`` for the block, on a connection kept for it (the server
        releases it if this process dies). Named locks live in their own key space (two int4 keys), apart
        from the citizens' turn locks (one bigint key). The server also releases it when that connection
        breaks (a restart): with ``lost`` given, the connection is checked every LOCK_CHECK_SECONDS and
        ``lost`` set when it fails, since another worker may hold the lock from then on; and the lock is
        only yielded two checks after it is granted, the time a previous holder takes to notice its loss."""
        async with self._conn() as conn:
            with _reachable():
                if wait:
                    await conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (NAMED_LOCKS, name))
                    held = True
                else:
                    cur = await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (NAMED_LOCKS, name))
                    row = await cur.fetchone()
                    held = bool(row and row[0])
            if not held:
                yield False
                return
            watchdog = asyncio.ensure_future(self._watch_lock(conn, name, lost)) if lost is not None else None
            try:
                if lost is not None:
                    # A holder that lost the lock notices within two checks: give it that long to stop.
                    await asyncio.sleep(2 * self.lock_check_seconds)
                yield True
            finally:
                dropped = False  # the watchdog found the connection gone (not: the holder stopped)
                if watchdog is not None:
                    if watchdog.done():
                        dropped = watchdog.result()
                    else:
                        watchdog.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await watchdog
                if dropped:
                    # Whatever the server still thinks, this connection may hold the lock no longer wanted:
                    # closing it frees the lock for sure (the pool replaces a closed connection).
                    await conn.close()
                elif not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (NAMED_LOCKS, name))

    async def _watch_lock(self, conn: psycopg.AsyncConnection[Any], name: str, lost: asyncio.Event) -> bool:
        """Set ``lost`` (and return True) once the connection holding the lock ``name`` stops answering."""
        while True:
            await asyncio.sleep(self.lock_check_seconds)
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), self.lock_check_seconds)
            except (psycopg.Error, TimeoutError) as exc:
                logger.warning("lost the database lock %r (%s)", name, str(exc).strip() or type(exc).__name__)
                lost.set()
                if isinstance(exc, psycopg.Error):
                    self._broken(exc)
                return True

    async def close(self) -> None:
        for user_key in list(self._held):
            await self.end_turn(user_key)
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
        await self.pool.close()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore"]
