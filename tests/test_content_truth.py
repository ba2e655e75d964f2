"""The shipped content tells the truth plainly (issue 14): facts traced and marked honestly, the corrected
offices and fees where citizens choose their case, and citizen text free of editors' notes, cut buttons,
unexplained terms and a bot that calls itself by two names."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from functools import cache
from pathlib import Path

import pytest
import yaml

from bot import render_check, texts
from bot.content import load
from bot.engine import CMD_REPEAT, Content, EngineConfig, Inbound, Position, Session, _Turn, explain_terms
from bot.loader import _EDITOR_NOTE, _SELF_REFERENCE
from bot.normalize import fold
from bot.schema import CHECKED_GRADES, GRADES, Verification
from bot.settings import VIETNAM_TZ
from tests.conftest import ROOT

TODAY = date(2026, 12, 3)
NOW = datetime.combine(TODAY, time(9, 0), VIETNAM_TZ)


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(ROOT)


@cache
def all_renderings() -> list[render_check.Rendering]:
    return list(render_check.renderings(load(ROOT), [TODAY], TODAY))


def turn(content: Content) -> _Turn:
    session = Session(position=Position("dang-ky-tam-tru", "gioi-thieu"))
    return _Turn(content, session, Inbound("t", "t", kind="choice", choice_id=CMD_REPEAT), NOW, EngineConfig())


# -- facts: traced, dated, marked only when unconfirmed ------------------------------------------


def facts_of(content: Content) -> list[tuple[str, Verification]]:
    out: list[tuple[str, Verification]] = []
    cat = content.catalogue
    for c in cat.contacts.values():
        out.append((f"contact {c.id}", c.verification))
    for p in cat.procedures:
        for name, fact in (("code", p.code), ("time", p.processing_time), ("url", p.url)):
            if fact is not None:
                out.append((f"{p.id} {name}", fact.verification))
        if p.agency is not None:
            out.append((f"{p.id} agency", p.agency.verification))
        out += [(f"{p.id} fee {f.label}", f.verification) for f in p.fees]
        out += [(f"{p.id} fact {f.id}", f.verification) for f in p.facts.values()]
    return out


def test_every_fact_shown_traces_to_a_source_a_grade_and_the_day_it_was_checked(shipped: Content) -> None:
    untraced = [
        name
        for name, v in facts_of(shipped)
        if v.grade not in GRADES or not v.source.strip() or v.as_of is None or v.as_of > TODAY
    ]
    assert untraced == []


def test_a_fact_is_marked_exactly_when_its_source_is_unconfirmed(shipped: Content) -> None:
    t = turn(shipped)
    wrong = []
    for p in shipped.catalogue.procedures:
        shown = {
            "{code}": p.code.verification if p.code else None,
            "{time}": p.processing_time.verification if p.processing_time else None,
            "{url}": p.url.verification if p.url else None,
            "{agency}": p.agency.verification if p.agency else None,
            **{"{fact:" + f.id + "}": f.verification for f in p.facts.values()},
        }
        for placeholder, v in shown.items():
            if v is None:
                continue
            out = t.fill(placeholder, p)
            if (texts.UNVERIFIED_MARK in out) == (v.grade in CHECKED_GRADES):
                wrong.append(f"{p.id} {placeholder} [{v.grade}]: {out[:80]}")
        table = t.fee_table(p)
        for f in t.current_fees(p):
            line = next(ln for ln in table.splitlines() if ln.startswith(f"• {f.label}:"))
            if (texts.UNVERIFIED_MARK in line) == (f.verification.grade in CHECKED_GRADES):
                wrong.append(f"{p.id} fee {f.label} [{f.verification.grade}]")
    for c in shipped.catalogue.contacts.values():
        if (texts.UNVERIFIED_MARK in t.contact_line(c)) == (c.verification.grade in CHECKED_GRADES):
            wrong.append(f"contact {c.id} [{c.verification.grade}]")
    assert wrong == []


def test_the_emergency_number_and_the_portal_are_not_marked_unverified(shipped: Content) -> None:
    t = turn(shipped)
    assert texts.UNVERIFIED_MARK not in t.contact_line(shipped.catalogue.contacts["canh-sat-113"])
    for p in shipped.catalogue.procedures:
        if p.url and p.url.value.startswith("https://dichvucong.gov.vn/p/home/"):
            assert t.fill("{url}", p) == p.url.value


def test_agency_and_fee_lines_say_when_they_were_last_checked(shipped: Content) -> None:
    t = turn(shipped)
    proc = shipped.catalogue.procedure("cap-doi-can-cuoc")
    assert proc is not None
    assert t.fill("{agency}", proc).endswith("(cập nhật 03/12/2026)")
    assert "Bảng phí cập nhật ngày 03/12/2026." in t.fee_table(proc)


def test_a_fact_due_for_review_is_the_transitional_land_decree(shipped: Content) -> None:
    land = shipped.catalogue.procedure("cap-so-do-lan-dau")
    assert land is not None and land.agency is not None and land.processing_time is not None
    assert land.agency.verification.review_by == land.processing_time.verification.review_by == date(2027, 3, 1)


# -- the corrected offices and fees, where the citizen chooses their case ------------------------


def fee_line(content: Content, proc_id: str, start: str, day: date = TODAY) -> str:
    proc = content.catalogue.procedure(proc_id)
    assert proc is not None
    t = turn(content)
    t.now = datetime.combine(day, time(9, 0), VIETNAM_TZ)
    return next(ln for ln in t.fee_table(proc).splitlines() if ln.startswith("• " + start))


def test_judicial_records_go_to_the_police_not_the_justice_department(shipped: Content) -> None:
    proc = shipped.catalogue.procedure("ly-lich-tu-phap")
    assert proc is not None and proc.agency is not None
    assert proc.agency.name.startswith("Công an tỉnh") and "Cục Hồ sơ nghiệp vụ" in proc.agency.name
    shown = [r for r in all_renderings() if r.procedure == "ly-lich-tu-phap"]
    assert shown and not [r.step for r in shown if any("Sở Tư pháp" in m.text for m in r.replies)]
    assert "Thông tư 16/2025/TT-BTC" in {f.legal_basis for f in proc.fees}


def test_identity_card_renewal_is_free_at_the_ages_and_a_damaged_card_is_reissued(shipped: Content) -> None:
    assert "miễn phí" in fee_line(shipped, "cap-doi-can-cuoc", "Đổi thẻ khi đủ 14, 25, 40 hoặc 60 tuổi")
    damaged = fee_line(shipped, "cap-doi-can-cuoc", "Cấp lại khi mất thẻ, thẻ hỏng")
    assert "35.000 đồng" in damaged and "mức đầy đủ 70.000 đồng" in damaged
    assert "70.000 đồng" in fee_line(shipped, "cap-doi-can-cuoc", "Cấp lại khi mất thẻ, thẻ hỏng", date(2027, 1, 1))


def test_first_land_certificates_follow_decree_151(shipped: Content) -> None:
    t = turn(shipped)
    land = shipped.catalogue.procedure("cap-so-do-lan-dau")
    assert land is not None
    assert "Chủ tịch Ủy ban nhân dân cấp xã" in t.fill("{agency}", land)
    assert "bất kỳ điểm tiếp nhận nào trong tỉnh" in t.fill("{agency}", land)
    assert "không quá 17 ngày làm việc" in t.fill("{time}", land)


def test_civil_status_fees_have_been_free_since_2016(shipped: Content) -> None:
    for pid in ("dang-ky-khai-sinh", "dang-ky-khai-tu", "dang-ky-ket-hon", "lien-thong-khai-sinh"):
        proc = shipped.catalogue.procedure(pid)
        assert proc is not None
        free = [f for f in proc.fees if f.legal_basis.startswith("Luật Hộ tịch")]
        assert free and all(f.valid_from == date(2016, 1, 1) for f in free), pid


# -- payment safety ----------------------------------------------------------------------------------


def test_the_safety_text_names_personal_accounts_and_every_kind_of_impostor() -> None:
    for safety in (texts.SAFETY, texts.SAFETY_COUNTER):
        assert "tài khoản của một cá nhân" in safety
        assert "cán bộ xã, bảo hiểm xã hội" in safety and "kẻ gian" in safety.lower()


def test_counter_payments_never_say_online_only_lines(shipped: Content) -> None:
    counter = {(pid, s.id) for pid, f in shipped.catalogue.flows.items() for s in f.steps if s.where == "counter"}
    assert counter  # the content has counter payment steps
    for r in all_renderings():
        said = "\n".join(m.text for m in r.replies)
        if (r.procedure, r.step) in counter:
            assert texts.FEE_UNPAID not in said, r.step
            assert "Chỉ trả tiền trên trang có đuôi .gov.vn" not in said, r.step


# -- plain words: a scan of every step as citizens see it -------------------------------------------


def test_no_editor_notes_cut_buttons_or_second_name_for_the_bot_in_any_step(shipped: Content) -> None:
    bad = []
    for r in all_renderings():
        for m in r.replies:
            where = f"{r.procedure}/{r.step}"
            if note := _EDITOR_NOTE.search(m.text):
                bad.append(f"{where}: editor note {note.group(0)!r}")
            if self_ref := _SELF_REFERENCE.search(m.text):
                bad.append(f"{where}: the bot calls itself {self_ref.group(0)!r}")
            for c in m.choices:
                if c.label.endswith("…"):
                    bad.append(f"{where}: cut button {c.label!r}")
                if note := _EDITOR_NOTE.search(c.label):
                    bad.append(f"{where}: editor note on a button {c.label!r}")
    assert bad == []


def test_fixed_texts_call_the_bot_toi() -> None:
    fixed = [v for k, v in vars(texts).items() if k.isupper() and isinstance(v, str)]
    assert [t for t in fixed if _SELF_REFERENCE.search(t)] == []


def repeated_phrase(line: str, n: int = 4) -> str | None:
    words = fold(line).split()
    seen = set()
    for i in range(len(words) - n + 1):
        gram = " ".join(words[i : i + n])
        if gram in seen:
            return gram
        seen.add(gram)
    return None


def test_no_contact_line_says_the_same_thing_twice(shipped: Content) -> None:
    t = turn(shipped)
    assert [c.id for c in shipped.catalogue.contacts.values() if repeated_phrase(t.contact_line(c))] == []
    lines = {ln for r in all_renderings() for m in r.replies for ln in m.text.splitlines() if ln.startswith("• ")}
    assert [ln for ln in lines if repeated_phrase(ln)] == []


def glossary_terms_in(content: Content, text: str) -> set[str]:
    pattern = content.glossary_re
    assert pattern is not None
    return {content.glossary_forms[m.group(0).casefold()].term for m in pattern.finditer(text)}


def test_every_glossary_term_is_explained_where_a_conversation_first_shows_it(shipped: Content) -> None:
    unexplained = []
    for r in all_renderings():  # each step as a conversation that just arrived there shows it
        said = "\n".join(m.text for m in r.view)
        for m in r.view:
            body = m.text.split("\n\n💡 ")[0]
            shown = "\n".join((body, *(c.label for c in m.choices)))
            for term in glossary_terms_in(shipped, shown):
                if texts.TERM_EXPLAINED.format(term=term, explain="").rstrip() not in said:
                    unexplained.append(f"{r.procedure}/{r.step}: {term}")
    assert unexplained == []


def test_a_term_is_explained_once_per_conversation(shipped: Content) -> None:
    from bot.engine import Reply

    first, known = explain_terms(shipped, [Reply("Nhập mã OTP gửi về điện thoại.")], frozenset())
    assert "💡 OTP:" in first[0].text
    again, _ = explain_terms(shipped, [Reply("Nhập lại mã OTP mới.")], known)
    assert "💡" not in again[0].text


def test_every_conversation_gets_a_terms_explanation_and_the_memory_of_texts_is_bounded(
    shipped: Content, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import engine
    from bot.engine import Reply

    for _ in range(2):  # a new conversation: the second time the text's terms come from memory
        first, _ = explain_terms(shipped, [Reply("Nhập mã OTP gửi về điện thoại.")], frozenset())
        assert "💡 OTP:" in first[0].text
        assert "Nhập mã OTP gửi về điện thoại." in shipped._terms
    monkeypatch.setattr(engine, "_TEXTS_KEPT", 3)
    for i in range(10):
        step, _ = explain_terms(shipped, [Reply(f"Bước {i}: nhập mã OTP.")], frozenset())
        assert "💡 OTP:" in step[0].text
    assert len(shipped._terms) <= 3


def test_guides_are_not_announced_as_procedures(shipped: Content) -> None:
    guide = shipped.catalogue.procedure("thanh-toan-truc-tuyen")
    assert guide is not None and guide.is_guide
    assert texts.STARTING_GUIDE.format(name=guide.name).startswith("Mời bạn xem “Hướng dẫn")


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        (r"giấy đăng ký kết hôn", "Giấy chứng nhận kết hôn"),
        (r"giấy chứng tử", "trích lục khai tử"),
        (r"huyện đảo", "đặc khu"),
        (r"(?i)đừng trả lại ngay", "a wording that cannot read as 'do not ask for a refund'"),
    ],
)
def test_old_or_misleading_words_are_gone(wrong: str, right: str) -> None:
    def written(node: object) -> list[str]:
        # everything officials write, except ``says:``: the words citizens type (old names included) are never shown
        if isinstance(node, dict):
            return [t for k, v in node.items() if k != "says" for t in written(v)]
        if isinstance(node, list):
            return [t for v in node for t in written(v)]
        return [node] if isinstance(node, str) else []

    texts_shown = [
        t for p in sorted((Path(ROOT) / "flows").glob("*.yaml")) for t in written(yaml.safe_load(p.read_text("utf-8")))
    ]
    pattern = re.compile(wrong, re.IGNORECASE)
    hits = [m.group(0) for t in texts_shown for m in pattern.finditer(t)]
    assert hits == [], f"use {right}"
    says = [t for p in sorted((Path(ROOT) / "flows").glob("*.yaml")) for t in p.read_text("utf-8").splitlines()]
    assert any("says:" in line for line in says)  # the exception above is not vacuous


def test_asking_what_a_term_means_explains_it_and_stays_on_the_step(shipped: Content) -> None:
    from tests.test_engine import Chat

    chat = Chat(shipped)
    chat.send(("start", "ly-lich-tu-phap"))
    at = chat.at
    for question in ("cho hỏi OTP là gì vậy?", "passcode la cai gi", "VNeID mức 2 nghĩa là gì ạ"):
        chat.send(question)
        assert chat.replies[0].text.startswith("💡 "), question
        assert chat.at == at and chat.event_types == ["term-explained"]
    assert {"otp", "passcode", "vneid muc 2"} <= chat.session.explained
    chat.send("thủ tục này là gì")  # not a glossary term: read as usual
    assert "term-explained" not in chat.event_types


def test_a_free_fee_is_named_with_its_condition_when_other_cases_pay(shipped: Content) -> None:
    t = turn(shipped)
    death = shipped.catalogue.procedure("dang-ky-khai-tu")
    assert death is not None
    assert t.fill("{fee}", death).startswith("Đăng ký khai tử đúng hạn: miễn phí")


def test_no_start_date_is_shown_where_the_source_gives_none(shipped: Content) -> None:
    t = turn(shipped)
    licence = shipped.catalogue.procedure("doi-giay-phep-lai-xe")
    assert licence is not None
    table = t.fee_table(licence)
    assert "135.000 đồng" in table and "áp dụng từ" not in table and "01/03/2025" not in table


def test_judicial_record_counter_filing_names_only_police_offices(shipped: Content) -> None:
    (r,) = [r for r in all_renderings() if (r.procedure, r.step) == ("ly-lich-tu-phap", "nop-truc-tiep")]
    said = "\n".join(m.text for m in r.replies)
    assert "Cục Hồ sơ nghiệp vụ" in said and "Bộ phận một cửa" not in said
