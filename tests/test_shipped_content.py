"""The shipped content: fees the bot states come from the catalogue rows in force on the day."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot import texts
from bot.content import load
from bot.engine import Content, Inbound, Position, Session, step
from bot.settings import VIETNAM_TZ
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(ROOT)


def payment_text(content: Content, proc_id: str, when: datetime) -> str:
    flow = content.catalogue.flow(proc_id)
    assert flow is not None
    pay = next(s for s in flow.steps if s.kind == "payment")
    result = step(content, Session(position=Position(proc_id, pay.id)), Inbound("t", "u", text="lặp lại"), when)
    return "\n\n".join(r.text for r in result.replies)  # what to do, the fee, then safety: several messages


def test_identity_card_fees_in_2026_are_half_for_every_channel(shipped: Content) -> None:
    text = payment_text(shipped, "cap-doi-can-cuoc", datetime(2026, 11, 28, tzinfo=VIETNAM_TZ))
    for amount in ("15.000 đồng", "25.000 đồng", "35.000 đồng", "mức đầy đủ 70.000 đồng", "miễn phí"):
        assert amount in text
    assert text.count("Được miễn:") == 1, "shared exemptions are listed once"
    assert texts.FEE_UNPAID in text
    later = payment_text(shipped, "cap-doi-can-cuoc", datetime(2027, 1, 4, tzinfo=VIETNAM_TZ))
    for amount in ("30.000 đồng", "50.000 đồng", "70.000 đồng"):
        assert amount in later
    assert "15.000" not in later and "35.000" not in later, "the discount rows are history in 2027"


def test_identity_card_discount_applied_in_2025(shipped: Content) -> None:
    text = payment_text(shipped, "cap-doi-can-cuoc", datetime(2025, 6, 1, tzinfo=VIETNAM_TZ))
    assert "nộp trực tuyến: 15.000 đồng" in text and "nộp tại quầy: 30.000 đồng" in text


def test_temporary_residence_fees(shipped: Content) -> None:
    text = payment_text(shipped, "dang-ky-tam-tru", datetime(2026, 11, 28, tzinfo=VIETNAM_TZ))
    assert "nộp trực tuyến: 7.000 đồng/lần, nộp tại quầy: 15.000 đồng/lần" in text
    assert "Thông tư 75/2022/TT-BTC" in text


def test_free_procedure_does_not_warn_about_unpaid_dossiers(shipped: Content) -> None:
    text = payment_text(shipped, "dang-ky-khai-sinh", datetime(2026, 11, 28, tzinfo=VIETNAM_TZ))
    assert "miễn phí" in text
    assert texts.FEE_UNPAID not in text
    assert "Khai sinh quá hạn" in text, "the fee note is shown with the rows"
    assert texts.SAFETY in text


TODAY = datetime(2026, 11, 28, tzinfo=VIETNAM_TZ)
IN_2025 = datetime(2025, 6, 1, tzinfo=VIETNAM_TZ)

# Every fee procedures-facts.md confirms, as the bot must state it at the payment step.
# (procedure, day, snippets that must all appear in the payment reply)
CONFIRMED_FEES = [
    ("dang-ky-thuong-tru", TODAY, ["nộp trực tuyến: 10.000 đồng", "nộp tại quầy: 20.000 đồng", "75/2022/TT-BTC"]),
    ("dang-ky-tam-tru", TODAY, ["nộp trực tuyến: 7.000 đồng", "nộp tại quầy: 15.000 đồng"]),
    ("dang-ky-tam-tru", TODAY, ["nộp trực tuyến: 5.000 đồng/người", "nộp tại quầy: 10.000 đồng/người"]),
    ("gia-han-tam-tru", TODAY, ["nộp trực tuyến: 7.000 đồng", "nộp tại quầy: 15.000 đồng"]),
    ("gia-han-tam-tru", TODAY, ["nộp trực tuyến: 5.000 đồng/người", "nộp tại quầy: 10.000 đồng/người"]),
    ("tach-ho", TODAY, ["nộp trực tuyến: 5.000 đồng", "nộp tại quầy: 10.000 đồng"]),
    ("cap-doi-can-cuoc", TODAY, ["15.000 đồng", "25.000 đồng", "mức đầy đủ 70.000 đồng", "64/2025/TT-BTC", "miễn phí"]),
    ("cap-doi-can-cuoc", IN_2025, ["nộp trực tuyến: 15.000 đồng", "nộp trực tuyến: 25.000 đồng", "35.000 đồng"]),
    ("ly-lich-tu-phap", TODAY, ["200.000 đồng", "100.000 đồng", "5.000 đồng", "16/2025/TT-BTC"]),
    ("ly-lich-tu-phap", IN_2025, ["nộp trực tuyến: 170.000 đồng", "nộp trực tuyến: 80.000 đồng"]),
    ("cap-ho-chieu", TODAY, ["200.000 đồng", "400.000 đồng"]),
    (
        "cap-ho-chieu",
        IN_2025,
        ["nộp trực tuyến: 180.000 đồng", "nộp tại quầy: 200.000 đồng", "nộp trực tuyến: 360.000 đồng"],
    ),
    ("chung-thuc-ban-sao", TODAY, ["2.000 đồng", "1.000 đồng", "200.000 đồng", "226/2016/TT-BTC"]),
    ("chung-thuc-chu-ky", TODAY, ["10.000 đồng", "226/2016/TT-BTC"]),
    ("dang-ky-khai-sinh", TODAY, ["miễn phí", "Luật Hộ tịch"]),
    ("dang-ky-khai-tu", TODAY, ["miễn phí", "Luật Hộ tịch"]),
    ("dang-ky-ket-hon", TODAY, ["miễn phí", "Luật Hộ tịch"]),
]


@pytest.mark.parametrize(("proc_id", "when", "snippets"), CONFIRMED_FEES)
def test_confirmed_fees_are_stated_as_the_reference_gives_them(
    shipped: Content, proc_id: str, when: datetime, snippets: list[str]
) -> None:
    text = payment_text(shipped, proc_id, when)
    missing = [s for s in snippets if s not in text]
    assert not missing, f"{proc_id} on {when:%Y-%m-%d} lacks {missing}:\n{text}"


def test_passport_discount_is_history_in_2026(shipped: Content) -> None:
    text = payment_text(shipped, "cap-ho-chieu", TODAY)
    assert "180.000" not in text and "360.000" not in text


def test_every_payment_step_carries_the_safety_essentials(shipped: Content) -> None:
    for proc in shipped.catalogue.procedures:
        flow = shipped.catalogue.flow(proc.id)
        assert flow is not None
        for pay in (s for s in flow.steps if s.kind == "payment"):
            result = step(
                shipped, Session(position=Position(proc.id, pay.id)), Inbound("t", "u", text="lặp lại"), TODAY
            )
            text = "\n\n".join(r.text for r in result.replies)
            assert (texts.SAFETY_COUNTER if pay.where == "counter" else texts.SAFETY) in text, f"{proc.id}/{pay.id}"


def test_all_catalogue_ids_are_present() -> None:
    # the ids of the shared catalogue (../shared/catalog.md), which never change
    ids = {p.id for p in load(ROOT).catalogue.procedures}
    expected = {
        "dang-ky-khai-sinh",
        "lien-thong-khai-sinh",
        "dang-ky-khai-tu",
        "dang-ky-ket-hon",
        "xac-nhan-tinh-trang-hon-nhan",
        "trich-luc-ho-tich",
        "cai-chinh-ho-tich",
        "dang-ky-thuong-tru",
        "dang-ky-tam-tru",
        "gia-han-tam-tru",
        "khai-bao-tam-vang",
        "tach-ho",
        "cap-doi-can-cuoc",
        "can-cuoc-duoi-6-tuoi",
        "tai-khoan-vneid",
        "ly-lich-tu-phap",
        "chung-thuc-ban-sao",
        "chung-thuc-chu-ky",
        "cap-ho-chieu",
        "doi-giay-phep-lai-xe",
        "cap-lai-giay-phep-lai-xe",
        "dang-ky-xe",
        "nop-phat-giao-thong",
        "dang-ky-ho-kinh-doanh",
        "giay-phep-xay-dung",
        "cap-so-do-lan-dau",
        "sang-ten-so-do",
        "tro-cap-that-nghiep",
        "cap-lai-the-bhyt",
        "gia-han-bhyt-ho-gia-dinh",
        "bhxh-mot-lan",
        "thanh-toan-truc-tuyen",
        "tra-cuu-ho-so",
        "canh-bao-lua-dao",
        "phan-anh-kien-nghi",
        # added 2026-12
        "cap-the-can-cuoc",
        "xoa-dang-ky-thuong-tru",
        "nhan-cha-me-con",
    }
    assert len(expected) == 38
    assert expected <= ids
    assert all(load(ROOT).catalogue.flow(pid) is not None for pid in expected)
