"""Documentation lists what the code has: every event type, every setting."""

from __future__ import annotations

import re

from bot.engine import EVENT_TYPES
from bot.settings import SETTINGS
from tests.conftest import ROOT


def test_every_event_type_is_documented() -> None:
    doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", doc, flags=re.M)) - {
        "id",
        "ts",
        "user_key",
        "channel",
        "procedure_id",
        "content_version",
        "step_id",
        "via",
        "detail",
    }
    assert documented == set(EVENT_TYPES)


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for s in SETTINGS:
        assert f"`{s.env}`" in readme, s.env


def test_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", quick)
    assert len(commands) == 2
    assert commands[0].endswith("python -m bot")
    assert commands[1].endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -q -e '.[dev]' && .venv/bin/python -m pytest" in ci
