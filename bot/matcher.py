"""Free text -> ranked procedures, with a confident / ambiguous / none outcome.

Scoring fuses a BM25 score over syllables and syllable pairs (normalised to
0-100 by the best score the query could reach) with rapidfuzz's
token_set_ratio against each name, alias and example question.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from rapidfuzz import fuzz, process

from bot.gate import Gate
from bot.normalize import NUMBER_WORDS, catalogue_words, fold, is_syllable, normalize, word_count
from bot.privacy import without_personal
from bot.schema import Catalogue, Family, MatchSettings

K1: Final = 1.5
B: Final = 0.75
TYPO_MIN_LENGTH: Final = 4
TYPO_CUTOFF: Final = 80.0
# Procedures are ranked mostly by BM25 (it ranks best on the dev set); whether to answer is
# decided on an even blend of BM25 and token_set_ratio (it separates answerable questions best).
RANK_BM25_WEIGHT: Final = 0.8
CONFIDENCE_BM25_WEIGHT: Final = 0.5
# Only the best procedures by BM25 are rescored with token_set_ratio (speed at thousands of procedures).
RESCORE_TOP: Final = 10
# Terms in more documents than this are only added to the best candidates found through rarer terms.
COMMON_DF: Final = 300
COMMON_CANDIDATES: Final = 100

MatchStatus = Literal["confident", "ambiguous", "none"]
# The pseudo-procedure holding the catalogue's out_of_scope phrases (never a slug, so never a real id).
OUT_OF_SCOPE: Final = "(ngoài phạm vi)"


@dataclass(frozen=True)
class MatchConfig:
    """Thresholds on the 0-100 confidence score. The shipped values live in procedures.yaml (``matching``),
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
    """A procedure and its confidence score (0-100); candidates come best-ranked first."""

    procedure_id: str
    score: float


@dataclass(frozen=True)
class MatchResult:
    status: MatchStatus
    candidates: tuple[Candidate, ...]
    # "law": the question asks what the law says (legal advice, a fine's amount, rights), not how to do
    # a procedure; the candidates are then only the related procedures to offer (see ``bot.gate``).
    intent: str = "do"
    gate_score: float | None = None
    family: str | None = None  # a general question about sibling procedures: ask the family's question

    @property
    def procedure_id(self) -> str | None:
        return self.candidates[0].procedure_id if self.status == "confident" else None


@dataclass(frozen=True)
class _Scored:
    procedure_id: str
    rank: float
    confidence: float


def _terms(words: Sequence[str]) -> list[str]:
    return list(words) + [f"{a}_{b}" for a, b in itertools.pairwise(words)]


# Letter groups Vietnamese never writes but English does: a word with one is a foreign word, not a typo.
_FOREIGN: Final = re.compile(r"[fjwz]|(?:pl|bl|cl|fl|gl|br|cr|dr|fr|gr|pr|sc|sk|sl|sm|sn|sp|st|sw|wr)|oo|ee|ck|ss|ll")


# Words that say how, where or for whom, not which member of a family: never a member's own word.
_SAY_NOTHING: Final = frozenset(
    {"lam", "xin", "cho", "con", "toi", "tui", "minh", "o", "dau", "the", "nao", "sao", "can", "phai", "gi", "khi"}
    | {"online", "tren", "vneid", "mang", "nha", "nguoi", "co", "khong", "duoc", "va", "voi", "cua", "de", "thu", "tuc"}
)


_NAME_VERBS: Final = frozenset({"dang", "ky", "cap", "the", "giay", "thu", "tuc"})


_DIGIT_OF: Final = {word: int(digit) for digit, word in NUMBER_WORDS.items()}


def _number(word: str) -> int | None:
    """A number as the match key spells it: "14", or a digit's word ("6" reads "sau")."""
    return int(word) if word.isdigit() else _DIGIT_OF.get(word)


# An age said as a bound ("dưới 6 tuổi", "trên 14 tuổi"): an age just inside it.
_BOUND_SHIFT: Final[Mapping[str, int]] = {"duoi": -1, "tren": 1}


def _age_range(name: Sequence[str]) -> tuple[int, int] | None:
    """The ages a procedure's name is for: "… dưới 6 tuổi" is (0, 6), "… từ đủ 6 tuổi …" is (6, 200)."""
    for i in range(len(name) - 2):
        age = _number(name[i + 1])
        if name[i + 2] == "tuoi" and age is not None:
            if name[i] == "duoi":
                return 0, age
            if name[i] in ("du", "tu"):
                return age, 200
    return None


def _ask_family(family: Family, scored: Sequence[_Scored]) -> MatchResult:
    """The family's question instead of a guess: its members as the choices, best-ranked first."""
    rank = {s.procedure_id: s.rank for s in scored}
    score = {s.procedure_id: round(s.confidence, 2) for s in scored}
    members = sorted(family.members, key=lambda m: -rank.get(m, 0.0))
    return MatchResult("ambiguous", tuple(Candidate(m, score.get(m, 0.0)) for m in members), family=family.id)


class Matcher:
    """An index over a catalogue's names, aliases and examples, built once per content load."""

    def __init__(self, catalogue: Catalogue, config: MatchConfig | None = None) -> None:
        # Building makes millions of small objects and no cycles: the cyclic collector would only
        # rescan them again and again (a third of the build time at 5,000 procedures).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._build(catalogue, config)
        finally:
            if enabled:
                gc.enable()

    def _build(self, catalogue: Catalogue, config: MatchConfig | None) -> None:
        self.config = config or MatchConfig.of(catalogue.matching)
        self.family_of: dict[str, Family] = {pid: f for f in catalogue.families for pid in f.members}
        self.name_core: dict[str, frozenset[str]] = {}  # a family member's name without its verbs
        self.age_range: dict[str, tuple[int, int] | None] = {}  # "dưới 6 tuổi": (0, 6); "từ đủ 6 tuổi": (6, 200)
        self.name_text: dict[str, str] = {}  # a family member's name as the match key spells it
        self.own_words: dict[str, frozenset[str]] = {}  # a family member's words no sibling has
        self.telling = self._telling_words(catalogue)
        self.gate: Gate | None = None
        if catalogue.gate is not None and catalogue.gate.weights is not None:
            try:
                self.gate = replace(Gate.from_json(catalogue.gate.weights), threshold=catalogue.gate.threshold)
            except ValueError:
                self.gate = None  # the loader already warned
        self.table: Mapping[str, str] = catalogue.abbreviations
        self.exact: Mapping[str, str] = catalogue.exact_abbreviations
        self.rows: list[str] = []
        self.row_proc: list[str] = []
        self.rows_of: dict[str, list[int]] = {}
        vocab: set[str] = set()
        docs: dict[str, Counter[str]] = {}
        sources = [(p.id, (p.name, *p.aliases, *p.examples)) for p in catalogue.procedures]
        if catalogue.out_of_scope:
            sources.append((OUT_OF_SCOPE, catalogue.out_of_scope))
        for pid, texts in sources:
            terms: list[str] = []
            for words in catalogue_words(texts, self.table, self.exact):
                if not words:
                    continue
                self.rows_of.setdefault(pid, []).append(len(self.rows))
                self.rows.append(" ".join(words))
                self.row_proc.append(pid)
                vocab.update(words)
                terms += words
                terms += [f"{a}_{b}" for a, b in itertools.pairwise(words)]
            docs[pid] = Counter(terms)
        self.docs = docs
        self.vocab = frozenset(vocab)
        self._vocab_list = sorted(self.vocab)
        n = max(len(docs), 1)
        by_term: defaultdict[str, list[str]] = defaultdict(list)
        for pid, doc in docs.items():
            for holders in map(by_term.__getitem__, doc):
                holders.append(pid)
        self._n = n
        self.max_idf = math.log(1 + (n + 0.5) / 0.5)
        self.doc_len = {p: sum(d.values()) for p, d in docs.items()}
        self.avg_len = (sum(self.doc_len.values()) / n) or 1.0
        # Postings (procedure, term frequency) by term; common terms also as a dict, to add their
        # weight to candidates found through rarer terms. Weights are computed when a query needs them.
        self._norm = {p: K1 * (1 - B + B * length / self.avg_len) for p, length in self.doc_len.items()}
        self._postings = dict(by_term)

    def _telling_words(self, catalogue: Catalogue) -> dict[str, frozenset[str]]:
        """Per family, the words of one member's name and aliases that no sibling's have ("lại", "mất",
        "dưới"): a question with none of them names the family, not a member."""
        out: dict[str, frozenset[str]] = {}
        for family in catalogue.families:
            words: dict[str, set[str]] = {}
            for pid in family.members:
                proc = catalogue.procedure(pid)
                texts = (proc.name, *proc.aliases) if proc else ()
                words[pid] = {
                    w
                    for ws in catalogue_words(texts, catalogue.abbreviations, catalogue.exact_abbreviations)
                    for w in ws
                }
            shared = {w for a, b in itertools.combinations(words.values(), 2) for w in a & b}
            out[family.id] = frozenset(w for ws in words.values() for w in ws - shared) - _SAY_NOTHING
            for pid, ws in words.items():
                self.own_words[pid] = frozenset(ws - shared) - _SAY_NOTHING
            for pid in family.members:
                proc = catalogue.procedure(pid)
                if proc is None:
                    continue
                name = [w for ws in catalogue_words((proc.name,), catalogue.abbreviations, {}) for w in ws]
                self.name_core[pid] = frozenset(name) - _SAY_NOTHING - _NAME_VERBS
                self.name_text[pid] = " ".join(name)
                self.age_range[pid] = _age_range(name)
        return out

    def _names_member(self, said: Sequence[str], family: Family, top: str) -> bool:
        """Whether a question about a family names its top member: a word only that member's name or aliases
        have ("cấp lại", "mất", "tách"), the member's whole name ("đăng ký thường trú"), or an age in its range
        ("cho con 3 tuổi" at "dưới 6 tuổi"). ``said``: the question's match key."""
        words = set(said)
        if words & self.telling[family.id] or self.name_core.get(top, frozenset({""})) <= words:
            return True
        return self._of_age(said, family) == top

    def _named_in_full(self, said: Sequence[str], family: Family) -> str | None:
        """The member whose whole name the question says word for word, when that name holds the names of
        the siblings said with it: "xóa đăng ký thường trú" holds "đăng ký thường trú"."""
        text = f" {' '.join(said)} "
        named = [m for m in family.members if (name := self.name_text.get(m)) and f" {name} " in text]
        if len(named) < 2:
            return None  # one name said whole is the usual case: the scores already see it
        longest = max(named, key=lambda m: len(self.name_text[m]))
        inner = all(f" {self.name_text[m]} " in f" {self.name_text[longest]} " for m in named)
        return longest if inner else None

    def _of_age(self, said: Sequence[str], family: Family) -> str | None:
        """The one member of a family whose age range holds the one age the question states ("cho con 2 tuổi"
        is "dưới 6 tuổi"), if any."""
        ages = [
            a + _BOUND_SHIFT.get(said[i - 2], 0) if i >= 2 else a  # "dưới 6 tuổi" is 5 or less
            for i in range(1, len(said))
            if said[i] == "tuoi" and (a := _number(said[i - 1])) is not None
        ]
        if len(ages) != 1:
            return None
        fits = [m for m in family.members if (r := self.age_range.get(m)) is not None and r[0] <= ages[0] < r[1]]
        if len(fits) != 1:
            return None
        # ...unless another member's own words are said too: "cấp lại căn cước cho con 8 tuổi bị mất"; not those
        # of a member the age rules out ("cho cháu nội 10 tuổi" is not "dưới 6 tuổi" for its "cháu")
        words = set(said)
        others = [
            m
            for m in family.members
            if m != fits[0] and ((r := self.age_range.get(m)) is None or r[0] <= ages[0] < r[1])
        ]
        return None if any(words & self.own_words.get(m, frozenset()) for m in others) else fits[0]

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of a term the catalogue has."""
        c = len(self._postings[term])
        return math.log(1 + (self._n - c + 0.5) / (c + 0.5))

    def repair(self, word: str) -> str:
        """A query word unknown to the catalogue, replaced by catalogue words if it is a likely typo.

        Only words that are not a well-formed Vietnamese syllable are touched: a real word the
        catalogue lacks ("vàng", "súng") is evidence the question is out of scope, not a typo.
        Two words typed together ("khaisinh") are split when both halves are known.
        """
        if word in self.vocab or len(word) < TYPO_MIN_LENGTH or word.isdigit() or is_syllable(word):
            return word
        if _FOREIGN.search(word):
            return word  # "play", "google", "facebook": English and brand words are not typos of Vietnamese ones
        for cut in range(2, len(word) - 1):
            if word[:cut] in self.vocab and word[cut:] in self.vocab:
                return f"{word[:cut]} {word[cut:]}"
        found = process.extractOne(word, self._vocab_list, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
        return str(found[0]) if found else word

    def key(self, text: str) -> str:
        """The query's match key: personal numbers removed, normalised, keystroke leftovers and typos repaired."""
        return self._key(without_personal(text, fold))  # "số CCCD của tôi là …" says who asks, not what about

    def _key(self, clean: str) -> str:
        words = normalize(clean, self.table, self.vocab, exact=self.exact).split()
        return " ".join(self.repair(w) for w in words)

    def _bm25(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 per procedure, normalised to 0-100 by the best score the query could reach.

        Rare terms are summed through their postings; common terms only add to procedures
        the rare ones found (all terms are rare in a catalogue of a few hundred procedures).
        """
        if not terms:
            return {}
        postings = self._postings
        known = [t for t in terms if t in postings]
        idf = {t: self.idf(t) for t in known}
        best = sum(idf.get(t, self.max_idf) * (K1 + 1) for t in terms) or 1.0
        rare = [t for t in known if len(postings[t]) <= COMMON_DF]
        common = [t for t in known if len(postings[t]) > COMMON_DF]
        scores: dict[str, float] = {}
        norm = self._norm
        k = K1 + 1
        docs = self.docs
        for t in rare or common:
            idf_k = idf[t] * k
            for pid in postings[t]:
                tf = docs[pid][t]
                scores[pid] = scores.get(pid, 0.0) + idf_k * tf / (tf + norm[pid])
        if rare and common:
            if len(scores) > COMMON_CANDIDATES:
                scores = {p: scores[p] for p in heapq.nlargest(COMMON_CANDIDATES, scores, key=scores.__getitem__)}
            for t in common:
                idf_k = idf[t] * k
                for pid in scores:
                    tf = docs[pid].get(t, 0)
                    if tf:
                        scores[pid] += idf_k * tf / (tf + norm[pid])
        return {pid: 100.0 * min(s / best, 1.0) for pid, s in scores.items() if s > 0}

    def _score(self, clean: str, words: Sequence[str] | None = None) -> list[_Scored]:
        """Procedures sharing a word with the query (personal numbers already removed), best-ranked first
        (``words``: its match key, when the caller has it already)."""
        words = self._key(clean).split() if words is None else words
        if not words:
            return []
        bm25 = self._bm25(_terms(words))
        if not bm25:
            return []
        shortlist = heapq.nlargest(RESCORE_TOP, bm25, key=bm25.__getitem__)
        idx = [i for pid in shortlist for i in self.rows_of.get(pid, ())]
        fuzzy: dict[str, float] = {}
        query = " ".join(words)
        for _, score, j in process.extract(
            query, [self.rows[i] for i in idx], scorer=fuzz.token_set_ratio, processor=None, limit=None
        ):
            pid = self.row_proc[idx[j]]
            if score > fuzzy.get(pid, 0.0):
                fuzzy[pid] = float(score)
        scored = [
            _Scored(
                pid,
                RANK_BM25_WEIGHT * bm25[pid] + (1 - RANK_BM25_WEIGHT) * fuzzy.get(pid, 0.0),
                CONFIDENCE_BM25_WEIGHT * bm25[pid] + (1 - CONFIDENCE_BM25_WEIGHT) * fuzzy.get(pid, 0.0),
            )
            for pid in shortlist
        ]
        return sorted(scored, key=lambda s: (-s.rank, s.procedure_id))

    def rank(self, text: str) -> list[Candidate]:
        """The shortlisted procedures, best-ranked first, with their confidence scores."""
        return [Candidate(s.procedure_id, round(s.confidence, 2)) for s in self._score(without_personal(text, fold))]

    def match(self, text: str) -> MatchResult:
        clean = without_personal(text, fold)  # once per question: "số CCCD của tôi là …" says who asks
        result = self._match(clean)
        if self.gate is None:
            return result
        score = round(self.gate.score(clean), 3)
        if not score >= self.gate.threshold or word_count(clean) < self.config.min_words:
            # (two words, "tạm trú", never ask what the law says: they name a topic, offered as choices)
            return replace(result, gate_score=score)
        # What the law says is not a procedure to start: no status but "none"; the related procedures
        # (a likely one, not a guess) are offered as something the citizen may want to *do*.
        related = tuple(c for c in result.candidates if c.score >= self.config.ambiguous)[:2]
        return MatchResult("none", related, intent="law", gate_score=score)

    def _match(self, clean: str) -> MatchResult:
        cfg = self.config
        said = self._key(clean).split()
        scored = self._score(clean, said)
        if scored and scored[0].procedure_id == OUT_OF_SCOPE:
            # Closer to something the officials listed as not covered than to any procedure.
            rest = [s for s in scored if s.procedure_id != OUT_OF_SCOPE][:3]
            return MatchResult("none", tuple(Candidate(s.procedure_id, round(s.confidence, 2)) for s in rest))
        scored = [s for s in scored if s.procedure_id != OUT_OF_SCOPE]
        top = tuple(Candidate(s.procedure_id, round(s.confidence, 2)) for s in scored[:3])
        if not top or top[0].score < cfg.ambiguous:
            return MatchResult("none", top)
        margin = scored[0].rank - (scored[1].rank if len(scored) > 1 else 0.0)
        words = word_count(clean)
        family = self.family_of.get(scored[0].procedure_id)
        aged = self._of_age(said, family) if family is not None and words >= cfg.min_words else None
        # "làm căn cước cho con 2 tuổi": the age says which sibling, however close their scores;
        # "… muốn xóa đăng ký thường trú của cháu": the longer name said whole holds its sibling's
        named = self._named_in_full(said, family) if family is not None and words >= cfg.min_words else None
        if named == top[0].procedure_id:
            named = None  # the top one already: the usual checks below decide
        for member in (aged, named):
            picked = next((c for c in top if c.procedure_id == member and c.score >= cfg.ambiguous), None)
            if picked is not None:
                return MatchResult("confident", (picked, *(c for c in top if c is not picked)))
        if family is not None:
            # "làm thẻ căn cước": the family, not one of its members; "cấp lại căn cước bị mất": the member
            rank = {s.procedure_id: s.rank for s in scored}
            sibling = max((rank.get(m, 0.0) for m in family.members if m != scored[0].procedure_id), default=0.0)
            if scored[0].rank - sibling < family.margin and sibling >= cfg.ambiguous:
                return _ask_family(family, scored)
        if top[0].score >= cfg.confident and margin >= cfg.margin and words >= cfg.min_words:
            if family is not None and not self._names_member(said, family, scored[0].procedure_id):
                # "làm căn cước ở đâu": the family's words and none of a member's own ("lại", "dưới 6 tuổi")
                return _ask_family(family, scored)
            return MatchResult("confident", top)
        return MatchResult("ambiguous", top)


@dataclass(frozen=True)
class Confusable:
    """An alias or example of one procedure that, on its own, matches another procedure better."""

    procedure_id: str
    field: Literal["aliases", "examples"]
    index: int
    text: str
    other: str
    own_score: float
    other_score: float


def confusables(catalogue: Catalogue, matcher: Matcher) -> list[Confusable]:
    """Aliases and examples that, typed exactly as written, would be matched to another procedure."""
    out = []
    for proc in catalogue.procedures:
        for field_name, texts in (("aliases", proc.aliases), ("examples", proc.examples)):
            for i, text in enumerate(texts):
                ranked = [c for c in matcher._score(without_personal(text, fold)) if c.procedure_id != OUT_OF_SCOPE]
                if not ranked or ranked[0].procedure_id == proc.id:
                    continue
                own = next((c.rank for c in ranked if c.procedure_id == proc.id), 0.0)
                kind: Literal["aliases", "examples"] = "aliases" if field_name == "aliases" else "examples"
                out.append(Confusable(proc.id, kind, i, text, ranked[0].procedure_id, own, ranked[0].rank))
    return out
