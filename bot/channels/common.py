"""Helpers shared by the chat channels: stopping on signals, strict parsing (long replies: ``engine.split_text``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT/SIGTERM (where the platform allows signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


class Malformed(ValueError):
    """An inbound update without the fields we use, or with the wrong types: acknowledged, counted, not processed."""


def digest_id(prefix: str, payload: object) -> str:
    """A stable id for an update that has none of its own: a digest of its content (never the raw user id)."""
    try:
        # ASCII escapes: a lone surrogate (half an emoji, as JSON allows) hashes like any other character.
        body = json.dumps(payload, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        body = repr(payload)
    return f"{prefix}:{hashlib.sha256(body.encode()).hexdigest()[:32]}"


def clean(text: str) -> str:
    """Text that can be stored and sent: a lone surrogate (half an emoji, which JSON allows) becomes "�"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def is_int(value: object) -> bool:
    """An integer in JSON (not a bool, which Python counts as one)."""
    return type(value) is int
