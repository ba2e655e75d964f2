"""Free text -> ranked procedures, with a confident / ambiguous / none outcome.

Scoring fuses a BM25 score over syllables and syllable pairs (normalised to
0-100 by the best score the query could reach) with rapidfuzz's
token_set_ratio against each name, alias and example question.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from rapidfuzz import fuzz, process

from bot.normalize import DEFAULT_ABBREVIATIONS, normalize
from bot.schema import Catalogue

# Words that carry no meaning for choosing a procedure.
FILLERS: Final = frozenset(
    [
        "a",
        "ah",
        "ad",
        "oi",
        "nhe",
        "nha",
        "vay",
        "va",
        "thi",
        "la",
        "cua",
        "cho",
        "toi",
        "tui",
        "minh",
        "em",
        "anh",
        "chi",
        "ban",
        "co",
        "khong",
        "gi",
        "sao",
        "lam",
        "the",
        "nao",
        "nhu",
        "o",
        "dau",
        "can",
        "muon",
        "hoi",
        "xin",
        "duoc",
        "roi",
        "di",
        "voi",
        "nay",
        "do",
        "ai",
    ]
)
K1: Final = 1.5
B: Final = 0.75

MatchStatus = Literal["confident", "ambiguous", "none"]


@dataclass(frozen=True)
class MatchConfig:
    """Thresholds on the fused 0-100 score; calibrated on the dev set, overridable in settings."""

    confident: float = 70.0
    ambiguous: float = 45.0
    margin: float = 8.0
    min_content_words: int = 3


@dataclass(frozen=True)
class Candidate:
    procedure_id: str
    score: float


@dataclass(frozen=True)
class MatchResult:
    status: MatchStatus
    candidates: tuple[Candidate, ...]

    @property
    def procedure_id(self) -> str | None:
        return self.candidates[0].procedure_id if self.status == "confident" else None


def _terms(words: Sequence[str]) -> list[str]:
    return list(words) + [f"{a}_{b}" for a, b in itertools.pairwise(words)]


class Matcher:
    """An index over a catalogue's names, aliases and examples, built once per content load."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: MatchConfig | None = None,
        abbreviations: Mapping[str, str] = DEFAULT_ABBREVIATIONS,
    ) -> None:
        self.config = config or MatchConfig()
        self.abbreviations = abbreviations
        self.rows: list[str] = []
        self.row_proc: list[str] = []
        docs: dict[str, Counter[str]] = {}
        for proc in catalogue.procedures:
            doc: Counter[str] = Counter()
            for text in (proc.name, *proc.aliases, *proc.examples):
                key = normalize(text, abbreviations)
                if not key:
                    continue
                self.rows.append(key)
                self.row_proc.append(proc.id)
                doc.update(_terms(key.split()))
            docs[proc.id] = doc
        self.docs = docs
        n = max(len(docs), 1)
        df: Counter[str] = Counter()
        for doc in docs.values():
            df.update(doc.keys())
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.max_idf = math.log(1 + (n + 0.5) / 0.5)
        self.doc_len = {p: sum(d.values()) for p, d in docs.items()}
        self.avg_len = (sum(self.doc_len.values()) / n) or 1.0

    def _bm25(self, terms: Sequence[str]) -> dict[str, float]:
        if not terms:
            return {}
        best = sum(self.idf.get(t, self.max_idf) * (K1 + 1) for t in terms) or 1.0
        scores: dict[str, float] = {}
        for pid, doc in self.docs.items():
            norm = K1 * (1 - B + B * self.doc_len[pid] / self.avg_len)
            s = 0.0
            for t in terms:
                tf = doc.get(t, 0)
                if tf:
                    s += self.idf[t] * tf * (K1 + 1) / (tf + norm)
            scores[pid] = 100.0 * min(s / best, 1.0)
        return scores

    def rank(self, text: str) -> list[Candidate]:
        """Every procedure with a non-zero fused score, best first."""
        query = normalize(text, self.abbreviations)
        if not query:
            return []
        words = query.split()
        bm25 = self._bm25(_terms(words))
        fuzzy: dict[str, float] = {}
        for _, score, idx in process.extract(query, self.rows, scorer=fuzz.token_set_ratio, limit=None):
            pid = self.row_proc[idx]
            fuzzy[pid] = max(fuzzy.get(pid, 0.0), float(score))
        fused = {
            pid: 0.5 * bm25.get(pid, 0.0) + 0.5 * fuzzy.get(pid, 0.0) for pid in self.docs if bm25.get(pid, 0.0) > 0
        }
        return sorted(
            (Candidate(pid, round(s, 2)) for pid, s in fused.items()),
            key=lambda c: (-c.score, c.procedure_id),
        )

    def match(self, text: str) -> MatchResult:
        cfg = self.config
        ranked = self.rank(text)
        top = tuple(ranked[:3])
        if not top or top[0].score < cfg.ambiguous:
            return MatchResult("none", top)
        words = [w for w in normalize(text, self.abbreviations).split() if w not in FILLERS]
        margin = top[0].score - (top[1].score if len(top) > 1 else 0.0)
        if top[0].score >= cfg.confident and margin >= cfg.margin and len(words) >= cfg.min_content_words:
            return MatchResult("confident", top)
        return MatchResult("ambiguous", top)
