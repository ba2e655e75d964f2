"""Measuring how the bot understands what citizens type inside a procedure (the inflow-dev.tsv format).

Each row names a procedure and a step, what a citizen typed there, and the explicit input
it means: a command (``quay lại``, ``lặp lại``, ``trợ giúp``, ``hủy``, ``menu``) or
``choice:<label>`` for one of the step's choices by its label. Starting at that step,
the reply to the utterance must equal the reply to the explicit input. A row passes when
the two replies (texts and choices) are the same.

The conversation starts the way ``preview --step`` starts it: at that step, having come
along the shortest path from the flow's start (so "back" has somewhere to go); a
``guide-from:<procedure>`` context starts inside a guide entered from that procedure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bot import engine, texts
from bot.engine import Content, EngineConfig, Frame, Inbound, Position, Reply, Session
from bot.errors import BotError
from bot.match_eval import tsv_rows
from bot.schema import Flow

CHANNEL = "eval"
USER = "eval"
HEADER = ["procedure", "step", "utterance", "equivalent"]


@dataclass(frozen=True)
class Row:
    procedure: str
    step: str
    utterance: str
    equivalent: str
    note: str
    context: str
    line: int


def read_tsv(path: Path) -> list[Row]:
    rows = tsv_rows(path, HEADER, f"{'<TAB>'.join(HEADER)}<TAB>note<TAB>context")
    out = []
    for n, row in enumerate(rows[1:], 2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 4:
            raise BotError(f"{path}:{n}: cần ít nhất 4 cột cách nhau bằng dấu TAB: {', '.join(HEADER)}.")
        cells = [*row, "", ""]
        out.append(
            Row(cells[0].strip(), cells[1].strip(), cells[2], cells[3].strip(), cells[4].strip(), cells[5].strip(), n)
        )
    return out


def path_to(flow: Flow, target: str) -> list[str]:
    """Step ids from the flow's start to ``target`` (shortest), both included; just the target if unreachable."""
    edges: dict[str, list[str]] = {}
    for s in flow.steps:
        edges[s.id] = [o.next for o in s.options if o.next] + [n for n in (s.next, s.missing_next, s.failed_next) if n]
    came: dict[str, str | None] = {flow.start: None}
    queue = deque([flow.start])
    while queue:
        here = queue.popleft()
        if here == target:
            break
        for following in edges.get(here, []):
            if following not in came:
                came[following] = here
                queue.append(following)
    if target not in came:
        return [target]
    out = [target]
    while (prev := came[out[-1]]) is not None:
        out.append(prev)
    return out[::-1]


def start_session(content: Content, procedure: str, step: str, context: str, now: datetime) -> Session:
    """A citizen at ``step`` of ``procedure``, having come along the shortest path (inside a guide if asked)."""
    cat = content.catalogue
    flow = cat.flow(procedure)
    if flow is None or flow.step(step) is None:
        raise BotError(f"Không có bước “{step}” trong “{procedure}”.")
    stack: tuple[Frame, ...] = ()
    history: list[Position] = []
    if context.startswith("guide-from:"):
        caller = context.split(":", 1)[1]
        caller_flow = cat.flow(caller)
        if caller_flow is None:
            raise BotError(f"Không có thủ tục “{caller}” (cột context).")
        # Where the caller jumps into this guide, and where it comes back to.
        jumps = [(s.id, o.next) for s in caller_flow.steps for o in s.options if o.goto == procedure and o.next]
        jumps += [(s.id, s.next) for s in caller_flow.steps if s.goto == procedure and s.next]
        jumps += [(s.id, s.id) for s in caller_flow.steps if s.kind == "payment" and s.guide == procedure]
        jump = jumps[0] if jumps else None
        if jump is None:
            raise BotError(f"Thủ tục “{caller}” không dẫn vào hướng dẫn “{procedure}”.")
        at, back_to = jump
        history += [Position(caller, s) for s in path_to(caller_flow, at)]
        stack = (Frame(caller, str(back_to)),)
    history += [Position(procedure, s, stack) for s in path_to(flow, step)[:-1]]
    return Session(
        position=Position(procedure, step, stack),
        history=tuple(history),
        content_version=cat.version,
        last_seen=now.timestamp(),
        started_at=now.timestamp(),
    )


def inbound_for(content: Content, session: Session, equivalent: str, now: datetime) -> Inbound:
    """The explicit input a row's equivalent names: a command typed, or a choice tapped by its label."""
    if not equivalent.startswith("choice:"):
        return Inbound(CHANNEL, USER, kind="text", text=equivalent)
    label = equivalent.split(":", 1)[1].strip()
    shown = engine.step(content, session, Inbound(CHANNEL, USER, kind="choice", choice_id=engine.CMD_REPEAT), now)
    choices = [c for r in shown.replies for c in r.choices]
    # A label may carry the mark of an unconfirmed fact ("Chưa quá 15 ngày (*)"): the file names it without.
    match = next((c for c in choices if c.label == label), None) or next(
        (c for c in choices if c.label.removesuffix(texts.UNVERIFIED_MARK).strip() == label), None
    )
    if match is None:
        raise BotError(f"Bước này không có lựa chọn “{label}”; các lựa chọn: {', '.join(c.label for c in choices)}.")
    return Inbound(CHANNEL, USER, kind="choice", choice_id=match.id)


def as_seen(replies: Sequence[Reply]) -> list[tuple[str, tuple[str, ...]]]:
    return [(r.text, tuple(c.label for c in r.choices)) for r in replies]


@dataclass
class Outcome:
    row: Row
    passed: bool
    got: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    want: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    error: str = ""


def check(content: Content, row: Row, now: datetime) -> Outcome:
    try:
        session = start_session(content, row.procedure, row.step, row.context, now)
        config = EngineConfig()
        got = engine.step(content, session, Inbound(CHANNEL, USER, kind="text", text=row.utterance), now, config)
        want = engine.step(content, session, inbound_for(content, session, row.equivalent, now), now, config)
    except BotError as exc:
        return Outcome(row, False, error=str(exc))
    return Outcome(row, as_seen(got.replies) == as_seen(want.replies), as_seen(got.replies), as_seen(want.replies))


@dataclass
class Report:
    outcomes: list[Outcome]

    def by_category(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for o in self.outcomes:
            tally = out.setdefault(o.row.note or "-", [0, 0])
            tally[0] += o.passed
            tally[1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        total = len(self.outcomes)
        return {
            "overall": {
                "passed": self.passed,
                "total": total,
                "rate": round(100 * self.passed / total, 1) if total else 0,
            },
            "categories": {
                k: {"passed": p, "total": t, "rate": round(100 * p / t, 1)} for k, (p, t) in self.by_category().items()
            },
            "misses": [
                {
                    "line": o.row.line,
                    "at": f"{o.row.procedure}/{o.row.step}",
                    "utterance": o.row.utterance,
                    "equivalent": o.row.equivalent,
                }
                for o in self.outcomes
                if not o.passed
            ],
        }


def evaluate(content: Content, rows: Iterable[Row], now: datetime) -> Report:
    return Report([check(content, row, now) for row in rows])


def format_report(report: Report, show_misses: bool = False) -> str:
    total = len(report.outcomes)
    lines = [f"Tổng: {report.passed}/{total} câu đúng ({100 * report.passed / max(total, 1):.1f}%)", ""]
    lines.append(f"{'nhóm':22} {'đúng':>5} {'tổng':>5} {'tỉ lệ':>7}")
    for category, (p, t) in report.by_category().items():
        lines.append(f"{category:22} {p:5} {t:5} {100 * p / t:6.1f}%")
    if show_misses:
        misses = [o for o in report.outcomes if not o.passed]
        if misses:
            lines += ["", "Các câu chưa đúng:"]
        for o in misses:
            lines.append(
                f"  dòng {o.row.line} [{o.row.note}] {o.row.procedure}/{o.row.step}: “{o.row.utterance}” ≠ {o.row.equivalent}"
            )
            if o.error:
                lines.append(f"      lỗi: {o.error}")
            elif o.got:
                lines.append(f"      bot trả lời: {o.got[0][0][:120]!r}")
    return "\n".join(lines)


def meets(report: Report, overall: float, per_category: float) -> list[str]:
    """What falls short of the targets (empty when they hold)."""
    total = len(report.outcomes)
    short = []
    if total and 100 * report.passed / total < overall:
        short.append(f"overall {100 * report.passed / total:.1f}% < {overall}%")
    for category, (p, t) in report.by_category().items():
        if 100 * p / t < per_category:
            short.append(f"{category} {100 * p / t:.1f}% < {per_category}%")
    return short


__all__ = ["Report", "Row", "evaluate", "format_report", "meets", "read_tsv", "start_session"]
