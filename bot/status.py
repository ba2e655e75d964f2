"""What officials see from another terminal: the content version in use, the last reload and its errors.

Also `reload`: find the bot processes using a database and ask them (SIGHUP) to
reload now, then wait for what each of them recorded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.settings import VIETNAM_TZ
from bot.storage import ContentLoad, Instance, Store

TRIGGERS = {"start": "lúc khởi động", "watch": "tự phát hiện tệp được sửa", "signal": "theo lệnh reload / SIGHUP"}
MAX_SHOWN_PROBLEMS = 20
# A process on another machine counts as running while its last heartbeat is this recent (three beats).
LIVE_SECONDS = 90.0


def when(ts: float) -> str:
    """A moment as officials read it: Vietnam time, labelled (logs are UTC)."""
    return datetime.fromtimestamp(ts, VIETNAM_TZ).strftime("%d/%m/%Y %H:%M:%S") + " (giờ Việt Nam)"


def _problem_line(p: Any) -> str:
    label = "lỗi" if p.get("severity") == "error" else "cảnh báo"
    text = f"{p.get('file', '?')}:{p.get('line', '?')}:{p.get('col', '?')}: {label}: {p.get('message', '')}"
    if p.get("hint"):
        text += f" {p['hint']}"
    return text


def is_running(instance: Instance, now: float | None = None) -> bool:
    """Whether a registered process still runs: on this host, its pid is a live bot process (not a reused
    pid); on another machine (workers sharing a server database), it sent a heartbeat lately."""
    if instance.host != socket.gethostname():
        return (now if now is not None else time.time()) - instance.seen_at < LIVE_SECONDS
    try:
        os.kill(instance.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{instance.pid}/cmdline")
    if cmdline.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return b"bot" in cmdline.read_bytes()
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class StatusReport:
    active_version: str
    active_since: float | None
    content_dir: str
    last: ContentLoad | None
    running: tuple[Instance, ...] = ()
    others: tuple[Instance, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.last is not None and self.last.ok

    def as_dict(self) -> dict[str, Any]:
        last = self.last
        return {
            "active_version": self.active_version or None,
            "active_since": when(self.active_since) if self.active_since else None,
            "content_dir": self.content_dir or None,
            "last_load": None
            if last is None
            else {
                "at": when(last.ts),
                "trigger": last.trigger,
                "ok": last.ok,
                "version": last.version,
                "pid": last.pid,
                "errors": [dict(p) for p in last.problems if p.get("severity") == "error"],
                "warnings": [dict(p) for p in last.problems if p.get("severity") != "error"],
            },
            "running": [
                {
                    "pid": i.pid,
                    "host": i.host,
                    "mode": i.mode,
                    "since": when(i.started_at),
                    "content_version": i.content_version or None,
                }
                for i in self.running
            ],
        }


async def gather(store: Store) -> StatusReport:
    loads = await store.content_loads(200)
    last = loads[0] if loads else None
    active = next((ld.active_version for ld in loads if ld.active_version), "")
    since: float | None = None
    content_dir = ""
    for ld in loads:
        if ld.active_version and ld.active_version != active:
            break
        if ld.ok and ld.version == active:
            since, content_dir = ld.ts, ld.content_dir
    instances = await store.instances()
    now = time.time()
    running = tuple(i for i in instances if is_running(i, now))
    others = tuple(i for i in instances if i.host != socket.gethostname() and not is_running(i, now))
    return StatusReport(active, since, content_dir, last, running, others)


def format_report(report: StatusReport, db: str) -> str:
    lines = [f"Cơ sở dữ liệu: {db}"]
    if report.active_version:
        since = f", nạp lúc {when(report.active_since)}" if report.active_since else ""
        lines.append(f"Nội dung đang dùng: phiên bản {report.active_version}{since}")
        if report.content_dir:
            lines.append(f"  từ thư mục {report.content_dir}")
    else:
        lines.append("Nội dung đang dùng: chưa có (bot chưa nạp được nội dung nào).")
    last = report.last
    if last is None:
        lines.append("Chưa có lần nạp nội dung nào được ghi lại.")
    else:
        how = TRIGGERS.get(last.trigger, last.trigger)
        errors = [p for p in last.problems if p.get("severity") == "error"]
        warnings = [p for p in last.problems if p.get("severity") != "error"]
        if last.ok:
            verdict = f"thành công, phiên bản {last.version}"
        elif last.active_version:
            verdict = f"HỎNG ({len(errors)} lỗi), bot vẫn dùng phiên bản cũ {last.active_version}"
        else:
            verdict = f"HỎNG ({len(errors)} lỗi), bot không khởi động được"
        lines.append(f"Lần nạp gần nhất: {when(last.ts)} ({how}, tiến trình {last.pid}): {verdict}.")
        shown = errors + warnings
        for p in shown[:MAX_SHOWN_PROBLEMS]:
            lines.append("  " + _problem_line(p))
        if len(shown) > MAX_SHOWN_PROBLEMS:
            lines.append(
                f"  … và {len(shown) - MAX_SHOWN_PROBLEMS} mục nữa (chạy `python -m bot validate` để xem hết)."
            )
        if errors:
            lines.append(
                "  Sửa các lỗi trên rồi lưu tệp: bot tự nạp lại. Kiểm tra trước bằng `python -m bot validate`."
            )
    here = socket.gethostname()
    if report.running:
        for i in report.running:
            where = "" if i.host == here else f" trên máy {i.host}"
            version = f", phiên bản {i.content_version}" if i.content_version else ""
            lines.append(f"Bot đang chạy: tiến trình {i.pid}{where} ({i.mode}{version}), từ {when(i.started_at)}.")
    else:
        lines.append("Không thấy bot nào đang chạy với cơ sở dữ liệu này.")
    for i in report.others:
        seen = when(i.seen_at) if i.seen_at else "chưa lần nào"
        lines.append(
            f"Bot trên máy {i.host}, tiến trình {i.pid} ({i.mode}): không có tín hiệu từ {seen}, có thể đã dừng."
        )
    return "\n".join(lines)


async def request_reload(store: Store, wait_seconds: float) -> tuple[list[str], bool]:
    """SIGHUP every running bot of this database on this host; wait for each one's recorded outcome."""
    running = [i for i in await store.instances() if is_running(i)]
    if not running:
        return [
            "Không có bot nào đang chạy trên máy này với cơ sở dữ liệu này; nội dung sẽ được nạp khi bot khởi động.",
        ], False
    started = time.time() - 0.001
    unreachable = []
    for i in running:
        try:
            os.kill(i.pid, signal.SIGHUP)
        except OSError as exc:  # it just exited, or belongs to another user
            unreachable.append(f"Tiến trình {i.pid}: không gửi được yêu cầu nạp lại ({exc.strerror}).")
    if unreachable:
        return unreachable, False
    waiting = {i.pid for i in running}
    answers: dict[int, ContentLoad] = {}
    deadline = time.monotonic() + wait_seconds
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        for seen in await store.content_loads(50):
            if seen.pid in waiting and seen.trigger == "signal" and seen.ts >= started:
                answers[seen.pid] = seen
                waiting.discard(seen.pid)
    lines: list[str] = []
    ok = True
    for i in running:
        ld = answers.get(i.pid)
        if ld is None:
            ok = False
            lines.append(f"Tiến trình {i.pid}: không trả lời sau {wait_seconds:g} giây. Xem `python -m bot status`.")
        elif ld.ok and ld.version == ld.active_version:
            lines.append(f"Tiến trình {i.pid}: đang dùng phiên bản {ld.version}.")
        else:
            ok = False
            errors = [p for p in ld.problems if p.get("severity") == "error"]
            lines.append(
                f"Tiến trình {i.pid}: nội dung mới có {len(errors)} lỗi, bot vẫn dùng phiên bản cũ {ld.active_version}."
            )
            lines += ["  " + _problem_line(p) for p in errors[:MAX_SHOWN_PROBLEMS]]
    return lines, ok
