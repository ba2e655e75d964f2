"""Storage interfaces: sessions, the event log and processed-update ids, written together per turn.

Only backends import a database driver; the SQLite one is the embedded default.
A server database would implement the same ``Store`` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.engine import Event, Session

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


@dataclass(frozen=True)
class Outgoing:
    """A turn's replies waiting for delivery: channel, the channel's chat id, replies as dicts."""

    channel: str
    chat: str
    replies: tuple[Mapping[str, Any], ...]


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


class Store(Protocol):
    """What the runner needs from storage."""

    async def load_session(self, user_key: str) -> Session | None:
        """The saved session of a user, or None for a newcomer."""

    async def begin_turn(self, user_key: str, processed: tuple[str, str] | None) -> tuple[Session | None, bool]:
        """The saved session (None for a newcomer) and whether the update ``processed`` was already handled."""

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
    ) -> bool | int:
        """Save the session, append the events, mark the update processed and queue the replies in ONE transaction.

        Durable when it returns. Returns False, writing nothing, when ``processed`` was
        already recorded; the outbox row's id when ``outbox`` was given; True otherwise.
        A ``session`` of None leaves the stored session as it is.
        """

    async def append_events(self, events: Sequence[Event]) -> None:
        """Events that belong to no turn."""

    async def outbox_pending(self, channel: str, max_age_seconds: float = 86400.0) -> list[tuple[int, Outgoing]]:
        """Replies committed but never marked delivered, oldest first."""

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

    async def instances(self) -> list[Instance]: ...

    async def oa_tokens(self) -> OATokens | None: ...

    async def save_oa_tokens(self, tokens: OATokens) -> None: ...

    async def oa_window(self, user_key: str) -> OAWindow | None: ...

    async def save_oa_window(self, user_key: str, window: OAWindow) -> None: ...

    async def open_oa_window(self, user_key: str, at: float) -> None:
        """The citizen wrote at ``at``: reset the count and the missed flag (unless a later message already did)."""

    async def count_oa_reply(self, user_key: str) -> None:
        """Count one free reply, atomically."""

    async def miss_oa_reply(self, user_key: str) -> None:
        """Remember that a reply could not be sent, atomically."""

    async def close(self) -> None: ...


__all__ = ["ContentLoad", "Instance", "OATokens", "OAWindow", "Outgoing", "ReloadTrigger", "Store"]
