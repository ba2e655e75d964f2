"""SQL that both backends run as written, in qmark style (the PostgreSQL backend turns ``?`` into ``%s``).

Only statements whose meaning and text are the same on SQLite and PostgreSQL live here; each
backend keeps its own schema migrations and the statements its engine needs differently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from bot.storage import ContentLoad, Instance, Remind

UPSERT_SESSION: Final = (
    "INSERT INTO sessions (user_key, channel, state, content_version, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_key) DO UPDATE SET channel = excluded.channel, state = excluded.state, "
    "content_version = excluded.content_version, updated_at = excluded.updated_at"
)
INSERT_EVENT: Final = (
    "INSERT INTO events (ts, user_key, channel, procedure_id, content_version, step_id, "
    "type, from_step, to_step, via, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_PROCESSED: Final = "SELECT 1 FROM processed_updates WHERE channel = ? AND event_id = ?"
INSERT_CONTENT_LOAD: Final = (
    "INSERT INTO content_loads (ts, pid, host, trigger, ok, version, active_version, content_dir, problems) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_CONTENT_LOADS: Final = (
    "SELECT ts, pid, host, trigger, ok, version, active_version, content_dir, problems "
    "FROM content_loads ORDER BY id DESC LIMIT ?"
)
UPSERT_INSTANCE: Final = (
    "INSERT INTO instances (host, pid, mode, started_at, content_dir, content_version, seen_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (host, pid) DO UPDATE SET mode = excluded.mode, started_at = excluded.started_at, "
    "content_dir = excluded.content_dir, content_version = excluded.content_version, seen_at = excluded.seen_at"
)
HEARTBEAT: Final = "UPDATE instances SET seen_at = ?, content_version = ? WHERE host = ? AND pid = ?"
DELETE_INSTANCE: Final = "DELETE FROM instances WHERE host = ? AND pid = ?"
SELECT_INSTANCES: Final = (
    "SELECT host, pid, mode, started_at, content_dir, content_version, seen_at FROM instances ORDER BY started_at"
)
SELECT_OA_TOKENS: Final = "SELECT access_token, refresh_token, expires_at, origin FROM oa_tokens WHERE id = 1"
UPSERT_OA_TOKENS: Final = (
    "INSERT INTO oa_tokens (id, access_token, refresh_token, expires_at, updated_at, origin) "
    "VALUES (1, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET access_token = excluded.access_token, "
    "refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, "
    "updated_at = excluded.updated_at, origin = excluded.origin"
)
SELECT_OA_WINDOW: Final = "SELECT last_user_at, sent_since, missed, last_msg_id FROM oa_windows WHERE user_key = ?"
UPSERT_OA_WINDOW: Final = (
    "INSERT INTO oa_windows (user_key, last_user_at, sent_since, missed, last_msg_id) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_key) DO UPDATE SET last_user_at = excluded.last_user_at, "
    "sent_since = excluded.sent_since, missed = excluded.missed, last_msg_id = excluded.last_msg_id"
)
# The citizen wrote: a new free-reply window, never moved back by an older message arriving late.
OPEN_OA_WINDOW: Final = (
    "INSERT INTO oa_windows (user_key, last_user_at, sent_since, missed, last_msg_id) VALUES (?, ?, 0, 0, ?) "
    "ON CONFLICT (user_key) DO UPDATE SET last_user_at = excluded.last_user_at, sent_since = 0, missed = 0, "
    "last_msg_id = CASE WHEN excluded.last_msg_id <> '' THEN excluded.last_msg_id ELSE oa_windows.last_msg_id END "
    "WHERE excluded.last_user_at >= oa_windows.last_user_at"
)
# Counted in SQL, never from a stale copy (another worker may have counted meanwhile).
COUNT_OA_REPLY: Final = "UPDATE oa_windows SET sent_since = sent_since + 1 WHERE user_key = ?"
MISS_OA_REPLY: Final = "UPDATE oa_windows SET missed = 1 WHERE user_key = ?"
DELETE_STALE_OUTBOX: Final = "DELETE FROM outbox WHERE created_at < ?"
SELECT_OUTBOX: Final = "SELECT id, channel, chat, replies, sent FROM outbox WHERE channel = ? ORDER BY id"

SELECT_VERSIONS: Final = (
    "SELECT content_version, COUNT(*), MIN(ts), MAX(ts) FROM events GROUP BY content_version ORDER BY MAX(ts) DESC"
)
# Tables `purge` empties of old rows, with the column that dates a row.
PURGED: Final = (
    ("events", "ts"),
    ("sessions", "updated_at"),
    ("processed_updates", "seen_at"),
    ("outbox", "created_at"),
    ("oa_windows", "last_user_at"),
    ("reminders", "due"),
)


def purge_cutoffs(before: float, sessions_before: float | None) -> list[tuple[str, str, float]]:
    """(table, column, cutoff) for `purge`: sessions only when also older than ``sessions_before``."""
    sessions = before if sessions_before is None else min(before, sessions_before)
    return [(table, column, sessions if table == "sessions" else before) for table, column in PURGED]


def instance_args(instance: Instance) -> tuple[Any, ...]:
    return (
        instance.host,
        instance.pid,
        instance.mode,
        instance.started_at,
        instance.content_dir,
        instance.content_version,
        instance.seen_at,
    )


def content_load_args(load: ContentLoad) -> tuple[Any, ...]:
    return (
        load.ts,
        load.pid,
        load.host,
        load.trigger,
        int(load.ok),
        load.version,
        load.active_version,
        load.content_dir,
        json.dumps([dict(p) for p in load.problems], ensure_ascii=False),
    )


def content_load_of(row: Sequence[Any]) -> ContentLoad:
    """A content_loads row (problems as JSON text on SQLite, already decoded on PostgreSQL)."""
    problems = json.loads(row[8]) if isinstance(row[8], str) else row[8]
    return ContentLoad(
        ts=row[0],
        pid=row[1],
        host=row[2],
        trigger=row[3],
        ok=bool(row[4]),
        version=row[5],
        active_version=row[6],
        content_dir=row[7],
        problems=tuple(problems),
    )


# A turn's reminder plan (Remind): upserted, or dropped. A new plan frees any claim on the old one.
UPSERT_REMINDER: Final = (
    "INSERT INTO reminders (user_key, channel, chat, run, due, owner, lease_until) VALUES (?, ?, ?, ?, ?, '', 0) "
    "ON CONFLICT (user_key) DO UPDATE SET channel = excluded.channel, chat = excluded.chat, run = excluded.run, "
    "due = excluded.due, owner = '', lease_until = 0"
)
DELETE_REMINDER: Final = "DELETE FROM reminders WHERE user_key = ?"
DELETE_REMINDER_OF_RUN: Final = "DELETE FROM reminders WHERE user_key = ? AND run = ?"
MOVE_REMINDER_OF_RUN: Final = "UPDATE reminders SET due = ?, owner = '', lease_until = 0 WHERE user_key = ? AND run = ?"


def reminder_write(user_key: str, r: Remind) -> tuple[str, tuple[Any, ...]]:
    """The statement and arguments that apply a turn's Remind plan ``r``."""
    if r.same_run:
        if r.due is None:
            return DELETE_REMINDER_OF_RUN, (user_key, r.run)
        return MOVE_REMINDER_OF_RUN, (r.due, user_key, r.run)
    if r.due is None:
        return DELETE_REMINDER, (user_key,)
    return UPSERT_REMINDER, (user_key, r.channel, r.chat, r.run, r.due)
