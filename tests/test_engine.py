"""Table-driven engine tests: no I/O, the engine is a pure function of its arguments."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import texts
from bot.content import load
from bot.engine import Content, EngineConfig, Inbound, Position, Reply, Session, _Turn, step
from tests.conftest import GOOD, NOW


@dataclass
class Chat:
    """Feeds messages to the engine one by one, keeping the session like the runner does."""

    content: Content
    session: Session = field(default_factory=Session)
    minutes: float = 0.0
    replies: list[Reply] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def send(self, message: str | tuple[str, str], wait_minutes: float = 0.5) -> list[Reply]:
        self.minutes += wait_minutes
        if isinstance(message, tuple):
            kind, value = message
            if kind == "tap":
                inbound = Inbound("test", "u1", kind="choice", choice_id=value)
            elif kind == "start":
                inbound = Inbound("test", "u1", kind="start", start_payload=value or None)
            else:
                inbound = Inbound("test", "u1", kind=kind)  # type: ignore[arg-type]
        else:
            inbound = Inbound("test", "u1", text=message)
        result = step(self.content, self.session, inbound, NOW + timedelta(minutes=self.minutes))
        self.session = result.session
        self.replies = list(result.replies)
        self.events = list(result.events)
        return self.replies

    @property
    def text(self) -> str:
        """Reply texts and button labels, as a citizen would see them."""
        return "\n".join(r.text + "".join(f"\n[{c.label}]" for c in r.choices) for r in self.replies)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.replies[-1].choices] if self.replies else []

    @property
    def at(self) -> str | None:
        pos = self.session.position
        return f"{pos.procedure}/{pos.step}" if pos else None

    @property
    def event_types(self) -> list[str]:
        return [e.type for e in self.events]


def walk(content: Content, *messages: str | tuple[str, str]) -> Chat:
    chat = Chat(content)
    for m in messages:
        chat.send(m)
    return chat


START_TAM_TRU = "dk tam tru cho nguoi thue tro"

# (name, messages, expected position, substrings of the last replies, expected event types of the last turn)
CASES: list[tuple[str, list[Any], str | None, list[str], list[str]]] = [
    (
        "free text starts a flow",
        [START_TAM_TRU],
        "dang-ky-tam-tru/gioi-thieu",
        ["Bắt đầu thủ tục “Đăng ký tạm trú”", "3 ngày làm việc"],
        ["match-confident", "flow-started", "step-entered"],
    ),
    (
        "typed number picks a choice",
        [START_TAM_TRU, "1"],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        ["step-entered"],
    ),
    (
        "typed label with diacritics",
        [START_TAM_TRU, "1", "Tôi nhờ người khác nộp"],
        "dang-ky-tam-tru/giay-to",
        ["Văn bản ủy quyền"],
        ["step-entered"],
    ),
    (
        "typed label without diacritics",
        [START_TAM_TRU, "1", "toi tu nop"],
        "dang-ky-tam-tru/giay-to",
        ["Tờ khai CT01"],
        ["step-entered"],
    ),
    (
        "typed label with a typo",
        [START_TAM_TRU, "1", "toi nho nguoi khac nopp"],
        "dang-ky-tam-tru/giay-to",
        ["Văn bản ủy quyền"],
        ["step-entered"],
    ),
    (
        "tap on a button",
        [START_TAM_TRU, ("tap", "next"), ("tap", "o:tu-nop")],
        "dang-ky-tam-tru/giay-to",
        ["Tờ khai CT01"],
        ["step-entered"],
    ),
    (
        "back returns to the previous step",
        [START_TAM_TRU, "1", "1", "quay lại"],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        ["back", "step-entered"],
    ),
    (
        "back on the first step says so",
        [START_TAM_TRU, "quay lai"],
        "dang-ky-tam-tru/gioi-thieu",
        [texts.FIRST_STEP],
        ["back"],
    ),
    (
        "repeat shows the step again",
        [START_TAM_TRU, "1", "lặp lại"],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        ["repeat"],
    ),
    (
        "help shows contacts and what to bring",
        [START_TAM_TRU, "1", "trợ giúp"],
        "dang-ky-tam-tru/ai-nop",
        ["1800 1096", "chưa được xác nhận chính thức", texts.BRING_INTRO],
        ["help"],
    ),
    (
        "after help the citizen continues",
        [START_TAM_TRU, "1", "gặp cán bộ", "1"],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        [],
    ),
    (
        "cancel asks first and keeps the place",
        [START_TAM_TRU, "1", "hủy"],
        "dang-ky-tam-tru/ai-nop",
        [
            "Bạn muốn dừng thủ tục “Đăng ký tạm trú”? Tôi giữ lại chỗ bạn đang làm",
            "[Dừng thủ tục]",
            "[Làm tiếp thủ tục này]",
        ],
        ["cancel-asked"],
    ),
    (
        "cancel confirmed leaves the flow and asks once why",
        [START_TAM_TRU, "1", "hủy", "hủy"],
        None,
        ["Đã dừng thủ tục “Đăng ký tạm trú”", "vì sao bạn dừng", "[Không đăng nhập được VNeID]"],
        ["flow-cancelled"],
    ),
    (
        "cancel declined carries on where it was",
        [START_TAM_TRU, "1", "thôi", "không"],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        [],
    ),
    ("menu leaves the flow", [START_TAM_TRU, "1", "menu"], None, ["Bạn cần làm thủ tục gì?"], ["flow-exited"]),
    ("slash command works", [START_TAM_TRU, "/cancel", ("tap", "stop")], None, ["Đã dừng thủ tục"], ["flow-cancelled"]),
    (
        "checklist item depends on an answer",
        [START_TAM_TRU, "1", "1"],
        "dang-ky-tam-tru/giay-to",
        ["⬜ 1. Tờ khai CT01", "⬜ 2. Giấy tờ chứng minh chỗ ở hợp pháp"],
        ["step-entered"],
    ),
    (
        "ticking a checklist item",
        [START_TAM_TRU, "1", "1", "1"],
        "dang-ky-tam-tru/giay-to",
        ["✅ 1. Tờ khai CT01", "⬜ 2."],
        ["checklist-ticked"],
    ),
    (
        "tapping a ticked item unticks it",
        [START_TAM_TRU, "1", "1", "1", ("tap", "t:ct01")],
        "dang-ky-tam-tru/giay-to",
        ["⬜ 1. Tờ khai CT01"],
        ["checklist-ticked"],
    ),
    (
        "typing the same number again does not untick: it says how to go on",
        [START_TAM_TRU, "1", "1", "1", "1"],
        "dang-ky-tam-tru/giay-to",
        ["Mục 1 đã được đánh dấu ✅", "gõ số 3 hoặc bấm “Tôi đã có đủ giấy tờ”"],
        ["checklist-ticked"],
    ),
    (
        "missing documents lead to a handoff",
        [START_TAM_TRU, "1", "1", ("tap", "missing")],
        "dang-ky-tam-tru/thieu-giay-to",
        ["bộ phận một cửa", "Khi đi, bạn mang theo", "Thẻ căn cước"],
        ["step-entered", "handoff-shown"],
    ),
    (
        "jump into a guide",
        [START_TAM_TRU, "1", "1", ("tap", "next"), "Chưa đăng nhập được"],
        "tai-khoan-vneid/cach-dang-nhap",
        ["Mở ứng dụng VNeID"],
        ["guide-entered", "step-entered"],
    ),
    (
        "come back from a guide",
        [START_TAM_TRU, "1", "1", ("tap", "next"), "2", "1"],
        "dang-ky-tam-tru/dang-nhap",
        ["Xong hướng dẫn VNeID.", "quay lại thủ tục “Đăng ký tạm trú”", "Bạn đã đăng nhập VNeID mức 2 chưa?"],
        ["step-entered", "guide-returned", "step-entered"],  # back at the caller's step
    ),
    (
        "payment shows fees, basis and safety",
        [START_TAM_TRU, "1", "1", ("tap", "next"), "1"],
        "dang-ky-tam-tru/thanh-toan",
        [
            "nộp trực tuyến: 7.000 đồng/lần",
            "nộp tại quầy: 15.000 đồng/lần",
            "Thông tư 75/2022/TT-BTC",
            "Được miễn: trẻ em; người cao tuổi",
            "Không đọc mã OTP",
            "Không bao giờ chuyển lệ phí vào tài khoản của một cá nhân",
            texts.FEE_UNPAID,
        ],
        ["step-entered"],
    ),
    (
        "payment guide returns to the payment step",
        [START_TAM_TRU, "1", "1", ("tap", "next"), "1", ("tap", "payguide"), "1"],
        "dang-ky-tam-tru/thanh-toan",
        ["Xong hướng dẫn thanh toán.", "nộp trực tuyến: 7.000"],
        ["step-entered", "guide-returned", "step-entered"],
    ),
    (
        "paying finishes the flow",
        [START_TAM_TRU, "1", "1", ("tap", "next"), "1", "Đã thanh toán xong"],
        None,
        [
            "Xong! Lệ phí là nộp trực tuyến: 7.000 đồng/lần, nộp tại quầy: 15.000 đồng/lần (cập nhật 28/11/2026).",
            "Bạn cần làm thủ tục gì?",
        ],
        ["step-entered", "flow-completed"],
    ),
    (
        "failed payment hands off",
        [START_TAM_TRU, "1", "1", ("tap", "next"), "1", "thanh toan bi loi"],
        "dang-ky-tam-tru/loi-thanh-toan",
        ["hồ sơ chưa được gửi", "1800 1096", "Mã hồ sơ"],
        ["step-entered", "handoff-shown"],
    ),
    ("greeting at the menu", ["xin chào"], None, [texts.GREETING_REPLY, texts.WELCOME, "Bạn cần làm thủ tục gì?"], []),
    (
        "thanks mid-flow keeps the step",
        [START_TAM_TRU, "cảm ơn"],
        "dang-ky-tam-tru/gioi-thieu",
        [texts.THANKS_REPLY, "3 ngày làm việc"],
        [],
    ),
    (
        "not understood mid-flow shows the options again",
        [START_TAM_TRU, "1", "abc xyz"],
        "dang-ky-tam-tru/ai-nop",
        [texts.NOT_UNDERSTOOD_STEP, "Ai là người nộp hồ sơ?"],
        ["not-understood"],
    ),
    (
        "number out of range",
        [START_TAM_TRU, "1", "9"],
        "dang-ky-tam-tru/ai-nop",
        ["Bạn hãy chọn một số từ 1 đến 5."],
        ["not-understood"],
    ),
    (
        "another procedure mid-flow is offered as a switch",
        [START_TAM_TRU, "1", "vợ tôi mới sinh em bé thì làm giấy khai sinh ở đâu"],
        "dang-ky-tam-tru/ai-nop",
        ["Bạn đang làm thủ tục “Đăng ký tạm trú”", "Đăng ký khai sinh"],
        ["switch-offered"],
    ),
    (
        "accepting the switch starts the other flow",
        [START_TAM_TRU, "1", "vợ tôi mới sinh em bé thì làm giấy khai sinh ở đâu", "1"],
        "dang-ky-khai-sinh/gioi-thieu",
        ["Bắt đầu thủ tục “Đăng ký khai sinh”"],
        ["flow-exited", "flow-started", "step-entered"],
    ),
    (
        "declining the switch stays",
        [START_TAM_TRU, "1", "vợ tôi mới sinh em bé thì làm giấy khai sinh ở đâu", texts.STAY],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        [],
    ),
    ("two words never start a flow", ["khai sinh"], None, [texts.AMBIGUOUS, "Đăng ký khai sinh"], ["match-ambiguous"]),
    (
        "picking from the ambiguous list starts it",
        ["khai sinh", "1"],
        "dang-ky-khai-sinh/gioi-thieu",
        ["Bắt đầu thủ tục “Đăng ký khai sinh”"],
        ["flow-started", "step-entered"],
    ),
    (
        "none of these goes back to the menu",
        ["khai sinh", texts.NONE_OF_THESE],
        None,
        [texts.AMBIGUOUS_NONE, "Bạn cần làm thủ tục gì?"],
        [],
    ),
    (
        "unknown question says so with the hotline",
        ["thời tiết hôm nay thế nào"],
        None,
        ["chưa tìm được thủ tục phù hợp", "1800 1096"],
        ["match-none"],
    ),
    ("menu area lists its procedures", ["menu", "Cư trú"], None, ["Nhóm “Cư trú”", "Đăng ký tạm trú"], []),
    (
        "deep link starts a flow",
        [("start", "dang-ky-khai-sinh")],
        "dang-ky-khai-sinh/gioi-thieu",
        ["Bắt đầu thủ tục “Đăng ký khai sinh”"],
        ["flow-started", "step-entered"],
    ),
    (
        "unknown deep link shows the menu",
        [("start", "khong-co")],
        None,
        [texts.UNKNOWN_DEEPLINK, "Bạn cần làm thủ tục gì?"],
        [],
    ),
    (
        "start mid-flow offers to resume",
        [START_TAM_TRU, "1", ("start", "")],
        "dang-ky-tam-tru/ai-nop",
        ["Bạn đang ở bước 2/5 của thủ tục “Đăng ký tạm trú”"],
        ["resume-offered"],
    ),
    (
        "resume continues where the citizen was",
        [START_TAM_TRU, "1", ("start", ""), "Tiếp tục"],
        "dang-ky-tam-tru/ai-nop",
        ["Ai là người nộp hồ sơ?"],
        [],
    ),
    (
        "restart from the resume offer",
        [START_TAM_TRU, "1", ("start", ""), "2"],
        "dang-ky-tam-tru/gioi-thieu",
        ["Bắt đầu thủ tục “Đăng ký tạm trú”"],
        ["flow-exited", "flow-started", "step-entered"],
    ),
    (
        "stale button",
        [START_TAM_TRU, ("tap", "o:khong-co")],
        "dang-ky-tam-tru/gioi-thieu",
        [texts.STALE_BUTTON, "3 ngày làm việc"],
        ["stale-choice"],
    ),
    (
        "unverified facts are flagged once",
        [("start", "dang-ky-khai-sinh")],
        "dang-ky-khai-sinh/gioi-thieu",
        [
            "Mã thủ tục 1.001193 (*). Thời gian: 1 ngày làm việc (*).",
            "(*) Điều này chưa được xác nhận chính thức: bạn hỏi lại cán bộ khi nộp hồ sơ.",
        ],
        [],
    ),
    (
        "non-text input gets a polite note",
        [START_TAM_TRU, ("unsupported", "")],
        "dang-ky-tam-tru/gioi-thieu",
        [texts.UNSUPPORTED_INPUT],
        ["unsupported-input"],
    ),
]


@pytest.mark.parametrize(("name", "messages", "position", "expected", "events"), CASES, ids=[c[0] for c in CASES])
def test_conversation(
    content: Content, name: str, messages: list[Any], position: str | None, expected: list[str], events: list[str]
) -> None:
    chat = walk(content, *messages)
    assert chat.at == position
    for snippet in expected:
        assert snippet in chat.text
    assert [t for t in chat.event_types if t in set(events)] == events
    assert chat.replies, "every message gets an answer"


def test_every_reply_offers_a_way_forward(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1", "1", ("tap", "next"), "1", "Đã thanh toán xong")
    assert chat.labels, "the last reply of a turn always carries choices"


def test_unverified_footnote_appears_once(content: Content) -> None:
    chat = walk(content, ("start", "dang-ky-khai-sinh"))
    assert chat.text.count("(*) Điều này chưa được xác nhận chính thức") == 1


def test_resume_offered_after_a_long_silence(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1")
    chat.send("1", wait_minutes=120)
    assert "Bạn đang ở bước 2/5" in chat.text
    assert chat.at == "dang-ky-tam-tru/ai-nop"
    chat.send("Tiếp tục")
    assert "Ai là người nộp hồ sơ?" in chat.text


def test_tap_after_silence_is_taken_as_an_answer(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1")
    chat.minutes += 300
    chat.send(("tap", "o:tu-nop"))
    assert chat.at == "dang-ky-tam-tru/giay-to"


def test_step_removed_by_new_content_offers_restart(content: Content) -> None:
    chat = Chat(content)
    chat.session = Session(position=Position("dang-ky-tam-tru", "buoc-da-xoa"), content_version="old")
    chat.send("1")
    assert "bước bạn đang làm không còn nữa" in chat.text
    assert chat.labels == [texts.RESTART, texts.MENU]
    assert chat.event_types == ["step-vanished"]
    chat.send(texts.RESTART)
    assert chat.at == "dang-ky-tam-tru/gioi-thieu"


def test_step_removed_offers_the_nearest_earlier_step_that_still_exists(content: Content) -> None:
    chat = Chat(content)
    history = (Position("dang-ky-tam-tru", "gioi-thieu"), Position("dang-ky-tam-tru", "ai-nop"))
    chat.session = Session(position=Position("dang-ky-tam-tru", "buoc-da-xoa"), history=history, content_version="old")
    chat.send("xin chao")
    assert "Bạn có thể làm tiếp từ bước trước đó" in chat.text
    assert chat.labels == [texts.RESUME_EARLIER, texts.RESTART, texts.MENU]
    assert chat.events[0].detail == {"root": "dang-ky-tam-tru", "resume_at": "ai-nop"}
    chat.send("1")
    assert chat.at == "dang-ky-tam-tru/ai-nop"
    assert "Ai là người nộp hồ sơ?" in chat.text
    assert [e.via for e in chat.events if e.type == "step-entered"] == ["resume"]


def test_session_on_surviving_step_continues(content: Content) -> None:
    chat = Chat(content)
    chat.session = Session(position=Position("dang-ky-tam-tru", "ai-nop"), content_version="old")
    chat.send("1")
    assert chat.at == "dang-ky-tam-tru/giay-to"


def test_events_redact_personal_numbers(content: Content) -> None:
    chat = walk(content, "so cccd cua toi la 079123456789, sdt 0912 345 678")
    details = " ".join(str(e.detail) for e in chat.events)
    assert "079123456789" not in details
    assert "0912" not in details
    assert "<so-giay-to>" in details


def test_events_carry_version_and_user_key(content: Content) -> None:
    chat = walk(content, START_TAM_TRU)
    assert {e.content_version for e in chat.events} == {content.catalogue.version}
    assert {e.user_key for e in chat.events} == {"u1"}
    entered = next(e for e in chat.events if e.type == "step-entered")
    assert (entered.from_step, entered.to_step, entered.via) == (None, "gioi-thieu", "match")


def test_session_round_trips_through_json(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1", "2", "1", ("tap", "next"), "2")
    again = Session.from_json(chat.session.to_json())
    assert again == replace(chat.session)


def test_fee_validity_follows_the_date(content: Content) -> None:
    # Before the fee row's valid_from, the bot states no amount rather than an unapplicable one.
    before = NOW.replace(year=2022)
    result = step(content, Session(), Inbound("test", "u1", kind="start", start_payload="dang-ky-tam-tru"), before)
    turn = _Turn(content, result.session, Inbound("test", "u1"), before, EngineConfig())
    proc = content.catalogue.procedure("dang-ky-tam-tru")
    assert proc is not None
    assert "Chưa có thông tin lệ phí" in turn.fee_inline(proc)


def test_command_after_silence_is_obeyed(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1")
    chat.send("hủy", wait_minutes=120)
    assert "Bạn muốn dừng thủ tục" in chat.text  # the command itself, not a resume offer
    chat.send("dừng thủ tục")
    assert chat.at is None
    assert "Đã dừng thủ tục" in chat.text


def test_returning_from_a_guide_onto_a_handoff_records_the_handoff(tmp_path: Path) -> None:
    target = tmp_path / "c"
    shutil.copytree(GOOD, target)
    flow = target / "flows" / "dang-ky-tam-tru.yaml"
    flow.write_text(
        flow.read_text(encoding="utf-8").replace(
            "goto: tai-khoan-vneid, next: dang-nhap", "goto: tai-khoan-vneid, next: loi-thanh-toan"
        ),
        encoding="utf-8",
    )
    chat = walk(load(target), START_TAM_TRU, "1", "1", ("tap", "next"), "Chưa đăng nhập được")
    assert chat.at == "tai-khoan-vneid/cach-dang-nhap"
    chat.send("Tiếp tục")
    assert chat.at == "dang-ky-tam-tru/loi-thanh-toan"
    assert chat.event_types == ["step-entered", "guide-returned", "step-entered", "handoff-shown"]


def test_returning_from_a_guide_onto_an_end_step_finishes_the_flow(tmp_path: Path) -> None:
    target = tmp_path / "c"
    shutil.copytree(GOOD, target)
    flow = target / "flows" / "dang-ky-tam-tru.yaml"
    flow.write_text(
        flow.read_text(encoding="utf-8").replace(
            "goto: tai-khoan-vneid, next: dang-nhap", "goto: tai-khoan-vneid, next: xong"
        ),
        encoding="utf-8",
    )
    chat = walk(load(target), START_TAM_TRU, "1", "1", ("tap", "next"), "Chưa đăng nhập được")
    chat.send("Tiếp tục")
    assert chat.at is None
    assert chat.event_types == ["step-entered", "guide-returned", "step-entered", "flow-completed"]
    assert "Xong! Lệ phí là" in chat.text


def test_the_exit_reason_is_recorded_once_and_never_blocks(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1", "hủy", "hủy")
    chat.send(("tap", "x:vneid"))
    assert [(e.type, e.procedure_id, e.step_id, e.detail) for e in chat.events] == [
        ("exit-reason", "dang-ky-tam-tru", "ai-nop", {"reason": "vneid"})
    ]
    assert texts.EXIT_REASON_THANKS in chat.text and texts.MENU_PROMPT in chat.text
    again = walk(content, START_TAM_TRU, "1", "hủy", "hủy")
    again.send("dang ky khai sinh cho con")  # typing something else just carries on
    assert "exit-reason" not in again.event_types
    assert {"match-confident", "match-ambiguous"} & set(again.event_types)  # handled as a new question


def test_back_after_abandoning_is_asked_once_why_then_offered_to_continue(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1")
    chat.send("xin chào", wait_minutes=26 * 60)  # more than a day later
    assert "Lần trước bạn dừng giữa chừng thủ tục “Đăng ký tạm trú”" in chat.text
    assert chat.labels[:2] == [texts.CONTINUE_PROCEDURE, "Thiếu giấy tờ"]
    chat.send(("tap", "x:thieu-giay-to"))
    assert [(e.type, e.detail) for e in chat.events] == [("exit-reason", {"reason": "thieu-giay-to"})]
    assert texts.EXIT_REASON_THANKS in chat.text and "Bạn đang ở bước 2/5" in chat.text  # the usual resume offer
    later = walk(content, START_TAM_TRU, "1")
    later.send("xin chào", wait_minutes=26 * 60)
    later.send(texts.CONTINUE_PROCEDURE)  # skipping the question just carries on
    assert later.at == "dang-ky-tam-tru/ai-nop" and "exit-reason" not in later.event_types
    short = walk(content, START_TAM_TRU, "1")
    short.send("xin chào", wait_minutes=120)  # a short pause: only the resume offer, no question
    assert "vì sao" not in short.text


def test_a_message_too_long_to_read_gets_a_short_polite_answer_and_nothing_is_stored(content: Content) -> None:
    chat = Chat(content)
    chat.send(("start", "dang-ky-tam-tru"))
    where = chat.at
    long = "Tôi muốn hỏi " + "rất dài " * 200 + " số 0912345678"
    replies = chat.send(long)
    assert replies[0].text.startswith("Tin nhắn của bạn dài quá (hơn 1.000 chữ)")
    assert chat.at == where  # nothing moved
    assert [e.type for e in chat.events] == ["message-too-long"]
    assert chat.events[0].detail == {"chars": len(long)}
    assert all(len(r.text) <= 600 for r in replies)
    assert replies[-1].choices  # and the step again, so the citizen can go on


def test_a_tap_carrying_an_id_the_content_never_offered_is_recorded_as_unknown(content: Content) -> None:
    chat = Chat(content)
    chat.send(("start", "dang-ky-tam-tru"))
    chat.send(("tap", "079203001234"))  # forged button data (a CCCD number)
    assert [e.detail for e in chat.events if e.type == "stale-choice"] == [{"choice": "unknown-choice"}]
    chat.send(("tap", "next"))
    chat.send(("tap", "o:tu-nop"))
    chat.send(("tap", "o:tu-nop"))  # the same button again, from the old message: a real option, kept
    assert [e.detail for e in chat.events if e.type == "stale-choice"] == [{"choice": "o:tu-nop"}]
    chat.send(("tap", "p:0912345678"))
    assert [e.detail for e in chat.events if e.type == "stale-choice"] == [{"choice": "unknown-choice"}]


def test_no_progress_is_lost_at_the_menu_or_after_stopping(content: Content) -> None:
    # menu: the place is kept, offered first, and "làm tiếp" goes back to it
    chat = walk(content, START_TAM_TRU, "1", "menu")
    assert chat.at is None and chat.labels[0] == "Làm tiếp: Đăng ký tạm trú"
    chat.send("làm tiếp")
    assert chat.at == "dang-ky-tam-tru/ai-nop" and chat.event_types == ["flow-resumed"]
    assert "Ai là người nộp hồ sơ?" in chat.text
    # stopped, then back three days later with /start: named, continue or start over
    chat = walk(content, START_TAM_TRU, "1", "1", "hủy", "hủy")
    chat.send(("start", ""), wait_minutes=3 * 24 * 60)
    assert "Bạn đang ở bước 3/" in chat.text and "“Đăng ký tạm trú”" in chat.text
    assert chat.labels[:2] == [texts.CONTINUE, texts.RESTART]
    chat.send("1")
    assert chat.at == "dang-ky-tam-tru/giay-to"
    # a greeting after leaving offers it too
    chat = walk(content, START_TAM_TRU, "1", "menu", "xin chào")
    assert "Bạn đang ở bước 2/" in chat.text and chat.labels[0] == texts.CONTINUE


def test_another_procedure_keeps_the_first_one_to_come_back_to(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1", "vợ tôi mới sinh em bé thì làm giấy khai sinh ở đâu", "1")
    assert chat.at == "dang-ky-khai-sinh/gioi-thieu"
    chat.send("menu")
    assert chat.labels[0] == "Làm tiếp: Đăng ký khai sinh"  # the latest one left
    chat.send(START_TAM_TRU)  # starting the earlier one by name starts it afresh
    assert chat.at == "dang-ky-tam-tru/gioi-thieu"
    assert chat.session.parked is not None and chat.session.parked.position.procedure == "dang-ky-khai-sinh"


def test_progress_counts_the_steps_on_the_citizens_path(content: Content) -> None:
    turn = _Turn(content, Session(), Inbound("test", "u"), NOW, EngineConfig())
    flow = content.catalogue.flow("dang-ky-tam-tru")
    assert flow is not None
    history = (Position("dang-ky-tam-tru", "gioi-thieu"), Position("dang-ky-tam-tru", "ai-nop"))
    done, total = turn.progress("dang-ky-tam-tru", "giay-to", history)
    assert done == 3 and total < len(flow.steps)  # branches not taken are not counted
    assert turn.progress("dang-ky-tam-tru", "giay-to", history + history) == (done, total)  # back and forth counts once


def test_pressing_1_again_and_again_never_loops_and_never_traps(content: Content) -> None:
    chat = walk(content, START_TAM_TRU, "1", "1")  # an older person who keeps pressing 1
    assert chat.at == "dang-ky-tam-tru/giay-to"
    for _ in range(5):
        chat.send("1")
    assert chat.at == "dang-ky-tam-tru/giay-to"
    assert chat.session.ticks == frozenset({"dang-ky-tam-tru/giay-to/ct01"})  # ticked once, never flipped back
    assert "gõ số 3" in chat.text
    chat.send("rồi")  # and any "yes, done" moves on
    assert chat.at != "dang-ky-tam-tru/giay-to"
