"""Helpers shared by the chat channels: splitting long replies, stopping on signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT/SIGTERM (where the platform allows signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def split(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at paragraphs, then lines, then words."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sep in ("\n\n", "\n", " "):
        if sep not in text:
            continue
        current = ""
        for part in text.split(sep):
            candidate = f"{current}{sep}{part}" if current else part
            if len(candidate) <= limit:
                current = candidate
                continue
            if current:
                pieces.append(current)
            if len(part) <= limit:
                current = part
            else:
                pieces += split(part, limit)
                current = ""
        if current:
            pieces.append(current)
        return pieces
    return [text[i : i + limit] for i in range(0, len(text), limit)]
