"""Loading a content set into what the engine needs, and holding the version in use.

The holder swaps a whole new version in at once, only when it loaded without
errors; a broken edit leaves the last good version serving.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.engine import Content
from bot.errors import ContentError
from bot.loader import LoadResult, Problem, content_files, load_content
from bot.matcher import Matcher

Stamp = tuple[tuple[str, int, int], ...]


def build(result: LoadResult) -> Content:
    """The engine's view of a loaded content set; raises ContentError when it has errors."""
    if result.catalogue is None:
        first = result.errors[0].format() if result.errors else "không rõ lỗi"
        raise ContentError(
            f"Nội dung có {len(result.errors)} lỗi, bot không chạy được. Lỗi đầu tiên: {first}\n"
            "Chạy `python -m bot validate` để xem hết."
        )
    return Content(result.catalogue, Matcher(result.catalogue))


def load(content_dir: Path) -> Content:
    return build(load_content(content_dir))


def stamp(content_dir: Path) -> Stamp:
    """Name, modification time and size of every content file: cheap to poll."""
    out = []
    for path in content_files(content_dir):
        try:
            st = path.stat()
            out.append((path.name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((path.name, -1, -1))
    return tuple(out)


def _prepare(content_dir: Path) -> tuple[LoadResult, Content | None]:
    result = load_content(content_dir)
    content = build(result) if result.catalogue is not None else None
    if content is not None:
        content.warm()  # here, off the event loop, rather than at a citizen's message
    return result, content


@dataclass(frozen=True)
class ReloadOutcome:
    status: Literal["loaded", "unchanged", "failed"]
    version: str  # the version that was tried
    active_version: str  # the version served now
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class ContentHolder:
    """The content version currently served; swapped as a whole, never edited in place."""

    def __init__(self, content: Content, content_dir: Path) -> None:
        self.current = content
        self.content_dir = content_dir
        self.stamp = stamp(content_dir)
        self._lock = asyncio.Lock()

    def changed(self) -> bool:
        """Whether any content file was added, removed or modified since the last (attempted) load."""
        return stamp(self.content_dir) != self.stamp

    async def reload(self) -> ReloadOutcome:
        """Load and check the whole content set off the event loop; swap it in only if it has no errors."""
        async with self._lock:
            # Taken before reading: an edit made while loading shows up as a change at the next poll.
            before = stamp(self.content_dir)
            try:
                result, content = await asyncio.to_thread(_prepare, self.content_dir)
            except Exception as exc:  # a loader bug must not take the bot down or loop forever
                self.stamp = before
                problem = Problem("procedures.yaml", 1, 1, "error", f"không đọc được nội dung ({type(exc).__name__}).")
                return ReloadOutcome("failed", "?", self.current.catalogue.version, (problem,))
            self.stamp = before
            active = self.current.catalogue.version
            if content is None:
                return ReloadOutcome("failed", result.version, active, tuple(result.problems))
            if content.catalogue.version == active:
                return ReloadOutcome("unchanged", active, active, tuple(result.warnings))
            self.current = content
            return ReloadOutcome("loaded", content.catalogue.version, content.catalogue.version, tuple(result.warnings))
