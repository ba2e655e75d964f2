"""Console channel through `python -m bot chat --json`, as another program would drive it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot import texts
from bot.channels.console import render_text
from bot.engine import Choice, Reply
from tests.conftest import GOOD, ROOT


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_"))}
    env["BOT_HASH_SECRET"] = "test-secret"
    env.update(extra)
    return env


def chat(db: Path, lines: list[str], user: str = "lan", **env: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--json", "--content", str(GOOD), "--db", str(db), "--user", user],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=_env(**env),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def texts_of(turn: dict[str, Any]) -> str:
    return "\n".join(r["text"] for r in turn["replies"])


def labels_of(turn: dict[str, Any]) -> list[str]:
    return [c["label"] for c in turn["replies"][-1]["choices"]]


def test_scripted_conversation(tmp_path: Path) -> None:
    lines = [
        "dk tam tru cho nguoi thue tro",  # free text -> procedure
        "1",  # by number
        "Tôi tự nộp",  # by label
        "quay lại",  # back
        "lặp lại",  # repeat
        "trợ giúp",  # help
        "Tiếp tục bước đang làm",
        "hủy",  # cancel: asks first
        "1",  # yes, stop
        "menu",  # menu
    ]
    turns = chat(tmp_path / "bot.db", lines)
    assert [t["input"] for t in turns] == lines, "exactly one JSON line per input line"
    assert "Bắt đầu thủ tục “Đăng ký tạm trú”" in texts_of(turns[0])
    assert "Ai là người nộp hồ sơ?" in texts_of(turns[1])
    assert labels_of(turns[1])[:2] == ["Tôi tự nộp", "Tôi nhờ người khác nộp"]
    assert turns[1]["replies"][-1]["choices"][0]["id"] == "o:tu-nop"
    assert "Tờ khai CT01" in texts_of(turns[2])
    assert "Ai là người nộp hồ sơ?" in texts_of(turns[3])
    assert "Ai là người nộp hồ sơ?" in texts_of(turns[4])
    assert "1800 1096" in texts_of(turns[5])
    assert "Ai là người nộp hồ sơ?" in texts_of(turns[6])
    assert "Bạn muốn dừng thủ tục “Đăng ký tạm trú”?" in texts_of(turns[7])
    assert "Đã dừng thủ tục “Đăng ký tạm trú”" in texts_of(turns[8])
    assert texts.MENU_PROMPT in texts_of(turns[9])
    assert labels_of(turns[9])[0] == "Làm tiếp: Đăng ký tạm trú"  # the place is kept
    first = turns[0]["replies"][-1]
    assert set(first) == {"text", "choices", "links"}


def test_second_process_resumes_where_the_first_stopped(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    chat(db, ["dk tam tru cho nguoi thue tro", "1", "2"])
    turns = chat(db, ["/start", "Tiếp tục"])
    assert "Bạn đang ở bước 3/5 của thủ tục “Đăng ký tạm trú”" in texts_of(turns[0])
    assert "Văn bản ủy quyền" in texts_of(turns[1]), "the earlier answer (a proxy files) is remembered"
    other = chat(db, ["/start"], user="someone-else")
    assert texts.WELCOME in texts_of(other[0]), "another user starts fresh"


def test_returning_after_silence_is_offered_to_resume(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    chat(db, ["dk tam tru cho nguoi thue tro", "1"])
    turns = chat(db, ["1"], BOT_RESUME_AFTER_MINUTES="0")
    assert "Bạn đang ở bước 2/5" in texts_of(turns[0])


def test_kill_minus_nine_loses_no_acknowledged_turn(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--json", "--content", str(GOOD), "--db", str(db), "--user", "lan"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    for line in ["dk tam tru cho nguoi thue tro", "1", "2"]:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        json.loads(proc.stdout.readline())  # the reply is out: the turn is acknowledged
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stdin.close()
    assert proc.stderr is not None
    proc.stderr.close()
    conn = sqlite3.connect(db)
    state = json.loads(conn.execute("SELECT state FROM sessions").fetchone()[0])
    types = [r[0] for r in conn.execute("SELECT type FROM events ORDER BY id")]
    conn.close()
    assert state["position"] == ["dang-ky-tam-tru", "giay-to"]
    assert types.count("step-entered") == 3
    turns = chat(db, ["lặp lại"])
    assert "Văn bản ủy quyền" in texts_of(turns[0])


def test_empty_input_exits_cleanly(tmp_path: Path) -> None:
    assert chat(tmp_path / "bot.db", []) == []


def test_interactive_chat_greets_and_numbers_choices(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--content", str(GOOD), "--db", str(tmp_path / "bot.db")],
        input="2\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == 0
    assert texts.WELCOME in proc.stdout
    assert "  1. Cư trú" in proc.stdout
    assert "Nhóm “Hộ tịch”" in proc.stdout
    assert "Tạm biệt" in proc.stdout


def test_render_text_numbers_choices_and_links() -> None:
    reply = Reply("Chọn:", (Choice("a", "Một"), Choice("b", "Hai")), ("https://dichvucong.gov.vn",))
    assert render_text(reply) == "Chọn:\n\n  1. Một\n  2. Hai\n  🔗 https://dichvucong.gov.vn"
