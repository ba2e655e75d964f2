"""The runner: dedupe, per-user lock, load session, engine step, commit, then hand back replies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from bot import engine, texts
from bot.content import ContentHolder
from bot.engine import Choice, EngineConfig, Event, Inbound, InboundKind, Reply, Session
from bot.limits import RateLimiter
from bot.privacy import seal, unseal, user_key
from bot.settings import VIETNAM_TZ
from bot.storage import Outgoing, Store

logger = logging.getLogger(__name__)


def vietnam_now() -> datetime:
    return datetime.now(VIETNAM_TZ)


# Sealed chat ids are cached (sealing is an AES encryption plus an HMAC per turn otherwise).
SEALED_CACHE: Final = 10_000


@dataclass(frozen=True)
class Delivery:
    """Replies to send to ``chat``; ``outbox_id`` (non-zero) is their row in the outbox until delivered."""

    replies: list[Reply]
    outbox_id: int = 0
    chat: str = ""


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
        limiter: RateLimiter | None = None,
    ) -> None:
        self.content = content
        self.store = store
        self.secret = secret
        self.clock = clock
        self.config = config or EngineConfig()
        # Applies to the platform channels (``handle_for_delivery``), not to the local console.
        self.limiter = limiter
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}
        self._sealed: OrderedDict[str, str] = OrderedDict()

    def key(self, channel: str, user_id: str) -> str:
        return user_key(self.secret, channel, user_id)

    async def handle(self, msg: Incoming) -> list[Reply] | None:
        """The replies to send, or None when this update was already handled.

        The user's lock is taken before anything is awaited, so one user's messages are
        handled in the order they reached this method.
        """
        delivery = await self.handle_for_delivery(msg, outbox=False)
        return delivery.replies if delivery is not None else None

    async def handle_for_delivery(
        self,
        msg: Incoming,
        outbox: bool = True,
        on_commit: Callable[[Delivery], None] | None = None,
    ) -> Delivery | None:
        """Like ``handle``; with ``outbox`` the replies are also queued in the same transaction as the
        turn, and the channel calls ``delivered`` once they went out (see ``Store.outbox_pending``).

        ``on_commit`` is called with the committed delivery while the user's lock is still
        held, so a channel that queues deliveries queues them in commit order. Returns None
        for an update that was already handled, or dropped by the rate limit.
        """
        key = self.key(msg.channel, msg.user_id)
        verdict = self.limiter.check(key) if self.limiter is not None and outbox else "ok"
        if verdict == "drop":
            return None
        self._waiters[key] = self._waiters.get(key, 0) + 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if verdict == "warn":
                    delivery = await self._slow_down(key, msg)
                else:
                    delivery = await self._turn(key, msg, outbox)
                if delivery is not None and on_commit is not None:
                    on_commit(delivery)
                return delivery
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                self._locks.pop(key, None)

    async def _slow_down(self, key: str, msg: Incoming) -> Delivery | None:
        """The one polite answer to a citizen over the rate limit; the session is left as it was."""
        now = self.clock()
        event = Event(
            ts=now.timestamp(),
            user_key=key,
            channel=msg.channel,
            type="rate-limited",
            content_version=self.content.current.catalogue.version,
        )
        return await self._commit(key, msg, None, [event], [Reply(texts.RATE_LIMITED)], outbox=True)

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

    def _seal(self, chat: str) -> str:
        """The chat id as stored in the outbox: needed to resend, but not readable in the file."""
        sealed = self._sealed.get(chat)
        if sealed is None:
            sealed = self._sealed[chat] = seal(self.secret, chat)
            if len(self._sealed) > SEALED_CACHE:
                self._sealed.popitem(last=False)
        return sealed

    async def _commit(
        self,
        key: str,
        msg: Incoming,
        session: Session | None,
        events: Sequence[Event],
        replies: list[Reply],
        outbox: bool,
    ) -> Delivery | None:
        processed = (msg.channel, msg.event_id) if msg.event_id is not None else None
        queued = Outgoing(msg.channel, self._seal(msg.user_id), tuple(r.as_dict() for r in replies)) if outbox else None
        result = await self.store.commit_turn(key, msg.channel, session, events, processed, queued)
        if result is False:
            return None
        return Delivery(replies, result if outbox and not isinstance(result, bool) else 0, msg.user_id)

    async def record(self, channel: str, chat: str, type_: str, detail: Mapping[str, Any]) -> None:
        """An event outside any turn (for example, replies superseded before they could be sent)."""
        event = Event(
            ts=time.time(),
            user_key=self.key(channel, chat),
            channel=channel,
            type=type_,
            content_version=self.content.current.catalogue.version,
            detail=dict(detail),
        )
        await self.store.append_events([event])

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
        processed = (msg.channel, msg.event_id) if msg.event_id is not None else None
        stored, seen = await self.store.begin_turn(key, processed)
        now = self.clock()  # after the wait for the citizen's previous turn (on another worker, perhaps)
        try:
            if seen:
                return None  # a redelivered update: handled once already
            session = stored or Session()
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
        finally:
            await self.store.end_turn(key)  # (a no-op once the commit ended the turn)
