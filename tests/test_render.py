"""Phone-sized messages: every step of every shipped flow, on every fee date, fits 600 characters per message."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from bot import render_check
from bot.channels import console, telegram, zalo_bot, zalo_oa
from bot.content import load
from bot.engine import MAX_REPLY_CHARS, Choice, Content, Reply, fit
from tests.conftest import GOOD, ROOT
from tests.test_cli import run

TODAY = date(2026, 12, 3)


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(ROOT)


def shown_lengths(reply: Reply) -> list[int]:
    """Each message as the console, Zalo Bot, Zalo OA and Telegram really show it."""
    lengths = [len(console.render_text(reply))]
    lengths += [len(piece) for piece in zalo_bot.render(reply)]
    lengths += [len(m["text"]) for m in zalo_oa.messages(reply)]
    lengths += [len(text) for text, _ in telegram.render(reply)]
    return lengths


def test_every_step_of_every_flow_fits_a_phone_screen_on_every_fee_date(shipped: Content) -> None:
    days = render_check.check_dates(shipped, TODAY)
    assert len(days) > 5  # today and the dates fee rows start and stop
    too_long = []
    count = 0
    for r in render_check.renderings(shipped, days, TODAY):
        count += 1
        for reply in r.replies:
            longest = max(shown_lengths(reply))
            if longest > MAX_REPLY_CHARS:
                too_long.append(f"{r.procedure}/{r.step} {r.day} {dict(r.answers)}: {longest}")
    assert count > 1000  # every step, every branch of its checklist, every fee date
    assert too_long == []


def test_no_step_says_the_same_sentence_twice(shipped: Content) -> None:
    assert [f"{f.procedure}/{f.step}: {f.message}" for f in render_check.findings(shipped, TODAY)] == []


def test_a_long_reply_becomes_several_messages_in_order_with_the_buttons_last() -> None:
    paragraphs = [f"Đoạn {i}: " + "chữ " * 60 for i in range(6)]
    reply = Reply(
        "\n\n".join(paragraphs), (Choice("next", "Tiếp tục"), Choice("cmd:help", "Trợ giúp")), ("https://x.gov.vn",)
    )
    parts = fit(reply)
    assert len(parts) > 1
    assert all(render_check.rendered_length(p) <= MAX_REPLY_CHARS for p in parts)
    assert [p.choices for p in parts[:-1]] == [()] * (len(parts) - 1) and parts[-1].choices == reply.choices
    assert parts[-1].links == reply.links
    assert " ".join(p.text for p in parts).split() == reply.text.split()  # nothing lost, nothing reordered
    one_line = Reply("x " * 700, (Choice("next", "Tiếp tục"),))
    assert all(render_check.rendered_length(p) <= MAX_REPLY_CHARS for p in fit(one_line))
    short = Reply("Ngắn.", (Choice("next", "Tiếp tục"),))
    assert fit(short) == [short]


def test_one_long_sentence_is_cut_between_words_not_inside_one() -> None:
    sentence = Reply(" ".join(["thông tin tạm trú của bạn"] * 40), (Choice("next", "Tiếp tục"),))
    parts = fit(sentence)
    assert len(parts) > 1 and all(render_check.rendered_length(p) <= MAX_REPLY_CHARS for p in parts)
    assert all(p.text.endswith("bạn") for p in parts)  # every message ends with a whole word
    assert " ".join(p.text for p in parts).split() == sentence.text.split()


def test_validate_names_a_step_whose_message_cannot_fit(tmp_path: Path) -> None:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    flow = content / "flows" / "dang-ky-tam-tru.yaml"
    text = flow.read_text(encoding="utf-8")
    # the same sentence twice in one step, and one unbroken line longer than a phone screen
    flow.write_text(
        text.replace(
            "text: Ai là người nộp hồ sơ?",
            "text: Ai là người nộp hồ sơ cho gia đình? Ai là người nộp hồ sơ cho gia đình?",
            1,
        ),
        encoding="utf-8",
    )
    proc = run("validate", "--content", str(content), "--no-confusable")
    assert "flows/dang-ky-tam-tru.yaml:" in proc.stdout
    assert "xuất hiện hai lần trong bước này" in proc.stdout and "cảnh báo" in proc.stdout
    assert run("validate", "--strict", "--content", str(content), "--no-confusable").returncode == 1


def test_validate_warns_about_a_line_too_long_for_one_message(tmp_path: Path) -> None:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    flow = content / "flows" / "dang-ky-tam-tru.yaml"
    long_line = "Bạn hãy đọc kỹ " + "và làm theo từng chữ " * 40
    flow.write_text(
        flow.read_text(encoding="utf-8").replace("text: Ai là người nộp hồ sơ?", f"text: {long_line.strip()}", 1),
        encoding="utf-8",
    )
    proc = run("validate", "--content", str(content), "--no-confusable")
    [warning] = [line for line in proc.stdout.splitlines() if "không vừa một tin nhắn" in line]
    assert warning.startswith("flows/dang-ky-tam-tru.yaml:") and "bước “ai-nop”" in warning


def test_validate_tries_every_way_of_saying_a_choice_at_its_step(tmp_path: Path) -> None:
    content = tmp_path / "c"
    shutil.copytree(GOOD, content)
    flow = content / "flows" / "dang-ky-tam-tru.yaml"
    flow.write_text(
        flow.read_text(encoding="utf-8").replace(
            "      - {id: tu-nop, label: Tôi tự nộp, next: giay-to}\n"
            "      - {id: nho-nguoi, label: Tôi nhờ người khác nộp, next: giay-to}\n",
            "      - id: tu-nop\n"
            "        label: Tôi tự nộp\n"
            "        says: [tự đi nộp, một mình tui làm, nhờ con]\n"
            "        next: giay-to\n"
            "      - id: nho-nguoi\n"
            "        label: Tôi nhờ người khác nộp\n"
            "        says: [nhờ con, thôi]\n"
            "        next: giay-to\n",
            1,
        ),
        encoding="utf-8",
    )
    proc = run("validate", "--content", str(content), "--no-confusable")
    found = [line for line in proc.stdout.splitlines() if "cách nói" in line]
    # "nhờ con" is said for both buttons (the bot would ask which), "thôi" means stop everywhere;
    # "tự đi nộp" and "một mình tui làm" pick their button and are not mentioned.
    assert len(found) == 3, proc.stdout
    assert sum("“nhờ con”" in line for line in found) == 2
    [stop] = [line for line in found if "cách nói “thôi”" in line]
    line_no = flow.read_text(encoding="utf-8").splitlines().index("        says: [nhờ con, thôi]") + 1
    assert stop.startswith(f"flows/dang-ky-tam-tru.yaml:{line_no}:")
    assert run("validate", "--strict", "--content", str(content), "--no-confusable").returncode == 1
