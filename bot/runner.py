"""The runner: dedupe, per-user lock, load session, engine step, commit, then hand back replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from bot import engine, texts
from bot.content import ContentHolder
from bot.engine import Choice, EngineConfig, Event, Inbound, InboundKind, Reply, Session
from bot.limits import RateLimiter
from bot.privacy import seal, unseal, user_key
from bot.settings import VIETNAM_TZ
from bot.storage import DueReminder, Outgoing, Remind, Store

logger = logging.getLogger(__name__)


def vietnam_now() -> datetime:
    return datetime.now(VIETNAM_TZ)


# Whether a reminder may go to a citizen now, by the channel's rules: None, or why not (e.g.
# "outside-window"); given the citizen's key and when they last wrote.
CanRemind = Callable[[str, float], Awaitable[str | None]]

# Sealed chat ids are cached (sealing is an AES encryption plus an HMAC per turn otherwise).
SEALED_CACHE: Final = 10_000


@dataclass(frozen=True)
class Delivery:
    """Replies to send to ``chat``; ``outbox_id`` (non-zero) is their row in the outbox until delivered;
    ``sent``: how many of the turn's messages went out before (a worker that stopped mid-turn)."""

    replies: list[Reply]
    outbox_id: int = 0
    chat: str = ""
    sent: int = 0


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
        self._console_config = replace(self.config, remind_after_seconds=0.0)
        # Applies to the platform channels (``handle_for_delivery``), not to the local console.
        self.limiter = limiter
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}
        self._sealed: OrderedDict[str, str] = OrderedDict()
        self._keys: OrderedDict[tuple[str, str], str] = OrderedDict()

    def key(self, channel: str, user_id: str) -> str:
        """The citizen's key in sessions and events (an HMAC, computed once per chat while it stays in memory)."""
        key = self._keys.get((channel, user_id))
        if key is None:
            key = self._keys[(channel, user_id)] = user_key(self.secret, channel, user_id)
            if len(self._keys) > SEALED_CACHE:
                self._keys.popitem(last=False)  # the chat written to longest ago
        else:
            self._keys.move_to_end((channel, user_id))
        return key

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
        async with self._user_lock(key):
            if verdict == "warn":
                delivery = await self._slow_down(key, msg)
            else:
                delivery = await self._turn(key, msg, outbox)
            if delivery is not None and on_commit is not None:
                on_commit(delivery)
            return delivery

    @contextlib.asynccontextmanager
    async def _user_lock(self, key: str) -> AsyncIterator[None]:
        """This process's turns of one citizen, one at a time in arrival order (the lock is taken before
        anything is awaited)."""
        self._waiters[key] = self._waiters.get(key, 0) + 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
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

    async def pending(self, channel: str) -> list[Delivery]:
        """Outbox rows of a channel to send again; rows that cannot be read are dropped."""
        out = []
        for outbox_id, outgoing in await self.store.outbox_pending(channel):
            chat = unseal(self.secret, outgoing.chat)
            if chat is None:  # another secret (BOT_HASH_SECRET changed): cannot be delivered
                await self.store.outbox_done(outbox_id)
                continue
            out.append(Delivery(replies_from(outgoing.replies), outbox_id, chat, outgoing.sent))
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
        remind: Remind | None = None,
    ) -> Delivery | None:
        processed = (msg.channel, msg.event_id) if msg.event_id is not None else None
        queued = Outgoing(msg.channel, self._seal(msg.user_id), tuple(r.as_dict() for r in replies)) if outbox else None
        result = await self.store.commit_turn(key, msg.channel, session, events, processed, queued, remind)
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
            # Only the platforms remind (their turns go through the outbox); the console never does.
            config = self.config if outbox else self._console_config
            try:
                result = engine.step(content, session, inbound, now, config)
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
            remind = None
            # (a write only when a reminder is planned, or one planned before is to be moved or dropped)
            if outbox and (result.remind_at is not None or session.reminder.startswith("due:")):
                run = engine.run_of(result.session) or ""
                remind = Remind(result.remind_at, msg.channel, self._seal(msg.user_id), run)
            return await self._commit(key, msg, result.session, result.events, list(result.replies), outbox, remind)
        finally:
            await self.store.end_turn(key)  # (a no-op once the commit ended the turn)

    async def remind(self, due: DueReminder, can_remind: CanRemind | None = None) -> Delivery | None:
        """The reminder ``due``, in a turn of its citizen (their lock held, so it never crosses a message
        of theirs): sent (its replies committed to the outbox, returned to be delivered), skipped by the
        channel's rules (recorded), moved (the quiet hours; the citizen wrote since) or dropped (no longer
        wanted). Committed once across workers: the run's reminder is a processed update of its own."""
        async with self._user_lock(due.user_key):
            return await self._remind(due, can_remind)

    async def _remind(self, due: DueReminder, can_remind: CanRemind | None) -> Delivery | None:
        chat = unseal(self.secret, due.chat)
        dropped = Remind(None, run=due.run, same_run=True)
        processed = (due.channel, f"reminder:{due.user_key}:{due.run}")
        stored, seen = await self.store.begin_turn(due.user_key, processed)
        try:
            if seen or chat is None or stored is None:
                await self.store.commit_turn(due.user_key, due.channel, None, (), None, None, dropped)
                return None
            now = self.clock()
            skip = await can_remind(due.user_key, stored.last_seen or 0.0) if can_remind is not None else None
            try:
                result = engine.remind(
                    self.content.current, stored, due.user_key, due.channel, due.run, now, self.config, skip
                )
            except Exception:
                # A bug, not the database: given up (logged), not tried every round for ever.
                logger.exception("engine failed on a reminder (channel=%s); it is dropped", due.channel)
                await self.store.commit_turn(due.user_key, due.channel, None, (), None, None, dropped)
                return None
            if result.remind_at is not None:  # not yet: the quiet hours, or the citizen wrote since
                later = Remind(result.remind_at, due.channel, due.chat, due.run, same_run=True)
                await self.store.commit_turn(due.user_key, due.channel, None, (), None, None, later)
                return None
            if not result.events:  # no longer wanted: the citizen went on, finished or said no more
                await self.store.commit_turn(due.user_key, due.channel, None, (), None, None, dropped)
                return None
            queued = (
                Outgoing(due.channel, due.chat, tuple(r.as_dict() for r in result.replies)) if result.replies else None
            )
            committed = await self.store.commit_turn(
                due.user_key, due.channel, result.session, result.events, processed, queued, dropped
            )
            if committed is False or queued is None:
                return None
            return Delivery(list(result.replies), committed if not isinstance(committed, bool) else 0, chat)
        finally:
            await self.store.end_turn(due.user_key)
