"""The runner: dedupe, per-user lock, load session, engine step, commit, then hand back replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot import engine, texts
from bot.content import ContentHolder
from bot.engine import Choice, EngineConfig, Event, Inbound, InboundKind, Reply, Session
from bot.privacy import seal, unseal, user_key
from bot.settings import VIETNAM_TZ
from bot.storage import Outgoing, Store

logger = logging.getLogger(__name__)


def vietnam_now() -> datetime:
    return datetime.now(VIETNAM_TZ)


@dataclass(frozen=True)
class Delivery:
    """Replies to send; ``outbox_id`` (non-zero) is their row in the outbox until delivered."""

    replies: list[Reply]
    outbox_id: int = 0


def replies_from(dicts: Sequence[Mapping[str, Any]]) -> list[Reply]:
    """Replies back from their outbox form (``Reply.as_dict``)."""
    return [
        Reply(
            str(d.get("text", "")),
            tuple(Choice(str(c["id"]), str(c["label"])) for c in d.get("choices", [])),
            tuple(str(link) for link in d.get("links", [])),
        )
        for d in dicts
    ]


@dataclass(frozen=True)
class Incoming:
    """What a channel hands the runner: the raw chat user id stays here and is never stored."""

    channel: str
    user_id: str
    kind: InboundKind = "text"
    text: str = ""
    choice_id: str | None = None
    start_payload: str | None = None
    event_id: str | None = None


class Runner:
    """Turns one incoming message into committed state and events, then replies."""

    def __init__(
        self,
        content: ContentHolder,
        store: Store,
        secret: bytes,
        clock: Callable[[], datetime] = vietnam_now,
        config: EngineConfig | None = None,
    ) -> None:
        self.content = content
        self.store = store
        self.secret = secret
        self.clock = clock
        self.config = config or EngineConfig()
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    def key(self, channel: str, user_id: str) -> str:
        return user_key(self.secret, channel, user_id)

    async def handle(self, msg: Incoming) -> list[Reply] | None:
        """The replies to send, or None when this update was already handled.

        The user's lock is taken before anything is awaited, so one user's messages are
        handled in the order they reached this method.
        """
        delivery = await self.handle_for_delivery(msg, outbox=False)
        return delivery.replies if delivery is not None else None

    async def handle_for_delivery(self, msg: Incoming, outbox: bool = True) -> Delivery | None:
        """Like ``handle``; with ``outbox`` the replies are also queued in the same transaction as the
        turn, and the channel calls ``delivered`` once they went out (see ``Store.outbox_pending``)."""
        key = self.key(msg.channel, msg.user_id)
        self._waiters[key] = self._waiters.get(key, 0) + 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if msg.event_id is not None and await self.store.is_processed(msg.channel, msg.event_id):
                    return None
                return await self._turn(key, msg, outbox)
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                self._locks.pop(key, None)

    async def pending(self, channel: str) -> list[tuple[int, str, list[Reply]]]:
        """Outbox rows of a channel as (row id, chat id, replies); rows that cannot be read are dropped."""
        out = []
        for outbox_id, outgoing in await self.store.outbox_pending(channel):
            chat = unseal(self.secret, outgoing.chat)
            if chat is None:  # another secret (BOT_HASH_SECRET changed): cannot be delivered
                await self.store.outbox_done(outbox_id)
                continue
            out.append((outbox_id, chat, replies_from(outgoing.replies)))
        return out

    async def delivered(self, delivery: Delivery) -> None:
        if delivery.outbox_id:
            await self.store.outbox_done(delivery.outbox_id)

    async def _commit(
        self, key: str, msg: Incoming, session: Session, events: Sequence[Event], replies: list[Reply], outbox: bool
    ) -> Delivery | None:
        processed = (msg.channel, msg.event_id) if msg.event_id is not None else None
        sealed = seal(self.secret, msg.user_id)  # the chat id is needed to resend, but not readable in the file
        queued = Outgoing(msg.channel, sealed, tuple(r.as_dict() for r in replies)) if outbox else None
        result = await self.store.commit_turn(key, msg.channel, session, events, processed, queued)
        if result is False:
            return None
        return Delivery(replies, result if outbox and not isinstance(result, bool) else 0)

    async def _turn(self, key: str, msg: Incoming, outbox: bool) -> Delivery | None:
        inbound = Inbound(
            channel=msg.channel,
            user_key=key,
            kind=msg.kind,
            text=msg.text,
            choice_id=msg.choice_id,
            start_payload=msg.start_payload,
            event_id=msg.event_id,
        )
        now = self.clock()
        session = await self.store.load_session(key) or Session()
        content = self.content.current
        try:
            result = engine.step(content, session, inbound, now, self.config)
        except Exception:
            logger.exception(
                "engine failed (channel=%s, procedure=%s, step=%s, content=%s)",
                msg.channel,
                session.position.procedure if session.position else None,
                session.position.step if session.position else None,
                content.catalogue.version,
            )
            error = Event(
                ts=now.timestamp(),
                user_key=key,
                channel=msg.channel,
                type="error",
                content_version=content.catalogue.version,
                procedure_id=session.position.procedure if session.position else None,
                step_id=session.position.step if session.position else None,
            )
            stamped = replace(session, last_seen=now.timestamp())
            return await self._commit(key, msg, stamped, [error], [Reply(texts.INTERNAL_ERROR)], outbox)
        return await self._commit(key, msg, result.session, result.events, list(result.replies), outbox)
