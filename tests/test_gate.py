"""The intent gate (issue 15): questions about what the law says are answered with where to ask, not a flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot import gate, texts
from bot.content import load
from bot.engine import Content, Inbound, Session, step
from bot.loader import load_content
from tests.conftest import GOOD, NOW, ROOT
from tests.test_cli import run

LAW = [
    "vượt đèn đỏ phạt bao nhiêu tiền",
    "không đội mũ bảo hiểm bị phạt mấy trăm",
    "con riêng có được hưởng thừa kế không",
    "di chúc viết tay có hợp pháp không",
    "tôi có được hưởng trợ cấp không khi nghỉ việc",
    "người cao tuổi có được miễn phí xe buýt không",
]
DO = [
    "làm lại căn cước bị mất ở đâu",
    "đăng ký khai sinh cho con cần giấy gì",
    "nộp phạt giao thông trên mạng thế nào",
    "thủ tục sang tên sổ đỏ gồm những gì",
    "xin trợ cấp thất nghiệp nộp hồ sơ ở đâu",
    "gia hạn tạm trú trên vneid",
]


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(ROOT)


def test_training_is_reproducible_and_separates_the_examples() -> None:
    examples = [(t, True) for t in LAW] + [(t, False) for t in DO]
    first, second = gate.train(examples), gate.train(list(reversed(examples)))
    assert gate.dumps(first) == gate.dumps(second)  # same examples, same weights, whatever the order
    assert all(first.is_law(t) for t in LAW) and not any(first.is_law(t) for t in DO)
    top = first.explain("vượt đèn đỏ phạt bao nhiêu tiền")
    assert top and all(isinstance(f, str) and isinstance(w, float) for f, w in top)


def test_rows_noted_only_out_of_scope_teach_the_gate_nothing() -> None:
    rows = [
        ("Lấn chiếm lòng đường bị phạt bao nhiêu?", "none", "oos"),  # a fine's amount: not a "do" question
        ("Hàng xóm mất thì ai được hưởng đất?", "none", "inheritance-property"),
        ("lam giay khai sinh o dau", "dang-ky-khai-sinh", "nodiacritics"),
    ]
    assert gate.tsv_examples(rows) == [(rows[1][0], True), (rows[2][0], False)]


def test_personal_numbers_are_not_features() -> None:
    assert gate.features("phạt bao nhiêu, sđt 0912345678") == gate.features("phạt bao nhiêu")


@pytest.mark.parametrize(
    "data",
    [{"format": 2}, {"format": 1, "weights": [], "bias": 0, "threshold": 0.5}, {"format": 1, "weights": {}, "bias": 0}],
)
def test_a_weights_file_that_is_not_one_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        gate.Gate.from_json(data)


@pytest.mark.parametrize(
    "question",
    [
        "Vượt đèn đỏ xe máy năm nay phạt bao nhiêu tiền vậy ad?",
        "Cho em hỏi con riêng có được hưởng thừa kế nhà đất của cha dượng không?",
    ],
)
def test_a_legal_question_is_answered_with_where_to_ask_and_no_flow_starts(shipped: Content, question: str) -> None:
    result = step(shipped, Session(), Inbound("t", "u", text=question), NOW)
    assert result.session.position is None  # nothing started
    said = "\n".join(r.text for r in result.replies)
    assert texts.LEGAL_QUESTION in said and "không tư vấn pháp luật" in said
    assert "0290.1022" in said  # where to ask, from the catalogue's contacts
    assert all(len(r.text) <= 600 for r in result.replies)
    assert "legal-question" in [e.type for e in result.events]
    labels = [c.label for c in result.replies[-1].choices]
    assert labels[-1] == texts.MENU


def test_the_related_procedure_is_offered_and_starts_only_when_tapped(shipped: Content) -> None:
    asked = step(
        shipped,
        Session(),
        Inbound("t", "u", text="Không nộp phạt giao thông đúng hạn thì bị phạt thêm bao nhiêu?"),
        NOW,
    )
    offered = [c for c in asked.replies[-1].choices if c.id.startswith("p:")]
    assert offered and offered[0].label.startswith("Làm: ")
    tapped = step(shipped, asked.session, Inbound("t", "u", kind="choice", choice_id=offered[0].id), NOW)
    assert tapped.session.position is not None and tapped.session.position.procedure == offered[0].id[2:]


def test_a_how_to_question_on_the_same_topic_still_starts_the_procedure(shipped: Content) -> None:
    result = shipped.matcher.match("tôi muốn nộp phạt giao thông trên mạng thì làm sao")
    assert (result.status, result.intent) == ("confident", "do")


def test_match_json_shows_the_gate_and_candidates_in_score_order() -> None:
    line = json.loads(run("match", "--json", "vượt đèn đỏ xe máy năm nay phạt bao nhiêu tiền?").stdout)
    assert line["status"] == "none" and line["gate"]["decision"] == "law" and 0.5 <= line["gate"]["score"] <= 1
    scores = [c["score"] for c in json.loads(run("match", "--json", "lam cccd").stdout)["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) > 1


def _content_with_gate(tmp_path: Path, per_category: int = 5) -> Path:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    lines = ["intent_gate:", "  threshold: 50", "  contacts: [tong-dai-dvc]", "  law:"]
    for category in ("penalty", "inheritance-property", "eligibility", "legal-advice"):
        lines.append(f"    {category}:")
        lines += [f"      - câu hỏi luật {category} thứ {i}" for i in range(per_category)]
    lines += ["  do:", "    - làm tạm trú ở đâu"]
    catalogue = content / "procedures.yaml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")
    return content


def messages(content: Path, severity: str) -> list[str]:
    return [p.message for p in load_content(content).problems if p.severity == severity]


def test_validate_asks_to_train_then_tells_when_the_examples_changed(tmp_path: Path) -> None:
    content = _content_with_gate(tmp_path)
    assert any("train-gate" in m or "intent-gate.json" in m for m in messages(content, "warning"))
    trained = run("train-gate", "--content", str(content), "--data", str(ROOT / "tests/data/eval/dev.tsv"))
    assert trained.returncode == 0, trained.stderr
    assert (content / gate.GATE_FILE).is_file()
    assert [m for m in messages(content, "warning") if "intent-gate" in m or "câu mẫu" in m] == []
    catalogue = content / "procedures.yaml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8") + "    - làm khai sinh cho con\n", encoding="utf-8")
    assert any("chưa theo kịp" in m for m in messages(content, "warning"))


def test_a_broken_weights_file_is_a_warning_and_the_bot_still_runs(tmp_path: Path) -> None:
    content = _content_with_gate(tmp_path)
    (content / gate.GATE_FILE).write_text("{not json", encoding="utf-8")
    assert any("hỏng" in m for m in messages(content, "warning"))
    served = load(content)  # no gate, plain matching
    assert served.matcher.gate is None


def test_too_few_examples_and_a_bad_threshold_are_errors(tmp_path: Path) -> None:
    content = _content_with_gate(tmp_path, per_category=3)
    catalogue = content / "procedures.yaml"
    catalogue.write_text(catalogue.read_text(encoding="utf-8").replace("threshold: 50", "threshold: 150"), "utf-8")
    errors = messages(content, "error")
    assert sum("cần ít nhất 5" in m for m in errors) == 4
    assert any("ngưỡng 150" in m for m in errors)


def test_inside_a_procedure_only_a_plain_legal_question_is_answered_as_one(shipped: Content) -> None:
    from bot.engine import Position

    at = Session(
        position=Position("dang-ky-khai-tu", "hoi-thong-tin"), history=(Position("dang-ky-khai-tu", "gioi-thieu"),)
    )
    short = step(shipped, at, Inbound("t", "u", text="kiem tra roi, khong sai cho nao"), NOW)
    assert texts.LEGAL_QUESTION not in "\n".join(r.text for r in short.replies)
    plain = "Cho hỏi con riêng của ông nhà tôi có được hưởng thừa kế nhà đất không?"
    legal = step(shipped, at, Inbound("t", "u", text=plain), NOW)
    said = "\n".join(r.text for r in legal.replies)
    assert texts.LEGAL_QUESTION in said and "0290.1022" in said  # where to ask, mid-procedure too
    assert all(len(r.text) <= 600 for r in legal.replies)
    assert legal.session.position == at.position  # the citizen stays where they were, the step is shown again


# -- procedure families ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "family"),
    [
        ("làm thẻ căn cước", "can-cuoc"),
        ("lam can cuoc", "can-cuoc"),
        ("lam so ho khau", "thuong-tru"),
        # the family's words and no word of one member's own, however far the top member leads
        ("làm căn cước ở đâu", "can-cuoc"),
        ("lam can cuoc o dau vay", "can-cuoc"),
        ("làm bằng lái", "bang-lai"),
    ],
)
def test_a_question_about_the_whole_family_is_asked_back_not_guessed(
    shipped: Content, question: str, family: str
) -> None:
    result = shipped.matcher.match(question)
    assert (result.status, result.family) == ("ambiguous", family)
    if question == "lam can cuoc":
        return  # two words that also name the "Căn cước" area: the engine lists that area instead
    asked = step(shipped, Session(), Inbound("t", "u", text=question), NOW)
    members = next(f for f in shipped.catalogue.families if f.id == family).members
    assert asked.replies[-1].text == next(f for f in shipped.catalogue.families if f.id == family).question
    assert {c.id[2:] for c in asked.replies[-1].choices if c.id.startswith("p:")} == set(members)
    assert asked.session.position is None


@pytest.mark.parametrize(
    ("question", "procedure"),
    [
        ("cấp lại căn cước bị mất", "cap-doi-can-cuoc"),
        ("con tôi 15 tuổi làm thẻ căn cước", "cap-the-can-cuoc"),
        ("làm căn cước cho con 3 tuổi", "can-cuoc-duoi-6-tuoi"),
        ("xoa dang ky thuong tru", "xoa-dang-ky-thuong-tru"),
        ("đk thường trú online trên vneid ntn ạ", "dang-ky-thuong-tru"),  # its whole name
        ("lam can cuoc cho con 3 tuoi", "can-cuoc-duoi-6-tuoi"),  # an age in the member's range
        ("dk ks cho be", "dang-ky-khai-sinh"),  # chat abbreviations: ks is khai sinh
        # an age in one member's range decides, however close the siblings score ("làm căn cước" alone is asked)
        ("lam can cuoc cho con 2 tuoi", "can-cuoc-duoi-6-tuoi"),
        # ...unless another member's own words are said too: lost is "cấp lại"
        ("cấp lại căn cước cho con 8 tuổi bị mất", "cap-doi-can-cuoc"),
        # ...but not the words of a member the age rules out: "cháu" is said for small children, not at 10
        ("dk cccd cho chau noi 10 tuoi", "cap-the-can-cuoc"),
        ("làm căn cước cho cháu ngoại 9 tuổi", "cap-the-can-cuoc"),
        # an age said as a bound: "dưới 6 tuổi" is under six, not six
        ("bé nhà tui dưới 6 tuổi thì làm căn cước sao", "can-cuoc-duoi-6-tuoi"),
        # a member's whole name said word for word, holding its sibling's name: that member
        (
            "Cháu tôi chuyển vào Sài Gòn lâu rồi, tôi muốn xóa đăng ký thường trú của cháu ở nhà tôi",
            "xoa-dang-ky-thuong-tru",
        ),
    ],
)
def test_a_question_naming_the_member_goes_straight_in(shipped: Content, question: str, procedure: str) -> None:
    result = shipped.matcher.match(question)
    assert (result.status, result.procedure_id) == ("confident", procedure)


def test_a_family_with_an_unknown_or_shared_member_is_an_error(tmp_path: Path) -> None:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    catalogue = content / "procedures.yaml"
    catalogue.write_text(
        catalogue.read_text(encoding="utf-8")
        + "families:\n"
        + '  - {id: cu-tru, question: "Bạn cần gì?", members: [dang-ky-tam-tru, dang-ky-tam-truu]}\n'
        + '  - {id: khac, question: "Bạn cần gì?", members: [dang-ky-tam-tru, dang-ky-khai-sinh]}\n',
        encoding="utf-8",
    )
    errors = messages(content, "error")
    assert any('"dang-ky-tam-truu" không có' in m for m in errors)  # not in the catalogue
    assert any('nhóm "cu-tru" cần ít nhất 2' in m for m in errors)  # so one member is left
    assert any('đã thuộc nhóm "cu-tru"' in m for m in errors)  # tạm trú cannot be in two families


def test_after_a_legal_answer_an_acknowledgement_starts_nothing(shipped: Content) -> None:
    asked = step(shipped, Session(), Inbound("t", "u", text="Vượt đèn đỏ xe máy năm nay phạt bao nhiêu tiền?"), NOW)
    for reply in ("dạ hiểu rồi", "ok", "vâng", "rồi sao nữa"):
        after = step(shipped, asked.session, Inbound("t", "u", text=reply), NOW)
        assert after.session.position is None, reply  # only a tap (or its number) starts the related procedure
        assert "flow-started" not in [e.type for e in after.events]


@pytest.mark.parametrize("bad", ['{"format": 1, "weights": {}, "bias": NaN, "threshold": 0.5}', "[" * 200_000])
def test_a_weights_file_with_nan_or_absurd_nesting_is_a_warning_not_a_crash(tmp_path: Path, bad: str) -> None:
    content = _content_with_gate(tmp_path)
    (content / gate.GATE_FILE).write_text(bad, encoding="utf-8")
    assert any("hỏng" in m for m in messages(content, "warning"))
    assert load(content).matcher.gate is None
    assert load(content).matcher.match("làm tạm trú cho người thuê trọ ở đâu").intent == "do"
