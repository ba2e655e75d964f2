"""`graph` draws flows officials can read; `preview` walks a flow from any step and records nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bot import graph
from bot.content import load
from bot.engine import Content
from tests.conftest import DATA, GOOD, ROOT
from tests.test_cli import run

SNAPSHOTS = DATA / "graph"

# The Mermaid flowchart statements graph.mermaid may write, one per line. The
# snapshot below was also parsed with Mermaid 11 (mermaid.parse in Node) and read by a person.
NODE = r'[a-z0-9]+(\(\("[^"]*"\)\)|\["[^"]*"\]|\{"[^"]*"\}|\[/"[^"]*"/\]|\[\["[^"]*"\]\]|>"[^"]*"\]|\(\["[^"]*"\]\))'
MERMAID_LINE = re.compile(
    rf"^(flowchart TD|  %% .*|  {NODE}|  [a-z0-9]+ (-->|-\.->|==>)(\|\"[^\"]*\"\|)? [a-z0-9]+"
    r"|  classDef [a-z]+ [a-z:#0-9,\- ]+|  class [a-z0-9,]+ [a-z]+)$"
)


def unversioned(text: str) -> str:
    """Snapshots do not depend on the content hash in the title."""
    return re.sub(r"phiên bản [0-9a-f]{12}", "phiên bản …", text)


def mermaid_problems(text: str) -> list[str]:
    """Lines outside the grammar above, and edges to undeclared nodes."""
    lines = text.rstrip("\n").split("\n")
    bad = [line for line in lines if not MERMAID_LINE.match(line)]
    declared = {m.group(1) for line in lines if (m := re.match(r"^  ([a-z0-9]+)[\[\(\{>]", line))}
    for line in lines:
        if m := re.match(r"^  ([a-z0-9]+) (?:-->|-\.->|==>)(?:\|\"[^\"]*\"\|)? ([a-z0-9]+)$", line):
            bad += [f"undeclared node {n}" for n in m.groups() if n not in declared]
    return bad


def test_mermaid_for_a_flow_matches_the_reviewed_snapshot(content: Content) -> None:
    flow = content.catalogue.flow("dang-ky-tam-tru")
    assert flow is not None
    text = graph.mermaid(content.catalogue, flow)
    assert unversioned(text) == unversioned((SNAPSHOTS / "good-dang-ky-tam-tru.mmd").read_text(encoding="utf-8"))
    assert mermaid_problems(text) == []
    # what an official looks for: kinds, branches, the guide jump and its return, the loop, the end
    assert '  s1{"ai-nop<br/>❓ Ai là người nộp hồ sơ?"}' in text
    assert '  s4 -->|"Chưa đăng nhập được"| g0' in text and '  g0 ==>|"quay về"| s4' in text
    assert '  s3 -->|"Tiếp tục"| s2' in text  # back to the checklist: a loop
    assert "  s7 --> hetthutuc" in text


def test_dot_matches_the_snapshot(content: Content) -> None:
    flow = content.catalogue.flow("dang-ky-tam-tru")
    assert flow is not None
    text = graph.dot(content.catalogue, flow)
    assert unversioned(text) == unversioned((SNAPSHOTS / "good-dang-ky-tam-tru.dot").read_text(encoding="utf-8"))
    assert text.count("{") == text.count("}") and "\n\n" not in text


def test_every_shipped_flow_draws_within_the_mermaid_grammar() -> None:
    shipped = load(ROOT)
    for proc in shipped.catalogue.procedures:
        flow = shipped.catalogue.flow(proc.id)
        assert flow is not None
        text = graph.mermaid(shipped.catalogue, flow)
        assert mermaid_problems(text) == [], proc.id
        for step in flow.steps:
            assert f"{step.id}<br/>" in text


def test_unreachable_steps_and_guide_ends_are_marked(tmp_path: Path) -> None:
    target = tmp_path / "c"
    shutil.copytree(GOOD, target)
    flow_file = target / "flows" / "dang-ky-tam-tru.yaml"
    flow_file.write_text(
        flow_file.read_text(encoding="utf-8")
        + "  - id: bi-bo-quen\n    kind: message\n    text: 'Không ai tới đây (có \"ngoặc\")'\n    next: xong\n",
        encoding="utf-8",
    )
    c = load(target)
    flow = c.catalogue.flow("dang-ky-tam-tru")
    assert flow is not None
    text = graph.mermaid(c.catalogue, flow)
    assert "  class s8 khongtoi" in text
    assert "#quot;ngoặc#quot;" in text and mermaid_problems(text) == []
    guide = c.catalogue.flow("tai-khoan-vneid")
    assert guide is not None
    assert 'hetthutuc(("Quay về thủ tục đang làm"))' in graph.mermaid(c.catalogue, guide)


def test_graph_cli_writes_a_file_and_names_unknown_ids(tmp_path: Path) -> None:
    out = tmp_path / "so-do.mmd"
    proc = run("graph", "dang-ky-tam-tru", "--content", str(GOOD), "--out", str(out))
    assert proc.returncode == 0 and proc.stdout.strip() == f"Đã ghi sơ đồ vào {out}."
    written = out.read_text(encoding="utf-8")
    assert unversioned(written) == unversioned((SNAPSHOTS / "good-dang-ky-tam-tru.mmd").read_text(encoding="utf-8"))
    proc = run("graph", "dang-ky-tam-tr", "--content", str(GOOD))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        'Lỗi: Không có thủ tục hay hướng dẫn nào mã “dang-ky-tam-tr”. Có phải ý bạn là "dang-ky-tam-tru"? '
        "Các mã có: dang-ky-tam-tru, dang-ky-khai-sinh, tai-khoan-vneid, thanh-toan-truc-tuyen."
    )
    assert run("graph", "dang-ky-tam-tru", "--format", "png").returncode == 2


def preview(*args: str, stdin: str = "", db: Path | None = None) -> list[dict[str, object]]:
    env = {"BOT_DB": str(db)} if db else {}
    proc = run("preview", "--content", str(GOOD), "--json", *args, stdin=stdin, **env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def texts_of(turn: dict[str, object]) -> str:
    replies = turn["replies"]
    assert isinstance(replies, list)
    return "\n".join(str(r["text"]) for r in replies)


def test_preview_from_a_step_with_an_answer_and_nothing_is_written(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    turns = preview("dang-ky-tam-tru", "--step", "giay-to", "--answer", "ai-nop=nho-nguoi", stdin="2\n", db=db)
    assert "Văn bản ủy quyền" in texts_of(turns[0])  # shown because of the given answer
    assert "Giấy tờ chứng minh chỗ ở hợp pháp" in texts_of(turns[1])
    assert turns[1]["input"] == "2"
    assert not db.exists() and list(tmp_path.iterdir()) == []


def test_preview_from_the_start_to_the_end_on_a_chosen_date() -> None:
    turns = preview("dang-ky-tam-tru", "--date", "2023-01-01", stdin="1\n1\n1\n1\n")
    assert "Bắt đầu thủ tục “Đăng ký tạm trú”." in texts_of(turns[0])
    assert len(turns) == 5
    # The fee row starts on 2023-02-05, so on 2023-01-01 no amount is shown as in force.
    assert "7.000" not in texts_of(turns[4])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["dang-ky-tam-tru", "--step", "giay-t"], 1, 'không có bước “giay-t”. Có phải ý bạn là "giay-to"?'),
        (["dang-ky-tam-tru", "--answer", "giay-to=x"], 2, "“giay-to” không phải câu hỏi của dang-ky-tam-tru"),
        (["dang-ky-tam-tru", "--answer", "ai-nop=ban"], 2, "câu hỏi ai-nop chỉ có các lựa chọn: tu-nop, nho-nguoi"),
        (["dang-ky-tam-tru", "--date", "28/11/2026"], 2, "--date phải có dạng NĂM-THÁNG-NGÀY"),
        (
            ["khong-co"],
            1,
            "Không có thủ tục hay hướng dẫn nào mã “khong-co”. Các mã có: dang-ky-tam-tru, dang-ky-khai-sinh",
        ),
        (["dang-ky-tam-tru", "--step", "khong-co"], 1, "không có bước “khong-co”. Các bước có: gioi-thieu, "),
    ],
)
def test_preview_mistakes_are_one_clear_line(args: list[str], code: int, message: str) -> None:
    proc = run("preview", "--content", str(GOOD), *args)
    assert proc.returncode == code
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
