"""Validator: good content loads clean; each broken fixture gives exact messages at exact lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.loader import load_content
from tests.conftest import DATA, GOOD, ROOT
from tests.test_cli import run as run_cli

BAD = DATA / "bad"

# fixture file in tests/data/bad (None: delete the target), the file it replaces, the exact problem lines.
CASES: list[tuple[str | None, str, list[str]]] = [
    (
        "syntax-error.yaml",
        "flows/dang-ky-khai-sinh.yaml",
        [
            "flows/dang-ky-khai-sinh.yaml:5:11: lỗi: lỗi cú pháp YAML: dấu ngoặc kép mở ở đây chưa được đóng. "
            "Hãy kiểm tra thụt lề (dùng dấu cách, không dùng Tab), dấu hai chấm sau tên khoá và dấu ngoặc kép đóng mở đủ cặp.",
        ],
    ),
    (
        "dangling-next.yaml",
        "flows/dang-ky-tam-tru.yaml",
        [
            'flows/dang-ky-tam-tru.yaml:20:11: lỗi: bước "giay-to" trỏ tới "dang-nhapp" nhưng không có bước nào tên như vậy. '
            'Có phải ý bạn là "dang-nhap"? Vì lỗi này, 4 bước phía sau đang không tới được. [steps[2].next]',
        ],
    ),
    (
        "duplicate-step-id.yaml",
        "flows/dang-ky-tam-tru.yaml",
        [
            'flows/dang-ky-tam-tru.yaml:37:18: lỗi: bước "thanh-toan" trỏ tới "loi-thanh-toan" nhưng không có bước nào '
            'tên như vậy. Có phải ý bạn là "thanh-toan"? [steps[5].failed_next]',
            'flows/dang-ky-tam-tru.yaml:38:9: lỗi: mã bước "thanh-toan" bị trùng (đã có ở dòng 33). '
            "Mỗi bước cần một mã riêng trong tệp. [steps[6].id]",
        ],
    ),
    (
        "wrong-type.yaml",
        "procedures.yaml",
        [
            'procedures.yaml:23:17: lỗi: số tiền khi nộp trực tuyến (đồng) cần là số nguyên, không phải "7.000". '
            "Viết số tiền liền, không dấu chấm, ví dụ 20000. [procedures[0].fees[0].online]",
            'procedures.yaml:34:19: lỗi: true nếu làm trọn vẹn trực tuyến được cần là true hoặc false, không phải "co". '
            "Viết true hoặc false. [procedures[0].fully_online]",
        ],
    ),
    (
        "unknown-key.yaml",
        "procedures.yaml",
        [
            'procedures.yaml:32:5: lỗi: khoá "procesing_time" không có trong định dạng. Có phải ý bạn là "processing_time"? '
            "[procedures[0].procesing_time]",
            'flows/dang-ky-tam-tru.yaml:5:11: lỗi: chỗ điền "{time}" cần mục processing_time của thủ tục "dang-ky-tam-tru" '
            "nhưng mục đó chưa có. Hãy thêm processing_time vào thủ tục trong procedures.yaml hoặc bỏ chỗ điền này. "
            "[steps[0].text]",
        ],
    ),
    (
        "duplicate-procedure-id.yaml",
        "procedures.yaml",
        [
            'procedures.yaml:39:9: lỗi: mã thủ tục "dang-ky-tam-tru" bị trùng (đã có ở dòng 16). '
            "Mỗi thủ tục cần một mã riêng; hãy đổi mã hoặc gộp hai mục. [procedures[1].id]",
        ],
    ),
    (
        "fee-without-date.yaml",
        "procedures.yaml",
        [
            'procedures.yaml:22:9: lỗi: thiếu khoá bắt buộc "valid_from" (áp dụng từ ngày (YYYY-MM-DD)). '
            "Hãy thêm dòng valid_from: ... [procedures[0].fees[0]]",
        ],
    ),
    (
        "list-not-mapping.yaml",
        "procedures.yaml",
        [
            "procedures.yaml:20:13: lỗi: cần cơ quan giải quyết dạng bảng khoá: giá trị nhưng lại là một danh sách. "
            "Viết mỗi khoá trên một dòng, dạng ten_khoa: gia_tri. [procedures[0].agency]",
        ],
    ),
    (
        "placeholder-missing-field.yaml",
        "flows/dang-ky-khai-sinh.yaml",
        [
            'flows/dang-ky-khai-sinh.yaml:5:11: lỗi: chỗ điền "{phi}" không có. Các chỗ điền: {name}, {code}, {agency}, '
            "{fee}, {time}, {url}, {hotline}, {fact}, {phone}. [steps[0].text]",
            'flows/dang-ky-khai-sinh.yaml:5:11: lỗi: chỗ điền "{url}" cần mục url của thủ tục "dang-ky-khai-sinh" nhưng '
            "mục đó chưa có. Hãy thêm url vào thủ tục trong procedures.yaml hoặc bỏ chỗ điền này. [steps[0].text]",
        ],
    ),
    (
        "dead-end.yaml",
        "flows/dang-ky-khai-sinh.yaml",
        [
            'flows/dang-ky-khai-sinh.yaml:3:5: lỗi: bước "gioi-thieu" không có đường đi tiếp (ngõ cụt). '
            "Hãy thêm next: <mã bước>, hoặc đổi kind thành end nếu đây là bước cuối. [steps[0]]",
            'flows/dang-ky-khai-sinh.yaml:6:5: cảnh báo: không có đường nào dẫn tới bước "xong". '
            "Hãy trỏ next của một bước khác tới bước này, hoặc xoá bước. [steps[1]]",
        ],
    ),
    (
        "empty.yaml",
        "flows/tai-khoan-vneid.yaml",
        [
            "flows/tai-khoan-vneid.yaml:1:1: lỗi: tệp rỗng. Tệp cần có nội dung kịch bản các bước.",
        ],
    ),
    (
        "binary-junk.yaml",
        "procedures.yaml",
        [
            "procedures.yaml:1:1: lỗi: tệp không phải văn bản UTF-8. Hãy lưu lại tệp dưới dạng văn bản UTF-8.",
        ],
    ),
    (
        "list-root.yaml",
        "procedures.yaml",
        [
            "procedures.yaml:1:1: lỗi: cần danh mục thủ tục dạng bảng khoá: giá trị nhưng lại là một danh sách. "
            "Viết mỗi khoá trên một dòng, dạng ten_khoa: gia_tri.",
        ],
    ),
    (
        "reminder-unknown-guide.yaml",
        "flows/dang-ky-tam-tru.yaml",
        [
            'flows/dang-ky-tam-tru.yaml:35:14: lỗi: bước "dang-nhap" nhảy tới hướng dẫn "tai-khoan-vneidd" nhưng không '
            'có thủ tục nào mã như vậy. Có phải ý bạn là "tai-khoan-vneid"? [steps[4].reminder.guide]',
        ],
    ),
    (
        "stage-reminder-unknown-guide.yaml",
        "procedures.yaml",
        [
            'procedures.yaml:79:14: lỗi: lời nhắc của chặng "thanh-toan" mở hướng dẫn "thanh-toan-truc-tuyenn" nhưng '
            'không có hướng dẫn dùng chung nào mã như vậy. Có phải ý bạn là "thanh-toan-truc-tuyen"? '
            "[stages[3].reminder.guide]",
        ],
    ),
    (
        None,
        "flows/dang-ky-khai-sinh.yaml",
        [
            'procedures.yaml:48:11: lỗi: không tìm thấy tệp kịch bản "flows/dang-ky-khai-sinh.yaml" của thủ tục '
            '"dang-ky-khai-sinh". Hãy tạo tệp flows/dang-ky-khai-sinh.yaml hoặc sửa đường dẫn flow. [procedures[1].flow]',
        ],
    ),
]


def broken_copy(tmp_path: Path, fixture: str | None, target: str) -> Path:
    content = tmp_path / "content"
    shutil.copytree(GOOD, content)
    if fixture is None:
        (content / target).unlink()
    else:
        shutil.copy(BAD / fixture, content / target)
    return content


def test_good_content_has_no_problems() -> None:
    result = load_content(GOOD)
    assert result.problems == ()
    assert result.catalogue is not None


@pytest.mark.parametrize(("fixture", "target", "expected"), CASES, ids=[c[0] or "missing-flow-file" for c in CASES])
def test_broken_content(tmp_path: Path, fixture: str | None, target: str, expected: list[str]) -> None:
    result = load_content(broken_copy(tmp_path, fixture, target))
    assert result.catalogue is None
    errors = [p.format() for p in result.problems if p.severity == "error"]
    reported = [p.format() for p in result.problems]
    for line in expected:
        assert line in reported
    assert errors == [e for e in expected if ": lỗi: " in e]


@pytest.mark.parametrize(("fixture", "target", "expected"), CASES, ids=[c[0] or "missing-flow-file" for c in CASES])
def test_validate_cli_on_broken_content(tmp_path: Path, fixture: str | None, target: str, expected: list[str]) -> None:
    content = broken_copy(tmp_path, fixture, target)
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "validate", "--content", str(content)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    for line in expected:
        assert line in proc.stdout.splitlines()


def test_every_problem_of_every_file_in_one_run(tmp_path: Path) -> None:
    content = broken_copy(tmp_path, "wrong-type.yaml", "procedures.yaml")
    shutil.copy(BAD / "dangling-next.yaml", content / "flows/dang-ky-tam-tru.yaml")
    shutil.copy(BAD / "empty.yaml", content / "flows/tai-khoan-vneid.yaml")
    files = {p.file for p in load_content(content).errors}
    assert files == {"procedures.yaml", "flows/dang-ky-tam-tru.yaml", "flows/tai-khoan-vneid.yaml"}


def test_missing_catalogue(tmp_path: Path) -> None:
    result = load_content(tmp_path)
    assert [p.message for p in result.problems] == [f"không tìm thấy tệp procedures.yaml trong thư mục {tmp_path}."]


def test_same_labels_long_texts_and_links_are_reported(tmp_path: Path) -> None:
    content = broken_copy(tmp_path, None, "flows/dang-ky-khai-sinh.yaml")
    (content / "flows/dang-ky-khai-sinh.yaml").write_text(
        "procedure: dang-ky-khai-sinh\n"
        "steps:\n"
        "  - id: hoi\n"
        "    kind: choice\n"
        "    text: Vào http://dichvucong.gov.vn hoặc https://dvc-gia.com/dang-nhap, không vào https://vneid.gov.vn.\n"
        "    links: [http://example.com, https://lua-dao.com/vneid]\n"
        "    options:\n"
        "      - {id: a, label: Có, next: dai}\n"
        "      - {id: b, label: có, next: dai}\n"
        "  - id: dai\n"
        "    kind: end\n"
        f"    text: {'a' * 2100}\n",
        encoding="utf-8",
    )
    lines = [p.format() for p in load_content(content).problems]
    assert any(':6:13: lỗi: link "http://example.com" không dùng https.' in line for line in lines)
    assert any(
        ':6:33: lỗi: link "https://lua-dao.com/vneid" không thuộc danh sách trang được phép' in line for line in lines
    )
    assert any(':5:11: lỗi: link "http://dichvucong.gov.vn" không dùng https.' in line for line in lines)
    assert any(':5:11: lỗi: link "https://dvc-gia.com/dang-nhap" không thuộc danh sách' in line for line in lines)
    assert not any("vneid.gov.vn" in line for line in lines)
    assert any('hai lựa chọn trong bước "hoi" có cùng chữ "có"' in line for line in lines)
    assert any("quá 2000 ký tự Zalo cho phép" in line for line in lines)


ODD_CATALOGUES = [
    "just a string\n",
    "42\n",
    "procedures: 7\n",
    "procedures:\n  - 1\n  - [a, b]\n  - {id: 5, flow: 3}\n",
    "? [complex, key]\n: value\nprocedures: []\n",
    "procedures:\n  - &a {id: x-y, name: n, area: a, verification: {verified: true}, flow: flows/none.yaml}\n  - *a\n",
    "procedures:\n  - id: a\n    name: n\n    area: a\n    verification: yes\n    flow: ../../../../etc/passwd\n",
    "\t- tab\n",
    "%YAML 9.9\n---\nprocedures: []\n",
    "procedures: []\n---\nsecond: doc\n",
]


@pytest.mark.parametrize("text", ODD_CATALOGUES)
def test_odd_input_never_raises(tmp_path: Path, text: str) -> None:
    (tmp_path / "procedures.yaml").write_text(text, encoding="utf-8")
    result = load_content(tmp_path)
    assert all(p.line >= 1 and p.col >= 1 and p.message for p in result.problems)


@pytest.mark.parametrize(
    "text",
    [
        "steps: 5\nprocedure: 7\n",
        "- a\n",
        "steps:\n  - kind: choice\n    options: x\n",
        "procedure: dang-ky-khai-sinh\nsteps:\n  - {id: a, kind: end, text: x, links: 5}\n",
    ],
)
def test_odd_flow_never_raises(tmp_path: Path, text: str) -> None:
    content = broken_copy(tmp_path, None, "flows/dang-ky-khai-sinh.yaml")
    (content / "flows/dang-ky-khai-sinh.yaml").write_text(text, encoding="utf-8")
    result = load_content(content)
    assert result.catalogue is None
    assert any(p.file == "flows/dang-ky-khai-sinh.yaml" for p in result.errors)


def test_flow_outside_the_flows_directory_is_refused(tmp_path: Path) -> None:
    content = broken_copy(tmp_path, None, "flows/dang-ky-khai-sinh.yaml")
    catalogue = (content / "procedures.yaml").read_text(encoding="utf-8")
    (content / "procedures.yaml").write_text(
        catalogue.replace("flow: flows/dang-ky-khai-sinh.yaml", "flow: ../../etc/passwd"), encoding="utf-8"
    )
    messages = [p.message for p in load_content(content).errors]
    assert messages == ['tệp kịch bản "../../etc/passwd" nằm ngoài thư mục flows/.']


def test_validate_warns_about_aliases_that_match_another_procedure(tmp_path: Path) -> None:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    catalogue = content / "procedures.yaml"
    text = catalogue.read_text(encoding="utf-8")
    text = text.replace(
        "aliases: [đăng ký tạm trú, dk tam tru, khai báo tạm trú, tam tru cho nguoi thue tro]",
        "aliases: [đăng ký tạm trú, dk tam tru, khai báo tạm trú, tam tru cho nguoi thue tro, khai sinh cho bé]",
    )
    catalogue.write_text(text, encoding="utf-8")
    proc = run_cli("validate", "--content", str(content))
    assert proc.returncode == 0  # a warning, not an error
    [line] = [x for x in proc.stdout.splitlines() if "giống thủ tục" in x]
    assert line.startswith("procedures.yaml:")
    assert '"khai sinh cho bé" của thủ tục "dang-ky-tam-tru" giống thủ tục "dang-ky-khai-sinh"' in line
    assert line.endswith("[procedures[0].aliases[4]]")
    assert run_cli("validate", "--strict", "--content", str(content)).returncode == 1
    assert run_cli("validate", "--strict", "--no-confusable", "--content", str(content)).returncode == 0


def test_a_date_that_does_not_exist_is_a_located_error(tmp_path: Path) -> None:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    catalogue = content / "procedures.yaml"
    catalogue.write_text(
        catalogue.read_text(encoding="utf-8").replace("valid_from: 2023-02-05", "valid_from: 2023-02-31"),
        encoding="utf-8",
    )
    proc = run_cli("validate", "--content", str(content))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert 'cần là ngày dạng YYYY-MM-DD, không phải "2023-02-31"' in proc.stdout
