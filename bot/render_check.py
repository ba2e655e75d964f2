"""Every step of every flow, rendered as citizens see it: long messages and repeated sentences, with locations.

A step is rendered for every combination of answers its checklist items depend on
and on every date a fee row starts or ends (and today), through the same engine the
channels use. Each message is measured the way Zalo shows it (text, links, then the
numbered choices and the hint), the longest of the channels' forms. ``validate`` warns
about what this finds; a test keeps the shipped content clean.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

from bot.engine import (
    CMD_REPEAT,
    MAX_REPLY_CHARS,
    Content,
    EngineConfig,
    Inbound,
    Position,
    Prompt,
    Reply,
    Session,
    needs_cutting,
    rendered_length,
    step,
    view_of,
)
from bot.loader import FLOWS_DIR, Problem, compose, node_at
from bot.schema import Flow
from bot.settings import VIETNAM_TZ

# A sentence ends at ". ", "! ", "? " or a line break ("100.000 đồng" is one number, not two sentences).
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+|\n")
__all__ = ["Finding", "findings", "render_problems", "rendered_length", "renderings", "says_findings"]


@dataclass(frozen=True)
class Rendering:
    """One way a step can look: the answers and date it was rendered with, and its messages."""

    procedure: str
    step: str
    answers: tuple[tuple[str, str], ...]
    day: date
    replies: tuple[Reply, ...]
    view: tuple[Reply, ...] = ()  # before long replies were cut into messages


def check_dates(content: Content, today: date) -> list[date]:
    """Today and every date a fee row starts or stops applying (the day after its last day)."""
    days = {today}
    for proc in content.catalogue.procedures:
        for fee in proc.fees:
            days.add(fee.valid_from)
            if fee.valid_to is not None:
                days.add(fee.valid_to + timedelta(days=1))
    return sorted(days)


def _answer_sets(flow: Flow, step_id: str) -> Iterator[dict[str, str]]:
    """Every combination of answers to the questions a step's checklist items depend on."""
    st = flow.step(step_id)
    questions = sorted({c.step for item in (st.items if st else ()) for c in item.when})
    options = [[o.id for o in q.options] if (q := flow.step(qid)) else [] for qid in questions]
    if not questions:
        yield {}
        return
    for combo in itertools.product(*options):
        yield {f"{flow.procedure_id}/{q}": a for q, a in zip(questions, combo, strict=True)}


def renderings(content: Content, days: Sequence[date], today: date) -> Iterator[Rendering]:
    """Every step of every flow, shown as it is shown on arriving there (``lặp lại``)."""
    for proc_id, flow in content.catalogue.flows.items():
        for st in flow.steps:
            if st.kind == "end":
                continue
            dated = days if st.kind == "payment" else [today]
            for answers in _answer_sets(flow, st.id):
                for day in dated:
                    now = datetime.combine(day, time(9, 0), VIETNAM_TZ)
                    session = Session(
                        position=Position(proc_id, st.id),
                        history=(Position(proc_id, flow.start),),
                        answers=answers,
                        last_seen=now.timestamp(),
                    )
                    inbound = Inbound("check", "check", kind="choice", choice_id=CMD_REPEAT)
                    config = EngineConfig(resume_after_seconds=float("inf"))
                    result = step(content, session, inbound, now, config)
                    view = tuple(view_of(content, session, now))
                    yield Rendering(proc_id, st.id, tuple(sorted(answers.items())), day, result.replies, view)


def sentences(text: str) -> list[str]:
    """The sentences of a text (for spotting one said twice); short fragments and bullets' marks ignored."""
    out = []
    for s in _SENTENCE_END.split(text):
        s = s.strip(" •-:\t").strip()
        if len(s) >= 25:
            out.append(s)
    return out


@dataclass(frozen=True)
class Finding:
    procedure: str
    step: str
    message: str
    hint: str
    at: tuple[str | int, ...] = ()  # where inside the step, e.g. ("options", 1, "says", 0)


def reminder_views(content: Content, today: date) -> Iterator[tuple[str, str, Reply]]:
    """(procedure, step, the reminder a citizen stopped there gets), for every step of every procedure."""
    now = datetime.combine(today, time(9, 0), VIETNAM_TZ)
    for proc in content.catalogue.procedures:
        flow = content.catalogue.flow(proc.id)
        if flow is None:  # (a guide too: a citizen may start one on its own and stop in it)
            continue
        for st in flow.steps:
            if st.kind != "end":
                session = Session(
                    position=Position(proc.id, st.id), started_at=now.timestamp(), prompt=Prompt("reminder")
                )
                yield proc.id, st.id, view_of(content, session, now)[0]


def findings(content: Content, today: date) -> list[Finding]:
    """Steps with a message over the limit, or a sentence said twice, each once; and reminders over the limit."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for proc_id, step_id, reminder in reminder_views(content, today):
        if needs_cutting(reminder):
            out.append(
                Finding(
                    proc_id,
                    step_id,
                    f"lời nhắc ở bước này dài {rendered_length(reminder)} ký tự (kể cả các nút), quá một tin nhắn "
                    f"{MAX_REPLY_CHARS} ký tự.",
                    "Viết câu nhắc (reminder: text:) ngắn lại, một hai câu.",
                    ("reminder", "text"),
                )
            )
    for r in renderings(content, check_dates(content, today), today):
        where = f" (ngày {r.day:%d/%m/%Y})" if r.day != today else ""
        for reply in r.view:
            length = rendered_length(reply)
            if needs_cutting(reply) and (r.procedure, r.step, "long") not in seen:
                seen.add((r.procedure, r.step, "long"))
                out.append(
                    Finding(
                        r.procedure,
                        r.step,
                        f"bước này dài {length} ký tự{where} và có dòng không vừa một tin nhắn {MAX_REPLY_CHARS} ký tự "
                        "(kể cả các nút), nên bot phải cắt giữa câu.",
                        "Viết mỗi câu một dòng, các ý cách nhau một dòng trống; bot gửi thành nhiều tin nhắn ngắn, "
                        "các nút đi cùng tin cuối.",
                    )
                )
        said = [s for reply in r.replies for s in sentences(reply.text)]
        twice = sorted({s for s in said if said.count(s) > 1})
        if twice and (r.procedure, r.step, "twice") not in seen:
            seen.add((r.procedure, r.step, "twice"))
            out.append(
                Finding(
                    r.procedure,
                    r.step,
                    f"câu “{twice[0][:80]}” xuất hiện hai lần trong bước này{where}.",
                    "Mỗi câu chỉ nên nói một lần; bỏ câu lặp trong text hoặc trong ghi chú lệ phí.",
                )
            )
    return out


def says_findings(content: Content, today: date) -> list[Finding]:
    """``says:`` phrases that, typed at their step, do not pick their own choice (a command, a tie, another choice)."""
    out = []
    now = datetime.combine(today, time(9, 0), VIETNAM_TZ)
    config = EngineConfig(resume_after_seconds=float("inf"))
    for proc_id, flow in content.catalogue.flows.items():
        for st in flow.steps:
            labels = {o.id: o.label for o in st.options}
            for j, option in enumerate(st.options):
                for k, phrase in enumerate(option.says):
                    session = Session(
                        position=Position(proc_id, st.id),
                        history=(Position(proc_id, flow.start),),
                        last_seen=now.timestamp(),
                    )
                    result = step(content, session, Inbound("check", "check", text=phrase), now, config)
                    got = result.session.answers.get(f"{proc_id}/{st.id}")
                    if got == option.id:
                        continue
                    if got is not None:
                        understood = f"nút “{labels.get(got, got)}”"
                    else:
                        reply = result.replies[0].text.split("\n")[0] if result.replies else ""
                        understood = f"câu khác (bot trả lời: “{reply[:60]}”)"
                    out.append(
                        Finding(
                            proc_id,
                            st.id,
                            f"cách nói “{phrase}” của nút “{option.label}”: bot hiểu là {understood}.",
                            "Viết cụm khác riêng của nút này (không trùng chữ của nút khác, không phải lệnh như "
                            "“quay lại”, “thôi”, hay chỉ “dạ”, “không”), hoặc bỏ cụm này.",
                            ("options", j, "says", k),
                        )
                    )
    return out


def _step_line(content_dir: Path, proc_id: str, step_id: str, at: tuple[str | int, ...] = ()) -> tuple[int, int]:
    """Line and column of a step in its flow file, or of a part of it (``at``) when that part is found."""
    try:
        node = compose((content_dir / FLOWS_DIR / f"{proc_id}.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return 1, 1
    steps = next((v for k, v in getattr(node, "value", []) if getattr(k, "value", None) == "steps"), None)
    for item in getattr(steps, "value", []):
        for k, v in getattr(item, "value", []):
            if getattr(k, "value", None) == "id" and getattr(v, "value", None) == step_id:
                inner = node_at(item, at) or item
                return inner.start_mark.line + 1, inner.start_mark.column + 1
    return 1, 1


def render_problems(content_dir: Path, content: Content, today: date) -> list[Problem]:
    """The findings as `validate` warnings, located at the step in its flow file."""
    out = []
    for f in [*findings(content, today), *says_findings(content, today)]:
        line, col = _step_line(content_dir, f.procedure, f.step, f.at)
        out.append(
            Problem(f"{FLOWS_DIR}/{f.procedure}.yaml", line, col, "warning", f"bước “{f.step}”: {f.message}", f.hint)
        )
    return out
