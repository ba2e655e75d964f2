"""Pure conversation logic: (content, session, inbound message, now) -> (new session, replies, events).

No I/O happens here: no network, no database, no clock that is not passed in.
Replies carry semantic choices (id + label); each channel renders them its own
way, and a typed number or label selects a choice as well as a tap does.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

from bot import texts
from bot.matcher import Matcher, MatchResult
from bot.normalize import fold, normalize_words
from bot.privacy import stored_text
from bot.resemble import Resemblance
from bot.schema import (
    CHECK_LABEL_CHARS,
    Catalogue,
    ChecklistItem,
    Contact,
    Fact,
    Fee,
    Flow,
    Procedure,
    Reminder,
    Step,
    Term,
)
from bot.settings import VIETNAM_TZ
from bot.stages import stage_of
from bot.stages import title as stage_title
from bot.understand import (
    NAME_VERBS,
    Options,
    Phrase,
    Reader,
    Reading,
    Vocabulary,
    asks_a_question,
    command_of,
    fact_asked,
    meaning_of,
    only_dialogue,
    opens_with_yes,
    read,
    typed_with_marks,
    words_beside,
    words_of,
)

# ---------------------------------------------------------------------------
# Messages in and out
# ---------------------------------------------------------------------------

InboundKind = Literal["text", "choice", "start", "unsupported", "edit"]


@dataclass(frozen=True)
class Inbound:
    """A citizen's message after a channel has parsed it."""

    channel: str
    user_key: str
    kind: InboundKind = "text"
    text: str = ""
    choice_id: str | None = None
    start_payload: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class Choice:
    id: str
    label: str


@dataclass(frozen=True)
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()
    links: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "choices": [{"id": c.id, "label": c.label} for c in self.choices],
            "links": list(self.links),
        }


Via = Literal[
    "choice",
    "typed",
    "back",
    "command",
    "match",
    "menu",
    "deeplink",
    "jump",
    "return",
    "resume",
    "restart",
    "switch",
]

# Every event type the engine (and the runner) writes; docs/events.md documents each.
EVENT_TYPES: Final[tuple[str, ...]] = (
    "flow-started",
    "step-entered",
    "guide-entered",
    "guide-returned",
    "flow-completed",
    "flow-cancelled",
    "flow-exited",
    "checklist-ticked",
    "back",
    "repeat",
    "help",
    "handoff-shown",
    "not-understood",
    "match-confident",
    "match-ambiguous",
    "match-none",
    "switch-offered",
    "resume-offered",
    "step-vanished",
    "exit-reason",
    "stale-choice",
    "message-too-long",
    "unsupported-input",
    "edit-ignored",
    "error",
    "rate-limited",
    "replies-superseded",
    "asked-to-pick",
    "choice-resembled",
    "cancel-asked",
    "flow-resumed",
    "term-explained",
    "fact-asked",
    "legal-question",
    "reminder-scheduled",
    "reminder-sent",
    "reminder-skipped",
    "reminder-resumed",
    "reminder-opted-out",
    "reminder-opted-in",
)

# Runs remembered as reminded, per citizen (a run is reminded once; a citizen rarely has more going).
REMINDED_KEPT: Final = 8
# A reminder found this long after it was due (the bot was down) is not sent: "hôm trước" would be wrong.
REMINDER_LATE_SECONDS: Final = 24 * 3600

# A message longer than this is not read (no matching, nothing stored): the citizen is asked to
# write it shorter. Telegram allows 4,096 characters and Zalo 2,000; a question is a sentence or two.
MAX_MESSAGE_CHARS: Final = 1000
# No message the bot sends is longer than this (text and numbered choices as Zalo shows them): a phone screen.
MAX_REPLY_CHARS: Final = 600
# How Zalo (the strictest) shows a reply's choices: a numbered list, then a hint of at most this many characters.
CHOOSE_HINT_CHARS: Final = 40


def rendered_length(reply: Reply) -> int:
    """Characters of a reply as the Zalo channels show it (text, links, numbered choices, hint)."""
    n = len(reply.text)
    if reply.links:
        n += 2 + sum(len(link) + 3 for link in reply.links)
    if reply.choices:
        n += 2 + sum(len(f"{i}. {c.label}") + 1 for i, c in enumerate(reply.choices, 1)) + 1 + CHOOSE_HINT_CHARS
    return n


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at paragraphs, then lines, then words (a word longer than a
    whole message, such as a link, is cut). Channels use it for the platforms' own limits."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sep in ("\n\n", "\n", " "):
        if sep not in text:
            continue
        current = ""
        for part in text.split(sep):
            candidate = f"{current}{sep}{part}" if current else part
            if len(candidate) <= limit:
                current = candidate
                continue
            if current:
                pieces.append(current)
            if len(part) <= limit:
                current = part
            else:
                pieces += split_text(part, limit)
                current = ""
        if current:
            pieces.append(current)
        return pieces
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def _pieces(text: str, limit: int) -> list[str]:
    """Paragraphs (then lines, then sentences) of at most ``limit`` characters, in order."""
    if len(text) <= limit:
        return [text]
    for sep in ("\n\n", "\n", ". "):
        parts = text.split(sep)
        if len(parts) > 1:
            out: list[str] = []
            current = ""
            for i, part in enumerate(parts):
                piece = part + (". " if sep == ". " and i < len(parts) - 1 else "")
                candidate = f"{current}{sep if current and sep != '. ' else ''}{piece}"
                if len(candidate) <= limit:
                    current = candidate
                    continue
                if current:
                    out.append(current.rstrip())
                current = piece
                if len(current) > limit:
                    out += _pieces(current, limit)[:-1]
                    current = _pieces(current, limit)[-1]
            if current:
                out.append(current.rstrip())
            return out
    return split_text(text, limit)  # one long sentence: cut between words


def needs_cutting(reply: Reply, limit: int = MAX_REPLY_CHARS) -> bool:
    """Whether a reply has a line too long for one message, so ``fit`` must cut inside a sentence or line."""
    lines = reply.text.split("\n")
    room = limit - rendered_length(Reply("", reply.choices, reply.links))
    return any(len(line) > limit for line in lines) or len(lines[-1]) > room


def fit(reply: Reply, limit: int = MAX_REPLY_CHARS) -> list[Reply]:
    """A reply as messages that each fit a phone screen: paragraphs first, the choices and links on the last."""
    if rendered_length(reply) <= limit:
        return [reply]
    room = max(limit - rendered_length(Reply("", reply.choices, reply.links)), 80)
    pieces = _pieces(reply.text, limit)
    # The last message carries the choices: it takes as many closing paragraphs as fit beside them.
    tail = pieces.pop() if pieces else ""
    if len(tail) > room:
        head_part, *rest = _pieces(tail, room)
        pieces.append(head_part)
        tail_parts = rest
        tail = tail_parts.pop() if tail_parts else ""
        pieces += tail_parts
    while pieces and len(pieces[-1]) + 2 + len(tail) <= room:
        tail = f"{pieces.pop()}\n\n{tail}" if tail else pieces.pop()
    return [*(Reply(p) for p in pieces), Reply(tail, reply.choices, reply.links)]


@dataclass(frozen=True)
class Event:
    """One append-only analytics row; never holds a raw chat id or personal number."""

    ts: float
    user_key: str
    channel: str
    type: str
    procedure_id: str | None = None
    content_version: str = ""
    step_id: str | None = None
    from_step: str | None = None
    to_step: str | None = None
    via: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Session state
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Where to come back to after a guide: the calling procedure and its return step."""

    procedure: str
    step: str


@dataclass(frozen=True)
class Position:
    procedure: str
    step: str
    stack: tuple[Frame, ...] = ()


PromptKind = Literal[
    "area", "disambiguate", "resume", "switch", "help", "vanished", "exit-reason", "confirm-cancel", "legal", "reminder"
]


@dataclass(frozen=True)
class Prompt:
    """A question outside the flow's steps that is waiting for an answer."""

    kind: PromptKind
    data: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parked:
    """A procedure the citizen left unfinished (menu, cancel, another procedure): kept to continue later."""

    position: Position
    history: tuple[Position, ...] = ()
    started_at: float | None = None


@dataclass(frozen=True)
class Session:
    """Everything the engine remembers about one citizen."""

    position: Position | None = None
    history: tuple[Position, ...] = ()
    answers: Mapping[str, str] = field(default_factory=dict)
    ticks: frozenset[str] = frozenset()
    prompt: Prompt | None = None
    content_version: str = ""
    last_seen: float | None = None
    started_at: float | None = None
    parked: Parked | None = None
    explained: frozenset[str] = frozenset()  # glossary terms already explained in this conversation
    # The reminder of the flow run in progress (see ``run_of``): "due:<run>" planned (a row is stored),
    # "off:<run>" planned then dropped, "sent:<run>", "answered:<run>", "skipped:<run>"; and whether the
    # citizen asked never to be reminded.
    reminder: str = ""
    reminders_off: bool = False
    reminded: tuple[str, ...] = ()  # the latest runs already reminded (or whose reminder was skipped)

    def to_json(self) -> dict[str, Any]:
        # Positions are short lists ([procedure, step] or [procedure, step, stack]): a session keeps
        # up to 50 of them in its history and is written at every turn.
        def pos(p: Position) -> list[Any]:
            return [p.procedure, p.step, [[f.procedure, f.step] for f in p.stack]] if p.stack else [p.procedure, p.step]

        return {
            "position": pos(self.position) if self.position else None,
            "history": [pos(p) for p in self.history],
            "answers": dict(self.answers),
            "ticks": sorted(self.ticks),
            "prompt": [self.prompt.kind, list(self.prompt.data)] if self.prompt else None,
            "content_version": self.content_version,
            "last_seen": self.last_seen,
            "started_at": self.started_at,
            "parked": (
                [pos(self.parked.position), [pos(p) for p in self.parked.history], self.parked.started_at]
                if self.parked
                else None
            ),
            "explained": sorted(self.explained),
            "reminder": self.reminder,
            "reminders_off": self.reminders_off,
            "reminded": list(self.reminded),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Session:
        def pos(d: Any) -> Position:
            if isinstance(d, Mapping):  # the form written before 2026-12
                procedure, step, stack = d["procedure"], d["step"], d.get("stack", [])
            else:
                procedure, step, stack = d[0], d[1], (d[2] if len(d) > 2 else [])
            return Position(str(procedure), str(step), tuple(Frame(str(a), str(b)) for a, b in stack))

        prompt = data.get("prompt")
        parked = data.get("parked")
        return Session(
            position=pos(data["position"]) if data.get("position") else None,
            history=tuple(pos(p) for p in data.get("history", [])),
            answers={str(k): str(v) for k, v in dict(data.get("answers", {})).items()},
            ticks=frozenset(str(t) for t in data.get("ticks", [])),
            prompt=Prompt(prompt[0], tuple(prompt[1])) if prompt else None,
            content_version=str(data.get("content_version", "")),
            last_seen=data.get("last_seen"),
            started_at=data.get("started_at"),
            parked=Parked(pos(parked[0]), tuple(pos(p) for p in parked[1]), parked[2]) if parked else None,
            explained=frozenset(str(t) for t in data.get("explained", [])),
            reminder=str(data.get("reminder", "")),
            reminders_off=data.get("reminders_off") is True,
            reminded=tuple(str(r) for r in data.get("reminded", []))[-REMINDED_KEPT:],
        )


@dataclass(frozen=True)
class Content:
    """What the engine needs of the loaded content: the catalogue, its matcher and its dialogue words."""

    catalogue: Catalogue
    matcher: Matcher
    vocabulary: Vocabulary = field(init=False)
    glossary_re: re.Pattern[str] | None = field(init=False, default=None)
    glossary_forms: Mapping[str, Term] = field(init=False, default_factory=dict)
    glossary_folded: Mapping[str, Term] = field(init=False, default_factory=dict)
    # ``normalize`` remembering the words it read: what the dialogue reader is given
    reader: Reader = field(init=False, compare=False, repr=False)
    _resemblance: dict[bool, Resemblance] = field(init=False, default_factory=dict, compare=False, repr=False)
    _terms: dict[str, tuple[tuple[str, Term], ...]] = field(init=False, default_factory=dict, compare=False, repr=False)
    _phrases: dict[tuple[str, bool], tuple[str, ...]] = field(
        init=False, default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        m = self.matcher  # (the reader holds the matcher's tables, not this object: no reference cycle)
        object.__setattr__(self, "reader", Reader(lambda text: normalize_words(text, m.table, m.vocab, exact=m.exact)))
        d = self.catalogue.dialogue
        lists = {name: d.words(name) for name in ("back", "repeat", "help", "cancel", "menu")}
        vocabulary = Vocabulary.from_phrases(
            self.reader,
            affirm=d.words("affirm"),
            done=d.words("done"),
            deny=d.words("deny"),
            fillers=d.words("fillers"),
            yes_words=d.words("yes_words"),
            negations=d.words("negations"),
            ordinal_words=d.words("ordinal_words"),
            questions=d.words("questions"),
            synonyms=d.synonyms,
            commands=lists,
            greetings=d.words("greetings"),
            thanks=d.words("thanks"),
        )
        object.__setattr__(self, "vocabulary", vocabulary)
        forms = sorted({f for t in self.catalogue.glossary for f in t.forms if f.strip()}, key=len, reverse=True)
        pattern = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, forms)) + r")(?!\w)", re.IGNORECASE) if forms else None
        )
        object.__setattr__(self, "glossary_re", pattern)
        object.__setattr__(
            self, "glossary_forms", {f.casefold(): t for t in self.catalogue.glossary for f in t.forms if f.strip()}
        )
        object.__setattr__(
            self, "glossary_folded", {fold(f): t for t in self.catalogue.glossary for f in t.forms if fold(f)}
        )

    def terms_in(self, shown: str) -> tuple[tuple[str, Term], ...]:
        """The glossary terms a text shows, in order, each with its key (its folded name); remembered, since
        the same step texts are shown again and again."""
        found = self._terms.get(shown)
        if found is None:
            pattern = self.glossary_re
            terms = [self.glossary_forms.get(m.group(0).casefold()) for m in pattern.finditer(shown)] if pattern else []
            found = tuple((fold(t.term), t) for t in terms if t is not None)
            if len(self._terms) >= _TEXTS_KEPT:
                self._terms.clear()
            self._terms[shown] = found
        return found

    def normalize(self, text: str) -> list[str]:
        """Words of a message as the dialogue reader sees them (folded, the officials' abbreviations applied)."""
        m = self.matcher
        return normalize_words(text, m.table, m.vocab, exact=m.exact)

    def meaning(self, text: str, marked: bool = False) -> tuple[str, ...]:
        """The words of a message or a phrase that carry meaning, as the dialogue reader reads them
        (``marked``: as spelled, for a message typed with diacritics)."""
        return meaning_of(text, self.vocabulary, self.reader, marked)

    def phrase(self, text: str, marked: bool = False) -> tuple[str, ...]:
        """``meaning`` of a label or a way of saying: the content's own words, read once and kept."""
        key = (text, marked)
        words = self._phrases.get(key)
        if words is None:
            if len(self._phrases) > _PHRASES_KEPT:
                self._phrases.clear()
            words = self._phrases[key] = self.meaning(text, marked)
        return words

    def warm(self) -> None:
        """Build what is otherwise built at first use (the likeness models, about a second for 38 flows)."""
        self.resemblance(marked=False)
        self.resemblance(marked=True)

    def resemblance(self, marked: bool) -> Resemblance:
        """The likeness model of every choice step's labels and ways of saying, folded or as spelled
        (each built at first use)."""
        model = self._resemblance.get(marked)
        if model is None:
            phrases = (
                self.phrase(text, marked)
                for flow in self.catalogue.flows.values()
                for s in flow.steps
                if s.kind == "choice"
                for o in s.options
                for text in (o.label, *o.says)
            )
            model = self._resemblance[marked] = Resemblance.of(phrases)
        return model


@dataclass(frozen=True)
class EngineConfig:
    resume_after_seconds: float = 30 * 60
    history_limit: int = 50
    # Back after this long in the middle of a flow: ask once why they stopped (the report's
    # default idle time for "abandoned" is the same day).
    abandon_after_seconds: float = 24 * 3600
    # Remind a citizen silent this long in the middle of a flow (0: never), outside the quiet hours
    # (from, to) in Vietnam time.
    remind_after_seconds: float = 0.0
    quiet_hours: tuple[int, int] | None = None


@dataclass(frozen=True)
class Result:
    session: Session
    replies: tuple[Reply, ...]
    events: tuple[Event, ...]
    # When to remind this citizen of the flow left unfinished (None: no reminder is due; any scheduled
    # one is dropped).
    remind_at: float | None = None


# ---------------------------------------------------------------------------
# Commands and small talk
# ---------------------------------------------------------------------------

CMD_MENU: Final = "cmd:menu"
CMD_BACK: Final = "cmd:back"
CMD_REPEAT: Final = "cmd:repeat"
CMD_HELP: Final = "cmd:help"
CMD_CANCEL: Final = "cmd:cancel"

# The commands the dialogue reader names, as choice ids.
COMMAND_IDS: Final[Mapping[str, str]] = {
    "back": "cmd:back",
    "repeat": "cmd:repeat",
    "help": "cmd:help",
    "cancel": "cmd:cancel",
    "menu": "cmd:menu",
}
SLASH_COMMANDS: Final[Mapping[str, str]] = {
    "/menu": CMD_MENU,
    "/help": CMD_HELP,
    "/cancel": CMD_CANCEL,
    "/back": CMD_BACK,
    "/repeat": CMD_REPEAT,
    "/stop": "nudge-off",  # Telegram's convention for "stop writing to me"
}
_FIXED_CHOICES: Final = frozenset(
    {
        "next",
        "resume",
        "resume-at",
        "none",
        "paid",
        "payguide",
        "payfail",
        "missing",
        "stop",
        "nudge-off",
        "nudge-on",
        "nudge-guide",
    }
)
# "không nhắc nữa", "đừng nhắc tôi nữa nhé", "ko cần nhắc thêm": no more reminders, anywhere; under a reminder
# also the bare "không cần nhắc". Never "nhắc lại" (repeat), "không nhắc lại được", "đúng nhắc rồi". Folded text;
# both patterns linear-time.
_NUDGE_OFF: Final = re.compile(
    r"^(?:xin |thoi |ban |bot |ad )?(?:khong|ko|k|kh|dung|dung co|khoi) (?:can )?nhac "
    r"(?:(?:toi|em|minh|tui|chau|con|bac|co|chu|anh|chi) )?(?:nua|them)(?: (?:nhe|nha|a|ha|nhen|nghe))?$"
)
_NUDGE_OFF_AT_REMINDER: Final = re.compile(r"^(?:thoi )?(?:khong|ko|k|kh|dung|khoi) (?:can )?nhac(?: (?:nhe|nha|a))?$")


def _said_words(text: str) -> list[str]:
    """A short message's words, folded, without punctuation ("Đừng nhắc tôi nữa!" -> dung nhac toi nua)."""
    return _PUNCTUATION.sub(" ", fold(text)).split()


_PUNCTUATION: Final = re.compile(r"[.,!?;:]")
# Words that make "dạ …" a polite no, not a yes, under a reminder; and the whole of a short "no thanks" to it.
_NOT_YES: Final = frozenset({"khong", "ko", "k", "kh", "thoi", "chua", "dung"})
_POLITE_NO: Final = frozenset(
    {"da", "vang", "u", "khong", "ko", "k", "kh", "thoi", "a", "nhe", "nha", "lam", "nua", "can", "cam", "on"}
)
_NUDGE_ON: Final = re.compile(r"^(?:bat (?:lai )?nhac|nhac (?:toi|em|minh|tui)(?: .{0,12})?)$")
_COMMAND_CHOICES: Final = frozenset({*COMMAND_IDS.values(), *SLASH_COMMANDS.values()})
_EXIT_CODES: Final = frozenset(code for code, _ in texts.EXIT_REASONS)
_NUMBER: Final = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")
# "otp la gi", "ma otp la cai gi vay", "passcode nghia la gi a" (folded; at most 80 characters are read)
_WHAT_IS: Final = re.compile(r"^([a-z0-9 ]{1,60}?) (?:la gi|la cai gi|nghia la gi|la sao|la the nao)(?: [a-z]{1,4})?$")
_ASK_LEAD: Final = frozenset({"cho", "hoi", "em", "toi", "tui", "minh", "chau", "con", "ad", "oi", "bot", "xin"})


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


def view_of(content: Content, session: Session, now: datetime) -> list[Reply]:
    """What a citizen at ``session`` is shown, before long replies are cut into messages (for checks)."""
    turn = _Turn(content, session, Inbound("view", "view", kind="choice", choice_id=CMD_REPEAT), now, EngineConfig())
    return explain_terms(content, turn.view(), session.explained)[0]


def step(
    content: Content,
    session: Session,
    inbound: Inbound,
    now: datetime,
    config: EngineConfig | None = None,
) -> Result:
    """Handle one inbound message and say what changed, what to answer and what to record."""
    turn = _Turn(content, session, inbound, now, config or EngineConfig())
    turn.run()
    turn.answered_reminder(session)
    replies, explained = explain_terms(content, turn.replies, turn.session.explained)
    turn.session = replace(
        turn.session, last_seen=now.timestamp(), content_version=content.catalogue.version, explained=explained
    )
    remind_at = turn.plan_reminder()
    if remind_at is None and turn.session.reminder.startswith("due:"):
        # its planned row is dropped with this turn (and no later turn needs to drop it again)
        turn.session = replace(turn.session, reminder="off:" + turn.session.reminder.removeprefix("due:"))
    return Result(turn.session, tuple(m for r in replies for m in fit(r)), tuple(turn.events), remind_at)


def is_reminder(replies: Sequence[Reply]) -> bool:
    """Whether these replies are a reminder (the only message the bot sends unprompted): it offers "Không
    nhắc nữa". (Zalo OA sends it as a reply to the citizen's last message.)"""
    return any(c.id == "nudge-off" for r in replies for c in r.choices)


def run_of(session: Session) -> str | None:
    """The flow run in progress ("procedure@start time"): a citizen is reminded at most once per run."""
    pos = session.position
    if pos is None or session.started_at is None:
        return None
    root = pos.stack[0].procedure if pos.stack else pos.procedure
    return f"{root}@{int(session.started_at)}"


def quiet_at(now: datetime, quiet: tuple[int, int] | None) -> bool:
    """Whether ``now`` (Vietnam time) falls in the quiet hours (from, to), which may span midnight."""
    if quiet is None:
        return False
    start, end = quiet
    hour = now.astimezone(VIETNAM_TZ).hour
    return (start <= hour or hour < end) if start > end else start <= hour < end


def not_quiet(ts: float, quiet: tuple[int, int] | None) -> float:
    """``ts``, or the end of the quiet hours it falls in (a reminder due at night waits for the morning)."""
    at = datetime.fromtimestamp(ts, VIETNAM_TZ)
    if quiet is None or not quiet_at(at, quiet):
        return ts
    morning = at.replace(hour=quiet[1], minute=0, second=0, microsecond=0)
    if morning <= at:
        morning += timedelta(days=1)
    return morning.timestamp()


def remind(
    content: Content,
    session: Session,
    user_key: str,
    channel: str,
    run: str,
    now: datetime,
    config: EngineConfig,
    skip: str | None = None,
) -> Result:
    """The reminder due for ``run``, if it is still wanted: replies naming the procedure and the step with
    buttons (continue, help with this step, an official, no more reminders), or, when ``skip`` says why it
    cannot be sent (the channel's free window closed), the record of that. A reminder no longer wanted
    (the citizen went on, finished, opted out) gives nothing; one due in the quiet hours gives the time
    to try again (``remind_at``). The citizen's last_seen is left as it was: they did not write."""
    turn = _Turn(content, session, Inbound(channel, user_key, kind="choice", choice_id=CMD_REPEAT), now, config)
    nothing = Result(session, (), ())
    if (
        config.remind_after_seconds <= 0
        or session.reminders_off
        or run_of(session) != run
        or session.reminder != f"due:{run}"
        or run in session.reminded
        or (at := turn.current_step()) is None
        or at.kind == "end"
        or not turn.run_still_there()
    ):
        return nothing
    due = (session.last_seen or 0.0) + config.remind_after_seconds
    if due > now.timestamp() + 1:  # the citizen wrote since it was planned
        return replace(nothing, remind_at=not_quiet(due, config.quiet_hours))
    if quiet_at(now, config.quiet_hours):
        return replace(nothing, remind_at=not_quiet(now.timestamp(), config.quiet_hours))
    idle = round((now.timestamp() - (session.last_seen or now.timestamp())) / 3600, 1)
    where = turn.where_in_run()
    reminded = (*session.reminded[-(REMINDED_KEPT - 1) :], run)
    if skip is None and now.timestamp() - not_quiet(due, config.quiet_hours) > REMINDER_LATE_SECONDS:
        skip = "too-late"  # the bot was down when it was due
    if skip is not None:
        turn.emit("reminder-skipped", detail={"reason": skip, "idle_hours": idle}, **where)
        return Result(replace(session, reminder=f"skipped:{run}", reminded=reminded), (), tuple(turn.events))
    turn.session = replace(session, reminder=f"sent:{run}", prompt=Prompt("reminder"), reminded=reminded)
    turn.emit("reminder-sent", detail={"idle_hours": idle}, **where)
    replies, explained = explain_terms(content, turn.view(), session.explained)
    final = replace(turn.session, explained=explained)
    return Result(final, tuple(m for r in replies for m in fit(r)), tuple(turn.events))


def explain_terms(
    content: Content, replies: Sequence[Reply], explained: frozenset[str]
) -> tuple[list[Reply], frozenset[str]]:
    """Replies with a one-line explanation of each glossary term the conversation shows for the first time.

    The line goes under the text of the reply where the term first appears (in its text or on a
    button): "💡 OTP là mã số dùng một lần…". Terms explained before are not explained again.
    """
    if content.glossary_re is None:
        return list(replies), explained
    out = []
    known = set(explained)
    for reply in replies:
        lines = []
        for key, term in content.terms_in("\n".join((reply.text, *(c.label for c in reply.choices)))):
            if key not in known:
                known.add(key)
                lines.append(texts.TERM_EXPLAINED.format(term=term.term, explain=term.explain))
        out.append(replace(reply, text=reply.text + "\n\n" + "\n".join(lines)) if lines else reply)
    return out, frozenset(known)


# Inside a procedure, a message is taken for a legal question only when it plainly is one.
LEGAL_IN_FLOW_SCORE: Final = 0.8
LEGAL_IN_FLOW_WORDS: Final = 6


# Readings that rest on some words of a message, not on a button, a number or a whole phrase of the step:
# a long message read so is checked against the catalogue first (see ``asks_something_else``).
# (A ``says:`` phrase found whole was written for this step by its officials: never second-guessed.)
_WEAK_READINGS: Final = frozenset({"near", "words", "affirm", "contained", "help-answer", "quantity", "someone-else"})
_LONG_MESSAGE_WORDS: Final = 8
_GUIDE_IN_HELP_WORDS: Final = 3  # words beside a call for help that may tell of a guide's matter (``guide_told_of``)
_TEXTS_KEPT: Final = 5_000  # reply texts whose glossary terms are remembered (a step's text, filled in)
_PHRASES_KEPT: Final = 100_000  # labels and ways of saying read for the likeness model (38 flows: about 26,000)
_LEGAL_OVER_ANSWER: Final = 0.9  # the intent gate's score at which such a message is a question of law


def _plainly_legal(text: str, result: MatchResult) -> bool:
    return (result.gate_score or 0.0) >= LEGAL_IN_FLOW_SCORE and len(text.split()) >= LEGAL_IN_FLOW_WORDS


class _Turn:
    """One inbound message's worth of work; mutates its own copy of the session."""

    def __init__(
        self, content: Content, session: Session, inbound: Inbound, now: datetime, config: EngineConfig
    ) -> None:
        self.content = content
        self.cat = content.catalogue
        self.matcher = content.matcher
        self.reading: Reading | None = None  # what the dialogue reader made of a typed message
        self._match: tuple[str, MatchResult] | None = None  # the catalogue's reading of it, once asked
        self._said: tuple[str, Phrase] | None = None  # its words, once read (see ``said``)
        self.session = session
        self.inbound = inbound
        self.now = now
        self.config = config
        self.replies: list[Reply] = []
        self.events: list[Event] = []
        self._view: tuple[Session, list[Reply]] | None = None  # sessions are immutable: the same object, the same view
        self.came_after_reminder = False  # this message answers a reminder

    # -- recording ------------------------------------------------------

    def emit(self, type_: str, **kw: Any) -> None:
        pos = self.session.position
        kw.setdefault("procedure_id", pos.procedure if pos else None)
        kw.setdefault("step_id", pos.step if pos else None)
        self.events.append(
            Event(
                ts=self.now.timestamp(),
                user_key=self.inbound.user_key,
                channel=self.inbound.channel,
                type=type_,
                content_version=self.cat.version,
                **kw,
            )
        )

    def say(self, text: str, choices: tuple[Choice, ...] = (), links: tuple[str, ...] = ()) -> None:
        self.replies.append(Reply(text, choices, links))

    def show(self) -> None:
        """Append the view of where the citizen is now (a step, a prompt or the menu)."""
        self.replies.extend(self.view())

    # -- main dispatch ----------------------------------------------------

    def run(self) -> None:
        inbound = self.inbound
        if inbound.kind == "unsupported":
            self.emit("unsupported-input")
            self.say(texts.UNSUPPORTED_INPUT)
            self.show()
            return
        if inbound.kind == "edit":
            self.emit("edit-ignored")
            self.say(texts.EDIT_IGNORED)
            return
        if len(inbound.text) > MAX_MESSAGE_CHARS:
            self.emit("message-too-long", detail={"chars": len(inbound.text)})
            self.say(texts.MESSAGE_TOO_LONG.format(limit=f"{MAX_MESSAGE_CHARS:,}".replace(",", ".")))
            if self.session.position is not None or self.session.prompt is not None:
                self.show()
            return
        if self.check_vanished():
            return
        if inbound.kind == "start":
            self.on_start(inbound.start_payload)
            return
        said = self.reminders_said()
        if said is not None:
            self.apply(said, "typed")
            return
        if self.session.prompt is not None and self.session.prompt.kind == "reminder" and self.answer_reminder():
            return
        if self.returning_after_a_while():
            self.offer_resume()
            return
        choice = self.resolve_choice()
        if choice is not None:
            self.apply(choice[0], choice[1])
            return
        self.on_text(inbound.text)

    def reminders_said(self) -> str | None:
        """ "không nhắc nữa" / "bật nhắc" typed: the choice it means."""
        if self.inbound.kind != "text" or len(self.inbound.text) > 60:
            return None
        folded = " ".join(_said_words(self.inbound.text))
        at_reminder = self.session.prompt is not None and self.session.prompt.kind == "reminder"
        if _NUDGE_OFF.match(folded) or (at_reminder and _NUDGE_OFF_AT_REMINDER.match(folded)):
            return "nudge-off"
        if _NUDGE_ON.match(folded):
            return "nudge-on"
        return None

    def answer_reminder(self) -> bool:
        """The citizen's message under a reminder: a yes, a button of the reminder (tapped, its number or its
        words) answers it; anything else (a tap on the step's own button above, a question) is read at the
        step itself, as if the reminder had not come. True when handled."""
        inbound = self.inbound
        offered = self.current_choices()
        picked = None
        if inbound.kind == "choice":
            if inbound.choice_id in {c.id for c in offered}:
                picked = inbound.choice_id
        elif inbound.kind == "text":
            text = inbound.text
            words = _said_words(text)
            number = _NUMBER.match(text)
            by_label = next((c.id for c in offered if fold(c.label) == " ".join(words)), None)
            if number and 1 <= int(number.group(1)) <= len(offered):
                picked = offered[int(number.group(1)) - 1].id
            elif by_label is not None:
                picked = by_label
            elif words and set(words) <= _POLITE_NO and {"khong", "ko", "k", "kh", "thoi"} & set(words):
                picked = CMD_CANCEL  # "dạ không", "thôi ạ", "không làm nữa": asked to confirm, the place is kept
            elif (
                len(words) <= _LONG_MESSAGE_WORDS
                and not _NOT_YES & set(words)
                and opens_with_yes(text, self.content.vocabulary, self.content.reader)
            ):
                picked = "resume"  # "dạ", "ok", "vâng làm tiếp": go on (not "dạ không", "dạ thôi")
        self.session = replace(self.session, prompt=None)
        self.came_after_reminder = True
        if picked is None:
            return False
        self.apply(picked, "choice" if inbound.kind == "choice" else "typed")
        return True

    def answered_reminder(self, before: Session) -> None:
        """The citizen's first message after a reminder: they came back (unless it was to opt out)."""
        run = before.reminder.removeprefix("sent:")
        if not before.reminder.startswith("sent:") or self.session.reminder != before.reminder:
            return
        self.session = replace(self.session, reminder=f"answered:{run}")
        if not any(e.type == "reminder-opted-out" for e in self.events):
            self.emit("reminder-resumed", procedure_id=run.rsplit("@", 1)[0], step_id=None)

    def plan_reminder(self) -> float | None:
        """When to remind this citizen, if they stop here: ``remind_after_seconds`` from now, out of the
        quiet hours, once per flow run, never after "không nhắc nữa" (records reminder-scheduled once)."""
        cfg, s = self.config, self.session
        run = run_of(s)
        if cfg.remind_after_seconds <= 0 or s.reminders_off or run is None:
            return None
        step_ = self.current_step()
        if step_ is None or step_.kind == "end" or run in s.reminded:
            return None
        if s.reminder != f"due:{run}":
            if s.reminder != f"off:{run}":  # (planned before in this run, then dropped: not a new plan)
                self.emit("reminder-scheduled", **self.where_in_run())
            self.session = replace(s, reminder=f"due:{run}")
        return not_quiet(self.now.timestamp() + cfg.remind_after_seconds, cfg.quiet_hours)

    def run_still_there(self) -> bool:
        """The procedure and the step of the run exist in the content as it is now (a reload may remove them)."""
        where = self.where_in_run()
        flow = self.cat.flow(where["procedure_id"])
        known = self.cat.procedure(where["procedure_id"]) is not None
        return known and flow is not None and flow.step(where["step_id"]) is not None

    def where_in_run(self) -> dict[str, str]:
        """The procedure and its step a reminder is about (inside a guide: the step the guide returns to)."""
        pos = self.session.position
        assert pos is not None
        root, at = (pos.stack[0].procedure, pos.stack[0].step) if pos.stack else (pos.procedure, pos.step)
        return {"procedure_id": root, "step_id": at}

    def reminder_for(self) -> Reminder:
        """What officials wrote for a reminder at this step (else its stage); a payment step's guide by default."""
        pos = self.session.position
        assert pos is not None
        root, at = (pos.stack[0].procedure, pos.stack[0].step) if pos.stack else (pos.procedure, pos.step)
        flow = self.cat.flow(root)
        step_ = flow.step(at) if flow else None
        if step_ is None or flow is None:
            return Reminder()
        own = step_.reminder
        stage = None
        if own is None or not own.text or own.guide is None:
            index = stage_of(flow, self.cat.stages).get(step_.id)
            stage = self.cat.stages[index].reminder if index is not None and index < len(self.cat.stages) else None
        text = (own.text if own else "") or (stage.text if stage else "")
        guide = (own.guide if own else None) or (stage.guide if stage else None)
        if guide is None:  # the guide the step itself leads to: payment's, its own, an option's
            jumps = [step_.guide if step_.kind == "payment" else None, step_.goto, *(o.goto for o in step_.options)]
            guide = next((g for g in jumps if g), None)
        return Reminder(text, guide if guide and self.cat.flow(guide) is not None else None)

    def step_name(self, root: str, step_: Step, name: str) -> str:
        """The step as a reminder names it: its title, else its stage's name, else its first words."""
        if step_.title:
            return step_.title
        flow = self.cat.flow(root)
        index = stage_of(flow, self.cat.stages).get(step_.id) if flow is not None else None
        if index is not None and index < len(self.cat.stages):
            return self.cat.stages[index].name
        return stage_title(step_, name)

    def reminder_reply(self) -> Reply:
        pos = self.session.position
        assert pos is not None
        root = self.root_of(pos)
        proc = self.cat.procedure(root)
        name = proc.name if proc else root
        at = pos.stack[0].step if pos.stack else pos.step
        flow = self.cat.flow(root)
        step_ = flow.step(at) if flow is not None else None
        where = self.step_name(root, step_, name) if step_ is not None else ""
        rem = self.reminder_for()
        lines = [texts.REMINDER.format(name=name, step=where)]
        default = texts.REMINDER_DEFAULT_GUIDE if rem.guide is not None else texts.REMINDER_DEFAULT
        lines.append(self.fill(rem.text, proc) if rem.text else default)
        choices = [Choice("resume", texts.REMINDER_CONTINUE)]
        if rem.guide is not None:
            choices.append(Choice("nudge-guide", texts.REMINDER_GUIDE))
        choices += [Choice(CMD_HELP, texts.REMINDER_OFFICIAL), Choice("nudge-off", texts.REMINDER_OFF)]
        return Reply("\n\n".join(lines), tuple(choices))

    def returning_after_a_while(self) -> bool:
        s = self.session
        if s.position is None or s.last_seen is None or self.inbound.kind == "choice":
            return False
        if self.came_after_reminder:
            return False  # the reminder already asked whether to go on
        if self.now.timestamp() - s.last_seen <= self.config.resume_after_seconds:
            return False
        text = self.inbound.text.strip()
        words = self.said(text)
        # an explicit command after a pause means what it says
        return not (command_of(words, self.content.vocabulary) or text.split(" ")[0].lower() in SLASH_COMMANDS)

    def check_vanished(self) -> bool:
        """A session pinned to a step that the current content no longer has."""
        pos = self.session.position
        if pos is None:
            return False
        if self.current_step() is not None and all(self.step_exists(f.procedure, f.step) for f in pos.stack):
            return False
        if self.session.prompt and self.session.prompt.kind == "vanished":
            return False
        root = pos.stack[0].procedure if pos.stack else pos.procedure
        # The nearest earlier step of the same procedure that the new content still has.
        survivor = next(
            (
                h
                for h in reversed(self.session.history)
                if h.procedure == root and not h.stack and self.step_exists(h.procedure, h.step)
            ),
            None,
        )
        self.emit("step-vanished", detail={"root": root, "resume_at": survivor.step if survivor else None})
        proc = self.cat.procedure(root)
        self.session = replace(self.session, position=None, history=(), prompt=None)
        if proc is None or self.cat.flow(root) is None:
            self.say(texts.PROCEDURE_GONE)
            self.show()
            return True
        data = (root, survivor.step) if survivor else (root,)
        self.session = replace(self.session, prompt=Prompt("vanished", data))
        self.show()
        return True

    # -- choices -------------------------------------------------------------

    def resolve_choice(self) -> tuple[str, Via] | None:
        """The choice a tap or a typed number/label/command stands for, if any."""
        offered = self.current_choices()
        ids = {c.id for c in offered}
        inbound = self.inbound
        if inbound.kind == "choice" and inbound.choice_id is not None:
            cid = inbound.choice_id
            if cid in ids or cid.startswith("cmd:") or cid in ("nudge-off", "nudge-on"):
                return cid, "choice"
            # A tap's data is whatever the client sent: keep it only if it is a choice the content could offer.
            self.emit("stale-choice", detail={"choice": cid if self.known_choice(cid) else "unknown-choice"})
            self.say(texts.STALE_BUTTON)
            self.show()
            return ("noop", "choice")
        text = inbound.text.strip()
        slash = SLASH_COMMANDS.get(text.split(" ")[0].lower()) if text.startswith("/") else None
        if slash:
            return slash, "command"
        m = _NUMBER.match(text)
        if m and offered:
            n = int(m.group(1))
            if 1 <= n <= len(offered):
                return offered[n - 1].id, "typed"
            self.emit("not-understood", detail={"text": stored_text(text, fold), "reason": "number-out-of-range"})
            self.say(texts.NUMBER_OUT_OF_RANGE.format(count=len(offered)))
            self.show()
            return ("noop", "typed")
        term = self.asked_term(text)
        if term is not None:
            key = fold(term.term)
            self.emit("term-explained", detail={"term": key})
            self.say(texts.TERM_EXPLAINED.format(term=term.term, explain=term.explain))
            self.session = replace(self.session, explained=self.session.explained | {key})
            if self.session.position is not None or self.session.prompt is not None:
                self.show()
            return ("noop", "typed")
        reading = read(text, self.options(offered), self.content.vocabulary, self.content.reader)
        self.reading = reading
        if reading.kind in ("choice", "ask") and self.asks_something_else(text, reading):
            self.reading = None
            return None  # a question about the law or another procedure: ``on_text`` answers it
        if reading.kind == "choice":
            return reading.value, "typed"
        if reading.kind == "command":
            return COMMAND_IDS[reading.value], "command"
        if reading.kind == "ask":
            self.ask(offered, reading.candidates)
            return ("noop", "typed")
        if reading.kind == "empty":
            self.say(texts.EMPTY_INPUT)
            return ("noop", "typed")
        return None

    def asks_something_else(self, text: str, reading: Reading) -> bool:
        """A long message that the reader took for a choice only by some of its words, while it plainly asks
        what the law says or names another procedure ("thủ tục ly hôn, thuận tình ly hôn, nộp đơn ra tòa" at
        "Hồ sơ của bạn thế nào?"). Short answers and the step's own words said in full are never second-guessed."""
        pos = self.session.position
        if pos is None or self.session.prompt is not None or reading.how not in _WEAK_READINGS:
            return False
        if len(text.split()) < _LONG_MESSAGE_WORDS:
            return False
        if reading.how == "affirm" and opens_with_yes(text, self.content.vocabulary, self.content.reader):
            return False  # "dạ em hiểu, không trả tiền, tiếp ạ": an answer, whatever the rest sounds like
        result = self.match(text)
        if result.intent == "law":
            # very sure, and not about the procedure being done ("muốn lấy lại chiếc xe bị tạm giữ" while
            # paying a traffic fine is an answer, though it reads like a question of law)
            kin = self.kin(pos)
            return (result.gate_score or 0.0) >= _LEGAL_OVER_ANSWER and not any(
                c.procedure_id in kin for c in result.candidates
            )
        if result.status != "confident" or not result.candidates:
            return False
        top = result.candidates[0].procedure_id
        proc = self.cat.procedure(top)
        # a shared guide ("tra cứu hồ sơ", "tài khoản VNeID"), a sibling, or a procedure the step itself talks
        # about ("Bé đã được đăng ký khai sinh chưa?") is what the step's own answers lead to
        return proc is not None and not proc.is_guide and top not in self.kin(pos) and not self.mentions(proc.name)

    def mentions(self, name: str) -> bool:
        """Whether the current step's text or answers hold the words of a procedure's name (its verbs aside)."""
        step_ = self.current_step()
        if step_ is None:
            return False
        words = self.content.phrase  # the content's own words: read once, kept
        wanted = set(words(name)) - NAME_VERBS
        said = set(words(step_.text)).union(*(words(t) for o in step_.options for t in (o.label, *o.says)))
        return bool(wanted) and wanted <= said

    def kin(self, pos: Position) -> set[str]:
        """The procedures being done and their families' other members."""
        current = {f.procedure for f in pos.stack} | {pos.procedure}
        return current | {m for fam in self.cat.families if current & set(fam.members) for m in fam.members}

    def match(self, text: str) -> MatchResult:
        """The catalogue's reading of a message, computed once per turn."""
        if self._match is None or self._match[0] != text:
            key = fold(text)
            self._match = (text, self.matcher.match(text) if key else MatchResult("none", ()))
        return self._match[1]

    def said(self, text: str) -> Phrase:
        """The words of a typed message, read once per turn however many checks look at them."""
        if self._said is None or self._said[0] != text:
            self._said = (text, words_of(self.content.reader, text))
        return self._said[1]

    def asked_term(self, text: str) -> Term | None:
        """The glossary term a "… là gì?" question asks about ("OTP là gì", "cho hỏi passcode là cái gì vậy")."""
        if len(text) > 80 or not self.content.glossary_folded:
            return None
        m = _WHAT_IS.match(fold(text))
        if m is None:
            return None
        words = m.group(1).split()
        while words and words[0] in _ASK_LEAD:
            words = words[1:]
        return self.content.glossary_folded.get(" ".join(words))

    def options(self, offered: tuple[Choice, ...]) -> Options:
        """What the dialogue reader may take a message to mean here."""
        choices = tuple((c.id, c.label) for c in offered)
        flow = sum(1 for c in offered if not c.id.startswith("cmd:"))
        prompt = self.session.prompt
        if prompt is not None:
            # Picking among procedures, or continuing: words of the labels count; "ok" means the first.
            forward = {"resume": "resume", "confirm-cancel": "stop"}.get(prompt.kind)
            deny = {"confirm-cancel": "resume"}.get(prompt.kind)  # "không" = do not stop
            words = prompt.kind not in ("area", "legal")  # after a legal answer, "dạ hiểu rồi" starts nothing
            return Options(choices, forward=forward, missing=deny, flow_choices=flow, words=words)
        step_ = self.current_step()
        pos = self.session.position
        if step_ is None or pos is None:  # the menu: free text is a question for the catalogue, not a label
            forward = "resume" if "resume" in {c.id for c in offered} else None  # "làm tiếp": the procedure left
            return Options(choices, forward=forward, flow_choices=flow, words=False)
        ids = {c.id for c in offered}
        names = tuple(
            name
            for pid in (pos.procedure, *(f.procedure for f in pos.stack))
            if (p := self.cat.procedure(pid)) is not None
            for name in (p.name, *p.aliases)
        )
        says = tuple((f"o:{o.id}", o.says) for o in step_.options if o.says and f"o:{o.id}" in ids)
        if step_.kind in ("message", "handoff"):
            return Options(choices, forward="next" if "next" in ids else None, flow_choices=flow, own_names=names)
        if step_.kind == "checklist":
            missing = "missing" if "missing" in ids else None
            return Options(choices, forward="next", missing=missing, flow_choices=flow, own_names=names)
        if step_.kind == "payment":
            return Options(choices, forward="paid", forward_needs_done=True, flow_choices=flow, own_names=names)
        return Options(choices, flow_choices=flow, own_names=names, says=says)

    def ask(self, offered: tuple[Choice, ...], candidates: tuple[str, ...]) -> None:
        """A short "which one?" with the step's own buttons (so the numbers stay the same)."""
        labels = [c.label for c in offered if c.id in candidates]
        flow = [c for c in offered if not c.id.startswith("cmd:")]
        if 1 < len(labels) < len(flow):
            text = texts.ASK_WHICH.format(options=" hay ".join(f"“{label}”" for label in labels))
        else:
            text = texts.ASK_PICK
        self.emit("asked-to-pick", detail={"choices": list(candidates)})
        self.say(text, offered)

    def apply(self, cid: str, via: Via) -> None:
        if cid == "noop":
            return
        prompt = self.session.prompt
        if cid == CMD_MENU:
            self.leave_flow("flow-exited", "menu")
            self.session = replace(self.session, prompt=None)
            self.show()
            return
        if cid == CMD_CANCEL:
            self.cancel()
            return
        if cid == CMD_BACK:
            self.back()
            return
        if cid == CMD_REPEAT:
            self.emit("repeat")
            self.show()
            return
        if cid == CMD_HELP:
            self.help()
            return
        if cid == "nudge-off":
            self.emit("reminder-opted-out")
            self.session = replace(
                self.session, reminders_off=True, prompt=None if prompt and prompt.kind == "reminder" else prompt
            )
            # (no button: its number would clash with the step's choices shown right under it)
            self.say(texts.REMINDERS_OFF)
            if self.session.position is not None or self.session.prompt is not None:
                self.show()
            return
        if cid == "nudge-on":
            if self.session.reminders_off:
                self.emit("reminder-opted-in")
            self.session = replace(self.session, reminders_off=False)
            self.say(texts.REMINDERS_ON)
            self.show()
            return
        if cid == "nudge-guide" and self.session.position is not None:
            guide = self.reminder_for().guide
            pos = self.session.position
            self.session = replace(self.session, prompt=None)
            if guide is None:
                self.help()
            elif guide == pos.procedure or any(f.procedure == guide for f in pos.stack):
                self.show()  # already in that guide: where they were in it
            else:
                self.enter_guide(guide, pos.step, "jump", {"from": "reminder"})
            return
        if cid == "resume":
            parked = self.session.parked
            if self.session.position is None and parked is not None:
                self.session = replace(
                    self.session,
                    position=parked.position,
                    history=parked.history,
                    started_at=parked.started_at,
                    parked=None,
                    prompt=None,
                )
                pos = parked.position
                self.emit(
                    "flow-resumed", procedure_id=self.root_of(pos), step_id=pos.step, to_step=pos.step, via="resume"
                )
                self.show()
                return
            self.session = replace(self.session, prompt=None)
            self.show()
            return
        if cid == "stop" and prompt and prompt.kind == "confirm-cancel":
            self.stop()
            return
        if cid == "resume-at" and prompt and prompt.kind == "vanished" and len(prompt.data) > 1:
            root, step_id = prompt.data[0], prompt.data[1]
            if self.step_exists(root, step_id):
                self.session = replace(self.session, position=Position(root, step_id), history=(), prompt=None)
                self.emit("step-entered", from_step=None, to_step=step_id, via="resume", step_id=step_id)
                self.arrive()
                return
        if cid.startswith("x:") and prompt and prompt.kind == "exit-reason":
            stopped = prompt.data[0] if prompt.data else None
            came_back = len(prompt.data) > 1 and prompt.data[1] == "came-back"
            at = prompt.data[2] if len(prompt.data) > 2 else None
            self.emit("exit-reason", procedure_id=stopped, step_id=at, detail={"reason": cid[2:]})
            # Back after a long pause: then offer to continue or restart, as usual.
            self.session = replace(self.session, prompt=Prompt("resume") if came_back else None)
            self.say(texts.EXIT_REASON_THANKS)
            self.show()
            return
        if cid == "none":
            self.session = replace(self.session, prompt=None)
            self.say(texts.AMBIGUOUS_NONE)
            self.show()
            return
        if cid.startswith("a:"):
            self.session = replace(self.session, prompt=Prompt("area", (cid[2:],)))
            self.show()
            return
        here = self.session.position
        if cid.startswith("p:") and prompt and prompt.kind == "help" and here is not None:
            # the guide a call for help told of: seen from the step, which comes back after it
            self.session = replace(self.session, prompt=None)
            self.enter_guide(cid[2:], here.step, via, {"reason": "help"})
            return
        if cid.startswith("p:"):
            how: Via = "menu"
            if prompt and prompt.kind in ("disambiguate", "legal"):
                how = "match"
            elif prompt and prompt.kind in ("switch", "help"):
                how = "switch"
            elif prompt and prompt.kind in ("resume", "vanished"):
                how = "restart"
            self.start_flow(cid[2:], how)
            return
        self.session = replace(self.session, prompt=None)
        self.apply_step_choice(cid, via)

    def apply_step_choice(self, cid: str, via: Via) -> None:
        step_ = self.current_step()
        pos = self.session.position
        if step_ is None or pos is None:
            self.show()
            return
        if step_.kind == "choice" and cid.startswith("o:"):
            option = next((o for o in step_.options if o.id == cid[2:]), None)
            if option is None:
                self.show()
                return
            answers = dict(self.session.answers)
            answers[f"{pos.procedure}/{step_.id}"] = option.id
            self.session = replace(self.session, answers=answers)
            detail = {"option": option.id}
            if option.goto and option.next:
                self.enter_guide(option.goto, option.next, via, detail)
            elif option.next:
                self.move(option.next, via, detail)
            return
        if cid.startswith("t:") and step_.kind == "checklist":
            key = f"{pos.procedure}/{step_.id}/{cid[2:]}"
            if via == "typed" and key in self.session.ticks:
                # The same number again: untick only by a tap, so pressing "1" again and again never loops.
                offered = self.current_choices()
                n = next((i for i, c in enumerate(offered, 1) if c.id == cid), 0)
                onward = next((i for i, c in enumerate(offered, 1) if c.id == "next"), 0)
                self.emit("checklist-ticked", detail={"item": cid[2:], "ticked": True, "again": True})
                self.say(texts.CHECKLIST_ALREADY.format(n=n, onward=onward), offered)
                return
            ticked = key not in self.session.ticks
            ticks = self.session.ticks | {key} if ticked else self.session.ticks - {key}
            self.session = replace(self.session, ticks=ticks)
            self.emit("checklist-ticked", detail={"item": cid[2:], "ticked": ticked})
            self.show()
            return
        if cid == "next":
            if step_.kind == "message" and step_.goto and step_.next:
                self.enter_guide(step_.goto, step_.next, via, {})
            elif step_.next:
                self.move(step_.next, via, {})
            return
        if cid == "missing" and step_.missing_next:
            self.move(step_.missing_next, via, {"checklist": "missing"})
            return
        if cid == "paid" and step_.next:
            self.move(step_.next, via, {"payment": "paid"})
            return
        if cid == "payfail" and step_.failed_next:
            self.move(step_.failed_next, via, {"payment": "failed"})
            return
        if cid == "payguide" and step_.guide:
            self.enter_guide(step_.guide, step_.id, via, {"payment": "guide"})
            return
        self.show()

    # -- movement ------------------------------------------------------------

    def push_history(self) -> None:
        pos = self.session.position
        if pos is not None:
            hist = (*self.session.history, pos)[-self.config.history_limit :]
            self.session = replace(self.session, history=hist)

    def move(self, target: str, via: Via, detail: Mapping[str, Any]) -> None:
        pos = self.session.position
        assert pos is not None
        self.push_history()
        self.session = replace(self.session, position=replace(pos, step=target), prompt=None)
        self.emit("step-entered", from_step=pos.step, to_step=target, via=via, step_id=target, detail=dict(detail))
        self.arrive()

    def enter_guide(self, guide_id: str, return_step: str, via: Via, detail: Mapping[str, Any]) -> None:
        pos = self.session.position
        flow = self.cat.flow(guide_id)
        if pos is None or flow is None:
            self.show()
            return
        if len(pos.stack) >= 5:  # guides calling guides in a loop: do not go deeper
            self.move(return_step, via, detail)
            return
        self.push_history()
        self.emit(
            "guide-entered",
            detail={"guide": guide_id, "return_to": return_step, **detail},
            from_step=pos.step,
            via="jump",
        )
        new = Position(guide_id, flow.start, (*pos.stack, Frame(pos.procedure, return_step)))
        self.session = replace(self.session, position=new, prompt=None)
        self.emit("step-entered", from_step=None, to_step=flow.start, via="jump")
        self.arrive()

    def arrive(self) -> None:
        """Show the step just entered; end steps return from a guide or finish the flow."""
        step_ = self.current_step()
        pos = self.session.position
        assert step_ is not None and pos is not None
        if step_.kind != "end":
            if step_.kind == "handoff":
                self.emit("handoff-shown", detail={"contacts": list(self.handoff_contacts(step_))})
            self.show()
            return
        proc = self.cat.procedure(pos.procedure)
        self.say(self.fill(step_.text, proc), links=step_.links)
        if pos.stack:
            frame = pos.stack[-1]
            caller = self.cat.procedure(frame.procedure)
            self.session = replace(self.session, position=Position(frame.procedure, frame.step, pos.stack[:-1]))
            self.emit(  # recorded under the guide, at its end step: the guide's own run is complete
                "guide-returned",
                from_step=step_.id,
                to_step=frame.step,
                via="return",
                detail={"guide": pos.procedure, "procedure": frame.procedure},
                procedure_id=pos.procedure,
                step_id=step_.id,
            )
            # ...and the caller's step is entered again, so the report counts who came back to it
            self.emit("step-entered", to_step=frame.step, via="return")
            if caller is not None:
                self.say(texts.BACK_TO_PROCEDURE.format(name=caller.name))
            target = self.current_step()
            if target is None:
                self.show()
                return
            if step_.paid and target.kind == "payment" and target.next:
                # "Đã thanh toán xong" was said in the guide: the payment step is not asked again.
                self.move(target.next, "return", {"payment": "paid"})
                return
            # The return step is arrived at like any other: a handoff is recorded, an end step finishes.
            self.arrive()
            return
        started = self.session.started_at
        self.emit("flow-completed", detail={"seconds": round(self.now.timestamp() - started, 1) if started else None})
        self.session = replace(self.session, position=None, history=(), prompt=None, started_at=None)
        self.show()

    def start_flow(self, proc_id: str, via: Via) -> None:
        proc = self.cat.procedure(proc_id)
        flow = self.cat.flow(proc_id)
        if proc is None or flow is None:
            self.show()
            return
        if self.session.position is not None:
            self.leave_flow("flow-exited", via, park=via != "restart")
        parked = self.session.parked
        if parked is not None and self.root_of(parked.position) == proc_id:
            parked = None  # starting this procedure afresh: its old place is gone
        self.session = replace(self.session, parked=parked)
        keep = {k: v for k, v in self.session.answers.items() if not k.startswith(proc_id + "/")}
        ticks = frozenset(t for t in self.session.ticks if not t.startswith(proc_id + "/"))
        self.session = replace(
            self.session,
            position=Position(proc_id, flow.start),
            history=(),
            answers=keep,
            ticks=ticks,
            prompt=None,
            started_at=self.now.timestamp(),
        )
        self.emit("flow-started", via=via, to_step=flow.start, step_id=flow.start)
        self.emit("step-entered", from_step=None, to_step=flow.start, via=via, step_id=flow.start)
        self.say((texts.STARTING_GUIDE if proc.is_guide else texts.STARTING).format(name=proc.name))
        self.arrive()

    def leave_flow(self, type_: str, reason: str, park: bool = True) -> None:
        """Leave the flow in progress; unless it is being restarted, keep the place to continue later."""
        pos = self.session.position
        if pos is None:
            return
        self.emit(type_, detail={"reason": reason})
        parked = Parked(pos, self.session.history, self.session.started_at) if park else self.session.parked
        self.session = replace(self.session, position=None, history=(), started_at=None, parked=parked)

    def back(self) -> None:
        self.emit("back")
        hist = self.session.history
        if not hist or self.session.position is None:
            if self.session.prompt is not None:
                self.session = replace(self.session, prompt=None)
            elif self.session.position is not None:
                self.say(texts.FIRST_STEP)
            self.show()
            return
        prev = hist[-1]
        current = self.session.position
        self.session = replace(self.session, position=prev, history=hist[:-1], prompt=None)
        self.emit(
            "step-entered",
            from_step=current.step,
            to_step=prev.step,
            via="back",
            procedure_id=prev.procedure,
            step_id=prev.step,
        )
        self.show()

    def cancel(self) -> None:
        """Ask once before stopping (nothing is lost either way); a second "hủy" confirms."""
        pos = self.session.position
        if pos is None:
            self.session = replace(self.session, prompt=None)
            self.show()
            return
        if self.session.prompt is not None and self.session.prompt.kind == "confirm-cancel":
            self.stop()
            return
        self.emit("cancel-asked")
        self.session = replace(self.session, prompt=Prompt("confirm-cancel"))
        self.show()

    def stop(self) -> None:
        """Stop the procedure, keeping the place; then ask once why (never blocking)."""
        pos = self.session.position
        assert pos is not None
        root = self.root_of(pos)
        at = pos.stack[0].step if pos.stack else pos.step
        proc = self.cat.procedure(root)
        self.leave_flow("flow-cancelled", "command")
        self.session = replace(self.session, prompt=Prompt("exit-reason", (root, "cancel", at)))
        self.say(texts.CANCELLED.format(name=proc.name if proc else root))
        self.show()

    @staticmethod
    def root_of(pos: Position) -> str:
        """The procedure a position belongs to (the caller, when inside a guide)."""
        return pos.stack[0].procedure if pos.stack else pos.procedure

    def help(self) -> None:
        self.emit("help")
        guide = self.guide_told_of()
        self.session = replace(self.session, prompt=Prompt("help", (guide,) if guide else ()))
        self.show()

    def guide_told_of(self) -> str | None:
        """A guide that a call for help plainly tells of: "có người gọi điện đòi tiền" while renewing health
        insurance is help, and also the guide to scam calls, offered first on the help card."""
        text = self.inbound.text if self.inbound.kind == "text" else ""
        said = self.said(text)
        if words_beside(said, self.content.vocabulary, "help") < _GUIDE_IN_HELP_WORDS:
            return None  # only a call for help ("tôi không biết làm sao"), however a search would read it
        result = self.match(text)
        proc = self.cat.procedure(result.procedure_id) if result.status == "confident" and result.procedure_id else None
        pos = self.session.position
        doing = ({f.procedure for f in pos.stack} | {pos.procedure}) if pos else set()
        if proc is None or not proc.is_guide or proc.id in doing or self.cat.flow(proc.id) is None:
            return None
        return proc.id

    def offer_resume(self) -> None:
        self.emit("resume-offered")
        if self.session.position is None:  # a procedure left at the menu or stopped: offer to continue it
            self.session = replace(self.session, prompt=Prompt("resume"))
            self.show()
            return
        pos, last = self.session.position, self.session.last_seen
        if pos is not None and last is not None and self.now.timestamp() - last > self.config.abandon_after_seconds:
            root = pos.stack[0].procedure if pos.stack else pos.procedure
            at = pos.stack[0].step if pos.stack else pos.step
            self.session = replace(self.session, prompt=Prompt("exit-reason", (root, "came-back", at)))
        else:
            self.session = replace(self.session, prompt=Prompt("resume"))
        self.show()

    # -- start and free text ---------------------------------------------------

    def on_start(self, payload: str | None) -> None:
        if payload:
            if self.cat.flow(payload) is not None:
                self.start_flow(payload, "deeplink")
                return
            self.say(texts.UNKNOWN_DEEPLINK)
        if self.session.position is not None or self.session.parked is not None:
            self.offer_resume()
            return
        self.session = replace(self.session, prompt=None)
        self.say(texts.WELCOME)
        self.show()

    def on_text(self, text: str) -> None:
        reading = self.reading
        if reading is not None and reading.kind in ("greeting", "thanks"):
            self.say(texts.THANKS_REPLY if reading.kind == "thanks" else texts.GREETING_REPLY)
            if self.session.position is None and reading.kind == "greeting":
                if self.session.parked is not None:
                    self.offer_resume()  # "xin chào" after leaving a procedure: name it, offer to continue
                    return
                self.say(texts.WELCOME)
            self.show()
            return
        pos = self.session.position
        if pos is not None and self.session.prompt is None and (asked := self.facts_asked(text)):
            self.answer_facts(asked)  # "phí bao nhiêu", "mất bao lâu vậy", "làm ở đâu": the facts, then the step
            return
        if pos is None and only_dialogue(self.content.vocabulary.canonical(self.said(text)), self.content.vocabulary):
            self.show()  # "dạ", "ok" to the menu: the menu again, not a search that finds a name by two letters
            return
        result = self.match(text)
        if result.intent == "law" and pos is not None and not _plainly_legal(text, result):
            # mid-procedure, a short or half-sure "law" reading is more likely an answer the step did not
            # expect ("kiểm tra rồi, không sai chỗ nào"): treated as not understood below
            result = MatchResult("none", ())
        if result.intent == "law":
            # What the law says is not a procedure to start: say so, say where to ask, and offer
            # the related procedure as something to *do* (never started without a tap).
            self.emit(
                "legal-question",
                detail={
                    "text": stored_text(text, fold),
                    "score": result.gate_score,
                    "candidates": [c.procedure_id for c in result.candidates],
                },
            )
            self.say(texts.LEGAL_QUESTION)
            if pos is not None:
                self.say(self.legal_where())  # where to ask, then the step again: nothing is lost
                self.show()
                return
            self.session = replace(
                self.session, prompt=Prompt("legal", tuple(c.procedure_id for c in result.candidates))
            )
            self.show()
            return
        if pos is not None:
            current = {f.procedure for f in pos.stack} | {pos.procedure}
            top = result.candidates[0].procedure_id if result.candidates else None
            questioned = asks_a_question(text, self.said(text), self.content.vocabulary)
            if result.status != "none" and top in current and not (questioned and result.status != "confident"):
                # The procedure they are doing, by name: stay here and show the step again. (A question only
                # close to its name, "làm trên điện thoại được không", is no such thing: said not understood.)
                self.emit("repeat", detail={"reason": "same-procedure"})
                self.show()
                return
            others = [c for c in result.candidates if c.procedure_id not in current]
            if result.status == "confident" and others and top not in current:
                self.emit("switch-offered", detail={"candidates": [c.procedure_id for c in others]})
                self.session = replace(self.session, prompt=Prompt("switch", tuple(c.procedure_id for c in others)))
                self.show()
                return
            if self.resembled(text):
                return
            self.emit("not-understood", detail={"text": stored_text(text, fold)})
            self.say(texts.NOT_UNDERSTOOD_STEP)
            self.show()
            return
        detail = {
            "text": stored_text(text, fold),
            "candidates": [{"id": c.procedure_id, "score": c.score} for c in result.candidates],
        }
        if result.status == "confident" and result.procedure_id:
            self.emit("match-confident", detail=detail)
            self.start_flow(result.procedure_id, "match")
            return
        if result.status == "ambiguous":
            self.emit("match-ambiguous", detail=detail)
            ids = tuple(c.procedure_id for c in result.candidates)
            if result.family:
                ids = (f"f:{result.family}", *ids)  # the family's own question ("Bạn làm thẻ căn cước …?")
            self.session = replace(self.session, prompt=Prompt("disambiguate", ids))
            self.show()
            return
        self.emit("match-none", detail=detail)
        self.session = replace(self.session, prompt=None)
        self.say(texts.NO_MATCH + "\n" + texts.NO_MATCH_HOTLINE.format(hotline=self.hotline(None)))
        self.show()

    def facts_asked(self, text: str) -> tuple[str, ...]:
        """The facts of the procedure being done that a short question asks (see ``understand.fact_asked``)."""
        pos = self.session.position
        proc = self.cat.procedure(self.root_of(pos)) if pos else None
        if proc is None or proc.is_guide or (pos is not None and pos.stack):
            return ()  # (inside a guide, "ở đâu" is about the guide's matter, not the procedure's office)
        own = frozenset(w for n in (proc.name, *proc.aliases) for w in fold(n).split())
        return fact_asked(tuple(t for t, _ in self.said(text)), own)

    def answer_facts(self, asked: tuple[str, ...]) -> None:
        pos = self.session.position
        proc = self.cat.procedure(self.root_of(pos)) if pos else None
        assert proc is not None
        self.emit("fact-asked", detail={"asked": list(asked)})
        parts = []
        for what in asked:
            if what == "fee":
                parts.append(self.fee_table(proc))
            elif what == "time":
                parts.append(
                    self.fill(texts.FACT_TIME, proc, footnote=False)
                    if proc.processing_time
                    else texts.FACT_UNKNOWN.format(what=texts.FACT_TIME_WHAT, where=self.where_to_check(proc))
                )
            else:
                parts.append(
                    self.fill(texts.FACT_PLACE, proc, footnote=False)
                    if proc.agency
                    else texts.FACT_UNKNOWN.format(what=texts.FACT_PLACE_WHAT, where=self.where_to_check(proc))
                )
        text = "\n\n".join(parts)
        if texts.UNVERIFIED_MARK in text and texts.UNVERIFIED_FOOTNOTE not in text:
            text += "\n" + texts.UNVERIFIED_FOOTNOTE
        self.say(text)
        self.show()

    def resembled(self, text: str) -> bool:
        """At a choice step, the last try before "tôi chưa hiểu": the choice whose label or ways of saying
        the message is most like ("cứ văng ra hoài" → "Vẫn chưa được"), or a question between two close ones."""
        step_ = self.current_step()
        if step_ is None or step_.kind != "choice" or self.session.prompt is not None:
            return False
        offered = self.current_choices()
        ids = {c.id for c in offered}
        content = self.content
        vocab = content.vocabulary
        if vocab.asks(self.said(text)):
            return False  # "bao lâu thì có kết quả" asks something: no choice answers it
        # typed with diacritics, words are compared as spelled: "chở hàng ngoài chợ" is not "chờ họ gọi"
        marked = typed_with_marks(text, content.reader)
        choices = [
            (f"o:{o.id}", [content.phrase(t, marked) for t in (o.label, *o.says)])
            for o in step_.options
            if f"o:{o.id}" in ids
        ]
        cid, close = content.resemblance(marked).choice(content.meaning(text, marked), choices, vocab.negative)
        if cid is not None:
            self.reading = Reading("choice", cid, how="resembles")
            # worth an official's look: a way of saying to add under the choice's ``says:``
            self.emit("choice-resembled", detail={"choice": cid, "text": stored_text(text, fold)})
            self.apply(cid, "typed")
            return True
        if close:
            self.reading = Reading("ask", candidates=close, how="resembles")
            self.ask(offered, close)
            return True
        return False

    # -- views -------------------------------------------------------------------

    def step_exists(self, proc_id: str, step_id: str) -> bool:
        flow = self.cat.flow(proc_id)
        return flow is not None and flow.step(step_id) is not None

    def current_step(self) -> Step | None:
        pos = self.session.position
        if pos is None:
            return None
        flow = self.cat.flow(pos.procedure)
        return flow.step(pos.step) if flow else None

    def known_choice(self, cid: str) -> bool:
        """Whether a choice id is one the content and the engine can offer (so it is safe to record)."""
        if cid in _FIXED_CHOICES or cid in _COMMAND_CHOICES:
            return True
        kind, _, rest = cid.partition(":")
        if kind == "p":
            return self.cat.procedure(rest) is not None
        if kind == "a":
            return rest == "g" or (rest.isdigit() and len(rest) <= 2)
        if kind == "x":
            return rest in _EXIT_CODES
        if kind in ("o", "t"):
            pos = self.session.position
            flow = self.cat.flow(pos.procedure) if pos else None
            return flow is not None and any(
                rest in {o.id for o in s.options} | {i.id for i in s.items} for s in flow.steps
            )
        return False

    def current_choices(self) -> tuple[Choice, ...]:
        view = self.view()
        return view[-1].choices if view else ()

    def nav(self, include_back: bool = True) -> tuple[Choice, ...]:
        out = []
        if include_back and (self.session.history or self.session.prompt):
            out.append(Choice(CMD_BACK, texts.BACK))
        out.append(Choice(CMD_HELP, texts.HELP))
        out.append(Choice(CMD_MENU, texts.MENU))
        return tuple(out)

    def view(self) -> list[Reply]:
        """What the citizen sees at the current session (computed once per session state in a turn)."""
        cached = self._view
        if cached is not None and cached[0] is self.session:
            return list(cached[1])
        replies = self._render_view()
        self._view = (self.session, replies)
        return list(replies)

    def _render_view(self) -> list[Reply]:
        prompt = self.session.prompt
        if prompt is not None:
            return self.view_prompt(prompt)
        step_ = self.current_step()
        if step_ is None:
            return [self.menu()]
        return self.view_step(step_)

    def menu(self) -> Reply:
        areas = self.cat.areas()
        choices = [Choice(f"a:{i}", a[:1].upper() + a[1:]) for i, a in enumerate(areas)]
        if any(p.is_guide for p in self.cat.procedures):
            choices.append(Choice("a:g", texts.GUIDES_AREA))
        parked = self.session.parked
        proc = self.cat.procedure(self.root_of(parked.position)) if parked else None
        if proc is not None:  # the procedure left unfinished comes first, so nothing is lost
            name = proc.name if len(proc.name) <= 45 else proc.name[:44].rstrip() + "…"
            choices.insert(0, Choice("resume", texts.RESUME_PARKED.format(name=name)))
        return Reply(texts.MENU_PROMPT, tuple(choices))

    def view_prompt(self, prompt: Prompt) -> list[Reply]:
        cat = self.cat
        if prompt.kind == "area":
            code = prompt.data[0] if prompt.data else ""
            areas = cat.areas()
            if code == "g":
                procs = [p for p in cat.procedures if p.is_guide]
                title = texts.GUIDES_AREA
            elif code.isdigit() and int(code) < len(areas):
                title = areas[int(code)]
                procs = [p for p in cat.procedures if not p.is_guide and p.area == title]
            else:
                return [self.menu()]
            choices = tuple(Choice(f"p:{p.id}", p.name) for p in procs if cat.flow(p.id))
            return [Reply(texts.AREA_PROMPT.format(area=title[:1].upper() + title[1:]), choices + self.nav())]
        if prompt.kind == "disambiguate":
            choices = tuple(Choice(f"p:{pid}", p.name) for pid in prompt.data if (p := cat.procedure(pid)))
            family = next((f for f in cat.families if prompt.data and prompt.data[0] == f"f:{f.id}"), None)
            text = family.question if family is not None else texts.AMBIGUOUS
            return [Reply(text, (*choices, Choice("none", texts.NONE_OF_THESE)))]
        if prompt.kind == "legal":
            related = tuple(
                Choice(f"p:{pid}", texts.DO_PROCEDURE.format(name=p.name))
                for pid in prompt.data
                if (p := cat.procedure(pid)) is not None and cat.flow(pid) is not None
            )
            text = self.legal_where()
            if related:
                text += "\n\n" + texts.LEGAL_DO
            return [Reply(text, (*related, Choice(CMD_MENU, texts.MENU)))]
        if prompt.kind == "switch":
            pos = self.session.position
            root = (pos.stack[0].procedure if pos.stack else pos.procedure) if pos else ""
            current = cat.procedure(root)
            choices = tuple(Choice(f"p:{pid}", p.name) for pid in prompt.data if (p := cat.procedure(pid)))
            text = texts.SWITCH_OFFER.format(current=current.name if current else root)
            return [Reply(text, (*choices, Choice("resume", texts.STAY)))]
        if prompt.kind == "resume":
            return [self.resume_reply()]
        if prompt.kind == "reminder" and self.session.position is not None:
            return [self.reminder_reply()]
        if prompt.kind == "confirm-cancel":
            pos = self.session.position
            proc = cat.procedure(self.root_of(pos)) if pos else None
            text = texts.CONFIRM_CANCEL.format(name=proc.name if proc else "")
            return [Reply(text, (Choice("stop", texts.STOP), Choice("resume", texts.CONTINUE_PROCEDURE)))]
        if prompt.kind == "exit-reason":
            reasons = tuple(Choice(f"x:{code}", label) for code, label in texts.EXIT_REASONS)
            if len(prompt.data) > 1 and prompt.data[1] == "came-back":
                proc = cat.procedure(prompt.data[0])
                text = texts.EXIT_REASON_ASK_RETURN.format(name=proc.name if proc else prompt.data[0])
                return [Reply(text, (Choice("resume", texts.CONTINUE_PROCEDURE), *reasons))]
            return [Reply(texts.EXIT_REASON_ASK, (*reasons, Choice(CMD_MENU, texts.MENU)))]
        if prompt.kind == "vanished":
            root = prompt.data[0] if prompt.data else ""
            proc = cat.procedure(root)
            name = proc.name if proc else root
            restart = (Choice(f"p:{root}", texts.RESTART), Choice(CMD_MENU, texts.MENU))
            if len(prompt.data) > 1 and self.step_exists(root, prompt.data[1]):
                return [
                    Reply(
                        texts.STEP_GONE_RESUME.format(name=name), (Choice("resume-at", texts.RESUME_EARLIER), *restart)
                    )
                ]
            return [Reply(texts.STEP_GONE.format(name=name), restart)]
        # help
        return [self.help_reply()]

    def resume_reply(self) -> Reply:
        parked = self.session.parked
        pos = self.session.position or (parked.position if parked else None)
        history = self.session.history if self.session.position else (parked.history if parked else ())
        assert pos is not None
        root_proc = self.root_of(pos)
        root_step = pos.stack[0].step if pos.stack else pos.step
        proc = self.cat.procedure(root_proc)
        name = proc.name if proc else root_proc
        if pos.stack:
            guide = self.cat.procedure(pos.procedure)
            text = texts.RESUME_OFFER_GUIDE.format(guide=guide.name if guide else pos.procedure, name=name)
        else:
            done, total = self.progress(root_proc, root_step, history)
            text = texts.RESUME_OFFER.format(pos=done, total=total, name=name)
        return Reply(
            text,
            (Choice("resume", texts.CONTINUE), Choice(f"p:{root_proc}", texts.RESTART), Choice(CMD_MENU, texts.MENU)),
        )

    def progress(self, proc_id: str, step_id: str, history: tuple[Position, ...]) -> tuple[int, int]:
        """("bước 3/8") The steps this citizen went through, and that plus the fewest still ahead on their path."""
        flow = self.cat.flow(proc_id)
        if flow is None:
            return 1, 1
        seen = {p.step for p in history if p.procedure == proc_id and not p.stack} - {step_id}
        done = len(seen) + 1
        return done, done + _steps_to_end(flow, step_id)

    def help_reply(self) -> Reply:
        pos = self.session.position
        root = (pos.stack[0].procedure if pos.stack else pos.procedure) if pos else None
        proc = self.cat.procedure(root) if root else None
        contacts = proc.contacts if proc and proc.contacts else self.cat.default_contacts
        lines = [texts.HELP_INTRO_PROC.format(name=proc.name) if proc else texts.HELP_INTRO]
        lines += self.contact_lines(contacts, proc)
        bring = proc.bring if proc and proc.bring else texts.DEFAULT_BRING
        lines += ["", texts.BRING_INTRO, *[f"• {b}" for b in bring]]
        choices: tuple[Choice, ...] = (Choice("resume", texts.RESUME),) if pos else ()
        prompt = self.session.prompt
        guide = self.cat.procedure(prompt.data[0]) if prompt and prompt.kind == "help" and prompt.data else None
        if guide is not None:
            name = guide.name if len(guide.name) <= 45 else guide.name[:44].rstrip() + "…"
            choices = (Choice(f"p:{guide.id}", texts.SEE_GUIDE.format(name=name)), *choices)
        return Reply("\n".join(lines), (*choices, Choice(CMD_MENU, texts.MENU)))

    def contact_line(self, c: Contact) -> str:
        parts = [c.name]
        if c.phone:
            parts.append(f"số {c.phone}")
        if c.address and fold(c.name) not in fold(c.address):
            parts.append(c.address)
        elif c.address:
            parts[0] = c.address  # "Trụ sở công an xã nơi bạn ở" says the name already
        if c.hours:
            parts.append(c.hours)
        line = "• " + ", ".join(parts)
        if c.url:
            line += f" ({c.url})"
        if not c.verification.verified:
            line += texts.UNVERIFIED_MARK
        return line

    def contact_lines(self, ids: tuple[str, ...], proc: Procedure | None) -> list[str]:
        """One line per contact; contacts not yet verified are marked (*) and explained once below."""
        contacts = [self.cat.contacts[c] for c in ids if c in self.cat.contacts]
        lines = [self.contact_line(c) for c in contacts]
        if any(not c.verification.verified for c in contacts):
            lines.append(texts.CONTACT_UNVERIFIED.format(where=self.where_to_check(proc)))
        return lines

    def handoff_contacts(self, step_: Step) -> tuple[str, ...]:
        if step_.contacts:
            return step_.contacts
        pos = self.session.position
        proc = self.cat.procedure(pos.procedure) if pos else None
        return proc.contacts if proc and proc.contacts else self.cat.default_contacts

    def view_step(self, step_: Step) -> list[Reply]:
        pos = self.session.position
        assert pos is not None
        proc = self.cat.procedure(pos.procedure)
        text = self.fill(step_.text, proc)
        links = step_.links
        kind = step_.kind
        if kind == "message":
            return [Reply(text, (Choice("next", texts.CONTINUE), *self.nav()), links)]
        if kind == "choice":
            # A label may name a fact ("Chưa quá {fact:han}"); its mark is explained under the question.
            options = tuple(Choice(f"o:{o.id}", self.fill(o.label, proc, footnote=False)) for o in step_.options)
            if any(texts.UNVERIFIED_MARK in c.label for c in options) and texts.UNVERIFIED_FOOTNOTE not in text:
                text += "\n" + texts.UNVERIFIED_FOOTNOTE
            return [Reply(text, options + self.nav(), links)]
        if kind == "checklist":
            items = self.checklist_items(step_)
            lines = [text, ""]
            choices = []
            for i, item in enumerate(items, 1):
                on = f"{pos.procedure}/{step_.id}/{item.id}" in self.session.ticks
                mark = texts.CHECK_ON if on else texts.CHECK_OFF
                lines.append(f"{mark} {i}. {self.fill(item.text, proc, footnote=False)}")
                choices.append(Choice(f"t:{item.id}", f"{mark} {item_label(item)}"))
            lines += ["", texts.CHECKLIST_HINT]
            if any(texts.UNVERIFIED_MARK in ln for ln in lines[2:]) and texts.UNVERIFIED_FOOTNOTE not in text:
                lines.append(texts.UNVERIFIED_FOOTNOTE)
            choices.append(Choice("next", texts.CHECKLIST_DONE))
            if step_.missing_next:
                choices.append(Choice("missing", texts.CHECKLIST_MISSING))
            return [Reply("\n".join(lines), (*choices, *self.nav()), links)]
        if kind == "payment":
            # What to do, then the fee (and, online, that an unpaid dossier waits), then safety with the buttons.
            fee = self.fee_table(proc)
            if step_.where == "counter":
                safety = texts.SAFETY_COUNTER
            else:
                safety = texts.SAFETY
                fee += f"\n\n{texts.FEE_UNPAID}" if self.fee_due(proc) else ""
            choices = [Choice("payguide", texts.PAY_GUIDE)] if step_.guide and self.cat.flow(step_.guide) else []
            choices.append(Choice("paid", texts.PAY_DONE))
            if step_.failed_next:
                choices.append(Choice("payfail", texts.PAY_FAILED))
            out = [Reply(text)] if text else []
            return [*out, Reply(fee), Reply(safety, (*choices, *self.nav()), links)]
        if kind == "handoff":
            lines = [text, ""]
            lines += self.contact_lines(self.handoff_contacts(step_), proc)
            if step_.bring:
                lines += ["", texts.BRING_INTRO, *[f"• {self.fill(b, proc, footnote=False)}" for b in step_.bring]]
                if any(texts.UNVERIFIED_MARK in b for b in lines[-len(step_.bring) :]):
                    lines.append(texts.UNVERIFIED_FOOTNOTE)
            nxt = (Choice("next", texts.CONTINUE),) if step_.next else ()
            return [Reply("\n".join(lines).strip(), (*nxt, *self.nav()), links)]
        # end (only shown when a session rests on it, e.g. after "back")
        return [Reply(text, self.nav(), links)]

    def checklist_items(self, step_: Step) -> list[ChecklistItem]:
        pos = self.session.position
        assert pos is not None
        answers = {k.split("/", 1)[1]: v for k, v in self.session.answers.items() if k.startswith(pos.procedure + "/")}
        return [i for i in step_.items if i.applies(answers)]

    # -- facts -------------------------------------------------------------------

    def fill(self, text: str, proc: Procedure | None, footnote: bool = True) -> str:
        """Replace {placeholders} with catalogue facts, flagging unverified ones."""
        if proc is None or "{" not in text:
            return text.replace("{{", "{").replace("}}", "}")

        def fact(f: Fact | None) -> str:
            if f is None:
                return ""
            return f.value + ("" if f.verification.verified else texts.UNVERIFIED_MARK)

        def sub(m: re.Match[str]) -> str:
            name, key = m.group(1), m.group(2)
            if name == "fact" and key:
                named = proc.facts.get(key) or self.cat.facts.get(key)
                return fact(Fact(named.value, named.verification)) if named else ""
            if name == "phone" and key:
                c = self.cat.contacts.get(key)
                return (c.phone + ("" if c.verification.verified else texts.UNVERIFIED_MARK)) if c else ""
            if name == "name":
                return proc.name
            if name == "code":
                return fact(proc.code)
            if name == "agency":
                a = proc.agency
                if a is None:
                    return ""
                return (
                    a.name + _checked(a.verification.as_of) + ("" if a.verification.verified else texts.UNVERIFIED_MARK)
                )
            if name == "fee":
                return self.fee_inline(proc, key)
            if name == "time":
                return fact(proc.processing_time)
            if name == "url":
                return fact(proc.url)
            if name == "hotline":
                return self.hotline(proc)
            return m.group(0)

        out = _PLACEHOLDER.sub(sub, text)
        if footnote and texts.UNVERIFIED_MARK in out:
            out += "\n" + texts.UNVERIFIED_FOOTNOTE
        return out.replace("{{", "{").replace("}}", "}")

    def where_to_check(self, proc: Procedure | None) -> str:
        """The place a citizen should confirm unverified facts: the procedure's first verified office."""
        ids = proc.contacts if proc and proc.contacts else self.cat.default_contacts
        for cid in ids:
            c = self.cat.contacts.get(cid)
            if c and c.address and c.verification.verified:
                return c.name[:1].lower() + c.name[1:] if c.name[:2].istitle() else c.name
        return texts.UNVERIFIED_WHERE_DEFAULT

    def legal_where(self) -> str:
        """Where to ask a question about the law: the intent gate's contacts (or the default ones)."""
        cat = self.cat
        ids = cat.gate.contacts if cat.gate else cat.default_contacts
        where = "\n".join(
            f"• {c.name}: {c.phone}" if c.phone else f"• {c.name}"
            for cid in ids
            if (c := cat.contacts.get(cid)) is not None
        )
        return texts.LEGAL_WHERE.format(contacts=where)

    def hotline(self, proc: Procedure | None) -> str:
        ids = proc.contacts if proc and proc.contacts else self.cat.default_contacts
        parts = []
        for cid in ids:
            c = self.cat.contacts.get(cid)
            if c and c.phone:
                note = "" if c.verification.verified else f" ({texts.UNVERIFIED})"
                parts.append(f"{c.name} {c.phone}{note}")
        return "; ".join(parts) or texts.UNVERIFIED_WHERE_DEFAULT

    def current_fees(self, proc: Procedure) -> list[Fee]:
        today = self.now.date()
        return [f for f in proc.fees if f.applies_on(today)]

    def fee_inline(self, proc: Procedure, case: str | None = None) -> str:
        """The fees in force today in one line; ``case``: only that case's row ({fee:cap-lai})."""
        fees = [f for f in self.current_fees(proc) if case is None or f.id == case]
        if not fees:
            return proc.fee_note or texts.FEE_NONE.format(where=self.where_to_check(proc))
        parts = []
        unverified = False
        for f in fees:
            amounts = _amounts(f.online, f.counter, f.unit)
            if case is not None and f.before_discount:
                amounts += " " + texts.FEE_DISCOUNTED.format(full=money(f.before_discount, f.unit))
                amounts += " " + texts.FEE_UNTIL.format(day=_date(f.valid_to)) if f.valid_to else ""
            # One row is named too when other cases are priced differently (the fee note says how):
            # "Đăng ký khai tử đúng hạn: miễn phí", not a bare "miễn phí".
            named = len(fees) > 1 or (case is None and bool(proc.fee_note))
            parts.append(f"{f.label}: {amounts}" if named else amounts)
            unverified |= not f.verification.verified
        text = "; ".join(parts) + _checked(_oldest_check(fees))
        return text + (texts.UNVERIFIED_MARK if unverified else "")

    def fee_table(self, proc: Procedure | None) -> str:
        """Fees in force today, each case once; exemptions, notes, basis and dates said once each.

        Never a number the catalogue lacks. The legal basis and the date a rate applies
        from are separate sentences: "Căn cứ: Thông tư 73/2024/TT-BTC. Mức trên áp dụng từ
        01/01/2026." (not "…TT-BTC, áp dụng từ…", which reads as the circular's own date).
        """
        if proc is None:
            return texts.FEE_NONE.format(where=texts.UNVERIFIED_WHERE_DEFAULT)
        where = self.where_to_check(proc)
        fees = self.current_fees(proc)
        lines = [texts.FEE_TITLE.format(name=proc.name)]
        if not fees:
            lines.append(proc.fee_note or texts.FEE_NONE.format(where=where))
            return "\n".join(lines)
        starts = {f.valid_from for f in fees}
        ends = {f.valid_to for f in fees}
        shared = {f.exemptions for f in fees if f.exemptions}
        common = next(iter(shared)) if len(shared) == 1 else ()  # rows without exemptions (free ones) aside
        for f in fees:
            line = f"• {f.label}: {_amounts(f.online, f.counter, f.unit)}"
            if f.before_discount:
                line += " " + texts.FEE_DISCOUNTED.format(full=money(f.before_discount, f.unit))
            if (len(starts) > 1 or len(ends) > 1) and (f.start_known or f.valid_to):
                line += " " + _period(f.valid_from if f.start_known else None, f.valid_to)
            if not f.verification.verified:
                line += texts.UNVERIFIED_MARK
            lines.append(line + ".")
            if f.exemptions and not common:
                lines.append("  " + texts.FEE_EXEMPT.format(who="; ".join(f.exemptions)))
        if common:
            lines.append(texts.FEE_EXEMPT.format(who="; ".join(common)))
        notes = list(dict.fromkeys(n for n in (*(f.detail for f in fees), proc.fee_note) if n))
        lines += notes
        bases = list(dict.fromkeys(f.legal_basis for f in fees if f.legal_basis))
        if bases:
            lines.append(texts.FEE_BASIS.format(basis="; ".join(bases)))
        known = all(f.start_known for f in fees)
        if len(starts) == 1 and len(ends) == 1 and (known or fees[0].valid_to):
            first = fees[0]
            lines.append(
                texts.FEE_SINCE.format(period=_period(first.valid_from if known else None, first.valid_to)[1:-1])
            )
        checked = _oldest_check(fees)
        if checked:
            lines.append(texts.FEE_CHECKED.format(day=_date(checked)))
        if any(not f.verification.verified for f in fees):
            lines.append(texts.FEE_UNVERIFIED.format(unverified=texts.UNVERIFIED))
        return "\n".join(lines)

    def fee_due(self, proc: Procedure | None) -> bool:
        """Whether a fee in force today has an amount: only then is "unpaid dossiers wait" worth saying."""
        fees = self.current_fees(proc) if proc else []
        return any(f.online or f.counter for f in fees)


_PLACEHOLDER: Final = re.compile(r"(?<!\{)\{([a-z_]+)(?::([a-z0-9-]+))?\}(?!\})")


def _checked(day: date | None) -> str:
    """ " (cập nhật 03/12/2026)": the day a fact was last checked against its source."""
    return " " + texts.CHECKED_ON.format(day=_date(day)) if day else ""


def _period(start: date | None, end: date | None) -> str:
    """ "(từ 01/01/2026)", "(từ 01/01/2025 đến hết 31/12/2025)", or "(đến hết 31/12/2025)" when the start is unknown."""
    if start is None:
        return f"(đến hết {_date(end)})" if end else ""
    return f"(từ {_date(start)}" + (f" đến hết {_date(end)})" if end else ")")


def _oldest_check(fees: Sequence[Fee]) -> date | None:
    """The least recent day any of these fee rows was checked (the table is only as fresh as that)."""
    days = [f.verification.as_of for f in fees if f.verification.as_of]
    return min(days) if days else None


def _steps_to_end(flow: Flow, step_id: str) -> int:
    """How many steps, at the fewest, follow ``step_id`` before the flow's end (not counting the end step)."""
    edges = {
        s.id: [n for n in (*(o.next for o in s.options), s.next, s.missing_next, s.failed_next) if n]
        for s in flow.steps
    }
    ends = {s.id for s in flow.steps if s.kind == "end"}
    depth = {step_id: 0}
    queue = deque([step_id])
    while queue:
        here = queue.popleft()
        if here in ends:
            return max(depth[here] - 1, 0)
        for following in edges.get(here, []):
            if following not in depth:
                depth[following] = depth[here] + 1
                queue.append(following)
    return 0


def item_label(item: ChecklistItem) -> str:
    """A checklist item's button: its ``label``, else the text up to the first "(", ":", ";", "," or "."."""
    return item.label or _short(item.text)


def _short(text: str, limit: int = CHECK_LABEL_CHARS) -> str:
    """The first clause of a text; cut at a word (with "…") only when even that is too long (validate warns)."""
    first = re.split(r"[(:;,.{]", text, maxsplit=1)[0].strip() or text
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip() + "…"


def money(amount: int, unit: str = "đồng") -> str:
    """Vietnamese money format: 0 is free, thousands separated by dots."""
    if amount == 0:
        return texts.FEE_FREE
    return f"{amount:,}".replace(",", ".") + " " + (unit or "đồng")


def _amounts(online: int | None, counter: int | None, unit: str) -> str:
    if online is not None and online == counter:
        return money(online, unit)
    parts = []
    if online is not None:
        parts.append(texts.FEE_ONLINE.format(amount=money(online, unit)))
    if counter is not None:
        parts.append(texts.FEE_COUNTER.format(amount=money(counter, unit)))
    return ", ".join(parts)


def _date(d: Any) -> str:
    return d.strftime("%d/%m/%Y") if d else ""
