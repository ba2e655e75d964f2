"""Load ``procedures.yaml`` and ``flows/*.yaml`` into a Catalogue, collecting every problem with file:line:col.

Nothing here raises on bad content: a run reports all problems of all files,
each in plain Vietnamese with a hint on how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import yaml
from rapidfuzz import fuzz, process

from bot import schema
from bot.gate import GATE_FILE, GATE_MAX_BYTES, Gate, content_examples, data_hash
from bot.normalize import fold, nfc
from bot.schema import (
    CHECK_LABEL_CHARS,
    CHECKED_GRADES,
    DIALOGUE_INTENTS,
    DIALOGUE_LISTS,
    GATE_CATEGORIES,
    GRADE_NAMES,
    OBJECTS,
    OPTION_LABEL_CHARS,
    PLACEHOLDERS,
    SLUG_RE,
    STAGE_NAME_CHARS,
    STEP_FIELDS,
    STEP_KINDS,
    STEP_TITLE_CHARS,
    STRICTEST_TEXT_LIMIT,
    Agency,
    Catalogue,
    ChecklistItem,
    Condition,
    Contact,
    Dialogue,
    Fact,
    Family,
    Fee,
    Field,
    Flow,
    GateData,
    MatchSettings,
    NamedFact,
    Option,
    Procedure,
    Reminder,
    Stage,
    Step,
    Term,
    Verification,
)
from bot.settings import VIETNAM_TZ

logger = logging.getLogger(__name__)

CATALOGUE_FILE: Final = "procedures.yaml"
FLOWS_DIR: Final = "flows"
PLACEHOLDER_RE: Final = re.compile(r"(?<!\{)\{([^{}\s]*)\}(?!\})")
DEFAULT_PAYMENT_GUIDE: Final = "thanh-toan-truc-tuyen"

Severity = Literal["error", "warning"]
Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in the content, located in a file."""

    file: str
    line: int
    col: int
    severity: Severity
    message: str
    hint: str = ""
    path: str = ""

    def format(self) -> str:
        label = "lỗi" if self.severity == "error" else "cảnh báo"
        text = f"{self.file}:{self.line}:{self.col}: {label}: {self.message}"
        if self.hint:
            text += f" {self.hint}"
        if self.path:
            text += f" [{self.path}]"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "path": self.path,
        }


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A Vietnamese "did you mean" sentence, or empty when nothing is close."""
    found = process.extractOne(name, list(candidates), scorer=fuzz.ratio, score_cutoff=60)
    return f'Có phải ý bạn là "{found[0]}"?' if found else ""


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# Names of official sites that scam sites imitate ("dichvucong-bocongan.com.vn", "dichvucongg.top").
OFFICIAL_NAMES: Final = (
    "dichvucong",
    "bocongan",
    "vneid",
    "baohiemxahoi",
    "dinhdanhdientu",
    "chinhphu",
    "congan",
    "thutuc",
    "tinnhiemmang",
    "khonggianmang",
)
_GOV_VN_LIKE: Final = re.compile(r"gov[^a-z0-9]?vn")


def looks_official(host: str) -> bool:
    """Whether a host outside the allow-list imitates an official one: "gov.vn" inside it, or an official name."""
    if host.endswith(".gov.vn") or host == "gov.vn":
        return False
    if _GOV_VN_LIKE.search(host):
        return True
    labels = [part for part in re.split(r"[.\-_]", host) if part]
    squashed = "".join(labels)
    for name in OFFICIAL_NAMES:
        if name in squashed:
            return True
        if any(len(label) >= 5 and fuzz.ratio(label, name) >= 85 for label in labels):
            return True
    return False


_URL_IN_TEXT: Final = re.compile(r"https?://[^\s)\]>\"'»”]+", re.IGNORECASE)


class _Invalid:
    """Marker for a value that failed its check (the problem is already recorded)."""


INVALID: Final = _Invalid()
_constructor = yaml.constructor.SafeConstructor()

# Content never nests deeper than about eight levels; PyYAML's composer recurses once per level,
# so a file nested thousands deep would otherwise end in RecursionError instead of a located error.
MAX_YAML_DEPTH: Final = 40


class _TooDeep(yaml.MarkedYAMLError):
    """Nesting deeper than MAX_YAML_DEPTH, located at the node that went too deep."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than MAX_YAML_DEPTH before the recursion gets deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _TooDeep(problem="too deep", problem_mark=event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of ``text`` (safe tags only, bounded depth)."""
    return yaml.compose(text, Loader=_BoundedLoader)


def _type_name(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "một bảng khoá: giá trị"
    if isinstance(node, yaml.SequenceNode):
        return "một danh sách"
    if node.tag.endswith(":null"):
        return "để trống"
    return f'"{node.value}"'


class _Doc:
    """One YAML file: its relative name and the marks of every path checked in it."""

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.marks: dict[Path_, tuple[int, int]] = {}

    def mark(self, path: Path_) -> tuple[int, int]:
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))


class _Checker:
    """Walks YAML nodes against the field specs, recording problems and returning plain values."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # Known once the catalogue is read; links in flows are then checked against it.
        self.allowed_domains: tuple[str, ...] | None = None

    def add(
        self,
        doc: _Doc,
        where: Path_ | yaml.Node,
        message: str,
        hint: str = "",
        severity: Severity = "error",
        path: Path_ = (),
    ) -> None:
        if isinstance(where, yaml.Node):
            line, col = where.start_mark.line + 1, where.start_mark.column + 1
        else:
            line, col = doc.mark(where)
            path = path or where
        self.problems.append(Problem(doc.rel, line, col, severity, message, hint, format_path(path)))

    def check_domain(self, doc: _Doc, path: Path_, url: str, allowed: tuple[str, ...], shown: str = "") -> None:
        """A link outside the allow-list is an error; one that imitates an official site is named a scam look-alike."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        url = shown or url
        if any(host == d or host.endswith("." + d) for d in allowed):
            return
        if looks_official(host):
            self.add(
                doc,
                path,
                f'link "{url}" GIẢ DẠNG trang chính thức: "{host}" không phải trang của cơ quan nhà nước '
                "(trang thật có đuôi .gov.vn; kẻ lừa đảo hay dùng tên gần giống).",
                "Xoá link này. Chỉ dẫn trang có đuôi .gov.vn hoặc tên miền đã ghi trong allowed_domains.",
            )
            return
        self.add(
            doc,
            path,
            f'link "{url}" không thuộc danh sách trang được phép (allowed_domains trong procedures.yaml).',
            "Chỉ dẫn tới trang của cơ quan nhà nước; nếu đây là trang chính thức, thêm tên miền vào allowed_domains.",
        )

    def check_links_in_text(self, doc: _Doc, path: Path_, text: str) -> None:
        """Links and bare web addresses in a text citizens read: https, and in the allow-list."""
        allowed = self.allowed_domains or ()
        for m in _URL_IN_TEXT.finditer(text):
            url = m.group(0).rstrip(".,;:!?")
            if url.lower().startswith("http://"):
                self.add(doc, path, f'link "{url}" không dùng https.', "Chỉ dẫn link https:// tới trang chính thức.")
            else:
                self.check_domain(doc, path, url, allowed)
        for m in _BARE_DOMAIN.finditer(_URL_IN_TEXT.sub(" ", text)):
            name = m.group(0).rstrip(".")
            self.check_domain(doc, path, "https://" + name, allowed, shown=name)

    # -- parsing ---------------------------------------------------------

    def parse(self, path: Path, doc: _Doc, what: str) -> yaml.Node | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.add(doc, (), f"không đọc được tệp ({exc.strerror}).", "Hãy kiểm tra tệp có tồn tại và quyền đọc.")
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.add(doc, (), "tệp không phải văn bản UTF-8.", "Hãy lưu lại tệp dưới dạng văn bản UTF-8.")
            return None
        if "\x00" in text:
            self.add(
                doc,
                (),
                "tệp chứa ký tự lạ, không phải văn bản YAML.",
                "Hãy mở tệp bằng trình soạn thảo văn bản và lưu lại.",
            )
            return None
        try:
            node = compose(text)
        except _TooDeep as exc:
            mark = exc.problem_mark
            self.problems.append(
                Problem(
                    doc.rel,
                    mark.line + 1 if mark else 1,
                    mark.column + 1 if mark else 1,
                    "error",
                    f"nội dung lồng nhau quá sâu (quá {MAX_YAML_DEPTH} mức).",
                    "Có lẽ thiếu dấu đóng ] hoặc }, hoặc thụt lề sai từ chỗ này. "
                    "Nội dung thủ tục chỉ cần lồng vài mức; hãy xem lại đoạn này.",
                )
            )
            return None
        except yaml.MarkedYAMLError as exc:
            line, col, detail = _syntax_problem(exc)
            self.problems.append(
                Problem(
                    doc.rel,
                    line,
                    col,
                    "error",
                    f"lỗi cú pháp YAML: {detail}.",
                    "Hãy kiểm tra thụt lề (dùng dấu cách, không dùng Tab), dấu hai chấm sau tên khoá "
                    "và dấu ngoặc kép đóng mở đủ cặp.",
                )
            )
            return None
        except yaml.YAMLError as exc:
            self.add(doc, (), f"lỗi cú pháp YAML ({exc}).", "Hãy kiểm tra lại cú pháp tệp.")
            return None
        if node is None:
            self.add(doc, (), "tệp rỗng.", f"Tệp cần có nội dung {what}.")
            return None
        return node

    # -- values ----------------------------------------------------------

    def value(self, doc: _Doc, node: yaml.Node, f: Field, path: Path_) -> Any:
        doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        is_null = isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")
        if is_null and f.nullable:
            return None
        kind = f.kind
        if kind == "obj":
            assert f.obj is not None
            return self.mapping(doc, node, OBJECTS[f.obj], path, f.doc)
        if kind == "step":
            return self.step(doc, node, path)
        if kind == "list":
            assert f.item is not None
            if not isinstance(node, yaml.SequenceNode):
                self.add(
                    doc,
                    node,
                    f"cần {f.doc} dạng danh sách nhưng lại là {_type_name(node)}.",
                    'Viết mỗi mục trên một dòng bắt đầu bằng dấu gạch ngang "- ".',
                    path=path,
                )
                return INVALID
            return [self.value(doc, child, f.item, (*path, i)) for i, child in enumerate(node.value)]
        if kind == "fact":
            if isinstance(node, yaml.MappingNode):
                return self.mapping(doc, node, OBJECTS["fact"], path, f.doc)
            if isinstance(node, yaml.ScalarNode) and not is_null:
                return {"value": node.value}
            self.add(
                doc,
                node,
                f"{f.doc} cần là một giá trị hoặc bảng có khoá value.",
                'Ví dụ: code: "1.001193" hoặc code: {value: "1.001193", verified: false}.',
                path=path,
            )
            return INVALID
        if kind == "when":
            return self.when(doc, node, path)
        if not isinstance(node, yaml.ScalarNode) or is_null:
            self.add(doc, node, f"{f.doc} không được là {_type_name(node)}.", _example(f), path=path)
            return INVALID
        return self.scalar(doc, node, f, path)

    def scalar(self, doc: _Doc, node: yaml.ScalarNode, f: Field, path: Path_) -> Any:
        raw: str = node.value
        tag = node.tag
        if f.kind in ("str", "slug", "url", "enum"):
            if f.kind == "str":
                if not raw.strip():
                    self.add(doc, node, f"{f.doc} đang để trống.", "Hãy điền nội dung hoặc xoá khoá này.", path=path)
                    return INVALID
                return raw
            if f.kind == "slug" and not SLUG_RE.match(raw):
                self.add(
                    doc,
                    node,
                    f'mã "{raw}" không hợp lệ.',
                    'Mã chỉ gồm chữ thường không dấu, số và dấu gạch ngang, ví dụ "nop-ho-so".',
                    path=path,
                )
                return INVALID
            if f.kind == "url" and not raw.startswith("https://"):
                self.add(
                    doc,
                    node,
                    f'link "{raw}" không dùng https.',
                    "Chỉ dẫn link https:// tới trang chính thức.",
                    path=path,
                )
                return INVALID
            if f.kind == "url" and self.allowed_domains is not None:
                self.check_domain(doc, path, raw, self.allowed_domains)
            if f.kind == "enum" and raw not in f.choices:
                hint = did_you_mean(raw, f.choices) or "Các giá trị được phép: " + ", ".join(f.choices) + "."
                self.add(doc, node, f'giá trị "{raw}" không hợp lệ cho {f.doc}.', hint, path=path)
                return INVALID
            return raw
        if f.kind == "bool":
            if tag.endswith(":bool"):
                return bool(_constructor.construct_object(node))
            self.add(
                doc, node, f'{f.doc} cần là true hoặc false, không phải "{raw}".', "Viết true hoặc false.", path=path
            )
            return INVALID
        if f.kind == "int":
            if tag.endswith(":int") and raw.isdigit():
                return int(raw)
            hint = "Viết số tiền liền, không dấu chấm, ví dụ 20000."
            self.add(doc, node, f'{f.doc} cần là số nguyên, không phải "{raw}".', hint, path=path)
            return INVALID
        # date
        if tag.endswith(":timestamp"):
            try:
                value = _constructor.construct_object(node)
            except ValueError:  # looks like a date but is not one, e.g. 2026-11-31
                value = None
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
        self.add(
            doc,
            node,
            f'{f.doc} cần là ngày dạng YYYY-MM-DD, không phải "{raw}".',
            "Ví dụ 2025-07-01 cho ngày 1 tháng 7 năm 2025.",
            path=path,
        )
        return INVALID

    def mapping(
        self, doc: _Doc, node: yaml.Node, fields: Mapping[str, Field], path: Path_, what: str
    ) -> dict[str, Any] | _Invalid:
        if not isinstance(node, yaml.MappingNode):
            self.add(
                doc,
                node,
                f"cần {what} dạng bảng khoá: giá trị nhưng lại là {_type_name(node)}.",
                "Viết mỗi khoá trên một dòng, dạng ten_khoa: gia_tri.",
                path=path,
            )
            return INVALID
        doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.add(doc, key_node, "tên khoá không hợp lệ.", "Tên khoá là chữ thường, ví dụ name.", path=path)
                continue
            if key in out:
                self.add(doc, key_node, f'khoá "{key}" bị lặp lại.', "Hãy xoá một trong hai dòng.", path=(*path, key))
                continue
            spec = fields.get(key)
            if spec is None:
                hint = did_you_mean(key, fields) or "Các khoá được phép: " + ", ".join(fields) + "."
                self.add(doc, key_node, f'khoá "{key}" không có trong định dạng.', hint, path=(*path, key))
                out[key] = INVALID
                continue
            doc.marks[(*path, key)] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            out[key] = self.value(doc, value_node, spec, (*path, key))
        for key, spec in fields.items():
            if spec.required and key not in out:
                self.add(
                    doc, node, f'thiếu khoá bắt buộc "{key}" ({spec.doc}).', f"Hãy thêm dòng {key}: ...", path=path
                )
        return out

    def step(self, doc: _Doc, node: yaml.Node, path: Path_) -> dict[str, Any] | _Invalid:
        kind = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if getattr(key_node, "value", None) == "kind" and isinstance(value_node, yaml.ScalarNode):
                    kind = value_node.value
        if kind not in STEP_KINDS:
            if isinstance(node, yaml.MappingNode) and kind is not None:
                hint = did_you_mean(kind, STEP_KINDS) or "Các loại bước: " + ", ".join(STEP_KINDS) + "."
                self.add(doc, node, f'loại bước "{kind}" không có.', hint, path=(*path, "kind"))
                return INVALID
            fields = STEP_FIELDS["message"]  # reports the missing kind and checks the rest
        else:
            fields = STEP_FIELDS[kind]
        return self.mapping(doc, node, fields, path, "một bước")

    def when(self, doc: _Doc, node: yaml.Node, path: Path_) -> dict[str, frozenset[str]] | _Invalid:
        hint = "Ví dụ: when: {hoi-dung-han: tre-han} hoặc when: {hoi-dung-han: [tre-han, qua-han]}."
        if not isinstance(node, yaml.MappingNode):
            self.add(doc, node, "điều kiện when cần dạng bảng bước: lựa chọn.", hint, path=path)
            return INVALID
        out: dict[str, frozenset[str]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            doc.marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            values: list[yaml.Node]
            values = list(value_node.value) if isinstance(value_node, yaml.SequenceNode) else [value_node]
            answers = []
            for v in values:
                if not isinstance(v, yaml.ScalarNode) or not SLUG_RE.match(v.value):
                    self.add(doc, v, "điều kiện when chỉ gồm mã lựa chọn.", hint, path=(*path, key))
                    return INVALID
                answers.append(v.value)
            out[key] = frozenset(answers)
        return out


_SYNTAX_VI: Final = (
    ("while scanning a quoted scalar", "dấu ngoặc kép mở ở đây chưa được đóng"),
    ("mapping values are not allowed", "dấu hai chấm đặt sai chỗ (thường do thụt lề sai hoặc thiếu ngoặc kép)"),
    ("found character '\\t'", "có ký tự Tab"),
    ("could not find expected ':'", "thiếu dấu hai chấm sau tên khoá"),
    ("expected <block end>", "thụt lề không khớp với các dòng phía trên"),
    ("did not find expected key", "thụt lề không khớp với các dòng phía trên"),
    ("did not find expected '-'", "thiếu dấu gạch ngang ở đầu mục danh sách"),
    ("found duplicate anchor", "tên neo (&) bị trùng"),
    ("found undefined alias", "dùng tên neo (*) chưa được khai báo"),
)


def _syntax_problem(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """Where a YAML syntax error really is, and what it means in plain Vietnamese."""
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    mark = exc.problem_mark
    # An unclosed quote is reported at the end of the file; its opening is what to fix.
    if context.startswith("while scanning") and exc.context_mark is not None:
        mark = exc.context_mark
    for english, vietnamese in _SYNTAX_VI:
        if english in context or english in problem:
            detail = vietnamese
            break
    else:
        detail = f"cú pháp không hợp lệ ({context + ' ' if context else ''}{problem})"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return line, col, detail


def _example(f: Field) -> str:
    return {
        "str": "Viết nội dung chữ sau dấu hai chấm.",
        "slug": "Viết một mã, ví dụ nop-ho-so.",
        "url": "Viết một link https://...",
        "bool": "Viết true hoặc false.",
        "int": "Viết một số nguyên, ví dụ 20000.",
        "date": "Viết ngày dạng YYYY-MM-DD.",
        "enum": "Chọn một trong: " + ", ".join(f.choices) + ".",
    }.get(f.kind, "")


# --------------------------------------------------------------------------
# Building objects and cross-checking.
# --------------------------------------------------------------------------


def _ok(value: Any) -> bool:
    return value is not INVALID and value is not None


def _verification(raw: Mapping[str, Any], default: Verification | None = None) -> Verification:
    """What a mapping says of its checking, the rest inherited from ``default``; the grade decides "checked"."""
    base = default or Verification(False)
    verified = raw.get("verified")
    source = raw.get("source")
    as_of = raw.get("as_of")
    own_grade = raw.get("grade")
    review_by = raw.get("review_by")
    # Its own grade decides; else its own "verified"; else what the procedure says.
    grade = own_grade if isinstance(own_grade, str) and own_grade in GRADE_NAMES else ""
    if grade:
        checked = grade in CHECKED_GRADES
    elif isinstance(verified, bool):
        checked = verified
        grade = "" if verified != base.verified else base.grade
    else:
        checked, grade = base.verified, base.grade
    return Verification(
        verified=checked,
        source=source if isinstance(source, str) else base.source,
        as_of=as_of if isinstance(as_of, date) else base.as_of,
        grade=grade,
        review_by=review_by if isinstance(review_by, date) else base.review_by,
    )


def _fact(raw: Any, default: Verification) -> Fact | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
        return None
    return Fact(raw["value"], _verification(raw, default))


def _strs(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(x for x in raw if isinstance(x, str))


def _str(raw: Any) -> str:
    return raw if isinstance(raw, str) else ""


def _list(raw: Any) -> list[Any]:
    return raw if isinstance(raw, list) else []


def _reminder(raw: Any) -> Reminder | None:
    if not isinstance(raw, dict):
        return None
    return Reminder(_str(raw.get("text")), _slug(raw.get("guide")))


def _slug(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


@dataclass(frozen=True)
class LoadResult:
    """A catalogue when the content has no errors, and every problem found either way."""

    catalogue: Catalogue | None
    problems: tuple[Problem, ...]
    version: str

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def content_files(content_dir: Path) -> list[Path]:
    """The files a content set is made of, in a stable order (the gate's weights when trained)."""
    files = [content_dir / CATALOGUE_FILE]
    if (content_dir / GATE_FILE).is_file():
        files.append(content_dir / GATE_FILE)
    flows = content_dir / FLOWS_DIR
    if flows.is_dir():
        files += sorted(p for p in flows.glob("*.yaml") if p.is_file())
    return files


def content_version(content_dir: Path) -> str:
    """A short hash of every content file's name and bytes."""
    h = hashlib.sha256()
    for path in content_files(content_dir):
        h.update(path.relative_to(content_dir).as_posix().encode())
        h.update(b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()[:12]


def locate(content_dir: Path, path: Path_) -> tuple[int, int]:
    """Line and column of a path (e.g. ("procedures", 3, "aliases", 2)) in procedures.yaml; (1, 1) if not found."""
    try:
        root: yaml.Node | None = compose((content_dir / CATALOGUE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1, 1
    node = node_at(root, path)
    return (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)


def node_at(node: yaml.Node | None, path: Iterable[str | int]) -> yaml.Node | None:
    """The YAML node a path leads to (keys of mappings, indexes of sequences), or None when it leads nowhere."""
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node


def confusable_problems(content_dir: Path, catalogue: Catalogue) -> list[Problem]:
    """Warnings for aliases and examples that match another procedure better than their own."""
    from bot.matcher import Matcher, confusables  # the matcher is only needed for this check

    index = {p.id: i for i, p in enumerate(catalogue.procedures)}
    out = []
    for c in confusables(catalogue, Matcher(catalogue)):
        path: Path_ = ("procedures", index[c.procedure_id], c.field, c.index)
        line, col = locate(content_dir, path)
        other = catalogue.procedure(c.other)
        out.append(
            Problem(
                CATALOGUE_FILE,
                line,
                col,
                "warning",
                f'"{c.text}" của thủ tục "{c.procedure_id}" giống thủ tục "{c.other}"'
                f" ({other.name if other else c.other}) hơn: {c.other_score:.0f} điểm so với {c.own_score:.0f}.",
                "Người dân gõ câu này sẽ bị đưa nhầm. Hãy viết rõ hơn (thêm chữ riêng của thủ tục này) hoặc bỏ dòng này.",
                format_path(path),
            )
        )
    return out


def load_content(content_dir: Path, today: date | None = None) -> LoadResult:
    """Load and check a whole content set; never raises for bad content.

    ``today`` is the day review dates are compared with (the real date unless a test says otherwise).
    """
    return _Loader(Path(content_dir), today or datetime.now(VIETNAM_TZ).date()).run()  # (the officials' day)


class _Loader:
    def __init__(self, content_dir: Path, today: date) -> None:
        self.dir = content_dir
        self.today = today
        self._global_facts: dict[str, NamedFact] = {}
        self._stage_list: tuple[Stage, ...] = ()
        self._contacts_seen: dict[str, Contact] = {}
        self.c = _Checker()
        self.version = content_version(content_dir)
        self._catalogue_doc = _Doc(CATALOGUE_FILE)
        self._flow_docs: dict[str, tuple[_Doc, dict[str, Path_]]] = {}
        # Procedures whose fees were written, even if a row was invalid (avoids a second, misleading error).
        self._declared_fees: set[str] = set()

    def run(self) -> LoadResult:
        doc = self._catalogue_doc
        path = self.dir / CATALOGUE_FILE
        if not path.is_file():
            self.c.add(
                doc,
                (),
                f"không tìm thấy tệp {CATALOGUE_FILE} trong thư mục {self.dir}.",
                "Hãy chạy lệnh trong thư mục nội dung hoặc dùng --content THU_MUC.",
            )
            return self._result(None)
        node = self.c.parse(path, doc, "danh mục thủ tục")
        if node is None:
            return self._result(None)
        raw = self.c.mapping(doc, node, OBJECTS["catalogue"], (), "danh mục thủ tục")
        if not isinstance(raw, dict):
            return self._result(None)
        allowed = tuple(d.lower().lstrip(".") for d in _strs(raw.get("allowed_domains")))
        self.c.allowed_domains = allowed
        self._global_facts = self._named_facts(doc, raw.get("facts"), ("facts",), Verification(False))
        glossary = self._glossary(doc, raw.get("glossary"))
        contacts = self._contacts(doc, raw.get("contacts"))
        self._contacts_seen = contacts
        procedures = self._procedures(doc, raw.get("procedures"), contacts)
        defaults = self._contact_refs(doc, raw.get("default_contacts"), ("default_contacts",), contacts)
        self._stage_list = self._stages(doc, raw.get("stages"))
        flows = self._flows(procedures)
        self._check_stage_steps(doc, raw.get("stages"), flows, procedures)
        self._cross_check(procedures, flows, contacts, allowed)
        catalogue = Catalogue(
            procedures=tuple(p for p, _ in procedures.values()),
            flows=flows,
            contacts=contacts,
            default_contacts=defaults,
            allowed_domains=allowed,
            version=self.version,
            abbreviations=self._abbreviations(doc, raw.get("abbreviations"), exact=False),
            exact_abbreviations=self._abbreviations(doc, raw.get("abbreviations"), exact=True),
            matching=self._matching(doc, raw.get("matching")),
            gate=self._gate(doc, raw.get("intent_gate"), contacts, [p for p, _ in procedures.values()]),
            families=self._families(doc, raw.get("families"), procedures),
            stages=self._stage_list,
            out_of_scope=_strs(raw.get("out_of_scope")),
            dialogue=self._dialogue(doc, raw.get("dialogue")),
            facts=self._global_facts,
            glossary=glossary,
        )
        return self._result(catalogue)

    # -- facts -----------------------------------------------------------

    def _check_grade(self, doc: _Doc, raw: Any, path: Path_, inherited: Verification | None = None) -> None:
        """A fact's ``verified`` must agree with its grade; a passed review date is a warning."""
        if not isinstance(raw, dict):
            return
        own = raw.get("grade")
        grade: str = own if isinstance(own, str) else (inherited.grade if inherited else "")
        verified = raw.get("verified")
        if grade in GRADE_NAMES and isinstance(verified, bool) and verified != (grade in CHECKED_GRADES):
            self.c.add(
                doc,
                (*path, "verified"),
                f"verified: {str(verified).lower()} không khớp với grade: {grade} ({GRADE_NAMES[grade]}).",
                "Chỉ grade S, S-3p hoặc can-bo là đã kiểm tra. Hãy sửa grade theo nguồn, hoặc bỏ dòng verified.",
            )
        as_of = raw.get("as_of")
        if isinstance(as_of, date) and as_of > self.today:
            self.c.add(
                doc,
                (*path, "as_of"),
                f"ngày kiểm tra as_of {as_of:%d/%m/%Y} ở sau hôm nay: bot sẽ nói thông tin được cập nhật ngày đó.",
                "as_of là ngày bạn đã xem nguồn (hôm nay hoặc trước đó). Kiểm tra lại năm, tháng, ngày.",
            )
        review_by = raw.get("review_by")
        if isinstance(review_by, date) and review_by < self.today:
            self.c.add(
                doc,
                (*path, "review_by"),
                f"đã quá ngày cần xem lại thông tin này ({review_by:%d/%m/%Y}).",
                "Hãy đối chiếu lại với nguồn, sửa nếu cần, rồi ghi as_of là hôm nay và một review_by mới.",
                "warning",
            )

    def _check_fee_overlap(self, doc: _Doc, raw: Any, fees: list[Fee], path: Path_) -> None:
        """Two rows for one case (the same id, or the same label) in force on the same day: citizens would be
        told both amounts. The usual slip: a new row added and the old one not closed with valid_to."""
        rows = [k for k, f in enumerate(raw if isinstance(raw, list) else []) if isinstance(f, dict)]
        rows = [k for k in rows if isinstance(raw[k].get("valid_from"), date)][: len(fees)]
        for b in range(len(fees)):
            for a in range(b):
                first, second = fees[a], fees[b]
                same = (first.id and first.id == second.id) or (not first.id and first.label == second.label)
                if not same:
                    continue
                starts, ends = max(first.valid_from, second.valid_from), [f.valid_to for f in (first, second)]
                if all(e is None or starts <= e for e in ends):  # (valid_to is the last day a rate applies)
                    case = first.id or first.label
                    self.c.add(
                        doc,
                        (*path, rows[b] if b < len(rows) else b),
                        f'hai dòng lệ phí cho cùng trường hợp "{case}" cùng áp dụng từ {starts:%d/%m/%Y}: người dân '
                        "sẽ thấy cả hai mức.",
                        "Nếu mức mới thay mức cũ, ghi valid_to cho dòng cũ là ngày cuối mức cũ còn áp dụng. Nếu là hai "
                        "trường hợp khác nhau, đặt tên (label) hoặc id khác nhau.",
                    )

    def _check_fee_source(self, doc: _Doc, raw: Any, path: Path_, default: Verification) -> None:
        """A fee row says where its amount comes from and when that was checked: one added without them would
        take the procedure's date and grade, and be shown to citizens as checked."""
        if not isinstance(raw, dict):
            return
        lacking = [k for k in ("source", "as_of") if not raw.get(k)]
        if lacking and _verification(raw, default).verified:
            self.c.add(
                doc,
                path,
                "dòng lệ phí thiếu " + " và ".join(lacking) + ": bot sẽ nói mức phí này như đã kiểm tra.",
                "Ghi source (văn bản hoặc trang gov.vn có mức phí) và as_of (ngày bạn xem nguồn), như các dòng lệ "
                'phí khác. Chưa có nguồn thì ghi grade: "?" để bot nói rõ là chưa xác nhận.',
            )

    def _named_facts(self, doc: _Doc, raw: Any, path: Path_, default: Verification) -> dict[str, NamedFact]:
        out: dict[str, NamedFact] = {}
        for i, item in enumerate(_list(raw)):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            fid = item["id"]
            if fid in out:
                self.c.add(doc, (*path, i, "id"), f'mã thông tin "{fid}" bị trùng.', "Mỗi thông tin cần một mã riêng.")
                continue
            self._check_grade(doc, item, (*path, i))
            self.c.check_links_in_text(doc, (*path, i, "value"), _str(item.get("value")))
            out[fid] = NamedFact(fid, _str(item.get("value")), _verification(item, default))
        return out

    def _glossary(self, doc: _Doc, raw: Any) -> tuple[Term, ...]:
        out: list[Term] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(_list(raw)):
            if not isinstance(item, dict) or not isinstance(item.get("term"), str):
                continue
            forms = (item["term"], *_strs(item.get("forms")))
            for form in forms:
                key = fold(form)
                if key in seen:
                    self.c.add(
                        doc,
                        ("glossary", i),
                        f'từ "{form}" đã có trong mục glossary (dòng {doc.mark(("glossary", seen[key]))[0]}).',
                        "Mỗi từ chỉ giải thích một lần; gộp hai mục lại.",
                    )
                seen.setdefault(key, i)
            self.c.check_links_in_text(doc, ("glossary", i, "explain"), _str(item.get("explain")))
            out.append(Term(f"t{i}", item["term"], forms, _str(item.get("explain"))))
        return tuple(out)

    def _result(self, catalogue: Catalogue | None) -> LoadResult:
        problems = tuple(
            sorted(set(self.c.problems), key=lambda p: (p.file != CATALOGUE_FILE, p.file, p.line, p.col, p.message))
        )
        has_error = any(p.severity == "error" for p in problems)
        return LoadResult(None if has_error else catalogue, problems, self.version)

    # -- catalogue -------------------------------------------------------

    def _abbreviations(self, doc: _Doc, raw: Any, exact: bool) -> dict[str, str]:
        """The folded table, or (``exact``) the entries matched with their diacritics."""
        out: dict[str, str] = {}
        first: dict[str, int] = {}
        for i, item in enumerate(_list(raw)):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("short"), str)
                or not isinstance(item.get("full"), str)
                or bool(item.get("exact")) != exact
            ):
                continue
            short = " ".join(nfc(item["short"]).lower().split()) if exact else fold(item["short"])
            full = fold(item["full"])
            if not short or not full or (exact and " " in short):
                if exact and " " in short:
                    self.c.add(
                        doc,
                        ("abbreviations", i, "short"),
                        "chữ viết tắt có exact: true phải là một chữ.",
                        "Bỏ exact, hoặc tách thành từng chữ.",
                    )
                    continue
                self.c.add(
                    doc,
                    ("abbreviations", i, "short" if not short else "full"),
                    "chữ viết tắt và nghĩa đầy đủ phải có chữ cái hoặc chữ số.",
                    "Ví dụ: {short: dk, full: đăng ký}.",
                )
                continue
            if short in first:
                line = doc.mark(("abbreviations", first[short]))[0]
                self.c.add(
                    doc,
                    ("abbreviations", i, "short"),
                    f'chữ viết tắt "{item["short"]}" đã có ở dòng {line}.',
                    "Mỗi chữ viết tắt chỉ ghi một lần; giữ nghĩa về thủ tục hành chính.",
                )
                continue
            first[short] = i
            out[short] = full
        return out

    def _dialogue(self, doc: _Doc, raw: Any) -> Dialogue:
        """The dialogue word lists; a phrase that means two things, or has no letters, is an error."""
        if not isinstance(raw, dict):
            return Dialogue()
        lists: dict[str, tuple[str, ...]] = {}
        meaning: dict[str, tuple[str, int]] = {}  # folded phrase -> (list, index) of its first use
        for name, _, _ in DIALOGUE_LISTS:
            kept: list[str] = []
            for i, item in enumerate(_list(raw.get(name))):
                if not isinstance(item, str):
                    continue
                key = fold(item)
                if not key and not any(not ch.isascii() and not ch.isalnum() for ch in item):
                    self.c.add(
                        doc,
                        ("dialogue", name, i),
                        f'"{item}" không có chữ nào.',
                        "Viết câu như người dân gõ, ví dụ: dạ, quay về, thôi không làm nữa.",
                    )
                    continue
                if name in DIALOGUE_INTENTS and key:
                    first = meaning.get(key)
                    if first is not None and first[0] != name and {first[0], name} != {"affirm", "done"}:
                        line = doc.mark(("dialogue", first[0], first[1]))[0]
                        self.c.add(
                            doc,
                            ("dialogue", name, i),
                            f'"{item}" đã có trong {first[0]} (dòng {line}): một câu không thể vừa là {first[0]} vừa là {name}.',
                            "Giữ câu ở một danh sách thôi, danh sách đúng với ý người dân nhất.",
                        )
                        continue
                    meaning.setdefault(key, (name, i))
                kept.append(item)
            lists[name] = tuple(kept)
        synonyms = tuple(
            tuple(x for x in group if isinstance(x, str))
            for group in _list(raw.get("synonyms"))
            if isinstance(group, list)
        )
        for i, group in enumerate(synonyms):
            if len(group) < 2:
                self.c.add(
                    doc,
                    ("dialogue", "synonyms", i),
                    "một nhóm cách nói cùng nghĩa cần ít nhất hai cách nói.",
                    "Ví dụ: [trên mạng, trực tuyến, online].",
                )
        return Dialogue(lists, tuple(g for g in synonyms if len(g) >= 2))

    def _stages(self, doc: _Doc, raw: Any) -> tuple[Stage, ...]:
        """``stages``: ids and names unique, each shared step id and step kind in one stage only."""
        out: list[Stage] = []
        owner: dict[str, str] = {}  # "step:<id>" or "kind:<kind>" -> the stage that claims it
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            if any(st.id == item["id"] for st in out):
                self.c.add(doc, ("stages", i, "id"), f'mã chặng "{item["id"]}" bị trùng.', "Mỗi chặng cần mã riêng.")
                continue
            claimed: dict[str, list[str]] = {"steps": [], "kinds": []}
            for key, what in (("steps", "bước"), ("kinds", "loại bước")):
                for j, name in enumerate(_strs(item.get(key))):
                    tag = f"{key}:{name}"
                    if tag in owner:
                        self.c.add(
                            doc,
                            ("stages", i, key, j),
                            f'{what} "{name}" đã thuộc chặng "{owner[tag]}".',
                            f"Mỗi {what} chỉ thuộc một chặng; bước nào khác thường thì ghi stage: ngay trong bước đó.",
                        )
                        continue
                    owner[tag] = item["id"]
                    claimed[key].append(name)
            name = _str(item.get("name"))
            if len(name) > STAGE_NAME_CHARS:
                self.c.add(
                    doc,
                    ("stages", i, "name"),
                    f"tên chặng dài {len(name)} ký tự, biểu đồ báo cáo sẽ cắt bớt (tối đa {STAGE_NAME_CHARS}).",
                    "Viết vài chữ, ví dụ: Nộp hồ sơ.",
                    "warning",
                )
            reminder = _reminder(item.get("reminder"))
            out.append(Stage(item["id"], name, tuple(claimed["steps"]), tuple(claimed["kinds"]), reminder))
        return tuple(out)

    def _check_stage_steps(
        self, doc: _Doc, raw: Any, flows: Mapping[str, Flow], procedures: Mapping[str, tuple[Procedure, Path_]]
    ) -> None:
        """A step id listed under a stage that no flow has is most likely a typo: its steps would fall elsewhere.
        A stage's reminder guide must be a shared guide."""
        known = {s.id for flow in flows.values() for s in flow.steps}
        guides = sorted(pid for pid, (proc, _) in procedures.items() if proc.is_guide)
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(item, dict):
                continue
            reminder = _reminder(item.get("reminder"))
            if reminder is not None and reminder.guide is not None and reminder.guide not in guides:
                self.c.add(
                    doc,
                    ("stages", i, "reminder", "guide"),
                    f'lời nhắc của chặng "{item.get("id")}" mở hướng dẫn "{reminder.guide}" nhưng không có '
                    "hướng dẫn dùng chung nào mã như vậy.",
                    did_you_mean(reminder.guide, guides) or "Hãy ghi mã một mục kind: guide trong procedures.yaml.",
                )
            for j, name in enumerate(_strs(item.get("steps"))):
                if name not in known:
                    self.c.add(
                        doc,
                        ("stages", i, "steps", j),
                        f'không kịch bản nào có bước "{name}".',
                        did_you_mean(name, sorted(known)) or "Ghi mã bước có trong flows/*.yaml, hoặc bỏ mã này.",
                        "warning",
                    )

    def _families(self, doc: _Doc, raw: Any, procedures: Mapping[str, tuple[Procedure, Path_]]) -> tuple[Family, ...]:
        out: list[Family] = []
        member_of: dict[str, str] = {}
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            members: list[str] = []
            for j, pid in enumerate(_strs(item.get("members"))):
                if pid not in procedures:
                    self.c.add(
                        doc,
                        ("families", i, "members", j),
                        f'thủ tục "{pid}" không có trong danh mục.',
                        did_you_mean(pid, procedures) or "Dùng mã thủ tục trong mục procedures.",
                    )
                elif pid in member_of:
                    self.c.add(
                        doc,
                        ("families", i, "members", j),
                        f'thủ tục "{pid}" đã thuộc nhóm "{member_of[pid]}".',
                        "Mỗi thủ tục chỉ thuộc một nhóm.",
                    )
                else:
                    member_of[pid] = item["id"]
                    members.append(pid)
            if len(members) < 2:
                self.c.add(
                    doc,
                    ("families", i, "members"),
                    f'nhóm "{item["id"]}" cần ít nhất 2 thủ tục.',
                    "Một thủ tục đứng riêng thì không cần nhóm.",
                )
                continue
            margin = item.get("margin")
            out.append(
                Family(
                    item["id"],
                    _str(item.get("question")),
                    tuple(members),
                    float(margin) if isinstance(margin, int) else 12.0,
                )
            )
        return tuple(out)

    def _gate(
        self, doc: _Doc, raw: Any, contacts: Mapping[str, Contact], procedures: list[Procedure]
    ) -> GateData | None:
        """``intent_gate``, with the weights file trained from it (missing, broken or stale: a warning)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("threshold"), int):
            return None
        threshold = raw["threshold"]
        if not 1 <= threshold <= 99:
            self.c.add(
                doc,
                ("intent_gate", "threshold"),
                f"ngưỡng {threshold} phải từ 1 đến 99.",
                "Để 50 nếu chưa đo; đo lại bằng python -m bot eval-match trước khi đổi.",
            )
        law_raw: dict[str, Any] = raw["law"] if isinstance(raw.get("law"), dict) else {}
        law = {c: tuple(x.strip() for x in _strs(law_raw.get(c)) if x.strip()) for c in GATE_CATEGORIES}
        do = tuple(x.strip() for x in _strs(raw.get("do")) if x.strip())
        for c, examples in law.items():
            if len(examples) < 5:
                self.c.add(
                    doc,
                    ("intent_gate", "law", c) if c in law_raw else ("intent_gate", "law"),
                    f'nhóm "{c}" có {len(examples)} câu mẫu; cần ít nhất 5 để bot học được.',
                    "Viết thêm câu hỏi mẫu theo cách người dân hỏi (không chép nguyên câu từ bộ đánh giá).",
                )
        seen: dict[str, str] = {}
        for c, examples in (*law.items(), ("do", do)):
            for i, text in enumerate(examples):
                key = fold(text)
                if key in seen and seen[key] != c:
                    path: Path_ = ("intent_gate", "law", c, i) if c != "do" else ("intent_gate", "do", i)
                    self.c.add(
                        doc,
                        path,
                        f'câu mẫu "{text[:60]}" có cả ở nhóm "{seen[key]}" và nhóm "{c}".',
                        "Một câu chỉ thuộc một nhóm: bỏ ở nhóm sai.",
                    )
                seen[key] = c
        contact_ids = self._contact_refs(doc, raw.get("contacts"), ("intent_gate", "contacts"), contacts)
        weights = self._gate_weights(doc)
        own = data_hash(content_examples(law, do, procedures))
        if weights is not None and weights.get("content_hash") != own:
            self.c.add(
                doc,
                ("intent_gate",),
                f"các câu mẫu đã đổi từ lần học trước; tệp {GATE_FILE} chưa theo kịp.",
                "Chạy `python -m bot train-gate` rồi `python -m bot eval-match` để đo lại.",
                "warning",
            )
        return GateData(threshold / 100, contact_ids, law, do, weights)

    def _gate_weights(self, doc: _Doc) -> Mapping[str, object] | None:
        path = self.dir / GATE_FILE
        if not path.is_file():
            self.c.add(
                doc,
                ("intent_gate",),
                f"chưa có tệp {GATE_FILE}: bot chưa phân biệt được câu hỏi xin tư vấn pháp luật.",
                "Chạy `python -m bot train-gate` để học từ các câu mẫu.",
                "warning",
            )
            return None
        try:
            if path.stat().st_size > GATE_MAX_BYTES:
                raise ValueError(f"lớn hơn {GATE_MAX_BYTES // 1_000_000} MB")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("cần một bảng JSON")
            Gate.from_json(data)
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            self.c.add(
                doc,
                ("intent_gate",),
                f"tệp {GATE_FILE} hỏng ({exc}); bot tạm không phân biệt câu hỏi xin tư vấn pháp luật.",
                "Chạy lại `python -m bot train-gate`.",
                "warning",
            )
            return None
        return data

    def _matching(self, doc: _Doc, raw: Any) -> MatchSettings | None:
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), int) for k in OBJECTS["matching"]):
            return None
        s = MatchSettings(
            confident=float(raw["confident"]),
            ambiguous=float(raw["ambiguous"]),
            margin=float(raw["margin"]),
            min_words=int(raw["min_words"]),
        )
        if not 0 <= s.ambiguous <= s.confident <= 100:
            self.c.add(
                doc,
                ("matching",),
                "ngưỡng phải thỏa 0 ≤ ambiguous ≤ confident ≤ 100.",
                "Chạy `python -m bot eval-match` trước khi đổi các ngưỡng này.",
            )
        return s

    def _contacts(self, doc: _Doc, raw: Any) -> dict[str, Contact]:
        out: dict[str, Contact] = {}
        if not isinstance(raw, list):
            return out
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            cid = item["id"]
            if cid in out:
                self.c.add(doc, ("contacts", i, "id"), f'mã liên hệ "{cid}" bị trùng.', "Mỗi liên hệ cần một mã riêng.")
                continue
            if isinstance(item.get("url"), str):
                self.c.check_domain(doc, ("contacts", i, "url"), item["url"], self.c.allowed_domains or ())
            self._check_grade(doc, item, ("contacts", i))
            for key in ("name", "address", "hours"):
                if isinstance(item.get(key), str):
                    self.c.check_links_in_text(doc, ("contacts", i, key), item[key])
            out[cid] = Contact(
                id=cid,
                name=_str(item.get("name")),
                phone=_str(item.get("phone")),
                url=_str(item.get("url")),
                address=_str(item.get("address")),
                hours=_str(item.get("hours")),
                note=_str(item.get("note")),
                verification=_verification(item),
            )
        return out

    def _contact_refs(self, doc: _Doc, raw: Any, path: Path_, contacts: Mapping[str, Contact]) -> tuple[str, ...]:
        out = []
        if not isinstance(raw, list):
            return ()
        for i, cid in enumerate(raw):
            if not isinstance(cid, str):
                continue
            if cid not in contacts:
                self.c.add(
                    doc,
                    (*path, i),
                    f'liên hệ "{cid}" không có trong mục contacts.',
                    did_you_mean(cid, contacts) or "Hãy khai báo liên hệ này trong mục contacts của procedures.yaml.",
                )
                continue
            out.append(cid)
        return tuple(out)

    def _procedures(self, doc: _Doc, raw: Any, contacts: Mapping[str, Contact]) -> dict[str, tuple[Procedure, Path_]]:
        out: dict[str, tuple[Procedure, Path_]] = {}
        if not isinstance(raw, list):
            return out
        for i, item in enumerate(raw):
            path: Path_ = ("procedures", i)
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            pid = item["id"]
            if pid in out:
                first = doc.mark(out[pid][1])[0]
                self.c.add(
                    doc,
                    (*path, "id"),
                    f'mã thủ tục "{pid}" bị trùng (đã có ở dòng {first}).',
                    "Mỗi thủ tục cần một mã riêng; hãy đổi mã hoặc gộp hai mục.",
                )
                continue
            ver = item.get("verification")
            default = _verification(ver) if isinstance(ver, dict) else Verification(False)
            self._check_grade(doc, ver, (*path, "verification"))
            for key in ("code", "processing_time", "url", "agency"):
                self._check_grade(doc, item.get(key), (*path, key), default)
            agency_raw = item.get("agency")
            agency = None
            if isinstance(agency_raw, dict) and isinstance(agency_raw.get("since"), date):
                agency = Agency(
                    name=_str(agency_raw.get("name")),
                    level=_str(agency_raw.get("level")),
                    since=agency_raw["since"],
                    verification=_verification(agency_raw, default),
                )
            fees = []
            fees_raw = item.get("fees")
            if fees_raw or item.get("fee_note"):
                self._declared_fees.add(pid)
            for k, fee in enumerate(fees_raw if isinstance(fees_raw, list) else []):
                self._check_grade(doc, fee, (*path, "fees", k), default)
                self._check_fee_source(doc, fee, (*path, "fees", k), default)
                if not isinstance(fee, dict) or not isinstance(fee.get("valid_from"), date):
                    continue
                valid_to = fee.get("valid_to")
                full = fee.get("before_discount")
                fees.append(
                    Fee(
                        label=_str(fee.get("label")),
                        online=fee.get("online") if isinstance(fee.get("online"), int) else None,
                        counter=fee.get("counter") if isinstance(fee.get("counter"), int) else None,
                        unit=_str(fee.get("unit")) or "đồng",
                        exemptions=_strs(fee.get("exemptions")),
                        legal_basis=_str(fee.get("legal_basis")),
                        valid_from=fee["valid_from"],
                        valid_to=valid_to if isinstance(valid_to, date) else None,
                        detail=_str(fee.get("detail")),
                        verification=_verification(fee, default),
                        before_discount=full if isinstance(full, int) and not isinstance(full, bool) else None,
                        id=_str(fee.get("id")),
                        start_known=fee.get("start_known") is not False,
                    )
                )
            self._check_fee_overlap(doc, fees_raw, fees, (*path, "fees"))
            kind = item.get("kind")
            proc = Procedure(
                id=pid,
                kind="guide" if kind == "guide" else "procedure",
                name=_str(item.get("name")),
                area=_str(item.get("area")),
                aliases=_strs(item.get("aliases")),
                examples=_strs(item.get("examples")),
                code=_fact(item.get("code"), default),
                agency=agency,
                fees=tuple(fees),
                fee_note=_str(item.get("fee_note")),
                processing_time=_fact(item.get("processing_time"), default),
                url=_fact(item.get("url"), default),
                fully_online=item.get("fully_online") if isinstance(item.get("fully_online"), bool) else None,
                verification=default,
                contacts=self._contact_refs(doc, item.get("contacts"), (*path, "contacts"), contacts),
                bring=_strs(item.get("bring")),
                flow_path=_str(item.get("flow")),
                facts=self._named_facts(doc, item.get("facts"), (*path, "facts"), default),
            )
            out[pid] = (proc, path)
            self._check_procedure(doc, proc, item, path)
        return out

    def _check_procedure(self, doc: _Doc, proc: Procedure, item: Mapping[str, Any], path: Path_) -> None:
        fees = item.get("fees")
        for i, fee in enumerate(fees if isinstance(fees, list) else []):
            if not isinstance(fee, dict):
                continue
            fpath = (*path, "fees", i)
            if fee.get("online") is None and fee.get("counter") is None and "online" in fee and "counter" in fee:
                self.c.add(
                    doc,
                    fpath,
                    "mức lệ phí không có số tiền nào.",
                    "Hãy ghi số tiền online hoặc counter; nếu chưa rõ, xoá mục này và ghi fee_note.",
                )
            vf, vt = fee.get("valid_from"), fee.get("valid_to")
            if isinstance(vf, date) and isinstance(vt, date) and vt < vf:
                self.c.add(
                    doc,
                    (*fpath, "valid_to"),
                    "ngày hết hiệu lực đứng trước ngày bắt đầu.",
                    "Hãy kiểm tra lại valid_from và valid_to.",
                )
        shown: list[tuple[Path_, str]] = [((*path, "fee_note"), proc.fee_note)]
        shown += [((*path, "fees", i, "detail"), f.detail) for i, f in enumerate(proc.fees)]
        for where, sentence in shown:
            if sentence:
                self._check_catalogue_words(doc, where, sentence)
        # Everything else of the procedure a citizen may read: links in it must be official too.
        shown += [((*path, "name"), proc.name), ((*path, "agency", "name"), proc.agency.name if proc.agency else "")]
        shown += [((*path, "fees", i, "label"), f.label) for i, f in enumerate(proc.fees)]
        shown += [((*path, "fees", i, "exemptions"), "; ".join(f.exemptions)) for i, f in enumerate(proc.fees)]
        shown += [((*path, "bring", i), b) for i, b in enumerate(proc.bring)]
        for where, sentence in shown:
            self.c.check_links_in_text(doc, where, sentence)
        if proc.url is not None and not proc.url.value.startswith("https://"):
            self.c.add(
                doc,
                (*path, "url"),
                f'link "{proc.url.value}" không dùng https.',
                "Chỉ dẫn link https:// tới trang chính thức.",
            )
        if not proc.is_guide and len(proc.aliases) + len(proc.examples) == 0:
            self.c.add(
                doc,
                (*path, "name"),
                f'thủ tục "{proc.id}" chưa có cách gọi (aliases) hay câu hỏi mẫu (examples).',
                "Hãy thêm vài cách người dân hay gọi thủ tục này để bot nhận ra.",
                "warning",
            )

    # -- flows -----------------------------------------------------------

    def _flows(self, procedures: Mapping[str, tuple[Procedure, Path_]]) -> dict[str, Flow]:
        cat = self._catalogue_doc
        flows: dict[str, Flow] = {}
        used: set[Path] = set()
        for pid, (proc, path) in procedures.items():
            if not proc.flow_path:
                continue
            fpath = self.dir / proc.flow_path
            if not fpath.resolve().is_relative_to((self.dir / FLOWS_DIR).resolve()):
                self.c.add(
                    cat,
                    (*path, "flow"),
                    f'tệp kịch bản "{proc.flow_path}" nằm ngoài thư mục {FLOWS_DIR}/.',
                    f"Hãy đặt kịch bản trong {FLOWS_DIR}/, ví dụ flow: {FLOWS_DIR}/{pid}.yaml.",
                )
                continue
            if not fpath.is_file():
                self.c.add(
                    cat,
                    (*path, "flow"),
                    f'không tìm thấy tệp kịch bản "{proc.flow_path}" của thủ tục "{pid}".',
                    f"Hãy tạo tệp {FLOWS_DIR}/{pid}.yaml hoặc sửa đường dẫn flow.",
                )
                continue
            used.add(fpath.resolve())
            flow = self._flow(fpath, proc)
            if flow is not None:
                flows[pid] = flow
        for extra in content_files(self.dir)[1:]:
            if extra.name == GATE_FILE and extra.parent == self.dir:
                continue  # the gate's weights, not a flow
            if extra.resolve() not in used:
                self.c.add(
                    _Doc(extra.relative_to(self.dir).as_posix()),
                    (),
                    "tệp kịch bản này không thuộc thủ tục nào trong procedures.yaml.",
                    "Hãy thêm thủ tục vào procedures.yaml với flow trỏ tới tệp này, hoặc xoá tệp.",
                    "warning",
                )
        return flows

    def _flow(self, path: Path, proc: Procedure) -> Flow | None:
        rel = path.relative_to(self.dir).as_posix() if path.is_relative_to(self.dir) else str(path)
        doc = _Doc(rel)
        node = self.c.parse(path, doc, "kịch bản các bước")
        if node is None:
            return None
        raw = self.c.mapping(doc, node, OBJECTS["flow"], (), "kịch bản")
        if not isinstance(raw, dict):
            return None
        if isinstance(raw.get("procedure"), str) and raw["procedure"] != proc.id:
            self.c.add(
                doc,
                ("procedure",),
                f'tệp khai báo thủ tục "{raw["procedure"]}" nhưng procedures.yaml gán nó cho "{proc.id}".',
                f"Hãy sửa thành procedure: {proc.id}.",
            )
        steps: list[Step] = []
        step_paths: dict[str, Path_] = {}
        raw_steps = raw.get("steps")
        for i, s in enumerate(raw_steps if isinstance(raw_steps, list) else []):
            if not isinstance(s, dict) or not isinstance(s.get("id"), str) or s.get("kind") not in STEP_KINDS:
                continue
            sid = s["id"]
            if sid in step_paths:
                first = doc.mark(step_paths[sid])[0]
                self.c.add(
                    doc,
                    ("steps", i, "id"),
                    f'mã bước "{sid}" bị trùng (đã có ở dòng {first}).',
                    "Mỗi bước cần một mã riêng trong tệp.",
                )
                continue
            step_paths[sid] = ("steps", i)
            steps.append(self._step(doc, s, ("steps", i)))
        if not steps:
            if isinstance(raw_steps, list) and not raw_steps:
                self.c.add(doc, ("steps",), "kịch bản chưa có bước nào.", "Hãy thêm ít nhất một bước.")
            return None
        start = _slug(raw.get("start")) or steps[0].id
        flow = Flow(proc.id, start, tuple(steps), {s.id: s for s in steps})
        self._flow_docs[proc.id] = (doc, step_paths)
        return flow

    def _step(self, doc: _Doc, s: Mapping[str, Any], path: Path_) -> Step:
        options = []
        seen: dict[str, int] = {}
        for j, o in enumerate(_list(s.get("options"))):
            if not isinstance(o, dict) or not isinstance(o.get("id"), str):
                continue
            if o["id"] in seen:
                self.c.add(
                    doc,
                    (*path, "options", j, "id"),
                    f'mã lựa chọn "{o["id"]}" bị trùng trong bước này.',
                    "Mỗi lựa chọn trong một bước cần mã riêng.",
                )
                continue
            seen[o["id"]] = j
            says = tuple(x.strip() for x in _list(o.get("says")) if isinstance(x, str) and x.strip())
            options.append(Option(o["id"], _str(o.get("label")), _slug(o.get("next")), _slug(o.get("goto")), says))
        items = []
        seen_items: set[str] = set()
        for j, it in enumerate(_list(s.get("items"))):
            if not isinstance(it, dict) or not isinstance(it.get("id"), str):
                continue
            if it["id"] in seen_items:
                self.c.add(
                    doc,
                    (*path, "items", j, "id"),
                    f'mã giấy tờ "{it["id"]}" bị trùng trong bước này.',
                    "Mỗi giấy tờ cần mã riêng.",
                )
                continue
            seen_items.add(it["id"])
            when_raw = it.get("when")
            when: dict[str, frozenset[str]] = when_raw if isinstance(when_raw, dict) else {}
            items.append(
                ChecklistItem(
                    it["id"],
                    _str(it.get("text")),
                    tuple(Condition(k, v) for k, v in when.items()),
                    _str(it.get("label")),
                )
            )
        return Step(
            id=s["id"],
            kind=s["kind"],
            text=_str(s.get("text")),
            next=_slug(s.get("next")),
            goto=_slug(s.get("goto")),
            links=_strs(s.get("links")),
            options=tuple(options),
            items=tuple(items),
            missing_next=_slug(s.get("missing_next")),
            failed_next=_slug(s.get("failed_next")),
            guide=_slug(s.get("guide")) or (DEFAULT_PAYMENT_GUIDE if s["kind"] == "payment" else None),
            contacts=_strs(s.get("contacts")),
            bring=_strs(s.get("bring")),
            paid=s.get("paid") is True,
            where=_str(s.get("where")) or "online",
            title=_str(s.get("title")),
            stage=_slug(s.get("stage")),
            reminder=_reminder(s.get("reminder")),
        )

    # -- cross references ------------------------------------------------

    def _cross_check(
        self,
        procedures: Mapping[str, tuple[Procedure, Path_]],
        flows: Mapping[str, Flow],
        contacts: Mapping[str, Contact],
        allowed: tuple[str, ...],
    ) -> None:
        for pid, flow in flows.items():
            proc = procedures[pid][0]
            doc, step_paths = self._flow_docs[pid]
            self._check_flow(doc, step_paths, proc, flow, procedures, flows, contacts, allowed)
        cat = self._catalogue_doc
        for proc, path in procedures.values():
            if proc.url is not None:
                self.c.check_domain(cat, (*path, "url"), proc.url.value, allowed)

    def _check_flow(
        self,
        doc: _Doc,
        step_paths: Mapping[str, Path_],
        proc: Procedure,
        flow: Flow,
        procedures: Mapping[str, tuple[Procedure, Path_]],
        flows: Mapping[str, Flow],
        contacts: Mapping[str, Contact],
        allowed: tuple[str, ...],
    ) -> None:
        ids = [s.id for s in flow.steps]
        if flow.start not in flow.by_id:
            self.c.add(
                doc,
                ("start",),
                f'bước bắt đầu "{flow.start}" không có trong tệp.',
                did_you_mean(flow.start, ids) or "Hãy ghi mã một bước có trong tệp.",
            )

        pointed = {flow.start} | {
            n
            for st in flow.steps
            for n in (st.next, st.missing_next, st.failed_next, *(o.next for o in st.options))
            if n and n != st.id  # a step pointing to itself is still pointed to by nothing
        }
        orphans = [i for i in ids if i not in pointed and i != flow.start]
        broken: list[tuple[Path_, str, str, str | None]] = []  # (path, from step, missing name, likely meant)

        def target(path: Path_, src: str, name: str | None) -> None:
            if name is not None and name not in flow.by_id:
                broken.append((path, src, name, renamed(name, orphans, ids)))

        def guide(path: Path_, src: str, name: str | None) -> None:
            if name is None:
                return
            if name not in procedures:
                self.c.add(
                    doc,
                    path,
                    f'bước "{src}" nhảy tới hướng dẫn "{name}" nhưng không có thủ tục nào mã như vậy.',
                    did_you_mean(name, procedures) or "Hãy ghi mã một hướng dẫn trong procedures.yaml.",
                )
            elif name == proc.id:
                self.c.add(
                    doc, path, f'bước "{src}" nhảy vào chính thủ tục này.', "Dùng next để sang bước khác trong tệp."
                )
            elif not procedures[name][0].is_guide:
                self.c.add(
                    doc,
                    path,
                    f'"{name}" là thủ tục, không phải hướng dẫn dùng chung.',
                    "Chỉ nên nhảy vào các mục kind: guide.",
                    "warning",
                )

        stage_ids = [st.id for st in self._stage_list]
        for s in flow.steps:
            p = step_paths[s.id]
            if s.stage is not None and proc.is_guide:
                self.c.add(
                    doc,
                    (*p, "stage"),
                    f'"{proc.id}" là hướng dẫn dùng chung: báo cáo không chia hướng dẫn theo chặng.',
                    "Bỏ dòng stage: này (chỉ thủ tục mới có chặng).",
                    "warning",
                )
            if s.stage is not None and s.stage not in stage_ids:
                self.c.add(
                    doc,
                    (*p, "stage"),
                    f'chặng "{s.stage}" không có trong mục stages của procedures.yaml.',
                    did_you_mean(s.stage, stage_ids)
                    or (f"Các chặng có: {', '.join(stage_ids)}." if stage_ids else "Hãy khai báo stages trước."),
                )
            if len(s.title) > STEP_TITLE_CHARS:
                self.c.add(
                    doc,
                    (*p, "title"),
                    f"tên bước dài {len(s.title)} ký tự, bảng báo cáo sẽ khó đọc (tối đa {STEP_TITLE_CHARS}).",
                    "Viết vài chữ cho biết bước làm gì, ví dụ: Đăng nhập VNeID.",
                    "warning",
                )
            target((*p, "next"), s.id, s.next)
            target((*p, "missing_next"), s.id, s.missing_next)
            target((*p, "failed_next"), s.id, s.failed_next)
            guide((*p, "goto"), s.id, s.goto)
            if s.kind == "payment":
                guide((*p, "guide"), s.id, s.guide)
            if s.reminder is not None:
                guide((*p, "reminder", "guide"), s.id, s.reminder.guide)
            if s.kind == "message" and s.next is None:
                self.c.add(
                    doc,
                    p,
                    f'bước "{s.id}" không có đường đi tiếp (ngõ cụt).',
                    "Hãy thêm next: <mã bước>, hoặc đổi kind thành end nếu đây là bước cuối.",
                )
            labels: dict[str, int] = {}
            for j, o in enumerate(s.options):
                op = (*p, "options", j)
                target((*op, "next"), s.id, o.next)
                guide((*op, "goto"), s.id, o.goto)
                if o.next is None:
                    self.c.add(
                        doc,
                        op,
                        f'lựa chọn "{o.id}" của bước "{s.id}" không dẫn tới đâu (ngõ cụt).',
                        "Hãy thêm next: <mã bước> (với goto, next là bước quay về sau hướng dẫn).",
                    )
                folded = " ".join(o.label.lower().split())
                if folded in labels:
                    self.c.add(
                        doc,
                        (*op, "label"),
                        f'hai lựa chọn trong bước "{s.id}" có cùng chữ "{o.label}".',
                        "Người dân sẽ không phân biệt được; hãy đổi chữ một lựa chọn.",
                    )
                labels[folded] = j
            if s.kind == "choice" and not s.options:
                self.c.add(doc, p, f'bước "{s.id}" là câu hỏi nhưng không có lựa chọn nào.', "Hãy thêm options.")
            for j, it in enumerate(s.items):
                for cond in it.when:
                    cp = (*p, "items", j, "when", cond.step)
                    ref = flow.by_id.get(cond.step)
                    if ref is None:
                        self.c.add(
                            doc,
                            cp,
                            f'điều kiện when nhắc tới bước "{cond.step}" không có trong tệp.',
                            did_you_mean(cond.step, ids) or "Hãy ghi mã một bước câu hỏi.",
                        )
                        continue
                    known = {o.id for o in ref.options}
                    for ans in sorted(cond.answers - known):
                        self.c.add(
                            doc,
                            cp,
                            f'bước "{cond.step}" không có lựa chọn "{ans}".',
                            did_you_mean(ans, known) or "Các lựa chọn: " + ", ".join(sorted(known)) + ".",
                        )
            for j, cid in enumerate(s.contacts):
                if cid not in contacts:
                    self.c.add(
                        doc,
                        (*p, "contacts", j),
                        f'liên hệ "{cid}" không có trong mục contacts của procedures.yaml.',
                        did_you_mean(cid, contacts) or "Hãy khai báo liên hệ trong procedures.yaml.",
                    )
            self._check_text(doc, (*p, "text"), s, proc)
        self._report_broken(doc, step_paths, flow, broken)

    def _check_links_in_text(self, doc: _Doc, path: Path_, text: str) -> None:
        """Web addresses written inside a text must be https and official, like the links fields.

        A bare name like "dichvucong-gov.vn.com" counts too: Zalo and Telegram turn it into a link.
        """
        self.c.check_links_in_text(doc, path, text)

    def _check_words(self, doc: _Doc, path: Path_, text: str, voice: bool) -> None:
        """Free text a citizen reads: no facts typed in, no editors' notes, the bot calling itself "tôi".

        ``voice``: the bot speaks (a step's text); labels are the citizen's words and may say "mình".
        """
        bare = PLACEHOLDER_RE.sub(" ", text)
        for m in _FACT_LIKE.finditer(bare):
            self.c.add(
                doc,
                path,
                f'"{m.group(0).strip()}" là số tiền, thời hạn, ngày tháng hay số điện thoại gõ thẳng vào kịch bản.',
                "Những điều này phải lấy từ danh mục, có nguồn và ngày kiểm tra: lệ phí dùng {fee}, thời gian "
                "giải quyết {time}, số điện thoại {phone:ma-lien-he}; điều khác ghi vào facts của thủ tục "
                "trong procedures.yaml rồi dùng {fact:ma-thong-tin}.",
                "warning",
            )
            break
        self._check_voice(doc, path, text, voice)

    def _check_catalogue_words(self, doc: _Doc, path: Path_, text: str) -> None:
        """Catalogue sentences citizens read (fee notes): the bot's voice, no editors' notes; facts may be stated."""
        self._check_voice(doc, path, text, voice=True)

    def _check_voice(self, doc: _Doc, path: Path_, text: str, voice: bool) -> None:
        """No note for editors in citizen text; in the bot's own words (``voice``), the bot says "tôi"."""
        checks = [(_EDITOR_NOTE, "là ghi chú cho cán bộ, không phải lời cho người dân.", _NOTE_HINT)]
        if voice:
            checks.append((_SELF_REFERENCE, _SELF_MESSAGE, _SELF_HINT))
        for pattern, message, hint in checks:
            found = pattern.search(text)
            if found:
                self.c.add(doc, path, f'"{found.group(0)}" {message}', hint, "warning")

    def _check_labels(self, doc: _Doc, path: Path_, step: Step) -> None:
        """Buttons read whole on a phone, in plain words."""
        for j, o in enumerate(step.options):
            lp = (*path[:-1], "options", j, "label")
            self._check_words(doc, lp, o.label, voice=False)
            if _LEGAL_REF.search(o.label):
                self.c.add(
                    doc,
                    lp,
                    f'nút "{o.label}" có tên văn bản luật.',
                    "Viết trường hợp bằng lời thường (ví dụ: Đủ 25, 40 hoặc 60 tuổi); căn cứ để ở lời dẫn hoặc note.",
                    "warning",
                )
            if len(o.label) > OPTION_LABEL_CHARS:
                self.c.add(
                    doc,
                    lp,
                    f'nút "{o.label}" dài {len(o.label)} ký tự, điện thoại sẽ cắt bớt (tối đa {OPTION_LABEL_CHARS}).',
                    "Viết ngắn lại; giải thích thêm ở nội dung bước.",
                    "warning",
                )
        for j, it in enumerate(step.items):
            ip = (*path[:-1], "items", j)
            self._check_words(doc, (*ip, "text"), it.text, voice=False)
            shown = it.label or re.split(r"[(:;,.{]", it.text, maxsplit=1)[0].strip()
            if len(shown) > CHECK_LABEL_CHARS:
                self.c.add(
                    doc,
                    (*ip, "label") if it.label else (*ip, "text"),
                    f'nút đánh dấu "{shown}" dài {len(shown)} ký tự, sẽ bị cắt giữa chừng (tối đa {CHECK_LABEL_CHARS}).',
                    "Thêm label: ngắn gọn cho giấy tờ này (nội dung đầy đủ vẫn hiện ở danh sách).",
                    "warning",
                )

    def _check_text(self, doc: _Doc, path: Path_, step: Step, proc: Procedure) -> None:
        text = step.text
        self._check_links_in_text(doc, path, text)
        self._check_words(doc, path, text, voice=True)
        self._check_labels(doc, path, step)
        for i, b in enumerate(step.bring):
            self._check_words(doc, (*path[:-1], "bring", i), b, voice=False)
        for i, item in enumerate(step.items):
            self._check_links_in_text(doc, (*path[:-1], "items", i, "text"), item.text)
        if len(text) > STRICTEST_TEXT_LIMIT:
            self.c.add(
                doc,
                path,
                f"nội dung bước dài {len(text)} ký tự, quá {STRICTEST_TEXT_LIMIT} ký tự Zalo cho phép.",
                "Hãy tách thành nhiều bước ngắn, mỗi bước một ý.",
            )
        self._check_placeholders(doc, path, text, proc)
        for j, o in enumerate(step.options):
            self._check_placeholders(doc, (*path[:-1], "options", j, "label"), o.label, proc)
        for j, it in enumerate(step.items):
            self._check_placeholders(doc, (*path[:-1], "items", j, "text"), it.text, proc)
        for j, b in enumerate(step.bring):
            self._check_placeholders(doc, (*path[:-1], "bring", j), b, proc)

    def _check_placeholders(self, doc: _Doc, path: Path_, text: str, proc: Procedure) -> None:
        """Every {placeholder} names something the catalogue has for this procedure."""
        available = {
            "name": True,
            "code": proc.code is not None,
            "agency": proc.agency is not None,
            "fee": proc.id in self._declared_fees,
            "time": proc.processing_time is not None,
            "url": proc.url is not None,
            "hotline": True,
        }
        stray = PLACEHOLDER_RE.sub("", text.replace("{{", "").replace("}}", ""))
        if "{" in stray or "}" in stray:
            self.c.add(
                doc,
                path,
                "có dấu ngoặc nhọn { hoặc } không thành chỗ điền: người dân sẽ thấy nguyên dấu đó.",
                "Chỗ điền viết liền, không dấu cách, đóng mở đủ: {fee}, {time}, {agency}, {fact:ma}. "
                "Muốn in chính dấu ngoặc nhọn thì viết hai lần: {{ hoặc }}.",
            )
        for m in PLACEHOLDER_RE.finditer(text):
            name, _, key = m.group(1).partition(":")
            if name == "fact" and key:
                if key not in proc.facts and key not in self._global_facts:
                    known = [*proc.facts, *self._global_facts]
                    self.c.add(
                        doc,
                        path,
                        f'thông tin "{{fact:{key}}}" không có trong facts của thủ tục "{proc.id}".',
                        did_you_mean(key, known)
                        or "Hãy thêm thông tin này (value, grade, source, as_of) vào facts của thủ tục trong "
                        "procedures.yaml."
                        + (" Các thông tin đang có: " + ", ".join(known) + "." if known else ""),
                    )
                continue
            if name == "fee" and key:
                cases = sorted({f.id for f in proc.fees if f.id})
                if key not in cases:
                    self.c.add(
                        doc,
                        path,
                        f'lệ phí "{{fee:{key}}}" không có: thủ tục "{proc.id}" không có dòng lệ phí nào id: {key}.',
                        did_you_mean(key, cases)
                        or ("Các mã có: " + ", ".join(cases) + "." if cases else "Hãy ghi id cho dòng lệ phí."),
                    )
                continue
            if name == "phone" and key:
                contact = self._contacts_seen.get(key)
                if contact is None or not contact.phone:
                    phones = [c.id for c in self._contacts_seen.values() if c.phone]
                    self.c.add(
                        doc,
                        path,
                        f'liên hệ "{key}" không có hoặc không có số điện thoại.',
                        did_you_mean(key, phones) or "Các liên hệ có số: " + ", ".join(phones) + ".",
                    )
                continue
            name = m.group(1)
            if name not in PLACEHOLDERS or name in ("fact", "phone"):
                self.c.add(
                    doc,
                    path,
                    f'chỗ điền "{{{name}}}" không có.',
                    did_you_mean(name, PLACEHOLDERS)
                    or "Các chỗ điền: " + ", ".join("{" + k + "}" for k in PLACEHOLDERS) + ".",
                )
            elif not available[name]:
                self.c.add(
                    doc,
                    path,
                    f'chỗ điền "{{{name}}}" cần mục {_FIELD_OF[name]} của thủ tục "{proc.id}" nhưng mục đó chưa có.',
                    f"Hãy thêm {_FIELD_OF[name]} vào thủ tục trong procedures.yaml hoặc bỏ chỗ điền này.",
                )

    def _report_broken(
        self,
        doc: _Doc,
        step_paths: Mapping[str, Path_],
        flow: Flow,
        broken: list[tuple[Path_, str, str, str | None]],
    ) -> None:
        """One error per broken ``next``; steps cut off only because of it are counted there, not warned about."""
        reachable = _reachable(flow, {})
        repaired = _reachable(flow, {name: meant for _, _, name, meant in broken if meant})
        cut_off = repaired - reachable
        for path, src, name, meant in broken:
            hint = f'Có phải ý bạn là "{meant}"?' if meant else "Hãy ghi mã một bước có trong tệp này."
            behind = _reachable(flow, {name: meant}) - reachable if meant else set()
            if behind:
                hint += f" Vì lỗi này, {len(behind)} bước phía sau đang không tới được."
            self.c.add(doc, path, f'bước "{src}" trỏ tới "{name}" nhưng không có bước nào tên như vậy.', hint)
        for s in flow.steps:
            if s.id not in reachable and s.id not in cut_off:
                self.c.add(
                    doc,
                    step_paths[s.id],
                    f'không có đường nào dẫn tới bước "{s.id}".',
                    "Hãy trỏ next của một bước khác tới bước này, hoặc xoá bước.",
                    "warning",
                )


def _reachable(flow: Flow, repairs: Mapping[str, str]) -> set[str]:
    """Steps reachable from the start, reading each broken name in ``repairs`` as the step it was meant to be."""
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        name = todo.pop()
        sid = repairs.get(name, name)
        step = flow.by_id.get(sid)
        if step is None or sid in seen:
            continue
        seen.add(sid)
        todo += [x for x in (step.next, step.missing_next, step.failed_next) if x]
        todo += [o.next for o in step.options if o.next]
    return seen


def renamed(name: str, orphans: Iterable[str], ids: Iterable[str]) -> str | None:
    """The step a broken reference most likely meant: a step nothing points to (renamed) first, else the closest."""
    lonely = list(orphans)
    if len(lonely) == 1:
        return lonely[0]  # one step nothing leads to, one name that leads nowhere: it was renamed
    found = process.extractOne(name, lonely, scorer=fuzz.ratio, score_cutoff=40)
    if found:
        return str(found[0])
    found = process.extractOne(name, list(ids), scorer=fuzz.ratio, score_cutoff=60)
    return str(found[0]) if found else None


# Amounts, durations, dates, percentages and phone numbers typed into a flow (they belong in the catalogue).
_FACT_LIKE: Final = re.compile(
    r"\d[\d.,]*\s*(?:đồng|đ|nghìn|ngàn|triệu|vnđ|vnd|k|%)(?!\w)"  # 70.000 đồng, 50k, 50%
    r"|(?<![\w/.,])\d{1,3}(?:\.\d{3})+(?![\w/]|[.,]\d)"  # 70.000 (thousands: an amount)
    r"|\d+\s*(?:ngày|tuần|tháng|năm|giờ|hôm|bữa)(?!\w)"  # 60 ngày, 15 hôm
    r"|(?<![\w/])\d{1,2}/(?:\d{1,2}/)?\d{4}(?![\w/])"  # 1/7/2026, 7/2025
    r"|(?<![\w/.,])(?!(?:19|20)\d\d(?![ .]?\d))\d{3,}(?:[ .]\d{3,4})*(?![\w/]|[.,]\d)",  # 113, 0912345678
    re.IGNORECASE,
)
# A web address written without https:// ("dichvucong-gov.vn.com"): chat apps make it a link too.
_BARE_DOMAIN: Final = re.compile(
    r"(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:vn|com|net|org|top|info|xyz|online|site|app|me|io|co|cc|shop|store|link|click|live|asia|biz)(?![\w-])",
    re.IGNORECASE,
)
# Words of a note to editors, not to citizens.
_EDITOR_NOTE: Final = re.compile(
    r"\[(?:S|BG|\?|S-3p\*?)\]|procedures-facts|tài liệu tham khảo|bên thứ ba|tên gọi theo|"
    r"chưa được kiểm tra|\bcột\s+[\"“]|\bTODO\b|\bFIXME\b",
    re.IGNORECASE,
)
# The bot speaking of itself other than as "tôi".
_SELF_REFERENCE: Final = re.compile(r"(?<![\w-])(?:bot|mình)(?![\w-])", re.IGNORECASE)
_NOTE_HINT: Final = "Chuyển ghi chú sang trường note: (người dân không thấy)."
_SELF_MESSAGE: Final = 'là cách bot tự xưng: mọi lời của bot xưng "tôi" và gọi người dân là "bạn".'
_SELF_HINT: Final = 'Hãy viết lại câu với "tôi" (hoặc "bạn" nếu câu nói về người dân).'
_LEGAL_REF: Final = re.compile(r"(?<!\w)(?:điều|khoản|luật|nghị định|thông tư|tt|nđ)\s+\d", re.IGNORECASE)


_FIELD_OF: Final = {
    "code": "code",
    "agency": "agency",
    "fee": "fees hoặc fee_note",
    "time": "processing_time",
    "url": "url",
}

__all__ = ["LoadResult", "Problem", "content_version", "load_content", "schema"]
