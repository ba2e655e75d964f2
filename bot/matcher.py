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

from bot.normalize import is_syllable, normalize, word_count
from bot.schema import Catalogue, MatchSettings

K1: Final = 1.5
B: Final = 0.75
TYPO_MIN_LENGTH: Final = 4
TYPO_CUTOFF: Final = 80.0
BM25_WEIGHT: Final = 0.5

MatchStatus = Literal["confident", "ambiguous", "none"]
# The pseudo-procedure holding the catalogue's out_of_scope phrases (never a slug, so never a real id).
OUT_OF_SCOPE: Final = "(ngoài phạm vi)"


@dataclass(frozen=True)
class MatchConfig:
    """Thresholds on the fused 0-100 score. The shipped values live in procedures.yaml (``matching``),
    calibrated with ``python -m bot eval-match``; these defaults only serve content without that section."""

    confident: float = 70.0
    ambiguous: float = 45.0
    margin: float = 8.0
    min_words: int = 3

    @staticmethod
    def of(settings: MatchSettings | None) -> MatchConfig:
        if settings is None:
            return MatchConfig()
        return MatchConfig(settings.confident, settings.ambiguous, settings.margin, settings.min_words)


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

    def __init__(self, catalogue: Catalogue, config: MatchConfig | None = None) -> None:
        self.config = config or MatchConfig.of(catalogue.matching)
        self.table: Mapping[str, str] = catalogue.abbreviations
        self.rows: list[str] = []
        self.row_proc: list[str] = []
        docs: dict[str, Counter[str]] = {}
        sources = [(p.id, (p.name, *p.aliases, *p.examples)) for p in catalogue.procedures]
        if catalogue.out_of_scope:
            sources.append((OUT_OF_SCOPE, catalogue.out_of_scope))
        for pid, texts in sources:
            doc: Counter[str] = Counter()
            for text in texts:
                key = normalize(text, self.table)
                if not key:
                    continue
                self.rows.append(key)
                self.row_proc.append(pid)
                doc.update(_terms(key.split()))
            docs[pid] = doc
        self.docs = docs
        self.vocab = frozenset(w for row in self.rows for w in row.split())
        self._vocab_list = sorted(self.vocab)
        n = max(len(docs), 1)
        df: Counter[str] = Counter()
        for doc in docs.values():
            df.update(doc.keys())
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.max_idf = math.log(1 + (n + 0.5) / 0.5)
        self.doc_len = {p: sum(d.values()) for p, d in docs.items()}
        self.avg_len = (sum(self.doc_len.values()) / n) or 1.0
        self._postings: dict[str, list[tuple[str, int]]] = {}
        for pid, doc in docs.items():
            for t, tf in doc.items():
                self._postings.setdefault(t, []).append((pid, tf))

    def repair(self, word: str) -> str:
        """A query word unknown to the catalogue, replaced by catalogue words if it is a likely typo.

        Only words that are not a well-formed Vietnamese syllable are touched: a real word the
        catalogue lacks ("vàng", "súng") is evidence the question is out of scope, not a typo.
        Two words typed together ("khaisinh") are split when both halves are known.
        """
        if word in self.vocab or len(word) < TYPO_MIN_LENGTH or word.isdigit() or is_syllable(word):
            return word
        for cut in range(2, len(word) - 1):
            if word[:cut] in self.vocab and word[cut:] in self.vocab:
                return f"{word[:cut]} {word[cut:]}"
        found = process.extractOne(word, self._vocab_list, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
        return str(found[0]) if found else word

    def key(self, text: str) -> str:
        """The query's match key: normalised, keystroke leftovers and typos repaired."""
        words = normalize(text, self.table, self.vocab).split()
        return " ".join(self.repair(w) for w in words)

    def _bm25(self, terms: Sequence[str]) -> dict[str, float]:
        if not terms:
            return {}
        best = sum(self.idf.get(t, self.max_idf) * (K1 + 1) for t in terms) or 1.0
        scores: dict[str, float] = {}
        for t in terms:
            idf = self.idf.get(t)
            if idf is None:
                continue
            for pid, tf in self._postings[t]:
                norm = K1 * (1 - B + B * self.doc_len[pid] / self.avg_len)
                scores[pid] = scores.get(pid, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        return {pid: 100.0 * min(s / best, 1.0) for pid, s in scores.items()}

    def rank(self, text: str) -> list[Candidate]:
        """Every procedure sharing a content word with the query, best first."""
        words = self.key(text).split()
        if not words:
            return []
        bm25 = self._bm25(_terms(words))
        if not bm25:
            return []
        fuzzy: dict[str, float] = {}
        hits = process.extract(" ".join(words), self.rows, scorer=fuzz.token_set_ratio, processor=None, limit=None)
        for _, score, idx in hits:
            pid = self.row_proc[idx]
            if score > fuzzy.get(pid, 0.0):
                fuzzy[pid] = float(score)
        fused = {pid: BM25_WEIGHT * b + (1 - BM25_WEIGHT) * fuzzy.get(pid, 0.0) for pid, b in bm25.items()}
        return sorted(
            (Candidate(pid, round(s, 2)) for pid, s in fused.items()),
            key=lambda c: (-c.score, c.procedure_id),
        )

    def match(self, text: str) -> MatchResult:
        cfg = self.config
        ranked = self.rank(text)
        if ranked and ranked[0].procedure_id == OUT_OF_SCOPE:
            # Closer to something the officials listed as not covered than to any procedure.
            return MatchResult("none", tuple(c for c in ranked if c.procedure_id != OUT_OF_SCOPE)[:3])
        ranked = [c for c in ranked if c.procedure_id != OUT_OF_SCOPE]
        top = tuple(ranked[:3])
        if not top or top[0].score < cfg.ambiguous:
            return MatchResult("none", top)
        margin = top[0].score - (top[1].score if len(top) > 1 else 0.0)
        if top[0].score >= cfg.confident and margin >= cfg.margin and word_count(text) >= cfg.min_words:
            return MatchResult("confident", top)
        return MatchResult("ambiguous", top)
