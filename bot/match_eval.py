"""Measuring the matcher on labelled citizen questions (the dev.tsv format: query, expected, note).

``expected`` is a procedure id, several acceptable ids joined by ``|``, or
``none`` for an out-of-scope question.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import BotError
from bot.matcher import Matcher, MatchResult

OUT_OF_SCOPE = "none"


@dataclass(frozen=True)
class Labelled:
    query: str
    expected: frozenset[str]  # empty for out-of-scope
    note: str
    line: int

    @property
    def in_scope(self) -> bool:
        return bool(self.expected)


def tsv_rows(path: Path, header: Sequence[str], shown: str) -> list[list[str]]:
    """The rows of a tab-separated file whose first line starts with ``header`` (``shown`` in the error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BotError(f"Không đọc được {path}: {exc.strerror}.") from exc
    rows = list(csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or [c.strip() for c in rows[0][: len(header)]] != list(header):
        raise BotError(f"{path}:1: dòng đầu phải là tiêu đề: {shown}.")
    return rows


def read_tsv(path: Path) -> list[Labelled]:
    rows = tsv_rows(path, ["query", "expected"], "query<TAB>expected<TAB>note")
    out = []
    for n, row in enumerate(rows[1:], 2):
        if not row or not row[0].strip():
            continue
        if len(row) < 2:
            raise BotError(f"{path}:{n}: thiếu cột expected (các cột cách nhau bằng dấu TAB).")
        expected = frozenset(e.strip() for e in row[1].split("|") if e.strip() and e.strip() != OUT_OF_SCOPE)
        out.append(Labelled(row[0], expected, row[2].strip() if len(row) > 2 else "", n))
    return out


@dataclass
class Tally:
    """Counts for one group of questions."""

    in_scope: int = 0
    top1: int = 0
    top3: int = 0
    confident_right: int = 0
    offered: int = 0  # right procedure confidently answered or among the offered choices
    confident_wrong: int = 0
    oos: int = 0
    oos_rejected: int = 0
    total: int = 0

    def add(self, item: Labelled, result: MatchResult) -> None:
        self.total += 1
        ids = [c.procedure_id for c in result.candidates]
        if not item.in_scope:
            self.oos += 1
            self.oos_rejected += result.status == "none"
            self.confident_wrong += result.status == "confident"
            return
        self.in_scope += 1
        self.top1 += bool(ids) and ids[0] in item.expected
        self.top3 += any(i in item.expected for i in ids[:3])
        if result.status == "confident":
            right = ids[0] in item.expected
            self.confident_right += right
            self.confident_wrong += not right
            self.offered += right
        elif result.status == "ambiguous":
            self.offered += any(i in item.expected for i in ids[:3])

    def as_dict(self) -> dict[str, Any]:
        def pct(a: int, b: int) -> float | None:
            return round(100.0 * a / b, 1) if b else None

        return {
            "questions": self.total,
            "in_scope": self.in_scope,
            "top1": pct(self.top1, self.in_scope),
            "top3": pct(self.top3, self.in_scope),
            "confident_correct": pct(self.confident_right, self.in_scope),
            "offered_correct": pct(self.offered, self.in_scope),
            "confidently_wrong": pct(self.confident_wrong, self.total),
            "out_of_scope": self.oos,
            "oos_rejected": pct(self.oos_rejected, self.oos),
        }


@dataclass
class Report:
    overall: Tally = field(default_factory=Tally)
    by_note: dict[str, Tally] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    misses: list[tuple[Labelled, MatchResult]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "overall": self.overall.as_dict(),
            "by_note": {k: v.as_dict() for k, v in sorted(self.by_note.items())},
            "latency_ms": {
                "p50": round(statistics.median(lat), 3) if lat else None,
                "p99": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3) if lat else None,
            },
        }


def evaluate(matcher: Matcher, items: Iterable[Labelled]) -> Report:
    report = Report()
    for item in items:
        t0 = time.perf_counter()
        result = matcher.match(item.query)
        report.latencies_ms.append((time.perf_counter() - t0) * 1000)
        report.overall.add(item, result)
        report.by_note.setdefault(item.note or "-", Tally()).add(item, result)
        ok = (
            result.status == "none"
            if not item.in_scope
            else result.status == "confident" and result.candidates[0].procedure_id in item.expected
        )
        if not ok:
            report.misses.append((item, result))
    return report


def format_report(report: Report, show_misses: bool = False) -> str:
    d = report.as_dict()

    def row(name: str, t: dict[str, Any]) -> str:
        def f(v: Any) -> str:
            return "—" if v is None else f"{v:.1f}"

        return (
            f"{name:<14}{t['questions']:>5}{f(t['top1']):>8}{f(t['top3']):>8}{f(t['confident_correct']):>10}"
            f"{f(t['offered_correct']):>10}{f(t['confidently_wrong']):>10}{f(t['oos_rejected']):>10}"
        )

    lines = [
        f"{'nhóm':<14}{'câu':>5}{'top1%':>8}{'top3%':>8}{'chắc-đúng':>10}{'có-trong':>10}{'chắc-sai':>10}{'loại-oos':>10}",
        row("TẤT CẢ", d["overall"]),
        *(row(k, v) for k, v in d["by_note"].items()),
        f"Độ trễ mỗi câu: p50 {d['latency_ms']['p50']} ms, p99 {d['latency_ms']['p99']} ms.",
    ]
    if show_misses:
        lines.append("")
        for item, result in report.misses:
            got = ", ".join(f"{c.procedure_id} {c.score:.0f}" for c in result.candidates) or "-"
            want = "|".join(sorted(item.expected)) or OUT_OF_SCOPE
            lines.append(f"{item.line}: [{result.status}] {item.query!r} → {got}  (đúng: {want})")
    return "\n".join(lines)


def result_json(query: str, result: MatchResult) -> dict[str, Any]:
    shown = sorted(result.candidates, key=lambda c: -c.score)
    out: dict[str, Any] = {
        "query": query,
        "status": result.status,
        "procedure": result.procedure_id,
        "candidates": [{"id": c.procedure_id, "score": c.score} for c in shown],
    }
    if result.family is not None:
        out["family"] = result.family  # a general question about sibling procedures: the family's question
    if result.gate_score is not None:
        # the intent gate: "law" (asks what the law says: answered with where to ask) or "do"
        out["gate"] = {"decision": result.intent, "score": result.gate_score}
    return out


def baseline_ok(report: Report, baseline: dict[str, Any], tolerance: float = 2.0) -> list[str]:
    """Regressions beyond ``tolerance`` points against a committed baseline (empty when none)."""
    now = report.as_dict()["overall"]
    out = []
    for key in ("top1", "oos_rejected"):
        if now[key] is not None and baseline.get(key) is not None and now[key] < baseline[key] - tolerance:
            out.append(f"{key}: {now[key]} < {baseline[key]} - {tolerance}")
    return out


def queries(lines: Sequence[str]) -> list[str]:
    return [line.rstrip("\r\n") for line in lines if line.strip()]
