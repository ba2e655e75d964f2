"""A long message in the middle of a procedure that plainly asks about another procedure is not taken for an
answer because some of its words are in a button; one about the procedure being done, or what the step talks
about, still answers the step."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.content import load
from bot.engine import Content, Frame, Inbound, Position, Result, Session, step
from tests.conftest import ROOT

NOW = datetime(2026, 12, 3, 10, 0)


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(Path(ROOT))


def _say(content: Content, proc: str, step_id: str, text: str) -> Result:
    here = Position(proc, step_id)
    return step(content, Session(position=here, history=(here,)), Inbound("test", "u1", text=text), NOW)


def test_a_question_about_another_procedure_offers_it_and_keeps_the_step(shipped: Content) -> None:
    result = _say(
        shipped, "dang-ky-tam-tru", "hoi-cho-o", "à mà tui muốn làm hộ chiếu cho con đi du học bên Nhật thì làm sao"
    )
    assert result.session.position == Position("dang-ky-tam-tru", "hoi-cho-o")
    assert result.session.prompt is not None and result.session.prompt.kind == "switch"
    assert result.session.prompt.data[0] == "cap-ho-chieu"  # asked, not switched


@pytest.mark.parametrize(
    ("proc", "step_id", "text", "label"),
    [
        # a sibling of the procedure being done: the step's own answer about it
        (
            "dang-ky-tam-tru",
            "hoi-cho-ai",
            "cái tạm trú cũ của tui sắp hết hạn rồi, giờ muốn kéo dài thêm",
            "Tôi cần gia hạn tạm trú",
        ),
        # a procedure the step itself asks about ("Bé đã được đăng ký khai sinh chưa?")
        (
            "can-cuoc-duoi-6-tuoi",
            "hoi-khai-sinh",
            "bé nhà tui mới đẻ tháng trước, chưa đi làm giấy tờ gì hết",
            "Chưa đăng ký khai sinh",
        ),
    ],
)
def test_a_long_answer_about_what_the_step_asks_still_answers_it(
    shipped: Content, proc: str, step_id: str, text: str, label: str
) -> None:
    said, pressed = _say(shipped, proc, step_id, text), _say(shipped, proc, step_id, label)
    assert [r.text for r in said.replies] == [r.text for r in pressed.replies]
    assert said.session.prompt is None and "switch-offered" not in [e.type for e in said.events]


def test_an_answer_that_opens_with_yes_is_not_taken_for_a_question_of_law(shipped: Content) -> None:
    """However much the rest reads like the law ("không trả tiền"), "dạ em hiểu, …, tiếp ạ" goes on."""
    said = _say(shipped, "tach-ho", "gioi-thieu", "dạ em hiểu, được miễn không phải trả tiền, tiếp ạ")
    pressed = _say(shipped, "tach-ho", "gioi-thieu", "Tiếp tục")
    assert said.session.position == pressed.session.position != Position("tach-ho", "gioi-thieu")


def test_a_call_for_help_that_tells_of_a_scam_call_offers_the_scam_guide_first(shipped: Content) -> None:
    """Mid-procedure, "có người gọi điện đòi tiền" is help (the contacts) and the guide to scam calls, one tap
    away; the procedure is kept to come back to."""
    flow = shipped.catalogue.flow("gia-han-bhyt-ho-gia-dinh")
    assert flow is not None
    said = _say(shipped, "gia-han-bhyt-ho-gia-dinh", flow.start, "có người gọi điện tới đòi tui chuyển tiền")
    assert [e.type for e in said.events] == ["help"]
    first = said.replies[-1].choices[0]
    assert first.id == "p:canh-bao-lua-dao" and first.label.startswith("Xem: Nhận biết")
    tapped = step(shipped, said.session, Inbound("test", "u1", kind="choice", choice_id=first.id), NOW)
    guide = shipped.catalogue.flow("canh-bao-lua-dao")
    assert guide is not None and tapped.session.position is not None
    # seen from the step, as a guide the procedure opened: its end comes back to the same step
    assert tapped.session.position.procedure == "canh-bao-lua-dao" and tapped.session.position.step == guide.start
    assert [(f.procedure, f.step) for f in tapped.session.position.stack] == [("gia-han-bhyt-ho-gia-dinh", flow.start)]
    for plain_help in ("gặp cán bộ giúp tui với", "tôi không biết làm sao", "tôi không rành làm sao"):
        plain = _say(shipped, "gia-han-bhyt-ho-gia-dinh", flow.start, plain_help)
        assert [c.id for c in plain.replies[-1].choices] == ["resume", "cmd:menu"], plain_help  # no guide


@pytest.mark.parametrize(
    ("text", "asked", "shown"),
    [
        ("mất bao lâu vậy", ["time"], "Thời gian giải quyết thủ tục “Đăng ký khai sinh”: 1 ngày"),
        ("phi bao nhieu", ["fee"], "Đăng ký khai sinh đúng hạn: miễn phí"),
        ("làm ở đâu vậy em", ["place"], "Nơi giải quyết thủ tục “Đăng ký khai sinh”: Ủy ban nhân dân cấp xã"),
        ("lam o dau, le phi het bao nhieu", ["fee", "place"], "(cập nhật"),
    ],
)
def test_a_short_question_about_the_procedure_being_done_is_answered_from_the_catalogue(
    shipped: Content, text: str, asked: list[str], shown: str
) -> None:
    flow = shipped.catalogue.flow("dang-ky-khai-sinh")
    assert flow is not None
    result = _say(shipped, "dang-ky-khai-sinh", flow.start, text)
    assert [(e.type, e.detail) for e in result.events] == [("fact-asked", {"asked": asked})]
    assert shown in result.replies[0].text
    assert result.session.position == Position("dang-ky-khai-sinh", flow.start)  # then the step again
    assert result.replies[-1].choices  # with its buttons


def test_a_place_question_naming_the_procedure_being_done_is_answered(shipped: Content) -> None:
    flow = shipped.catalogue.flow("cap-ho-chieu")
    assert flow is not None
    result = _say(shipped, "cap-ho-chieu", flow.start, "làm hộ chiếu ở đâu")
    assert [e.type for e in result.events] == ["fact-asked"]
    assert "Nơi giải quyết thủ tục “Cấp hộ chiếu phổ thông”" in result.replies[0].text
    assert [e.type for e in _say(shipped, "cap-ho-chieu", flow.start, "làm hộ chiếu").events] == ["repeat"]


def test_inside_a_guide_a_place_question_is_not_answered_for_the_procedure(shipped: Content) -> None:
    guide = shipped.catalogue.flow("tai-khoan-vneid")
    assert guide is not None
    here = Position("tai-khoan-vneid", guide.start, (Frame("dang-ky-tam-tru", "gioi-thieu"),))
    result = step(shipped, Session(position=here, history=(here,)), Inbound("test", "u1", text="ở đâu"), NOW)
    assert "fact-asked" not in [e.type for e in result.events]


def test_a_fact_question_naming_another_procedure_is_not_answered_for_this_one(shipped: Content) -> None:
    flow = shipped.catalogue.flow("dang-ky-khai-sinh")
    assert flow is not None
    result = _say(shipped, "dang-ky-khai-sinh", flow.start, "phí làm hộ chiếu bao nhiêu")
    assert "fact-asked" not in [e.type for e in result.events]
    assert result.session.prompt is not None and result.session.prompt.kind == "switch"


def test_a_question_only_close_to_the_procedures_name_is_not_taken_for_its_name(shipped: Content) -> None:
    """ "làm trên điện thoại được không" while registering a birth showed the step again without a word, as if
    frozen; the procedure's name typed again still shows the step."""
    flow = shipped.catalogue.flow("dang-ky-khai-sinh")
    assert flow is not None
    asked = _say(shipped, "dang-ky-khai-sinh", flow.start, "lam tren dien thoai dc ko")
    assert [e.type for e in asked.events] == ["not-understood"]
    assert asked.replies[0].text.startswith("Xin lỗi, tôi chưa hiểu")
    named = _say(shipped, "dang-ky-khai-sinh", flow.start, "đăng ký khai sinh")
    assert [e.type for e in named.events] == ["repeat"]
