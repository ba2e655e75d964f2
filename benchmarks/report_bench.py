"""Report benchmark: `report` aggregates over a synthetic event log of N events (default 1,000,000).

    .venv/bin/python benchmarks/report_bench.py [--events 1000000] [--db /tmp/report-bench.db]

Citizens start random procedures of the shipped catalogue and walk their flows step by step,
asking for help now and then; most finish, some cancel, the rest abandon at a random step;
a share of questions go unmatched. Prints the time to generate and to aggregate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import report  # noqa: E402
from bot.content import load  # noqa: E402
from bot.stages import stage_index  # noqa: E402
from bot.storage.analytics import ReportScope  # noqa: E402
from bot.storage.sqlite import SqliteStore  # noqa: E402


async def generate(store: SqliteStore, events: int, seed: int = 11) -> int:
    rng = random.Random(seed)
    cat = load(ROOT).catalogue
    flows = [(p.id, [s.id for s in cat.flow(p.id).steps]) for p in cat.procedures if cat.flow(p.id)]  # type: ignore[union-attr]
    rows: list[tuple[object, ...]] = []
    t = time.time() - 90 * 86400
    user = 0
    while len(rows) < events:
        user += 1
        key = f"u{user:08d}"
        pid, steps = rng.choice(flows)
        t += rng.random() * 30
        rows.append((t, key, "telegram", pid, "v", steps[0], "flow-started", None, steps[0], "match", "{}"))
        rows.append((t, key, "telegram", pid, "v", steps[0], "step-entered", None, steps[0], "match", "{}"))
        depth = rng.randint(1, len(steps))
        for i in range(1, depth):
            t += rng.random() * 60
            rows.append(
                (t, key, "telegram", pid, "v", steps[i], "step-entered", steps[i - 1], steps[i], "choice", "{}")
            )
            if rng.random() < 0.05:
                rows.append((t, key, "telegram", pid, "v", steps[i], "help", None, None, None, "{}"))
        end = rng.random()
        if depth == len(steps) or end < 0.5:
            detail = json.dumps({"seconds": round(rng.random() * 3600, 1)})
            rows.append((t, key, "telegram", pid, "v", steps[depth - 1], "flow-completed", None, None, None, detail))
        elif end < 0.65:
            rows.append((t, key, "telegram", pid, "v", steps[depth - 1], "flow-cancelled", None, None, None, "{}"))
        if rng.random() < 0.1:
            text = json.dumps({"text": rng.choice(["giay phep lai tau", "vay von", "tien dien", "hoc phi"])})
            rows.append((t, key, "telegram", None, "v", None, "match-none", None, None, None, text))
        if rng.random() < 0.1:  # a question answered with choices (unresolved when nothing starts after it)
            text = json.dumps({"text": rng.choice(["lam the", "giay to nha"]), "candidates": [{"id": pid}]})
            rows.append((t, key, "telegram", None, "v", None, "match-ambiguous", None, None, None, text))
    rows = rows[:events]
    await store.conn.executemany(
        "INSERT INTO events (ts, user_key, channel, procedure_id, content_version, step_id, type, from_step, "
        "to_step, via, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    await store.conn.commit()
    return len(rows)


def fresh(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/report-bench.db"))
    args = parser.parse_args()
    fresh(args.db)
    store = await SqliteStore.open(args.db)
    try:
        t0 = time.perf_counter()
        n = await generate(store, args.events)
        catalogue = load(ROOT).catalogue
        t1 = time.perf_counter()
        stages = stage_index(catalogue)
        data = await store.analytics(ReportScope(idle_before=time.time() - 86400, stages=stages))
        built = report.build(catalogue, data, {})
        for render in (
            report.to_table,
            report.to_html,
            lambda r: report.to_csv(r, "steps"),
            lambda r: report.to_csv(r, "stages"),
        ):
            render(built)
        t2 = time.perf_counter()
        # --compare-versions: the same log read twice, once per version (here both halves are "v")
        pair = [
            await store.analytics(ReportScope(idle_before=time.time() - 86400, version="v", stages=stages))
            for _ in range(2)
        ]
        both = report.compare(report.build(catalogue, pair[0], {}), report.build(catalogue, pair[1], {}), "v", "v")
        report.compare_table(both)
        t3 = time.perf_counter()
    finally:
        await store.close()
    total = sum(p["started"] for p in built["procedures"])
    print(
        f"{n:,} events generated in {t1 - t0:.1f} s; report over them, all formats, in {t2 - t1:.2f} s "
        f"({total:,} flows started); --compare-versions in {t3 - t2:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
