"""Hot reload while the bot runs: edits go live, broken edits keep the last good version, status shows why."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot import status, texts
from bot.runner import Incoming
from bot.service import Service
from tests.conftest import GOOD, NOW, ROOT
from tests.test_cli import run

FLOW = Path("flows") / "dang-ky-tam-tru.yaml"
ORIGINAL = "làm trực tuyến được"
EDITED = "nộp qua mạng được"
BROKEN_FLOW = 'procedure: dang-ky-tam-tru\nsteps:\n  - id: gioi-thieu\n    kind: message\n    text: "chưa đóng ngoặc\n'


def edit(content_dir: Path, old: str, new: str) -> None:
    path = content_dir / FLOW
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    shutil.copytree(GOOD, target)
    return target


@pytest.fixture
async def service(content_dir: Path, tmp_path: Path) -> AsyncIterator[Service]:
    svc = await Service.open(
        content_dir, str(tmp_path / "bot.db"), mode="test", reload_interval=0.05, clock=lambda: NOW
    )
    svc.start_reloading()
    try:
        yield svc
    finally:
        await svc.close()


async def say(svc: Service, text: str, user: str = "u1") -> str:
    kind: Any = "start" if text.startswith("/start") else "text"
    payload = text.split(" ", 1)[1] if kind == "start" else None
    replies = await svc.runner.handle(Incoming("console", user, kind=kind, text=text, start_payload=payload)) or []
    return "\n".join(r.text for r in replies) + "\n" + " | ".join(c.label for r in replies for c in r.choices)


async def until(check: Callable[[], Any], seconds: float = 10.0) -> None:
    """Wait for check() (a plain or async function) to hold."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_an_edit_goes_live_and_a_broken_edit_keeps_the_last_good_version(
    service: Service, content_dir: Path
) -> None:
    first = service.holder.current.catalogue.version
    assert ORIGINAL in await say(service, "/start dang-ky-tam-tru")

    edit(content_dir, ORIGINAL, EDITED)
    await until(lambda: service.holder.current.catalogue.version != first)
    reply = await say(service, "lặp lại")
    assert EDITED in reply and ORIGINAL not in reply
    good = service.holder.current.catalogue.version

    (content_dir / FLOW).write_text(BROKEN_FLOW, encoding="utf-8")

    async def rejected() -> bool:
        loads = await service.store.content_loads()
        return not loads[0].ok

    await until(rejected)
    assert service.holder.current.catalogue.version == good
    assert EDITED in await say(service, "lặp lại")

    report = await status.gather(service.store)
    assert report.active_version == good and not report.healthy
    text = status.format_report(report, "bot.db")
    assert f"bot vẫn dùng phiên bản cũ {good}" in text
    assert "  flows/dang-ky-tam-tru.yaml:5:11: lỗi: lỗi cú pháp YAML" in text
    assert [i.mode for i in await service.store.instances()] == ["test"]


async def test_a_session_on_a_removed_step_is_told_and_one_on_a_surviving_step_continues(
    service: Service, content_dir: Path
) -> None:
    await say(service, "/start dang-ky-tam-tru", user="on-removed")
    await say(service, "Tiếp tục", user="on-removed")
    assert "Bạn chuẩn bị" in await say(service, "Tôi tự nộp", user="on-removed")  # at giay-to
    await say(service, "/start dang-ky-tam-tru", user="on-kept")
    assert "Ai là người nộp hồ sơ?" in await say(service, "Tiếp tục", user="on-kept")  # at ai-nop

    before = service.holder.current.catalogue.version
    edit(content_dir, "id: giay-to", "id: chuan-bi-giay-to")
    edit(content_dir, "next: giay-to", "next: chuan-bi-giay-to")
    await until(lambda: service.holder.current.catalogue.version != before)

    told = await say(service, "có đủ", user="on-removed")
    assert "bước bạn đang làm không còn nữa" in told
    assert f"{texts.RESUME_EARLIER} | {texts.RESTART} | {texts.MENU}" in told
    assert "Bạn chuẩn bị" in await say(service, "Tôi nhờ người khác nộp", user="on-kept")
    assert "Ai là người nộp hồ sơ?" in await say(service, "1", user="on-removed")  # back at ai-nop

    events = await service.store.events()
    versions = {e["content_version"] for e in events}
    assert versions == {before, service.holder.current.catalogue.version}
    assert [e["detail"] for e in events if e["type"] == "step-vanished"] == [
        {"root": "dang-ky-tam-tru", "resume_at": "ai-nop"}
    ]


async def test_unchanged_touches_are_not_recorded_but_reload_requests_are(service: Service, content_dir: Path) -> None:
    path = content_dir / FLOW
    os.utime(path, None)
    await until(lambda: not service.holder.changed())
    await asyncio.sleep(0.5)
    assert [ld.trigger for ld in await service.store.content_loads()] == ["start"]
    outcome = await service.reload("signal")
    assert outcome.status == "unchanged"
    assert [ld.trigger for ld in await service.store.content_loads()] == ["signal", "start"]


async def test_broken_content_at_start_is_recorded_for_status(content_dir: Path, tmp_path: Path) -> None:
    (content_dir / FLOW).write_text(BROKEN_FLOW, encoding="utf-8")
    db = tmp_path / "bot.db"
    proc = run("chat", "--json", "--content", str(content_dir), "--db", str(db))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 2  # the first problem, then how to see them all
    assert "flows/dang-ky-tam-tru.yaml:5:11" in proc.stderr
    shown = run("status", "--db", str(db))
    assert shown.returncode == 1
    assert "HỎNG (1 lỗi), bot không khởi động được" in shown.stdout
    assert "Nội dung đang dùng: chưa có" in shown.stdout


def test_status_and_reload_without_a_database_or_a_running_bot(tmp_path: Path) -> None:
    proc = run("status", "--db", str(tmp_path / "none.db"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("Lỗi: Không thấy cơ sở dữ liệu") and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "none.db").exists()
    db = tmp_path / "bot.db"
    assert run("chat", "--json", "--content", str(GOOD), "--db", str(db), stdin="").returncode == 0
    proc = run("reload", "--db", str(db))
    assert proc.returncode == 1
    assert "Không có bot nào đang chạy" in proc.stderr


def test_running_bot_process_picks_up_edits_and_status_reload_work_from_another_terminal(
    content_dir: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "bot.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_"))}
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--json", "--content", str(content_dir), "--db", db, "--user", "u1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**env, "BOT_RELOAD_SECONDS": "0.1"},
    )
    assert bot.stdin is not None and bot.stdout is not None

    def send(line: str) -> str:
        assert bot.stdin is not None and bot.stdout is not None
        bot.stdin.write(line + "\n")
        bot.stdin.flush()
        return " ".join(r["text"] for r in json.loads(bot.stdout.readline())["replies"])

    def status_json() -> dict[str, Any]:
        proc = run("status", "--json", "--db", db)
        return dict(json.loads(proc.stdout))

    def wait_for(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            data = status_json()
            if check(data):
                return data
            time.sleep(0.1)
        raise AssertionError(f"status never matched: {data}")

    try:
        assert ORIGINAL in send("/start dang-ky-tam-tru")
        first = status_json()["active_version"]

        edit(content_dir, ORIGINAL, EDITED)
        wait_for(lambda d: d["active_version"] != first)
        assert EDITED in send("lặp lại")

        (content_dir / FLOW).write_text(BROKEN_FLOW, encoding="utf-8")
        data = wait_for(lambda d: not d["last_load"]["ok"])
        [error] = data["last_load"]["errors"]
        assert (error["file"], error["line"]) == ("flows/dang-ky-tam-tru.yaml", 5)
        assert EDITED in send("lặp lại")  # still the last good version

        shown = run("status", "--db", db)
        assert "HỎNG (1 lỗi), bot vẫn dùng phiên bản cũ" in shown.stdout
        assert "flows/dang-ky-tam-tru.yaml:5:11: lỗi:" in shown.stdout

        asked = run("reload", "--db", db)
        assert asked.returncode == 1
        assert f"Tiến trình {bot.pid}: nội dung mới có 1 lỗi" in asked.stderr

        shutil.copy(GOOD / FLOW, content_dir / FLOW)
        asked = run("reload", "--db", db)
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert asked.stdout.startswith(f"Tiến trình {bot.pid}: đang dùng phiên bản {first}.")
        assert ORIGINAL in send("lặp lại")
    finally:
        bot.stdin.close()
        assert bot.wait(timeout=20) == 0
        bot.stdout.close()
        assert bot.stderr is not None
        bot.stderr.close()
    assert status_json()["running"] == []


def test_status_times_say_their_zone() -> None:
    from bot.status import when

    assert when(0.0) == "01/01/1970 07:00:00 (giờ Việt Nam)"  # UTC+7, labelled, since logs are in UTC
