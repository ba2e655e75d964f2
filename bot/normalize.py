"""Vietnamese text normalisation for matching: one function for catalogue strings and citizen messages.

The pipeline (matching.md §6): NFC → lowercase → punctuation and emoji out →
leftover Telex/VNI keystrokes repaired (guarded) → diacritics folded (đ→d) →
digits to number words → the officials' abbreviation table → single spaces.
The original text is kept elsewhere for display; this is only the match key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from typing import Final

_WORD: Final = re.compile(r"[0-9a-z]+")
_DIGITS: Final = re.compile(r"\d")
_UNICODE_WORD: Final = re.compile(r"\w+")

# A folded Vietnamese syllable: optional onset, 1-3 vowels, optional final consonant.
_SYLLABLE: Final = re.compile(
    r"^(ngh|ng|nh|gh|gi|kh|ph|th|tr|ch|qu|[bcdghklmnpqrstvx])?[aeiouy]{1,3}(ch|nh|ng|c|m|n|p|t)?$"
)
# A doubled vowel or "w" anywhere (searched), or a tone key at the end after a vowel (checked by hand:
# "[aeiouy][a-z]*[sfrxj]$" as a search would rescan the rest of the word from every vowel).
_TELEX_HINT: Final = re.compile(r"dd|aa|ee|oo|aw|ow|uw|w")
_VOWELS: Final = frozenset("aeiouy")
_TELEX_VOWELS: Final = (("dd", "d"), ("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"))
_VNI: Final = re.compile(r"[a-z][1-9]|[1-9][a-z]")

NUMBER_WORDS: Final[Mapping[str, str]] = {
    "1": "mot",
    "2": "hai",
    "3": "ba",
    "4": "bon",
    "5": "nam",
    "6": "sau",
    "7": "bay",
    "8": "tam",
    "9": "chin",
    "10": "muoi",
}


def nfc(text: str) -> str:
    """Unicode NFC, with the look-alike eth mapped to đ."""
    return unicodedata.normalize("NFC", text).replace("ð", "đ").replace("Ð", "Đ")


def is_syllable(word: str) -> bool:
    """Whether a folded word has the shape of one Vietnamese syllable."""
    return bool(_SYLLABLE.match(word))


def repair_keystrokes(token: str) -> str:
    """Undo Telex ("ddawng kys") or VNI ("d9a8ng ky1") typed with the Vietnamese keyboard off.

    Only ASCII tokens with a keystroke hint whose repaired form is one Vietnamese
    syllable are changed; the result is already folded (no diacritics).
    """
    if not token.isascii() or not token.isalnum():
        return token
    # Two characters ("a1", "b2") are licence classes, not VNI.
    if len(token) > 2 and _VNI.search(token) and any(ch.isalpha() for ch in token):
        bare = "".join(ch for ch in token if not ch.isdigit())
        return bare if is_syllable(bare) else token
    tone_key = token[-1] in "sfrxj" and not _VOWELS.isdisjoint(token[:-1])
    if not token.isalpha() or not (tone_key or _TELEX_HINT.search(token)):
        return token
    word = token
    if word[-1] in "sfrxj" and len(word) > 1:
        word = word[:-1]
    for keys, letter in _TELEX_VOWELS:
        word = word.replace(keys, letter)
    word = word.replace("w", "u")
    return word if word != token and is_syllable(word) else token


def _fold_table() -> dict[int, str | None]:
    """Every precomposed Latin letter to its base letter, combining marks to nothing, đ/ð to d."""
    table: dict[int, str | None] = {}
    for code in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        base = "".join(ch for ch in unicodedata.normalize("NFD", chr(code)) if not unicodedata.combining(ch))
        if base != chr(code) and base.isascii():
            table[code] = base.lower()
    for code in range(0x0300, 0x0370):
        table[code] = None
    for ch in "đĐðÐ":
        table[ord(ch)] = "d"
    return table


_FOLD: Final = _fold_table()


def fold(text: str) -> str:
    """Lowercase ASCII without diacritics, punctuation or emoji; words separated by one space.

    Folding makes NFC/NFD input and old/new tone placement ("hòa"/"hoà") equal.
    """
    return " ".join(fold_words(text))


def fold_words(text: str) -> list[str]:
    """The words of ``fold(text)``."""
    return _WORD.findall(text.lower().translate(_FOLD))


def expand(words: list[str], table: Mapping[str, str], longest: int) -> list[str]:
    """Replace abbreviations (one or more folded words) by their expansion, longest match first."""
    starts = _starts(table)
    if table.keys().isdisjoint(words) and starts.isdisjoint(words):
        return words
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] not in table and words[i] not in starts:
            out.append(words[i])
            i += 1
            continue
        for n in range(min(longest, len(words) - i), 0, -1):
            key = " ".join(words[i : i + n])
            if key in table:
                out += table[key].split()
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def replace_exact(text: str, exact: Mapping[str, str]) -> str:
    """Words typed with exactly these diacritics ("hông") replaced before folding (so "hỏng" stays)."""
    if not exact:
        return text
    lowered = nfc(text).lower()
    if not any(key in lowered for key in exact):  # the common case, checked cheaply
        return text
    return _UNICODE_WORD.sub(lambda m: exact.get(m.group(0), m.group(0)), lowered)


def normalize(
    text: str,
    table: Mapping[str, str],
    known: Collection[str] = (),
    repair: bool = True,
    exact: Mapping[str, str] | None = None,
) -> str:
    """The match key of a text.

    ``table`` maps folded abbreviations to folded expansions and ``exact`` lowercase words
    with their diacritics to folded expansions; ``known`` words are never treated as
    keystroke leftovers; ``repair=False`` skips that step (catalogue text).
    """
    return " ".join(normalize_words(text, table, known, repair, exact))


def normalize_words(
    text: str,
    table: Mapping[str, str],
    known: Collection[str] = (),
    repair: bool = True,
    exact: Mapping[str, str] | None = None,
) -> list[str]:
    """The words of ``normalize(text, ...)``."""
    text = replace_exact(text, exact or {})
    words = fold_words(text)
    if repair:
        words = [w if w in table or w in known else repair_keystrokes(w) for w in words]
    if _DIGITS.search(text):
        words = [NUMBER_WORDS.get(w, w) for w in words]
    return expand(words, table, _longest(table))


# Per abbreviation table: (the table itself, first words of multi-word keys, most words in a key).
# Keyed by id() but checked with ``is``, so a new table reusing a freed table's id is never confused.
_TABLE_INFO: dict[int, tuple[Mapping[str, str], frozenset[str], int]] = {}


def _info(table: Mapping[str, str]) -> tuple[frozenset[str], int]:
    entry = _TABLE_INFO.get(id(table))
    if entry is None or entry[0] is not table:
        if len(_TABLE_INFO) > 16:  # old content versions: forget them
            _TABLE_INFO.clear()
        starts = frozenset(k.split(" ", 1)[0] for k in table if " " in k)
        longest = max((k.count(" ") + 1 for k in table), default=1)
        entry = (table, starts, longest)
        _TABLE_INFO[id(table)] = entry
    return entry[1], entry[2]


def _starts(table: Mapping[str, str]) -> frozenset[str]:
    """First words of the multi-word abbreviation keys."""
    return _info(table)[0]


def _longest(table: Mapping[str, str]) -> int:
    """The most words in one abbreviation key."""
    return _info(table)[1]


def catalogue_words(
    texts: Iterable[str], table: Mapping[str, str], exact: Mapping[str, str] | None = None
) -> list[list[str]]:
    """``normalize_words(text, table, repair=False, exact=exact)`` for many catalogue texts (index building)."""
    findall, fold_table, digits = _WORD.findall, _FOLD, _DIGITS.search
    starts, longest, keys = _starts(table), _longest(table), table.keys()
    out = []
    for text in texts:
        if exact:
            text = replace_exact(text, exact)
        words = findall(text.lower().translate(fold_table))
        if digits(text):
            words = [NUMBER_WORDS.get(w, w) for w in words]
        if not (keys.isdisjoint(words) and starts.isdisjoint(words)):
            words = expand(words, table, longest)
        out.append(words)
    return out


def word_count(text: str) -> int:
    """How many words a citizen typed (before abbreviations are expanded)."""
    return len(fold_words(text))
