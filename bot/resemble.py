"""The last reading of a typed answer: the choice whose ways of saying it the message resembles most.

``understand.read`` takes a message for a choice only on firm evidence: a label, a ``says:`` phrase
held in full or mostly. Citizens also describe their case in words no phrase has: "cứ văng ra hoài"
where the step's "Vẫn chưa được" lists "app vẫn văng ra", "lên Sài Gòn phụ hồ" where "Đi làm, đi học"
lists "đi làm ăn xa". Before the engine says "tôi chưa hiểu", it asks this model which choice's label
or ways of saying the message is most like: a TF-IDF cosine over words, word pairs and the letter
groups of each word (so "xoay xoay" is near "xoay vòng", "gởi" near "gửi"), with the weights of the
whole content set, so that words every step uses ("tôi", "được") count little.

Measured on the content itself (each ``says:`` phrase taken out and read against its step's other
phrases): it picks for half of them (5,694 of 11,535), rightly 83% of the time. Typed in the engine,
where it runs only when the reader, the commands and the catalogue understood nothing and the message
asks nothing ("bao lâu", "ở đâu"), it took 3 of 1,015 out-of-scope and legal questions typed at random
choice steps for an answer. A close second makes it ask "Ý bạn là … hay …?" instead. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

Tokens = tuple[str, ...]
Vector = dict[str, float]

# A choice is taken when its best phrase is this like the message and this far ahead of the next choice;
# with a closer second, the citizen is asked which of the two. Chosen on the content (see the docstring).
PICK_AT: Final = 0.15
MARGIN: Final = 0.1
# A phrase counts only when it shares this many words with the message: one shared word ("con" in
# "con tui bị sốt" and "nhờ con cháu") is chance, not likeness.
SHARED_WORDS: Final = 2
# A phrase that says no, read against a message that does not (or the reverse), counts half.
OTHER_POLARITY: Final = 0.5
_LETTER_GROUPS: Final = (3, 4)
_CACHE_LIMIT: Final = 50_000


def features(tokens: Tokens) -> dict[str, float]:
    """Words, pairs of neighbouring words, and the three- and four-letter groups of each word."""
    out: dict[str, float] = {}
    for t in tokens:
        out["w:" + t] = out.get("w:" + t, 0.0) + 1.0
    for a, b in itertools.pairwise(tokens):
        key = f"b:{a}_{b}"
        out[key] = out.get(key, 0.0) + 1.0
    for t in tokens:
        s = f"^{t}$"
        for n in _LETTER_GROUPS:
            for i in range(len(s) - n + 1):
                key = f"c{n}:{s[i : i + n]}"
                out[key] = out.get(key, 0.0) + 0.5
    return out


def _cosine(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(k, 0.0) for k, x in a.items())


@dataclass
class Resemblance:
    """Feature weights learnt from every label and ``says:`` phrase of a content set (see ``of``)."""

    idf: dict[str, float]
    unseen: float  # the weight of a feature no phrase has
    vectors: dict[Tokens, Vector] = field(default_factory=dict, repr=False)

    @staticmethod
    def of(phrases: Iterable[Tokens]) -> Resemblance:
        """The weights: a feature found in many phrases weighs little (log of phrases over phrases having it)."""
        df: dict[str, int] = {}
        n = 0
        for tokens in phrases:
            n += 1
            for key in features(tokens):
                df[key] = df.get(key, 0) + 1
        return Resemblance({k: math.log(n / (1 + v)) for k, v in df.items()}, math.log(max(n, 1)))

    def vector(self, tokens: Tokens) -> Vector:
        cached = self.vectors.get(tokens)
        if cached is not None:
            return cached
        v = {k: x * self.idf.get(k, self.unseen) for k, x in features(tokens).items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        v = {k: x / norm for k, x in v.items()}
        if len(self.vectors) > _CACHE_LIMIT:
            self.vectors.clear()
        self.vectors[tokens] = v
        return v

    def scores(
        self, message: Tokens, choices: Sequence[tuple[str, Sequence[Tokens]]], negative: Callable[[Tokens], bool]
    ) -> list[tuple[float, str]]:
        """Each choice's best likeness to the message, best first."""
        q = self.vector(message)
        said_no = negative(message)
        words = set(message)
        out = []
        for cid, phrases in choices:
            best = 0.0
            for phrase in phrases:
                if len(words.intersection(phrase)) < SHARED_WORDS:
                    continue
                s = _cosine(q, self.vector(phrase))
                if negative(phrase) != said_no:
                    s *= OTHER_POLARITY
                best = max(best, s)
            out.append((best, cid))
        out.sort(key=lambda pair: -pair[0])
        return out

    def choice(
        self, message: Tokens, choices: Sequence[tuple[str, Sequence[Tokens]]], negative: Callable[[Tokens], bool]
    ) -> tuple[str | None, tuple[str, ...]]:
        """(the choice the message resembles, or None; the choices to ask between when two are close)."""
        if not message or len(choices) < 2:
            return None, ()
        ranked = self.scores(message, choices, negative)
        top, cid = ranked[0]
        if top < PICK_AT:
            return None, ()
        if top - ranked[1][0] >= MARGIN:
            return cid, ()
        return None, tuple(c for s, c in ranked if top - s < MARGIN)
