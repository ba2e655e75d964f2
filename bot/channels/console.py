"""Console channel: an interactive chat in the terminal, or one JSON line per input line for scripts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from datetime import datetime, timedelta
from typing import TextIO

from bot import engine
from bot.engine import Content, EngineConfig, Inbound, Reply, Session
from bot.runner import Incoming, Runner

CHANNEL = "console"
# A line is read no further than this (the rest of a longer line is skipped); the engine answers
# anything over its own limit as too long, so a 10 MB paste costs nothing.
MAX_LINE_CHARS = 4096
SLASH_START = "/start"
PREVIEW_USER = "preview"
PREVIEW_TURN = timedelta(seconds=5)


def render_text(reply: Reply) -> str:
    """A reply as plain text with numbered choices."""
    lines = [reply.text]
    if reply.choices:
        lines.append("")
        lines += [f"  {i}. {c.label}" for i, c in enumerate(reply.choices, 1)]
    lines += [f"  🔗 {link}" for link in reply.links]
    return "\n".join(lines)


def parse_line(line: str, user_id: str) -> Incoming:
    text = line.rstrip("\r\n")
    stripped = text.strip()
    if stripped.split(" ")[0].lower() == SLASH_START:
        payload = stripped[len(SLASH_START) :].strip() or None
        return Incoming(CHANNEL, user_id, kind="start", text=text, start_payload=payload)
    return Incoming(CHANNEL, user_id, kind="text", text=text)


def read_bounded_line(stream: TextIO) -> str:
    """One line of at most MAX_LINE_CHARS characters (plus one, so the engine sees it was longer)."""
    line = stream.readline(MAX_LINE_CHARS + 1)
    if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
        while True:  # skip the rest of the line in bounded pieces
            rest = stream.readline(65536)
            if not rest or rest.endswith("\n"):
                break
    return line


async def _readline(stream: TextIO) -> str:
    """Read a line in a daemon thread, so Ctrl+C ends the chat at once instead of after the next Enter."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def deliver(line: str | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(line or "")

    def work() -> None:
        try:
            line, error = read_bounded_line(stream), None
        except (OSError, ValueError) as exc:
            line, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
            loop.call_soon_threadsafe(deliver, line, error)

    threading.Thread(target=work, daemon=True, name="stdin").start()
    return await done


async def run_json(runner: Runner, user_id: str, stdin: TextIO, stdout: TextIO) -> None:
    """For each input line print exactly one JSON line, flushed, so a program can chat through a pipe."""
    while True:
        line = await _readline(stdin)
        if not line:
            return
        replies = await runner.handle(parse_line(line, user_id)) or []
        out = {"input": line.rstrip("\r\n"), "replies": [r.as_dict() for r in replies]}
        stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        stdout.flush()


async def run_interactive(runner: Runner, user_id: str, stdin: TextIO, stdout: TextIO) -> None:
    """A chat in the terminal; the first turn greets or offers to resume."""
    stdout.write("(Gõ tin nhắn rồi bấm Enter. Gõ số để chọn. Ctrl+D để thoát.)\n\n")
    replies = await runner.handle(Incoming(CHANNEL, user_id, kind="start")) or []
    while True:
        for reply in replies:
            stdout.write(render_text(reply) + "\n\n")
        stdout.write("> ")
        stdout.flush()
        line = await _readline(stdin)
        if not line:
            stdout.write("\nTạm biệt!\n")
            return
        if not line.strip():
            replies = []
            continue
        replies = await runner.handle(parse_line(line, user_id)) or []


def run_preview(
    content: Content,
    session: Session,
    opening: Inbound | engine.Result,
    stdin: TextIO,
    stdout: TextIO,
    now: datetime,
    as_json: bool = False,
) -> None:
    """Walk one flow against the pure engine with an in-memory session: nothing is stored or counted.
    ``opening`` is the first message, or what the bot already said first (a reminder)."""
    config = EngineConfig(resume_after_seconds=float("inf"))
    result = opening if isinstance(opening, engine.Result) else engine.step(content, session, opening, now, config)
    line = ""
    while True:
        if as_json:
            stdout.write(
                json.dumps({"input": line, "replies": [r.as_dict() for r in result.replies]}, ensure_ascii=False) + "\n"
            )
        else:
            for reply in result.replies:
                stdout.write(render_text(reply) + "\n\n")
            if any(e.type == "flow-completed" for e in result.events):
                stdout.write("(Đã hết kịch bản. Gõ tiếp để thử nữa, hoặc Ctrl+D để thoát.)\n\n")
            stdout.write("> ")
        stdout.flush()
        raw = read_bounded_line(stdin)
        if not raw:
            if not as_json:
                stdout.write("\nHết phần xem thử.\n")
            return
        line = raw.rstrip("\r\n")
        incoming = parse_line(line, PREVIEW_USER)
        inbound = Inbound(
            CHANNEL, PREVIEW_USER, kind=incoming.kind, text=incoming.text, start_payload=incoming.start_payload
        )
        now += PREVIEW_TURN
        result = engine.step(content, result.session, inbound, now, config)
