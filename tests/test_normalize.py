"""Normalisation: one match key however Vietnamese is typed (diacritics or not, NFD, old tone marks, Telex/VNI, abbreviations)."""

from __future__ import annotations

import unicodedata

import pytest

from bot.content import load
from bot.normalize import NUMBER_WORDS, fold, is_syllable, normalize, repair_keystrokes, word_count
from tests.conftest import ROOT

SHIPPED = load(ROOT).catalogue
TABLE = SHIPPED.abbreviations
EXACT = SHIPPED.exact_abbreviations


@pytest.mark.parametrize("short", sorted(TABLE))
def test_every_abbreviation_entry_expands_inside_a_sentence(short: str) -> None:
    full = TABLE[short]
    assert normalize(f"toi muon {short} nhe", TABLE) == f"toi muon {full} nhe"
    # the typed form with diacritics, if the table key was written with them, gives the same key
    assert normalize(short.upper(), TABLE) == full


def test_the_table_keeps_the_public_service_sense() -> None:
    for short, full in {
        "dk": "dang ky",
        "cccd": "can cuoc cong dan",
        "gplx": "giay phep lai xe",
        "lltp": "ly lich tu phap",
        "bhxh": "bao hiem xa hoi",
        "bhyt": "bao hiem y te",
        "hk": "ho khau",
        "ubnd": "uy ban nhan dan",
        "sdt": "so dien thoai",
        "ko": "khong",
        "k": "khong",
        "dc": "duoc",
        "j": "gi",
        "ntn": "nhu the nao",
        "hs": "ho so",
    }.items():
        assert TABLE[short] == full, short


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("thẻ bị hỏng", "hong"),  # "hông" (không, Southern) folds to the same word: not in the table
        ("thay đổi địa chỉ", "dia"),  # "dìa" (về) likewise
        ("thu nhập cá nhân", "ca"),  # "ca" is not short for công an
        ("diện tích đất", "dien"),
    ],
)
def test_abbreviations_never_swallow_real_words_that_fold_alike(text: str, kept: str) -> None:
    assert kept in normalize(text, TABLE).split()


@pytest.mark.parametrize("short", sorted(EXACT))
def test_every_exact_entry_expands_only_when_typed_with_its_diacritics(short: str) -> None:
    full = EXACT[short]
    assert normalize(f"lam {short} nha", TABLE, exact=EXACT) == f"lam {full} nha"
    assert normalize(f"lam {short.upper()} nha", TABLE, exact=EXACT) == f"lam {full} nha"


def test_southern_hong_is_khong_but_hong_broken_stays() -> None:
    assert normalize("làm căn cước được hông", TABLE, exact=EXACT).endswith("duoc khong")
    assert normalize("thẻ bị hỏng", TABLE, exact=EXACT) == "the bi hong"
    assert normalize("thay đổi địa chỉ", TABLE, exact=EXACT) == "thay doi dia chi"
    assert normalize("dìa quê", TABLE, exact=EXACT) == "ve que"


def test_diacritic_variants_of_a_key_are_one_entry() -> None:
    assert normalize("đk tạm trú", TABLE) == normalize("dk tam tru", TABLE) == "dang ky tam tru"
    assert normalize("SĐT", TABLE) == "so dien thoai"


def test_multi_word_abbreviations_win_over_single_words() -> None:
    assert normalize("lam lai ca vet", TABLE) == "lam lai giay dang ky xe"


def test_nfd_input_equals_nfc() -> None:
    text = "Đăng ký khai sinh cho bé"
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert fold(nfd) == fold(text) == "dang ky khai sinh cho be"


@pytest.mark.parametrize(("old", "new"), [("hoà", "hòa"), ("thuỷ", "thủy"), ("khoẻ", "khỏe"), ("quý", "qúy")])
def test_old_and_new_tone_placement_fold_alike(old: str, new: str) -> None:
    assert fold(old) == fold(new)


def test_eth_lookalike_and_punctuation_and_emoji() -> None:
    assert fold("ðăng ký!!! 👍 (tạm trú)...") == "dang ky tam tru"
    assert fold("   ") == ""


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("ddawng kys tamj truss", "dang ky tam truss"),  # "truss" is not one syllable after repair: kept
        ("ddawng kys khai sinh", "dang ky khai sinh"),
        ("d9a8ng ky1 ta5m tru1", "dang ky tam tru"),
        ("lamf laij cccd", "lam lai can cuoc cong dan"),
        ("hoj chieeu", "ho chieu"),
    ],
)
def test_telex_and_vni_leftovers_are_repaired(typed: str, key: str) -> None:
    assert normalize(typed, TABLE) == key


@pytest.mark.parametrize("word", ["facebook", "vneid", "zalo", "covid19", "b2", "a1", "otp", "dang", "khong"])
def test_words_that_are_not_keystroke_leftovers_stay(word: str) -> None:
    assert repair_keystrokes(word) == word


def test_known_words_are_never_repaired() -> None:
    assert normalize("xoong", TABLE) == "xong"  # unknown: Telex "oo" read as ô
    assert normalize("xoong", TABLE, known={"xoong"}) == "xoong"


def test_number_words() -> None:
    assert normalize("bhxh 1 lan", TABLE) == normalize("bảo hiểm xã hội một lần", TABLE) == "bao hiem xa hoi mot lan"
    assert {NUMBER_WORDS[str(n)] for n in range(1, 11)} >= {"mot", "hai", "ba", "muoi"}
    assert normalize("2025", TABLE) == "2025"


def test_syllable_shape() -> None:
    for ok in ["nghieng", "khuyen", "tru", "gi", "qua", "a", "uong"]:
        assert is_syllable(ok), ok
    for bad in ["truss", "facebook", "dkkd", "xyz", "ks"]:
        assert not is_syllable(bad), bad


def test_word_count_is_before_expansion() -> None:
    assert word_count("bhxh") == 1
    assert word_count("lam cccd") == 2
    assert word_count("Đăng ký, tạm trú!") == 4


def test_a_new_table_at_a_reused_address_is_not_mistaken_for_the_old_one() -> None:
    old = {"ab cd": "x"}
    assert normalize("ab cd", old) == "x"
    new = {"mm nn": "y", "pp qq rr": "z"}
    from bot import normalize as module

    module._TABLE_INFO[id(new)] = module._TABLE_INFO[id(old)]  # what a reused id() would look like
    assert normalize("mm nn pp qq rr", new) == "y z"
