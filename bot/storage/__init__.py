"""Storage interfaces: sessions, the event log and processed-update ids, written together per turn.

Only backends import a database driver; the SQLite one is the embedded default.
A server database would implement the same ``Store`` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.engine import Event, Session


class Store(Protocol):
    """What the runner needs from storage."""

    async def load_session(self, user_key: str) -> Session | None:
        """The saved session of a user, or None for a newcomer."""

    async def is_processed(self, channel: str, event_id: str) -> bool:
        """Whether an inbound update was already handled (redelivery)."""

    async def commit_turn(
        self,
        user_key: str,
        channel: str,
        session: Session,
        events: Sequence[Event],
        processed: tuple[str, str] | None = None,
    ) -> bool:
        """Save the session, append the events and mark the update processed in ONE transaction.

        Returns False, writing nothing, when ``processed`` was already recorded.
        """

    async def close(self) -> None: ...


__all__ = ["Store"]
