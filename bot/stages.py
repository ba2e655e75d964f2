"""Where a step sits in its procedure, for the report: its order along the path, its stage, its title.

A step's stage is, in this order: the ``stage:`` it names; the stage whose ``steps:`` list its id
(flows share step ids such as ``dang-nhap`` or ``thanh-toan``); the stage whose ``kinds:`` list its
kind; the stage of the step that leads to it on the shortest path from the start; the first stage.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from typing import Final

from bot.schema import STEP_TITLE_CHARS, Catalogue, Flow, Stage, Step

_PLACEHOLDER: Final = re.compile(r"\{[^{}\n]{0,80}\}")
_SENTENCE_END: Final = re.compile(r"[.?!:](?:\s|$)")


def successors(step: Step) -> list[str]:
    """The steps a step leads to, in the order a citizen meets them (its buttons first)."""
    out = [o.next for o in step.options if o.next]
    out += [n for n in (step.next, step.missing_next, step.failed_next) if n]
    return list(dict.fromkeys(out))


def _walk(flow: Flow) -> tuple[list[Step], dict[str, str]]:
    """Steps breadth-first from the start (the rest after, in file order), and each one's parent."""
    seen = {flow.start}
    parent: dict[str, str] = {}
    order: list[Step] = []
    queue = deque([flow.start])
    while queue:
        step = flow.step(queue.popleft())
        if step is None:
            continue
        order.append(step)
        for nxt in successors(step):
            if nxt not in seen and flow.step(nxt) is not None:
                seen.add(nxt)
                parent[nxt] = step.id
                queue.append(nxt)
    order += [s for s in flow.steps if s.id not in seen]
    return order, parent


def path_order(flow: Flow) -> list[Step]:
    """The flow's steps in the order a citizen can first reach them, so a table reads like the path."""
    return _walk(flow)[0]


def stage_of(flow: Flow, stages: Sequence[Stage]) -> dict[str, int]:
    """Each step's stage, as an index into ``stages`` (empty when the catalogue has no stages)."""
    if not stages:
        return {}
    named = {st.id: i for i, st in enumerate(stages)}
    by_step = {sid: i for i, st in enumerate(stages) for sid in st.steps}
    by_kind = {kind: i for i, st in enumerate(stages) for kind in st.kinds}
    order, parent = _walk(flow)
    out: dict[str, int] = {}
    for step in order:
        if step.stage is not None and step.stage in named:
            out[step.id] = named[step.stage]
        elif step.id in by_step:
            out[step.id] = by_step[step.id]
        elif step.kind in by_kind:
            out[step.id] = by_kind[step.kind]
        else:
            out[step.id] = out.get(parent.get(step.id, ""), 0)
    return out


def stage_index(catalogue: Catalogue) -> dict[tuple[str, str], int]:
    """(procedure, step) -> its stage's position, over every flow (what the report's SQL side needs)."""
    return {
        (pid, sid): at for pid, flow in catalogue.flows.items() for sid, at in stage_of(flow, catalogue.stages).items()
    }


def title(step: Step, name: str = "") -> str:
    """The step's ``title:``, or the first sentence of its text cut to a few words (``{name}`` is the
    procedure's name; other placeholders are left out)."""
    if step.title:
        return step.title
    text = _PLACEHOLDER.sub("", step.text.replace("{name}", name)).strip()
    first = text.splitlines()[0].strip() if text else ""
    end = _SENTENCE_END.search(first)
    if end:
        first = first[: end.start()].strip()
    if not first:
        return step.id
    if len(first) <= STEP_TITLE_CHARS:
        return first
    cut = first[: STEP_TITLE_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;–- ")
    return cut + "…"
