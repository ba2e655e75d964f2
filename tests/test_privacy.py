"""Redaction of personal numbers before anything is stored: every kind, with and without separators."""

from __future__ import annotations

import pytest

from bot.privacy import TokenFilter, redact, user_key


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


def test_tokens_in_log_lines_are_hidden() -> None:
    import logging

    record = logging.LogRecord(
        "httpx", logging.INFO, "", 0, "POST https://x/bot123:AbC-_9/sendMessage %s", ("ok",), None
    )
    TokenFilter().filter(record)
    assert record.getMessage() == "POST https://x/bot<token>/sendMessage ok"
