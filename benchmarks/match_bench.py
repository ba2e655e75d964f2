"""Matcher benchmark: quality side by side with two baselines on dev.tsv, and speed as the catalogue grows.

Run from the project root (the BM25 baseline needs the ``bench`` extra):

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/match_bench.py [--dev tests/data/eval/dev.tsv]

Quality (one run, same questions, same catalogue):
  * dvc-bot      - this matcher with the thresholds in procedures.yaml;
  * naive        - rapidfuzz ``process.extractOne`` with its default scorer (WRatio) over the raw
                   procedure names and aliases, answering when the score is >= 90;
  * bm25 library - ``rank_bm25.BM25Okapi`` over the same folded, abbreviation-expanded text as
                   dvc-bot, one document per procedure (name + aliases + examples), syllables +
                   syllable pairs; ranking only (no out-of-scope decision of its own).
Speed: index build time and per-query latency (p50/p99, one thread) with the real catalogue
padded to 1,000 and 5,000 procedures with synthetic ones made from the catalogue's own words.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import process  # noqa: E402

from bot.content import load  # noqa: E402
from bot.match_eval import Labelled, evaluate, read_tsv  # noqa: E402
from bot.matcher import Matcher  # noqa: E402
from bot.normalize import normalize  # noqa: E402
from bot.schema import Catalogue, Procedure  # noqa: E402

NAIVE_CUTOFF = 90.0


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:5.1f}" if b else "    —"


def naive(catalogue: Catalogue, items: list[Labelled]) -> dict[str, str]:
    choices: list[str] = []
    owner: list[str] = []
    for p in catalogue.procedures:
        for text in (p.name, *p.aliases):
            choices.append(text)
            owner.append(p.id)
    top1 = top3 = conf_right = wrong = rejected = 0
    n_in = sum(i.in_scope for i in items)
    for it in items:
        found = process.extract(it.query, choices, limit=30)  # default scorer: WRatio
        ranked: list[str] = []
        for _, _, idx in found:
            if owner[idx] not in ranked:
                ranked.append(owner[idx])
        best = found[0][1] if found else 0.0
        answered = best >= NAIVE_CUTOFF
        if it.in_scope:
            top1 += bool(ranked) and ranked[0] in it.expected
            top3 += any(r in it.expected for r in ranked[:3])
            if answered:
                conf_right += ranked[0] in it.expected
                wrong += ranked[0] not in it.expected
        else:
            rejected += not answered
            wrong += answered
    n_oos = len(items) - n_in
    return {
        "top1": pct(top1, n_in),
        "top3": pct(top3, n_in),
        "confident_correct": pct(conf_right, n_in),
        "confidently_wrong": pct(wrong, len(items)),
        "oos_rejected": pct(rejected, n_oos),
    }


def bm25_library(catalogue: Catalogue, items: list[Labelled]) -> dict[str, str]:
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        return {"top1": "n/a (pip install -e '.[bench]')"}
    table = catalogue.abbreviations

    def terms(text: str) -> list[str]:
        words = normalize(text, table).split()
        return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]

    ids = [p.id for p in catalogue.procedures]
    corpus = [terms(" ".join((p.name, *p.aliases, *p.examples))) for p in catalogue.procedures]
    bm25 = BM25Okapi(corpus)
    top1 = top3 = 0
    n_in = sum(i.in_scope for i in items)
    for it in items:
        if not it.in_scope:
            continue
        scores = bm25.get_scores(terms(it.query))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])
        top1 += ids[order[0]] in it.expected
        top3 += any(ids[i] in it.expected for i in order[:3])
    return {"top1": pct(top1, n_in), "top3": pct(top3, n_in)}


def padded(catalogue: Catalogue, size: int, seed: int = 7) -> Catalogue:
    """The real catalogue plus synthetic procedures built from its own words, up to ``size``."""
    rng = random.Random(seed)
    words = sorted({w for p in catalogue.procedures for t in (p.name, *p.aliases, *p.examples) for w in t.split()})
    real = list(catalogue.procedures)
    template = real[0]
    extra: list[Procedure] = []
    for n in range(size - len(real)):

        def phrase(lo: int, hi: int) -> str:
            return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))

        extra.append(
            replace(
                template,
                id=f"tong-hop-{n}",
                name=phrase(3, 8),
                aliases=tuple(phrase(2, 6) for _ in range(10)),
                examples=tuple(phrase(8, 20) for _ in range(8)),
            )
        )
    return replace(catalogue, procedures=tuple(real + extra))


def speed(catalogue: Catalogue, queries: list[str]) -> tuple[float, float, float, float]:
    gc.collect()
    t0 = time.perf_counter()
    matcher = Matcher(catalogue)
    build = time.perf_counter() - t0
    lat = []
    for q in queries:
        t = time.perf_counter()
        matcher.match(q)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return build, statistics.median(lat), lat[min(len(lat) - 1, int(0.99 * len(lat)))], rss_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=ROOT / "tests" / "data" / "eval" / "dev.tsv")
    parser.add_argument("--sizes", default="35,1000,5000")
    args = parser.parse_args()
    content = load(ROOT)
    cat = content.catalogue
    items = read_tsv(args.dev)

    ours = evaluate(content.matcher, items).as_dict()["overall"]
    rows = {
        "dvc-bot": {
            k: f"{ours[k]:5.1f}" for k in ("top1", "top3", "confident_correct", "confidently_wrong", "oos_rejected")
        },
        f"naive WRatio>={NAIVE_CUTOFF:g}": naive(cat, items),
        "bm25 library": bm25_library(cat, items),
    }
    cols = ["top1", "top3", "confident_correct", "confidently_wrong", "oos_rejected"]
    print(f"Quality on {args.dev.name} ({len(items)} questions, {sum(i.in_scope for i in items)} in scope)")
    print(f"{'system':<22}" + "".join(f"{c:>19}" for c in cols))
    for name, r in rows.items():
        print(f"{name:<22}" + "".join(f"{r.get(c, '—'):>19}" for c in cols))

    print("\nSpeed (one thread): procedures, index build s, p50 ms, p99 ms, peak RSS MB")
    queries = [i.query for i in items]
    for size in (int(s) for s in args.sizes.split(",")):
        cat_n = cat if size <= len(cat.procedures) else padded(cat, size)
        build, p50, p99, rss = speed(cat_n, queries)
        print(f"{len(cat_n.procedures):>6} {build:10.3f} {p50:8.3f} {p99:8.3f} {rss:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
