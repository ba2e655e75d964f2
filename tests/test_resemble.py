"""The last try before "tôi chưa hiểu": a described situation picks the choice whose ways of saying it resembles."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot import texts
from bot.content import load
from bot.engine import Content, Inbound, Position, Session, step
from bot.resemble import Resemblance
from tests.conftest import ROOT

NOW = datetime(2026, 12, 3, 10, 0)


def _no(tokens: tuple[str, ...]) -> bool:
    return "khong" in tokens


def test_the_choice_whose_phrase_shares_the_rare_words_is_picked() -> None:
    still = ("van", "khong", "vo", "duoc")
    phrases = {
        "ok": [("da", "vo", "duoc"), ("dang", "nhap", "xong")],
        "still": [still, ("app", "van", "vang", "ra"), ("van", "quay", "vong", "vong")],
    }
    model = Resemblance.of([p for ps in phrases.values() for p in ps])
    choices = list(phrases.items())
    # "cứ văng ra hoài": no phrase holds it, one phrase shares its rare words
    assert model.choice(("cu", "vang", "ra", "hoai"), choices, _no) == ("still", ())
    # one shared word is chance, not likeness
    assert model.choice(("troi", "vang"), choices, _no) == (None, ())
    assert model.choice((), choices, _no) == (None, ())


def test_two_choices_alike_are_asked_about_not_guessed() -> None:
    phrases = {"a": [("nop", "tai", "xa", "gan")], "b": [("nop", "tai", "xa", "xa")]}
    model = Resemblance.of([p for ps in phrases.values() for p in ps] + [("khac",)] * 20)
    cid, close = model.choice(("nop", "tai", "xa", "nha"), list(phrases.items()), _no)
    assert cid is None
    assert set(close) == {"a", "b"}


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(Path(ROOT))


def _at(content: Content, proc: str, step_id: str, text: str) -> tuple[str | None, str]:
    here = Position(proc, step_id)
    result = step(content, Session(position=here, history=(here,)), Inbound("test", "u1", text=text), NOW)
    pos = result.session.position
    return (pos.step if pos else None), result.replies[0].text


def test_a_resembled_choice_is_recorded_for_officials_without_personal_numbers(shipped: Content) -> None:
    here = Position("tach-ho", "dang-nhap-lai")
    text = "cứ văng ra hoài, số tui 0912345678"
    result = step(shipped, Session(position=here, history=(here,)), Inbound("test", "u1", text=text), NOW)
    guessed = [e for e in result.events if e.type == "choice-resembled"]
    assert len(guessed) == 1
    assert guessed[0].detail["choice"] == "o:van-chua"
    assert "0912345678" not in str(guessed[0].detail) and "vang ra" in str(guessed[0].detail["text"])


@pytest.mark.parametrize(
    ("proc", "step_id", "text", "label"),
    [
        ("tach-ho", "dang-nhap-lai", "cứ văng ra hoài", "Vẫn chưa được"),
        ("tach-ho", "dang-nhap-lai", "nó cứ xoay xoay rồi văng ra", "Vẫn chưa được"),
        ("khai-bao-tam-vang", "hoi-truong-hop", "lên Sài Gòn phụ hồ", "Đi làm, đi học, việc riêng"),
    ],
)
def test_a_described_situation_goes_where_its_button_goes(
    shipped: Content, proc: str, step_id: str, text: str, label: str
) -> None:
    flow = shipped.catalogue.flows[proc]
    option = next(o for o in flow.step(step_id).options if o.label == label)  # type: ignore[union-attr]
    assert _at(shipped, proc, step_id, text)[0] == _at(shipped, proc, step_id, label)[0] == option.next


@pytest.mark.parametrize(
    "text",
    ["tui đang chở hàng ngoài chợ", "hôm nay trời mưa quá", "chờ tui xíu", "ủa sao kỳ vậy ta"],
)
def test_talk_about_something_else_moves_nobody(shipped: Content, text: str) -> None:
    """At every choice step of two procedures, a message about something else leaves the citizen where they are."""
    for proc in ("tach-ho", "dang-ky-tam-tru"):
        for s in shipped.catalogue.flows[proc].steps:
            if s.kind == "choice":
                assert _at(shipped, proc, s.id, text)[0] == s.id, (proc, s.id, text)


def test_a_question_is_not_a_yes(shipped: Content) -> None:
    """ "có" inside "bao lâu thì có kết quả" does not answer the step's yes/no question; "ok, …" still does."""
    assert _at(shipped, "tach-ho", "dang-nhap-lai", "bao lâu thì có kết quả")[0] == "dang-nhap-lai"
    assert _at(shipped, "tach-ho", "gioi-thieu", "bao lâu thì có kết quả")[0] == "gioi-thieu"
    moved = _at(shipped, "tach-ho", "gioi-thieu", "ok, mấy ngày thì có vậy")[0]
    assert moved == _at(shipped, "tach-ho", "gioi-thieu", "Tiếp tục")[0] != "gioi-thieu"


def test_not_understood_stays_short_when_nothing_resembles(shipped: Content) -> None:
    assert _at(shipped, "tach-ho", "dang-nhap-lai", "hôm nay trời mưa quá")[1] == texts.NOT_UNDERSTOOD_STEP
