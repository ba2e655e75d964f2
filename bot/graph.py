"""Draw a flow as a diagram (Mermaid or Graphviz DOT): step kinds, branches, guide jumps, ends, loops.

Officials paste the Mermaid text into a Markdown file (GitHub, VS Code) or an
editor such as mermaid.live, or render the DOT text with Graphviz. Steps no
path reaches are drawn dashed in red, so mistakes stand out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from bot import texts
from bot.schema import Catalogue, Flow, Step

Format = Literal["mermaid", "dot"]
LABEL_CHARS: Final = 48

# kind -> (icon, Mermaid shape open/close, DOT shape)
KINDS: Final[dict[str, tuple[str, str, str, str]]] = {
    "message": ("💬", '["', '"]', "box"),
    "choice": ("❓", '{"', '"}', "diamond"),
    "checklist": ("📋", '[/"', '"/]', "parallelogram"),
    "payment": ("💳", '[["', '"]]', "box3d"),
    "handoff": ("☎", '>"', '"]', "cds"),
    "end": ("🏁", '(["', '"])', "doubleoctagon"),
}
# Graphviz fonts seldom have emoji: DOT labels name the kind in words instead.
KIND_WORDS: Final = {
    "message": "tin nhắn",
    "choice": "câu hỏi",
    "checklist": "giấy tờ",
    "payment": "thanh toán",
    "handoff": "gặp cán bộ",
    "end": "kết thúc",
}
CLASSES: Final = {
    "ketthuc": "fill:#e8f5e9,stroke:#2e7d32",
    "canbo": "fill:#fff3e0,stroke:#ef6c00",
    "huongdan": "fill:#e3f2fd,stroke:#1565c0",
    "khongtoi": "fill:#ffebee,stroke:#c62828,stroke-dasharray:5 5",
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    style: Literal["normal", "alternative", "return"] = "normal"


@dataclass(frozen=True)
class GuideNode:
    key: str
    guide: str
    name: str


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= LABEL_CHARS else first[: LABEL_CHARS - 1].rstrip() + "…"


def reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        sid = todo.pop()
        if sid in seen or flow.step(sid) is None:
            continue
        seen.add(sid)
        step = flow.step(sid)
        assert step is not None
        todo += [t for t in _targets(step) if t]
    return seen


def _targets(step: Step) -> Iterator[str]:
    for t in (step.next, step.missing_next, step.failed_next):
        if t:
            yield t
    for o in step.options:
        if o.next:
            yield o.next


class _Graph:
    """The flow as nodes and edges, independent of the output format."""

    def __init__(self, catalogue: Catalogue, flow: Flow) -> None:
        self.cat = catalogue
        self.flow = flow
        self.ids = {s.id: f"s{i}" for i, s in enumerate(flow.steps)}
        self.guides: list[GuideNode] = []
        self.edges: list[Edge] = []
        self.reached = reachable(flow)
        proc = catalogue.procedure(flow.procedure_id)
        self.is_guide = bool(proc and proc.is_guide)
        for step in flow.steps:
            self._step_edges(step)

    def guide_name(self, guide_id: str) -> str:
        proc = self.cat.procedure(guide_id)
        return proc.name if proc else guide_id

    def jump(self, source: str, guide: str, label: str, back_to: str) -> None:
        node = GuideNode(f"g{len(self.guides)}", guide, self.guide_name(guide))
        self.guides.append(node)
        self.edges.append(Edge(source, node.key, label))
        self.edges.append(Edge(node.key, self.ids[back_to], "quay về", "return"))

    def _step_edges(self, step: Step) -> None:
        me = self.ids[step.id]
        if step.kind == "choice":
            for o in step.options:
                if o.goto and o.next:
                    self.jump(me, o.goto, o.label, o.next)
                elif o.next:
                    self.edges.append(Edge(me, self.ids[o.next], o.label))
            return
        if step.kind == "checklist":
            if step.next:
                self.edges.append(Edge(me, self.ids[step.next], texts.CHECKLIST_DONE))
            if step.missing_next:
                self.edges.append(Edge(me, self.ids[step.missing_next], texts.CHECKLIST_MISSING, "alternative"))
            return
        if step.kind == "payment":
            if step.guide:
                self.jump(me, step.guide, texts.PAY_GUIDE, step.id)
            if step.next:
                self.edges.append(Edge(me, self.ids[step.next], texts.PAY_DONE))
            if step.failed_next:
                self.edges.append(Edge(me, self.ids[step.failed_next], texts.PAY_FAILED, "alternative"))
            return
        if step.kind == "message" and step.goto and step.next:
            self.jump(me, step.goto, texts.CONTINUE, step.next)
            return
        if step.next:
            self.edges.append(Edge(me, self.ids[step.next], texts.CONTINUE))

    def node_class(self, step: Step) -> str | None:
        if step.id not in self.reached:
            return "khongtoi"
        if step.kind == "end":
            return "ketthuc"
        if step.kind == "handoff":
            return "canbo"
        return None

    def end_label(self) -> str:
        return "Quay về thủ tục đang làm" if self.is_guide else "Hết thủ tục, về menu"


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def mermaid(catalogue: Catalogue, flow: Flow) -> str:
    g = _Graph(catalogue, flow)
    proc = catalogue.procedure(flow.procedure_id)
    title = proc.name if proc else flow.procedure_id
    lines = [
        "flowchart TD",
        f"  %% {title} ({flow.procedure_id}), nội dung phiên bản {catalogue.version}",
        '  batdau(("Bắt đầu"))',
        f"  batdau --> {g.ids[flow.start]}",
    ]
    for step in flow.steps:
        icon, open_, close, _ = KINDS[step.kind]
        label = f"{step.id}<br/>{icon} {_mermaid_text(_short(step.text))}"
        lines.append(f"  {g.ids[step.id]}{open_}{label}{close}")
    for node in g.guides:
        lines.append(f'  {node.key}[["↪ Hướng dẫn: {_mermaid_text(node.name)}<br/>({node.guide})"]]')
    ends = [s for s in flow.steps if s.kind == "end"]
    if ends:
        lines.append(f'  hetthutuc(("{g.end_label()}"))')
    arrows = {"normal": "-->", "alternative": "-.->", "return": "==>"}
    for e in g.edges:
        lines.append(f'  {e.source} {arrows[e.style]}|"{_mermaid_text(e.label)}"| {e.target}')
    for s in ends:
        lines.append(f"  {g.ids[s.id]} --> hetthutuc")
    for name, style in CLASSES.items():
        lines.append(f"  classDef {name} {style}")
    by_class: dict[str, list[str]] = {}
    for step in flow.steps:
        cls = g.node_class(step)
        if cls:
            by_class.setdefault(cls, []).append(g.ids[step.id])
    if g.guides:
        by_class.setdefault("huongdan", []).extend(n.key for n in g.guides)
    for cls, nodes in by_class.items():
        lines.append(f"  class {','.join(nodes)} {cls}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(catalogue: Catalogue, flow: Flow) -> str:
    g = _Graph(catalogue, flow)
    proc = catalogue.procedure(flow.procedure_id)
    title = proc.name if proc else flow.procedure_id
    fills = {"ketthuc": "#e8f5e9", "canbo": "#fff3e0", "huongdan": "#e3f2fd", "khongtoi": "#ffebee"}
    lines = [
        f'digraph "{_dot_text(flow.procedure_id)}" {{',
        f'  label="{_dot_text(title)} ({_dot_text(flow.procedure_id)}), phiên bản {catalogue.version}";',
        '  labelloc="t";',
        '  node [fontname="Arial", style="filled", fillcolor="white"];',
        '  edge [fontname="Arial", fontsize=10];',
        '  batdau [label="Bắt đầu", shape=circle];',
        f"  batdau -> {g.ids[flow.start]};",
    ]
    for step in flow.steps:
        shape = KINDS[step.kind][3]
        cls = g.node_class(step)
        extra = f', fillcolor="{fills[cls]}"' if cls else ""
        if cls == "khongtoi":
            extra += ', style="filled,dashed", color="#c62828"'
        label = _dot_text(f"{step.id} ({KIND_WORDS[step.kind]})") + "\\n" + _dot_text(_short(step.text))
        lines.append(f'  {g.ids[step.id]} [label="{label}", shape={shape}{extra}];')
    for node in g.guides:
        label = _dot_text(f"Hướng dẫn: {node.name}") + "\\n" + _dot_text(f"({node.guide})")
        lines.append(f'  {node.key} [label="{label}", shape=component, fillcolor="{fills["huongdan"]}"];')
    ends = [s for s in flow.steps if s.kind == "end"]
    if ends:
        lines.append(f'  hetthutuc [label="{g.end_label()}", shape=box, style="rounded,filled"];')
    styles = {"normal": "", "alternative": ", style=dashed", "return": ', style=bold, color="#1565c0"'}
    for e in g.edges:
        lines.append(f'  {e.source} -> {e.target} [label="{_dot_text(e.label)}"{styles[e.style]}];')
    for s in ends:
        lines.append(f"  {g.ids[s.id]} -> hetthutuc;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(catalogue: Catalogue, flow: Flow, fmt: Format) -> str:
    return mermaid(catalogue, flow) if fmt == "mermaid" else dot(catalogue, flow)
