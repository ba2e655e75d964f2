"""Pseudonymous user keys, redaction of personal numbers, and sealing of the few secrets we must read back.

Every pattern here runs on text a stranger typed, so each one is linear-time: no
nested unbounded quantifiers, and patterns that could restart at every position
are anchored to the start of a word by a look-behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Final

from cryptography.fernet import Fernet, InvalidToken

# Any domain, not only webmail. The look-behind lets a match start only at the beginning of a run
# of address characters, so a long run without "@" costs one scan, not one scan per position;
# the local part is bounded as in RFC 5321 (64).
_EMAIL: Final = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
# An address typed without "@" the way people dictate it ("lan gmail com"), and the form the
# normaliser leaves when it already removed the punctuation.
_EMAIL_FOLDED: Final = re.compile(
    r"\b[a-z0-9]{1,64}(?: [a-z0-9]{1,64})? (?:gmail|yahoo|hotmail|outlook|icloud)(?: com)?(?: vn)?\b"
)
# A run of digits, possibly broken by spaces, dots or dashes ("0912 345 678", "0912.345.678").
_DIGITS: Final = re.compile(r"\+?\d(?:[ .\-]?\d){5,}")
_NOT_DIGIT: Final = re.compile(r"\D")
# A name the citizen introduces ("tôi tên Nguyễn Văn A", "tên em là Lan", "họ tên: Trần Thị B"), typed with
# or without diacritics: the lead-in stays, up to five words after it go. Bounded repetitions only, and a
# lead-in starts at a word boundary, so the scan stays linear.
_SELF_WORD: Final = r"(?:tôi|toi|tui|em|mình|minh|con|cháu|chau|tao)"
_NAME_LEAD: Final = re.compile(
    r"(?i)(?<!\w)(?:"
    rf"{_SELF_WORD}\s+tên(?:\s+là\b)?|{_SELF_WORD}\s+ten(?:\s+la\b)?"
    rf"|tên\s+(?:của\s+)?{_SELF_WORD}\s+là\b|ten\s+(?:cua\s+)?{_SELF_WORD}\s+la\b"
    r"|h[ọo]\s+(?:v[àa]\s+)?t[êe]n\s*(?::|l[àa]\b)"  # "họ tên: …", "họ tên là …" (not "cải chính họ tên")
    r")[\s:]{0,8}"
    r"([^\W\d_]{1,20}(?:\s{1,4}[^\W\d_]{1,20}){0,4})"
)
# The placeholders redact() writes; stored text keeps them as they are.
PLACEHOLDERS: Final = frozenset(
    {"<email>", "<so-dien-thoai>", "<so-giay-to>", "<so-the-ngan-hang>", "<so-tai-khoan>", "<ho-ten>"}
)
_PLACEHOLDER_SPLIT: Final = re.compile(
    r"(<email>|<so-dien-thoai>|<so-giay-to>|<so-the-ngan-hang>|<so-tai-khoan>|<ho-ten>)"
)
# Free text kept in an event (an unmatched question) is cut to this many characters.
STORED_TEXT_CHARS: Final = 200


def user_key(secret: bytes, channel: str, chat_user_id: str) -> str:
    """HMAC-SHA256 of channel and chat user id: stable per user, not reversible without the secret."""
    mac = hmac.new(secret, f"{channel}:{chat_user_id}".encode("utf-8", "surrogatepass"), hashlib.sha256)
    return mac.hexdigest()[:32]


def _classify(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = _NOT_DIGIT.sub("", raw)
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


def _name(match: re.Match[str]) -> str:
    whole, name = match.group(0), match.group(1)
    return whole[: len(whole) - len(name)] + "<ho-ten>"


def redact(text: str) -> str:
    """Replace CCCD/CMND, phone, e-mail, card and account numbers, and a name the citizen introduces
    ("tôi tên …"), with placeholders."""
    text = unicodedata.normalize("NFC", text)  # a name typed as decomposed letters is still a name
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    text = _EMAIL_FOLDED.sub("<email>", text)
    text = _NAME_LEAD.sub(_name, text)
    return _DIGITS.sub(_classify, text)


# Words that introduce a personal number ("Số CCCD của tôi là …", "sđt: …"): they say who is asking,
# not what about, so they leave the question together with the number (see ``without_personal``).
_LEAD_IN: Final = frozenset({"la", "day", "nay", "a", "nhe", "nha"})
_OWNER: Final = frozenset({"cua", "toi", "tui", "em", "minh", "con", "chau", "anh", "chi", "ba", "me", "tao"})
_ID_WORD: Final = frozenset({"cccd", "cmnd", "cmt", "sdt", "dt", "stk", "email", "mail", "gmail", "zalo", "phone"})
_ID_PHRASE: Final = frozenset(
    {("can", "cuoc"), ("dien", "thoai"), ("tai", "khoan"), ("ho", "chieu"), ("dinh", "danh"), ("so", "the")}
)
_PUNCTUATION: Final = ".,:;!?()[]\"'“”-"


def without_personal(text: str, fold: Callable[[str], str]) -> str:
    """The text without personal numbers and the words that introduce them, for matching a question.

    "Làm lại căn cước bị mất. Số CCCD của tôi là 079201234567" asks about a lost card; the sentence
    that gives the number carries no topic and would pull the match towards every card procedure.
    A topic word stays when nothing marks it as introducing the number ("làm lại căn cước 0792…").
    """
    redacted = redact(text)
    if "<" not in redacted:
        return text
    out: list[str] = []
    for raw in redacted.split():
        parts = _PLACEHOLDER_SPLIT.split(raw)
        if len(parts) == 1:
            out.append(raw)
            continue
        for part in parts:
            if part and part not in PLACEHOLDERS:
                out.append(part)
        _drop_lead_in(out, fold)
    return " ".join(out)


def _drop_lead_in(words: list[str], fold: Callable[[str], str]) -> None:
    """Remove "số CCCD của tôi là", "sđt:", "email" from the end of ``words`` (in place)."""

    def last() -> str:
        return fold(words[-1].strip(_PUNCTUATION)) if words else ""

    marked = False
    while words and last() in _LEAD_IN | {""}:
        marked = marked or last() != ""
        words.pop()
    while words and last() in _OWNER:
        marked = True
        words.pop()
    if words and last() in _ID_WORD:
        words.pop()
        marked = True
    elif len(words) >= 2 and (fold(words[-2].strip(_PUNCTUATION)), last()) in _ID_PHRASE:
        before = fold(words[-3].strip(_PUNCTUATION)) if len(words) >= 3 else ""
        if marked or before == "so":
            del words[-2:]
            marked = True
    if marked and words and last() == "so":
        words.pop()


def stored_text(text: str, fold: Callable[[str], str]) -> str:
    """Free text as it may go into the event log: redacted *before* folding, then folded and cut short.

    Redacting first matters: folding removes "@" and dots, after which an address on
    any domain ("lan@cong-ty.vn" -> "lan cong ty vn") could no longer be recognised.
    """
    parts = _PLACEHOLDER_SPLIT.split(redact(text[: STORED_TEXT_CHARS * 4]))
    kept = [p if p in PLACEHOLDERS else fold(p) for p in parts]
    return " ".join(p for p in kept if p)[:STORED_TEXT_CHARS]


# -- logs ---------------------------------------------------------------------------

_TOKEN: Final = re.compile(r"bot\d+:[A-Za-z0-9_-]+")
# Chat ids and personal numbers in log lines (python-telegram-bot, httpx, uvicorn): runs of six or more
# digits that stand alone, so content hashes ("3f9a12345678") and addresses (127.0.0.1:8080) stay readable.
_LOG_DIGITS: Final = re.compile(r"(?<![\w.])\+?\d{6,}(?![\w.])")


def redact_log_text(text: str) -> str:
    """A log line without bot tokens, chat ids, phone/CCCD numbers or e-mail addresses (logs never hold user text)."""
    text = _TOKEN.sub("bot<token>", text)
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    return _LOG_DIGITS.sub("<so>", text)


class TokenFilter(logging.Filter):
    """Bot tokens travel in URLs (``/bot<id>:<secret>/method``); log records show ``bot<token>`` instead."""

    PATTERN: Final = _TOKEN

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.PATTERN.search(message):
            record.msg, record.args = self.PATTERN.sub("bot<token>", message), None
        return True


class PrivacyFilter(logging.Filter):
    """On a handler: every record, tracebacks included, loses tokens, chat ids and personal numbers."""

    _formatter: Final = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_log_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_log_text(self._formatter.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        return True


# Libraries that log request URLs, chat ids or message texts at DEBUG.
THIRD_PARTY_LOGGERS: Final = ("telegram", "httpx", "httpcore", "uvicorn", "starlette", "aiosqlite", "asyncio")


def keep_tokens_out_of_http_logs() -> None:
    """httpx logs every request URL at INFO: redact tokens there, whoever configured logging."""
    for name in ("httpx", "httpcore"):
        log = logging.getLogger(name)
        if not any(isinstance(f, TokenFilter) for f in log.filters):
            log.addFilter(TokenFilter())


def cap_third_party_logs(level: int) -> None:
    """Third-party loggers never go below INFO, even when our own level is DEBUG (chat ids and texts)."""
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))


# -- sealing ----------------------------------------------------------------------------


def _fernet(secret: bytes, purpose: str) -> Fernet:
    # The outbox key is the one shipped first (no purpose suffix), so rows written before stay readable.
    label = b"dvc-bot outbox\0" if purpose == "outbox" else f"dvc-bot {purpose}\0".encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(label + secret).digest()))


def seal(secret: bytes, text: str, purpose: str = "outbox") -> str:
    """``text`` unreadable without ``secret`` (kept outside the database), for values that must be read back.

    Used for the chat id of a reply waiting in the outbox and for the Zalo OA tokens;
    Fernet (AES-CBC + HMAC) from the ``cryptography`` package, keyed by the hash secret
    and the purpose, so a value sealed for one use cannot be passed off as another.
    """
    return _fernet(secret, purpose).encrypt(text.encode()).decode()


def unseal(secret: bytes, token: str, purpose: str = "outbox") -> str | None:
    """The text ``seal`` hid, or None when the secret is wrong or the value was changed."""
    try:
        return _fernet(secret, purpose).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
