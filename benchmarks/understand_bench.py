"""How long the dialogue reader takes per message (issue 13 target: at most 1 ms at p99).

    .venv/bin/python benchmarks/understand_bench.py [FILE.tsv ...]

Reads every utterance of the in-flow files (default: tests/data/eval/inflow-dev.tsv) at its
step, the way the engine does (the step's choices, its forward choice, the procedure's
names), many times over, and prints p50, p99 and the worst time of ``understand.read``
alone, of the likeness model the engine asks when nothing else understood a message at a choice
step (``resemble``; its build, once per content version, timed apart), and of a whole ``engine.step``
for the same messages for comparison.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import engine, inflow_eval  # noqa: E402
from bot.content import load  # noqa: E402
from bot.engine import EngineConfig, Inbound, _Turn  # noqa: E402
from bot.runner import vietnam_now  # noqa: E402
from bot.understand import read, typed_with_marks  # noqa: E402


def main() -> None:
    files = [Path(a) for a in sys.argv[1:]] or [ROOT / "tests/data/eval/inflow-dev.tsv"]
    content = load(ROOT)
    now = vietnam_now()
    cases = []
    likes = []
    for f in files:
        for row in inflow_eval.read_tsv(f):
            session = inflow_eval.start_session(content, row.procedure, row.step, row.context, now)
            turn = _Turn(content, session, Inbound("b", "b", text=row.utterance), now, EngineConfig())
            cases.append((row.utterance, turn.options(turn.current_choices()), session))
            step_ = turn.current_step()
            if step_ is not None and step_.kind == "choice":
                likes.append((row.utterance, step_.options))
    start = time.perf_counter()
    content.warm()
    built = time.perf_counter() - start
    # The first reading of each step's labels and ways of saying fills the vocabulary's caches (once per
    # content version in a running bot); it is timed apart.
    cold: list[float] = []
    for text, options, _session in cases:
        start = time.perf_counter()
        read(text, options, content.vocabulary, content.normalize)
        cold.append(time.perf_counter() - start)
    reads: list[float] = []
    steps: list[float] = []
    for _ in range(20):
        for text, options, session in cases:
            start = time.perf_counter()
            read(text, options, content.vocabulary, content.normalize)
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            engine.step(content, session, Inbound("b", "b", text=text), now)
            steps.append(time.perf_counter() - start)

    def show(name: str, xs: list[float]) -> None:
        xs = sorted(xs)
        p99 = xs[int(len(xs) * 0.99)]
        print(
            f"{name:24} n={len(xs):6}  p50 {1000 * statistics.median(xs):.3f} ms  "
            f"p99 {1000 * p99:.3f} ms  max {1000 * xs[-1]:.3f} ms"
        )

    resembling: list[float] = []
    for _ in range(20):
        for text, options in likes:
            start = time.perf_counter()
            marked = typed_with_marks(text, content.normalize)
            choices = [(o.id, [content.phrase(t, marked) for t in (o.label, *o.says)]) for o in options]
            content.resemblance(marked).choice(content.meaning(text, marked), choices, content.vocabulary.negative)
            resembling.append(time.perf_counter() - start)

    print(f"{len(cases)} messages at their steps, 20 rounds")
    print(f"likeness models built in {built:.2f} s (once per content version, before serving)")
    show("resemble (choice steps)", resembling)
    show("understand.read, cold", cold)
    show("understand.read", reads)
    show("engine.step (whole turn)", steps)


if __name__ == "__main__":
    main()
