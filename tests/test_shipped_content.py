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
    return result.replies[-1].text


def test_identity_card_fees_after_the_online_discount_ended(shipped: Content) -> None:
    text = payment_text(shipped, "cap-doi-can-cuoc", datetime(2026, 11, 28, tzinfo=VIETNAM_TZ))
    for amount in ("30.000 đồng", "50.000 đồng", "70.000 đồng"):
        assert amount in text
    assert "15.000" not in text and "35.000" not in text, "the 2025 discount rows are history"
    assert text.count("Được miễn:") == 1, "shared exemptions are listed once"
    assert texts.FEE_UNPAID in text


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
    assert "Khai sinh quá 60 ngày" in text, "the fee note is shown with the rows"
    assert texts.SAFETY in text
