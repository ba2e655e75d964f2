"""Vietnamese text normalisation for matching: one function for catalogue strings and citizen messages."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Final

_NON_WORD: Final = re.compile(r"[^0-9a-z]+")
_SPACES: Final = re.compile(r"\s+")

# A small seed of chat abbreviations where the public-service sense wins.
DEFAULT_ABBREVIATIONS: Final[Mapping[str, str]] = {
    "dk": "dang ky",
    "dky": "dang ky",
    "dki": "dang ky",
    "cccd": "can cuoc cong dan",
    "cmnd": "chung minh nhan dan",
    "gplx": "giay phep lai xe",
    "lltp": "ly lich tu phap",
    "bhyt": "bao hiem y te",
    "bhxh": "bao hiem xa hoi",
    "ubnd": "uy ban nhan dan",
    "ko": "khong",
    "k": "khong",
    "hong": "khong",
    "dc": "duoc",
    "j": "gi",
    "ntn": "nhu the nao",
}


def nfc(text: str) -> str:
    """Unicode NFC, with the look-alike eth mapped to đ."""
    return unicodedata.normalize("NFC", text).replace("ð", "đ").replace("Ð", "Đ")


def fold(text: str) -> str:
    """Lowercase ASCII without diacritics, punctuation or emoji; words separated by one space.

    Folding makes NFC/NFD input and old/new tone placement ("hòa"/"hoà") equal.
    """
    text = nfc(text).lower().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", stripped)).strip()


def expand(folded: str, table: Mapping[str, str] = DEFAULT_ABBREVIATIONS) -> str:
    """Replace abbreviation words of already-folded text."""
    return " ".join(table.get(w, w) for w in folded.split())


def normalize(text: str, table: Mapping[str, str] = DEFAULT_ABBREVIATIONS) -> str:
    """The match key of a text: folded, then abbreviations expanded."""
    return expand(fold(text), table)
