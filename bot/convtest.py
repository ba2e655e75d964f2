"""Conversation tests officials write in YAML: citizen says → the bot's reply contains / offers / is at / ends.

A test file looks like::

    procedure: dang-ky-tam-tru
    date: 2026-11-28          # optional: the day the bot lives in (fees depend on it)
    cases:
      - name: Thuê trọ, nộp trên mạng
        start: dang-ky-tam-tru          # optional: open with the deep link
        turns:
          - say: dk tam tru
            expect: {at: gioi-thieu, contains: [tạm trú], choices: [Tiếp tục]}
          - tap: Tiếp tục
          - wait: 3d              # optional: time passes before this turn (30m, 2h, 3d)
            say: /start

Cases run against the pure engine with an in-memory session: nothing is written
anywhere, so running them never touches analytics.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from bot import engine
from bot.engine import Choice, Content, EngineConfig, Inbound, Reply, Session
from bot.loader import MAX_YAML_DEPTH, compose, did_you_mean
from bot.settings import VIETNAM_TZ

FILE_KEYS: Final = ("procedure", "date", "cases")
CASE_KEYS: Final = ("name", "start", "date", "turns")
TURN_KEYS: Final = ("say", "tap", "find", "wait", "expect")
# "wait: 3d" before a turn: that much time passes first (m minutes, h hours, d days).
WAIT_UNITS: Final = {"m": 60, "h": 3600, "d": 86400}
EXPECT_KEYS: Final = ("at", "contains", "not_contains", "choices", "ends", "events")
TEST_USER: Final = "conversation-test"
CHANNEL: Final = "test"
SECONDS_PER_TURN: Final = 5


# ---------------------------------------------------------------------------
# The parsed test files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    at: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    ends: bool | None = None
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    line: int
    say: str | None = None
    tap: str | None = None
    find: str | None = None
    expect: Expect = field(default_factory=Expect)
    wait: timedelta = timedelta()

    def describe(self) -> str:
        if self.find is not None:
            return f'find: "{self.find}"'
        return f'say: "{self.say}"' if self.say is not None else f'tap: "{self.tap}"'


@dataclass(frozen=True)
class Case:
    name: str
    line: int
    turns: tuple[Turn, ...]
    start: str | None = None
    day: date | None = None


@dataclass(frozen=True)
class TestFile:
    path: str
    procedure: str | None
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class FileProblem:
    """A mistake in a test file itself (not a failing expectation)."""

    path: str
    line: int
    message: str

    def format(self) -> str:
        return f"{self.path}:{self.line}: lỗi: {self.message}"


class _Reader:
    """Turns a composed YAML document into TestFile, collecting located problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[FileProblem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(FileProblem(self.path, node.start_mark.line + 1, message))

    def value(self, node: yaml.Node) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except ValueError:  # a date that does not exist (2026-02-30) and the like
            self.problem(node, f"giá trị “{getattr(node, 'value', '')}” không đọc được (ngày không có thật?).")
            return None

    def mapping(self, node: yaml.Node, allowed: Sequence[str], what: str) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} phải là một bảng khoá: giá trị.")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.problem(
                    key_node,
                    f"khoá “{key}” không dùng được trong {what}. Các khoá dùng được: {', '.join(allowed)}. {hint}".rstrip(),
                )
                continue
            if key in out:
                self.problem(key_node, f"khoá “{key}” bị lặp lại trong {what}.")
                continue
            out[key] = value_node
        return out

    def text(self, node: yaml.Node, what: str) -> str | None:
        value = self.value(node)
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            self.problem(node, f"{what} phải là một đoạn chữ.")
            return None
        return str(value)

    def texts(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        value = self.value(node)
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, (list, dict)) or v is None for v in items):
            self.problem(node, f"{what} phải là một đoạn chữ hoặc danh sách các đoạn chữ.")
            return ()
        return tuple(str(v) for v in items)

    def day(self, node: yaml.Node) -> date | None:
        before = len(self.problems)
        value = self.value(node)
        if len(self.problems) > before:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        self.problem(node, "date phải là một ngày dạng NĂM-THÁNG-NGÀY, ví dụ 2026-11-28.")
        return None

    def read(self, root: yaml.Node | None) -> TestFile | None:
        if root is None:
            self.problems.append(FileProblem(self.path, 1, "tệp trống. Cần có khoá cases: với ít nhất một tình huống."))
            return None
        top = self.mapping(root, FILE_KEYS, "tệp kiểm thử")
        if top is None:
            return None
        procedure = self.text(top["procedure"], "procedure") if "procedure" in top else None
        day = self.day(top["date"]) if "date" in top else None
        cases_node = top.get("cases")
        if not isinstance(cases_node, yaml.SequenceNode) or not cases_node.value:
            self.problem(cases_node or root, "cần khoá cases: là danh sách các tình huống (bắt đầu bằng dấu -).")
            return None
        cases = [c for n in cases_node.value if (c := self.case(n, day)) is not None]
        return TestFile(self.path, procedure, tuple(cases))

    def case(self, node: yaml.Node, file_day: date | None) -> Case | None:
        """A case, or None when it has a mistake (it is then reported, not run)."""
        before = len(self.problems)
        case = self._case(node, file_day)
        return case if len(self.problems) == before else None

    def _case(self, node: yaml.Node, file_day: date | None) -> Case | None:
        raw = self.mapping(node, CASE_KEYS, "một tình huống")
        if raw is None:
            return None
        name = self.text(raw["name"], "name") if "name" in raw else None
        if name is None:
            self.problem(node, "tình huống cần có name: (tên ngắn mô tả tình huống).")
            name = f"dòng {node.start_mark.line + 1}"
        start = self.text(raw["start"], "start") if "start" in raw else None
        day = self.day(raw["date"]) if "date" in raw else file_day
        turns_node = raw.get("turns")
        if not isinstance(turns_node, yaml.SequenceNode) or not turns_node.value:
            self.problem(turns_node or node, "tình huống cần có turns: là danh sách các lượt (say: hoặc tap:).")
            return None
        turns = [t for n in turns_node.value if (t := self.turn(n)) is not None]
        return Case(name, node.start_mark.line + 1, tuple(turns), start, day)

    def turn(self, node: yaml.Node) -> Turn | None:
        raw = self.mapping(node, TURN_KEYS, "một lượt")
        if raw is None:
            return None
        if sum(k in raw for k in ("say", "tap", "find")) != 1:
            self.problem(
                node,
                "mỗi lượt cần đúng một trong ba khoá: say: (người dân gõ), tap: (bấm nút) "
                "hoặc find: (người dân hỏi để tìm thủ tục của tệp).",
            )
            return None
        say = self.text(raw["say"], "say") if "say" in raw else None
        tap = self.text(raw["tap"], "tap") if "tap" in raw else None
        find = self.text(raw["find"], "find") if "find" in raw else None
        if say is None and tap is None and find is None:
            return None
        expect = self.expect(raw["expect"]) if "expect" in raw else Expect()
        wait = self.wait(raw["wait"]) if "wait" in raw else timedelta()
        return Turn(node.start_mark.line + 1, say, tap, find, expect or Expect(), wait)

    def wait(self, node: yaml.Node) -> timedelta:
        raw = str(self.value(node)).strip().lower()
        if len(raw) >= 2 and raw[:-1].isdigit() and raw[-1] in WAIT_UNITS:
            return timedelta(seconds=int(raw[:-1]) * WAIT_UNITS[raw[-1]])
        self.problem(node, f"wait cần dạng như 30m, 2h hoặc 3d (phút, giờ, ngày), không phải “{raw}”.")
        return timedelta()

    def expect(self, node: yaml.Node) -> Expect | None:
        raw = self.mapping(node, EXPECT_KEYS, "expect")
        if raw is None:
            return None
        ends: bool | None = None
        if "ends" in raw:
            value = self.value(raw["ends"])
            if isinstance(value, bool):
                ends = value
            else:
                self.problem(raw["ends"], "ends phải là true hoặc false.")
        return Expect(
            at=self.text(raw["at"], "at") if "at" in raw else None,
            contains=self.texts(raw["contains"], "contains") if "contains" in raw else (),
            not_contains=self.texts(raw["not_contains"], "not_contains") if "not_contains" in raw else (),
            choices=self.texts(raw["choices"], "choices") if "choices" in raw else (),
            ends=ends,
            events=self.texts(raw["events"], "events") if "events" in raw else (),
        )


def read_file(path: Path, display: str | None = None) -> tuple[TestFile | None, list[FileProblem]]:
    shown = display or str(path)
    reader = _Reader(shown)
    try:
        text = path.read_text(encoding="utf-8")
        root = compose(text)
    except UnicodeDecodeError:
        return None, [FileProblem(shown, 1, "tệp không phải chữ UTF-8.")]
    except OSError as exc:
        return None, [FileProblem(shown, 1, f"không đọc được tệp ({exc.strerror}).")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = f"lồng nhau quá sâu (quá {MAX_YAML_DEPTH} mức)" if exc.problem == "too deep" else exc.problem
        return None, [FileProblem(shown, line, f"sai cú pháp YAML: {problem or exc}.")]
    except yaml.YAMLError as exc:
        return None, [FileProblem(shown, 1, f"sai cú pháp YAML: {exc}.")]
    try:
        parsed = reader.read(root)
    except yaml.YAMLError as exc:
        return None, [FileProblem(shown, 1, f"giá trị không đọc được: {exc}.")]
    return parsed, reader.problems


def find_files(paths: Iterable[Path]) -> list[Path]:
    """The test files named, with folders expanded to their *.yaml / *.yml files, in a stable order."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@dataclass
class Failure:
    file: str
    case: str
    turn_no: int
    turn: Turn
    lines: list[str]

    def format(self) -> str:
        head = f"{self.file}:{self.turn.line}: tình huống “{self.case}”, lượt {self.turn_no} ({self.turn.describe()})"
        return "\n".join([head, *("    " + line for line in self.lines)])


@dataclass
class Outcome:
    cases: int = 0
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    visited: dict[str, set[str]] = field(default_factory=dict)
    tested_flows: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems and self.cases > 0


def _clock(day: date | None) -> datetime:
    if day is None:
        return datetime.now(VIETNAM_TZ)
    return datetime.combine(day, time(9, 0), VIETNAM_TZ)


def _offered(replies: Sequence[Reply]) -> tuple[Choice, ...]:
    """The buttons a citizen sees at the end of a turn: those of the last reply that has any."""
    for reply in reversed(replies):
        if reply.choices:
            return reply.choices
    return ()


def _pick(tap: str, offered: Sequence[Choice]) -> Choice | str:
    """The offered choice a ``tap`` names, or why none could be picked."""
    labels = ", ".join(f"“{c.label}”" for c in offered) or "(không có nút nào)"
    wanted = tap.strip()
    if wanted.isdigit():
        n = int(wanted)
        if 1 <= n <= len(offered):
            return offered[n - 1]
        return f"không có nút số {n}. Các nút đang có: {labels}"
    exact = [c for c in offered if _norm(c.label) == _norm(wanted)]
    if exact:
        return exact[0]
    partial = [c for c in offered if _norm(wanted) in _norm(c.label)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        return f"“{tap}” khớp nhiều nút: " + ", ".join(f"“{c.label}”" for c in partial) + ". Hãy ghi rõ hơn."
    return f"không có nút “{tap}”. Các nút đang có: {labels}"


def _position(session: Session) -> str:
    pos = session.position
    return "menu" if pos is None else f"{pos.procedure}/{pos.step}"


def _closest(wanted: str, reply_lines: Sequence[str]) -> str | None:
    best, score = None, 0.0
    for line in reply_lines:
        ratio = difflib.SequenceMatcher(None, _norm(wanted), _norm(line)).ratio()
        if ratio > score:
            best, score = line, ratio
    return best if score >= 0.4 else None


def _diff_lines(wanted: str, actual: str) -> list[str]:
    """A character-level diff of two short texts, in ndiff's ``- + ?`` form."""
    return [line.rstrip("\n") for line in difflib.ndiff([wanted + "\n"], [actual + "\n"])]


def _check(expect: Expect, procedure: str | None, result: engine.Result) -> list[str]:
    """Readable lines for every expectation that did not hold (empty when all hold)."""
    out: list[str] = []
    texts = [r.text for r in result.replies] + [link for r in result.replies for link in r.links]
    whole = _norm("\n".join(texts))
    reply_lines = [line for t in texts for line in t.splitlines() if line.strip()]
    offered = [c.label for r in result.replies for c in r.choices]
    events = [e.type for e in result.events]
    if expect.at is not None:
        where = _position(result.session)
        wanted = expect.at.strip()
        if wanted != "menu" and "/" not in wanted and procedure:
            wanted = f"{procedure}/{wanted}"
        ok = where == wanted if "/" in wanted or wanted == "menu" else where.endswith("/" + wanted)
        if not ok:
            out.append(f"mong đợi đang ở: {wanted}")
            out.append(f"nhưng bot đang ở: {where}")
    for piece in expect.contains:
        if _norm(piece) not in whole:
            out.append(f"câu trả lời không có: “{piece}”")
            near = _closest(piece, reply_lines)
            if near is not None:
                out.append("dòng giống nhất (- mong đợi, + bot nói):")
                out += ["  " + d for d in _diff_lines(piece, near)]
    for piece in expect.not_contains:
        if _norm(piece) in whole:
            out.append(f"câu trả lời lẽ ra không có: “{piece}”")
    missing = [c for c in expect.choices if _norm(c) not in {_norm(o) for o in offered}]
    if missing:
        out.append("thiếu nút: " + ", ".join(f"“{c}”" for c in missing))
        out.append("các nút bot đưa ra (- mong đợi, + bot đưa ra):")
        diff = difflib.unified_diff(list(expect.choices), offered, lineterm="", n=len(offered) + len(expect.choices))
        out += ["  " + d for d in list(diff)[3:]]
    if expect.ends is not None:
        ended = "flow-completed" in events
        if ended != expect.ends:
            out.append(
                "mong đợi thủ tục kết thúc ở lượt này, nhưng chưa kết thúc"
                if expect.ends
                else "thủ tục đã kết thúc sớm"
            )
    for ev in expect.events:
        if ev not in events:
            out.append(f"thiếu sự kiện “{ev}”; có: {', '.join(events) or '(không có)'}")
    if out:
        out += _reply_lines(result)
    return out


def _inbound(turn: Turn, offered: Sequence[Choice]) -> Inbound | str:
    """What a turn sends to the engine, or why it cannot be sent."""
    if turn.tap is not None:
        picked = _pick(turn.tap, offered)
        if isinstance(picked, str):
            return picked
        return Inbound(CHANNEL, TEST_USER, kind="choice", text=picked.label, choice_id=picked.id)
    said = turn.say if turn.say is not None else turn.find or ""
    if said.strip().split(" ")[0].lower() == "/start":
        payload = said.strip()[len("/start") :].strip() or None
        return Inbound(CHANNEL, TEST_USER, kind="start", text=said, start_payload=payload)
    return Inbound(CHANNEL, TEST_USER, kind="text", text=said)


def _found(result: engine.Result, procedure: str | None) -> Inbound | str | None:
    """For a ``find`` turn: None if the bot opened the file's procedure, the tap that opens it if the bot
    offered it among its choices, or why it failed."""
    if procedure is None:
        return "find: cần khoá procedure: ở đầu tệp (thủ tục cần tìm)."
    pos = result.session.position
    if pos is not None and pos.procedure == procedure and not pos.stack:
        return None
    for choice in _offered(result.replies):
        if choice.id == f"p:{procedure}":
            return Inbound(CHANNEL, TEST_USER, kind="choice", text=choice.label, choice_id=choice.id)
    where = _position(result.session)
    return f"bot không tìm ra thủ tục {procedure} (không mở, cũng không đưa vào các lựa chọn); bot đang ở: {where}"


def _reply_lines(result: engine.Result) -> list[str]:
    out = ["bot trả lời:"]
    for r in result.replies:
        out += ["  | " + line for line in r.text.splitlines()]
        if r.choices:
            out.append("  | [" + "] [".join(c.label for c in r.choices) + "]")
    return out


def run_case(content: Content, case: Case, procedure: str | None, file: str, outcome: Outcome) -> bool:
    """Play one case against the engine; record the first failing turn, if any."""
    session = Session()
    now = _clock(case.day)
    config = EngineConfig()
    offered: tuple[Choice, ...] = ()
    if case.start:
        opening = Inbound(CHANNEL, TEST_USER, kind="start", text=f"/start {case.start}", start_payload=case.start)
        result = engine.step(content, session, opening, now, config)
        _visit(outcome, result)
        session, offered = result.session, _offered(result.replies)
    for n, turn in enumerate(case.turns, 1):
        now += timedelta(seconds=SECONDS_PER_TURN) + turn.wait
        inbound = _inbound(turn, offered)
        if isinstance(inbound, str):
            outcome.failures.append(Failure(file, case.name, n, turn, [inbound]))
            return False
        result = engine.step(content, session, inbound, now, config)
        _visit(outcome, result)
        if turn.find is not None:
            found = _found(result, procedure)
            if isinstance(found, str):
                outcome.failures.append(Failure(file, case.name, n, turn, [found, *_reply_lines(result)]))
                return False
            if found is not None:  # offered among the choices: the citizen taps it
                now += timedelta(seconds=SECONDS_PER_TURN)
                result = engine.step(content, result.session, found, now, config)
                _visit(outcome, result)
        session, offered = result.session, _offered(result.replies)
        problems = _check(turn.expect, procedure, result)
        if problems:
            outcome.failures.append(Failure(file, case.name, n, turn, problems))
            return False
    return True


def _visit(outcome: Outcome, result: engine.Result) -> None:
    for ev in result.events:
        if ev.type == "step-entered" and ev.procedure_id and ev.to_step:
            outcome.visited.setdefault(ev.procedure_id, set()).add(ev.to_step)
        if ev.type == "guide-returned" and ev.procedure_id and ev.to_step:
            outcome.visited.setdefault(ev.procedure_id, set()).add(ev.to_step)
    pos = result.session.position
    if pos is not None:
        outcome.visited.setdefault(pos.procedure, set()).add(pos.step)


def run_files(content: Content, files: Sequence[Path], base: Path | None = None) -> Outcome:
    outcome = Outcome()
    for path in files:
        shown = _display(path, base)
        parsed, problems = read_file(path, shown)
        outcome.problems += problems
        if parsed is None:
            continue
        if parsed.procedure:
            if content.catalogue.flow(parsed.procedure) is None:
                ids = [p.id for p in content.catalogue.procedures]
                hint = did_you_mean(parsed.procedure, ids)
                outcome.problems.append(
                    FileProblem(shown, 1, f"procedure “{parsed.procedure}” không có trong nội dung. {hint}".rstrip())
                )
                continue
            outcome.tested_flows.add(parsed.procedure)
        for case in parsed.cases:
            if case.start and content.catalogue.flow(case.start) is None:
                outcome.problems.append(FileProblem(shown, case.line, f"start “{case.start}” không có trong nội dung."))
                continue
            outcome.cases += 1
            if case.start:
                outcome.tested_flows.add(case.start)
            if run_case(content, case, parsed.procedure, shown, outcome):
                outcome.passed += 1
    return outcome


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowCoverage:
    procedure: str
    visited: int
    total: int
    unvisited: tuple[str, ...]

    @property
    def percent(self) -> float:
        return 100.0 * self.visited / self.total if self.total else 100.0


def coverage(content: Content, outcome: Outcome) -> list[FlowCoverage]:
    """Per flow that any test entered: steps visited out of the flow's steps."""
    out = []
    for proc in content.catalogue.procedures:
        flow = content.catalogue.flow(proc.id)
        if flow is None or (proc.id not in outcome.visited and proc.id not in outcome.tested_flows):
            continue
        seen = outcome.visited.get(proc.id, set())
        ids = [s.id for s in flow.steps]
        unvisited = tuple(i for i in ids if i not in seen)
        out.append(FlowCoverage(proc.id, len(ids) - len(unvisited), len(ids), unvisited))
    return out


def untested(content: Content, outcome: Outcome) -> list[str]:
    return [
        p.id for p in content.catalogue.procedures if content.catalogue.flow(p.id) and p.id not in outcome.tested_flows
    ]


def report(content: Content, outcome: Outcome, verbose_coverage: bool = True) -> str:
    lines: list[str] = []
    for problem in outcome.problems:
        lines.append(problem.format())
    for failure in outcome.failures:
        lines += ["", "HỎNG " + failure.format()]
    if lines:
        lines.append("")
    cov = coverage(content, outcome)
    if cov and verbose_coverage:
        lines.append("Độ phủ các bước (số bước đã đi qua / tổng số bước của kịch bản):")
        width = max(len(c.procedure) for c in cov)
        for c in cov:
            row = f"  {c.procedure:<{width}}  {c.visited:>3}/{c.total:<3} {c.percent:5.1f}%"
            if c.unvisited:
                row += "  chưa đi qua: " + ", ".join(c.unvisited)
            lines.append(row)
        missing = untested(content, outcome)
        if missing:
            lines.append("  Chưa có tệp kiểm thử: " + ", ".join(missing))
        lines.append("")
    failed = outcome.cases - outcome.passed
    summary = f"{outcome.passed}/{outcome.cases} tình huống đạt"
    if failed:
        summary += f", {failed} hỏng"
    if outcome.problems:
        summary += f", {len(outcome.problems)} lỗi trong tệp kiểm thử"
    if outcome.cases == 0 and not outcome.problems:
        summary = "Không tìm thấy tình huống kiểm thử nào."
    lines.append(summary + ".")
    return "\n".join(lines)
