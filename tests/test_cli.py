"""CLI conventions: exit codes, one-line errors without tracebacks, shipped schemas and content."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import schema
from tests.conftest import GOOD, ROOT


def run(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_", "ZALO_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**base, **env},
    )


def test_shipped_content_is_valid_and_strict() -> None:
    proc = run("validate", "--strict")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Nội dung hợp lệ:")


def test_validate_json() -> None:
    proc = run("validate", "--json", "--content", str(GOOD))
    data = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert data["ok"] is True and data["errors"] == 0 and data["problems"] == []


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    content = tmp_path / "c"
    import shutil

    shutil.copytree(GOOD, content)
    (content / "flows" / "thua.yaml").write_text("procedure: thua\nsteps: []\n", encoding="utf-8")
    assert run("validate", "--content", str(content)).returncode == 0
    strict = run("validate", "--strict", "--content", str(content))
    assert strict.returncode == 1
    assert "flows/thua.yaml:1:1: cảnh báo: tệp kịch bản này không thuộc thủ tục nào" in strict.stdout


def test_shipped_schemas_match_the_format() -> None:
    for name, body in schema.json_schemas().items():
        shipped = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
        assert shipped == body, f"schemas/{name} is stale: run python -m bot schema --write schemas"


def test_content_files_point_editors_at_the_schemas() -> None:
    assert (
        (ROOT / "procedures.yaml")
        .read_text(encoding="utf-8")
        .startswith("# yaml-language-server: $schema=schemas/procedures.schema.json")
    )
    for flow in (ROOT / "flows").glob("*.yaml"):
        assert flow.read_text(encoding="utf-8").startswith(
            "# yaml-language-server: $schema=../schemas/flow.schema.json"
        ), flow


def test_schema_prints_both_kinds() -> None:
    proc = run("schema")
    assert proc.returncode == 0
    assert set(json.loads(proc.stdout)) == {"procedures.schema.json", "flow.schema.json"}


@pytest.mark.parametrize("args", [["nope"], ["validate", "--bogus"], ["chat", "--db"]])
def test_bad_usage_exits_2(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert "lỗi cách dùng" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_is_plain_words() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("validate", "chat", "run", "BOT_DB", "BOT_CONTENT"):
        assert word in proc.stdout


def test_broken_content_stops_chat_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "procedures.yaml").write_text("procedures: [\n", encoding="utf-8")
    proc = run("chat", "--json", "--content", str(tmp_path), "--db", str(tmp_path / "b.db"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3
    assert "python -m bot validate" in proc.stderr


def test_unusable_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"not a database" * 200)
    proc = run("chat", "--json", "--content", str(GOOD), "--db", str(tmp_path / "junk.db"), BOT_HASH_SECRET="x")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Lỗi: Không mở được cơ sở dữ liệu")
    assert "Traceback" not in proc.stderr


def test_run_without_token_is_the_console_chat(tmp_path: Path) -> None:
    proc = run("run", "--content", str(GOOD), "--db", str(tmp_path / "b.db"), stdin="")
    assert proc.returncode == 0
    assert "Xin chào!" in proc.stdout


def test_no_subcommand_runs(tmp_path: Path) -> None:
    proc = run(stdin="", BOT_DB=str(tmp_path / "b.db"), BOT_CONTENT=str(GOOD))
    assert proc.returncode == 0
    assert "Xin chào!" in proc.stdout
    assert (tmp_path / "hash-secret").is_file(), "the user-key secret is created next to the database"


def test_db_defaults_to_var_bot_db(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--json", "--content", str(GOOD)],
        input="chao\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | {"PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "var" / "bot.db").is_file()


def test_missing_dependency_is_one_line(tmp_path: Path) -> None:
    # A stand-in "rapidfuzz" that fails to import, first on the path.
    fake = tmp_path / "rapidfuzz"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ModuleNotFoundError('no', name='rapidfuzz')\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "validate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Lỗi: thiếu thư viện rapidfuzz. Hãy cài đặt trước: pip install -e . (xem README)."


def _deep_copy_of_good(tmp_path: Path) -> Path:
    import shutil

    content = tmp_path / "content"
    shutil.copytree(GOOD, content)
    flow = content / "flows" / "dang-ky-tam-tru.yaml"
    flow.write_text(flow.read_text(encoding="utf-8") + "\nghi_chu: " + "[" * 4000 + "]" * 4000 + "\n", encoding="utf-8")
    return content


def test_yaml_nested_thousands_deep_is_a_located_error_not_a_traceback(tmp_path: Path) -> None:
    content = _deep_copy_of_good(tmp_path)
    proc = run("validate", "--content", str(content))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    [problem] = [line for line in proc.stdout.splitlines() if "lồng nhau quá sâu" in line]
    assert problem.startswith("flows/dang-ky-tam-tru.yaml:")
    for command in (["chat"], ["serve", "--port", "0"], ["run"]):
        proc = run(
            *command,
            "--content",
            str(content),
            "--db",
            str(tmp_path / "b.db"),
            TELEGRAM_BOT_TOKEN="1:x",
            TELEGRAM_WEBHOOK_SECRET="s",
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, command
        assert "lồng nhau quá sâu" in proc.stderr


def test_console_survives_bytes_that_are_not_utf8_and_a_ten_megabyte_line(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_", "ZALO_"))}
    stdin = b"dk tam tru\n\xff\xfe hoi \xc3\n" + b"x" * (10 * 1024 * 1024) + b"\n1\n"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--json", "--db", str(tmp_path / "c.db")],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        env={**base, "PYTHONIOENCODING": "utf-8:strict"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(lines) == 4  # one answer per line, the huge one included
    assert lines[2]["replies"][0]["text"].startswith("Tin nhắn của bạn dài quá")
    assert len(lines[2]["input"]) <= 4097  # only the start of the line was read


def test_every_help_is_in_vietnamese_with_a_description() -> None:
    from bot.cli import build_parser

    parser = build_parser()
    english = ("usage:", "positional arguments", "options:", "show this help message", "optional arguments")
    top = parser.format_help()
    assert not [w for w in english if w in top]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, child in sub.choices.items():
        text = child.format_help()
        assert not [w for w in english if w in text], name
        assert child.description, f"{name} has no description line"


def test_a_usage_mistake_is_one_vietnamese_line_and_exit_2() -> None:
    proc = run("report", "--format", "xml")
    assert proc.returncode == 2
    assert "lựa chọn không hợp lệ" in proc.stderr and "invalid choice" not in proc.stderr


def test_every_subcommand_ends_its_help_with_examples_that_parse() -> None:
    import shlex

    from bot import cli

    parser = cli.build_parser()
    commands = {a.dest for a in parser._subparsers._group_actions[0]._choices_actions}  # type: ignore[union-attr]
    assert commands == set(cli.EXAMPLES)
    for command, examples in cli.EXAMPLES.items():
        help_text = run(command, "--help").stdout
        assert "Ví dụ:" in help_text and examples[0] in help_text, command
        for example in examples:
            words = shlex.split(example.split("#")[0].split("|")[-1].split(">")[0].split("<")[0])
            words = [w for w in words if "=" not in w or w.startswith("-")]
            assert words[:3] == ["python", "-m", "bot"], example
            parser.parse_args(words[3:])  # exits (fails the test) on an option that does not exist
