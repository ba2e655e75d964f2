"""Storage interfaces: sessions, the event log and processed-update ids, written together per turn.

Only backends import a database driver; the SQLite one is the embedded default.
A server database would implement the same ``Store`` protocol.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.engine import Event, Session
from bot.storage.analytics import ReportScope

ReloadTrigger = Literal["start", "watch", "signal"]


@dataclass(frozen=True)
class ContentLoad:
    """One attempt to load the content, by one bot process: what it tried and what it serves since."""

    ts: float
    pid: int
    host: str
    trigger: ReloadTrigger
    ok: bool
    version: str  # the version attempted
    active_version: str  # the version served after the attempt ("" when none)
    content_dir: str
    problems: tuple[Mapping[str, Any], ...] = ()  # loader problems (Problem.as_dict), errors and warnings


@dataclass(frozen=True)
class Instance:
    """A running bot process that uses this database (so `reload` can find it)."""

    host: str
    pid: int
    mode: str
    started_at: float
    content_dir: str
    content_version: str = ""  # the content it serves (updated at each reload)
    seen_at: float = 0.0  # its last heartbeat: a worker on another machine is live while this is recent


@dataclass(frozen=True)
class Outgoing:
    """A turn's replies waiting for delivery: channel, the channel's chat id, replies as dicts, and how many
    of the turn's messages already went out (or were on their way when a worker stopped)."""

    channel: str
    chat: str
    replies: tuple[Mapping[str, Any], ...]
    sent: int = 0


@dataclass(frozen=True)
class Remind:
    """A turn's word on the citizen's reminder: due at ``due`` (Unix time) for the flow run ``run``, to be
    sent to ``chat`` (sealed) on ``channel``; or, with ``due`` None, none is due (any planned is dropped)."""

    due: float | None
    channel: str = ""
    chat: str = ""
    run: str = ""
    # Only the plan of this very run is moved or dropped (the reminder's own turn: meanwhile the citizen
    # may have started another run, whose plan must stay).
    same_run: bool = False


@dataclass(frozen=True)
class DueReminder:
    """A planned reminder whose time has come, claimed by this process for a while (see reminders_due)."""

    user_key: str
    channel: str
    chat: str
    run: str
    due: float


@dataclass(frozen=True)
class OATokens:
    """The Zalo OA token pair; the refresh token works once."""

    access_token: str
    refresh_token: str
    expires_at: float
    # the ZALO_OA_REFRESH_TOKEN this pair descends from: a different one in the environment
    # means an administrator authorised the OA again, and the environment wins
    origin: str = ""


@dataclass(frozen=True)
class OAWindow:
    """A citizen's free-reply window on Zalo OA: since their last message, how many replies went out."""

    last_user_at: float
    sent_since: int = 0
    missed: bool = False  # a reply could not be delivered because the window was closed
    last_msg_id: str = ""  # the citizen's last message: a reply referring to it is a free reply


class Store(Protocol):
    """What the runner needs from storage."""

    async def load_session(self, user_key: str) -> Session | None:
        """The saved session of a user, or None for a newcomer."""

    async def begin_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[Session | None, bool]:
        """The saved session (None for a newcomer) and whether the update ``processed`` was already handled."""

    async def end_turn(self, user_key: str) -> None:
        """Give up the turn ``begin_turn`` began if ``commit_turn`` did not end it (an update already
        handled, a failure): whatever it holds for the user is released. A no-op otherwise."""

    async def is_processed(self, channel: str, event_id: str) -> bool:
        """Whether an inbound update was already handled (redelivery)."""

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
        """Save the session, append the events, mark the update processed and queue the replies in ONE transaction.

        Durable when it returns. Returns False, writing nothing, when ``processed`` was
        already recorded; the outbox row's id when ``outbox`` was given; True otherwise.
        A ``session`` of None leaves the stored session as it is. ``remind`` plans the citizen's
        reminder (or drops it); None leaves it as it is.
        """

    async def reminders_due(self, channel: str, now: float, limit: int = 100) -> list[DueReminder]:
        """Reminders of ``channel`` due by ``now``, oldest first, claimed for this process for ``outbox_lease_seconds`` (a
        worker asking at the same time gets others; one that dies lets them go when the claim runs out).
        Each is then handled in a turn that drops or moves it (``commit_turn(remind=...)``)."""

    async def append_events(self, events: Sequence[Event]) -> None:
        """Events that belong to no turn."""

    async def outbox_pending(self, channel: str, max_age_seconds: float = 86400.0) -> list[tuple[int, Outgoing]]:
        """Replies committed but never marked delivered, oldest first."""

    # Seconds a worker's claim on the replies it committed lasts (0: one process owns the database, and
    # replies left over are only recovered at its start).
    outbox_lease_seconds: float

    async def renew_outbox_claims(self, ids: Collection[int]) -> None:
        """This worker still lives and has the replies ``ids`` to send: keep its claims on them (a no-op with
        one process)."""

    async def release_outbox_claims(self, ids: Collection[int]) -> None:
        """This worker stops with the replies ``ids`` not (all) sent: any worker may take them over at once,
        instead of when the claims run out (a no-op with one process)."""

    async def start_delivery(self, outbox_id: int) -> tuple[bool, int]:
        """Just before sending the row ``outbox_id``: (whether to send it, how many older rows of the same
        citizen it superseded). With several workers, a row another worker sent or a newer reply superseded
        is not sent, and older replies of the citizen are out first; one process always sends, in order."""

    async def outbox_sending(self, outbox_id: int, upto: int) -> bool:
        """Just before a turn's message number ``upto`` (counted from 1) goes to the platform: it and those
        before it are never sent again, by any worker resuming the turn after a crash. (A message whose
        request was on its way when its worker died is taken as sent: a platform cannot say whether it got
        it, and a request on its way almost always arrives.) Called with one less when the platform refused
        the message. False when the row is no longer this worker's (taken over, or replaced): it must stop
        sending. With one process it may be written a moment later, like ``outbox_done``."""

    async def outbox_done(self, outbox_id: int) -> None:
        """Mark a row delivered (may be written a moment later, with the next turn)."""

    async def flush(self) -> None:
        """Wait until everything queued is written."""

    async def record_content_load(self, load: ContentLoad) -> None:
        """Append one content load attempt (officials read them with `status`)."""

    async def content_loads(self, limit: int = 20) -> list[ContentLoad]:
        """The latest content load attempts, newest first."""

    async def register_instance(self, instance: Instance) -> None: ...

    async def unregister_instance(self, host: str, pid: int) -> None: ...

    async def heartbeat(self, host: str, pid: int, content_version: str, at: float) -> None:
        """A registered process is alive at ``at`` and serves ``content_version``."""

    async def instances(self) -> list[Instance]: ...

    async def oa_tokens(self) -> OATokens | None: ...

    async def save_oa_tokens(self, tokens: OATokens) -> None: ...

    async def oa_window(self, user_key: str) -> OAWindow | None: ...

    async def save_oa_window(self, user_key: str, window: OAWindow) -> None: ...

    async def open_oa_window(self, user_key: str, at: float, msg_id: str = "") -> None:
        """The citizen wrote at ``at``: reset the count and the missed flag (unless a later message already did)."""

    async def count_oa_reply(self, user_key: str) -> None:
        """Count one free reply, atomically."""

    async def miss_oa_reply(self, user_key: str) -> None:
        """Remember that a reply could not be sent, atomically."""

    def exclusive(
        self, name: str, wait: bool = True, lost: asyncio.Event | None = None
    ) -> AbstractAsyncContextManager[bool]:
        """Hold ``name`` against every process sharing this database while the block runs: yields True
        once held, or at once False when ``wait`` is False and another holds it. (Refreshing the Zalo OA
        token pair; choosing the one worker that long-polls a platform.) Given up if the process dies.
        A server database can also drop it while the block runs (it restarted, the connection broke):
        ``lost``, when given, is set as soon as that is noticed, so the holder stops what it guards."""
        ...

    async def close(self) -> None: ...


class AdminStore(Store, Protocol):
    """What officials' commands (report, purge, status) need besides the turns: every backend has it."""

    async def schema_version(self) -> int: ...

    async def events(self, user_key: str | None = None) -> list[dict[str, Any]]:
        """Events in insertion order (for tests, previews and reports)."""

    async def versions(self) -> list[tuple[str, int, float, float]]:
        """The content versions seen in the log: (version, events, first, last event time), newest first."""

    async def purge_counts(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        """How many rows ``purge`` with the same arguments would delete (nothing is deleted)."""

    async def purge(self, before: float, sessions_before: float | None = None) -> dict[str, int]:
        """Delete rows older than ``before``; sessions only when also older than ``sessions_before``."""

    async def analytics(self, scope: ReportScope) -> dict[str, Any]:
        """The aggregates behind `report` (bot.storage.analytics)."""


def is_server(db: str) -> bool:
    """Whether ``--db`` names a PostgreSQL server (postgresql://…) rather than a SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def shown_db(db: str) -> str:
    """``--db`` as it may be printed: a file path, or a server's host:port/dbname (never its password)."""
    if not is_server(db):
        return db
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(db)
    except ProgrammingError:
        return "postgresql://(địa chỉ không đọc được)"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or '5432'}/{parts.get('dbname') or ''}"


async def open_store(db: str) -> AdminStore:
    """The store ``--db`` names: a PostgreSQL server, or else a SQLite file (the embedded default)."""
    if re.match(r"\s*[A-Za-z_]+\s*=", db):  # "host=db dbname=bot": libpq's other form, not a file name
        from bot.errors import UsageError

        raise UsageError(
            f"--db “{db[:40]}…” trông như chuỗi kết nối dạng khoá=giá trị; hãy viết dạng "
            "postgresql://người_dùng:mật_khẩu@máy:5432/tên_csdl (hoặc đường dẫn tệp SQLite)."
        )
    if is_server(db):
        from bot.settings import db_pool_size, outbox_lease_seconds
        from bot.storage.postgres import PostgresStore

        return await PostgresStore.open(db, pool_size=db_pool_size(), lease_seconds=outbox_lease_seconds())
    from bot.storage.sqlite import SqliteStore

    return await SqliteStore.open(db)


def event_row(e: Event) -> tuple[Any, ...]:
    """An event as the row every backend stores (detail as JSON text with sorted keys)."""
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


__all__ = [
    "AdminStore",
    "ContentLoad",
    "Instance",
    "OATokens",
    "OAWindow",
    "Outgoing",
    "ReloadTrigger",
    "Store",
    "event_row",
    "is_server",
    "open_store",
]
