"""Telegram channel: python-telegram-bot as transport only; the engine owns the conversation.

Updates are checked field by field (``parse_update``) and become ``Incoming``
messages for the runner, which deduplicates by ``update_id`` in the database,
locks per user, runs the engine and commits; only then is the update
acknowledged (webhook 200, or the polling offset moved past it). Replies become
messages with one inline button per row, sent in the background within the
flood limits (about 1 message per second per chat, 30 per second overall),
waiting out HTTP 429 ``retry_after`` instead of dropping a reply. No "typing…"
action is sent: a reply is committed within milliseconds of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

# Opt in to the next major version's timedelta ``retry_after`` (22.x warns otherwise).
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.request import BaseRequest

from bot.channels.common import Malformed, clean, is_int, stop_on_signals
from bot.delivery import Dispatcher, Progress
from bot.engine import Reply
from bot.engine import split_text as split_pieces
from bot.errors import BotError
from bot.privacy import keep_tokens_out_of_http_logs
from bot.runner import Incoming, Runner

logger = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
DEFAULT_BASE_URL: Final = "https://api.telegram.org/bot"
ALLOWED_UPDATES: Final = ["message", "edited_message", "callback_query"]
MAX_TEXT: Final = 4096
MAX_CALLBACK_BYTES: Final = 64
MAX_CALLBACK_ID: Final = 128
MAX_START_PAYLOAD: Final = 64  # Telegram's limit for deep-link parameters
POLL_SECONDS: Final = 30
MAX_PENDING_ANSWERS: Final = 256
MAX_TRACKED_CHATS: Final = 10_000
DRAIN_SECONDS: Final = 10.0
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
    return split_pieces(text, limit)


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


@dataclass(frozen=True)
class Parsed:
    """An update as the bot uses it: the message for the runner (None when ignored) and a tap to answer."""

    update_id: int
    incoming: Incoming | None
    callback_id: str | None = None


def _private_chat(message: Any, where: str) -> int | None:
    """The chat id of a message in a private chat; None for groups and channels; Malformed if badly typed."""
    if not isinstance(message, dict):
        raise Malformed(f"{where} is not an object")
    chat = message.get("chat")
    if not isinstance(chat, dict) or not is_int(chat.get("id")) or not isinstance(chat.get("type"), str):
        raise Malformed(f"{where}.chat has no integer id and string type")
    return int(chat["id"]) if chat["type"] == ChatType.PRIVATE else None


def parse_update(data: Any) -> Parsed:
    """Check the fields the bot uses, with their types, and say what the update means; Malformed otherwise."""
    if not isinstance(data, dict) or not is_int(data.get("update_id")):
        raise Malformed("not an update (no integer update_id)")
    update_id = int(data["update_id"])
    event_id = str(update_id)
    query = data.get("callback_query")
    if query is not None:
        if not isinstance(query, dict) or not isinstance(query.get("id"), str):
            raise Malformed("callback_query without a string id")
        callback_id = clean(query["id"][:MAX_CALLBACK_ID])
        payload = query.get("data")
        if payload is not None and not isinstance(payload, str):
            raise Malformed("callback_query.data is not a string")
        message = query.get("message")
        chat = _private_chat(message, "callback_query.message") if message is not None else None
        if chat is None or not payload:
            return Parsed(update_id, None, callback_id)
        payload = clean(payload[:MAX_CALLBACK_BYTES])
        if payload.startswith("n:"):
            return Parsed(
                update_id, Incoming(CHANNEL, str(chat), kind="text", text=payload[2:], event_id=event_id), callback_id
            )
        return Parsed(
            update_id, Incoming(CHANNEL, str(chat), kind="choice", choice_id=payload, event_id=event_id), callback_id
        )
    if "edited_message" in data:
        chat = _private_chat(data["edited_message"], "edited_message")
        return Parsed(update_id, Incoming(CHANNEL, str(chat), kind="edit", event_id=event_id) if chat else None)
    if "message" not in data:
        return Parsed(update_id, None)  # an update type we did not ask for
    message = data["message"]
    chat = _private_chat(message, "message")
    text = message.get("text")
    if text is not None and not isinstance(text, str):
        raise Malformed("message.text is not a string")
    if chat is None:
        return Parsed(update_id, None)
    user = str(chat)
    if text is None:
        return Parsed(update_id, Incoming(CHANNEL, user, kind="unsupported", event_id=event_id))
    # Telegram never sends more than 4,096 characters; a longer text is not Telegram's, and the
    # engine answers it as too long without reading it.
    text = clean(text[: MAX_TEXT + 1])
    command = _command(text)
    if command is not None and command[0] == "/start":
        payload = command[1][:MAX_START_PAYLOAD] or None
        return Parsed(
            update_id, Incoming(CHANNEL, user, kind="start", text=text, start_payload=payload, event_id=event_id)
        )
    if command is not None:
        return Parsed(update_id, Incoming(CHANNEL, user, kind="text", text=command[0], event_id=event_id))
    return Parsed(update_id, Incoming(CHANNEL, user, kind="text", text=text, event_id=event_id))


def to_incoming(update: Update) -> Incoming | None:
    """What the runner should handle for a python-telegram-bot ``Update`` (None when ignored)."""
    try:
        return parse_update(update.to_dict()).incoming
    except Malformed:
        return None


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

    def _prune(self) -> None:
        """Forget chats whose burst has refilled (state would otherwise grow with every chat ever seen)."""
        now = self._clock()
        for chat, (tokens, at) in list(self._tokens.items()):
            if tokens + (now - at) / self._interval >= self._burst:
                del self._tokens[chat]
        for chat, until in list(self._blocked_until.items()):
            if until <= now:
                del self._blocked_until[chat]

    async def send(
        self,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None,
        before: Callable[[], Awaitable[None]] | None = None,
        refused: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """True when Telegram accepted the message. One chat's messages are sent by one caller at a time
        (the dispatcher's worker for that chat), so they keep their order. ``before`` is awaited once the
        rate limits let the message go, just before its request (to record it as on its way), and
        ``refused`` when Telegram certainly did not take it (a flood limit: it is sent again)."""
        if len(self._tokens) > MAX_TRACKED_CHATS:
            self._prune()
        for attempt in range(1, MAX_SEND_ATTEMPTS + 1):
            await self._chat_slot(chat_id)
            await self._overall_slot()
            if before is not None:
                await before()
            try:
                await self._send(chat_id=chat_id, text=text, reply_markup=markup)
                return True
            except RetryAfter as exc:
                delay = exc.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
                logger.warning("telegram flood limit: waiting %.0f s before resending", seconds)
                self._blocked_until[chat_id] = self._clock() + seconds
                if refused is not None:
                    await refused()
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
    """Translates Telegram updates for the runner and the runner's replies for Telegram.

    ``accept`` returns once the update's turn is committed: only then may the webhook
    answer 200 or the poller confirm the update. Replies go out in the background
    through the dispatcher, within the flood limits.
    """

    def __init__(self, runner: Runner, bot: Bot, sender: Sender | None = None) -> None:
        self.runner = runner
        self.bot = bot
        self.sender = sender or Sender(bot.send_message)
        self.dispatcher = Dispatcher(CHANNEL, runner, self.deliver)
        self._answers: set[asyncio.Task[None]] = set()

    async def accept(self, data: Any) -> None:
        """Commit the update's turn and queue its replies; Malformed for an update we cannot use."""
        parsed = parse_update(data)  # Malformed goes to the caller, which counts and acknowledges it
        if parsed.callback_id is not None:
            self._answer(parsed.callback_id)
        if parsed.incoming is not None:
            await self.runner.handle_for_delivery(parsed.incoming, on_commit=self.dispatcher.submit)

    def _answer(self, callback_id: str) -> None:
        """Every tap is answered, even a stale or repeated one, or its button keeps spinning."""
        if len(self._answers) >= MAX_PENDING_ANSWERS:
            return  # a flood of taps: Telegram stops the spinner by itself after a while

        async def answer() -> None:
            with contextlib.suppress(TelegramError):
                await self.bot.answer_callback_query(callback_id)

        task = asyncio.ensure_future(answer())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def deliver(self, chat: str, replies: Sequence[Reply], progress: Progress | None = None) -> None:
        """One turn's messages, in order, from where ``progress`` says it stopped (the dispatcher sends one
        turn per chat at a time)."""
        chat_id, progress = int(chat), progress or Progress()
        for index, (text, markup) in enumerate(m for reply in replies for m in render(reply)):
            if index >= progress.done:
                await self.sender.send(
                    chat_id,
                    text,
                    markup,
                    before=functools.partial(progress.going, index),
                    refused=functools.partial(progress.refused, index),
                )

    async def recover(self) -> int:
        """Queue replies committed before a crash but never sent; they go out in the background."""
        return await self.dispatcher.recover()

    async def close(self, seconds: float = DRAIN_SECONDS) -> None:
        await self.dispatcher.drain(seconds)
        if self._answers:
            await asyncio.wait(set(self._answers), timeout=2)


def build_bot(token: str, base_url: str = DEFAULT_BASE_URL, request: BaseRequest | None = None) -> Bot:
    """python-telegram-bot's ``Bot``: the HTTP transport to the Bot API, nothing more."""
    keep_tokens_out_of_http_logs()
    return Bot(token, base_url=base_url, request=request, get_updates_request=request)


async def start_bot(bot: Bot, base_url: str) -> None:
    """Check the token (getMe); a wrong token or no network is one clear error."""
    try:
        await bot.initialize()
    except InvalidToken:
        raise BotError(
            "TELEGRAM_BOT_TOKEN không hợp lệ: Telegram từ chối mã này. Hãy lấy lại mã từ BotFather."
        ) from None
    except NetworkError as exc:
        raise BotError(f"Không kết nối được tới Telegram ({base_url}): {exc}.") from None


async def register_commands(bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(name, help_) for name, help_ in COMMANDS])


async def run_polling(
    runner: Runner,
    token: str,
    base_url: str,
    stop: asyncio.Event | None = None,
    request: BaseRequest | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Long polling until SIGINT/SIGTERM, or until ``stop`` is set (a caller passing ``stop`` handles the
    signals itself).

    The offset that confirms updates to Telegram only moves past a batch once every
    update in it is committed, so a crash in between means Telegram sends the batch
    again and the processed ids drop what was already handled. ``request`` replaces
    the HTTP layer (tests pass one over a fake Bot API).
    """
    bot = build_bot(token, base_url, request)
    channel = TelegramChannel(runner, bot)
    if stop is None:
        stop = asyncio.Event()
        stop_on_signals(stop)
    await start_bot(bot, base_url)
    try:
        await register_commands(bot)
        # A webhook left from `serve` would make getUpdates fail with 409 Conflict.
        await bot.delete_webhook(drop_pending_updates=False)
        await channel.recover()
        logger.warning("telegram bot @%s is polling; Ctrl+C to stop", bot.username)
        offset: int | None = None
        failures = 0
        while not stop.is_set():
            poll = asyncio.ensure_future(
                bot.get_updates(offset=offset, timeout=POLL_SECONDS, allowed_updates=ALLOWED_UPDATES)
            )
            stopped = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopped not in done:
                stopped.cancel()
            if poll not in done:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await poll
                break
            try:
                # The same field-by-field check as a webhook body, on the update as Telegram sent it.
                updates = [u.to_dict() for u in poll.result()]
                offset = await _process_batch(channel, updates, offset)
                failures = 0
            except InvalidToken:
                raise BotError("TELEGRAM_BOT_TOKEN đã bị thu hồi hoặc đặt lại. Hãy lấy lại mã từ BotFather.") from None
            except TelegramError as exc:
                failures += 1
                logger.warning("telegram getUpdates failed (%s); retrying", exc)
                await sleep(min(2.0**failures, 60.0))
            except Exception:  # a storage failure: nothing confirmed, the batch comes again
                failures += 1
                logger.exception("telegram: a batch of updates could not be committed; it will be fetched again")
                await sleep(min(2.0**failures, 60.0))
    finally:
        await channel.close()
        await bot.shutdown()


async def _process_batch(channel: TelegramChannel, updates: list[Any], offset: int | None) -> int | None:
    """Commit every update of a batch (one citizen's in order, citizens side by side); the next offset."""
    ids = [u["update_id"] for u in updates if isinstance(u, dict) and is_int(u.get("update_id"))]
    results = await asyncio.gather(*(_accept_logged(channel, u) for u in updates), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    return max(ids) + 1 if ids else offset


async def _accept_logged(channel: TelegramChannel, update: Any) -> None:
    try:
        await channel.accept(update)
    except Malformed as exc:
        logger.warning("telegram: malformed update ignored (%s)", exc)


class TelegramWebhook:
    """Telegram over a webhook: the shared HTTP server (bot/server.py) hands each request body here."""

    def __init__(self, channel: TelegramChannel, secret: str) -> None:
        if not secret:
            raise BotError(
                "Cần đặt TELEGRAM_WEBHOOK_SECRET để nhận Telegram qua webhook (1-256 ký tự A-Z a-z 0-9 _ -)."
            )
        self.channel = channel
        self.bot = channel.bot
        self.secret = secret

    def authorized(self, header: str | None) -> bool:
        """The X-Telegram-Bot-Api-Secret-Token header, compared in constant time."""
        return header is not None and hmac.compare_digest(header.encode(), self.secret.encode())

    async def start(self, webhook_url: str | None) -> None:
        await start_bot(self.bot, str(self.bot.base_url))
        try:
            await register_commands(self.bot)
            if webhook_url:
                await self.bot.set_webhook(webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
        except TelegramError as exc:
            await self.bot.shutdown()
            raise BotError(f"Telegram không nhận đăng ký webhook {webhook_url or ''}: {exc}.") from None
        await self.channel.recover()

    async def stop(self, seconds: float = DRAIN_SECONDS) -> None:
        await self.channel.close(seconds)
        await self.bot.shutdown()
