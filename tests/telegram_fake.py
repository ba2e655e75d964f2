"""A fake Telegram Bot API behind httpx.MockTransport, so the real python-telegram-bot code runs without a network."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
from telegram.request import HTTPXRequest

TOKEN = "123456:TEST-token"
BOT = {"id": 123456, "is_bot": True, "first_name": "DVC", "username": "dvc_test_bot"}


def chat(chat_id: int = 42, kind: str = "private") -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "first_name": "Lan"}


def user(user_id: int = 42) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Lan", "language_code": "vi"}


class FakeBotApi:
    """Canned Bot API answers and a log of every call (method, parameters)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.message_id = 1000
        self.fail_429 = 0  # the next N sendMessage calls answer 429
        self.retry_after = 3
        # Served by getUpdates until confirmed: as on Telegram, an update goes away once a later
        # call asks for an offset past its id.
        self.updates: list[dict[str, Any]] = []
        self.invalid_token = False
        self.delivered: list[dict[str, Any]] = []  # sendMessage calls Telegram accepted
        self.hold_sends = 0  # the next N sendMessage calls reach "Telegram" and never get an answer

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append((method, params))
        if self.invalid_token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if method == "getMe":
            return 200, {"ok": True, "result": BOT}
        if method == "sendMessage":
            if self.fail_429:
                self.fail_429 -= 1
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after}",
                    "parameters": {"retry_after": self.retry_after},
                }
            self.message_id += 1
            self.delivered.append(params)
            return 200, {
                "ok": True,
                "result": {
                    "message_id": self.message_id,
                    "date": int(time.time()),
                    "chat": chat(int(params["chat_id"])),
                    "from": BOT,
                    "text": params.get("text", ""),
                },
            }
        if method == "getUpdates":
            offset = int(params.get("offset", 0) or 0)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            return 200, {"ok": True, "result": list(self.updates)}
        if method in ("answerCallbackQuery", "sendChatAction", "setWebhook", "deleteWebhook", "setMyCommands"):
            return 200, {"ok": True, "result": True}
        return 400, {"ok": False, "error_code": 400, "description": f"unmocked {method}"}

    def sent(self) -> list[dict[str, Any]]:
        """Messages delivered to the chat (a refused attempt is not one)."""
        return list(self.delivered)

    def sent_texts(self) -> list[str]:
        return [str(p["text"]) for p in self.sent()]

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def request(self) -> HTTPXRequest:
        """The real HTTPXRequest of python-telegram-bot, over a mock transport."""

        async def handler(req: httpx.Request) -> httpx.Response:
            params: dict[str, Any] = dict(parse_qsl(req.content.decode()))
            for key, value in params.items():
                if value[:1] in "{[":
                    params[key] = json.loads(value)
            method = req.url.path.rsplit("/", 1)[-1]
            if method == "sendMessage" and self.hold_sends:
                self.hold_sends -= 1
                self.calls.append((method, params))
                await asyncio.Event().wait()  # until the sender is cancelled (its process stops)
            status, body = self.handle(method, params)
            if method == "getUpdates" and not body.get("result"):
                await asyncio.sleep(0.02)  # a long poll that found nothing
            return httpx.Response(status, json=body)

        return HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(handler)})


def text_update(update_id: int, text: str, chat_id: int = 42, kind: str = "private") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 0,
        "chat": chat(chat_id, kind),
        "from": user(chat_id),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split(" ")[0])}]
    return {"update_id": update_id, "message": message}


def edited_update(update_id: int, text: str, chat_id: int = 42) -> dict[str, Any]:
    message = text_update(update_id, text, chat_id)["message"]
    message["edit_date"] = 1
    return {"update_id": update_id, "edited_message": message}


def photo_update(update_id: int, chat_id: int = 42) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": chat(chat_id),
            "from": user(chat_id),
            "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
        },
    }


def tap_update(update_id: int, data: str, chat_id: int = 42) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq{update_id}",
            "from": user(chat_id),
            "chat_instance": "ci",
            "data": data,
            "message": {"message_id": 1, "date": 0, "chat": chat(chat_id), "from": BOT, "text": "…"},
        },
    }
