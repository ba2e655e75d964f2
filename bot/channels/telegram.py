"""Telegram channel: python-telegram-bot as transport only; the engine owns the conversation.

Updates become ``Incoming`` messages for the runner (which deduplicates by
``update_id`` in the database, locks per user, runs the engine and commits);
replies become messages with one inline button per row. Sending respects the
flood limits (about 1 message per second per chat, 30 per second overall) and
waits out HTTP 429 ``retry_after`` instead of dropping a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

# Opt in to the next major version's timedelta ``retry_after`` (22.x warns otherwise).
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest

from bot.channels.common import split, stop_on_signals
from bot.engine import Reply
from bot.errors import BotError
from bot.privacy import keep_tokens_out_of_http_logs
from bot.runner import Incoming, Runner

logger = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
DEFAULT_BASE_URL: Final = "https://api.telegram.org/bot"
ALLOWED_UPDATES: Final = ["message", "edited_message", "callback_query"]
MAX_TEXT: Final = 4096
MAX_CALLBACK_BYTES: Final = 64
# Shown in the Telegram menu next to the text box (setMyCommands).
COMMANDS: Final = (
    ("start", "Bắt đầu, chào lại hoặc làm tiếp"),
    ("menu", "Về menu chính"),
    ("help", "Gặp cán bộ, số điện thoại hỗ trợ"),
    ("cancel", "Dừng thủ tục đang làm"),
)
PER_CHAT_INTERVAL: Final = 1.0
PER_CHAT_BURST: Final = 3
OVERALL_PER_SECOND: Final = 30
MAX_SEND_ATTEMPTS: Final = 6


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Telegram's 4,096-character pieces, cut at paragraphs, then lines, then words."""
    return split(text, limit)


def callback_data(choice_id: str, index: int) -> str:
    """The choice id when it fits Telegram's 64 bytes, else its number (typed numbers select choices too)."""
    return choice_id if len(choice_id.encode()) <= MAX_CALLBACK_BYTES else f"n:{index}"


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """One full-width button per row: easier to read and to hit on a phone."""
    if not reply.choices:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(c.label, callback_data=callback_data(c.id, i))] for i, c in enumerate(reply.choices, 1)]
    )


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """A reply as Telegram messages: text (with its links) split at 4,096 characters; buttons on the last."""
    text = reply.text
    if reply.links:
        text += "\n\n" + "\n".join(f"🔗 {link}" for link in reply.links)
    pieces = split_text(text or " ")
    markup = keyboard(reply)
    return [(piece, markup if i == len(pieces) - 1 else None) for i, piece in enumerate(pieces)]


def _command(text: str) -> tuple[str, str] | None:
    """("/start", "payload") for a command message, the bot's @name removed."""
    if not text.startswith("/"):
        return None
    head, _, rest = text.strip().partition(" ")
    return head.split("@", 1)[0].lower(), rest.strip()


def to_incoming(update: Update) -> Incoming | None:
    """What the runner should handle for an update, or None for updates the bot ignores."""
    event_id = str(update.update_id)
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        if chat is None or chat.type != ChatType.PRIVATE:
            return None
        data = query.data or ""
        if data.startswith("n:"):
            return Incoming(CHANNEL, str(chat.id), kind="text", text=data[2:], event_id=event_id)
        return Incoming(CHANNEL, str(chat.id), kind="choice", choice_id=data, event_id=event_id)
    if update.edited_message is not None:
        chat = update.edited_message.chat
        if chat.type != ChatType.PRIVATE:
            return None
        return Incoming(CHANNEL, str(chat.id), kind="edit", event_id=event_id)
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE:
        return None
    user = str(message.chat.id)
    if message.text is None:
        return Incoming(CHANNEL, user, kind="unsupported", event_id=event_id)
    command = _command(message.text)
    if command is not None and command[0] == "/start":
        return Incoming(
            CHANNEL, user, kind="start", text=message.text, start_payload=command[1] or None, event_id=event_id
        )
    if command is not None:
        return Incoming(CHANNEL, user, kind="text", text=command[0], event_id=event_id)
    return Incoming(CHANNEL, user, kind="text", text=message.text, event_id=event_id)


class Sender:
    """Sends messages within Telegram's flood limits and retries instead of dropping.

    Per chat: a burst of up to ``burst`` messages, then one per ``per_chat_interval``
    seconds; overall at most ``overall_per_second``. A 429 waits ``retry_after`` seconds
    and resends; network errors back off. A chat's messages go out in order.
    """

    def __init__(
        self,
        send: Callable[..., Awaitable[Any]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        per_chat_interval: float = PER_CHAT_INTERVAL,
        burst: int = PER_CHAT_BURST,
        overall_per_second: int = OVERALL_PER_SECOND,
    ) -> None:
        self._send = send
        self._sleep = sleep
        self._clock = clock
        self._interval = per_chat_interval
        self._burst = burst
        self._overall = overall_per_second
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._tokens: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self._blocked_until: dict[int, float] = {}
        self._recent: list[float] = []
        self._global = asyncio.Lock()

    async def _chat_slot(self, chat_id: int) -> None:
        while True:
            now = self._clock()
            blocked = self._blocked_until.get(chat_id, 0.0) - now
            if blocked > 0:
                await self._sleep(blocked)
                continue
            tokens, at = self._tokens.get(chat_id, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - at) / self._interval)
            if tokens >= 1.0:
                self._tokens[chat_id] = (tokens - 1.0, now)
                return
            await self._sleep((1.0 - tokens) * self._interval)

    async def _overall_slot(self) -> None:
        async with self._global:
            while True:
                now = self._clock()
                self._recent = [t for t in self._recent if now - t < 1.0]
                if len(self._recent) < self._overall:
                    self._recent.append(now)
                    return
                await self._sleep(1.0 - (now - self._recent[0]))

    async def send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> bool:
        """True when Telegram accepted the message."""
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            for attempt in range(1, MAX_SEND_ATTEMPTS + 1):
                await self._chat_slot(chat_id)
                await self._overall_slot()
                try:
                    await self._send(chat_id=chat_id, text=text, reply_markup=markup)
                    return True
                except RetryAfter as exc:
                    delay = exc.retry_after
                    seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
                    logger.warning("telegram flood limit: waiting %.0f s before resending", seconds)
                    self._blocked_until[chat_id] = self._clock() + seconds
                except Forbidden:
                    logger.info("telegram: a user blocked the bot; reply not delivered")
                    return False
                except BadRequest as exc:  # a NetworkError subclass, but resending cannot help
                    logger.error("telegram rejected a reply: %s", exc)
                    return False
                except NetworkError as exc:
                    logger.warning("telegram send failed (attempt %d): %s", attempt, exc)
                    await self._sleep(min(2.0**attempt, 30.0))
            logger.error("telegram: reply dropped after %d attempts", MAX_SEND_ATTEMPTS)
            return False


class TelegramChannel:
    """Translates Telegram updates for the runner and the runner's replies for Telegram."""

    def __init__(self, runner: Runner, sender: Sender | None = None) -> None:
        self.runner = runner
        self.sender = sender
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn_locks: dict[int, tuple[asyncio.Lock, int]] = {}  # chat -> (lock, turns using it)

    def attach(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        if self.sender is None:
            self.sender = Sender(app.bot.send_message)
        app.add_handler(TypeHandler(Update, self.on_update))

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = to_incoming(update)
        query = update.callback_query
        if query is not None:
            # Always answer, even a stale or repeated tap, or the button keeps spinning; in the
            # background, so the turn reaches the runner before anything is awaited (keeps order).
            self._background(query.answer())
        if incoming is None:
            return
        chat_id = int(incoming.user_id)
        if incoming.kind in ("text", "choice", "start"):
            self._background(context.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING))
        delivery = await self.runner.handle_for_delivery(incoming)
        if delivery is None or not delivery.replies:
            return  # a redelivered update: handled once already
        await self.deliver(chat_id, delivery.replies)
        await self.runner.delivered(delivery)

    async def resend_pending(self) -> int:
        """Replies committed before a crash but never sent: send them now (at start)."""
        pending = await self.runner.pending(CHANNEL)
        for outbox_id, chat, replies in pending:
            await self.deliver(int(chat), replies)
            await self.runner.store.outbox_done(outbox_id)
        return len(pending)

    def _background(self, call: Awaitable[Any]) -> None:
        async def quietly() -> None:
            with contextlib.suppress(TelegramError):
                await call

        task = asyncio.ensure_future(quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver(self, chat_id: int, replies: Sequence[Reply]) -> None:
        """A turn's messages go out together: another turn of the same chat waits its turn."""
        assert self.sender is not None
        lock, users = self._turn_locks.get(chat_id, (asyncio.Lock(), 0))
        self._turn_locks[chat_id] = (lock, users + 1)
        try:
            async with lock:
                for reply in replies:
                    for text, markup in render(reply):
                        await self.sender.send(chat_id, text, markup)
        finally:
            lock, users = self._turn_locks[chat_id]
            if users == 1:
                del self._turn_locks[chat_id]
            else:
                self._turn_locks[chat_id] = (lock, users - 1)


def build_application(
    token: str,
    base_url: str = DEFAULT_BASE_URL,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    polling: bool = True,
) -> Application[Any, Any, Any, Any, Any, Any]:
    keep_tokens_out_of_http_logs()
    builder = ApplicationBuilder().token(token).base_url(base_url).concurrent_updates(64)
    if request is not None:
        builder = builder.request(request)
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    if not polling:
        builder = builder.updater(None)
    return builder.build()


async def register_commands(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    await app.bot.set_my_commands([BotCommand(name, help_) for name, help_ in COMMANDS])


async def run_polling(
    runner: Runner,
    token: str,
    base_url: str,
    stop: asyncio.Event | None = None,
    request: BaseRequest | None = None,
) -> None:
    """Long polling until SIGINT/SIGTERM (or ``stop``); unknown token or no network is one clear error.

    ``request`` replaces the HTTP layer (tests pass one over a fake Bot API).
    """
    app = build_application(token, base_url, request=request, get_updates_request=request)
    channel = TelegramChannel(runner)
    channel.attach(app)
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    try:
        await app.initialize()
    except InvalidToken:
        raise BotError(
            "TELEGRAM_BOT_TOKEN không hợp lệ: Telegram từ chối mã này. Hãy lấy lại mã từ BotFather."
        ) from None
    except NetworkError as exc:
        raise BotError(f"Không kết nối được tới Telegram ({base_url}): {exc}.") from None
    try:
        await register_commands(app)
        await channel.resend_pending()
        # A webhook left from `serve` would make getUpdates fail with 409 Conflict.
        await app.bot.delete_webhook(drop_pending_updates=False)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        me = app.bot.username
        logger.warning("telegram bot @%s is polling; Ctrl+C to stop", me)
        await stop.wait()
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()


class TelegramWebhook:
    """Telegram over a webhook: the shared HTTP server (bot/server.py) hands each request body here."""

    def __init__(
        self, app: Application[Any, Any, Any, Any, Any, Any], secret: str, channel: TelegramChannel | None = None
    ) -> None:
        self.channel = channel
        if not secret:
            raise BotError(
                "Cần đặt TELEGRAM_WEBHOOK_SECRET để nhận Telegram qua webhook (1-256 ký tự A-Z a-z 0-9 _ -)."
            )
        self.app = app
        self.secret = secret

    def authorized(self, header: str | None) -> bool:
        """The X-Telegram-Bot-Api-Secret-Token header, compared in constant time."""
        return header is not None and hmac.compare_digest(header.encode(), self.secret.encode())

    async def process(self, data: dict[str, Any]) -> None:
        await self.app.process_update(Update.de_json(data, self.app.bot))

    async def start(self, webhook_url: str | None) -> None:
        try:
            await self.app.initialize()
        except InvalidToken:
            raise BotError(
                "TELEGRAM_BOT_TOKEN không hợp lệ: Telegram từ chối mã này. Hãy lấy lại mã từ BotFather."
            ) from None
        except NetworkError as exc:
            raise BotError(f"Không kết nối được tới Telegram: {exc}.") from None
        try:
            await register_commands(self.app)
            if webhook_url:
                await self.app.bot.set_webhook(webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
        except TelegramError as exc:
            await self.app.shutdown()
            raise BotError(f"Telegram không nhận đăng ký webhook {webhook_url or ''}: {exc}.") from None
        await self.app.start()
        if self.channel is not None:
            await self.channel.resend_pending()

    async def stop(self) -> None:
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
