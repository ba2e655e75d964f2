"""The intent gate: does a question ask to *do* a procedure, or what the *law* says?

"Vượt đèn đỏ xe máy phạt bao nhiêu?" shares its words with *Nộp phạt giao thông*, but it asks
for a fine amount, which is legal advice; "Con riêng có được hưởng thừa kế không?" shares its
words with *Sang tên sổ đỏ*. The matcher ranks by topic words and cannot tell these apart.

The gate is a logistic regression over the folded question's words, word pairs and letter
4-grams: cheap (a few dictionary lookups per question), explainable (``explain`` lists the
features that pushed the score) and small enough to ship as data. It is trained offline with
``python -m bot train-gate`` on the examples officials write in procedures.yaml (``intent_gate``),
the procedures' own examples, and the labelled question files under ``tests/data/eval``; the
weights are written to ``intent-gate.json`` next to procedures.yaml, with the hash of the data
they were trained on so ``validate`` can tell when they are stale. Pure: no I/O here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.normalize import fold
from bot.privacy import without_personal
from bot.schema import Procedure

GATE_FILE: Final = "intent-gate.json"
GATE_MAX_BYTES: Final = 20_000_000  # a weights file larger than this is refused (a few hundred kB is normal)
FORMAT: Final = 1
# Training: a few passes of Adagrad over the examples, with the two classes weighed equally.
EPOCHS: Final = 30
RATE: Final = 0.5
L2: Final = 1e-4
SEED: Final = 20261203
MAX_CHARS: Final = 600  # a question longer than this is read by its beginning


def features(text: str) -> list[str]:
    """The features of a question: folded words, word pairs and letter 4-grams (personal numbers removed)."""
    folded = fold(without_personal(text[:MAX_CHARS], fold))
    words = folded.split()
    out = [f"w:{w}" for w in words]
    out += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
    padded = f" {folded} "
    out += [f"c:{padded[i : i + 4]}" for i in range(len(padded) - 3)]
    return sorted(set(out))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Gate:
    """Weights of the gate: a positive score means "asks what the law says"."""

    weights: Mapping[str, float]
    bias: float
    threshold: float = 0.5
    data_hash: str = ""

    def score(self, text: str) -> float:
        """Probability that the question asks for legal advice (not how to do a procedure)."""
        feats = features(text)
        if not feats:
            return 0.0
        scale = 1.0 / math.sqrt(len(feats))
        return _sigmoid(self.bias + scale * sum(self.weights.get(f, 0.0) for f in feats))

    def is_law(self, text: str) -> bool:
        return self.score(text) >= self.threshold

    def explain(self, text: str, top: int = 5) -> list[tuple[str, float]]:
        """The features that pushed the score most, either way (to see why a question was read as it was)."""
        feats = features(text)
        scale = 1.0 / math.sqrt(len(feats)) if feats else 0.0
        pushed = [(f, round(self.weights[f] * scale, 3)) for f in feats if f in self.weights]
        pushed.sort(key=lambda fw: -abs(fw[1]))
        return pushed[:top]

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "data_hash": self.data_hash,
            "threshold": self.threshold,
            "bias": round(self.bias, 5),
            "weights": {f: round(w, 5) for f, w in sorted(self.weights.items()) if abs(w) >= 1e-4},
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Gate:
        """Weights as ``as_json`` wrote them; ValueError when they are not."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError("không phải tệp trọng số của bộ phân loại câu hỏi (format 1)")
        weights = data.get("weights")
        if not isinstance(weights, Mapping) or not all(isinstance(k, str) and _number(v) for k, v in weights.items()):
            raise ValueError("mục weights phải là các cặp chữ: số")
        bias, threshold = data.get("bias"), data.get("threshold")
        if not isinstance(bias, int | float) or not isinstance(threshold, int | float):
            raise ValueError("bias phải là số, threshold là số trong khoảng (0, 1)")
        if not _number(bias) or not _number(threshold) or not 0 < threshold < 1:
            raise ValueError("bias phải là số, threshold là số trong khoảng (0, 1)")
        return Gate(
            {k: float(v) for k, v in weights.items()}, float(bias), float(threshold), str(data.get("data_hash", ""))
        )


def _number(value: object) -> bool:
    """A finite number, not a bool (JSON allows NaN and Infinity, which would make every score NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def data_hash(examples: Iterable[tuple[str, bool]]) -> str:
    """A short hash of the training examples (text and label), order-independent."""
    h = hashlib.sha256()
    for text, law in sorted(examples):
        h.update(f"{int(law)}\t{text}\n".encode())
    return h.hexdigest()[:16]


def train(examples: Sequence[tuple[str, bool]], threshold: float = 0.5) -> Gate:
    """Fit the gate on (question, asks-for-law) pairs; deterministic for the same examples."""
    rows = sorted({(t.strip(), law) for t, law in examples if t.strip()})
    data = [(features(t), law) for t, law in rows]
    positives = sum(1 for _, law in data if law) or 1
    negatives = (len(data) - positives) or 1
    weight_of = {True: len(data) / (2 * positives), False: len(data) / (2 * negatives)}
    weights: dict[str, float] = {}
    squares: dict[str, float] = {}
    bias, bias_sq = 0.0, 1e-8
    order = list(range(len(data)))
    rng = random.Random(SEED)  # noqa: S311 (a reproducible shuffle, not a secret)
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for i in order:
            feats, law = data[i]
            if not feats:
                continue
            scale = 1.0 / math.sqrt(len(feats))
            p = _sigmoid(bias + scale * sum(weights.get(f, 0.0) for f in feats))
            g = (p - (1.0 if law else 0.0)) * weight_of[law]
            for f in feats:
                w = weights.get(f, 0.0)
                grad = g * scale + L2 * w
                sq = squares.get(f, 1e-8) + grad * grad
                squares[f] = sq
                weights[f] = w - RATE * grad / math.sqrt(sq)
            bias_sq += g * g
            bias -= RATE * g / math.sqrt(bias_sq)
    return Gate(weights, bias, threshold, data_hash(rows))


# Categories of the labelled question files (tests/data/eval/*.tsv, column ``note``) that ask for legal advice.
LAW_NOTES: Final = frozenset({"penalty", "inheritance-property", "eligibility", "legal-advice"})


def content_examples(
    law: Mapping[str, Sequence[str]], do: Sequence[str], procedures: Iterable[Procedure]
) -> list[tuple[str, bool]]:
    """The training examples a content set holds: its law and do examples, and its procedures' names, aliases
    and examples (short topic words are how people ask to *do* something)."""
    out = [(t, True) for examples in law.values() for t in examples]
    out += [(t, False) for t in do]
    out += [(t, False) for p in procedures for t in (p.name, *p.aliases, *p.examples)]
    return out


# A row noted only "oos" (dev.tsv) is outside the catalogue but may ask what the law says ("phạt bao nhiêu")
# as well as for another service: it would teach the gate that a fine's amount is a "do" question.
UNLABELLED_NOTES: Final = frozenset({"oos"})


def tsv_examples(rows: Iterable[Sequence[str]]) -> list[tuple[str, bool]]:
    """Examples from a labelled question file (query, expected, note): law when the note is a legal category;
    rows noted only as out of scope are left out (see ``UNLABELLED_NOTES``)."""
    return [
        (row[0], len(row) > 2 and row[2] in LAW_NOTES)
        for row in rows
        if row and row[0].strip() and not (len(row) > 2 and row[2] in UNLABELLED_NOTES)
    ]


def cross_check(examples: Sequence[tuple[str, bool]], folds: int = 5) -> tuple[int, int, int, int]:
    """Learn ``folds`` times, each without one fold of the examples, and test on it: (law questions caught,
    law questions tested, do questions flagged as law, do questions tested)."""
    rows = sorted({(t.strip(), law) for t, law in examples if t.strip()})
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)  # noqa: S311 (a reproducible split, not a secret)
    caught = law_seen = flagged = do_seen = 0
    for f in range(folds):
        held = set(order[f::folds])
        trained = train([r for i, r in enumerate(rows) if i not in held])
        for i in held:
            text, law = rows[i]
            said = trained.is_law(text)
            if law:
                law_seen += 1
                caught += said
            else:
                do_seen += 1
                flagged += said
    return caught, law_seen, flagged, do_seen


def dumps(gate: Gate, content_hash: str = "", sources: Mapping[str, int] | None = None) -> str:
    """The weights file: the gate, the hash of the content's own examples (for ``validate``), and the sources."""
    data = gate.as_json() | {"content_hash": content_hash, "sources": dict(sources or {})}
    return json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n"
