"""What `validate` tells officials about facts, links, words and broken references (issue 14)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date
from pathlib import Path

import pytest

from bot.loader import Problem, load_content, looks_official
from tests.conftest import GOOD

TODAY = date(2026, 12, 3)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    shutil.copytree(GOOD, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(content: Path, severity: str | None = None) -> list[Problem]:
    found = load_content(content, today=TODAY).problems
    return [p for p in found if severity is None or p.severity == severity]


def flow_step_text(content: Path, step_text: str) -> None:
    quoted = json.dumps(step_text, ensure_ascii=False)  # a YAML double-quoted scalar
    edit(content / "flows/dang-ky-tam-tru.yaml", "text: Ai là người nộp hồ sơ?", f"text: {quoted}")


# -- links --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "dichvucong-gov.vn.com",
        "dichvucong-bocongan.com.vn",
        "dichvucongg.top",
        "dichvucongbaohiemxahoi.com",
        "vneid-capnhat.com",
        "govvn-thanhtoan.net",
    ],
)
def test_look_alikes_of_official_sites_are_named_as_scams(content: Path, host: str) -> None:
    assert looks_official(host)
    flow_step_text(content, f"Vào https://{host}/dang-nhap để nộp.")
    errors = [p for p in problems(content, "error") if host in p.message]
    assert len(errors) == 1
    assert "GIẢ DẠNG trang chính thức" in errors[0].message
    assert errors[0].file == "flows/dang-ky-tam-tru.yaml" and errors[0].line == 9


def test_any_link_outside_the_allow_list_is_an_error_and_blocks_loading(content: Path) -> None:
    flow_step_text(content, "Xem thêm ở https://tintuc-phapluat.com/bai-viet.")
    result = load_content(content, today=TODAY)
    assert result.catalogue is None  # hot reload keeps the last good content (ContentHolder swaps only a catalogue)
    (error,) = result.errors
    assert "không thuộc danh sách trang được phép (allowed_domains" in error.message
    assert not looks_official("tintuc-phapluat.com")


def test_links_under_an_allowed_domain_pass(content: Path) -> None:
    flow_step_text(content, "Vào https://dichvucong.gov.vn hoặc https://congan.camau.gov.vn để nộp.")
    assert problems(content, "error") == []


def test_allowed_domains_must_be_declared(content: Path) -> None:
    edit(content / "procedures.yaml", "allowed_domains: [gov.vn]  ", "")
    messages = [p.message for p in problems(content, "error")]
    assert any('thiếu khoá bắt buộc "allowed_domains"' in m for m in messages)


# -- broken references ------------------------------------------------------------------------


def test_a_broken_next_is_one_error_without_a_cascade_of_warnings(content: Path) -> None:
    flow = content / "flows/dang-ky-tam-tru.yaml"
    edit(flow, "{id: tu-nop, label: Tôi tự nộp, next: giay-to}", "{id: tu-nop, label: Tôi tự nộp, next: giay-tox}")
    edit(
        flow,
        "{id: nho-nguoi, label: Tôi nhờ người khác nộp, next: giay-to}",
        "{id: nho-nguoi, label: Tôi nhờ người khác nộp, next: giay-tox}",
    )
    found = problems(content)
    errors = [p for p in found if p.severity == "error"]
    assert len(errors) == 2  # one per broken reference
    assert all('Có phải ý bạn là "giay-to"?' in p.hint for p in errors)
    assert all("bước phía sau đang không tới được" in p.hint for p in errors)
    assert not [p for p in found if "không có đường nào dẫn tới" in p.message]


def test_did_you_mean_prefers_the_step_that_was_renamed(content: Path) -> None:
    # "dang-nhap" was renamed "xac-thuc-vneid" but the checklist still points to the old name: the step
    # nothing else leads to is the likely meaning, however different its spelling.
    flow = content / "flows/dang-ky-tam-tru.yaml"
    edit(flow, "  - id: dang-nhap\n", "  - id: xac-thuc-vneid\n")
    edit(flow, "goto: tai-khoan-vneid, next: dang-nhap}", "goto: tai-khoan-vneid, next: xac-thuc-vneid}")
    (error,) = problems(content, "error")
    assert 'trỏ tới "dang-nhap"' in error.message
    assert 'Có phải ý bạn là "xac-thuc-vneid"?' in error.hint  # far in spelling, but nothing else points to it


def test_an_unknown_named_fact_lists_the_known_ones(content: Path) -> None:
    flow_step_text(content, "Hạn nộp: {fact:han-nop}.")
    (error,) = problems(content, "error")
    assert 'thông tin "{fact:han-nop}" không có trong facts' in error.message


# -- facts ----------------------------------------------------------------------------------------


def add_fact(content: Path, fact: str) -> None:
    edit(
        content / "procedures.yaml",
        "    flow: flows/dang-ky-tam-tru.yaml",
        f"    facts:\n{fact}    flow: flows/dang-ky-tam-tru.yaml",
    )


def test_verified_must_agree_with_the_grade_of_the_source(content: Path) -> None:
    add_fact(
        content,
        "      - {id: han, value: 3 ngày, grade: BG, verified: true, source: hiểu biết chung, as_of: 2026-12-03}\n",
    )
    (error,) = problems(content, "error")
    assert "verified: true không khớp với grade: BG (hiểu biết chung, chưa có nguồn)" in error.message


def test_a_passed_review_date_is_a_warning_until_then_nothing(content: Path) -> None:
    add_fact(
        content,
        "      - {id: han, value: 3 ngày, grade: S, source: x, as_of: 2026-01-01, review_by: 2026-11-30}\n",
    )
    (warning,) = problems(content, "warning")
    assert "đã quá ngày cần xem lại thông tin này (30/11/2026)" in warning.message
    assert warning.path.endswith("facts[0].review_by")
    assert load_content(content, today=date(2026, 11, 29)).problems == ()


# -- words in flow text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nộp trong 60 ngày kể từ ngày sinh.", '"60 ngày" là số tiền, thời hạn'),
        ("Lệ phí 15.000 đồng.", '"15.000 đồng" là số tiền'),
        ("Gọi 1900 0368 nếu cần.", '"1900 0368" là số tiền'),
        ("Gọi 113 khi khẩn cấp.", '"113" là số tiền'),
        ("Từ 1/1/2026 không còn giảm.", '"1/1/2026" là số tiền'),
        ("Bot chưa có thông tin này.", '"Bot" là cách bot tự xưng'),
        ("Nếu bạn nghĩ mình được miễn, hỏi cán bộ.", '"mình" là cách bot tự xưng'),
        ("Người ở xã biên giới (tên gọi theo Thông tư).", '"tên gọi theo" là ghi chú cho cán bộ'),
        ("Theo nguồn bên thứ ba, hạn là như vậy.", '"bên thứ ba" là ghi chú cho cán bộ'),
    ],
)
def test_flow_text_may_not_state_facts_or_speak_as_a_bot(content: Path, text: str, expected: str) -> None:
    flow_step_text(content, text)
    assert any(expected in p.message for p in problems(content, "warning")), [p.message for p in problems(content)]


@pytest.mark.parametrize(
    "text",
    [
        "Năm 2026, bạn nộp trên VNeID.",  # a year alone is not a fact to trace
        "Theo Thông tư 75/2022/TT-BTC, mẫu CT01.",  # document numbers
        "Chụp 2 ảnh, mỗi trang một ảnh. Bước 3 là trả phí.",  # counts and steps
        "Thời gian: {time}. Lệ phí: {fee}. Gọi {phone:tong-dai-dvc}.",
    ],
)
def test_ordinary_numbers_are_not_flagged(content: Path, text: str) -> None:
    flow_step_text(content, text)
    assert problems(content) == []


def test_buttons_must_read_whole(content: Path) -> None:
    flow = content / "flows/dang-ky-tam-tru.yaml"
    edit(flow, "label: Tôi tự nộp,", "label: Đổi thẻ theo khoản 1 Điều 24 Luật Căn cước,")
    edit(
        flow,
        "{id: cho-o, text: Giấy tờ chứng minh chỗ ở hợp pháp}",
        "{id: cho-o, text: Giấy tờ chứng minh chỗ ở hợp pháp của bạn tại nơi đăng ký}",
    )
    messages = [p.message for p in problems(content, "warning")]
    assert any("có tên văn bản luật" in m for m in messages)
    assert any("sẽ bị cắt giữa chừng (tối đa 40)" in m for m in messages)
    edit(flow, "{id: cho-o, text:", "{id: cho-o, label: Giấy tờ chỗ ở, text:")
    assert not any("bị cắt" in p.message for p in problems(content))


def test_hot_reload_refuses_a_look_alike_link_and_keeps_serving(content: Path) -> None:
    import asyncio

    from bot.content import ContentHolder, load

    holder = ContentHolder(load(content), content)
    before = holder.current.catalogue.version
    flow_step_text(content, "Nộp ở https://dichvucong-bocongan.com.vn cho nhanh.")
    outcome = asyncio.run(holder.reload())
    assert outcome.status == "failed" and holder.current.catalogue.version == before
    assert any("GIẢ DẠNG" in p.message for p in outcome.problems)


@pytest.mark.parametrize(
    ("where", "old", "new"),
    [
        ("flow", "text: Ai là người nộp hồ sơ?", 'text: "Nộp ở dichvucong-bocongan.com.vn cho nhanh."'),
        ("catalogue", "name: Bộ phận một cửa UBND xã, phường", "name: Bộ phận một cửa (xem thue-gov.vn.top)"),
    ],
)
def test_a_web_address_without_https_is_checked_too(content: Path, where: str, old: str, new: str) -> None:
    target = content / ("flows/dang-ky-tam-tru.yaml" if where == "flow" else "procedures.yaml")
    edit(target, old, new)
    (error,) = problems(content, "error")
    assert "GIẢ DẠNG trang chính thức" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "Lệ phí cấp lại là 70.000, gọi 18001096 hoặc 0912345678.",
        "Mất khoảng 15 hôm.",
        "Từ tháng 7/2025 đã đổi.",
        "Phí chỉ 50k.",
    ],
)
def test_amounts_and_numbers_typed_without_units_are_flagged(content: Path, text: str) -> None:
    flow_step_text(content, text)
    assert any("là số tiền, thời hạn" in p.message for p in problems(content, "warning"))


# -- fees and dates an official may get wrong ----------------------------------------------------


def test_a_fee_row_without_its_own_source_and_date_is_an_error(content: Path) -> None:
    """Added without them, it took the procedure's grade and date and was shown to citizens as checked."""
    edit(content / "procedures.yaml", "        source: thử nghiệm\n        as_of: 2026-11-28\n", "")
    [found] = problems(content, "error")
    assert (found.file, found.line) == ("procedures.yaml", 22)
    assert "dòng lệ phí thiếu source và as_of" in found.message and 'grade: "?"' in found.hint


@pytest.mark.parametrize("grade", ['"?"', "BG"])
def test_a_fee_row_of_an_unchecked_grade_needs_no_source(content: Path, grade: str) -> None:
    edit(
        content / "procedures.yaml",
        "        grade: S\n        source: thử nghiệm\n        as_of: 2026-11-28\n",
        f"        grade: {grade}\n",
    )
    assert problems(content, "error") == []


def test_todays_date_is_the_officials_day_in_vietnam(content: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 00:30 in Vietnam the server's UTC date is still yesterday: a date checked today is no error."""
    from datetime import datetime, timedelta

    from bot import loader

    server_day = datetime.now(UTC).date()
    evening = datetime(server_day.year, server_day.month, server_day.day, 17, 30, tzinfo=UTC)
    vietnam_day = (evening + timedelta(hours=7)).date()  # already tomorrow there

    class Night(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Night:  # type: ignore[override]
            return evening.astimezone(tz) if tz is not None else evening  # type: ignore[arg-type,return-value]

    monkeypatch.setattr(loader, "datetime", Night)
    edit(content / "procedures.yaml", "        as_of: 2026-11-28\n", f"        as_of: {vietnam_day.isoformat()}\n")
    assert [p for p in load_content(content).problems if p.severity == "error"] == []


def test_a_checked_date_after_today_is_an_error(content: Path) -> None:
    edit(content / "procedures.yaml", "        as_of: 2026-11-28\n", "        as_of: 2062-11-28\n")
    [found] = problems(content, "error")
    assert "28/11/2062 ở sau hôm nay" in found.message and found.path.endswith("fees[0].as_of")


@pytest.mark.parametrize("typed", ["{ fee }", "{fee.", "{lệ phí}", "{fact: ma}", "fee}"])
def test_a_mistyped_placeholder_is_an_error_not_braces_shown_to_citizens(content: Path, typed: str) -> None:
    flow_step_text(content, f"Ai là người nộp hồ sơ? Lệ phí: {typed}")
    assert any("dấu ngoặc nhọn" in p.message for p in problems(content, "error")), typed


def test_doubled_braces_print_a_brace_and_are_no_error(content: Path) -> None:
    flow_step_text(content, "Ai là người nộp hồ sơ? Mã có dạng {{mã}}.")
    assert not any("dấu ngoặc nhọn" in p.message for p in problems(content))


def test_two_fee_rows_for_one_case_in_force_together_are_an_error(content: Path) -> None:
    """A new rate added without closing the old one: citizens were told both amounts."""
    row = "      - label: Đăng ký tạm trú\n"
    newer = (
        row
        + "        online: 10000\n        legal_basis: Thông tư mới\n        valid_from: 2026-07-01\n        grade: S\n"
    )
    newer += "        source: thử nghiệm\n        as_of: 2026-11-28\n"
    edit(content / "procedures.yaml", row, newer + row)
    [found] = problems(content, "error")
    assert 'hai dòng lệ phí cho cùng trường hợp "Đăng ký tạm trú" cùng áp dụng từ 01/07/2026' in found.message
    edit(
        content / "procedures.yaml",
        "        valid_from: 2023-02-05\n",
        "        valid_from: 2023-02-05\n        valid_to: 2026-06-30\n",
    )
    assert problems(content, "error") == []  # the old rate closed the day before the new one
