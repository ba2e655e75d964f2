"""A running bot's shared parts, the same for every channel: content, storage, the runner and hot reload.

Hot reload: a watcher polls the content files' modification times, and SIGHUP
(sent by `python -m bot reload`) asks for a reload at once. Every attempt is
validated as a whole and recorded in the database, where `python -m bot status`
shows it; a broken edit leaves the last good version serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from bot.content import ContentHolder, ReloadOutcome, build
from bot.engine import EngineConfig
from bot.errors import StoreUnavailable
from bot.limits import RateLimiter
from bot.loader import load_content
from bot.runner import Runner, vietnam_now
from bot.settings import hash_secret, setting
from bot.storage import AdminStore, ContentLoad, Instance, ReloadTrigger, Store, is_server, open_store

logger = logging.getLogger(__name__)

# After a change is seen, wait this long for the editor to finish writing every file.
SETTLE_SECONDS = 0.3
# A worker standing by for long polling checks this often whether the one polling is still there.
STANDBY_SECONDS = 5.0
# Each process records that it is alive this often (`status` lists workers on other machines by it).
HEARTBEAT_SECONDS = 30.0


def _where(content_dir: Path) -> str:
    """The content directory as an absolute path, for officials reading `status`."""
    return os.path.abspath(content_dir)


async def one_at_a_time(
    store: Store,
    name: str,
    work: Callable[[asyncio.Event], Awaitable[None]],
    stop: asyncio.Event,
    every: float = STANDBY_SECONDS,
) -> None:
    """Run ``work`` in one worker at a time among those sharing the database (long polling: a platform
    answers one getUpdates caller). The others stand by and try again every ``every`` seconds, so when the
    worker that polls dies (the database frees its lock), another takes over. ``work`` runs until the
    event it is given is set: on ``stop``, or when the lock is lost (the database restarted), after which
    this worker stops polling and stands in line again, so two workers never poll at once for long."""
    standing_by = False
    while not stop.is_set():
        halt = asyncio.Event()
        relay = asyncio.ensure_future(_relay(stop, halt))
        try:
            async with contextlib.AsyncExitStack() as held:
                try:
                    leading = await held.enter_async_context(store.exclusive(f"poller:{name}", wait=False, lost=halt))
                except StoreUnavailable as exc:  # the database is restarting: try again in a moment
                    logger.warning("%s: %s; trying again in %.0f s", name, exc, every)
                    leading = False
                    standing_by = True
                if leading:
                    if standing_by:
                        logger.warning("%s: this worker takes over long polling", name)
                    await work(halt)
                    if stop.is_set() or not halt.is_set():  # stopped, or the work ended by itself
                        return
                    logger.warning("%s: the database lock was lost; this worker stops long polling", name)
                    standing_by = True
        finally:
            relay.cancel()
        if not standing_by:
            logger.warning("%s: another worker is long polling; this one stands by", name)
            standing_by = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _relay(stop: asyncio.Event, halt: asyncio.Event) -> None:
    await stop.wait()
    halt.set()


async def _secret(store: AdminStore, db: str) -> bytes:
    """The pseudonymisation secret: BOT_HASH_SECRET, else one kept with the data (every worker of a server
    database must read the same one, so there it lives in the database, not in a file on one machine)."""
    if is_server(db) and not setting("hash_secret"):
        from bot.storage.postgres import PostgresStore

        assert isinstance(store, PostgresStore)
        return await store.shared_secret()
    return hash_secret(db)


class Service:
    """Owns the store, the content holder and the runner of one bot process."""

    def __init__(
        self,
        holder: ContentHolder,
        store: AdminStore,
        runner: Runner,
        mode: str,
        reload_interval: float,
    ) -> None:
        self.holder = holder
        self.store = store
        self.runner = runner
        self.mode = mode
        self.reload_interval = reload_interval
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._tasks: set[asyncio.Task[object]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._sighup = False

    @classmethod
    async def open(
        cls,
        content_dir: Path,
        db: str,
        mode: str,
        *,
        reload_interval: float = 2.0,
        config: EngineConfig | None = None,
        clock: Callable[[], datetime] = vietnam_now,
        messages_per_minute: float = 0.0,
    ) -> Service:
        """Load the content (a broken set stops the start with ContentError) and open storage."""
        where = _where(content_dir)
        store = await open_store(db)
        try:
            result = await asyncio.to_thread(load_content, content_dir)
            record = ContentLoad(
                ts=time.time(),
                pid=os.getpid(),
                host=socket.gethostname(),
                trigger="start",
                ok=result.catalogue is not None,
                version=result.version,
                active_version=result.version if result.catalogue is not None else "",
                content_dir=where,
                problems=tuple(p.as_dict() for p in result.problems),
            )
            await store.record_content_load(record)
            content = build(result)
            await asyncio.to_thread(content.warm)  # the first citizens do not wait for it
            holder = ContentHolder(content, content_dir)
            limiter = RateLimiter(messages_per_minute, time.monotonic) if messages_per_minute > 0 else None
            runner = Runner(holder, store, await _secret(store, db), clock=clock, config=config, limiter=limiter)
            service = cls(holder, store, runner, mode, reload_interval)
            now = time.time()
            version = content.catalogue.version
            await store.register_instance(Instance(service.host, service.pid, mode, now, where, version, now))
        except BaseException:
            await store.close()
            raise
        return service

    # -- reloading -------------------------------------------------------------

    async def reload(self, trigger: ReloadTrigger) -> ReloadOutcome:
        """Reload now; record the attempt unless a watcher poll found nothing new."""
        outcome = await self.holder.reload()
        if outcome.status == "loaded":
            logger.info("content %s loaded (%s)", outcome.version, trigger)
        elif outcome.status == "failed":
            errors = [p for p in outcome.problems if p.severity == "error"]
            logger.warning(
                "content %s rejected (%s), still serving %s: %d error(s), first: %s",
                outcome.version,
                trigger,
                outcome.active_version,
                len(errors),
                errors[0].format() if errors else "?",
            )
        if outcome.status == "loaded":
            await self._heartbeat()  # `status` shows the new version at once
        if outcome.status != "unchanged" or trigger != "watch":
            await self.store.record_content_load(
                ContentLoad(
                    ts=time.time(),
                    pid=self.pid,
                    host=self.host,
                    trigger=trigger,
                    ok=outcome.ok,
                    version=outcome.version,
                    active_version=outcome.active_version,
                    content_dir=_where(self.holder.content_dir),
                    problems=tuple(p.as_dict() for p in outcome.problems),
                )
            )
        return outcome

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                if self.holder.changed():
                    await asyncio.sleep(SETTLE_SECONDS)
                    await self.reload("watch")
            except Exception:  # the watcher must outlive any surprise; the bot keeps serving
                logger.exception("content watcher failed; it will try again")

    async def _heartbeat(self) -> None:
        await self.store.heartbeat(self.host, self.pid, self.holder.current.catalogue.version, time.time())

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._heartbeat()
            except Exception as exc:  # the database restarting: the next beat tries again
                logger.warning("could not record this worker's heartbeat (%s)", exc)

    def _on_sighup(self) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(self._reload_logged("signal"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self, trigger: ReloadTrigger) -> object:
        try:
            return await self.reload(trigger)
        except Exception:
            logger.exception("content reload failed")
            return None

    def start_reloading(self) -> None:
        """Start the file watcher (unless the interval is 0) and the heartbeat, and listen for SIGHUP."""
        if self.reload_interval > 0 and self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())
        if self._beat is None:
            self._beat = asyncio.ensure_future(self._beating())
        if hasattr(signal, "SIGHUP"):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._sighup = True

    async def close(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for loop_task in (self._watcher, self._beat):
            if loop_task is not None:
                loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop_task
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.store.unregister_instance(self.host, self.pid)
        except Exception as exc:  # the database gone this moment: `status` sees the heartbeat stop instead
            logger.warning("could not unregister this process from the database (%s)", exc)
        finally:
            await self.store.close()
