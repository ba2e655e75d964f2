"""Stages: officials tag steps with a stage; the report counts citizens by stage and lists steps by title."""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

from bot.engine import Event
from bot.loader import load_content
from bot.stages import path_order, stage_of, title
from tests.conftest import GOOD, ROOT
from tests.test_cli import run
from tests.test_report import PROC, ev, report, seeded

FLOW = "flows/dang-ky-tam-tru.yaml"
DAY = 86400.0


def edited(tmp_path: Path, file: str, old: str, new: str) -> Path:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    path = content / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return content


def test_each_step_gets_a_stage_by_its_tag_id_kind_or_the_step_before_it() -> None:
    cat = load_content(GOOD).catalogue
    assert cat is not None
    flow = cat.flow(PROC)
    assert flow is not None
    names = {sid: cat.stages[i].id for sid, i in stage_of(flow, cat.stages).items()}
    assert names["gioi-thieu"] == names["ai-nop"] == "tim-hieu"  # listed by id
    assert names["giay-to"] == "chuan-bi"  # a checklist, by kind
    assert names["thieu-giay-to"] == "chuan-bi"  # untagged: the stage of the step that leads to it
    assert names["dang-nhap"] == "dang-nhap"
    assert names["thanh-toan"] == names["xong"] == "thanh-toan"


def test_a_step_names_its_own_stage_and_title(tmp_path: Path) -> None:
    content = edited(
        tmp_path, FLOW, "  - id: thieu-giay-to\n    kind: handoff\n", "  - id: thieu-giay-to\n    kind: handoff\n"
        "    stage: tim-hieu\n    title: Hỏi xã về giấy tờ còn thiếu\n"
    )  # fmt: skip
    cat = load_content(content).catalogue
    assert cat is not None
    flow = cat.flow(PROC)
    assert flow is not None and (step := flow.step("thieu-giay-to")) is not None
    assert cat.stages[stage_of(flow, cat.stages)["thieu-giay-to"]].id == "tim-hieu"
    assert title(step) == "Hỏi xã về giấy tờ còn thiếu"


def test_steps_read_in_path_order_with_short_titles() -> None:
    cat = load_content(GOOD).catalogue
    assert cat is not None
    flow = cat.flow(PROC)
    assert flow is not None
    order = [s.id for s in path_order(flow)]
    assert order[:4] == ["gioi-thieu", "ai-nop", "giay-to", "dang-nhap"]
    assert set(order) == {s.id for s in flow.steps}
    intro = flow.step("gioi-thieu")
    assert intro is not None and title(intro, "Đăng ký tạm trú") == "Đăng ký tạm trú làm trực tuyến được"
    long = flow.step("ai-nop")
    assert long is not None and title(long) == "Ai là người nộp hồ sơ"


def test_an_unknown_stage_is_an_error_at_its_line_with_the_stages_to_use(tmp_path: Path) -> None:
    content = edited(
        tmp_path, FLOW, "  - id: xong\n    kind: end\n", "  - id: xong\n    kind: end\n    stage: thanh-toann\n"
    )
    proc = run("validate", "--content", str(content))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if "thanh-toann" in x]
    assert "flows/dang-ky-tam-tru.yaml:" in line and "lỗi" in line and "thanh-toan" in line.split("thanh-toann", 1)[1]


def test_a_step_id_claimed_by_two_stages_is_an_error(tmp_path: Path) -> None:
    content = edited(tmp_path, "procedures.yaml", "    steps: [dang-nhap]\n", "    steps: [dang-nhap, ai-nop]\n")
    problems = [p.format() for p in load_content(content).errors]
    assert any("procedures.yaml:" in p and 'bước "ai-nop" đã thuộc chặng "tim-hieu"' in p for p in problems)


def test_a_long_title_is_a_warning(tmp_path: Path) -> None:
    content = edited(tmp_path, FLOW, "    text: Ai là người nộp hồ sơ?\n", f"    text: Ai?\n    title: {'x' * 60}\n")
    warnings = [p.format() for p in load_content(content).warnings]
    assert any("tên bước dài 60 ký tự" in w for w in warnings)


async def test_the_report_counts_citizens_by_stage(tmp_path: Path) -> None:
    """The synthetic log of test_report: 100 start, 60 reach the papers, 40 the login, 30 pay and finish."""
    from tests.test_report import synthetic

    path = await seeded(tmp_path, synthetic())
    data = json.loads(report(path, "--format", "json"))
    [p] = [p for p in data["procedures"] if p["id"] == PROC]
    funnel = [(s["id"], s["reached"], s["dropped"], s["cancelled"], s["stuck"]) for s in p["stages"]]
    assert funnel == [
        ("tim-hieu", 100, 40, 0, 0),
        ("chuan-bi", 60, 20, 0, 5),
        ("dang-nhap", 40, 0, 10, 0),
        ("thanh-toan", 30, 0, 0, 0),
    ]
    # (the last stage: 10 s to pay, and 10 s at "Xong" until the flow completed)
    assert [s["median_seconds"] for s in p["stages"]] == [20.0, 10.0, 10.0, 20.0]
    # each lost citizen in one stage: what a stage loses is what the next one lacks
    reached = [s["reached"] for s in p["stages"]] + [p["completed"]]
    assert [s["dropped"] + s["cancelled"] for s in p["stages"]] == [a - b for a, b in itertools.pairwise(reached)]
    assert p["stages"][1]["lost_pct"] == 33.3
    assert [(s["id"], s["stage"]) for s in p["steps"]][:3] == [
        ("gioi-thieu", "tim-hieu"),
        ("ai-nop", "tim-hieu"),
        ("giay-to", "chuan-bi"),
    ]
    [top] = data["overview"][:1]
    assert (top["worst_stage"], top["worst_stage_lost"]) == ("Tìm hiểu", 40)
    rows = list(csv.DictReader(io.StringIO(report(path, "--format", "csv", "--table", "stages").lstrip("\ufeff"))))
    assert [(r["stage"], r["reached"]) for r in rows] == [
        ("tim-hieu", "100"),
        ("chuan-bi", "60"),
        ("dang-nhap", "40"),
        ("thanh-toan", "30"),
    ]
    table = report(path)
    assert "mất nhiều nhất ở chặng Tìm hiểu (40)" in table
    line = next(x for x in table.splitlines() if x.strip().startswith("Chuẩn bị giấy tờ"))
    assert line.split()[4:9] == ["60", "20", "0", "33.3", "5"]


async def test_a_run_that_goes_back_counts_at_its_furthest_stage_once(tmp_path: Path) -> None:
    """Two citizens reach the login, go back to the papers and give up there: they count once for every stage
    up to the login, and are lost at the furthest stage they reached."""
    events: list[Event] = []
    for u in range(2):
        events.append(ev(u, "flow-started", 0, procedure_id=PROC, step_id="gioi-thieu", via="match"))
        for t, (a, b) in enumerate(
            [(None, "gioi-thieu"), ("gioi-thieu", "ai-nop"), ("ai-nop", "giay-to"), ("giay-to", "dang-nhap")]
        ):
            events.append(ev(u, "step-entered", 10 * t, procedure_id=PROC, step_id=b, from_step=a, to_step=b))
        events.append(
            ev(u, "step-entered", 50, procedure_id=PROC, step_id="giay-to", from_step="dang-nhap", to_step="giay-to",
               via="back")
        )  # fmt: skip
    path = await seeded(tmp_path, events)
    data = json.loads(report(path, "--format", "json"))
    [p] = [p for p in data["procedures"] if p["id"] == PROC]
    assert [(s["id"], s["reached"]) for s in p["stages"]] == [
        ("tim-hieu", 2),
        ("chuan-bi", 2),
        ("dang-nhap", 2),
        ("thanh-toan", 0),
    ]
    # they gave up back at the papers, but got as far as the login: the funnel loses them there, once
    assert [s["dropped"] for s in p["stages"]] == [0, 0, 2, 0]
    assert next(s for s in p["steps"] if s["id"] == "giay-to")["dropped"] == 2  # the step table says where


async def test_version_comparison_shows_each_stage_side_by_side(tmp_path: Path) -> None:
    events: list[Event] = []
    for u in range(200):
        version = "aaa111" if u < 100 else "bbb222"
        far = 2 if (u < 100 and u < 30) or (u >= 100 and u < 170) else 1  # the papers: 30 of 100, then 70
        run_ = [ev(u, "flow-started", 0, procedure_id=PROC, step_id="gioi-thieu", via="match")]
        run_.append(ev(u, "step-entered", 0, procedure_id=PROC, step_id="gioi-thieu", to_step="gioi-thieu"))
        if far == 2:
            run_.append(
                ev(
                    u,
                    "step-entered",
                    5,
                    procedure_id=PROC,
                    step_id="giay-to",
                    from_step="gioi-thieu",
                    to_step="giay-to",
                )
            )
        events += [Event(**{**e.__dict__, "content_version": version}) for e in run_]
    path = await seeded(tmp_path, events)
    both = json.loads(report(path, "--format", "json", "--compare-versions", "aaa111", "bbb222"))
    [p] = both["procedures"]
    first = p["stages"][0]
    assert (first["id"], first["lost_pct_a"], first["lost_pct_b"], first["noise"]) == ("tim-hieu", 70.0, 30.0, False)
    table = report(path, "--compare-versions", "aaa111", "bbb222")
    assert (
        "theo chặng" in table
        and "Tìm hiểu" in table
        and "70.0% của 100 →  30.0% của 100 (-40.0)  ← khác biệt rõ" in table
    )
    html = report(path, "--format", "html", "--compare-versions", "aaa111", "bbb222")
    assert "<th>Chặng</th>" in html and "<td title='tim-hieu'>Tìm hiểu</td>" in html


def test_the_shipped_flows_have_every_stage_in_order_for_procedures() -> None:
    """Every shipped procedure (not guide) starts with Tìm hiểu and reaches submission and after it."""
    cat = load_content(ROOT).catalogue
    assert cat is not None and cat.stages[0].id == "tim-hieu"
    for proc in cat.procedures:
        flow = cat.flow(proc.id)
        if proc.is_guide or flow is None:
            continue
        stages = stage_of(flow, cat.stages)
        assert stages[flow.start] == 0, proc.id
        assert {cat.stages[i].id for i in stages.values()} >= {"nop-ho-so", "sau-khi-nop"}, proc.id


async def test_the_step_returned_to_from_a_guide_counts_as_reached(tmp_path: Path) -> None:
    """A citizen who could not log in finishes the VNeID guide, comes back to "Bây giờ bạn đã đăng nhập được
    chưa?" (another step than the one they left from) and stops there: that step was reached, and lost them."""
    from bot import engine
    from bot.content import load
    from bot.inflow_eval import CHANNEL, USER, start_session
    from bot.runner import vietnam_now

    content = load(ROOT)
    now = vietnam_now()
    session = start_session(content, "dang-ky-tam-tru", "dang-nhap", "", now)
    events: list[Event] = []
    for tap in ("o:chua-dang-nhap", "o:duoc"):  # into the guide; "Đã được" there ends it
        if tap == "o:duoc":
            session = start_session(content, "tai-khoan-vneid", "da-duoc-chua", "guide-from:dang-ky-tam-tru", now)
        result = engine.step(content, session, engine.Inbound(CHANNEL, USER, kind="choice", choice_id=tap), now)
        session, events = result.session, events + list(result.events)
    assert session.position is not None and session.position.step == "dang-nhap-lai"
    began = Event(
        ts=events[0].ts, user_key=events[0].user_key, channel=CHANNEL, type="flow-started",
        content_version=events[0].content_version, procedure_id="dang-ky-tam-tru", step_id="gioi-thieu",
    )  # fmt: skip
    old = [Event(**{**e.__dict__, "ts": e.ts - 400 * 86400}) for e in (began, *events)]
    path = await seeded(tmp_path, old)
    proc = run("report", "--content", str(ROOT), "--db", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    [p] = [p for p in json.loads(proc.stdout)["procedures"] if p["id"] == "dang-ky-tam-tru"]
    back = next(s for s in p["steps"] if s["id"] == "dang-nhap-lai")
    assert (back["reached"], back["dropped"]) == (1, 1)


def test_a_stage_listing_a_step_no_flow_has_is_a_warning_at_its_line(tmp_path: Path) -> None:
    content = edited(tmp_path, "procedures.yaml", "    steps: [dang-nhap]\n", "    steps: [dang-nhapp]\n")
    [warning] = [p.format() for p in load_content(content).warnings if "dang-nhapp" in p.format()]
    assert "procedures.yaml:" in warning and 'không kịch bản nào có bước "dang-nhapp"' in warning
    assert "dang-nhap" in warning.split("dang-nhapp", 2)[-1]  # the likely meant id
    long = edited(tmp_path / "x", "procedures.yaml", "    name: Đăng nhập VNeID\n", f"    name: {'Đăng nhập ' * 5}\n")
    assert any("tên chặng dài" in p.format() for p in load_content(long).warnings)


async def test_a_citizen_stopping_three_times_counts_once_and_a_guide_has_no_stages(tmp_path: Path) -> None:
    events: list[Event] = [ev(1, "flow-started", 0, procedure_id=PROC, step_id="gioi-thieu", via="match")]
    events.append(ev(1, "step-entered", 0, procedure_id=PROC, step_id="gioi-thieu", to_step="gioi-thieu"))
    events += [ev(1, "flow-cancelled", 10 + t, procedure_id=PROC, step_id="gioi-thieu") for t in range(3)]
    guide = "tai-khoan-vneid"
    events.append(
        ev(2, "step-entered", 0, procedure_id=guide, step_id="cach-dang-nhap", to_step="cach-dang-nhap", via="jump")
    )
    # a step an edit removed since
    events.append(ev(1, "step-entered", 20, procedure_id=PROC, step_id="cu", from_step="gioi-thieu", to_step="cu"))
    path = await seeded(tmp_path, events)
    data = json.loads(report(path, "--format", "json"))
    [p] = [p for p in data["procedures"] if p["id"] == PROC]
    first = p["stages"][0]
    assert (first["reached"], first["cancelled"]) == (1, 1) and first["lost_pct"] <= 100.0
    assert p["steps"][-1]["title"] == "(đã bỏ: cu)" and p["steps"][-1]["reached"] == 1
    [g] = [p for p in data["procedures"] if p["id"] == guide]
    assert g["stages"] == [] and {s["stage"] for s in g["steps"]} == {None}


def test_steps_whose_first_words_are_alike_are_told_apart() -> None:
    from bot.report import _distinct_titles

    steps = [{"title": "Xong"}, {"title": "Bạn cần gì"}, {"title": "Xong"}]
    assert [s["title"] for s in _distinct_titles(steps)] == ["Xong", "Bạn cần gì", "Xong (2)"]


async def test_a_citizen_who_gave_up_and_finished_days_later_is_not_lost(tmp_path: Path) -> None:
    events: list[Event] = [ev(1, "flow-started", 0, procedure_id=PROC, step_id="gioi-thieu", via="match")]
    events.append(ev(1, "step-entered", 0, procedure_id=PROC, step_id="gioi-thieu", to_step="gioi-thieu"))
    events.append(ev(1, "flow-cancelled", 60, procedure_id=PROC, step_id="gioi-thieu"))  # stops after a minute
    _, p = await _finished_on_day_three(tmp_path, events)
    assert [s["dropped"] + s["cancelled"] for s in p["stages"]] == [0, 0, 0, 0]
    intro = next(s for s in p["steps"] if s["id"] == "gioi-thieu")
    assert intro["median_seconds"] is not None and intro["median_seconds"] <= 60  # not the three days between


def test_a_stage_on_a_guide_step_is_a_warning(tmp_path: Path) -> None:
    guide = "flows/tai-khoan-vneid.yaml"
    text = (GOOD / guide).read_text(encoding="utf-8")
    first = text.split("  - id: ", 2)[1].split("\n", 1)[0]
    content = edited(tmp_path, guide, f"  - id: {first}\n", f"  - id: {first}\n    stage: tim-hieu\n")
    assert any("hướng dẫn dùng chung" in p.format() for p in load_content(content).warnings)


async def test_an_attempt_given_up_is_placed_at_its_own_step_and_day(tmp_path: Path) -> None:
    """A citizen goes quiet at "Ai là người nộp hồ sơ" on day 0, starts over on day 3 and finishes."""
    events: list[Event] = [ev(1, "flow-started", 0, procedure_id=PROC, step_id="gioi-thieu", via="match")]
    events.append(ev(1, "step-entered", 0, procedure_id=PROC, step_id="gioi-thieu", to_step="gioi-thieu"))
    events.append(ev(1, "step-entered", 10, procedure_id=PROC, step_id="ai-nop", to_step="ai-nop"))
    data, p = await _finished_on_day_three(tmp_path, events)
    steps = {s["id"]: s for s in p["steps"]}
    assert (steps["ai-nop"]["dropped"], steps["xong"]["dropped"]) == (1, 0)  # where the attempt stopped
    assert steps["ai-nop"]["median_seconds"] is not None and steps["ai-nop"]["median_seconds"] <= 10
    assert (p["started"], p["completed"], p["abandoned"]) == (2, 1, 1)
    trend = data["trend"]["rows"]
    assert trend[0]["abandoned"] == 1 and trend[-1]["abandoned"] == 0  # on the day it was given up


async def _finished_on_day_three(tmp_path: Path, before: list[Event]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``before``, then the same citizen starts over on day 3 and goes through to the end: the report, and
    the procedure's part of it."""
    events = list(before)
    events.append(ev(1, "flow-started", 3 * DAY, procedure_id=PROC, step_id="gioi-thieu", via="match"))
    for i, step_id in enumerate(["gioi-thieu", "ai-nop", "giay-to", "dang-nhap", "thanh-toan", "xong"]):
        events.append(ev(1, "step-entered", 3 * DAY + 10 * i, procedure_id=PROC, step_id=step_id, to_step=step_id))
    events.append(ev(1, "flow-completed", 3 * DAY + 60, procedure_id=PROC, step_id="xong", detail={"seconds": 60.0}))
    data = json.loads(report(await seeded(tmp_path, events), "--format", "json"))
    [p] = [p for p in data["procedures"] if p["id"] == PROC]
    return data, p


async def test_a_stop_reason_given_three_times_by_one_citizen_counts_once(tmp_path: Path) -> None:
    events: list[Event] = []
    for t in range(3):  # one citizen, three times "Để sau"
        events.append(ev(1, "exit-reason", t, procedure_id=PROC, step_id="ai-nop", detail={"reason": "de-sau"}))
    for u in (2, 3):  # two citizens, "Thiếu giấy tờ"
        events.append(ev(u, "exit-reason", 0, procedure_id=PROC, step_id="ai-nop", detail={"reason": "thieu-giay-to"}))
    for u in (1, 2, 3):
        events.append(ev(u, "flow-started", -1, procedure_id=PROC, step_id="gioi-thieu", via="match"))
    data = json.loads(report(await seeded(tmp_path, events), "--format", "json"))
    [p] = [p for p in data["procedures"] if p["id"] == PROC]
    assert p["exit_reasons"] == {"de-sau": 1, "thieu-giay-to": 2}
    assert data["overview"][0]["top_exit_reason"] == "thieu-giay-to"
