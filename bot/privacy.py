"""Pseudonymous user keys and redaction of personal numbers before anything is stored or logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from typing import Final

from cryptography.fernet import Fernet, InvalidToken

_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# "email" folded by the normaliser: punctuation became spaces ("an gmail com").
_EMAIL_FOLDED: Final = re.compile(
    r"\b[a-z0-9]+(?: [a-z0-9]+)? (?:gmail|yahoo|hotmail|outlook|icloud)(?: com)?(?: vn)?\b"
)
# A run of digits, possibly broken by spaces, dots or dashes ("0912 345 678", "0912.345.678").
_DIGITS: Final = re.compile(r"\+?\d(?:[ .\-]?\d){5,}")


def user_key(secret: bytes, channel: str, chat_user_id: str) -> str:
    """HMAC-SHA256 of channel and chat user id: stable per user, not reversible without the secret."""
    mac = hmac.new(secret, f"{channel}:{chat_user_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def _classify(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = re.sub(r"\D", "", raw)
    n = len(digits)
    if (raw.startswith("+84") or digits.startswith("84")) and n in (11, 12):
        return "<so-dien-thoai>"
    if digits.startswith("0") and n in (10, 11):
        return "<so-dien-thoai>"
    if n in (9, 12):
        return "<so-giay-to>"
    if 13 <= n <= 19:
        return "<so-the-ngan-hang>"
    return "<so-tai-khoan>"


def redact(text: str) -> str:
    """Replace CCCD/CMND, phone, e-mail, card and account numbers with placeholders."""
    text = _EMAIL.sub("<email>", text)
    text = _EMAIL_FOLDED.sub("<email>", text)
    return _DIGITS.sub(_classify, text)


class TokenFilter(logging.Filter):
    """Bot tokens travel in URLs (``/bot<id>:<secret>/method``); log records show ``bot<token>`` instead."""

    PATTERN: Final = re.compile(r"bot\d+:[A-Za-z0-9_-]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.PATTERN.search(message):
            record.msg, record.args = self.PATTERN.sub("bot<token>", message), None
        return True


def keep_tokens_out_of_http_logs() -> None:
    """httpx logs every request URL at INFO: redact tokens there, whoever configured logging."""
    for name in ("httpx", "httpcore"):
        log = logging.getLogger(name)
        if not any(isinstance(f, TokenFilter) for f in log.filters):
            log.addFilter(TokenFilter())


def _fernet(secret: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"dvc-bot outbox\0" + secret).digest()))


def seal(secret: bytes, text: str) -> str:
    """``text`` unreadable without ``secret`` (kept outside the database), for values that must be read back.

    Used only for the chat id of a reply waiting in the outbox; Fernet (AES-CBC + HMAC) from
    the ``cryptography`` package, keyed by the hash secret.
    """
    return _fernet(secret).encrypt(text.encode()).decode()


def unseal(secret: bytes, token: str) -> str | None:
    """The text ``seal`` hid, or None when the secret is wrong or the value was changed."""
    try:
        return _fernet(secret).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
