"""Redaction of personal numbers before anything is stored: every kind, with and without separators."""

from __future__ import annotations

import unicodedata

import pytest

from bot.normalize import fold
from bot.privacy import TokenFilter, redact, stored_text, user_key, without_personal


@pytest.mark.parametrize(
    ("text", "placeholder"),
    [
        ("cccd 079123456789", "<so-giay-to>"),  # 12-digit CCCD
        ("CCCD: 079 123 456 789", "<so-giay-to>"),
        ("cccd 079.123.456.789", "<so-giay-to>"),
        ("cmnd 123456789", "<so-giay-to>"),  # 9-digit CMND
        ("cmnd 123-456-789", "<so-giay-to>"),
        ("sđt 0912345678", "<so-dien-thoai>"),
        ("sdt 0912 345 678", "<so-dien-thoai>"),
        ("goi 0912.345.678", "<so-dien-thoai>"),
        ("goi 0912-345-678", "<so-dien-thoai>"),
        ("so +84912345678", "<so-dien-thoai>"),
        ("so +84 912 345 678", "<so-dien-thoai>"),
        ("ban 02903822123", "<so-dien-thoai>"),  # 11-digit landline with area code
        ("the 4111111111111111", "<so-the-ngan-hang>"),
        ("the 4111 1111 1111 1111", "<so-the-ngan-hang>"),
        ("the 4111-1111-1111-1111", "<so-the-ngan-hang>"),
        ("stk 19034567890", "<so-tai-khoan>"),  # an account number that is not a phone
        ("stk 1903 4567 8901", "<so-giay-to>"),  # 12 digits cannot be told from a CCCD: still hidden
        ("tai khoan 0071000123456", "<so-the-ngan-hang>"),
        ("email lan.nguyen@gmail.com", "<email>"),
        ("email lan nguyen gmail com", "<email>"),  # as the normaliser folds it
    ],
)
def test_each_kind_of_personal_number_is_replaced(text: str, placeholder: str) -> None:
    out = redact(text)
    assert placeholder in out
    digits = "".join(ch for ch in text if ch.isdigit())
    assert not any(digits[i : i + 6] in "".join(c for c in out if c.isdigit()) for i in range(len(digits) - 5))


@pytest.mark.parametrize("text", ["lam cccd mat 3 ngay", "le phi 15000 dong", "nam 2025", "buoc 12 cua 30"])
def test_ordinary_numbers_stay(text: str) -> None:
    assert redact(text) == text


def test_user_keys_are_stable_and_do_not_reveal_the_id() -> None:
    a = user_key(b"secret", "telegram", "123456789")
    assert a == user_key(b"secret", "telegram", "123456789")
    assert a != user_key(b"other", "telegram", "123456789")
    assert a != user_key(b"secret", "zalo-bot", "123456789")
    assert "123456789" not in a and len(a) == 32


def test_the_runner_remembers_keys_per_channel_and_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import runner as runner_module
    from bot.content import ContentHolder, load
    from bot.runner import Runner
    from tests.conftest import ROOT

    monkeypatch.setattr(runner_module, "SEALED_CACHE", 2)
    runner = Runner(ContentHolder(load(ROOT), ROOT), None, b"secret")  # type: ignore[arg-type]
    for _ in range(2):  # the second time from memory
        for channel, chat in (("telegram", "1"), ("zalo-bot", "1"), ("telegram", "2"), ("zalo-oa", "3")):
            assert runner.key(channel, chat) == user_key(b"secret", channel, chat)
    assert list(runner._keys) == [("telegram", "2"), ("zalo-oa", "3")]
    runner.key("telegram", "2")  # written to again: kept over the other
    runner.key("telegram", "4")
    assert list(runner._keys) == [("telegram", "2"), ("telegram", "4")]


def test_tokens_in_log_lines_are_hidden() -> None:
    import logging

    record = logging.LogRecord(
        "httpx", logging.INFO, "", 0, "POST https://x/bot123:AbC-_9/sendMessage %s", ("ok",), None
    )
    TokenFilter().filter(record)
    assert record.getMessage() == "POST https://x/bot<token>/sendMessage ok"


@pytest.mark.parametrize(
    "text",
    [
        "email lan@cong-ty.vn nhé",
        "gửi tới nguyen.van.a+hoso@sotuphap.camau.gov.vn",
        "mail: x_y-z@abc.com.vn",
        "LAN.NGUYEN@Example.ORG",
    ],
)
def test_e_mail_addresses_on_any_domain_are_hidden(text: str) -> None:
    out = redact(text)
    assert "<email>" in out and "@" not in out


def test_stored_text_is_redacted_before_folding_and_cut_short() -> None:
    from bot.normalize import fold

    stored = stored_text("Tôi tên Lan, email lan@cong-ty.vn, sđt 0912 345 678, cần làm tạm trú", fold)
    assert "<email>" in stored and "<so-dien-thoai>" in stored
    assert "cong" not in stored and "ty vn" not in stored and "0912" not in stored
    assert "lam tam tru" in stored
    assert len(stored_text("dài " * 500, fold)) <= 200


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,
        "a@" * 500_000,
        "a." * 500_000,
        "1 " * 500_000,
        "0" * 1_000_000,
        "a a " * 250_000,
        "x@" + "y" * 999_998,
        ("a" * 60 + "@b") * 16_000,
    ],
)
def test_redaction_of_a_megabyte_of_hostile_text_finishes(text: str) -> None:
    # The time bound lives in benchmarks/regex_bench.py; here only that it ends and keeps no number.
    out = redact(text)
    assert len(out) <= len(text) + 16


def test_log_lines_lose_chat_ids_numbers_and_tokens_but_keep_addresses() -> None:
    import logging

    from bot.privacy import PrivacyFilter

    record = logging.LogRecord(
        "telegram.ext",
        logging.INFO,
        "",
        0,
        "POST https://api.telegram.org/bot123:AbC/sendMessage chat_id=%s text from %s on http://127.0.0.1:8080",
        (987654321, "lan@cong-ty.vn"),
        None,
    )
    PrivacyFilter().filter(record)
    message = record.getMessage()
    assert "987654321" not in message and "lan@" not in message and "AbC" not in message
    assert "http://127.0.0.1:8080" in message


def test_a_traceback_in_a_log_record_is_redacted_too() -> None:
    import logging
    import sys

    from bot.privacy import PrivacyFilter

    try:
        raise ValueError("chat 987654321 failed")
    except ValueError:
        record = logging.LogRecord("httpx", logging.ERROR, "", 0, "failed", (), sys.exc_info())
    PrivacyFilter().filter(record)
    assert record.exc_text is not None and "987654321" not in record.exc_text


def test_library_loggers_never_go_below_info() -> None:
    import logging

    from bot.privacy import cap_third_party_logs

    cap_third_party_logs(logging.DEBUG)
    assert not logging.getLogger("telegram.ext.ExtBot").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpcore.connection").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("httpx").isEnabledFor(logging.INFO)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Làm lại căn cước bị mất. Số CCCD của tôi là 079201234567", "Làm lại căn cước bị mất."),
        ("sđt: 0912 345 678, cho hỏi khai sinh", "cho hỏi khai sinh"),
        ("số điện thoại của em là 0912.345.678, đăng ký tạm trú", "đăng ký tạm trú"),
        ("email tui lan@cong-ty.vn, hỏi hộ chiếu", "hỏi hộ chiếu"),
        ("làm lại căn cước 079201234567", "làm lại căn cước"),  # nothing marks "căn cước" as the number's
        ("con tôi 15 tuổi làm căn cước", "con tôi 15 tuổi làm căn cước"),  # ages and years stay
    ],
)
def test_personal_numbers_and_their_lead_in_leave_a_question(text: str, kept: str) -> None:
    assert without_personal(text, fold).replace(" ,", ",").strip(" ,") == kept


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("tôi tên Nguyễn Văn An, số cccd 079201234567", "tôi tên <ho-ten>, số cccd <so-giay-to>", "Nguyễn"),
        ("Tên em là Trần Thị Bình", "Tên em là <ho-ten>", "Bình"),
        ("toi ten le van tam", "toi ten <ho-ten>", "tam"),
        ("Họ và tên: Võ Thị Lan", "Họ và tên: <ho-ten>", "Lan"),
        ("họ tên là Phạm Minh", "họ tên là <ho-ten>", "Minh"),
    ],
)
def test_a_name_the_citizen_introduces_is_redacted(text: str, kept: str, gone: str) -> None:
    assert redact(text) == kept
    assert gone.lower() not in stored_text(text, fold)


def test_the_word_name_in_a_procedure_is_not_a_name() -> None:
    assert redact("đổi tên cho con") == "đổi tên cho con"
    assert redact("cải chính họ tên trong giấy khai sinh") == "cải chính họ tên trong giấy khai sinh"


@pytest.mark.parametrize(
    "text",
    [
        unicodedata.normalize("NFD", "tôi tên Nguyễn Văn Ánh, hỏi vay vốn"),  # decomposed letters
        "tôi tên\nNguyễn Văn Ánh",  # the name on the next line
        "toi ten lanh",  # "la…" starting the name is not the word "là"
        "tôi tên Nguyễn Thị Ngọc Minh Ánh",  # five words
    ],
)
def test_no_part_of_an_introduced_name_is_stored(text: str) -> None:
    stored = stored_text(text, fold)
    assert "<ho-ten>" in stored and "anh" not in stored.replace("<ho-ten>", "") and "lanh" not in stored
