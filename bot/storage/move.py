"""`migrate-db`: move a bot's SQLite file to a PostgreSQL database, whole, verified by counting.

Everything a running bot needs comes along: sessions (citizens keep their place), the event log
(reports keep their history, with the same row ids), processed-update ids (a platform's late retry is
still recognised), undelivered replies, content-load history, the Zalo OA token pair and reply windows,
and the pseudonymisation secret (without it, no citizen's key, sealed chat id or token would match).
The copy is one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bot.errors import BotError
from bot.settings import hash_secret, setting
from bot.storage import shown_db
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import SqliteStore

# (table, columns) in copy order; tables with an identity column keep their ids.
TABLES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("sessions", ("user_key", "channel", "state", "content_version", "updated_at")),
    (
        "events",
        (
            "id",
            "ts",
            "user_key",
            "channel",
            "procedure_id",
            "content_version",
            "step_id",
            "type",
            "from_step",
            "to_step",
            "via",
            "detail",
        ),
    ),
    ("processed_updates", ("channel", "event_id", "seen_at")),
    (
        "content_loads",
        ("id", "ts", "pid", "host", "trigger", "ok", "version", "active_version", "content_dir", "problems"),
    ),
    ("oa_tokens", ("id", "access_token", "refresh_token", "expires_at", "updated_at", "origin")),
    ("oa_windows", ("user_key", "last_user_at", "sent_since", "missed", "last_msg_id")),
    ("outbox", ("id", "channel", "chat", "replies", "created_at", "sent")),
    ("reminders", ("user_key", "channel", "chat", "run", "due")),
)
WITH_IDS: Final = ("events", "content_loads", "outbox")
BATCH: Final = 5000


@dataclass(frozen=True)
class Moved:
    """Rows copied per table (equal on both sides once verified), and whether the secret came along."""

    counts: dict[str, int]
    secret_copied: bool


async def move(source: str, target: str, force: bool, running: Sequence[str] = ()) -> Moved:
    """Copy the SQLite file ``source`` into the PostgreSQL database ``target``.

    Refuses a target that already holds data, unless ``force`` (then its rows are replaced), and
    a source that ``running`` says a bot still writes.
    """
    if running:
        raise BotError(
            f"Bot vẫn đang chạy với {source} ({', '.join(running)}): hãy dừng nó trước khi chuyển dữ liệu, "
            "để không mất tin nào đến trong lúc chép."
        )
    lite = await SqliteStore.open(source)  # brings the file to the current schema, as a start would
    await lite.close()
    secret = None if setting("hash_secret") else hash_secret_of(source)
    server = await PostgresStore.open(target)
    try:
        async with server.pool.connection() as conn, conn.transaction():
            held = []
            for table, _ in (*TABLES, ("secrets", ())):
                cur = await conn.execute(f"SELECT COUNT(*) FROM {table}".encode())  # noqa: S608 - fixed names
                row = await cur.fetchone()
                if row and row[0]:
                    held.append(f"{row[0]} dòng trong {table}")
            if held and not force:
                raise BotError(
                    f"Cơ sở dữ liệu {shown_db(target)} đã có dữ liệu ({', '.join(held[:3])}…): "
                    "không ghi đè. Thêm --force để thay toàn bộ bằng dữ liệu từ tệp SQLite."
                )
            if held:
                names = ", ".join(t for t, _ in (*TABLES, ("secrets", ()), ("delivered", ())))
                await conn.execute(f"TRUNCATE {names}".encode())
            counts: dict[str, int] = {}
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src:
                for table, columns in TABLES:
                    listed = ", ".join(columns)
                    async with conn.cursor().copy(f"COPY {table} ({listed}) FROM STDIN".encode()) as copy:
                        rows = src.execute(f"SELECT {listed} FROM {table} ORDER BY rowid")  # noqa: S608
                        while batch := rows.fetchmany(BATCH):
                            for record in batch:
                                await copy.write_row(record)
                    expected = src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
                    cur = await conn.execute(f"SELECT COUNT(*) FROM {table}".encode())  # noqa: S608
                    got = await cur.fetchone()
                    if not got or got[0] != expected:
                        raise BotError(f"Chép bảng {table} không khớp: {expected} dòng nguồn, {got} dòng đích.")
                    counts[table] = int(expected)
            for table in WITH_IDS:  # new rows continue after the copied ids
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)".encode()
                )
            if secret is not None:
                await conn.execute("INSERT INTO secrets (name, value) VALUES ('hash', %s)", (secret.decode(),))
    finally:
        await server.close()
    return Moved(counts, secret is not None)


def hash_secret_of(source: str) -> bytes:
    """The secret the SQLite bot used (its file next to the database); never a new one made up here."""
    from pathlib import Path

    if not (Path(source).parent / "hash-secret").is_file():
        raise BotError(
            f"Không thấy tệp hash-secret cạnh {source}, và BOT_HASH_SECRET chưa đặt: không có khoá này thì "
            "mã người dùng, mã chat đã niêm phong và token trong dữ liệu không dùng được nữa. "
            "Đặt BOT_HASH_SECRET đúng như bot đã dùng rồi chạy lại."
        )
    return hash_secret(source)
