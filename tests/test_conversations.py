"""The shipped YAML conversation tests (tests/conversations) pass and reach every step of every flow."""

from __future__ import annotations

import pytest

from bot import convtest
from bot.content import load
from bot.engine import Content
from tests.conftest import ROOT

CONVERSATIONS = ROOT / "tests" / "conversations"


@pytest.fixture(scope="module")
def shipped() -> Content:
    return load(ROOT)


@pytest.fixture(scope="module")
def outcome(shipped: Content) -> convtest.Outcome:
    return convtest.run_files(shipped, convtest.find_files([CONVERSATIONS]), base=ROOT)


def test_every_conversation_case_passes(shipped: Content, outcome: convtest.Outcome) -> None:
    assert outcome.cases >= 3 * len(shipped.catalogue.procedures)
    assert outcome.ok, convtest.report(shipped, outcome, verbose_coverage=False)


def test_every_flow_has_a_test_file_and_every_step_is_reached(shipped: Content, outcome: convtest.Outcome) -> None:
    assert convtest.untested(shipped, outcome) == []
    incomplete = {c.procedure: c.unvisited for c in convtest.coverage(shipped, outcome) if c.unvisited}
    assert incomplete == {}
