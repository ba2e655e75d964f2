"""`python -m bot report`: where citizens give up, where they get stuck, what the bot did not understand.

The numbers come from SQL over the event log (see ``bot.storage.analytics``); this module
orders them by flow, adds rates and percentiles, and writes a terminal table, JSON
(structure documented in docs/report.md) or CSV (UTF-8 with BOM, for Excel).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from html import escape
from typing import Any, Final

from bot import texts
from bot.schema import Catalogue, Stage
from bot.settings import VIETNAM_TZ
from bot.stages import path_order, stage_of, title

SIGNALS: Final = ("help", "back", "repeat", "not-understood")
TABLES: Final = (
    "overview",
    "channels",
    "trend",
    "procedures",
    "stages",
    "steps",
    "reminders",
    "unmatched",
    "unresolved",
)


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
        # a guide is one piece of help, not a procedure's stages
        at_stage = {} if proc.kind == "guide" else stage_of(flow, catalogue.stages)
        order = path_order(flow)
        if at_stage:  # the path, stage by stage: a branch's steps sit with their stage
            order.sort(key=lambda st: at_stage[st.id])
        for step in order:
            s = data["steps"].get((proc.id, step.id))
            if s is None:
                continue
            stage = catalogue.stages[at_stage[step.id]].id if at_stage else None
            steps.append(_step_row(proc.id, step.id, title(step, proc.name), stage, step.kind, s, data))
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
                "stages": _stage_funnel(catalogue.stages, set(at_stage.values()), proc.id, steps, data)
                if at_stage
                else [],
                "steps": _distinct_titles(steps) + _gone_steps(flow.by_id, proc.id, data),
            }
        )
    names = {p.id: p.name for p in catalogue.procedures}
    reminders = []
    for (pid, step_id), r in data.get("reminders", {}).items():
        reminded = catalogue.procedure(pid)
        flow = catalogue.flow(pid)
        st = flow.step(step_id) if flow is not None else None
        reminders.append(
            {
                "procedure": pid,
                "name": reminded.name if reminded else pid,
                "step": step_id,
                "title": title(st, reminded.name if reminded else "") if st is not None else step_id,
                "sent": r["sent"],
                "came_back": r["sent_back"],
                "came_back_pct": _pct(r["sent_back"], r["sent"]),
                "completed": r["sent_done"],
                "completed_pct": _pct(r["sent_done"], r["sent"]),
                "not_sent": r["skipped"],
                "not_sent_came_back_pct": _pct(r["skipped_back"], r["skipped"]),
                "not_sent_completed_pct": _pct(r["skipped_done"], r["skipped"]),
                "opted_out": r["opted_out"],
            }
        )
    reminders.sort(key=lambda r: (-r["sent"], -r["not_sent"], r["procedure"], r["step"]))
    return {
        "generated_at": datetime.now(VIETNAM_TZ).isoformat(timespec="seconds"),
        "filters": dict(filters),
        "overview": overview(procedures),
        "trend": trend(data.get("trend", {})),
        "channels": [
            {
                "channel": name,
                **c,
                "completion_pct": round(100.0 * c["completed"] / c["started"], 1) if c["started"] else 0.0,
                "lost_pct": round(100.0 * (c["abandoned"] + c["cancelled"]) / c["started"], 1) if c["started"] else 0.0,
            }
            for name, c in sorted(data.get("channels", {}).items(), key=lambda kv: -kv[1]["started"])
            if c["started"]
        ],
        "procedures": procedures,
        "reminders": reminders,
        "unmatched": [{"text": t, "count": n} for t, n in data["unmatched"]],
        "unresolved": [
            {"text": t, "offered": [names.get(c, c) for c in offered], "count": n}
            for t, offered, n in data.get("unresolved", [])
        ],
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _distinct_titles(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two steps whose first words are the same are told apart by a number: "… (2)"."""
    seen: dict[str, int] = {}
    for s in steps:
        seen[s["title"]] = seen.get(s["title"], 0) + 1
        if seen[s["title"]] > 1:
            s["title"] = f"{s['title']} ({seen[s['title']]})"
    return steps


def _step_row(
    pid: str,
    step_id: str,
    title_: str,
    stage: str | None,
    kind: str | None,
    s: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """One row of a procedure's step table (the JSON format), from the store's counts for the step."""
    sig = data["signals"].get((pid, step_id), {})
    reached, dropped = s["reached"], s["dropped"]
    return {
        "id": step_id,
        "title": title_,
        "stage": stage,
        "kind": kind,
        "reached": reached,
        "moved_on": reached if kind == "end" else s.get("moved_on", 0),
        "dropped": dropped,
        "dropped_pct": round(100.0 * dropped / reached, 1) if reached else 0.0,
        "cancelled": s.get("cancelled", 0),
        "median_seconds": round(s["median_seconds"], 1) if s.get("median_seconds") is not None else None,
        **{k.replace("-", "_"): sig.get(k, 0) for k in SIGNALS},
        "exit_reasons": dict(sorted(data.get("step_exit_reasons", {}).get((pid, step_id), {}).items())),
    }


def _gone_steps(known: Mapping[str, Any], proc_id: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Steps the log has and the flow no longer has (an edit removed or renamed them), last, by id."""
    return [
        _step_row(pid, step_id, f"(đã bỏ: {step_id})", None, None, s, data)
        for (pid, step_id), s in sorted(data["steps"].items())
        if pid == proc_id and step_id not in known
    ]


def _stage_funnel(
    stages: Sequence[Stage],
    present: set[int],
    proc_id: str,
    steps: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Per stage, in order: the citizens who got at least this far, those lost there (never completed, and
    this was the furthest stage they reached), the stuck signals at its steps and the median time spent in it."""
    furthest = data.get("stage_furthest", {})
    seconds = data.get("stage_seconds", {})
    lost = data.get("stage_lost", {})
    out = []
    beyond = sum(n for (pid, _), n in furthest.items() if pid == proc_id)
    for i, st in enumerate(stages):
        mine = [s for s in steps if s["stage"] == st.id]
        reached = beyond
        beyond -= furthest.get((proc_id, i), 0)
        if i not in present:  # the flow has no step in this stage
            continue
        # each lost citizen once, at the furthest stage they reached (so a stage loses what the next lacks)
        dropped = lost.get((proc_id, i, "dropped"), 0)
        cancelled = lost.get((proc_id, i, "cancelled"), 0)
        out.append(
            {
                "id": st.id,
                "name": st.name,
                "reached": reached,
                "dropped": dropped,
                "cancelled": cancelled,
                "lost_pct": min(100.0, round(100.0 * (dropped + cancelled) / reached, 1)) if reached else 0.0,
                "stuck": sum(s[k.replace("-", "_")] for s in mine for k in SIGNALS),
                "median_seconds": round(seconds[(proc_id, i)], 1) if (proc_id, i) in seconds else None,
            }
        )
    return out


CHANNEL_NAMES: Final = {
    "console": "Màn hình (thử)",
    "telegram": "Telegram",
    "zalo-bot": "Zalo Bot",
    "zalo-oa": "Zalo OA",
}
TREND_DAYS: Final = 62  # a longer range is shown by week


def trend(days: Mapping[int, Mapping[str, int]]) -> dict[str, Any]:
    """Starts, completions, stops and abandonment per day (per week, from Monday, over a longer range)."""
    keys = ("started", "completed", "cancelled", "abandoned")
    if not days:
        return {"by": "day", "rows": []}
    first, last = min(days), max(days)
    weekly = last - first + 1 > TREND_DAYS
    buckets: dict[date, dict[str, int]] = {}
    for d in range(first, last + 1):
        when = date(1970, 1, 1) + timedelta(days=d)
        if weekly:
            when -= timedelta(days=when.weekday())
        row = buckets.setdefault(when, dict.fromkeys(keys, 0))
        for k in keys:
            row[k] += days.get(d, {}).get(k, 0)
    return {
        "by": "week" if weekly else "day",
        "rows": [{"from": when.isoformat(), **row} for when, row in sorted(buckets.items())],
    }


def _two_proportions(done_a: int, n_a: int, done_b: int, n_b: int) -> tuple[float, bool]:
    """The z statistic of a two-proportion test and whether both groups are big enough to read it (10 of
    each outcome in each group); |z| >= 1.96 is a difference unlikely to be chance (5%)."""
    if not n_a or not n_b:
        return 0.0, False
    pooled = (done_a + done_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (done_b / n_b - done_a / n_a) / spread if spread else 0.0
    enough = min(done_a, n_a - done_a, done_b, n_b - done_b) >= 10
    return round(z, 2), enough


def compare(before: Mapping[str, Any], after: Mapping[str, Any], a: str, b: str) -> dict[str, Any]:
    """Two reports (content versions ``a`` then ``b``) side by side: completion and each step's losses,
    with the difference and whether it could be noise."""
    old = {p["id"]: p for p in before["procedures"]}
    rows = []
    for p in after["procedures"]:
        q = old.get(p["id"])
        if q is None:
            continue
        z, enough = _two_proportions(q["completed"], q["started"], p["completed"], p["started"])
        rows.append(
            {
                "id": p["id"],
                "name": p["name"],
                "started_a": q["started"],
                "completion_pct_a": q["completion_pct"],
                "started_b": p["started"],
                "completion_pct_b": p["completion_pct"],
                "change": round(p["completion_pct"] - q["completion_pct"], 1),
                "z": z,
                "noise": not enough or abs(z) < 1.96,
                "stages": _losses_side_by_side(q["stages"], p["stages"]),
                "steps": _losses_side_by_side(q["steps"], p["steps"]),
            }
        )
    return {"version_a": a, "version_b": b, "filters": after["filters"], "procedures": rows}


def _losses_side_by_side(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each stage's (or step's) share of its arrivals lost there, before and after, and whether the
    difference could be noise."""
    old = {s["id"]: s for s in before}
    out = []
    for s in after:
        t = old.get(s["id"])
        if t is None or not (t["reached"] or s["reached"]):
            continue
        lost_a, lost_b = t["dropped"] + t["cancelled"], s["dropped"] + s["cancelled"]
        pct_a = round(100.0 * lost_a / t["reached"], 1) if t["reached"] else 0.0
        pct_b = round(100.0 * lost_b / s["reached"], 1) if s["reached"] else 0.0
        z, enough = _two_proportions(lost_a, t["reached"], lost_b, s["reached"])
        out.append(
            {
                "id": s["id"],
                "name": s.get("name") or s.get("title") or s["id"],
                "reached_a": t["reached"],
                "reached_b": s["reached"],
                "lost_pct_a": pct_a,
                "lost_pct_b": pct_b,
                "change": round(pct_b - pct_a, 1),
                "z": z,
                "noise": not enough or abs(z) < 1.96,
            }
        )
    return out


def compare_table(c: Mapping[str, Any]) -> str:
    lines = [f"So sánh phiên bản nội dung {c['version_a']} (trước) với {c['version_b']} (sau):"]
    for p in c["procedures"]:
        flag = "có thể chỉ là ngẫu nhiên" if p["noise"] else "khác biệt rõ"
        lines.append(
            f"{p['name']} ({p['id']}): hoàn thành {p['completion_pct_a']}% ({p['started_a']} lượt) → "
            f"{p['completion_pct_b']}% ({p['started_b']} lượt), {p['change']:+} điểm, {flag}"
        )
        for head, part in (("chặng", p["stages"]), ("bước", p["steps"])):
            if part:
                lines.append(f"  theo {head}: phần người tới mà bị mất ở đó, trước → sau")
            for s in part:
                mark = "" if s["noise"] else "  ← khác biệt rõ"
                lines.append(
                    f"    {_short(s['name'], 33):<34} {s['lost_pct_a']:>5}% của {s['reached_a']} → "
                    f"{s['lost_pct_b']:>5}% của {s['reached_b']} ({s['change']:+}){mark}"
                )
    if not c["procedures"]:
        lines.append("  (không có thủ tục nào có người làm ở cả hai phiên bản)")
    return "\n".join(lines)


def compare_html(c: Mapping[str, Any]) -> str:
    out = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>So sánh hai phiên bản nội dung</title>",
        "<style>body{font-family:Arial,sans-serif;margin:24px auto;max-width:1000px}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:4px 8px}td.n{text-align:right}.clear{font-weight:bold}</style></head><body>",
        f"<h1>So sánh phiên bản {escape(c['version_a'])} (trước) và {escape(c['version_b'])} (sau)</h1>",
    ]
    for p in c["procedures"]:
        out.append(
            f"<h2>{escape(p['name'])}</h2><p>Hoàn thành {p['completion_pct_a']}% → {p['completion_pct_b']}% "
            f"({p['change']:+} điểm; {'có thể chỉ là ngẫu nhiên' if p['noise'] else 'khác biệt rõ'})</p>"
        )
        for head, part in (("Chặng", p["stages"]), ("Bước", p["steps"])):
            rows = [
                [
                    f"<td title='{escape(s['id'])}'>{escape(s['name'])}</td>",
                    _num(f"{s['lost_pct_a']}% của {s['reached_a']}"),
                    _num(f"{s['lost_pct_b']}% của {s['reached_b']}"),
                    f"<td class='n{'' if s['noise'] else ' clear'}'>{s['change']:+}</td>",
                ]
                for s in part
            ]
            out += _table([head, "Mất (trước)", "Mất (sau)", "Thay đổi (điểm)"], rows)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def overview(procedures: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Procedures ranked by citizens lost (abandoned + stopped), with where and why they were lost most."""
    out = []
    for p in procedures:
        if not p["started"]:
            continue
        worst = max(p["steps"], key=lambda s: (s["dropped"] + s["cancelled"], -p["steps"].index(s)), default=None)
        lost_there = (worst["dropped"] + worst["cancelled"]) if worst else 0
        # most citizens lost; between equals, the larger share of those who got there
        stage = max(p["stages"], key=lambda s: (s["dropped"] + s["cancelled"], s["lost_pct"]), default=None)
        lost_in_stage = (stage["dropped"] + stage["cancelled"]) if stage else 0
        reasons = sorted(p["exit_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(
            {
                "id": p["id"],
                "name": p["name"],
                "started": p["started"],
                "lost": p["abandoned"] + p["cancelled"],
                "lost_pct": round(100.0 * (p["abandoned"] + p["cancelled"]) / p["started"], 1),
                "completion_pct": p["completion_pct"],
                "worst_stage": stage["name"] if stage and lost_in_stage else None,
                "worst_stage_id": stage["id"] if stage and lost_in_stage else None,
                "worst_stage_lost": lost_in_stage,
                "worst_step": worst["id"] if worst and lost_there else None,
                "worst_step_title": worst["title"] if worst and lost_there else None,
                "worst_step_lost": lost_there,
                "top_exit_reason": reasons[0][0] if reasons else None,
            }
        )
    out.sort(key=lambda o: (-o["lost"], o["id"]))
    return out


def rows(report: Mapping[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """One table of the report as a header and rows (for CSV and the terminal)."""
    if table == "procedures":
        head = ["procedure", "name", "started", "completed", "completion_pct", "abandoned", "cancelled", "left"]
        head += ["in_progress", "median_seconds_to_complete", "p90_seconds_to_complete"]
        return head, [[p["id"], p["name"], *(p[k] for k in head[2:])] for p in report["procedures"]]
    if table == "stages":
        head = ["procedure", "stage", "name", "reached", "dropped", "cancelled", "lost_pct", "stuck", "median_seconds"]
        return head, [[p["id"], s["id"], *(s[k] for k in head[2:])] for p in report["procedures"] for s in p["stages"]]
    if table == "steps":
        head = ["procedure", "step", "title", "stage", "kind", "reached", "moved_on", "dropped", "dropped_pct"]
        head += ["cancelled"]
        head += ["median_seconds"]
        head += ["help", "back", "repeat", "not_understood", "exit_reasons"]

        def cell(s: Mapping[str, Any], k: str) -> Any:
            if k == "exit_reasons":
                return "; ".join(f"{r} {n}" for r, n in s[k].items())
            return s[k if k != "step" else "id"]

        return head, [[p["id"], *(cell(s, k) for k in head[1:])] for p in report["procedures"] for s in p["steps"]]
    if table == "channels":
        head = ["channel", "started", "completed", "completion_pct", "cancelled", "abandoned", "lost_pct"]
        return head, [[c[k] for k in head] for c in report["channels"]]
    if table == "trend":
        head = ["from", "started", "completed", "cancelled", "abandoned"]
        return head, [[r[k] for k in head] for r in report["trend"]["rows"]]
    if table == "overview":
        head = ["procedure", "name", "started", "lost", "lost_pct", "completion_pct", "worst_stage", "worst_stage_id"]
        head += ["worst_stage_lost"]
        head += ["worst_step", "worst_step_lost", "top_exit_reason"]
        return head, [[o["id"], *(o[k] for k in head[1:])] for o in report["overview"]]
    if table == "reminders":
        head = ["procedure", "step", "title", "sent", "came_back", "came_back_pct", "completed", "completed_pct"]
        head += ["not_sent", "not_sent_came_back_pct", "not_sent_completed_pct", "opted_out"]
        return head, [[r[k] for k in head] for r in report["reminders"]]
    if table == "unresolved":
        return ["text", "offered", "count"], [
            [u["text"], "; ".join(u["offered"]), u["count"]] for u in report["unresolved"]
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


def duration(seconds: float | None) -> str:
    """A time as people say it: "40 giây", "27 phút", "2 giờ 5 phút", "3 ngày"; "—" when there is none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{round(seconds)} giây"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} phút"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} giờ" + (f" {rest} phút" if rest else "")
    return f"{round(minutes / 1440)} ngày"


def filters_text(filters: Mapping[str, Any]) -> str:
    """The report's filters in words ("từ ngày 2026-11-01, thủ tục “Đăng ký tạm trú”"), or that there are none."""
    parts = []
    if filters.get("since"):
        parts.append(f"từ ngày {filters['since']}")
    if filters.get("until"):
        parts.append(f"đến trước ngày {filters['until']}")
    if filters.get("procedure"):
        parts.append(f"thủ tục “{filters.get('procedure_name') or filters['procedure']}”")
    if filters.get("channel"):
        parts.append(f"kênh {CHANNEL_NAMES.get(filters['channel'], filters['channel'])}")
    shown = ", ".join(parts) if parts else "mọi ngày, mọi thủ tục, mọi kênh"
    if filters.get("idle_minutes") is not None:
        shown += f"; im lặng quá {duration(60.0 * float(filters['idle_minutes']))} thì coi là bỏ dở"
    return shown


def reason_name(reason: str) -> str:
    """A stop reason as the citizen's button said it ("vneid" → "Không đăng nhập được VNeID"); ids stay in CSV/JSON."""
    return dict(texts.EXIT_REASONS).get(reason, reason)


def _short(text: str, width: int) -> str:
    """A name cut to a column's width."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _made_at(report: Mapping[str, Any]) -> str:
    made = datetime.fromisoformat(str(report["generated_at"]))
    return made.strftime("%H:%M ngày %d/%m/%Y") + " (giờ Việt Nam)"


def to_table(report: Mapping[str, Any]) -> str:
    lines = ["Bộ lọc: " + filters_text(report["filters"]), "", "Thủ tục mất nhiều người nhất (bỏ dở + tự dừng):"]
    for o in report["overview"]:
        if o["worst_stage"]:
            where = f", mất nhiều nhất ở chặng {o['worst_stage']} ({o['worst_stage_lost']})"
        elif o["worst_step"]:
            where = f", mất nhiều nhất ở bước “{o['worst_step_title']}” ({o['worst_step_lost']})"
        else:
            where = ""
        why = f", lý do dừng hay gặp: {reason_name(o['top_exit_reason'])}" if o["top_exit_reason"] else ""
        lines.append(
            f"  {o['lost']:>6} / {o['started']:<6} {o['name']} ({o['id']}): hoàn thành {o['completion_pct']}%{where}{why}"
        )
    if not report["overview"]:
        lines.append("  (chưa có ai bắt đầu thủ tục nào)")
    lines.append("")
    if report["channels"]:
        lines.append("Theo kênh: bắt đầu / hoàn thành / tự dừng / bỏ dở")
        for c in report["channels"]:
            name = CHANNEL_NAMES.get(c["channel"], c["channel"])
            lines.append(f"  {name}: {c['started']} / {c['completed']} / {c['cancelled']} / {c['abandoned']}")
        lines.append("")
    unit = "tuần từ" if report["trend"]["by"] == "week" else "ngày"
    lines.append(f"Theo {unit.split()[0]}: bắt đầu / hoàn thành / tự dừng / bỏ dở")
    for r in report["trend"]["rows"]:
        lines.append(f"  {unit} {r['from']}: {r['started']} / {r['completed']} / {r['cancelled']} / {r['abandoned']}")
    lines.append("")
    for p in report["procedures"]:
        lines.append(
            f"{p['name']} ({p['id']}): bắt đầu {p['started']}, xong {p['completed']} ({p['completion_pct']}%), "
            f"bỏ dở {p['abandoned']}, tự dừng {p['cancelled']}, chuyển việc khác {p['left']}, đang làm {p['in_progress']}; "
            f"thời gian xong: trung vị {duration(p['median_seconds_to_complete'])}, "
            f"p90 {duration(p['p90_seconds_to_complete'])}"
        )
        if p["stages"]:
            lines.append(f"  {'chặng':<24}{'tới':>6}{'bỏ dở':>7}{'dừng':>6}{'mất %':>7}{'vướng':>7}{'ở lại':>16}")
            for st in p["stages"]:
                lines.append(
                    f"  {_short(st['name'], 23):<24}{st['reached']:>6}{st['dropped']:>7}{st['cancelled']:>6}"
                    f"{st['lost_pct']:>7}{st['stuck']:>7}{duration(st['median_seconds']):>16}"
                )
        lines.append(
            f"  {'bước (theo đường đi)':<34}{'tới':>6}{'đi tiếp':>9}{'bỏ ở đây':>10}{'%':>7}{'dừng':>6}{'ở lại':>16}"
            f"{'giúp':>6}{'lùi':>5}{'lặp':>5}{'?':>5}"
        )
        for s in p["steps"]:
            lines.append(
                f"  {_short(s['title'], 33):<34}{s['reached']:>6}{s['moved_on']:>9}{s['dropped']:>10}"
                f"{s['dropped_pct']:>7}{s['cancelled']:>6}{duration(s['median_seconds']):>16}{s['help']:>6}"
                f"{s['back']:>5}{s['repeat']:>5}{s['not_understood']:>5}"
            )
        if p["exit_reasons"]:
            lines.append("  Lý do dừng: " + ", ".join(f"{reason_name(k)} {v}" for k, v in p["exit_reasons"].items()))
        lines.append("")
    lines += _reminders_text(report.get("reminders", []))
    lines.append("Câu hỏi bot đưa lựa chọn mà người dân không chọn (nhiều nhất trước):")
    lines += [f"  {u['count']:>5}  {u['text']}  [đã đưa: {'; '.join(u['offered'])}]" for u in report["unresolved"]] or [
        "  (không có)"
    ]
    lines.append("Câu hỏi bot chưa hiểu (nhiều nhất trước):")
    lines += [f"  {u['count']:>5}  {u['text']}" for u in report["unmatched"]] or ["  (không có)"]
    return "\n".join(lines)


def _pct_text(value: float | None) -> str:
    return "–" if value is None else f"{value:g}%"


def _reminders_text(reminders: Sequence[Mapping[str, Any]]) -> list[str]:
    """Reminders per step: who came back and completed after one, next to those whose reminder could not go."""
    if not reminders:
        return []
    lines = [
        "Lời nhắc làm tiếp (so với người không nhắc được vì quá thời gian Zalo cho phép):",
        f"  {'thủ tục / bước':<44}{'nhắc':>6}{'quay lại':>10}{'làm xong':>10}"
        f"{'không nhắc được':>17}{'quay lại':>10}{'làm xong':>10}{'tắt nhắc':>10}",
    ]
    for r in reminders:
        lines.append(
            f"  {_short(r['name'] + ' / ' + r['title'], 43):<44}{r['sent']:>6}{_pct_text(r['came_back_pct']):>10}"
            f"{_pct_text(r['completed_pct']):>10}{r['not_sent']:>17}{_pct_text(r['not_sent_came_back_pct']):>10}"
            f"{_pct_text(r['not_sent_completed_pct']):>10}{r['opted_out']:>10}"
        )
    return [*lines, ""]


def _bars(items: Sequence[tuple[str, float, str]], color: str, width: int = 520) -> str:
    """A horizontal bar chart as inline SVG: (label, value, value text) per row."""
    if not items:
        return "<p class='empty'>Chưa có số liệu.</p>"
    top = max(v for _, v, _ in items) or 1.0
    row, label_w = 26, 190
    parts = [
        f"<svg role='img' width='{label_w + width + 280}' height='{row * len(items) + 6}' "
        f"viewBox='0 0 {label_w + width + 280} {row * len(items) + 6}' xmlns='http://www.w3.org/2000/svg'>"
    ]
    for i, (full, value, shown) in enumerate(items):
        label = _short(full, 26)  # the label column holds about 26 characters
        y = i * row + 4
        w = max(1.0, width * value / top) if value else 0.0
        parts.append(f"<text x='{label_w - 8}' y='{y + 16}' text-anchor='end'>{escape(label)}</text>")
        parts.append(
            f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{row - 8}' fill='{color}'><title>{escape(shown)}</title></rect>"
        )
        parts.append(f"<text x='{label_w + w + 6:.1f}' y='{y + 16}'>{escape(shown)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _trend_chart(trend_: Mapping[str, Any], height: int = 120) -> str:
    """Starts (blue) and completions (green) per day or week as inline SVG columns, the numbers in titles."""
    rows = trend_["rows"]
    unit = "tuần" if trend_["by"] == "week" else "ngày"
    head = f"<h3>Theo {unit}: bắt đầu (xanh dương), hoàn thành (xanh lá), bỏ dở (đỏ)</h3>"
    if not rows:
        return head + "<p class='empty'>Chưa có số liệu.</p>"
    top = max(max(r["started"], r["completed"], r["abandoned"]) for r in rows) or 1
    step = max(6, min(28, 900 // len(rows)))
    parts = [
        f"<svg role='img' width='{max(step * len(rows) + 10, 120)}' height='{height + 24}' "
        "xmlns='http://www.w3.org/2000/svg'>"
    ]
    for i, r in enumerate(rows):
        x = 5 + i * step
        for j, (key, color) in enumerate((("started", "#1565c0"), ("completed", "#2e7d32"), ("abandoned", "#c62828"))):
            h = height * r[key] / top
            parts.append(
                f"<rect x='{x + j * step / 3:.1f}' y='{height - h:.1f}' width='{step / 3 - 1:.1f}' height='{h:.1f}' "
                f"fill='{color}'><title>{escape(r['from'])}: bắt đầu {r['started']}, hoàn thành {r['completed']}, "
                f"tự dừng {r['cancelled']}, bỏ dở {r['abandoned']}</title></rect>"
            )
    parts.append(f"<text x='5' y='{height + 18}'>{escape(rows[0]['from'])}</text>")
    if len(rows) > 1:  # one day or week: its date once, not twice over itself
        parts.append(
            f"<text x='{step * len(rows) + 5}' y='{height + 18}' text-anchor='end'>{escape(rows[-1]['from'])}</text>"
        )
    parts.append("</svg>")
    return head + "".join(parts)


def _cell(text: str) -> str:
    return f"<td>{escape(text)}</td>"


def _num(value: object) -> str:
    return f"<td class='n'>{escape(str(value))}</td>"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "") -> list[str]:
    """An HTML table (cells made by ``_cell``/``_num``), or the line saying there is nothing to show."""
    if not rows:
        return [f"<p class='empty'>{escape(empty)}</p>"] if empty else []
    return [
        "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>",
        *("<tr>" + "".join(row) + "</tr>" for row in rows),
        "</table>",
    ]


def to_html(report: Mapping[str, Any]) -> str:
    """ONE self-contained file: inline CSS and SVG charts, no scripts, no network; prints on A4."""
    out = [
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>Báo cáo người dân bỏ dở thủ tục</title><style>",
        "body{font-family:Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 16px}",
        "h1{font-size:24px}h2{font-size:20px;margin-top:36px;border-bottom:2px solid #1565c0}",
        "h3{font-size:16px;margin:20px 0 6px}svg text{font-size:13px;fill:#222}",
        "table{border-collapse:collapse;margin:8px 0;font-size:14px}td,th{border:1px solid #bbb;padding:4px 8px}",
        "th{background:#e3f2fd;text-align:left}td.n{text-align:right}.empty{color:#777}",
        "@media print{h2{page-break-before:always}h2:first-of-type{page-break-before:avoid}}",
        "</style></head><body>",
        "<h1>Báo cáo: người dân bỏ dở thủ tục ở đâu, vướng ở đâu</h1>",
        f"<p>Lập lúc {escape(_made_at(report))}. Bộ lọc: {escape(filters_text(report['filters']))}.</p>",
    ]
    out.append("<h2 id='tong-quan'>Tổng quan: thủ tục mất nhiều người nhất</h2>")
    head = ["Thủ tục", "Bắt đầu", "Mất (bỏ dở + tự dừng)", "Hoàn thành", "Mất nhiều nhất ở", "Lý do dừng hay gặp"]
    rows = [
        [
            f"<td><a href='#{escape(o['id'])}'>{escape(o['name'])}</a></td>",
            _num(o["started"]),
            _num(f"{o['lost']} ({o['lost_pct']}%)"),
            _num(f"{o['completion_pct']}%"),
            _cell(
                f"{o['worst_stage']} ({o['worst_stage_lost']})"
                if o["worst_stage"]
                else f"{o['worst_step_title']} ({o['worst_step_lost']})"
                if o["worst_step_title"]
                else "—"
            ),
            _cell(reason_name(o["top_exit_reason"]) if o["top_exit_reason"] else "—"),
        ]
        for o in report["overview"]
    ]
    out += _table(head, rows, "Chưa có ai bắt đầu thủ tục nào.")
    if report["channels"]:
        out.append("<h3>Theo kênh</h3>")
        head = ["Kênh", "Bắt đầu", "Hoàn thành", "Tự dừng", "Bỏ dở", "Mất"]
        rows = [
            [
                _cell(CHANNEL_NAMES.get(c["channel"], c["channel"])),
                _num(c["started"]),
                _num(f"{c['completed']} ({c['completion_pct']}%)"),
                _num(c["cancelled"]),
                _num(c["abandoned"]),
                _num(f"{c['lost_pct']}%"),
            ]
            for c in report["channels"]
        ]
        out += _table(head, rows)
    out.append(_trend_chart(report["trend"]))
    for p in report["procedures"]:
        out.append(f"<h2 id='{escape(p['id'])}'>{escape(p['name'])} <small>({escape(p['id'])})</small></h2>")
        head = ["Bắt đầu", "Hoàn thành", "Tỉ lệ", "Bỏ dở", "Tự dừng", "Chuyển việc khác", "Trung vị thời gian"]
        counts = [p["started"], p["completed"], f"{p['completion_pct']}%", p["abandoned"], p["cancelled"], p["left"]]
        out += _table(head, [[*map(_num, counts), _num(duration(p["median_seconds_to_complete"]))]])
        steps = p["steps"]
        if p["stages"]:
            out.append("<h3>Phễu theo chặng: số người tới được chặng này (hoặc xa hơn)</h3>")
            out.append(
                _bars(
                    [
                        (st["name"], st["reached"], f"{st['reached']}; mất ở đây {st['dropped'] + st['cancelled']}")
                        for st in p["stages"]
                    ],
                    "#1565c0",
                )
            )
            head = ["Chặng", "Tới", "Bỏ dở", "Tự dừng", "Mất", "Dấu hiệu vướng", "Ở lại (trung vị)"]
            rows = [
                [
                    _cell(st["name"]),
                    _num(st["reached"]),
                    _num(st["dropped"]),
                    _num(st["cancelled"]),
                    _num(f"{st['lost_pct']}%"),
                    _num(st["stuck"]),
                    _num(duration(st["median_seconds"])),
                ]
                for st in p["stages"]
            ]
            out += _table(head, rows)
        else:
            out.append("<h3>Phễu: số người tới từng bước</h3>")
            out.append(_bars([(s["title"], s["reached"], str(s["reached"])) for s in steps], "#1565c0"))
        out.append("<h3>Các bước, theo đường người dân đi</h3>")
        head = ["Bước", "Tới", "Đi tiếp", "Bỏ dở", "Tự dừng", "Giúp", "Lùi", "Lặp", "Không hiểu", "Ở lại"]
        rows = [
            [
                f"<td title='{escape(s['id'])}'>{escape(s['title'])}</td>",
                _num(s["reached"]),
                _num(s["moved_on"]),
                _num(f"{s['dropped']} ({s['dropped_pct']}%)"),
                _num(s["cancelled"]),
                *(_num(s[k]) for k in ("help", "back", "repeat", "not_understood")),
                _num(duration(s["median_seconds"])),
            ]
            for s in steps
        ]
        out += _table(head, rows)
        if p.get("exit_reasons"):
            out.append("<h3>Lý do người dân dừng</h3>")
            out.append(_bars([(reason_name(k), v, str(v)) for k, v in p["exit_reasons"].items()], "#6a1b9a"))
    if report.get("reminders"):
        out.append("<h2>Lời nhắc làm tiếp</h2>")
        out.append(
            "<p>Người dân dừng giữa chừng được nhắc một lần. So với người không nhắc được (quá thời gian Zalo "
            "cho phép nhắn miễn phí): bao nhiêu người quay lại và làm xong.</p>"
        )
        head = ["Thủ tục", "Bước", "Đã nhắc", "Quay lại", "Làm xong", "Không nhắc được", "Quay lại", "Làm xong"]
        head.append("Tắt nhắc")
        rows = [
            [
                _cell(r["name"]),
                _cell(r["title"]),
                _num(r["sent"]),
                _num(_pct_text(r["came_back_pct"])),
                _num(_pct_text(r["completed_pct"])),
                _num(r["not_sent"]),
                _num(_pct_text(r["not_sent_came_back_pct"])),
                _num(_pct_text(r["not_sent_completed_pct"])),
                _num(r["opted_out"]),
            ]
            for r in report["reminders"]
        ]
        out += _table(head, rows)
    out.append("<h2>Câu hỏi bot chưa hiểu</h2>")
    rows = [[_cell(u["text"]), _num(u["count"])] for u in report["unmatched"]]
    out += _table(["Câu hỏi (đã che số cá nhân)", "Số lần"], rows, "Không có.")
    out.append("<h2>Câu hỏi bot đưa lựa chọn mà người dân không chọn</h2>")
    rows = [[_cell(u["text"]), _cell("; ".join(u["offered"])), _num(u["count"])] for u in report["unresolved"]]
    out += _table(["Câu hỏi (đã che số cá nhân)", "Bot đã đưa", "Số lần"], rows, "Không có.")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
