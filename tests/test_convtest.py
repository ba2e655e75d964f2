"""Conversation tests in YAML (`python -m bot test`): passing, failing with a readable diff, bad files, coverage."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot import convtest
from bot.engine import Content
from tests.conftest import DATA, GOOD
from tests.test_cli import run

CONV = DATA / "conversations"


def test_passing_cases_and_step_coverage(content: Content) -> None:
    outcome = convtest.run_files(content, [CONV / "good-tam-tru.yaml"])
    assert outcome.ok, convtest.report(content, outcome)
    assert (outcome.cases, outcome.passed) == (2, 2)
    cov = {c.procedure: c for c in convtest.coverage(content, outcome)}
    assert (cov["dang-ky-tam-tru"].visited, cov["dang-ky-tam-tru"].total) == (7, 8)
    assert cov["dang-ky-tam-tru"].unvisited == ("loi-thanh-toan",)
    assert cov["tai-khoan-vneid"].percent == 100.0
    text = convtest.report(content, outcome)
    assert "dang-ky-tam-tru    7/8    87.5%  chưa đi qua: loi-thanh-toan" in text
    assert "Chưa có tệp kiểm thử: dang-ky-khai-sinh" in text
    assert text.endswith("2/2 tình huống đạt.")


def test_changed_reply_fails_with_a_character_diff_and_the_file_line(content: Content) -> None:
    outcome = convtest.run_files(content, [CONV / "changed-reply.yaml"], base=DATA)
    assert not outcome.ok
    [failure] = outcome.failures
    text = failure.format()
    assert text.startswith("conversations/changed-reply.yaml:7: tình huống “Lời chào đổi chữ”, lượt 1")
    assert "- Ai là người đi nộp hồ sơ?" in text
    assert "+ Ai là người nộp hồ sơ?" in text
    assert "-Tôi nhờ người thân nộp" in text and "+Tôi nhờ người khác nộp" in text
    assert "| Ai là người nộp hồ sơ?" in text  # the whole reply is shown for context


def test_a_content_edit_breaks_an_official_test_through_the_cli(tmp_path: Path) -> None:
    edited = tmp_path / "content"
    shutil.copytree(GOOD, edited)
    flow = edited / "flows" / "dang-ky-tam-tru.yaml"
    flow.write_text(flow.read_text(encoding="utf-8").replace("Tờ khai CT01", "Tờ khai mẫu CT01"), encoding="utf-8")
    ok = run("test", "--content", str(GOOD), str(CONV / "good-tam-tru.yaml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    proc = run("test", "--content", str(edited), str(CONV / "good-tam-tru.yaml"))
    assert proc.returncode == 1
    assert "HỎNG tests/data/conversations/good-tam-tru.yaml:14:" in proc.stdout
    assert "câu trả lời không có: “Tờ khai CT01”" in proc.stdout
    assert "+ ⬜ 1. Tờ khai mẫu CT01" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("1/2 tình huống đạt, 1 hỏng.")


def test_mistakes_in_a_test_file_are_located_and_such_cases_do_not_run(content: Content) -> None:
    outcome = convtest.run_files(content, [CONV / "broken.yaml"], base=DATA)
    lines = [p.format() for p in outcome.problems]
    assert lines[0].startswith("conversations/broken.yaml:6: lỗi: khoá “expec” không dùng được")
    assert 'Có phải ý bạn là "expect"?' in lines[0]
    assert lines[1].startswith("conversations/broken.yaml:7: lỗi: mỗi lượt cần đúng một")
    assert lines[2].startswith("conversations/broken.yaml:10: lỗi: date phải là một ngày")
    assert outcome.cases == 0 and not outcome.ok


def test_tapping_a_button_that_is_not_offered_names_the_offered_ones(content: Content, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        "cases:\n  - name: nút lạ\n    start: dang-ky-tam-tru\n    turns:\n      - tap: Đồng ý\n",
        encoding="utf-8",
    )
    outcome = convtest.run_files(content, [f])
    [failure] = outcome.failures
    assert "không có nút “Đồng ý”. Các nút đang có: “Tiếp tục”" in failure.format()


def test_ambiguous_tap_and_unknown_procedure_are_reported(content: Content, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        "cases:\n  - name: mơ hồ\n    start: dang-ky-tam-tru\n    turns:\n      - tap: Tiếp tục\n      - tap: nộp\n",
        encoding="utf-8",
    )
    [failure] = convtest.run_files(content, [f]).failures
    assert "“nộp” khớp nhiều nút: “Tôi tự nộp”, “Tôi nhờ người khác nộp”" in failure.format()
    g = tmp_path / "g.yaml"
    g.write_text("procedure: dang-ky-tam-tr\ncases:\n  - name: x\n    turns: [{say: a}]\n", encoding="utf-8")
    [problem] = convtest.run_files(content, [g]).problems
    assert "procedure “dang-ky-tam-tr” không có trong nội dung." in problem.format()
    assert 'Có phải ý bạn là "dang-ky-tam-tru"?' in problem.format()


def test_running_tests_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    proc = run("test", "--content", str(GOOD), str(CONV / "good-tam-tru.yaml"), BOT_DB=str(db))
    assert proc.returncode == 0
    assert not db.exists() and list(tmp_path.iterdir()) == []


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    proc = run("test", "--content", str(GOOD), str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"Lỗi: Không thấy tệp hoặc thư mục kiểm thử: {tmp_path / 'nope'}"]
    proc = run("test", "--content", str(GOOD), str(tmp_path))
    assert proc.returncode == 1
    assert "Không tìm thấy tình huống kiểm thử nào." in proc.stdout


def test_find_opens_the_procedure_whether_the_bot_is_sure_or_offers_it(content: Content, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        "procedure: dang-ky-tam-tru\n"
        "cases:\n"
        "  - name: chắc chắn\n"
        "    turns:\n"
        "      - find: đăng ký tạm trú cho người thuê trọ\n"
        "        expect: {at: gioi-thieu, events: [flow-started]}\n"
        "  - name: bot hỏi lại, lượt find tự bấm đúng thủ tục\n"
        "    turns:\n"
        "      - find: đăng ký\n"
        "        expect: {at: gioi-thieu, contains: [Bắt đầu thủ tục “Đăng ký tạm trú”]}\n"
        "  - name: không tìm ra\n"
        "    turns:\n"
        "      - find: giá vàng hôm nay\n",
        encoding="utf-8",
    )
    assert content.matcher.match("đăng ký").status == "ambiguous"
    outcome = convtest.run_files(content, [f])
    assert outcome.passed == 2
    [failure] = outcome.failures
    assert failure.case == "không tìm ra"
    assert "bot không tìm ra thủ tục dang-ky-tam-tru" in failure.format()


def test_an_impossible_date_in_a_test_file_is_reported_once(content: Content, tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("date: 2026-02-30\ncases:\n  - name: x\n    turns: [{say: a}]\n", encoding="utf-8")
    [problem] = convtest.run_files(content, [f]).problems
    assert problem.format().endswith("lỗi: giá trị “2026-02-30” không đọc được (ngày không có thật?).")
