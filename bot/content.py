"""Loading a content set into what the engine needs, and holding the version in use."""

from __future__ import annotations

from pathlib import Path

from bot.engine import Content
from bot.errors import ContentError
from bot.loader import LoadResult, load_content
from bot.matcher import Matcher


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


class ContentHolder:
    """The content version currently served; swapped as a whole, never edited in place."""

    def __init__(self, content: Content, content_dir: Path) -> None:
        self.current = content
        self.content_dir = content_dir
