"""Module boundaries: only storage imports aiosqlite, only the Telegram channel imports telegram, the engine does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

BOT = ROOT / "bot"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_storage_backends_import_aiosqlite() -> None:
    users = {p.relative_to(ROOT).as_posix() for p in BOT.rglob("*.py") if "aiosqlite" in imports_of(p)}
    assert users == {"bot/storage/sqlite.py"}


def test_only_the_telegram_channel_imports_telegram() -> None:
    users = {p.relative_to(ROOT).as_posix() for p in BOT.rglob("*.py") if "telegram" in imports_of(p)}
    assert users <= {"bot/channels/telegram.py"}


def test_engine_is_pure() -> None:
    forbidden = {"asyncio", "aiosqlite", "sqlite3", "socket", "httpx", "telegram", "os", "subprocess", "time"}
    for module in ("engine.py", "matcher.py", "normalize.py", "schema.py", "texts.py", "privacy.py"):
        assert not imports_of(BOT / module) & forbidden, module
    source = (BOT / "engine.py").read_text(encoding="utf-8")
    for call in ("open(", "datetime.now", "time.time", "print("):
        assert call not in source


def test_every_module_says_what_it_holds() -> None:
    for path in BOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{path} needs a one-sentence module docstring"
