"""One HTTP server for every webhook channel: ``python -m bot serve``.

Routes: ``POST /webhook/telegram`` (secret header checked in constant time, 403 and
nothing processed otherwise) and ``GET /healthz``. Requests are answered at once and
processed in the background; on shutdown the server stops taking requests and
drains the work in flight before closing the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Coroutine, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.common import stop_on_signals
from bot.channels.telegram import TelegramWebhook
from bot.channels.zalo_bot import ZaloBotWebhook, unwrap
from bot.channels.zalo_oa import ZaloOAChannel, signature_ok
from bot.errors import BotError
from bot.service import Service

logger = logging.getLogger(__name__)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ZALO_BOT_SECRET_HEADER = "X-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ZALO_OA_SIGNATURE_HEADER = "X-ZEvent-Signature"
DRAIN_SECONDS = 30.0


class WebhookServer:
    """The ASGI app and the background work it started."""

    def __init__(
        self,
        service: Service,
        telegram: TelegramWebhook | None,
        zalo_bot: ZaloBotWebhook | None = None,
        zalo_oa: ZaloOAChannel | None = None,
    ) -> None:
        self.service = service
        self.telegram = telegram
        self.zalo_bot = zalo_bot
        self.zalo_oa = zalo_oa
        self.tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/webhook/telegram", self.telegram_update, methods=["POST"]),
                Route("/webhook/zalo", self.zalo_bot_update, methods=["POST"]),
                Route("/webhook/zalo-oa", self.zalo_oa_event, methods=["POST"]),
            ]
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(
            {"ok": True, "content_version": self.service.holder.current.catalogue.version, "in_flight": len(self.tasks)}
        )

    async def telegram_update(self, request: Request) -> Response:
        if self.telegram is None:
            return JSONResponse({"ok": False, "error": "telegram is not configured"}, status_code=404)
        if not self.telegram.authorized(request.headers.get(TELEGRAM_SECRET_HEADER)):
            return JSONResponse({"ok": False}, status_code=403)
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"ok": False, "error": "body is not JSON"}, status_code=400)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return JSONResponse({"ok": False, "error": "not a Telegram update"}, status_code=400)
        self.spawn(self.telegram.process(data))
        return JSONResponse({"ok": True})

    async def zalo_bot_update(self, request: Request) -> Response:
        if self.zalo_bot is None:
            return JSONResponse({"ok": False, "error": "zalo bot is not configured"}, status_code=404)
        if not self.zalo_bot.authorized(request.headers.get(ZALO_BOT_SECRET_HEADER)):
            return JSONResponse({"ok": False}, status_code=403)
        try:
            update = unwrap(await request.json())
        except ValueError:
            update = None
        if update is None:
            return JSONResponse({"ok": False, "error": "not a Zalo Bot update"}, status_code=400)
        self.spawn(self.zalo_bot.channel.handle(update))
        return JSONResponse({"ok": True})

    async def zalo_oa_event(self, request: Request) -> Response:
        if self.zalo_oa is None:
            return JSONResponse({"ok": False, "error": "zalo oa is not configured"}, status_code=404)
        raw = await request.body()  # the signature covers these exact bytes
        if not signature_ok(raw, request.headers.get(ZALO_OA_SIGNATURE_HEADER), self.zalo_oa.secret):
            return JSONResponse({"ok": False}, status_code=401)
        event = json.loads(raw)
        self.spawn(self.zalo_oa.handle(event))  # Zalo wants an answer within about 2 seconds
        return JSONResponse({"ok": True})

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(self._logged(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            logger.exception("webhook update failed")

    async def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """Wait for the updates being processed (new requests are no longer accepted)."""
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=seconds)
            if pending:
                logger.error("%d webhook updates still running after %.0f s; stopping anyway", len(pending), seconds)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear error when the port is taken or the address is wrong."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BotError(f"Không dùng được địa chỉ {host}: {exc.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise BotError(f"Không mở được cổng {port} trên {host}: {exc.strerror} (có thể cổng đang bận).") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours sets ``should_exit`` and then we drain."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(server: WebhookServer, sock: socket.socket, stop: asyncio.Event | None = None) -> None:
    """Run on a bound socket until SIGINT/SIGTERM (or ``stop``); then stop taking requests and drain."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(server.app, lifespan="off", log_level="warning", access_log=False)
    http = _Server(config)
    stop = stop or asyncio.Event()
    stop_on_signals(stop)

    async def stop_when_asked() -> None:
        await stop.wait()
        http.should_exit = True

    watcher = asyncio.ensure_future(stop_when_asked())
    logger.warning("serving webhooks on http://%s:%d (GET /healthz)", host, port)
    try:
        await http.serve(sockets=[sock])
    finally:
        watcher.cancel()
        await server.drain()
        sock.close()
