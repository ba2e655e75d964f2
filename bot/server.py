"""One HTTP server for every webhook channel: ``python -m bot serve``.

Routes: ``POST /webhook/telegram`` and ``POST /webhook/zalo`` (secret header checked
in constant time, 403 and nothing read otherwise), ``POST /webhook/zalo-oa`` (signed
body) and ``GET /healthz``. A request is answered 200 only once its update's turn is
committed: a crash before that means no 200, and the platform sends it again (the
processed ids drop a repeat). Bodies are read no further than 256 kB, JSON no deeper
than 32 levels; a malformed update is acknowledged, counted and logged in one line.
Replies go out in the background; on shutdown the server stops taking requests, lets
the requests in flight finish, and gives queued replies a few seconds to go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.common import Malformed, stop_on_signals
from bot.channels.telegram import TelegramWebhook
from bot.channels.zalo_bot import ZaloBotWebhook, unwrap
from bot.channels.zalo_oa import ZaloOAChannel, verified
from bot.delivery import Dispatcher
from bot.errors import BotError, StoreUnavailable
from bot.limits import MAX_BODY_BYTES, InputError, parse_json
from bot.service import Service

logger = logging.getLogger(__name__)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ZALO_BOT_SECRET_HEADER = "X-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ZALO_OA_SIGNATURE_HEADER = "X-ZEvent-Signature"
DRAIN_SECONDS: Final = 10.0
# Requests being committed at once; beyond this the platform is told to come back (503 + Retry-After).
MAX_IN_FLIGHT: Final = 200
# A request body must arrive within this time (a platform sends a few kB at once).
BODY_SECONDS: Final = 10.0


class TooLarge(Exception):
    """A request body over the limit: refused before it is read whole."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read only up to ``limit`` bytes (TooLarge beyond; Content-Length is checked first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookServer:
    """The ASGI app: every webhook answers only after the update's turn is committed."""

    def __init__(
        self,
        service: Service,
        telegram: TelegramWebhook | None,
        zalo_bot: ZaloBotWebhook | None = None,
        zalo_oa: ZaloOAChannel | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.service = service
        self.telegram = telegram
        self.zalo_bot = zalo_bot
        self.zalo_oa = zalo_oa
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.rejected: Counter[str] = Counter()  # "<channel>: <reason>" -> count
        self.busy = 0  # requests answered 503
        self.app = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/webhook/telegram", self.telegram_update, methods=["POST"]),
                Route("/webhook/zalo", self.zalo_bot_update, methods=["POST"]),
                Route("/webhook/zalo-oa", self.zalo_oa_event, methods=["POST"]),
            ]
        )

    def _dispatchers(self) -> list[Dispatcher]:
        out = []
        if self.telegram is not None:
            out.append(self.telegram.channel.dispatcher)
        if self.zalo_bot is not None:
            out.append(self.zalo_bot.channel.dispatcher)
        if self.zalo_oa is not None:
            out.append(self.zalo_oa.dispatcher)
        return out

    async def healthz(self, request: Request) -> Response:
        dispatchers = self._dispatchers()
        return JSONResponse(
            {
                "ok": True,
                "content_version": self.service.holder.current.catalogue.version,
                "worker": self.service.pid,  # which process answered (serve --workers)
                "in_flight": self.in_flight,
                "replies_waiting": sum(d.waiting for d in dispatchers),
                "replies_superseded": sum(d.superseded for d in dispatchers),
                "rejected": dict(self.rejected),
                "busy": self.busy,
                "rate_limited": self.service.runner.limiter.dropped if self.service.runner.limiter else 0,
            }
        )

    def _reject(self, channel: str, reason: str) -> None:
        """Count and log a refused or malformed request in one line (no traceback, no body)."""
        self.rejected[f"{channel}: {reason}"] += 1
        logger.warning("%s: update refused (%s)", channel, reason)

    async def _accept(
        self, channel: str, request: Request, work: Callable[[bytes], Awaitable[Response | None]]
    ) -> Response:
        """The common path: bounded body, busy check, the channel's work, and an answer only after the commit."""
        try:
            async with asyncio.timeout(BODY_SECONDS):
                raw = await read_body(request)
        except TooLarge:
            self._reject(channel, "body too large")
            return JSONResponse({"ok": False, "error": "body too large"}, status_code=413)
        except TimeoutError:
            self._reject(channel, "body too slow")
            return JSONResponse({"ok": False, "error": "body too slow"}, status_code=408)
        except ClientDisconnect:
            return Response(status_code=400)  # the sender went away mid-body; nobody reads this answer
        # Only requests that have arrived whole count: a slow sender cannot take the places of real updates.
        if self.in_flight >= self.max_in_flight:
            self.busy += 1
            return JSONResponse({"ok": False, "error": "busy"}, status_code=503, headers={"Retry-After": "1"})
        self.in_flight += 1
        try:
            answer = await work(raw)
        except InputError as exc:
            self._reject(channel, str(exc))
            return JSONResponse({"ok": False, "error": "body is not JSON"}, status_code=400)
        except Malformed as exc:
            self._reject(channel, str(exc))  # acknowledged, so the platform does not send it again
            return JSONResponse({"ok": True})
        except StoreUnavailable as exc:
            # The database restarting: an expected moment, one line; no 200, so the platform resends.
            logger.warning("%s: update not committed (%s); the platform will resend it", channel, exc)
            return JSONResponse({"ok": False, "error": "not processed"}, status_code=503, headers={"Retry-After": "1"})
        except Exception:
            # Not committed (storage trouble): no 200, so the platform sends the update again.
            logger.exception("%s: update not committed; the platform will resend it", channel)
            return JSONResponse({"ok": False, "error": "not processed"}, status_code=500)
        finally:
            self.in_flight -= 1
        return answer or JSONResponse({"ok": True})

    async def telegram_update(self, request: Request) -> Response:
        telegram = self.telegram
        if telegram is None:
            return JSONResponse({"ok": False, "error": "telegram is not configured"}, status_code=404)
        if not telegram.authorized(request.headers.get(TELEGRAM_SECRET_HEADER)):
            return JSONResponse({"ok": False}, status_code=403)

        async def work(raw: bytes) -> None:
            await telegram.channel.accept(parse_json(raw))

        return await self._accept("telegram", request, work)

    async def zalo_bot_update(self, request: Request) -> Response:
        zalo_bot = self.zalo_bot
        if zalo_bot is None:
            return JSONResponse({"ok": False, "error": "zalo bot is not configured"}, status_code=404)
        if not zalo_bot.authorized(request.headers.get(ZALO_BOT_SECRET_HEADER)):
            return JSONResponse({"ok": False}, status_code=403)

        async def work(raw: bytes) -> None:
            update = unwrap(parse_json(raw))
            if update is None:
                raise Malformed("not a Zalo Bot update")
            await zalo_bot.channel.handle(update)

        return await self._accept("zalo-bot", request, work)

    async def zalo_oa_event(self, request: Request) -> Response:
        zalo_oa = self.zalo_oa
        if zalo_oa is None:
            return JSONResponse({"ok": False, "error": "zalo oa is not configured"}, status_code=404)

        async def work(raw: bytes) -> Response | None:
            # The signature covers these exact bytes, read no further than the limit.
            event = verified(raw, request.headers.get(ZALO_OA_SIGNATURE_HEADER), zalo_oa.secret)
            if event is None:
                return JSONResponse({"ok": False}, status_code=401)
            await zalo_oa.handle(event)  # Zalo wants an answer within about 2 seconds: a commit takes milliseconds
            return None

        return await self._accept("zalo-oa", request, work)

    async def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """Give the replies still queued up to ``seconds`` to go out; the rest is resent at the next start."""
        await asyncio.gather(*(d.drain(seconds) for d in self._dispatchers()))


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear error when the port is taken or the address is wrong."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BotError(f"Không dùng được địa chỉ {host}: {exc.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return _listen(sock, address, f"Không mở được cổng {port} trên {host}: {{}} (có thể cổng đang bận).")


def _listen(sock: socket.socket, address: tuple[Any, ...] | str, error: str) -> socket.socket:
    """Bind and listen, or close the socket and raise ``error`` (with the OS reason) as one line."""
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise BotError(error.format(exc.strerror)) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def bind_unix(path: str) -> socket.socket:
    """A listening Unix socket (for a reverse proxy on the same machine), or one clear error."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # left over from a process that is gone
        else:
            probe.close()
            raise BotError(f"Đã có một tiến trình khác đang lắng nghe trên {path}.")
    return _listen(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path, f"Không mở được Unix socket {path}: {{}}.")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours sets ``should_exit`` and then we drain."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    server: WebhookServer,
    sock: socket.socket,
    stop: asyncio.Event | None = None,
    drain_seconds: float = DRAIN_SECONDS,
    owner: bool = True,
) -> None:
    """Run on a bound socket until SIGINT/SIGTERM (or ``stop``); then stop taking requests and drain.

    ``owner``: this process bound the socket (a worker of `serve --workers` leaves a Unix socket's file
    to the parent)."""
    name = sock.getsockname()
    where = f"unix:{name}" if isinstance(name, str) else f"http://{name[0]}:{name[1]}"
    # log_config=None: uvicorn logs through our handlers (and their privacy filter), not its own.
    config = uvicorn.Config(server.app, lifespan="off", log_level="warning", access_log=False, log_config=None)
    http = _Server(config)
    stop = stop or asyncio.Event()
    stop_on_signals(stop)

    async def stop_when_asked() -> None:
        await stop.wait()
        http.should_exit = True

    watcher = asyncio.ensure_future(stop_when_asked())
    logger.warning("serving webhooks on %s (GET /healthz)", where)
    try:
        await http.serve(sockets=[sock])
    finally:
        watcher.cancel()
        await server.drain(drain_seconds)
        sock.close()
        if owner and isinstance(name, str) and name:
            with contextlib.suppress(OSError):
                os.unlink(name)
