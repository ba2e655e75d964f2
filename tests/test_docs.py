"""Documentation lists what the code has: every event type, every setting."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bot.engine import EVENT_TYPES
from bot.loader import Problem, load_content
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


def test_the_authoring_guide_example_passes_validate(tmp_path: Path) -> None:
    """docs/authoring.md §12 says its example passes `validate`; keep that true as the format changes."""
    doc = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    section = doc.split("## 12. Ví dụ hoàn chỉnh", 1)[1].split("\n## 13.", 1)[0]
    entry, flow = re.findall(r"```yaml\n(.+?)```", section, flags=re.S)
    content = tmp_path / "content"
    shutil.copytree(ROOT / "flows", content / "flows")
    catalogue = (ROOT / "procedures.yaml").read_text(encoding="utf-8")
    assert catalogue.rstrip().splitlines()[-1].startswith("    ")  # procedures: is the last key
    example_id = "vi-du-gia-han-tam-tru"
    entry = entry.replace("id: gia-han-tam-tru", f"id: {example_id}").replace(
        "flows/gia-han-tam-tru.yaml", f"flows/{example_id}.yaml"
    )
    (content / "procedures.yaml").write_text(catalogue.rstrip() + "\n\n" + entry, encoding="utf-8")
    (content / "flows" / f"{example_id}.yaml").write_text(
        flow.replace("procedure: gia-han-tam-tru", f"procedure: {example_id}"), encoding="utf-8"
    )
    result = load_content(content)
    first_line = len(catalogue.rstrip().splitlines()) + 1

    def of_example(p: Problem) -> bool:
        return example_id in p.file or (p.file == "procedures.yaml" and p.line > first_line)

    assert [p.format() for p in result.problems if of_example(p)] == []


def test_compose_runs_the_bot_on_postgresql_with_health_checks() -> None:
    """compose.yaml (no Docker engine here to start it: its shape is checked instead)."""
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    db, bot = compose["services"]["db"], compose["services"]["bot"]
    assert db["image"].startswith("postgres:") and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"]) and "pgdata" in compose["volumes"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert (
        bot["environment"]["BOT_DB"].startswith("postgresql://dvcbot:")
        and "@db:5432/dvcbot" in bot["environment"]["BOT_DB"]
    )
    assert bot["command"][:4] == ["python", "-m", "bot", "serve"] and "--workers" in bot["command"]
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD=" in example and ".env" in (ROOT / ".gitignore").read_text().split()
