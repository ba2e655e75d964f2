"""Zalo Bot Platform channel: our own small async client on httpx, long polling and the webhook route.

The platform has no buttons: choices are a numbered list, and a typed number or
label selects a choice just as on the console. Replies are split at 2,000
characters. ``getUpdates`` has no offset, so replayed updates are dropped by
message id (or, without one, a digest of the update) through the runner's
persisted dedupe. A webhook is answered only after the turn is committed. The
token is part of every URL and never appears in logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

from bot.channels.common import Malformed, clean, digest_id, stop_on_signals
from bot.delivery import Dispatcher, Progress
from bot.engine import Reply
from bot.engine import split_text as split_pieces
from bot.errors import BotError
from bot.privacy import keep_tokens_out_of_http_logs
from bot.runner import Incoming, Runner

logger = logging.getLogger(__name__)

# Reminders keep the Zalo OA's free-reply rule here (see ZaloBotChannel.can_remind).
REPLY_WINDOW_SECONDS: Final = 48 * 3600
CHANNEL: Final = "zalo-bot"
DEFAULT_BASE_URL: Final = "https://bot-api.zaloplatforms.com"
MAX_TEXT: Final = 2000
MAX_ID_CHARS: Final = 128
POLL_SECONDS: Final = 30
DRAIN_SECONDS: Final = 10.0
POLL_COMMIT_ATTEMPTS: Final = 5
CHOOSE_HINT: Final = "Bạn gõ số thứ tự để chọn (ví dụ: 1)."


class ZaloError(Exception):
    """An error answer of the Zalo Bot API (the token never appears in it)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"Zalo Bot API {status}: {description}")
        self.status = status
        self.description = description


class ZaloBotClient:
    """The nine JSON methods of the Zalo Bot Platform (``<base>/bot<token>/<method>``)."""

    def __init__(
        self, token: str, base_url: str = DEFAULT_BASE_URL, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        keep_tokens_out_of_http_logs()
        self._client = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/bot{token}/", transport=transport, timeout=POLL_SECONDS + 15
        )

    async def call(self, method: str, payload: Mapping[str, Any] | None = None) -> Any:
        try:
            response = await self._client.post(method, json=dict(payload or {}))
        except httpx.HTTPError as exc:
            raise ZaloError(0, type(exc).__name__) from None  # str(exc) may contain the URL, so the token
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and isinstance(body, dict) and body.get("ok", True):
            return body.get("result", body)
        description = body.get("description", "") if isinstance(body, dict) else ""
        raise ZaloError(response.status_code, str(description) or response.reason_phrase)

    async def get_me(self) -> Any:
        return await self.call("getMe")

    async def get_updates(self, poll_seconds: int = POLL_SECONDS) -> list[dict[str, Any]]:
        """Waiting updates; an idle long poll (HTTP 408) is an empty list, not an error."""
        try:
            result = await self.call("getUpdates", {"timeout": str(poll_seconds)})
        except ZaloError as exc:
            if exc.status == 408:
                return []
            raise
        if isinstance(result, list):
            return [u for u in result if isinstance(u, dict)]
        return [result] if isinstance(result, dict) and result else []

    async def set_webhook(self, url: str, secret: str) -> Any:
        return await self.call("setWebhook", {"url": url, "secret_token": secret})

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook")

    async def get_webhook_info(self) -> Any:
        return await self.call("getWebhookInfo")

    async def send_message(self, chat_id: str, text: str) -> Any:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})

    async def send_photo(self, chat_id: str, photo_url: str, caption: str = "") -> Any:
        payload = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            payload["caption"] = caption
        return await self.call("sendPhoto", payload)

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> Any:
        return await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    async def close(self) -> None:
        await self._client.aclose()


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Zalo's 2,000-character pieces, cut at paragraphs, then lines, then words."""
    return split_pieces(text, limit)


def render(reply: Reply) -> list[str]:
    """A reply as Zalo messages: text, links, then the choices as a numbered list; 2,000 characters each."""
    parts = [reply.text] if reply.text else []
    if reply.links:
        parts.append("\n".join(f"🔗 {link}" for link in reply.links))
    if reply.choices:
        parts.append("\n".join(f"{i}. {c.label}" for i, c in enumerate(reply.choices, 1)) + "\n\n" + CHOOSE_HINT)
    return split_text("\n\n".join(parts) or " ")


def unwrap(body: Any) -> dict[str, Any] | None:
    """A webhook body, either ``{"ok": true, "result": {...}}`` or the bare update."""
    if isinstance(body, dict) and isinstance(body.get("result"), dict) and "event_name" not in body:
        body = body["result"]
    return body if isinstance(body, dict) and "event_name" in body else None


def _id(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed(f"{where} is not a string or number")
    return clean(str(value)[:MAX_ID_CHARS]) or None


def to_incoming(update: Any) -> Incoming | None:
    """What the runner should handle, or None (group chats, events without a message).

    Malformed when a field we use has the wrong type. An update without ``message_id``
    is identified by a digest of its content, so a replay is still recognised.
    """
    if not isinstance(update, dict):
        raise Malformed("update is not an object")
    message = update.get("message")
    if message is None:
        return None
    if not isinstance(message, dict):
        raise Malformed("message is not an object")
    chat = message.get("chat", {})
    sender = message.get("from", {})
    if not isinstance(chat, dict) or not isinstance(sender, dict):
        raise Malformed("message.chat or message.from is not an object")
    chat_id = _id(chat.get("id"), "chat.id") or _id(sender.get("id"), "from.id")
    chat_type = chat.get("chat_type", "PRIVATE")
    if not isinstance(chat_type, str):
        raise Malformed("chat.chat_type is not a string")
    if not chat_id or chat_type.upper() != "PRIVATE":
        return None
    event = update.get("event_name")
    if not isinstance(event, str):
        raise Malformed("event_name is not a string")
    event = clean(event[:64])
    message_id = _id(message.get("message_id"), "message_id")
    event_id = f"{event}:{message_id}" if message_id else digest_id(event, update)
    text = message.get("text")
    if event != "message.text.received" or not isinstance(text, str):
        return Incoming(CHANNEL, chat_id, kind="unsupported", event_id=event_id)
    text = clean(text[: MAX_TEXT + 1])
    head, _, rest = text.strip().partition(" ")
    if head.lower() == "/start":
        return Incoming(
            CHANNEL, chat_id, kind="start", text=text, start_payload=rest.strip()[:64] or None, event_id=event_id
        )
    return Incoming(CHANNEL, chat_id, kind="text", text=text, event_id=event_id)


class ZaloBotChannel:
    """Translates Zalo Bot updates for the runner and replies back, resending on quota or network errors."""

    def __init__(self, runner: Runner, client: ZaloBotClient, sleep: Any = asyncio.sleep) -> None:
        self.runner = runner
        self.client = client
        self._sleep = sleep
        self.dispatcher = Dispatcher(CHANNEL, runner, self.deliver, can_remind=self.can_remind)

    async def handle(self, update: Any) -> None:
        """Commit the update's turn and queue its replies (returns once it is safe to acknowledge)."""
        incoming = to_incoming(update)  # Malformed goes to the caller, which counts and acknowledges it
        if incoming is None:
            return
        await self.runner.handle_for_delivery(incoming, on_commit=self.dispatcher.submit)

    async def can_remind(self, user_key: str, last_seen: float) -> str | None:
        """The Zalo Bot Platform documents no rule for a message the citizen did not prompt, so a reminder
        keeps the OA's: only within 48 hours of the citizen's last message; otherwise it is skipped."""
        now = self.runner.clock().timestamp()
        return "outside-window" if now - last_seen > REPLY_WINDOW_SECONDS else None

    async def recover(self) -> int:
        """Queue replies committed before a crash but never sent; they go out in the background."""
        return await self.dispatcher.recover()

    async def deliver(self, chat_id: str, replies: Sequence[Reply], progress: Progress | None = None) -> None:
        """One turn's messages, in order, from where ``progress`` says it stopped."""
        progress = progress or Progress()
        for index, text in enumerate(text for reply in replies for text in render(reply)):
            if index >= progress.done:
                await self._send(chat_id, text, index, progress)

    async def _send(self, chat_id: str, text: str, index: int, progress: Progress) -> None:
        for attempt in range(1, 7):
            try:
                await progress.going(index)
                await self.client.send_message(chat_id, text)
                return
            except ZaloError as exc:
                if exc.status == 429:
                    await progress.refused(index)  # certainly not taken: sent again, also after a restart
                if exc.status in (429, 0) or exc.status >= 500:
                    logger.warning("zalo bot send failed (%s), attempt %d; retrying", exc.status, attempt)
                    await self._sleep(min(2.0**attempt, 60.0))
                    continue
                logger.error("zalo bot rejected a reply: %s", exc)
                return
        logger.error("zalo bot: reply dropped after 6 attempts")


async def _handle_with_retries(channel: ZaloBotChannel, update: Any, stop: asyncio.Event, sleep: Any) -> None:
    """Commit one polled update. getUpdates has no offset, so a fetched update is ours alone: a storage
    failure is retried with backoff (the platform would not send it again) before it is given up."""
    for attempt in range(1, POLL_COMMIT_ATTEMPTS + 1):
        try:
            await channel.handle(update)
            return
        except Malformed as exc:
            logger.warning("zalo bot: malformed update ignored (%s)", exc)
            return
        except Exception:
            if attempt == POLL_COMMIT_ATTEMPTS or stop.is_set():
                logger.exception("zalo bot: an update could not be committed after %d attempts; given up", attempt)
                return
            logger.warning("zalo bot: an update could not be committed (attempt %d); retrying", attempt)
            await sleep(min(2.0**attempt, 30.0))


class ZaloBotWebhook:
    """The ``POST /webhook/zalo`` side: secret check in constant time, both body shapes."""

    def __init__(self, channel: ZaloBotChannel, secret: str) -> None:
        if not 8 <= len(secret) <= 256:
            raise BotError("ZALO_BOT_WEBHOOK_SECRET phải dài 8-256 ký tự.")
        self.channel = channel
        self.secret = secret

    def authorized(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self.secret.encode())


async def start_client(client: ZaloBotClient) -> None:
    """Check the token once at start: a wrong one is one clear error."""
    try:
        await client.get_me()
    except ZaloError as exc:
        if exc.status == 401:
            raise BotError(
                "ZALO_BOT_TOKEN không hợp lệ hoặc đã bị đặt lại. Hãy lấy mã mới trong Zalo Bot Creator."
            ) from None
        raise BotError(f"Không kết nối được tới Zalo Bot Platform: {exc}.") from None


async def run_polling(
    runner: Runner,
    token: str,
    base_url: str = DEFAULT_BASE_URL,
    stop: asyncio.Event | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Any = asyncio.sleep,
) -> None:
    """Long polling until SIGINT/SIGTERM, or until ``stop`` is set (a caller passing ``stop`` handles the
    signals itself)."""
    client = ZaloBotClient(token, base_url, transport)
    channel = ZaloBotChannel(runner, client, sleep)
    if stop is None:
        stop = asyncio.Event()
        stop_on_signals(stop)
    try:
        await start_client(client)
        with contextlib.suppress(ZaloError):
            await client.delete_webhook()  # polling and a webhook exclude each other
        await channel.recover()
        logger.warning("zalo bot is polling; Ctrl+C to stop")
        failures = 0
        while not stop.is_set():
            poll = asyncio.ensure_future(client.get_updates())
            stopped = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stopped in done:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError, ZaloError):
                    await poll
                break
            stopped.cancel()
            try:
                updates = poll.result()
                failures = 0
            except ZaloError as exc:
                failures += 1
                logger.warning("zalo bot getUpdates failed (%s); retrying", exc.status)
                await sleep(min(2.0**failures, 60.0))
                continue
            for update in updates:
                await _handle_with_retries(channel, update, stop, sleep)
    finally:
        await channel.dispatcher.drain(DRAIN_SECONDS)
        await client.close()
