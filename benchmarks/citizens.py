"""Scripted citizens for the benchmarks: what each one types, worked out offline with the pure engine.

A citizen opens a procedure by a deep link, then answers each step the way people do:
mostly by tapping the first button that moves on, sometimes by typing its number; optionally every
n-th message is a free-text question instead. Because the script comes from the pure engine, the final state of a
citizen who received every message exactly once is known in advance: a lost or doubled
message shows up as a different sequence of events.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import engine  # noqa: E402
from bot.cli import served_config  # noqa: E402
from bot.engine import Content, EngineConfig, Inbound, Session  # noqa: E402
from bot.runner import Incoming  # noqa: E402

QUESTIONS = (
    "dk tam tru cho nguoi thue tro",
    "lam lai can cuoc bi mat",
    "dang ky khai sinh cho con",
    "xin ly lich tu phap",
)
START_AT = ("dang-ky-tam-tru", "cap-doi-can-cuoc", "dang-ky-khai-sinh", "ly-lich-tu-phap", "dang-ky-ket-hon")


@dataclass(frozen=True)
class Message:
    kind: str  # "start", "choice" or "text"
    value: str

    def incoming(self, channel: str, chat: str, event_id: str | None) -> Incoming:
        if self.kind == "start":
            return Incoming(
                channel, chat, kind="start", text=f"/start {self.value}", start_payload=self.value, event_id=event_id
            )
        if self.kind == "choice":
            return Incoming(channel, chat, kind="choice", choice_id=self.value, event_id=event_id)
        return Incoming(channel, chat, kind="text", text=self.value, event_id=event_id)

    def inbound(self, user_key: str) -> Inbound:
        i = self.incoming("bench", "x", None)
        return Inbound(
            "bench", user_key, kind=i.kind, text=i.text, choice_id=i.choice_id, start_payload=i.start_payload
        )


def script(content: Content, citizen: int, length: int, now: datetime, question_every: int = 0) -> list[Message]:
    """``length`` messages for one citizen (deterministic per citizen number).

    With ``question_every`` = n, every n-th message is a free-text question for the matcher,
    also in the middle of a procedure (where the bot offers to switch).
    """
    out: list[Message] = []
    session = Session()
    config = EngineConfig()
    replies: tuple[engine.Reply, ...] = ()
    for i in range(length):
        choices = [c for r in replies for c in r.choices]
        # A checklist's item buttons tick and untick; people go on with "Tôi đã có đủ giấy tờ".
        flow_choices = [c for c in choices if not c.id.startswith(("cmd:", "t:"))]
        if question_every and (citizen + i) % question_every == 0:
            msg = Message("text", QUESTIONS[(citizen + i) % len(QUESTIONS)])
        elif not flow_choices:
            msg = Message("start", START_AT[(citizen + i) % len(START_AT)])
        elif (citizen + i) % 5 == 0:
            msg = Message("text", str(choices.index(flow_choices[0]) + 1))  # typed number
        else:
            msg = Message("choice", flow_choices[0].id)  # a tap on the first button
        out.append(msg)
        result = engine.step(content, session, msg.inbound("k"), now, config)
        session, replies = result.session, result.replies
    return out


def replay(content: Content, messages: list[Message], now: datetime) -> Iterator[str]:
    """The event types a served engine writes for these messages, in order."""
    session, config = Session(), served_config()
    for msg in messages:
        result = engine.step(content, session, msg.inbound("k"), now, config)
        session = result.session
        yield from (e.type for e in result.events)
