"""Bounds on what strangers send: JSON depth, request bodies, per-citizen message rates."""

from __future__ import annotations

import pytest

from bot.limits import MAX_JSON_DEPTH, InputError, RateLimiter, json_depth_ok, parse_json


def test_json_deeper_than_the_limit_is_refused_without_recursion() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    assert not json_depth_ok(deep)
    with pytest.raises(InputError, match="deeper than 32"):
        parse_json(deep)
    ok = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(ok) is not None
    assert not json_depth_ok(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = b'{"text": "' + b"[[[[{{{{" * 100 + b'\\" [[[[", "x": [1]}'
    assert json_depth_ok(text)
    assert parse_json(text)["x"] == [1]


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b'{"a": ', b""])
def test_bodies_that_are_not_json_are_input_errors(raw: bytes) -> None:
    with pytest.raises(InputError, match="not JSON"):
        parse_json(raw)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_citizen_over_the_limit_is_warned_once_then_dropped_until_the_bucket_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(20, clock)
    verdicts = [limiter.check("lan") for _ in range(25)]
    assert verdicts == ["ok"] * 20 + ["warn"] + ["drop"] * 4
    assert limiter.dropped == 4
    assert limiter.check("hoa") == "ok"  # another citizen is not affected
    clock.now += 3.0  # one message's worth of refill (20 a minute)
    assert limiter.check("lan") == "ok"
    assert limiter.check("lan") == "drop"  # still over: no second warning right away
    clock.now += 60.0  # a quiet minute: a new burst, and a new warning if needed
    assert [limiter.check("lan") for _ in range(21)] == ["ok"] * 20 + ["warn"]


def test_a_person_typing_at_a_normal_pace_is_never_limited() -> None:
    clock = Clock()
    limiter = RateLimiter(20, clock)
    for _ in range(500):
        assert limiter.check("lan") == "ok"
        clock.now += 4.0  # a message every 4 seconds, for half an hour


def test_the_limiter_forgets_idle_citizens_so_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(20, clock, max_keys=100)
    for i in range(1000):
        limiter.check(f"u{i}")
        clock.now += 10.0
    assert len(limiter) <= 100


def test_only_utf8_bodies_are_read_so_the_depth_scan_sees_every_bracket() -> None:
    sneaky = ('{"update_id":1,"x":["丢",' + "[" * 800 + "]" * 800 + "]}").encode("utf-16-le")
    with pytest.raises(InputError):
        parse_json(sneaky)
    with pytest.raises(InputError, match="not UTF-8"):
        parse_json(b'{"x": "\xff"}')
