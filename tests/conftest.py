"""Shared fixtures: no real network, the small test content set, a fixed clock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.content import load
from bot.engine import Content
from bot.settings import VIETNAM_TZ

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
GOOD = DATA / "good"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=VIETNAM_TZ)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guard(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise RuntimeError(f"tests must not open network connections (tried {address!r})")
    return _real_connect(self, address)


def _guard_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise RuntimeError(f"tests must not open network connections (tried {address!r})")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to reach the network."""
    monkeypatch.setattr(socket.socket, "connect", _guard)
    monkeypatch.setattr(socket.socket, "connect_ex", _guard_ex)
    yield


@pytest.fixture(scope="session")
def content() -> Content:
    return load(GOOD)


def hold_commits(store: Any) -> asyncio.Event:
    """Make every turn commit wait until the returned event is set (to catch answers sent too early)."""
    release = asyncio.Event()
    real = store.commit_turn

    async def held(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await real(*args, **kwargs)

    store.commit_turn = held
    return release


def fail_commits(store: Any, times: int, error: Exception) -> None:
    """Make the next ``times`` turn commits fail with ``error`` (a locked or broken database)."""
    left = {"n": times}
    real = store.commit_turn

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if left["n"]:
            left["n"] -= 1
            raise error
        return await real(*args, **kwargs)

    store.commit_turn = flaky


class Sleeps:
    """A stand-in for asyncio.sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
