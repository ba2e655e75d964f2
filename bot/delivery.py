"""Sending committed replies in the background: per chat in commit order, across chats at once.

A turn is committed (its replies in the outbox) before the platform gets its 200,
and then handed to a ``Dispatcher``. It sends each chat's replies one turn after
another through the channel's own ``send`` (which keeps the platform's rate
limits and retries), marks each turn delivered, and never lets one chat's backlog
grow: when more than ``backlog`` turns wait for one chat, the oldest are dropped
(their replies were superseded by newer ones) and recorded as
``replies-superseded``. After a restart, ``recover`` queues what the outbox still
holds the same way, without delaying the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

from bot.engine import Reply, is_reminder, quiet_at
from bot.runner import CanRemind, Delivery, Runner

logger = logging.getLogger(__name__)

# Turns waiting per chat beyond the one being sent; older ones are superseded.
BACKLOG: Final = 3

# Due reminders are looked for this often (a reminder is due hours after a citizen's last message).
REMIND_EVERY: Final = 30.0


class TurnTakenOver(Exception):
    """The turn being sent is no longer this worker's (its claim ran out and another worker took it over,
    or a newer reply replaced it): sending stops, so that two workers never send one turn at once."""


class Progress:
    """How far one turn's messages went out. A channel sends the messages from number ``done`` on (counted
    from 0 in the order it renders them), awaits ``going(i)`` just before message ``i``'s request, once the
    platform's rate limits let it go, and ``refused(i)`` when the platform certainly did not take it (a
    429): from ``going`` until then it counts as sent, so a worker resuming the turn after a crash sends
    the rest, never this one again. ``mark(n)`` records that n messages went out and says whether the turn
    is still this worker's (``TurnTakenOver`` when it is not)."""

    def __init__(self, done: int = 0, mark: Callable[[int], Awaitable[bool]] | None = None) -> None:
        self.done = done
        self._mark = mark

    async def going(self, index: int) -> None:
        if index + 1 <= self.done:
            return  # a retry of the same message
        await self._record(index + 1)

    async def refused(self, index: int) -> None:
        if self.done == index + 1:
            await self._record(index)

    async def _record(self, done: int) -> None:
        self.done = done
        if self._mark is None:
            return
        try:
            ours = await self._mark(done)
        except Exception as exc:  # the database away this moment: sent anyway (twice rather than never)
            logger.warning("a reply's progress could not be recorded (%s)", exc)
            return
        if not ours:
            raise TurnTakenOver()


Send = Callable[[str, Sequence[Reply], Progress], Awaitable[None]]


class Dispatcher:
    """Per-chat queues of committed deliveries for one channel, drained by one task per busy chat."""

    def __init__(
        self,
        channel: str,
        runner: Runner,
        send: Send,
        backlog: int = BACKLOG,
        can_remind: CanRemind | None = None,
        remind_every: float = REMIND_EVERY,
    ) -> None:
        self.channel = channel
        self.runner = runner
        self._send = send
        self.backlog = backlog
        self.can_remind = can_remind  # the channel's rule for an unprompted message; None: any time
        self.remind_every = remind_every
        self._reminding: asyncio.Task[None] | None = None
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.superseded = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._sending: set[int] = set()  # outbox rows being sent right now (out of their queue)

    def submit(self, delivery: Delivery) -> None:
        """Queue a committed turn's replies (never waits)."""
        if not delivery.chat:
            return
        queue = self._queues.setdefault(delivery.chat, deque())
        queue.append(delivery)
        dropped = [queue.popleft() for _ in range(len(queue) - self.backlog)]
        if dropped:
            self._supersede(delivery.chat, dropped)
        if delivery.chat not in self._workers:
            self._workers[delivery.chat] = asyncio.ensure_future(self._work(delivery.chat))

    @property
    def waiting(self) -> int:
        """Turns queued and not yet being sent, over all chats."""
        return sum(len(q) for q in self._queues.values())

    async def recover(self) -> int:
        """Queue the replies a previous run committed but did not deliver; sending happens in the background.

        When several workers share the database, this worker then keeps its claims on the replies it
        commits alive and, every third of a claim's lease, takes over those of a worker that died.
        """
        pending = await self.runner.pending(self.channel)
        for delivery in pending:
            self.submit(delivery)
        if pending:
            logger.warning("%s: %d undelivered replies are being resent", self.channel, len(pending))
        lease = self.runner.store.outbox_lease_seconds
        if lease > 0 and self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep(lease / 3))
        after = self.runner.config.remind_after_seconds
        if after > 0 and self._reminding is None:
            # (a few times per silence: a reminder is never much later than due, even with a short setting)
            self._reminding = asyncio.ensure_future(self._remind_loop(min(self.remind_every, after / 4)))
        return len(pending)

    async def remind_due(self) -> int:
        """Send (queue) the reminders of this channel whose time has come; how many were queued."""
        queued = 0
        now = self.runner.clock().timestamp()
        for due in await self.runner.store.reminders_due(self.channel, now):
            try:
                delivery = await self.runner.remind(due, self.can_remind)
            except Exception as exc:  # the database restarting: the reminder stays due, tried next round
                logger.warning("%s: a reminder could not be handled yet (%s)", self.channel, exc)
                continue
            if delivery is not None:
                self.submit(delivery)
                queued += 1
        return queued

    async def _remind_loop(self, every: float) -> None:
        while True:
            try:
                await self.remind_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("%s: could not look for due reminders (%s)", self.channel, exc)
            await asyncio.sleep(every)

    async def _sweep(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                held = {d.outbox_id for q in self._queues.values() for d in q if d.outbox_id} | self._sending
                await self.runner.store.renew_outbox_claims(held)
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarting: try again at the next round
                logger.warning("%s: could not check for replies left by other workers (%s)", self.channel, exc)

    async def _work(self, chat: str) -> None:
        queue = self._queues[chat]
        try:
            while queue:
                delivery = queue.popleft()
                self._sending.add(delivery.outbox_id)
                try:
                    await self._deliver(chat, queue, delivery)
                finally:
                    self._sending.discard(delivery.outbox_id)
        finally:
            if not queue:
                self._queues.pop(chat, None)
            self._workers.pop(chat, None)

    async def _deliver(self, chat: str, queue: deque[Delivery], delivery: Delivery) -> None:
        if delivery.outbox_id:
            try:
                send, superseded = await self.runner.store.start_delivery(delivery.outbox_id)
            except Exception as exc:  # the database away: the row stays and is sent after its claim
                logger.warning("%s: a reply could not be started (%s)", self.channel, exc)
                return
            if superseded:
                self._record_superseded(chat, superseded)
            if not send:
                return  # sent by another worker, or replaced by a newer reply of the same citizen
        if is_reminder(delivery.replies) and quiet_at(self.runner.clock(), self.runner.config.quiet_hours):
            # A reminder left in the outbox by a crash, found at night on restart: never sent at night.
            logger.warning("%s: a reminder left from before a restart would arrive at night; not sent", self.channel)
            await self.runner.delivered(delivery)
            return
        progress = Progress(delivery.sent)
        if delivery.outbox_id:
            outbox_id, store = delivery.outbox_id, self.runner.store
            progress = Progress(delivery.sent, lambda upto: store.outbox_sending(outbox_id, upto))
        try:
            await self._send(chat, delivery.replies, progress)
            self.sent += 1
        except TurnTakenOver:
            logger.warning("%s: a reply being sent was taken over by another worker; left to it", self.channel)
            return
        except asyncio.CancelledError:
            # still in the outbox: the rest is sent at the next start
            queue.appendleft(Delivery(delivery.replies, delivery.outbox_id, delivery.chat, progress.done))
            raise
        except Exception:
            # The channel's send already retried what can be retried; resending this
            # turn forever would block the chat, so it is given up and logged.
            logger.exception("%s: a reply could not be delivered", self.channel)
        try:
            await self.runner.delivered(delivery)
        except Exception as exc:
            # The database is unreachable this moment: the row stays, its claim runs out and it is
            # sent again later (a reply twice rather than never), and this chat's queue goes on.
            logger.warning("%s: a delivered reply could not be marked (%s)", self.channel, exc)

    def _supersede(self, chat: str, dropped: list[Delivery]) -> None:
        async def mark() -> None:
            for delivery in dropped:
                await self.runner.delivered(delivery)

        self._chore(mark())
        self._record_superseded(chat, len(dropped))

    def _record_superseded(self, chat: str, turns: int) -> None:
        self.superseded += turns

        async def record() -> None:
            try:
                await self.runner.record(self.channel, chat, "replies-superseded", {"turns": turns})
            except Exception:
                logger.exception("%s: could not record superseded replies", self.channel)

        self._chore(record())

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def idle(self) -> None:
        """Wait until nothing is queued or being sent (tests and benchmarks)."""
        while self._workers or self._chores:
            await asyncio.gather(*self._workers.values(), *self._chores, return_exceptions=True)

    async def drain(self, seconds: float) -> None:
        """Wait up to ``seconds`` for queued replies to go out; what is left stays in the outbox for the next start."""
        if self._reminding is not None:
            self._reminding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reminding
            self._reminding = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        workers = set(self._workers.values()) | set(self._chores)
        held: set[int] = set()
        if workers:
            _, late = await asyncio.wait(workers, timeout=seconds)
            held = {d.outbox_id for q in self._queues.values() for d in q if d.outbox_id} | self._sending
            if late:
                logger.warning(
                    "%s: %d chats still had replies to send; they are resent at the next start", self.channel, len(late)
                )
                for task in late:
                    task.cancel()
                for task in late:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        if held:  # (other workers may send them now, rather than after the claims run out)
            try:
                await self.runner.store.release_outbox_claims(held)
            except Exception as exc:
                logger.warning("%s: replies left unsent wait for their claims to run out (%s)", self.channel, exc)
