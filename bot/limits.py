"""Bounds on what strangers can send: body sizes, JSON depth, message rates.

Everything that reaches the bot from a platform goes through here first, so a
hostile or broken client costs a bounded amount of memory and time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

# A Telegram update with a 4,096-character text and its entities is a few kB; Zalo OA signs bodies
# of up to 256 kB. Anything larger is refused before it is read whole.
MAX_BODY_BYTES: Final = 256 * 1024
# Real updates nest about six levels deep.
MAX_JSON_DEPTH: Final = 32


class InputError(ValueError):
    """A request body we refuse to read further; the message is one short line for the log."""


def json_depth_ok(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests at most ``limit`` levels (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return True  # cannot be deeper than its number of openings (the common case, no scan)
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def parse_json(raw: bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of a request body, or InputError (too deep, not JSON, not UTF-8).

    Only UTF-8 is accepted (as the platforms send): ``json.loads`` would also take UTF-16,
    whose bytes the depth scan cannot read.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not JSON (not UTF-8)") from None
    if not json_depth_ok(raw, limit):
        raise InputError(f"JSON nested deeper than {limit} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not JSON ({type(exc).__name__})") from None


Verdict = Literal["ok", "warn", "drop"]


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class RateLimiter:
    """Per-citizen token bucket: ``per_minute`` messages a minute, in bursts of up to the same number.

    The first message over the limit gets ``"warn"`` (answer once, politely), later ones
    ``"drop"`` (acknowledged, not processed) until the bucket refills. Memory is bounded:
    buckets that have refilled are forgotten when the table grows.
    """

    def __init__(self, per_minute: float, clock: Callable[[], float], max_keys: int = 100_000) -> None:
        self.capacity = max(per_minute, 1.0)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self.dropped = 0

    def check(self, key: str) -> Verdict:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if bucket.tokens >= 1.0:
                bucket.warned = False
            return "ok"
        if not bucket.warned:
            bucket.warned = True
            return "warn"
        self.dropped += 1
        return "drop"

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.capacity]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # everyone is busy: forget the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k].at)[: self.max_keys // 2]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)
