"""Every function that runs regular expressions on citizens' text, timed on hostile inputs of 100 kB and 1 MB.

    .venv/bin/python benchmarks/regex_bench.py

Linear time means the 1 MB run takes about ten times the 100 kB run; a quadratic pattern
would take about a hundred times (the e-mail pattern before issue 12: 3.2 s for 30,000
characters). Prints, per function and input shape, both times and their ratio, and fails
(exit 1) if any 1 MB run takes more than 2 s or any ratio exceeds 25.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import engine  # noqa: E402
from bot.channels import console  # noqa: E402
from bot.content import load  # noqa: E402
from bot.engine import Inbound, Session  # noqa: E402
from bot.normalize import fold, normalize, repair_keystrokes  # noqa: E402
from bot.privacy import redact, redact_log_text, stored_text  # noqa: E402
from bot.runner import vietnam_now  # noqa: E402

SHAPES: dict[str, Callable[[int], str]] = {
    "one long word": lambda n: "x" * n,
    "vowels, no tone key": lambda n: "ab" * (n // 2),
    "a@a@a@": lambda n: "a@" * (n // 2),
    "x@ then a long domain": lambda n: "x@" + "y" * (n - 2),
    "long local parts": lambda n: ("a" * 70 + "@b") * (n // 72),
    "dotted": lambda n: "a." * (n // 2),
    "digits": lambda n: "0" * n,
    "digits and spaces": lambda n: "1 " * (n // 2),
    "short digit runs": lambda n: "12345a" * (n // 6),
    "words": lambda n: "lam can cuoc " * (n // 13),
    "webmail words": lambda n: "an gmail com " * (n // 13),
    "names introduced": lambda n: "tôi tên tôi tên " * (n // 16),
    "a long name": lambda n: "tên tôi là " + "a " * ((n - 11) // 2),
    "brackets": lambda n: "{[(" * (n // 3),
    "vietnamese": lambda n: "đăng ký tạm trú " * (n // 16),
}


def main() -> int:
    content = load(ROOT)
    table = content.catalogue.abbreviations if hasattr(content.catalogue, "abbreviations") else {}
    now = vietnam_now()

    def engine_step(text: str) -> object:
        return engine.step(content, Session(), Inbound("bench", "k", text=text), now)

    functions: dict[str, Callable[[str], object]] = {
        "privacy.redact": redact,
        "privacy.stored_text": lambda t: stored_text(t, fold),
        "privacy.redact_log_text": redact_log_text,
        "normalize.fold": fold,
        "normalize.normalize": lambda t: normalize(t, table),
        "normalize.repair_keystrokes": repair_keystrokes,
        "engine.step (whole turn)": engine_step,
    }
    worst = 0.0
    slowest = 0.0
    print(f"{'function':28} {'input':24} {'100 kB s':>9} {'1 MB s':>9} {'ratio':>6}")
    for name, fn in functions.items():
        for shape, make in SHAPES.items():
            times = []
            for size in (100_000, 1_000_000):
                text = make(size)
                start = time.perf_counter()
                fn(text)
                times.append(time.perf_counter() - start)
            ratio = times[1] / max(times[0], 1e-4)
            worst, slowest = max(worst, ratio if times[1] > 0.01 else 0.0), max(slowest, times[1])
            print(f"{name:28} {shape:24} {times[0]:9.4f} {times[1]:9.4f} {ratio:6.1f}")
    # The longest message the engine reads: matcher, typo repair and all, on every shape.
    at_limit = {shape: make(engine.MAX_MESSAGE_CHARS) for shape, make in SHAPES.items()}
    timings = []
    for shape, text in at_limit.items():
        start = time.perf_counter()
        engine_step(text)
        timings.append((time.perf_counter() - start, shape))
    t, shape = max(timings)
    print(f"engine.step on a {engine.MAX_MESSAGE_CHARS:,}-character message: slowest {1000 * t:.1f} ms ({shape})")
    slowest = max(slowest, t)
    # The console reads a line no further than its limit, whatever its length.
    import io

    start = time.perf_counter()
    console.read_bounded_line(io.StringIO("x" * 10_000_000 + "\n"))
    print(f"console.read_bounded_line, one 10 MB line: {time.perf_counter() - start:.3f} s")
    print(f"worst 1 MB / 100 kB ratio (runs over 10 ms): {worst:.1f}; slowest 1 MB run: {slowest:.2f} s")
    return 0 if worst <= 25 and slowest <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
