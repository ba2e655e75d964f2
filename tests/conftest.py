"""Shared fixtures: no real network, the small test content set, a fixed clock."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.content import load
from bot.engine import Content, Event
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


# -- storage backends ----------------------------------------------------------------------------
# Every Store behaviour is checked on each backend by the same tests (tests/test_store_contract.py).
# PostgreSQL is reached through BOT_TEST_POSTGRES (a connection string to a database the tests may
# fill with throwaway schemas); `.ci/run` starts a server and sets it. Without it the PostgreSQL
# cases are skipped with the reason, except under CI=true, where a missing server is a failure.
POSTGRES_URL = os.environ.get("BOT_TEST_POSTGRES", "")
_pg_checked: dict[str, str] = {}


def _postgres_or_skip() -> str:
    """The test server's connection string, or skip (fail under CI) saying why it cannot be used."""
    if "reason" not in _pg_checked:
        reason = ""
        if not POSTGRES_URL:
            reason = "BOT_TEST_POSTGRES is not set (no PostgreSQL server for the backend tests)"
        else:
            import psycopg

            try:
                psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
            except psycopg.Error as exc:
                reason = f"PostgreSQL at BOT_TEST_POSTGRES is not reachable: {str(exc).strip().splitlines()[0]}"
        _pg_checked["reason"] = reason
    reason = _pg_checked["reason"]
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL: {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


def _with_schema(url: str, schema: str) -> str:
    """The connection string with ``schema`` first on the search path (one throwaway schema per test)."""
    from urllib.parse import quote

    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-c search_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database on each backend: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield str(tmp_path / "bot.db")
        return
    import uuid

    import psycopg

    url = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield _with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


async def open_store(db: str) -> Any:
    """The store for ``db`` as the bot opens it (a path, or a postgresql:// address)."""
    from bot.storage import open_store as open_

    return await open_(db)


def sample_event(kind: str = "step-entered", user: str = "k", ts: float = 1.0) -> Event:
    """An event with every column set (and a detail with diacritics)."""
    return Event(
        ts=ts,
        user_key=user,
        channel="test",
        type=kind,
        procedure_id="p",
        content_version="v",
        step_id="s",
        from_step="a",
        to_step="s",
        via="choice",
        detail={"option": "x", "text": "chữ có dấu"},
    )
