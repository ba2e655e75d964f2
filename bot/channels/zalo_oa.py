"""Zalo Official Account (OA) Open API v3: signed webhook in, customer-service messages out.

* In: ``POST /webhook/zalo-oa`` with ``X-ZEvent-Signature: mac=<hex>``, where hex is the
  plain SHA-256 of app_id + the raw body + timestamp + the OA secret key, checked in
  constant time on the bytes as received.
* Out: ``POST <api>/v3.0/oa/message/cs`` with the ``access_token`` header; choices as
  ``oa.query.hide`` buttons whose payload (``#c:<choice id>``) comes back as the
  citizen's text, plus the numbered list as a fallback; 2,000-character pieces.
* Tokens: error -216 refreshes once through ``<oauth>/v4/oa/access_token`` and retries;
  the new single-use refresh token is stored before the new access token is used.
  -32 or HTTP 429 back off. A closed free-reply window (-305, -311, -230, -211) is not
  retried: it is logged and explained at the citizen's next message.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import httpx

from bot.channels.common import Malformed, clean, digest_id
from bot.delivery import Dispatcher, Progress
from bot.engine import Reply, is_reminder, split_text
from bot.errors import BotError
from bot.limits import MAX_BODY_BYTES, InputError, parse_json
from bot.privacy import keep_tokens_out_of_http_logs, seal, unseal
from bot.runner import Delivery, Incoming, Runner
from bot.storage import OATokens, OAWindow, Store

__all__ = ["OATokens", "OAWindow", "ZaloOAChannel", "ZaloOAClient", "signature_ok", "to_incoming", "verified"]

logger = logging.getLogger(__name__)

CHANNEL: Final = "zalo-oa"
DEFAULT_API_BASE_URL: Final = "https://openapi.zalo.me"
DEFAULT_OAUTH_BASE_URL: Final = "https://oauth.zaloapp.com"
MAX_TEXT: Final = 2000
MAX_EVENT_BYTES: Final = MAX_BODY_BYTES
MAX_ID_CHARS: Final = 128
DRAIN_SECONDS: Final = 10.0
TOKEN_PURPOSE: Final = "oa-tokens"  # noqa: S105 - a key-derivation label, not a secret
SEALED_PREFIX: Final = "gAAAAA"  # every Fernet token starts so (version byte and timestamp)
MAX_BUTTONS: Final = 5  # commonly cited limit [unverified]; more choices go as the numbered list only
CHOICE_PREFIX: Final = "#c:"
WINDOW_SECONDS: Final = 48 * 3600
WINDOW_REPLIES: Final = 8
INVALID_TOKEN: Final = -216
RATE_LIMITED: Final = -32
WINDOW_CLOSED: Final = frozenset({-305, -311, -230, -211, -213})
CHOOSE_HINT: Final = "Bạn bấm nút, hoặc gõ số thứ tự để chọn."
WINDOW_MISSED_NOTE: Final = (
    "Xin lỗi, tin trả lời trước của tôi chưa gửi được tới bạn vì đã quá thời gian Zalo cho phép. "
    "Đây là bước bạn đang làm:"
)


def verified(raw: bytes, header: str | None, oa_secret_key: str) -> dict[str, Any] | None:
    """The event, when ``X-ZEvent-Signature`` is "mac=" + SHA-256(app_id + raw body + timestamp + OA secret key).

    Checked in constant time on the bytes as received; a body over 256 kB, nested too
    deep, or not a JSON object fails like a wrong signature.
    """
    if not header or not oa_secret_key or len(raw) > MAX_EVENT_BYTES:
        return None
    try:
        body = parse_json(raw)
    except InputError:
        return None
    if not isinstance(body, dict):
        return None
    app_id, timestamp = str(body.get("app_id", ""))[:64], str(body.get("timestamp", ""))[:64]
    digest = hashlib.sha256(app_id.encode() + raw + timestamp.encode() + oa_secret_key.encode()).hexdigest()
    return body if hmac.compare_digest(header.strip().encode(), f"mac={digest}".encode()) else None


def signature_ok(raw: bytes, header: str | None, oa_secret_key: str) -> bool:
    """Whether the body carries a valid ``X-ZEvent-Signature`` (see ``verified``)."""
    return verified(raw, header, oa_secret_key) is not None


def _id(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed(f"{where} is not a string or number")
    return clean(str(value)[:MAX_ID_CHARS])


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{where} is not an object")
    return value


def to_incoming(event: Any) -> Incoming | None:
    """What the runner should handle for an OA event, or None for events that need no answer.

    Malformed when a field we use has the wrong type. Without a message id the event is
    identified by a digest of its content: the raw user id is never stored.
    """
    if not isinstance(event, dict):
        raise Malformed("event is not an object")
    name = event.get("event_name", "")
    if not isinstance(name, str):
        raise Malformed("event_name is not a string")
    name = clean(name[:64])
    sender = _object(event.get("sender"), "sender")
    follower = _object(event.get("follower"), "follower")
    user_id = _id(sender.get("id"), "sender.id") or _id(follower.get("id"), "follower.id")
    if not user_id:
        return None
    message = _object(event.get("message"), "message")
    msg_id = _id(message.get("msg_id"), "message.msg_id")
    event_id = f"{name}:{msg_id}" if msg_id else digest_id(name, event)
    if name == "follow":
        return Incoming(CHANNEL, user_id, kind="start", event_id=event_id)
    if name == "user_send_text":
        text = message.get("text", "")
        if not isinstance(text, str):
            raise Malformed("message.text is not a string")
        text = clean(text[: MAX_TEXT + 1])
        if text.startswith(CHOICE_PREFIX):
            choice = text[len(CHOICE_PREFIX) : len(CHOICE_PREFIX) + 64]
            return Incoming(CHANNEL, user_id, kind="choice", choice_id=choice, event_id=event_id)
        return Incoming(CHANNEL, user_id, kind="text", text=text, event_id=event_id)
    if name.startswith("user_send_"):
        return Incoming(CHANNEL, user_id, kind="unsupported", event_id=event_id)
    return None  # unfollow, receipts, the OA's own echoes


def _message_id(event: Any) -> str:
    """The id of the citizen's message in an event ("" for a follow, or an event without one)."""
    message = event.get("message") if isinstance(event, dict) else None
    msg_id = message.get("msg_id") if isinstance(message, dict) else None
    return clean(msg_id[:MAX_ID_CHARS]) if isinstance(msg_id, str) else ""


def messages(reply: Reply) -> list[dict[str, Any]]:
    """A reply as OA message bodies: text with the numbered choices; buttons on the last piece (≤ 5 choices)."""
    parts = [reply.text] if reply.text else []
    if reply.links:
        parts.append("\n".join(f"🔗 {link}" for link in reply.links))
    if reply.choices:
        parts.append("\n".join(f"{i}. {c.label}" for i, c in enumerate(reply.choices, 1)) + "\n\n" + CHOOSE_HINT)
    pieces = split_text("\n\n".join(parts) or " ", MAX_TEXT)
    out: list[dict[str, Any]] = [{"text": piece} for piece in pieces]
    if reply.choices and len(reply.choices) <= MAX_BUTTONS:
        out[-1]["attachment"] = {
            "type": "template",
            "payload": {
                "buttons": [
                    {"title": c.label[:100], "type": "oa.query.hide", "payload": f"{CHOICE_PREFIX}{c.id}"}
                    for c in reply.choices
                ]
            },
        }
    return out


class ZaloOAError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Zalo OA error {code}: {message}")
        self.code = code


class ZaloOAClient:
    """Thin async client: send customer-service messages and rotate tokens (stored in the database)."""

    def __init__(
        self,
        store: Store,
        app_id: str,
        app_secret: str,
        initial: OATokens | None,
        api_base_url: str = DEFAULT_API_BASE_URL,
        oauth_base_url: str = DEFAULT_OAUTH_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        secret: bytes = b"",
    ) -> None:
        keep_tokens_out_of_http_logs()
        self.store = store
        # Tokens are sealed with the hash secret (kept outside the database) before they are stored.
        self.secret = secret
        self.app_id = app_id
        self.app_secret = app_secret
        self.initial = initial
        self.api = api_base_url.rstrip("/")
        self.oauth = oauth_base_url.rstrip("/")
        self._http = httpx.AsyncClient(transport=transport, timeout=20)
        self._sleep = sleep
        self._refreshing = asyncio.Lock()

    async def _stored(self) -> OATokens | None:
        """The stored pair, unsealed; a pair stored in clear by an older version is sealed now."""
        stored = await self.store.oa_tokens()
        if stored is None:
            return None
        access = unseal(self.secret, stored.access_token, TOKEN_PURPOSE)
        refresh = unseal(self.secret, stored.refresh_token, TOKEN_PURPOSE)
        if access is not None and refresh is not None:
            return OATokens(access, refresh, stored.expires_at, stored.origin)
        if stored.refresh_token.startswith(SEALED_PREFIX):
            logger.error("zalo oa: stored tokens cannot be read (BOT_HASH_SECRET changed?); using the environment")
            return None
        await self._save(stored)  # written in clear before tokens were sealed
        return stored

    async def _save(self, tokens: OATokens) -> None:
        await self.store.save_oa_tokens(
            OATokens(
                seal(self.secret, tokens.access_token, TOKEN_PURPOSE),
                seal(self.secret, tokens.refresh_token, TOKEN_PURPOSE),
                tokens.expires_at,
                tokens.origin,
            )
        )

    async def tokens(self) -> OATokens:
        """The stored pair, unless the environment holds a refresh token it does not descend from."""
        stored = await self._stored()
        configured = self.initial.refresh_token if self.initial is not None else ""
        if stored is not None and (not configured or stored.origin == configured):
            return stored
        if self.initial is None:
            raise BotError("Chưa có token Zalo OA: hãy đặt ZALO_OA_REFRESH_TOKEN (và ZALO_OA_ACCESS_TOKEN nếu có).")
        return self.initial

    async def refresh(self, used: OATokens) -> OATokens:
        """A new token pair from the refresh token; stored before anyone uses it.

        Held against this process's other requests and against every other worker on the database:
        the refresh token works once, so whoever holds the lock reads the stored pair first and
        refreshes only if nobody did meanwhile.
        """
        async with self._refreshing, self.store.exclusive("zalo-oa-token-refresh"):
            current = await self.tokens()
            if current.access_token != used.access_token:
                return current  # another request refreshed meanwhile
            response = await self._http.post(
                f"{self.oauth}/v4/oa/access_token",
                headers={"secret_key": self.app_secret},
                data={"app_id": self.app_id, "grant_type": "refresh_token", "refresh_token": current.refresh_token},
            )
            body = response.json() if response.content else {}
            if "access_token" not in body or "refresh_token" not in body:
                logger.error("zalo oa token refresh failed: %s", body.get("error_name") or body.get("error") or "?")
                raise BotError("Không làm mới được token Zalo OA: cần người quản trị cấp quyền lại cho OA.")
            fresh = OATokens(
                str(body["access_token"]),
                str(body["refresh_token"]),
                time.time() + float(body.get("expires_in", 90000)),
                origin=self.initial.refresh_token if self.initial is not None else "",
            )
            await self._save(fresh)  # before use: the old refresh token is now dead
            logger.info("zalo oa tokens rotated")
            return fresh

    async def send(
        self,
        user_id: str,
        message: Mapping[str, Any],
        reply_to: str = "",
        before: Callable[[], Awaitable[None]] | None = None,
        refused: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Send one message; refresh once on -216, back off on -32/429; raise ZaloOAError otherwise.

        ``reply_to`` is the citizen's last message id: the OA support centre counts a message sent with
        only the user id as a paid "proactive" one, a reply referring to their message as a free one
        (the field's place in ``recipient`` follows that article and open-source clients [unverified]).
        ``before`` is awaited just before each request (to record the message as on its way), ``refused``
        when Zalo certainly did not take it (429, rate limit, expired token: it is sent again)."""
        recipient = {"user_id": user_id, "message_id": reply_to} if reply_to else {"user_id": user_id}
        tokens = await self.tokens()
        refreshed = False
        for attempt in range(1, 7):
            if before is not None:
                await before()
            try:
                response = await self._http.post(
                    f"{self.api}/v3.0/oa/message/cs",
                    headers={"access_token": tokens.access_token},
                    json={"recipient": recipient, "message": dict(message)},
                )
                body = response.json() if response.content else {}
            except (httpx.HTTPError, ValueError) as exc:  # network trouble or an HTML error page
                logger.warning("zalo oa send failed (%s), attempt %d; retrying", type(exc).__name__, attempt)
                await self._sleep(min(2.0**attempt, 60.0))
                continue
            code = int(body.get("error", 0) or 0) if isinstance(body, dict) else -1
            if code == 0 and response.status_code == 200:
                return
            if refused is not None and (response.status_code == 429 or code in (INVALID_TOKEN, RATE_LIMITED)):
                await refused()
            if response.status_code == 429:
                await self._sleep(min(2.0**attempt, 60.0))
                continue
            if code == INVALID_TOKEN and not refreshed:
                tokens = await self.refresh(tokens)
                refreshed = True
                continue
            if code == RATE_LIMITED:
                await self._sleep(min(2.0**attempt, 60.0))
                continue
            raise ZaloOAError(code, str(body.get("message", response.reason_phrase)) if isinstance(body, dict) else "")
        raise ZaloOAError(RATE_LIMITED, "still failing after retries")

    async def close(self) -> None:
        await self._http.aclose()


class ZaloOAChannel:
    """OA events in, replies out, with each citizen's free-reply window tracked."""

    def __init__(
        self, runner: Runner, client: ZaloOAClient, oa_secret_key: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.runner = runner
        self.client = client
        self.secret = oa_secret_key
        self.clock = clock
        self.dispatcher = Dispatcher(CHANNEL, runner, self.deliver, can_remind=self.can_remind)
        # chat -> (when the citizen last wrote, that message's id), until its worker opens the window
        self._opened: dict[str, tuple[float, str]] = {}

    async def handle(self, event: Any) -> None:
        """Commit the event's turn and queue its replies (returns once it is safe to acknowledge)."""
        incoming = to_incoming(event)  # Malformed goes to the caller, which counts and acknowledges it
        if incoming is None:
            return
        key = self.runner.key(CHANNEL, incoming.user_id)
        before = await self.runner.store.oa_window(key)
        wrote_at = self.clock()

        def queue(delivery: Delivery) -> None:
            if before is not None and before.missed:
                delivery = replace(delivery, replies=[Reply(WINDOW_MISSED_NOTE), *delivery.replies])
            # The new window opens in the chat's delivery worker, in order with the replies it counts.
            msg_id = _message_id(event)
            self._opened[incoming.user_id] = max((wrote_at, msg_id), self._opened.get(incoming.user_id, (0.0, "")))
            self.dispatcher.submit(delivery)

        await self.runner.handle_for_delivery(incoming, on_commit=queue)

    async def can_remind(self, user_key: str, last_seen: float) -> str | None:
        """A reminder is a reply, so it needs the citizen's free-reply window open (48 hours since they
        wrote, fewer than 8 replies since): otherwise Zalo would count it as a paid message. It is then
        skipped, never sent paid."""
        window = await self.runner.store.oa_window(user_key)
        if window is None:
            return "outside-window"
        if self.clock() - window.last_user_at > WINDOW_SECONDS or window.sent_since >= WINDOW_REPLIES:
            return "outside-window"
        if not window.last_msg_id:
            return "no-message-to-answer"  # (sent without one, it would count as a paid message)
        return None

    async def recover(self) -> int:
        """Queue replies committed before a crash but never sent; sent in the background, if the window allows."""
        return await self.dispatcher.recover()

    async def close(self, seconds: float = DRAIN_SECONDS) -> None:
        await self.dispatcher.drain(seconds)

    async def deliver(self, user_id: str, replies: Sequence[Reply], progress: Progress | None = None) -> None:
        """Send one turn's messages inside the citizen's free-reply window, counting each in the database,
        from where ``progress`` says it stopped."""
        progress = progress or Progress()
        store = self.runner.store
        key = self.runner.key(CHANNEL, user_id)
        opened = self._opened.pop(user_id, None)
        if opened is not None:
            await store.open_oa_window(key, *opened)
        # Only a reminder names the message it answers: whether every reply should, and in which field, is
        # not confirmed by Zalo's documentation, so ordinary replies stay as they have always worked.
        reply_to = ""
        if is_reminder(replies):
            window = await store.oa_window(key)
            reply_to = window.last_msg_id if window is not None else ""
        # The note about a missed reply is put before the turn's replies in memory only (the outbox row has
        # the turn alone): it is not counted, so a worker resuming the turn from its row counts the same.
        note = list(messages(replies[0])) if replies and replies[0].text == WINDOW_MISSED_NOTE else []
        numbered = [(None, m) for m in note] + list(
            enumerate(message for reply in replies[1 if note else 0 :] for message in messages(reply))
        )
        for index, message in numbered:
            if index is None or index >= progress.done:
                window = await store.oa_window(key) or OAWindow(self.clock())
                if self.clock() - window.last_user_at > WINDOW_SECONDS or window.sent_since >= WINDOW_REPLIES:
                    logger.warning("zalo oa: free-reply window closed; a reply was not sent")
                    await store.miss_oa_reply(key)
                    return
                try:
                    await self.client.send(
                        user_id,
                        message,
                        reply_to=reply_to,
                        before=functools.partial(progress.going, index) if index is not None else None,
                        refused=functools.partial(progress.refused, index) if index is not None else None,
                    )
                except ZaloOAError as exc:
                    if exc.code in WINDOW_CLOSED:
                        logger.warning("zalo oa: reply refused (%d), window or quota exhausted", exc.code)
                    else:
                        logger.error("zalo oa: reply not sent: %s", exc)
                    await store.miss_oa_reply(key)  # say so next time
                    return
                await store.count_oa_reply(key)
