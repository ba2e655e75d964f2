"""A fake Telegram Bot API on loopback for the load and crash benchmarks (never used by the tests).

    python benchmarks/fake_bot_api.py --port 8091 [--send-per-second 0]

Answers getMe, setMyCommands, setWebhook, deleteWebhook, answerCallbackQuery and
sendMessage like Telegram does. ``--send-per-second N`` accepts at most N sendMessage
calls per second and answers the rest 429 with ``retry_after`` (to build an outbox
backlog). ``GET /stats`` returns how many messages were accepted; ``GET /log`` every chat's texts in arrival order.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BOT = {"id": 123456, "is_bot": True, "first_name": "DVC", "username": "dvc_bench_bot"}


def build(send_per_second: float) -> Starlette:
    sent: Counter[str] = Counter()
    texts: dict[str, list[str]] = {}  # chat -> the texts it was sent, in arrival order
    window = {"second": 0, "count": 0}

    async def method(request: Request) -> JSONResponse:
        name = request.path_params["method"]
        body = await request.body()
        params = dict(parse_qsl(body.decode())) if body else {}
        if name == "getMe":
            return JSONResponse({"ok": True, "result": BOT})
        if name == "sendMessage":
            now = int(time.time())
            if window["second"] != now:
                window.update(second=now, count=0)
            if send_per_second and window["count"] >= send_per_second:
                return JSONResponse(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests",
                        "parameters": {"retry_after": 1},
                    },
                    status_code=429,
                )
            window["count"] += 1
            chat = params.get("chat_id", "0")
            sent[chat] += 1
            texts.setdefault(chat, []).append(params.get("text", ""))
            result = {
                "message_id": sum(sent.values()),
                "date": now,
                "chat": {"id": int(chat), "type": "private"},
                "text": "…",
            }
            return JSONResponse({"ok": True, "result": result})
        return JSONResponse({"ok": True, "result": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"sent": sum(sent.values()), "chats": len(sent)})

    async def log(request: Request) -> JSONResponse:
        return JSONResponse(texts)

    return Starlette(
        routes=[
            Route("/stats", stats, methods=["GET"]),
            Route("/log", log, methods=["GET"]),
            Route("/bot{token}/{method}", method, methods=["POST"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--send-per-second", type=float, default=0)
    args = parser.parse_args()
    uvicorn.run(build(args.send_per_second), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
