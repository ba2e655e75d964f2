"""PostgreSQL backend of the Store (psycopg 3 with its async connection pool).

The server database for deployments that outgrow one process: every worker of a
province's bot shares it. Each turn is one transaction; nothing is cached in memory
between turns, because another worker may have written the citizen's session since.
Migrations are versioned like SQLite's and run under an advisory lock, so workers
starting together apply each one once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.engine import Event, Session
from bot.errors import BotError
from bot.storage import ContentLoad, Instance, OATokens, OAWindow, Outgoing, event_row, shown_db
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
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
# pg_advisory_xact_lock key held while migrating ("dvcbot" in ASCII, as a number).
MIGRATION_LOCK: Final = 0x647663626F74
POOL_SIZE: Final = 10
CONNECT_TIMEOUT_SECONDS: Final = 10


def _q(statement: str) -> bytes:
    """A shared qmark statement (bot.storage.statements) in psycopg's placeholder style."""
    return statement.replace("?", "%s").encode()


_UPSERT_SESSION: Final = _q(sql.UPSERT_SESSION)
_INSERT_EVENT: Final = _q(sql.INSERT_EVENT)


def _unreachable(url: str, exc: BaseException) -> BotError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BotError(f"Không kết nối được PostgreSQL tại {shown_db(url)}: {reason}")


class PostgresStore:
    """Sessions, events, processed updates and the outbox in a PostgreSQL database, shared by workers."""

    def __init__(self, pool: AsyncConnectionPool, url: str) -> None:
        self.pool = pool
        self.url = url
        self.path = shown_db(url)

    @classmethod
    async def open(cls, url: str, pool_size: int = POOL_SIZE) -> PostgresStore:
        """Connect, migrate, and keep a pool; an unreachable server is one clear BotError."""
        try:
            # One direct attempt first: the pool would only time out, without the server's reason.
            probe = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        except (psycopg.Error, OSError) as exc:
            raise _unreachable(url, exc) from None
        await probe.close()
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            check=AsyncConnectionPool.check_connection,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as exc:
            await pool.close()
            raise _unreachable(url, exc) from None
        store = cls(pool, url)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def schema_version(self) -> int:
        async with self.pool.connection() as conn:
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
        async with self.pool.connection() as conn, conn.transaction():
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
        session, _ = await self.begin_turn(user_key, None)
        return session

    async def begin_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[Session | None, bool]:
        """The user's session and whether the update was already handled, in one round trip."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT state FROM sessions WHERE user_key = %s), "
                "EXISTS (SELECT 1 FROM processed_updates WHERE channel = %s AND event_id = %s)",
                (user_key, *(processed or ("", ""))),
            )
            row = await cur.fetchone()
        state, seen = (row[0], bool(row[1]) and processed is not None) if row else (None, False)
        if seen or state is None:
            return None, seen
        try:
            return Session.from_json(json.loads(state)), False
        except (ValueError, KeyError, TypeError, IndexError):
            logger.warning("unreadable session state replaced by a fresh one")
            return None, False

    async def is_processed(self, channel: str, event_id: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM processed_updates WHERE channel = %s AND event_id = %s", (channel, event_id)
            )
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

        The processed-update row is inserted first: a second worker committing the same update
        waits on its primary key, finds it taken, and writes nothing (returns False).
        """
        now = session.last_seen if session is not None and session.last_seen else time.time()
        async with self.pool.connection() as conn, conn.transaction():
            if processed is not None:
                cur = await conn.execute(
                    "INSERT INTO processed_updates (channel, event_id, seen_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (processed[0], processed[1], now),
                )
                if cur.rowcount == 0:
                    return False  # leaving the block commits an empty transaction
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
            if outbox is not None:
                cur = await conn.execute(
                    "INSERT INTO outbox (channel, chat, replies, created_at) VALUES (%s, %s, %s, %s) RETURNING id",
                    (outbox.channel, outbox.chat, json.dumps(outbox.replies, ensure_ascii=False), time.time()),
                )
                row = await cur.fetchone()
                return int(row[0]) if row else True
        return True

    async def append_events(self, events: Sequence[Event]) -> None:
        if events:
            await self.commit_turn(events[0].user_key, events[0].channel, None, events)

    async def events(self, user_key: str | None = None) -> list[dict[str, Any]]:
        """Events in insertion order (for tests, previews and reports)."""
        query = b"SELECT * FROM events" + (b" WHERE user_key = %s" if user_key is not None else b"") + b" ORDER BY id"
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, (user_key,) if user_key is not None else ())
            return list(await cur.fetchall())

    # -- the outbox --------------------------------------------------------------

    async def outbox_pending(self, channel: str, max_age_seconds: float = 86400.0) -> list[tuple[int, Outgoing]]:
        """Replies committed but not marked delivered, oldest first; stale ones dropped."""
        await self._write(sql.DELETE_STALE_OUTBOX, (time.time() - max_age_seconds,))
        rows = await self._rows(sql.SELECT_OUTBOX, (channel,))
        return [(int(r[0]), Outgoing(r[1], r[2], tuple(json.loads(r[3])))) for r in rows]

    async def outbox_done(self, outbox_id: int) -> None:
        await self._write("DELETE FROM outbox WHERE id = ?", (outbox_id,))

    async def flush(self) -> None:
        """Nothing waits in memory: every write is committed before its call returns."""

    # -- officials' records ------------------------------------------------------

    async def _write(self, statement: str, args: Sequence[Any]) -> None:
        """One qmark statement as its own transaction."""
        async with self.pool.connection() as conn:
            await conn.execute(_q(statement), tuple(args))

    async def _rows(self, statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_q(statement), tuple(args))
            return list(await cur.fetchall())

    async def record_content_load(self, load: ContentLoad) -> None:
        await self._write(sql.INSERT_CONTENT_LOAD, sql.content_load_args(load))

    async def content_loads(self, limit: int = 20) -> list[ContentLoad]:
        return [sql.content_load_of(r) for r in await self._rows(sql.SELECT_CONTENT_LOADS, (limit,))]

    async def register_instance(self, instance: Instance) -> None:
        await self._write(
            sql.UPSERT_INSTANCE,
            (instance.host, instance.pid, instance.mode, instance.started_at, instance.content_dir),
        )

    async def unregister_instance(self, host: str, pid: int) -> None:
        await self._write(sql.DELETE_INSTANCE, (host, pid))

    async def instances(self) -> list[Instance]:
        return [Instance(*r) for r in await self._rows(sql.SELECT_INSTANCES)]

    async def shared_secret(self) -> bytes:
        """The secret for pseudonymous user keys, made once and shared by every worker of this database."""
        async with self.pool.connection() as conn, conn.transaction():
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
        return OAWindow(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None

    async def save_oa_window(self, user_key: str, window: OAWindow) -> None:
        await self._write(sql.UPSERT_OA_WINDOW, (user_key, window.last_user_at, window.sent_since, int(window.missed)))

    async def open_oa_window(self, user_key: str, at: float) -> None:
        await self._write(sql.OPEN_OA_WINDOW, (user_key, at))

    async def count_oa_reply(self, user_key: str) -> None:
        await self._write(sql.COUNT_OA_REPLY, (user_key,))

    async def miss_oa_reply(self, user_key: str) -> None:
        await self._write(sql.MISS_OA_REPLY, (user_key,))

    # -- retention ---------------------------------------------------------------

    async def versions(self) -> list[tuple[str, int, float, float]]:
        return [(str(v), int(n), float(a), float(b)) for v, n, a, b in await self._rows(sql.SELECT_VERSIONS)]

    async def purge_counts(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self.pool.connection() as conn:
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
        async with self.pool.connection() as conn, conn.transaction():
            for table, column, cutoff in sql.purge_cutoffs(before, sessions_before):
                cur = await conn.execute(
                    pgsql.SQL("DELETE FROM {} WHERE {} < %s").format(pgsql.Identifier(table), pgsql.Identifier(column)),
                    (cutoff,),
                )
                counts[table] = cur.rowcount
        return counts

    async def analytics(self, scope: ReportScope) -> dict[str, Any]:
        """The aggregates behind `report` (bot.storage.analytics), on one connection (its temporary tables)."""
        async with self.pool.connection() as conn:

            async def run(statement: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
                cur = await conn.execute(_q(statement), tuple(args))
                return list(await cur.fetchall()) if cur.description else []

            return await report_sql.analytics(run, report_sql.POSTGRES, scope)

    async def close(self) -> None:
        await self.pool.close()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore"]
