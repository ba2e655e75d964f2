"""`python -m bot report`: where citizens give up, where they get stuck, what the bot did not understand.

The numbers come from SQL over the event log (see ``SqliteStore.analytics``); this module
orders them by flow, adds rates and percentiles, and writes a terminal table, JSON
(structure documented in docs/report.md) or CSV (UTF-8 with BOM, for Excel).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bot.schema import Catalogue
from bot.settings import VIETNAM_TZ

SIGNALS: Final = ("help", "back", "repeat", "not-understood")
TABLES: Final = ("procedures", "steps", "unmatched")


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def build(catalogue: Catalogue, data: Mapping[str, Any], filters: Mapping[str, Any]) -> dict[str, Any]:
    """The report as plain data (the JSON format)."""
    procedures = []
    for proc in catalogue.procedures:
        flow = catalogue.flow(proc.id)
        f = data["flows"].get(proc.id)
        if flow is None or f is None:
            continue
        started = f["started"]
        ended = f["completed"] + f["cancelled"] + f["left"] + f["abandoned"]
        seconds = data["durations"].get(proc.id, [])
        steps = []
        for step in flow.steps:
            s = data["steps"].get((proc.id, step.id))
            if s is None:
                continue
            sig = data["signals"].get((proc.id, step.id), {})
            reached, dropped = s["reached"], s["dropped"]
            moved_on = reached if step.kind == "end" else s.get("moved_on", 0)
            steps.append(
                {
                    "id": step.id,
                    "kind": step.kind,
                    "reached": reached,
                    "moved_on": moved_on,
                    "dropped": dropped,
                    "dropped_pct": round(100.0 * dropped / reached, 1) if reached else 0.0,
                    "median_seconds": round(s["median_seconds"], 1) if s.get("median_seconds") is not None else None,
                    **{k.replace("-", "_"): sig.get(k, 0) for k in SIGNALS},
                }
            )
        procedures.append(
            {
                "id": proc.id,
                "name": proc.name,
                "kind": proc.kind,
                "started": started,
                "completed": f["completed"],
                "completion_pct": round(100.0 * f["completed"] / started, 1) if started else 0.0,
                "abandoned": f["abandoned"],
                "cancelled": f["cancelled"],
                "left": f["left"],
                "in_progress": max(started - ended, 0),
                "median_seconds_to_complete": _median(seconds),
                "p90_seconds_to_complete": _percentile(seconds, 0.9),
                "exit_reasons": dict(sorted(data.get("exit_reasons", {}).get(proc.id, {}).items())),
                "steps": steps,
            }
        )
    return {
        "generated_at": datetime.now(VIETNAM_TZ).isoformat(timespec="seconds"),
        "filters": dict(filters),
        "procedures": procedures,
        "unmatched": [{"text": t, "count": n} for t, n in data["unmatched"]],
    }


def rows(report: Mapping[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """One table of the report as a header and rows (for CSV and the terminal)."""
    if table == "procedures":
        head = ["procedure", "name", "started", "completed", "completion_pct", "abandoned", "cancelled", "left"]
        head += ["in_progress", "median_seconds_to_complete", "p90_seconds_to_complete"]
        return head, [[p["id"], p["name"], *(p[k] for k in head[2:])] for p in report["procedures"]]
    if table == "steps":
        head = ["procedure", "step", "kind", "reached", "moved_on", "dropped", "dropped_pct", "median_seconds"]
        head += ["help", "back", "repeat", "not_understood"]
        return head, [
            [p["id"], *(s[k if k != "step" else "id"] for k in head[1:])]
            for p in report["procedures"]
            for s in p["steps"]
        ]
    head = ["text", "count"]
    return head, [[u["text"], u["count"]] for u in report["unmatched"]]


def to_csv(report: Mapping[str, Any], table: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    head, body = rows(report, table)
    writer.writerow(head)
    writer.writerows(["" if v is None else v for v in row] for row in body)
    return "\ufeff" + out.getvalue()  # the BOM makes Excel read UTF-8


def to_table(report: Mapping[str, Any]) -> str:
    lines = []
    for p in report["procedures"]:
        lines.append(
            f"{p['name']} ({p['id']}): bắt đầu {p['started']}, xong {p['completed']} ({p['completion_pct']}%), "
            f"bỏ dở {p['abandoned']}, tự dừng {p['cancelled']}, chuyển việc khác {p['left']}, đang làm {p['in_progress']}; "
            f"thời gian xong: trung vị {p['median_seconds_to_complete']} s, p90 {p['p90_seconds_to_complete']} s"
        )
        lines.append(
            f"  {'bước':<22}{'tới':>6}{'đi tiếp':>9}{'bỏ ở đây':>10}{'%':>7}{'giây':>8}{'giúp':>6}{'lùi':>5}{'lặp':>5}{'?':>5}"
        )
        for s in p["steps"]:
            median = "" if s["median_seconds"] is None else s["median_seconds"]
            lines.append(
                f"  {s['id']:<22}{s['reached']:>6}{s['moved_on']:>9}{s['dropped']:>10}{s['dropped_pct']:>7}"
                f"{median!s:>8}{s['help']:>6}{s['back']:>5}{s['repeat']:>5}{s['not_understood']:>5}"
            )
        if p["exit_reasons"]:
            lines.append("  Lý do dừng: " + ", ".join(f"{k} {v}" for k, v in p["exit_reasons"].items()))
        lines.append("")
    lines.append("Câu hỏi bot chưa hiểu (nhiều nhất trước):")
    lines += [f"  {u['count']:>5}  {u['text']}" for u in report["unmatched"]] or ["  (không có)"]
    return "\n".join(lines)
