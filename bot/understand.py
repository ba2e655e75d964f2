"""Reading what a citizen types *relative to where they are*, before any catalogue search.

Inside a procedure people answer the way they talk: "dạ", "ok em", "rồi", "quay về",
"thôi không làm nữa", "cái thứ hai", "ra công an xã nộp". ``read`` turns such a message,
given the choices the current step offers, into one of:

* a choice of the step (by number, ordinal words, the words of its label, or one of the
  ways of saying it that the flow lists under ``says:`` — in full, or most of its words
  when that choice stands clear of the others — with typos, missing diacritics and the
  officials' abbreviations);
* a command (back, repeat, help, cancel, menu);
* an acknowledgement or a "no" resolved to the step's forward choice, or to its
  yes/no option, when that reading is unambiguous, or a request to pick (``ask``)
  when it is not;
* nothing that fits (the engine then looks at the catalogue).

The words it knows live in the content (``dialogue:`` in procedures.yaml), so officials
can add the ways their citizens speak; ``Vocabulary`` holds them folded. Folding makes
"thôi" and "thời", "rồi" and "rối", "đúng" and "dừng" the same letters: a word typed with
its diacritics is only taken for a vocabulary word spelled the same way, while a word
typed without any is taken for either; in a message typed with diacritics, a word without
them is that word ("chân dung" is not "dừng"). Command phrases that also describe a
situation ("gửi lại", "chọn lộn", "là gì") give way to a choice the message names. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from rapidfuzz import fuzz

from bot.normalize import NUMBER_WORDS, fold_words

Tokens = tuple[str, ...]
Normalizer = Callable[[str], list[str]]
# A word as read: its folded token and how it was spelled (tone mark moved to the end), or None when
# the token came from an abbreviation, a number or a synonym ("dc" → "được", "2" → "hai").
Word = tuple[str, "str | None"]
Phrase = tuple[Word, ...]

# The five commands every step understands, whatever the content says (the buttons' own words).
COMMANDS: Final = ("back", "repeat", "help", "cancel", "menu")
CORE_COMMANDS: Final[Mapping[str, tuple[str, ...]]] = {
    "back": ("quay lại", "back"),
    "repeat": ("lặp lại", "repeat"),
    "help": ("trợ giúp", "help", "gặp cán bộ"),
    "cancel": ("hủy", "cancel", "stop"),
    "menu": ("menu", "về menu chính"),
}
# When a message holds phrases of several commands, the first of these wins: "trở về trang chính"
# is the menu, "xem lại bước trước" is back, "thôi, gặp cán bộ" is help.
PRIORITY: Final = ("help", "cancel", "menu", "back", "repeat")
# "Giúp" alone asks for help; next to another command it is politeness ("quay lại giúp mình").
WEAK_HELP: Final = frozenset(
    {"giup", "gium", "dum", "do", "voi", "minh", "toi", "tui", "em", "can", "xin", "cho", "huong", "dan", "ho", "tro"}
    | {"bo", "nhan", "vien"}  # "cán bộ", "nhân viên": mentioned, not necessarily asked for
)
# Command phrases that also say other things: "gửi lại" (the message, or the files?), "hồi nãy" (back, or
# when?), "hướng dẫn" (help, or "hướng dẫn khắc phục" of a button?), "số điện thoại", "tổng đài" (a call for
# help, or the subject of "nhắc lại số tổng đài"?). Such a phrase gives way to another command and to a
# choice the rest of the message names; alone, it is its command.
_YIELDING: Final[Mapping[str, tuple[str, ...]]] = {
    "back": ("hồi nãy", "lúc nãy", "chọn lại", "sửa lại", "chọn nhầm", "bấm nhầm"),
    "repeat": ("gửi lại", "xem lại", "coi lại", "nhắn lại", "hỏi lại", "ghi lại", "viết lại"),
    "cancel": ("đổi ý",),
    "menu": ("trang chủ", "từ đầu", "mấy việc"),  # "nói lại mấy việc đó": the step's list, said again
    "help": (
        "là gì",
        "là cái gì",
        "là giấy gì",
        "gọi điện",
        "hướng dẫn",
        "số điện thoại",
        "tổng đài",
        "hotline",
        "số để gọi",
        "liên hệ",
        "không rành",
        "hỏi gì vậy",  # "hồi nãy hỏi gì vậy" asks for the message again
        "là sao",  # "vậy là sao, nói lại coi": asked again
        "nói gì vậy",
        "chỉ với",  # typed plainly also "chị với": "nói lại dùm chị với nha" asks for the message again
        "chỉ giùm",
        "chỉ dùm",
        "chỉ giúp",
        "sao đây",  # "sửa lỗi sao đây" at "Xem cách khắc phục": the rest names the choice
        "làm sao đây",
        "làm sao giờ",
        "giờ sao",
        "tính sao",
    ),
}
# Yielding calls for help that ask what the bot said: beside a yielding "hỏi lại", the message is asked again.
_WHAT_SAID: Final = frozenset({("hoi", "gi", "vay"), ("noi", "gi", "vay")})
# Calls for help that ask to be explained to, not for someone to do it: at a step with its own "Nhờ cán bộ
# giúp" answer they are the help command, not that answer.
_CONFUSED: Final = (
    "không hiểu",
    "là sao",
    "khó hiểu",
    "nghĩa là gì",
    "là gì",
    "là cái gì",
    "mù mờ",
    "không biết chọn",
    "không biết làm sao",  # at "Nhờ cán bộ giúp": explain first
    "rối quá",
    "bấm cái nào",
    "chọn cái nào",
)
# "rối quá", "khó quá", "bí quá": a complaint, so help; but next to another command ("rối quá, dừng luôn
# thủ tục này") that command is what is asked.
_COMPLAINT: Final = WEAK_HELP | {"roi", "rac", "kho", "qua", "bi", "ket", "phuc", "tap"} | {"khong", "hieu"}

# Emoji that carry a word; every other emoji is dropped by folding.
_EMOJI_WORDS: Final = {"👍": " ok ", "👌": " ok ", "✅": " ok ", "🆗": " ok ", "🙆": " ok ", "🙏": " "}
_KEYCAP: Final = re.compile("([0-9])\ufe0f?\u20e3")
_RAW_WORD: Final = re.compile(r"\w+")
_TONES: Final = frozenset("\u0300\u0301\u0303\u0309\u0323")
ORDINAL_NUMBERS: Final[Mapping[str, int]] = {
    **{word: int(digit) for digit, word in NUMBER_WORDS.items()},
    **{str(n): n for n in range(1, 21)},
    "nhat": 1,
    "nhi": 2,  # "thứ nhì"
    "nhut": 1,  # "thứ nhứt" (Southern)
    "tu": 4,
}
_NUMBER_TOKENS: Final = frozenset(NUMBER_WORDS.values())
_FIRST: Final = (("dau", "tien"), ("dau",), ("nhat",), ("tren", "cung"), ("o", "tren", "cung"))
_LAST: Final = (("cuoi", "cung"), ("cuoi",), ("duoi", "cung"), ("o", "duoi", "cung"))
_PLAIN_ENDS: Final = frozenset({("dau", "tien"), ("cuoi", "cung"), ("tren", "cung"), ("duoi", "cung")})
_ENDS: Final = frozenset(
    {"dau", "tien", "cuoi", "cung", "tren", "duoi"}
)  # "cai dau": "đầu", though "dau" is also "đâu"
_SPEAKERS: Final = frozenset({"con", "chau"})
_ASKING_TAGS: Final = frozenset({"khong", "hong", "hok", "ko", "k", "kg", "hem"})  # "… được không?"
_CLOSING_POSITION: Final = frozenset({"so", "cai", "thu", "chon", "lua"})  # "… em chọn cái số 2 nha"
_YES_VERBS: Final = frozenset({"muon", "co", "duoc"})  # a yes alone, a verb before more words
NEGATIVE: Final = "khong"  # the token every negation word becomes (see ``Vocabulary.negations``)
# Labels, names and ways of saying read once and kept: enough for every one a large content set has
# (38 flows have about 1,300 labels and 6,600 ways of saying); a bound all the same.
_CACHE_LIMIT: Final = 50_000
_SPELLED_FILLERS: Final = frozenset({"lam"})  # see ``Vocabulary.filler``
_SELF: Final = frozenset({"tui", "toi", "minh", "em", "con", "chau", "tao"})
# Words typed plainly that are themselves, not a marked word of the vocabulary: "cha tui" is "my father".
_PLAIN_KEPT: Final = frozenset({("cha", "cha"), ("don", "don")})  # "co don roi": the form (đơn), not "đồn"
# "X là gì": the citizen does not know X, so X in a label is not their answer; these give way to
# another command ("nói lại") but not to a choice the message names.
_ASKING: Final = frozenset({("la", "gi"), ("la", "cai", "gi"), ("la", "giay", "gi")})
# Verbs people put before a procedure's name ("làm hộ chiếu", "xin lý lịch tư pháp", "đăng ký tạm trú").
NAME_VERBS: Final = frozenset(
    {"lam", "xin", "dang", "ky", "nop", "thu", "tuc", "cap", "rut", "lanh", "khai"}
    | {"huong", "dan"}  # "hướng dẫn thanh toán lệ phí trực tuyến" while in that guide
    | {"giay"}  # "làm giấy khai sinh" while doing Đăng ký khai sinh
)


def spelling(word: str) -> str:
    """A word's spelling with its tone mark moved to the end, so "huỷ" and "hủy" are one spelling."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = "".join(ch for ch in decomposed if ch in _TONES)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONES)) + tones


_ROI: Final[Phrase] = (("roi", spelling("rồi")),)  # "rồi" as the vocabulary spells it
# "rồi" closing a clause: "kiểm tra kỹ rồi, bấm nộp luôn" (done), unlike "xoay xoay rồi văng ra" (then).
_ROI_CLAUSE: Final = re.compile(r"(?<!\w)r(?:ồ|ô|o)i[ \t]*[,.;!?]", re.IGNORECASE)


def words_of(normalize: Normalizer, text: str) -> Phrase:
    """The words of a text: folded tokens (the officials' abbreviations applied) with their spellings."""
    for emoji, word in _EMOJI_WORDS.items():
        if emoji in text:
            text = text.replace(emoji, word)
    text = _KEYCAP.sub(r" \1 ", text)
    out: list[Word] = []
    memo = normalize.word if isinstance(normalize, Reader) else None
    for raw in _RAW_WORD.findall(text.replace("_", " ")):
        out += memo(raw) if memo is not None else _read_word(normalize, raw)
    return tuple(out)


def _read_word(normalize: Normalizer, raw: str) -> Phrase:
    raw = _unstretched(raw)
    tokens = normalize(raw)
    if len(tokens) == 1 and tokens[0] == "".join(fold_words(raw)):
        return ((tokens[0], spelling(raw)),)
    return tuple((t, None) for t in tokens)


class Reader:
    """A normalizer that remembers how it read each word (``words_of`` reads a message word by word).

    The same words come back at every turn ("1", "dạ", "ok", "căn cước", "rồi") and in several readings of
    one message; looking one up costs a fraction of reading it again. Only words of a normal length and
    with few digits are kept (a long run of digits is a personal number, and never comes back), at most
    ``MEMO_WORDS`` of them (a few MB); then the memory starts afresh. Content loaded again gets a new reader.
    """

    MEMO_WORDS: Final = 20_000
    MEMO_LETTERS: Final = 24  # the longest word kept
    __slots__ = ("_words", "normalize")

    def __init__(self, normalize: Normalizer) -> None:
        self.normalize = normalize
        self._words: dict[str, Phrase] = {}

    def __call__(self, text: str) -> list[str]:
        return self.normalize(text)

    def word(self, raw: str) -> Phrase:
        words = self._words.get(raw)
        if words is None:
            words = _read_word(self.normalize, raw)
            if len(raw) <= self.MEMO_LETTERS and sum(ch.isdigit() for ch in raw) < 5:
                if len(self._words) >= self.MEMO_WORDS:
                    self._words.clear()
                self._words[raw] = words
        return words


def _unstretched(raw: str) -> str:
    """A word with a letter held down collapsed: "dạaaa" → "dạ", "okkk" → "ok", "vângggg" → "vâng", "hmmm" → "hm".

    Three or more of the same letter (diacritics aside) never occur in Vietnamese or in Telex typing.
    """
    if len(raw) < 3:
        return raw
    out: list[str] = []
    base: list[str] = []
    for ch in raw:
        b = unicodedata.normalize("NFD", ch.lower())[0]
        if len(base) >= 2 and base[-1] == b and base[-2] == b and not b.isdigit():
            continue  # (digits are amounts: "1000" stays 1000)
        out.append(ch)
        base.append(b)
    if len(out) == len(raw):
        return raw
    # the run is now two long ("dạa", "okk"): keep one
    collapsed: list[str] = []
    bases: list[str] = []
    for ch in out:
        b = unicodedata.normalize("NFD", ch.lower())[0]
        if bases and bases[-1] == b and not b.isdigit():
            continue
        collapsed.append(ch)
        bases.append(b)
    return "".join(collapsed)


def _same(word: Word, wanted: Word) -> bool:
    """A message word is a vocabulary word: the same letters, and the same diacritics unless typed without."""
    if word[0] != wanted[0]:
        return False
    typed, spelled = word[1], wanted[1]
    return typed is None or spelled is None or typed == spelled or typed.isascii()


def _at(words: Phrase, i: int, phrase: Phrase) -> bool:
    """The phrase stands at position ``i`` of the message, each word ``_same`` as the phrase's (written out:
    it runs for every candidate phrase at every word of every message)."""
    if len(phrase) > len(words) - i:
        return False
    for word, wanted in zip(words[i : i + len(phrase)], phrase, strict=True):
        if word[0] != wanted[0]:
            return False
        typed, spelled = word[1], wanted[1]
        if not (typed is None or spelled is None or typed == spelled or typed.isascii()):
            return False
    return True


def _contains(words: Phrase, phrase: Phrase) -> bool:
    first = phrase[0][0]
    last = len(words) - len(phrase)
    return any(w[0] == first and i <= last and _at(words, i, phrase) for i, w in enumerate(words))


def _spelled_in(words: Phrase, word: Word) -> bool:
    """The word is in the message with exactly its diacritics (not typed without them)."""
    return any(w == word and w[1] is not None and not w[1].isascii() for w in words)


def _tokens(words: Phrase) -> Tokens:
    return tuple(t for t, _ in words)


def meaning_of(text: str, vocab: Vocabulary, normalize: Normalizer, marked: bool = False) -> Tokens:
    """The words of a text that carry meaning (synonyms applied, fillers dropped): folded, or ``marked``
    as spelled where the text spells them ("chở" and "chợ" are not "chờ")."""
    words = vocab.core(vocab.canonical(words_of(normalize, text)))
    return tuple(s if marked and s is not None else t for t, s in words)


def opens_with_yes(text: str, vocab: Vocabulary, normalize: Normalizer) -> bool:
    """Whether a message opens with a yes or done ("dạ em hiểu, …", "ok, …"); not with a verb that is a yes
    only alone ("tui muốn làm hộ chiếu", "có ai chỉ không")."""
    words = vocab.canonical(words_of(normalize, text))
    said = [w[0] for w in words if w[0] in _YES_VERBS or not vocab.filler(w)]
    return _leading_yes(words, vocab) > 0 and not (len(said) > 1 and said[0] in _YES_VERBS)


def typed_with_marks(text: str, normalize: Normalizer) -> bool:
    """Whether a message was typed with a Vietnamese keyboard (some word carries diacritics)."""
    return any(s is not None and not s.isascii() for _, s in words_of(normalize, text))


@dataclass(frozen=True)
class Vocabulary:
    """The dialogue words of a content set, as phrases of (token, spelling) words (see ``from_phrases``)."""

    affirm: frozenset[Phrase] = frozenset()
    done: frozenset[Phrase] = frozenset()
    deny: frozenset[Phrase] = frozenset()
    fillers: frozenset[Phrase] = frozenset()  # one word each
    yes_words: frozenset[str] = frozenset()
    negations: frozenset[Phrase] = frozenset()
    ordinal_words: frozenset[Phrase] = frozenset()
    questions: frozenset[Phrase] = frozenset()  # "bao lâu", "ở đâu": the message asks something
    yes_spelled: frozenset[Word] = frozenset()  # the yes words as the answers spell them ("đúng", "được")
    synonyms: tuple[tuple[Phrase, Phrase], ...] = ()  # (a way of saying, its first form), longest first
    commands: Mapping[str, frozenset[Phrase]] = field(default_factory=dict)
    answers: frozenset[Phrase] = frozenset()  # affirm and done together
    answers_but_roi: frozenset[Phrase] = frozenset()  # the same without the bare "rồi" (see ``read``)
    all_commands: frozenset[Phrase] = frozenset()  # every command phrase
    # yes phrases written backwards, to read the end of a message last word first; not a one-letter "ờ"/"ừ"
    # typed plainly ("thoi ngung o day" ends with "ở đây")
    closing_yes: frozenset[Phrase] = frozenset()
    core_help: frozenset[Phrase] = frozenset()  # the help button's own words ("trợ giúp", "gặp cán bộ")
    confused: frozenset[Phrase] = frozenset()  # help that asks to be explained to ("là sao", "không hiểu")
    everywhere: frozenset[Phrase] = frozenset()  # every answer, command, greeting and thanks phrase
    yielding: Mapping[str, frozenset[Tokens]] = field(default_factory=dict)  # see ``_YIELDING``, as read
    greetings: frozenset[Phrase] = frozenset()
    thanks: frozenset[Phrase] = frozenset()
    # one-word commands that fold like a yes/no word ("rối" and "rồi"): taken only when typed with diacritics
    ambiguous: frozenset[Phrase] = frozenset()
    # fillers by token, with their spellings (the check runs for every word of every message)
    filler_spellings: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)
    # labels and names already read: a step's labels are read again at every message
    seen: dict[tuple[str, bool], Phrase] = field(default_factory=dict, compare=False, repr=False)
    written: dict[str, Phrase] = field(default_factory=dict, compare=False, repr=False)  # labels as spelled
    says_seen: dict[tuple[str, str], tuple[Phrase, Phrase] | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    names_seen: dict[tuple[str, ...], tuple[frozenset[str], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # indexes by first token, built once (see ``indexed``)
    index: Mapping[str, Mapping[str, tuple[tuple[str, Phrase, Phrase], ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    affirm_one: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict, compare=False, repr=False)

    def indexed(self) -> Vocabulary:
        """The same vocabulary with its lookups by first token built (synonyms; one-word, longer and core commands)."""
        kinds: dict[str, dict[str, list[tuple[str, Phrase, Phrase]]]] = {
            k: {} for k in ("syn", "one", "many", "core", "answer")
        }
        for form, first in self.synonyms:
            kinds["syn"].setdefault(form[0][0], []).append(("", form, first))
        for command, phrases in self.commands.items():
            for p in phrases:
                kinds["one" if len(p) == 1 else "many"].setdefault(p[0][0], []).append((command, p, p))
                pc = self.core(p)
                if len(p) > 1 and len(pc) >= 2:
                    kinds["core"].setdefault(pc[0][0], []).append((command, pc, p))
        for kind, phrases in (("yes", self.affirm | self.done), ("no", self.deny)):
            for p in phrases:
                if len(p) >= 2:
                    kinds["answer"].setdefault(p[0][0], []).append((kind, p, p))
        index = {k: {t: tuple(v) for t, v in d.items()} for k, d in kinds.items()}
        affirm_one: dict[str, list[str | None]] = {}
        for ((token, spelled),) in (p for p in self.affirm if len(p) == 1):
            affirm_one.setdefault(token, []).append(spelled)
        return replace(self, index=index, affirm_one={t: tuple(v) for t, v in affirm_one.items()})

    @staticmethod
    def from_phrases(
        normalize: Normalizer,
        *,
        affirm: Iterable[str] = (),
        done: Iterable[str] = (),
        deny: Iterable[str] = (),
        fillers: Iterable[str] = (),
        yes_words: Iterable[str] = (),
        negations: Iterable[str] = (),
        ordinal_words: Iterable[str] = (),
        questions: Iterable[str] = (),
        synonyms: Iterable[Sequence[str]] = (),
        commands: Mapping[str, Iterable[str]] | None = None,
        greetings: Iterable[str] = (),
        thanks: Iterable[str] = (),
    ) -> Vocabulary:
        def phrases(items: Iterable[str]) -> frozenset[Phrase]:
            return frozenset(p for p in (words_of(normalize, s) for s in items) if p)

        def tokens(items: Iterable[str]) -> frozenset[str]:
            return frozenset(t for s in items for t, _ in words_of(normalize, s))

        # Every negation word reads as "không": "chẳng hiểu", "hổng làm nữa" are "không hiểu", "không làm nữa".
        negation_forms = [p for p in phrases(negations) if _tokens(p) != (NEGATIVE,)]
        pairs: list[tuple[Phrase, Phrase]] = [(form, ((NEGATIVE, None),)) for form in negation_forms]
        for group in synonyms:
            forms = [words_of(normalize, s) for s in group]
            forms = [f for f in forms if f]
            # the first form keeps its diacritics: "người nhà" from "ba" is not the particle "nha"
            pairs += [(form, forms[0]) for form in forms[1:] if _tokens(form) != _tokens(forms[0])]
            if len(forms[0]) > 1:
                pairs.append((forms[0], forms[0]))  # kept whole: "trước bạ" holds no "ba" (a relative)
        pairs.sort(key=lambda pair: -len(pair[0]))
        merged = {c: [*CORE_COMMANDS[c], *((commands or {}).get(c, ()))] for c in COMMANDS}
        filler_words = frozenset(p for p in (words_of(normalize, s) for s in fillers) if len(p) == 1)
        by_token: dict[str, list[str | None]] = {}
        for ((token, spelled),) in filler_words:
            by_token.setdefault(token, []).append(spelled)
        filler_spellings = {t: tuple(v) for t, v in by_token.items()}
        vocab = Vocabulary(fillers=filler_words, synonyms=tuple(pairs), filler_spellings=filler_spellings)

        def said(items: Iterable[str]) -> frozenset[Phrase]:
            return frozenset(p for p in (vocab.canonical(words_of(normalize, s)) for s in items) if p)

        answers = {_tokens(p) for p in said(affirm) | said(done) | said(deny) if len(p) == 1}
        one_word = {p for c in merged for p in said(merged[c]) if len(p) == 1}
        return Vocabulary(
            ambiguous=frozenset(p for p in one_word if _tokens(p) in answers),
            affirm=said(affirm),
            done=said(done),
            answers=said(affirm) | said(done),
            answers_but_roi=(said(affirm) | said(done)) - {_ROI},
            all_commands=frozenset(p for c in merged.values() for p in said(c)),
            # (a closing "được" is more often "can": "gọi ai hỏi được")
            closing_yes=frozenset(
                tuple(reversed(p)) for p in said(affirm) if len(p) > 1 or (len(p[0][0]) > 1 and p[0][0] != "duoc")
            ),
            core_help=said(CORE_COMMANDS["help"]),
            confused=said(_CONFUSED),
            everywhere=said(affirm)
            | said(done)
            | said(deny)
            | said(greetings)
            | said(thanks)
            | frozenset(p for c in merged.values() for p in said(c)),
            deny=said(deny),
            fillers=filler_words,
            filler_spellings=filler_spellings,
            yes_words=tokens(yes_words),
            negations=phrases(negations),
            ordinal_words=phrases(ordinal_words),
            questions=said(questions),
            yes_spelled=frozenset(
                w for p in said(affirm) | said(done) for w in p if w[0] in tokens(yes_words) and w[1] is not None
            ),
            synonyms=tuple(pairs),
            commands={c: said(p) for c, p in merged.items()},
            yielding={c: frozenset(_tokens(p) for p in said(phrases)) for c, phrases in _YIELDING.items()},
            greetings=said(greetings),
            thanks=said(thanks),
        ).indexed()

    def canonical(self, words: Phrase, exact: bool = False) -> Phrase:
        """Synonyms replaced by the first form of their group ("trực tuyến" → "trên mạng"), longest first.

        "hong" typed without diacritics is the Southern "hổng" (không), except after "bị" ("bị hỏng"); so is any
        "hong" before a word of knowing ("hỏng hiểu").
        ``exact``: the words are spelled in full (a label an official wrote), so "cha" is "cha", never "chả",
        and "bạ" never "ba".
        """
        if not exact:  # the Southern "hổng" first, so that "hong biet" reads as "không biết" does
            words = tuple(
                (NEGATIVE, None)
                if w[0] == "hong"
                and (i == 0 or words[i - 1][0] not in ("bi", "da"))
                and (w == ("hong", "hong") or (i + 1 < len(words) and words[i + 1][0] in _KNOWING))
                else w
                for i, w in enumerate(words)
            )  # ...and "hỏng hiểu", "hỏng biết" (the tone slipped): no thing broken knows
        out: list[Word] = []
        i = 0
        while i < len(words):
            if words[i][1] is None and words[i][0] in _NUMBER_TOKENS:
                out.append(words[i])  # "3" is three, never "ba" the father
                i += 1
                continue
            candidates = self.index["syn"].get(words[i][0], ()) if self.index else ()
            if not self.index:
                candidates = tuple(("", f, first) for f, first in self.synonyms)
            word = words[i]
            plain_filler = word[1] is not None and word[1].isascii() and word[0] in self.filler_spellings
            for _, form, first_words in candidates:
                if len(form) == 1 and (plain_filler or word in _PLAIN_KEPT) and form[0][1] != word[1]:
                    continue  # "cho" typed plainly is "cho" (for), not "chỗ"; "cha" is the father, not "chả"
                if word[0] == form[0][0] and (words[i : i + len(form)] == form if exact else _at(words, i, form)):
                    out += first_words
                    i += len(form)
                    break
            else:
                out.append(words[i])
                i += 1
        return tuple(out)

    def asks(self, said: Phrase) -> bool:
        """Whether a message (as typed) holds a way of asking ("bao lâu thì có kết quả", "ở đâu vậy")."""
        return _says(self.canonical(said), self.questions)

    def yes_word(self, word: Word) -> bool:
        """A yes said in one word ("ok", "dạ", "vâng"), spelled as listed."""
        spellings = (self.affirm_one if self.index else self.indexed().affirm_one).get(word[0], ())
        return any(_same(word, (word[0], s)) for s in spellings)

    def filler(self, word: Word) -> bool:
        """A word said only for politeness or rhythm ("ạ", "nha", "đi", "giùm"), spelled as listed.

        "lam" typed without marks is "làm" far more often than "lắm": it is a filler only typed "lắm".
        """
        spellings = self.filler_spellings.get(word[0])
        if spellings is None or (word[0] in _SPELLED_FILLERS and (word[1] is None or word[1].isascii())):
            return False
        return any(_same(word, (word[0], s)) for s in spellings)

    def read_label(self, text: str, normalize: Normalizer, core: bool = False) -> Phrase:
        """A label or a procedure name as words (synonyms applied; ``core``: fillers dropped), remembered."""
        key = (text, core)
        words = self.seen.get(key)
        if words is None:
            said = words_of(normalize, text)
            # written with its marks (as officials write): every word is as spelled
            words = self.canonical(said, exact=any(w[1] is not None and not w[1].isascii() for w in said))
            if core:
                words = self.core(words)
            if len(self.seen) > _CACHE_LIMIT:
                self.seen.clear()
            self.seen[key] = words
        return words

    def label_words(self, text: str, normalize: Normalizer) -> Phrase:
        """A label's words as written (no synonyms applied), remembered like ``read_label``'s."""
        words = self.written.get(text)
        if words is None:
            if len(self.written) > _CACHE_LIMIT:
                self.written.clear()
            words = self.written[text] = words_of(normalize, text)
        return words

    def says_forms(self, text: str, normalize: Normalizer) -> tuple[Phrase, Phrase] | None:
        """A ``says:`` phrase as read (synonyms applied) and as typed, whole; None when it holds only
        words that already mean something everywhere ("thôi", "dạ", "không", "quay lại"): those stay commands
        and answers."""
        key = ("\0says", text)
        if key in self.says_seen:
            return self.says_seen[key]
        canonical = self.read_label(text, normalize)
        everywhere = self.everywhere
        # Whole: "ở nhờ" without its "ở" would be any "nhờ"; the message is read whole too ("ca nha", "o nho").
        forms = None if not canonical or _only(canonical, everywhere, self) else (canonical, words_of(normalize, text))
        if len(self.says_seen) > _CACHE_LIMIT:
            self.says_seen.clear()
        self.says_seen[key] = forms
        return forms

    def core(self, words: Phrase) -> Phrase:
        """The words that carry meaning (fillers dropped), or all of them when nothing else is left."""
        fillers = self.filler_spellings  # (most words are no filler at all: no call for them)
        return tuple(w for w in words if w[0] not in fillers or not self.filler(w)) or words

    def negative(self, tokens: Iterable[str]) -> bool:
        """Whether words say no (after ``canonical``, every negation is "không"; "chưa" counts too).

        A label's answer is what it says first: "Đã xong hoặc không cần" is a yes, "Chưa, hoặc bị lỗi" a no.
        A no that is over is not one: "hết báo lỗi rồi", "hết bị lỗi".
        """
        said = tuple(tokens)
        for i, t in enumerate(said):
            if t == "hoac":
                return False
            over = i > 0 and (said[i - 1] == "het" or (i > 1 and said[i - 2] == "het" and said[i - 1] in ("bi", "bao")))
            if t in (NEGATIVE, "chua") and not over:
                return True
        return False


@dataclass(frozen=True)
class Options:
    """What the current step offers, in the order the citizen sees (typed numbers count in this order)."""

    choices: tuple[tuple[str, str], ...]  # (choice id, label)
    forward: str | None = None  # what "ok / dạ / tiếp" means here, if anything
    forward_needs_done: bool = False  # only a "done" word moves on (a payment: "xong rồi", not "ok")
    missing: str | None = None  # what "chưa / còn thiếu" means here (a checklist), if anything
    own_names: tuple[str, ...] = ()  # the name (first) and aliases of the procedure the citizen is doing
    flow_choices: int = 0  # how many of the choices belong to the step (the rest are navigation)
    words: bool = True  # whether the words of labels, "ok" and "không" count (not at the menu)
    # other ways citizens say a choice (the content's ``says:``): (choice id, phrases)
    says: tuple[tuple[str, tuple[str, ...]], ...] = ()


ReadingKind = Literal["choice", "command", "ask", "empty", "greeting", "thanks", "none"]


@dataclass(frozen=True)
class Reading:
    kind: ReadingKind
    value: str = ""  # the choice id or command name
    candidates: tuple[str, ...] = ()  # for "ask": the choices to pick from
    how: str = ""  # why (for events and tests): label, contained, command, ordinal, affirm, deny, words


NONE: Final = Reading("none")


def _only(words: Phrase, phrases: frozenset[Phrase], vocab: Vocabulary) -> bool:
    """Whether the message is made of these phrases (and filler words) only, with at least one phrase."""
    rest, found = _without(words, phrases)
    return found and all(vocab.filler(w) for w in rest)


def _mostly_command(words: Phrase, vocab: Vocabulary) -> Phrase:
    """The message if at least half its meaningful words belong to command phrases, else nothing."""
    core = vocab.core(words)
    rest, _ = _without(core, vocab.all_commands or frozenset(p for group in vocab.commands.values() for p in group))
    return words if len(rest) * 2 <= len(core) else ()


def command_of(
    words: Phrase, vocab: Vocabulary, weak: list[bool] | None = None, marked: bool | None = None
) -> str | None:
    """The command a message asks for, if it contains one of the command phrases.

    ``weak`` (if given) is told whether the answer rests only on words of politeness or mention
    ("giúp", "cán bộ"): "trả tiền cho cán bộ rồi" names an official without asking for one.
    """
    index = vocab.index or vocab.indexed().index
    found: dict[str, list[Phrase]] = {}
    if marked is None:  # typed with a Vietnamese keyboard (the caller knows best: synonyms bring their marks)
        marked = any(w[1] is not None and not w[1].isascii() for w in words)
    spans = _answer_spans(words, vocab)
    answered = {k for start, end in spans for k in range(start, end)}
    told_done = _closes_with_roi(words, vocab) and not vocab.negative(_tokens(words))  # "ghi lại mã rồi"
    for i, word in enumerate(words):
        for command, phrase, original in index["many"].get(word[0], ()):
            if _at(words, i, phrase):
                spelled = all(
                    w == p and w[1] is not None and not w[1].isascii()
                    for w, p in zip(words[i : i + len(phrase)], phrase, strict=True)
                )
                if not spelled and answered & set(range(i, i + len(phrase))):
                    continue  # "dc r, qua bước kế": "rồi" and "qua bước" answer; it is not "rối quá"
                if any(start <= i and i + len(phrase) <= end and end - start > len(phrase) for start, end in spans):
                    continue  # "xem lại hết rồi": a longer "done" phrase holds "xem lại"; it is not "lặp lại"
                if marked and _unmarked_for_marked(words[i : i + len(phrase)], phrase):
                    continue  # "đòi ảnh chân dung luôn rồi": typed with marks, so "dung" is "dung", not "dừng"
                if command == "repeat" and _done_already(words, i, len(phrase), told_done):
                    continue  # "xem lại rồi", "đã ghi lại": done, not asked again
                found.setdefault(command, []).append(original)
    # "không làm cái này nữa": a phrase's words with words of politeness in between
    core = vocab.core(words)
    at = [i for i, w in enumerate(words) if not vocab.filler(w)] if len(core) < len(words) else range(len(words))
    said = set(_tokens(words))
    for i, word in enumerate(core):
        for command, phrase, original in index["core"].get(word[0], ()):
            # the phrase's politeness words must be said too: "không cần nữa" is not "không cần thẻ giấy"
            if _at(core, i, phrase) and set(_tokens(original)) <= said:
                first, last = at[i], at[i + len(phrase) - 1] + 1
                if any(start <= first and last <= end and end - start > last - first for start, end in spans):
                    continue  # inside a longer answer, as above
                if command == "repeat" and _done_already(words, first, last - first, told_done):
                    continue
                found.setdefault(command, []).append(original)
    # One-word commands ("hủy", "cứu", "bí") only lead or stand almost alone: inside a longer sentence
    # the same word is something else ("tra cứu hồ sơ", "bằng bị mất"). A loan word ("menu", "hotline")
    # or "giúp" may stand anywhere.
    head = core[:1] if len(core) > 1 else core  # "chỉ mình tui thôi": a closing "thôi" is "only"
    for k, word in enumerate(words):
        if k in answered:
            continue  # "dung roi": the words of "đúng rồi", not "dừng"
        for command, phrase, original in index["one"].get(word[0], ()):
            wanted = phrase[0]
            anywhere = (wanted[1] is not None and wanted[1].isascii()) or wanted[0] in WEAK_HELP
            if not anywhere and word not in head:
                continue
            if word[0] == "thoi" and k > 0 and words[k - 1][0] in _SELF:
                continue  # "mình tui thôi", "con thôi": "only me", not "stop"
            exact = word == wanted and word[1] is not None and not word[1].isascii()
            if exact if phrase in vocab.ambiguous else _same(word, wanted):
                found.setdefault(command, []).append(original)
    weak_help = complaint = False
    fallback: str | None = None

    # A command said in a phrase goes before one said by a single word: "vậy thôi, cho tui coi mấy thủ tục
    # khác" asks for the menu ("thôi" only closes what came before). A complaint ("khó quá") is no such
    # phrase: "thôi dẹp đi, khó quá" stops.
    def said_in_full(command: str, p: Phrase) -> bool:  # a phrase, or a loan word such as "menu"
        if command == "help" and set(_tokens(p)) <= _COMPLAINT:
            return False
        return len(p) > 1 or (p[0][1] is not None and p[0][1].isascii())

    if any(said_in_full(c, p) for c, ps in found.items() for p in ps):
        single = [c for c, ps in found.items() if not any(said_in_full(c, p) for p in ps)]
        found = {c: ps for c, ps in found.items() if c not in single}
    asked_what = [all(_tokens(p) in _WHAT_SAID for p in found["help"])] if "help" in found else []
    for command in PRIORITY:
        phrases = found.get(command)
        if not phrases:
            continue
        if command == "help" and all(set(_tokens(p)) <= WEAK_HELP for p in phrases):
            weak_help = True  # "giúp" may be politeness: only if nothing else is asked
            continue
        if command == "help" and all(set(_tokens(p)) <= _COMPLAINT for p in phrases):
            complaint = True  # "rối quá": help, unless another command is asked too
            continue
        if all(_tokens(p) in vocab.yielding.get(command, ()) for p in phrases):
            # "nhắn lại cái hồi nãy", "hồi nãy nói gì": "hồi nãy" tells which message; the verb asks again
            # ("hỏi gì z, hỏi lại coi": asking what was said, then to be asked again)
            again = command == "repeat" and (fallback in (None, "back") or asked_what == [True])
            fallback = command if again else fallback or command
            continue
        return command
    if weak is not None:
        weak.append(weak_help and not complaint and fallback is None)
    if fallback is not None:
        return fallback
    return "help" if weak_help or complaint else None


_DONE_BEFORE: Final = frozenset({"da", "vua", "moi"})  # "đã xem lại", "vừa gửi lại"
_DONE_AFTER: Final = frozenset({"roi", "xong"})  # "coi lại rồi", "ghi lại xong"


def _done_already(words: Phrase, i: int, n: int, told_done: bool) -> bool:
    """Whether the "… lại" phrase at ``i`` tells of something done ("đã xem lại", "ghi lại rồi"; ``told_done``:
    the message closes with "rồi" and says no "không")."""
    if words[i + n - 1][0] != "lai":
        return False
    before = words[i - 1] if i > 0 else ("", None)
    after = words[i + n][0] if i + n < len(words) else ""
    # "đã" typed so (a plain "da" is as often "dạ": "da noi lai di")
    done_before = before[0] in _DONE_BEFORE and (before[0] != "da" or (before[1] or "").startswith("đ"))
    return told_done or done_before or after in _DONE_AFTER


def _strong_command(words: Phrase, core: Phrase, command: str, vocab: Vocabulary) -> bool:
    """Whether a command is asked in a phrase of two words or more ("không làm nữa", "quay lại"), not by one
    word that also opens other sentences ("thôi", "bỏ", "giúp") nor by a phrase that also says other things
    ("gửi lại", "hướng dẫn": see ``_YIELDING``)."""
    yielding = vocab.yielding.get(command, frozenset()) - _ASKING
    if command == "help":
        # a complaint and a plea together ("tui kẹt rồi, giúp với") ask for help, though each alone may not
        held = [set(_tokens(p)) for p in vocab.commands["help"] if _contains(words, p)]
        if any(h <= WEAK_HELP for h in held) and any(h <= _COMPLAINT and not h <= WEAK_HELP for h in held):
            return True
    return any(
        (len(p) > 1 or (p[0][1] is not None and p[0][1].isascii() and len(p[0][0]) > 3))  # "menu", "hotline"
        and _tokens(p) not in yielding
        and not (command == "help" and set(_tokens(p)) <= _COMPLAINT)
        and (_contains(words, p) or (len(vocab.core(p)) > 1 and _contains(core, vocab.core(p))))
        for p in vocab.commands.get(command, ())
    )


def _yes_typed_plainly(said: Phrase, command: str, labels: Sequence[Phrase], vocab: Vocabulary) -> bool:
    """Whether a command rests only on a word typed without marks that is also a yes word of one of the step's
    labels, spelled as that yes word ("dung" is "dừng" or "đúng"; beside "Đúng hết" it is "đúng", beside
    "Dùng ứng dụng VNeID" it is still "dừng")."""
    label_words = {w[0] for label in labels for w in label if w in vocab.yes_spelled}
    if not label_words:
        return False
    plain = {w[0] for w in said if w[1] is not None and w[1].isascii()}
    if not plain & label_words:
        return False
    read = vocab.canonical(said)
    phrases = [p for p in vocab.commands.get(command, ()) if _contains(said, p) or _contains(read, p)]
    return bool(phrases) and all(len(p) == 1 and p[0][0] in plain & label_words for p in phrases)


def _label_holding(words: Phrase, command: str, labels: Sequence[tuple[str, Tokens]], vocab: Vocabulary) -> str | None:
    """The one choice whose label holds two words or more of a command phrase the message says, and every other
    word of it but politeness: "chỉ tui với" at "Có, chỉ tôi cách xem" answers the question; it does not call
    for an official."""

    def plain(tokens: Iterable[str]) -> set[str]:  # "tui" and "tôi" alike
        return {"toi" if t in _SELF else t for t in tokens}

    phrases = [plain(_tokens(p)) for p in vocab.commands.get(command, ()) if len(p) > 1 and _contains(words, p)]
    if not phrases:
        return None
    polite = vocab.filler_spellings.keys() - _SPELLED_FILLERS  # "với" need not be in the label

    def holds(label: set[str], phrase: set[str]) -> bool:
        return len(phrase & label) > 1 and phrase - label <= polite

    holders = {cid for cid, label in labels if any(holds(plain(label), p) for p in phrases)}
    return holders.pop() if len(holders) == 1 else None


def _asked_in_full(words: Phrase, core: Phrase, label: Tokens, vocab: Vocabulary) -> bool:
    """Whether the message asks a command in a phrase at least as long as a label merely found among its
    words: "nói chuyện với người đi, hổng nói với máy" asks for a person, whatever "Có chỗ sai" it holds."""
    command = command_of(words, vocab)
    if command is None or not _strong_command(words, core, command, vocab):
        return False
    return _command_length(words, command, vocab) >= min(len(label), 3)


def _unmarked_for_marked(said: Phrase, phrase: Phrase) -> bool:
    """Whether a word typed without marks stands for a phrase word that has them (in a message typed with marks,
    that is a different word: "dung" beside "chân" is not "dừng")."""
    return any(
        w[1] is not None and w[1].isascii() and p[1] is not None and not p[1].isascii()
        for w, p in zip(said, phrase, strict=True)
    )


def _no_longer(tokens: Tokens, names: Sequence[frozenset[str]], vocab: Vocabulary) -> bool:
    """ "không <words of the procedure's name> nữa": the citizen no longer wants this procedure."""
    if "nua" not in tokens:
        return False
    end = len(tokens) - 1 - tokens[::-1].index("nua")
    for start in range(end - 1, max(end - 8, -1), -1):
        if tokens[start] in (NEGATIVE, "chua", "khoi"):
            between = set(tokens[start + 1 : end]) - {"muon", "can"}
            said = between - NAME_VERBS - {"lam"}
            if between and not said and tokens[start] != "chua":
                return True  # "thôi không nộp nữa", "không xin nữa": the procedure's own verb, no longer
            return bool(said) and any(said <= name for name in names)
    return False


def _answer_spans(words: Phrase, vocab: Vocabulary) -> list[tuple[int, int]]:
    """Where a yes, done or no phrase of two words or more stands (a yes said after "không" is none): (start, end)."""
    spans: list[tuple[int, int]] = []
    index = vocab.index or vocab.indexed().index
    for i, word in enumerate(words):
        for kind, phrase, _ in index["answer"].get(word[0], ()):
            if _at(words, i, phrase):
                if kind == "yes" and vocab.negative(_tokens(words[max(i - 2, 0) : i])):
                    continue  # "không muốn làm tiếp": not "làm tiếp"
                spans.append((i, i + len(phrase)))
    return spans


# Phrase sets by first token, built once per set (the vocabulary's sets live as long as the content).
_INDEXES: dict[int, tuple[frozenset[Phrase], Mapping[str, tuple[Phrase, ...]]]] = {}


def _by_first(phrases: frozenset[Phrase]) -> Mapping[str, tuple[Phrase, ...]]:
    known = _INDEXES.get(id(phrases))
    if known is not None and known[0] is phrases:
        return known[1]
    index: dict[str, list[Phrase]] = {}
    for p in phrases:
        index.setdefault(p[0][0], []).append(p)
    built = {t: tuple(ps) for t, ps in index.items()}
    if len(_INDEXES) > 256:
        _INDEXES.clear()
    _INDEXES[id(phrases)] = (phrases, built)
    return built


def _without(words: Phrase, phrases: frozenset[Phrase]) -> tuple[Phrase, bool]:
    """The message with these phrases taken out (longest first), and whether any was."""
    out: list[Word] = []
    found = False
    index = _by_first(phrases)
    i = 0
    while i < len(words):
        fits = [len(p) for p in index.get(words[i][0], ()) if _at(words, i, p)]
        if fits:
            found = True
            i += max(fits)
        else:
            out.append(words[i])
            i += 1
    return tuple(out), found


def ordinal_of(
    message: Phrase,
    vocab: Vocabulary,
    count: int,
    labels: Sequence[tuple[str, Tokens]] = (),
    last: int = 0,
) -> int | None:
    """1-based position named by "2", "số 2", "cái thứ hai", "chọn số 3", "cái đầu tiên", "cái cuối".

    "Cái cuối" is the last answer (``last``, when the step asks a question), not the "menu" button after it.
    A position said inside a longer message counts when it closes it: "dạ cho em hỏi, em chọn cái số 2 nha".
    """
    if count == 0:
        return None
    if len(message) > 2 and message[-2][0] in ("duoc", "dc") and message[-1][0] in _ASKING_TAGS:
        message = message[:-2]  # "cho hỏi chọn số 2 được hông": the position, asked politely
    position = _position(message, vocab, count, labels, last or count)
    if position is not None or len(message) < 3:
        return position
    for i in range(len(message) - 2, 0, -1):
        # only the plain position words: "mục", "ý" typed without diacritics are "mức", "y" as often
        if message[i][0] in _CLOSING_POSITION and message[i][0] not in _SPEAKERS:
            tail = message[i:]
            ends = set(itertools.pairwise(_tokens(tail))) & _PLAIN_ENDS
            if not ends and not any(w[0].isdigit() or w[0] in _NUMBER_TOKENS or w[0] in ORDINAL_NUMBERS for w in tail):
                return None  # "chưa thấy biển số đâu": "đâu" is not "đầu" (first); a number or "đầu tiên" counts
            if sum(1 for w in message if w[0].isdigit() or w[0] in ORDINAL_NUMBERS) == sum(
                1 for w in tail if w[0].isdigit() or w[0] in ORDINAL_NUMBERS
            ):
                return _position(tail, vocab, count, labels, last or count)
            return None
    return None


def _position(
    message: Phrase, vocab: Vocabulary, count: int, labels: Sequence[tuple[str, Tokens]], last: int
) -> int | None:
    rest, prefixed = _without(message, vocab.ordinal_words)
    # Politeness and a thumbs-up around a number do not change it: "1 nha", "3 ạ", "1 👍".
    named = [w for w in rest if w[0] in _ENDS or not (vocab.filler(w) or vocab.yes_word(w))]
    if prefixed and len(named) > 1 and named[0][0] in _SPEAKERS:
        named = named[1:]  # "con chọn cái thứ hai": the speaker calling themself "con", "cháu"
    if len(named) == 1 and named[0][0] in ORDINAL_NUMBERS:
        number, spelled = named[0]
        typed_digit = spelled is None or number.isdigit()
        if not typed_digit and not prefixed and any(number in label for _, label in labels):
            return None  # "bà" alone next to "Ông bà, người thân" is the word, not the number three
        if number in ("tu", "nhi", "nhut") and not any(w[0] == "thu" for w in message):
            return None  # "tư", "nhì" are four and two only after "thứ"; alone "tư" is "tự"
        at = message.index(named[0])
        if not typed_digit and at + 1 < len(message) and message[at + 1][0] in _OWNERS | {"no"}:
            return None  # "xin cho ba tui", "ba nó": a father, not the number three
        n = ORDINAL_NUMBERS[number]
        return n if 1 <= n <= count else None
    joined = tuple(w[0] for w in named)
    if joined in _FIRST and (prefixed or joined in _PLAIN_ENDS):
        return 1
    if joined in _LAST and (prefixed or joined in _PLAIN_ENDS):
        return last
    return None


# Numbers written as words ("ba tuổi", "mười lăm ngày", "hai mươi mốt ngày") and units of age and time.
_DIGIT_WORDS: Final[Mapping[str, int]] = {
    "mot": 1, "mo": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "lam": 5, "nham": 5,
    "sau": 6, "bay": 7, "tam": 8, "chin": 9,
}  # fmt: skip
_UNITS: Final[Mapping[str, tuple[str, int]]] = {
    "tuoi": ("age", 1),
    "ngay": ("days", 1),
    "bua": ("days", 1),
    "hom": ("days", 1),
    "tuan": ("days", 7),
    "thang": ("days", 30),
    "nam": ("days", 365),
}
# After a unit, the last one: "tuần rồi", "tháng trước", "năm ngoái", "hôm qua" (one); "hôm kia" (two).
_VAGUE: Final = frozenset({"may", "vai", "nhieu", "bao", "ca", "tre"})  # "mấy", "vài", "bao nhiêu", "trễ"
_LAST_ONE: Final[Mapping[str, int]] = {"roi": 1, "truoc": 1, "ngoai": 1, "qua": 1, "kia": 2}
# Words before a number that bound it: "chưa đủ 6 tuổi" (< 6), "chưa quá 15 ngày" (≤ 15), "trên 60 tuổi".
_BELOW: Final = frozenset({("chua", "du"), ("duoi",), ("chua", "toi"), ("chua", "den"), ("it", "hon"), ("nho", "hon")})
_AT_MOST: Final = frozenset({("chua", "qua"), ("khong", "qua"), ("trong",), ("vong",)})
_ABOVE: Final = frozenset({("tren",), ("qua",), ("hon",), ("lon", "hon")})
_AT_LEAST: Final = frozenset({("tu",), ("du",), ("tu", "du")})
Quantity = tuple[str, float, float]  # (dimension, lowest, highest) in days or years of age


def _number(tokens: Tokens, i: int) -> tuple[int, int] | None:
    """The number starting at ``tokens[i]`` ("15", "ba", "mười lăm", "hai mươi mốt") and how many tokens it takes."""
    t = tokens[i]
    if t.isdigit() and len(t) <= 4:
        return int(t), 1
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if t == "muoi":
        unit = _DIGIT_WORDS.get(nxt)
        return (10 + unit, 2) if unit and i + 2 < len(tokens) and tokens[i + 2] in _UNITS else (10, 1)
    if t in _DIGIT_WORDS:
        if nxt == "muoi":
            after = tokens[i + 2] if i + 2 < len(tokens) else ""
            unit = _DIGIT_WORDS.get(after)
            if unit and i + 3 < len(tokens) and tokens[i + 3] in _UNITS:
                return _DIGIT_WORDS[t] * 10 + unit, 3
            return _DIGIT_WORDS[t] * 10, 2
        return _DIGIT_WORDS[t], 1
    return None


def _quantities(tokens: Tokens) -> list[tuple[int, int, str, float]]:
    """Every "number unit" in the words: (start, end, dimension, amount in days or years)."""
    out: list[tuple[int, int, str, float]] = []
    i = 0
    while i < len(tokens) - 1:
        grade = _number(tokens, i + 1) if tokens[i] == "lop" else None
        if grade is not None and 1 <= grade[0] <= 12:
            # "học lớp ba": a pupil of grade N is about N + 5 years old (school starts at 6)
            out.append((i, i + 1 + grade[1], "age", float(grade[0] + 5)))
            i += 1 + grade[1]
            continue
        if tokens[i] == "nua" and tokens[i + 1] in _UNITS:
            # "gần nửa năm": half a year ("nữa", folded alike, comes after its unit: "2 tháng nữa")
            dimension, scale = _UNITS[tokens[i + 1]]
            out.append((i, i + 2, dimension, 0.5 * scale))
            i += 2
            continue
        vague = i > 0 and tokens[i - 1] in _VAGUE  # "mấy ngày rồi", "bao nhiêu ngày rồi": no amount
        overdue = tokens[i + 1] == "qua" and i + 2 < len(tokens) and tokens[i + 2] == "han"  # "ngày quá hạn"
        if tokens[i] in _UNITS and tokens[i + 1] in _LAST_ONE and tokens[i] != "tuoi" and not vague and not overdue:
            # "mất tuần rồi", "hôm qua", "năm ngoái": one unit ago ("hôm kia": two days)
            dimension, scale = _UNITS[tokens[i]]
            out.append((i, i + 2, dimension, float(scale * _LAST_ONE[tokens[i + 1]])))
            i += 2
            continue
        found = _number(tokens, i)
        if found is not None and i + found[1] < len(tokens) and tokens[i + found[1]] in _UNITS:
            value, length = found
            dimension, scale = _UNITS[tokens[i + length]]
            out.append((i, i + length + 1, dimension, float(value * scale)))
            i += length + 1
        else:
            i += 1
    return out


def _bounded(tokens: Tokens) -> Quantity | None:
    """The range a label states ("Chưa đủ 6 tuổi", "Từ 6 tuổi trở lên", "Đã quá 15 ngày"), if exactly one."""
    found = _quantities(tokens)
    if len(found) != 1:
        return None
    start, end, dimension, amount = found[0]
    before = {tokens[max(start - 2, 0) : start], tokens[start - 1 : start]}
    after = tokens[end : end + 2]
    lowest = _range_start(tokens, start, dimension)
    if before & _BELOW:
        return dimension, lowest, amount - 0.5
    if before & _AT_MOST:
        return dimension, lowest, amount
    if before & _ABOVE:
        return dimension, amount + 0.5, math.inf
    if before & _AT_LEAST or after == ("tro", "len"):
        return dimension, amount, math.inf
    if after == ("tro", "xuong"):
        return dimension, -math.inf, amount
    return None


def _range_start(tokens: Tokens, end: int, dimension: str) -> float:
    """The lower end of "từ 6 đến dưới 14 tuổi" (6), or -inf when the range has none."""
    for k in range(max(end - 5, 0), end):
        if tokens[k] == "tu" and k + 1 < end and "den" in tokens[k + 1 : end]:
            found = _number(tokens, k + 1)
            if found is not None:
                scale = _UNITS[tokens[k + 1 + found[1]]][1] if tokens[k + 1 + found[1]] in _UNITS else 1
                return float(found[0] * (scale if dimension == "days" else 1))
    return -math.inf


def quantity_choice(said: Tokens, labels: Sequence[tuple[str, Tokens]]) -> str | None:
    """The one choice whose range holds the age or time the message states: "con tôi mới 3 tuổi" → "Chưa đủ 6 tuổi".

    An amount the citizen bounded themselves is a range too: "mất hơn 2 tháng rồi" lies wholly inside
    "Đã quá 15 ngày"; "chưa đủ 14 tuổi" lies inside no one choice and is left to the labels' words.
    Two amounts must agree: "mất hôm kia, mới 2 ngày" is two days twice.
    """
    found = _quantities(said)
    picked: set[str] = set()
    for start, _, dimension, amount in found:
        before = {said[max(start - 2, 0) : start], said[start - 1 : start]}
        low, high = amount, amount
        if before & (_BELOW | _AT_MOST | _ABOVE | _AT_LEAST):
            stated = _bounded(said) if len(found) == 1 else None
            if stated is None:
                return None
            _, low, high = stated
        fits = []
        for cid, label in labels:
            bound = _bounded(label)
            if bound is not None and bound[0] == dimension and bound[1] <= low and high <= bound[2]:
                fits.append(cid)
        if len(fits) != 1:
            return None
        picked.add(fits[0])
    return picked.pop() if len(picked) == 1 else None


def _token_hits(word: str, label: Tokens) -> float:
    """How well one message word is found in a label: 1 exactly, 0.8 with a typo, else 0."""
    if word in label:
        return 1.0
    if len(word) >= 4 and word not in _NEGATIONS:
        # a negation is weighed by polarity, not as a typo ("hong" is no "khong")
        best = max((fuzz.ratio(word, t) for t in label if len(t) >= 3 and t not in _NEGATIONS), default=0.0)
        if best >= 80:
            return 0.8
    return 0.0


def label_choice(
    core: Tokens, labels: Sequence[tuple[str, Tokens]], vocab: Vocabulary, by_polarity: bool = True
) -> tuple[str | None, tuple[str, ...]]:
    """The choice whose label the message's words point to: (choice id, or None; close candidates).

    ``by_polarity``: a "no" may pick the one "no" answer on that alone (not when the message is mostly
    something else, such as a command).
    """
    if not core or not labels:
        return None, ()
    n = len(labels)
    df: dict[str, int] = {}
    for _, label in labels:
        for t in set(label):
            df[t] = df.get(t, 0) + 1
    polarities = {vocab.negative(label) for _, label in labels}
    negative = vocab.negative(core)
    unique = set(core)
    said_pairs = set(itertools.pairwise(core))
    pair_df: dict[tuple[str, str], int] = {}
    for _, label in labels:
        for pair in set(itertools.pairwise(label)):
            pair_df[pair] = pair_df.get(pair, 0) + 1
    scores: list[tuple[float, str]] = []
    raw: dict[str, float] = {}  # before the polarity weighs in
    evidence: dict[str, tuple[int, int]] = {}  # (words in the label's order, words) the message shares
    for cid, label in labels:
        score = 0.0
        matched = 0
        for w in unique:
            hit = _token_hits(w, label)
            if hit:
                matched += 1
                found = w if w in df else max(label, key=lambda t: fuzz.ratio(w, t))
                # words every label shares say little; words of one label say much
                score += hit * math.log(1 + n / df.get(found, n))
        # words said in the label's order weigh more: "hổng cần tải" holds "không cần" of "Đã xong hoặc không cần"
        shared_pairs = set(itertools.pairwise(label)) & said_pairs
        for pair in shared_pairs:
            score += math.log(1 + n / pair_df[pair])
        evidence[cid] = (len(shared_pairs), matched)
        if matched / len(unique) < 0.5:
            score = 0.0  # mostly other words: a question of its own, not this label
        said_numbers = {t for t in unique if t.isdigit()}
        label_numbers = {t for t in label if t.isdigit()}
        if said_numbers and label_numbers and not said_numbers & label_numbers:
            score = 0.0  # "tôi 30 tuổi" is not "Đủ 14, 25, 40 hoặc 60 tuổi"
        raw[cid] = score
        scores.append((score, cid))
    # a "không" said as part of a label's words is that label's: "hổng cần tải" at "Đã xong hoặc không cần"
    explained = [
        c for c, label in labels if any(set(p) & _NEGATIONS for p in set(itertools.pairwise(label)) & said_pairs)
    ]
    if negative and len(explained) == 1:
        negative = vocab.negative(dict(labels)[explained[0]])
    same_polarity = [c for c, label in labels if vocab.negative(label) == negative]
    # "không có giấy chứng sinh" is not "Có giấy chứng sinh" — when an answer of the message's polarity shares
    # its words; "mất sổ đỏ rồi" is "Sổ bị mất, hỏng, ghi sai" although that label reads as a "no"
    weigh_polarity = len(polarities) > 1 and any(raw[c] > 0 for c in same_polarity)
    if weigh_polarity:
        scores = [(sc * (0.3 if c not in same_polarity else 1.0), c) for sc, c in scores]
    scores.sort(reverse=True)
    best, cid = scores[0]
    runner_up = scores[1][0] if len(scores) > 1 else 0.0
    floor = 0.35
    if best < floor:
        # "thử mấy lần vẫn hổng vô được" at "Đã đăng nhập được / Vẫn chưa được": a "no" that shares a word
        # with the one "no" answer is that answer, however many other words it says.
        ahead = max(evidence, key=lambda c: evidence[c])
        if by_polarity and ahead in explained and all(evidence[ahead] > e for c, e in evidence.items() if c != ahead):
            return ahead, ()  # "hổng cần tải gì hết" says the "không cần" of "Đã xong hoặc không cần" in order
        if by_polarity and negative and len(polarities) > 1 and len(same_polarity) == 1:
            only = dict(labels)[same_polarity[0]]
            if unique & (set(only) - {NEGATIVE, "chua"}):
                return same_polarity[0], ()
        return None, ()
    if by_polarity and weigh_polarity and cid not in same_polarity and len(same_polarity) == 1:
        return same_polarity[0], ()  # "không có giấy chứng sinh": the one "không" answer
    if best - runner_up < 0.25 * best:
        return None, tuple(c for s, c in scores if s >= floor and s >= best * 0.75)
    return cid, ()


def _like(word: Word, wanted: Word) -> bool:
    """A message word is a phrase word: the same (see ``_same``), or a typo of a long one ("thuongg" for "thường")."""
    if _same(word, wanted):
        return True
    t, w = word[0], wanted[0]
    # Only long syllables: among five-letter ones a typo is too often another word ("khoan" is not "không").
    return len(w) >= 6 and len(t) >= 5 and t[0] == w[0] and fuzz.ratio(t, w) >= 80


_NEGATIONS: Final = frozenset({NEGATIVE, "chua"})
# Words of asking for a person (not for help with the step): "gặp nhân viên", "gọi tổng đài", "cán bộ".
_HANDOFF: Final = frozenset({"gap", "goi", "tong", "dai", "hotline", "vien", "bo", "truc", "thiet", "that"})


def _holds(words: Phrase, phrase: Phrase) -> int:
    """Where the phrase's words stand in the message, in order and at most two words apart ("ở nhờ nhà bà con"
    holds "ở nhờ", "chưa lấy ai hết" holds "chưa lấy"): the position of its first word, or -1.

    A "không"/"chưa" between the words of a phrase that has none turns it around: "hình không hiện đủ"
    does not hold "hình hiện đủ".
    """
    positive = not any(w[0] in _NEGATIONS for w in phrase)
    for i, word in enumerate(words):
        if not _like(word, phrase[0]):
            continue
        j = i
        for wanted in phrase[1:]:
            k = next((k for k in range(j + 1, min(j + 4, len(words))) if _like(words[k], wanted)), -1)
            if k < 0 or (positive and any(w[0] in _NEGATIONS for w in words[j + 1 : k])):
                j = -1
                break
            j = k
        if j >= 0:
            return i
    return -1


def says_choice(
    message: tuple[Phrase, Phrase],
    says: Sequence[tuple[str, Sequence[tuple[Phrase, Phrase]]]],
    vocab: Vocabulary,
) -> tuple[str | None, tuple[str, ...], Phrase]:
    """The choice one of whose ``says:`` phrases the message holds (the longest phrase wins): (id or None; a tie;
    the phrase found).

    Message and phrases come as read (synonyms applied) and as typed: "chua lay vo" typed plainly reads
    "vo" as the Southern "vô" (vào), but as typed it still holds "chưa lấy vợ". A phrase said right after a
    "không"/"chưa" that is not its own is its opposite: "chưa có tài khoản" does not hold "có tài khoản".
    """
    best: dict[str, tuple[int, Phrase]] = {}
    present = [{w[0] for w in words} for words in message]  # a phrase starts with a word the message has
    for cid, phrases in says:
        for forms in phrases:
            if len(forms[0]) <= best.get(cid, (0, ()))[0]:
                continue
            for words, phrase, have in zip(message, forms, present, strict=True):
                first = phrase[0][0]
                if first not in have and len(first) < 6:
                    continue  # (a long first word may be typed with a typo: see ``_like``)
                at = _holds(words, phrase)
                if at < 0:
                    continue
                lead = [w for w in words[:at] if w[0] != "cai"]  # "chưa có cái chữ ký điện tử": "cái" aside
                before = vocab.canonical(tuple(lead[-2:]))  # "hong tu lam duoc": "hổng" is a no
                if not vocab.negative(_tokens(phrase)) and vocab.negative(_tokens(before)):
                    continue
                best[cid] = (len(forms[0]), forms[0])
                break
    if not best:
        return None, (), ()
    top = max(n for n, _ in best.values())
    winners = tuple(cid for cid, (n, _) in best.items() if n == top)
    if len(winners) == 1:
        return winners[0], (), best[winners[0]][1]
    return None, winners, ()


def _bags(
    options: Options, cores: Sequence[tuple[str, Tokens]], vocab: Vocabulary, normalize: Normalizer
) -> list[tuple[str, list[Tokens]]]:
    """Each flow choice's label and ways of saying, as the words ``near_choice`` weighs."""
    return [
        (cid, [label, *(_tokens(vocab.core(f[0])) for p in ps if (f := vocab.says_forms(p, normalize)))])
        for (cid, label), (_, ps) in zip(cores, _says_of(options, cores), strict=True)
    ]


def _command_length(words: Phrase, command: str, vocab: Vocabulary) -> int:
    """The longest phrase of a command the message holds (0 when it holds none as such)."""
    return max((len(p) for p in vocab.commands.get(command, ()) if _contains(words, p)), default=0)


def _says_of(options: Options, cores: Sequence[tuple[str, Tokens]]) -> list[tuple[str, tuple[str, ...]]]:
    """Each flow choice's ``says:`` phrases, in the order of ``cores`` (none for a choice without them)."""
    says = dict(options.says)
    return [(cid, says.get(cid, ())) for cid, _ in cores]


def near_choice(
    message: Tokens, said: set[str], bags: Sequence[tuple[str, Sequence[Tokens]]], vocab: Vocabulary
) -> str | None:
    """The choice one of whose phrases (label or ``says:``) the message mostly holds, in any order.

    A phrase scores the weight of its words found times the share of its weight found (two thirds at
    least); words that many choices use weigh less. The best choice must stand clear of the next one.
    A phrase without a "không" counts less in a message that says one, and not at all when the "không"
    stands right before one of its words ("không bỏ nhau" is not "bỏ nhau").
    """
    negative = vocab.negative(message)
    negated = {message[j] for j in range(1, len(message)) if message[j - 1] in (NEGATIVE, "chua")}
    n = len(bags)
    df: dict[str, int] = {}
    for _, phrases in bags:
        for t in {t for p in phrases for t in p}:
            df[t] = df.get(t, 0) + 1
    scores: list[tuple[float, str]] = []
    for cid, phrases in bags:
        best = 0.0
        for phrase in phrases:
            words = tuple(dict.fromkeys(phrase))
            if not words:
                continue
            if negated & set(words) and not vocab.negative(words):
                continue
            weights = [math.log(1 + n / df[t]) for t in words]
            found = sum(w for t, w in zip(words, weights, strict=True) if t in said)
            share = found / sum(weights)
            if share < 0.66 or (len(words) > 1 and sum(t in said for t in words) < 2):
                continue
            score = found * share
            if negative and not vocab.negative(words):
                score *= 0.6
            best = max(best, score)
        scores.append((best, cid))
    scores.sort(reverse=True)
    top, cid = scores[0]
    second = scores[1][0] if len(scores) > 1 else 0.0
    return cid if top >= 1.0 and top >= 1.3 * second else None


def _contained(core: Tokens, tokens: Tokens, labels: Sequence[tuple[str, Tokens]], vocab: Vocabulary) -> str | None:
    """A label whose words the message holds entirely, or that holds all the message's words (one only)."""
    if len(core) >= 2:
        holders = [cid for cid, label in labels if set(core) <= set(label)]
        if len(holders) == 1:
            return holders[0]
    negative = vocab.negative(tokens)
    held = [
        (cid, label)
        for cid, label in labels
        if len(label) >= 2 and set(label) <= set(tokens) and vocab.negative(label) == negative
    ]
    if len(held) != 1:
        return None
    cid, label = held[0]
    # "thẻ bị gãy mất rồi" holds "Mất thẻ" but also says "gãy" of another label: let the scores decide.
    others = {t for other, words in labels if other != cid for t in words}
    extra = set(core) - set(label)
    if extra & others or len(extra) > 3:
        return None  # ...and a long sentence around a short label is about something else (a command, a question)
    return cid


def _yes_no(
    labels: Sequence[tuple[str, Tokens]], vocab: Vocabulary, spelled: Mapping[str, Phrase] | None = None
) -> tuple[list[str], list[str]]:
    """The yes answers (a yes word, no negation) and the no answers; ``spelled``: the labels as written, whose
    yes words (spelled as such: "dụng" is no "đúng") a synonym may have taken ("Đã nhận được mã" reads
    "đã nhận mã")."""
    written = spelled or {}
    yes = [
        cid
        for cid, label in labels
        if not vocab.negative(label)
        and (
            any(
                t in vocab.yes_words and _yes_here(label, i) and _spelled_as_yes(t, written.get(cid, ()), vocab)
                for i, t in enumerate(label)
            )
            or any(
                w in vocab.yes_spelled and _yes_here(_tokens(written[cid]), i)
                for i, w in enumerate(written.get(cid, ()))
            )
        )
    ]
    no = [cid for cid, label in labels if vocab.negative(label)]
    return yes, no


# Short questions about the procedure being done: its fee, how long it takes, where to go (folded, as typed).
_FACT_ASKS: Final[Mapping[str, frozenset[Tokens]]] = {
    "fee": frozenset(
        {("phi",), ("bao", "nhieu", "tien"), ("may", "tien"), ("ton", "bao", "nhieu"), ("het", "bao", "nhieu")}
        | {("mat", "bao", "nhieu"), ("tra", "bao", "nhieu"), ("dong", "bao", "nhieu")}
    ),
    "time": frozenset(
        {("bao", "lau"), ("may", "ngay"), ("bao", "nhieu", "ngay"), ("khi", "nao", "co"), ("bao", "gio", "co")}
        | {("lau", "khong"), ("lau", "hong"), ("lau", "ko"), ("may", "bua")}
    ),
    "place": frozenset({("o", "dau"), ("cho", "nao"), ("noi", "nao"), ("nop", "dau"), ("lam", "dau"), ("di", "dau")}),
}
# Words such a question may hold besides: "mất bao lâu thì lấy được", "làm ở đâu vậy", "lệ phí hết bao nhiêu".
_FACT_AROUND: Final = frozenset(
    {"mat", "thi", "lay", "nhan", "co", "duoc", "dc", "ket", "qua", "xong", "le", "tien", "vay", "the", "nay", "ha"}
    | {"nop", "lam", "di", "toi", "minh", "tui", "em", "a", "nhi", "nha", "nhe", "khong", "ko", "hong", "ak", "ah"}
    | {"cho", "hoi", "xin", "ban", "oi", "thu", "tuc", "ho", "so", "can", "phai", "ca", "tat", "tong", "cong"}
    | {"bao", "nhieu", "gio", "ngay", "lau"}
)


def fact_asked(tokens: Tokens, own: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Which facts of the procedure being done a short question asks: "phí bao nhiêu" (fee), "mất bao lâu vậy"
    (time), "làm ở đâu" (place). Only when every other word is one such questions hold or a word of the
    procedure's own name (``own``): "phí làm hộ chiếu bao nhiêu" while registering a birth asks of another."""
    if not tokens or len(tokens) > 12:
        return ()
    asked: list[str] = []
    used: set[int] = set()
    for what, phrases in _FACT_ASKS.items():
        for phrase in phrases:
            for i in range(len(tokens) - len(phrase) + 1):
                if tokens[i : i + len(phrase)] == phrase:
                    used |= set(range(i, i + len(phrase)))
                    if what not in asked:
                        asked.append(what)
    rest = {t for i, t in enumerate(tokens) if i not in used}
    return tuple(asked) if asked and rest <= _FACT_AROUND | own else ()


def asks_a_question(text: str, words: Phrase, vocab: Vocabulary) -> bool:
    """Whether a message asks something: a question mark, a way of asking ("bao lâu", "ở đâu"), or a closing
    "không", "chưa", "sao" ("làm trên điện thoại được không")."""
    if "?" in text or vocab.asks(words):
        return True
    tokens = [t for t, _ in words]
    return len(tokens) >= 3 and tokens[-1] in (_ASKING_TAGS | {"chua", "sao", "nao"})


def words_beside(words: Phrase, vocab: Vocabulary, command: str) -> int:
    """How many words that carry meaning a message holds besides the phrases of ``command`` ("có người gọi
    điện đòi tiền" tells of something; "tôi không biết làm sao" only asks for help)."""
    rest, _ = _without(vocab.core(vocab.canonical(words)), vocab.commands.get(command, frozenset()))
    return len(rest)


def only_dialogue(words: Phrase, vocab: Vocabulary) -> bool:
    """A message of dialogue words alone ("dạ", "ok", "ừ", "dạ vâng", "không"): nothing in it to look up in the
    catalogue (two letters match some name by its letters: "dạ" is no "đăng ký")."""
    core = vocab.core(words)
    singles = _by_first(vocab.everywhere)
    return bool(core) and all(any(len(p) == 1 and _same(w, p[0]) for p in singles.get(w[0], ())) for w in core)


def _yes_here(label: Tokens, i: int) -> bool:
    """Whether the yes word at ``i`` of a label says yes there: "có" only leading the label or after a leading "đã"
    ("Có, chỉ tôi", "Đã có giấy chứng sinh"; in "Từ 6 tuổi, có thẻ" it is "have"), "đóng" only after "đã" ("Đã đóng tiền"; "Đóng lần đầu" is to pay), "ý" only
    in "đồng ý" ("Góp ý" is no yes)."""
    if label[i] == "co":
        return i == 0 or (i == 1 and label[0] == "da")  # "Có, …", "Đã có giấy chứng sinh"
    if label[i] == "dong":
        return (i > 0 and label[i - 1] == "da") or (i + 1 < len(label) and label[i + 1] == "y")
    if label[i] == "y":
        return i > 0 and label[i - 1] == "dong"
    return True


def _opens_with_a_yes(label: str, vocab: Vocabulary, normalize: Normalizer) -> bool:
    """A label whose first clause is a yes said alone: "Có, chỉ tôi cách xem", "Đồng ý", "Đúng hết"; not "Có tin
    nhắn, cuộc gọi báo phạt" (there is a message) nor "Đã có kết quả"."""
    clause = _tokens(vocab.label_words(label.split(",")[0], normalize))
    return 0 < len(clause) <= 2 and clause[0] in vocab.yes_words and _yes_here(clause, 0)


def _spelled_as_yes(token: str, written: Phrase, vocab: Vocabulary) -> bool:
    """A yes word of a label is one as the label spells it: "biến động" folds to the "đồng" of "đồng ý" but says
    nothing of yes ("Đăng ký biến động đất đai…" is no yes answer). A word the label does not hold as written
    (a synonym brought it) or wrote without marks counts."""
    known = {s for t, s in vocab.yes_spelled if t == token}
    spellings = [s for t, s in written if t == token]
    return not known or not spellings or any(s is None or s.isascii() or s in known for s in spellings)


def _says(words: Phrase, phrases: frozenset[Phrase]) -> bool:
    index = _by_first(phrases)
    return any(_at(words, i, p) for i, w in enumerate(words) for p in index.get(w[0], ()))


def read(text: str, options: Options, vocab: Vocabulary, normalize: Normalizer) -> Reading:
    """What a typed message means at a step offering ``options`` (see the module docstring)."""
    if not text.strip():
        return Reading("empty")
    said = words_of(normalize, text)
    if options.forward_needs_done:  # "rồi sao nữa" at a payment: "and then what?", not "paid already"
        said = tuple(
            w
            for i, w in enumerate(said)
            if not (
                w[0] == "roi"
                and i + 1 < len(said)
                and said[i + 1][0] == "sao"
                and all(vocab.filler(v) for v in said[:i])  # ("đóng rồi sao nữa": paid, then asks)
            )
        )
    words = vocab.canonical(said)
    if not words:
        return Reading("empty")  # only emoji or punctuation
    tokens = _tokens(words)
    choices = options.choices
    flow = choices[: options.flow_choices] if options.flow_choices else choices
    labels = [(cid, _tokens(vocab.read_label(label, normalize))) for cid, label in flow]

    def spelled_labels() -> list[Phrase]:
        return [vocab.label_words(label, normalize) for _, label in flow]

    cores = [(cid, _tokens(vocab.read_label(label, normalize, core=True))) for cid, label in flow]
    core = _tokens(vocab.core(words))
    # 1. A label as it reads, or wholly inside the message, or holding the whole message.
    for (cid, label), (_, label_core) in zip(labels, cores, strict=True):
        if label and (label in (tokens, core) or label_core == core):
            return Reading("choice", cid, how="label")
    names = _names(options, vocab, normalize)  # the procedure being done: its name and short aliases
    confused = _says(words, vocab.confused)  # "là sao", "không hiểu": asks to be explained to
    # 2. A way of saying a choice that the content lists (``says:``): "độc thân" → "Chưa từng kết hôn";
    # the officials wrote it for this step, so it goes before a label merely found among the words.
    core_words = vocab.core(words)
    said_choice: str | None = None
    said_tie: tuple[str, ...] = ()
    said_phrase: Phrase = ()
    if options.says:
        says = [(cid, [f for p in ps if (f := vocab.says_forms(p, normalize))]) for cid, ps in options.says]
        said_choice, said_tie, said_phrase = says_choice((words, said), says, vocab)
    if not (said_choice or said_tie):
        name_sets = _name_sets(names) if options.words and options.own_names else []
        named = set(core) - NAME_VERBS
        # the whole name, or three words or more of it and nothing else ("hướng dẫn thanh toán lệ phí trực tuyến")
        if named in name_sets or (len(named) >= 3 and any(named <= ns for ns in name_sets)):
            # "khai báo tạm vắng" while doing it, though the checklist's "Tờ khai báo tạm vắng" holds those words;
            # but an alias that answers the question ("ho chieu bi rach" at "Hộ chiếu bị hỏng, rách") answers it
            answering = {t for _, label in cores for t in label} - name_sets[0] - NAME_VERBS
            asks_of_it = fact_asked(_tokens(said), frozenset().union(*names))  # "làm hộ chiếu ở đâu"
            if not set(core) & answering and not asks_of_it:
                return Reading("command", "repeat", how="same-procedure")
        # "chữ ký số là sao? tui hổng hiểu": a citizen who does not understand is not answering yet
        if options.words and not confused:
            held = _contained(core, tokens, cores, vocab)
            if held is not None and not _asked_in_full(words, core_words, dict(cores)[held], vocab):
                return Reading("choice", held, how="contained")
    # 3. A command anywhere in the message (at the menu, only a message that is mostly the command:
    # a long question there is for the catalogue).
    weak: list[bool] = []
    marked = any(w[1] is not None and not w[1].isascii() for w in said)
    command = command_of(words if options.words else _mostly_command(words, vocab), vocab, weak, marked)
    if command is not None and options.words and _yes_typed_plainly(said, command, spelled_labels(), vocab):
        command = None  # "da dung" beside "Đúng hết": "đúng", not "dừng"
    mentioned = command is not None and weak == [True] and options.words and not vocab.negative(tokens)
    if mentioned and _says(words, vocab.done):
        command = None  # "trả tiền cho cán bộ rồi": done, with an official mentioned
    if command is not None and options.words and not _strong_command(words, core_words, command, vocab):
        if said_choice or said_tie:
            command = None  # "thôi, để tui lên xã nộp tận tay": "thôi" leads a choice, it does not cancel
        else:
            # "hướng dẫn khắc phục đi" at "Xem cách khắc phục": the rest of the message names the choice
            rest, _ = _without(vocab.core(words), vocab.commands.get(command, frozenset()))
            if rest and words[-1][0] == rest[-1][0] == "xem":
                rest = rest[:-1]  # "hỏi lại coi": a closing "coi" softens the ask; it picks no "Xem …" answer
            only_on = options.forward and len(flow) == 1 and not options.forward_needs_done
            if only_on and not vocab.negative(tokens) and _said_yes_around(words, vocab):
                return Reading("choice", options.forward or "", how="affirm")  # "coi lại rồi, đúng hai bản, ok"
            no_longer = _no_longer(tokens, names, vocab)
            if confused:
                rest = ()  # "chữ ký số là sao? tui hổng hiểu": the words name what is not understood, no answer
            picked, _ = label_choice(_tokens(rest), cores, vocab, by_polarity=False) if rest else (None, ())
            if picked is None and not no_longer and _quantities(_tokens(said)):
                raw_labels = [(cid, _tokens(vocab.label_words(label, normalize))) for cid, label in flow]
                picked = quantity_choice(_tokens(said), raw_labels)  # "nghỉ từ đầu năm, giờ gần nửa năm rồi"
            if picked is None and rest and options.says and not no_longer:
                picked = near_choice(
                    tokens, set(tokens) | set(_tokens(said)), _bags(options, cores, vocab, normalize), vocab
                )
            if picked is not None and not no_longer:
                return Reading("choice", picked, how="words")
    if command is not None and said_phrase and command_of(said_phrase, vocab) == command:
        command = None  # the phrase written for the choice holds the command's words: "chọn lộn xã" is the choice
    if command is not None and said_choice and len(said_phrase) > _command_length(words, command, vocab):
        command = None  # "vô được rồi, đang thấy trang chủ": the longer way of saying a choice, not "trang chủ"
    if command is not None and options.words:
        holder = _label_holding(words, command, labels, vocab)
        if holder is not None:
            return Reading("choice", holder, how="label")  # "dạ có, chỉ tui với" at "Có, chỉ tôi cách xem"
    # 2: at a step with its own "ask for help" answer, a call for help is that answer
    asks_hands = not _says(words, vocab.core_help) and not _HANDOFF & set(tokens) and not confused
    if command == "help" and options.words and asks_hands:
        helper = [cid for cid, label in cores if "giup" in label and cid in dict(flow)]
        if len(helper) == 1:
            return Reading("choice", helper[0], how="help-answer")  # "kêu người bên công an làm dùm"
    # "đổi ý không sang tên nữa, hủy giúp": no longer doing it, said politely; not a call for help
    if command == "help" and weak == [True] and options.words and _no_longer(tokens, names, vocab):
        command = "cancel"
    if command == "cancel" and options.words and _not_now(tokens):
        # "hông cần gì nữa đâu, cám ơn" at "Không, cảm ơn"; "bữa khác tui coi" at "Không, để sau"
        no = [cid for cid in _yes_no(labels, vocab)[1] if _not_now(dict(labels)[cid])]
        if len(no) == 1:
            return Reading("choice", no[0], how="deny")
    if command is not None:
        return Reading("command", command, how="command")
    not_now = _not_now(tokens) and not _no_longer(tokens, names, vocab)  # "khỏi, ko đăng ký xe nữa" stops
    if options.words and not_now and (vocab.negative(tokens[:3]) or tokens[0] == "khoi"):
        no = [cid for cid in _yes_no(labels, vocab)[1] if _not_now(dict(labels)[cid])]
        if len(no) == 1:
            return Reading("choice", no[0], how="deny")  # "chưa cần đâu, bữa nào rảnh tui coi"
    # 4. A position: "2", "số 2", "cái thứ hai", "2️⃣".
    position = ordinal_of(said, vocab, len(choices), labels, last=len(flow) if len(flow) > 1 else 0)
    if position is not None:
        return Reading("choice", choices[position - 1][0], how="ordinal")
    if said_choice is not None:
        return Reading("choice", said_choice, how="says")
    if said_tie:
        return Reading("ask", candidates=said_tie, how="says")
    if not options.words:
        if options.forward and _only(words, vocab.answers, vocab):
            return Reading("choice", options.forward, how="affirm")  # "làm tiếp" at the menu: the one left
        return _politeness(words, vocab)
    # 5. The procedure they are doing, by name ("làm hộ chiếu" while doing it): stay, show the step again.
    # Names and short aliases only: a long alias is a situation ("ở nhờ nhà bà con"), not a name.
    # "thôi không gia hạn nữa", "hổng đăng ký kinh doanh nữa": no longer doing this procedure.
    if _no_longer(tokens, names, vocab):
        return Reading("command", "cancel", how="no-longer")
    # ...but words the step's own choices use answer the question ("làm cho con" when one choice is "Cho con…").
    answering = {t for _, label in cores for t in label}
    only_answers = _only(words, vocab.answers, vocab)  # "da doc ky roi" is "dạ đọc kỹ rồi", not "độc"
    if (
        len(core) >= 2
        and not only_answers
        and not fact_asked(_tokens(said), frozenset().union(*names))  # "làm hộ chiếu ở đâu" asks of it
        and any(
            set(core) <= name | NAME_VERBS and set(core) & name - answering - NAME_VERBS
            for name in (*names, set().union(*names))  # "đổi bằng lái xe": the name's and an alias's words
        )
    ):
        return Reading("command", "repeat", how="same-procedure")
    # Words of its name say nothing about which choice: "tạm trú nộp trên vneid" is "nộp trên vneid".
    if names:
        core = tuple(t for t in core if t not in names[0]) or core
    yes, no = _yes_no(labels, vocab, {cid: vocab.label_words(label, normalize) for cid, label in flow})
    if any(cid not in yes and cid not in no for cid, _ in labels):
        # Not a yes-or-no question ("Hồ sơ của bạn đang ở tình trạng nào?"): only an answer opening with a yes
        # word is a yes ("Có, chỉ tôi cách xem"), not one that holds one ("Đã có kết quả").
        written = dict(flow)
        yes = [cid for cid in yes if _opens_with_a_yes(written.get(cid, ""), vocab, normalize)]
    flow_ids = tuple(cid for cid, _ in flow)
    # At a "for whom" question, the citizen alone: "có mình tui thôi", "cho tui thôi, tui đi làm xa".
    alone = _just_me(_tokens(said), cores)
    if alone is not None and not _says(words, vocab.questions):
        return Reading("choice", alone, how="someone-else")
    # 6. Only yes, ok, done: "dạ", "ok em", "xong rồi ạ".
    if _only(words, vocab.answers, vocab):
        return _affirm(options, _says(words, vocab.done), yes, flow_ids, _finished(labels, yes))
    # 7. Only no: "không", "chưa ạ".
    if _only(words, vocab.deny, vocab):
        if options.missing:
            return Reading("choice", options.missing, how="deny")
        if len(no) == 1:
            return Reading("choice", no[0], how="deny")
        if len(flow) > 1:
            return Reading("ask", candidates=flow_ids, how="deny")
    # 8. On a checklist, "còn thiếu cái hợp đồng", "không có giấy khám": something is missing.
    if options.missing and _says(words, vocab.deny) and not _yes_no_question(tokens):
        return Reading("choice", options.missing, how="deny")
    # 9. An age or a time that falls in one choice's range: "con tôi mới 3 tuổi" → "Chưa đủ 6 tuổi".
    by_amount = None
    if _quantities(_tokens(said)):  # the labels' own words are read only when the message states an amount
        raw_labels = [(cid, _tokens(vocab.label_words(label, normalize))) for cid, label in flow]
        by_amount = quantity_choice(_tokens(said), raw_labels)
    if by_amount is not None:
        return Reading("choice", by_amount, how="quantity")
    # "hổng biết nữa", "tui ko rõ": the step's "don't know" answer ("Tôi chưa rõ"), or else a call for help
    if (NEGATIVE in core and set(core) & ({"nho"} | _KNOWING) and set(core) <= {NEGATIVE, "nho"} | _KNOWING) or (
        _not_knowing_how(tokens, core, cores)
    ):
        unsure = [cid for cid, label in cores if {NEGATIVE, "nho"} <= set(label)]
        if len(unsure) == 1:
            return Reading("choice", unsure[0], how="words")
        if not unsure:
            return Reading("command", "help", how="unsure")
    # At a step with one "it failed" answer ("Thanh toán bị lỗi", "Tải lên bị lỗi"), a message that tells of a
    # failure: "trả ko được, báo lỗi", "quét mã qr mà hổng được", "nó hổng nhận hình".
    failed = _failure_choice(_tokens(said), flow, vocab, normalize)
    if failed is not None:
        return Reading("choice", failed, how="words")
    # 10. The words of a label: "ra công an xã nộp" → "Đến công an xã".
    picked, close = label_choice(core, cores, vocab)
    # ...said with a "không" at a step of two answers that say no "không": the other one
    # ("tui ko tự bổ sung được" at "Tôi tự bổ sung được / Tôi cần người giúp")
    if (
        picked is not None
        and len(flow) == 2
        and vocab.negative(tokens)
        and not any(vocab.negative(t) for _, t in labels)
    ):
        the_other = next(cid for cid, _ in cores if cid != picked)
        if not set(core) & (set(dict(cores)[the_other]) - _NEGATIONS):
            picked = the_other
    if picked is not None and _says(words, vocab.done) and not vocab.negative(tokens) and not _FAULT & set(tokens):
        # "tải lên xong hết rồi" names "Tải lên bị lỗi" by its subject, but says it is done, with no fault
        spelled = {cid: _tokens(vocab.label_words(label, normalize)) for cid, label in flow}
        if _tells_failure(spelled[picked]):
            done = [cid for cid in yes if cid != picked and not _tells_failure(spelled[cid])]
            if len(done) == 1:
                picked = done[0]
    if picked is not None:
        return Reading("choice", picked, how="words")
    # ...or most words of one of its ways of saying, in any order: "ko tự làm nổi" → "tự làm không nổi".
    if options.says:
        picked = near_choice(tokens, set(tokens) | set(_tokens(said)), _bags(options, cores, vocab, normalize), vocab)
        if picked is not None:
            return Reading("choice", picked, how="near")
    # ...or, at a "for whom" question, a relative of the citizen: "xin cho ba tui", "làm giùm bà chị".
    if not close and not _says(words, vocab.questions):  # "vợ tôi mới sinh, làm khai sinh ở đâu" asks
        someone = _for_someone_else(_tokens(said), cores)
        if someone is not None:
            return Reading("choice", someone, how="someone-else")
    # A message opened by a no, at a step with one "no" answer: "chưa, chưa ai gửi mã" → "Vẫn chưa có"
    # (unless its other words pick another answer: "không, tui có mã rồi" is asked about, below).
    opened_no = tokens[0] in _NEGATIONS and len(tokens) > 1 and tokens[1] not in _KNOWING
    if (
        opened_no
        and len(no) == 1
        and not _says(words, vocab.questions)
        and _plainly_no(dict(flow)[no[0]], vocab, normalize)
    ):
        after_no = tuple(t for t in core if t not in _NEGATIONS)
        answered, _ = label_choice(after_no, cores, vocab, by_polarity=False) if after_no else (None, ())
        if answered in (None, no[0]):
            return Reading("choice", no[0], how="deny")
    # a yes or done anywhere, with no "không" and not opened by a no ("khỏi, tui đóng xong là được rồi"),
    # nor only the "rồi" that tells time inside a sentence ("nó cứ xoay xoay rồi văng ra")
    # a question ("bao lâu thì có kết quả") is not a yes, unless it opens with one ("ok, mấy ngày thì có")
    asking = _says(words, vocab.questions) and not _leading_yes(words, vocab)
    affirmative = (
        not asking
        and not vocab.negative(tokens)
        and not (words and any(_same(words[0], p[0]) for p in vocab.deny if len(p) == 1))
        and (
            _says(words, vocab.answers_but_roi)
            or _closes_with_roi(words, vocab)
            or bool(_ROI_CLAUSE.search(unicodedata.normalize("NFC", text)))
        )
    )
    if close:
        close_yes = [cid for cid in yes if cid in close]
        if affirmative and len(close_yes) == 1:
            return Reading("choice", close_yes[0], how="words")  # "chuyển khoản thành công rồi": the "done" one
        return Reading("ask", candidates=close, how="words")
    # 11. A sentence that says yes or done without saying no: "dạ em hiểu rồi", "điền xong rồi nha".
    if affirmative:
        return _affirm(options, _says(words, vocab.done), yes, flow_ids, _finished(labels, yes))
    # 12. At a step that only goes on, a sentence that opens with a yes: "dạ nhớ rồi, không đưa mã cho ai".
    only_on = options.forward and len(flow) == 1 and not options.forward_needs_done
    if only_on and not asking and (_said_yes_around(words, vocab) or _did_it(words, tokens, vocab)):
        return Reading("choice", options.forward or "", how="affirm")  # "…, tiếp", "dạ nhớ rồi, …", "đã xem"
    return _politeness(words, vocab)


# Words that tell of a failure: "lỗi", "thất bại", "từ chối"; and what fails after a "không": "không được",
# "hổng nhận", "ko vô được", "không nổi".
_FAULT: Final = frozenset({"loi"})
_FAILED_AFTER_NO: Final = frozenset({"duoc", "dc", "nhan", "vo", "vao", "noi", "thanh"})
_FIXED_BEFORE: Final = frozenset({"het", "khong", "ko", "k", "hong", "chua", "sua", "khac", "phuc"} | {"xin"})


# "không biết…", "chưa hiểu…": a citizen who does not know, not a "no" answer.
_KNOWING: Final = frozenset({"nho", "biet", "hieu", "ro"})


_HOW: Final = frozenset({"sao", "nao", "gi", "j", "dau"})


def _not_knowing_how(tokens: Tokens, core: Tokens, cores: Sequence[tuple[str, Tokens]]) -> bool:
    """ "hổng biết khai sao hết", "ko hiểu phải làm gì": not knowing how, in a word or two that no answer of the
    step uses ("không nhớ mật khẩu thì sao" at "Quên mật khẩu" is that answer's business)."""
    knowing = {"nho"} | _KNOWING
    at = next((i for i in range(len(tokens) - 1) if tokens[i] == NEGATIVE and tokens[i + 1] in knowing), None)
    if at is None or len(core) > 10:
        return False
    asked = next((i for i in range(at + 2, len(tokens)) if tokens[i] in _HOW), None)
    if asked is None:
        return False
    between = set(tokens[at + 2 : asked])
    answers = {t for _, label in cores for t in label} - knowing - {NEGATIVE}
    # "tui xài điện thoại dở lắm, hổng biết chụp sao": what comes before may tell why, if no answer is named
    return 0 < len(between) <= 2 and not set(core) & answers


def _yes_no_question(tokens: Tokens) -> bool:
    """A question of five words or more asked "có … không", "được … không", "… chưa": "Hộ nghèo có được miễn
    lệ phí không?" asks; it does not say a paper is missing."""
    return len(tokens) >= 5 and tokens[-1] in _NEGATIONS and bool({"co", "duoc", "phai"} & set(tokens[:-1]))


def _plainly_no(label: str, vocab: Vocabulary, normalize: Normalizer) -> bool:
    """A label that answers no in words of no ("Vẫn chưa có", "Không, để sau"; not "Thanh toán bị lỗi")."""
    return bool({NEGATIVE, "chua"} & set(_tokens(vocab.label_words(label, normalize))))


def _tells_failure(label: Tokens) -> bool:
    """A label that says something failed: "Thanh toán bị lỗi", "Chưa đăng nhập được", "Vẫn chưa được"."""
    if _FAULT & set(label):
        return True
    return bool({"chua", "khong"} & set(label)) and label[-1] == "duoc"


def _failure_choice(
    said: Tokens, flow: Sequence[tuple[str, str]], vocab: Vocabulary, normalize: Normalizer
) -> str | None:
    """The one answer that says it failed ("… bị lỗi") when the message tells of a failure, not of a fix
    ("hết lỗi", "không bị lỗi") or of something done."""
    failing = [cid for cid, label in flow if _tells_failure(_tokens(vocab.label_words(label, normalize)))]
    if len(failing) != 1:
        return None
    faults = [i for i, t in enumerate(said) if t in _FAULT]
    if faults:
        if any(said[i - 1] in _FIXED_BEFORE or (i > 1 and said[i - 2] in _FIXED_BEFORE) for i in faults if i > 0):
            return None  # "hết lỗi rồi", "không bị lỗi", "làm sao cho hết lỗi"
        return failing[0]
    for a, b, c in zip(said, (*said[1:], ""), (*said[2:], "", ""), strict=False):
        if a in ("khong", "ko", "k", "hong", "chua") and (b in _FAILED_AFTER_NO or c in _FAILED_AFTER_NO - {"thanh"}):
            return failing[0]
    return None


def _just_me(said: Tokens, cores: Sequence[tuple[str, Tokens]]) -> str | None:
    """The one choice for the citizen alone ("Cho bản thân tôi", "Chỉ một mình tôi") when the message says
    "only me": a word for oneself before a closing "thôi" ("có mình tui thôi", "cho tui thôi, tui đi làm xa")."""
    mine = [cid for cid, label in cores if ("ban", "than") in set(itertools.pairwise(label))]
    if len(mine) != 1 or any(t in _KIN_BEFORE | {"ho", "xom"} for t in said[:1]):
        return None
    if _NEGATION_TOKENS & set(said):
        return None  # "không phải mình tui thôi"
    if not _ON_BEHALF & set(said) and not _names_someone(said):
        # "khai cho tui", "làm cho tôi thôi nha": "for me" closing the message ("cho tui hỏi…" asks instead)
        for i in range(len(said) - 1):
            if said[i] == "cho" and said[i + 1] in _SELF - {"con", "chau", "em"} and set(said[i + 2 :]) <= _FOR_ME_TAIL:
                return mine[0]
    if not _ONLY_BEFORE & set(said):
        return None  # a bare "tui thôi" may be "I'll stop"
    pairs = set(itertools.pairwise(said))
    if any((t, "thoi") in pairs for t in _SELF - {"con", "chau", "em"}) and not _names_someone(said):
        return mine[0]
    return None


def _names_someone(said: Tokens) -> bool:
    """Whether the words name a relative or a neighbour (see ``_for_someone_else``)."""
    return any(
        (t in _KIN and (after in _OWNERS or after in _KIN_AFTER))
        or (t in _KIN_BEFORE and after in _KIN and after != t)
        or (t, after) in _NOT_KIN_BUT_OTHERS
        for t, after in itertools.pairwise((*said, ""))
    )


def _for_someone_else(said: Tokens, cores: Sequence[tuple[str, Tokens]]) -> str | None:
    """The one choice for another person ("…người khác", "…người nhà"; "người thân" reads as "người nhà") when the message names
    a relative or a neighbour of the citizen: "ba tui", "má tui", "thằng em", "bà chị", "bà ngoại", "hàng xóm"."""
    others = [cid for cid, label in cores if {("nguoi", "khac"), ("nguoi", "nha")} & set(itertools.pairwise(label))]
    if len(others) != 1:
        return None
    return others[0] if _names_someone(said) else None


def _closes_with_roi(words: Phrase, vocab: Vocabulary) -> bool:
    """ "chụp màn hình rồi nha", "điền hết rồi": a "rồi" that ends the sentence (politeness after it aside)."""
    end = len(words)
    while end > 0 and words[end - 1][0] != "roi" and vocab.filler(words[end - 1]):
        end -= 1
    return end > 0 and words[end - 1][0] == "roi"


def _did_it(words: Phrase, tokens: Tokens, vocab: Vocabulary) -> bool:
    """A short message that opens with "đã" and says no "không": "đã xem", "đã đọc kỹ" (typed with its marks:
    unmarked "da" is also "dạ", read as a yes elsewhere)."""
    return (
        len(words) <= 5
        and words[0][0] == "da"
        and words[0][1] is not None
        and words[0][1].startswith("đ")
        and not vocab.negative(tokens)
    )


def _said_yes_around(words: Phrase, vocab: Vocabulary) -> bool:
    """A message opened by a yes or done of two words or more, or closed by a yes ("…, tiếp", "…, ok"; not a
    closing "rồi", which also ends "tui bị rối rồi")."""
    closing = tuple(reversed(words))
    return _leading_yes(words, vocab) >= 2 or _leading_yes(closing, vocab, phrases=vocab.closing_yes) >= 1


def _leading_yes(words: Phrase, vocab: Vocabulary, phrases: frozenset[Phrase] | None = None) -> int:
    """How many words of yes and done phrases (or of ``phrases``) open the message (politeness words in between
    are skipped). Given the words last first and phrases written backwards, how many close it."""
    index = _by_first(vocab.answers if phrases is None else phrases)
    said = 0
    i = 0
    while i < len(words):
        fits = [len(p) for p in index.get(words[i][0], ()) if _at(words, i, p)]
        if fits:
            said += max(fits)
            i += max(fits)
        elif vocab.filler(words[i]):
            i += 1
        else:
            break
    return said


def _name_sets(names: Sequence[frozenset[str]]) -> list[frozenset[str]]:
    """The procedure's name and short aliases as word sets, without the verbs put before a name."""
    return [n - NAME_VERBS for n in names if n - NAME_VERBS]


# Relatives, as typed (folded): "ba tui", "má tui", "con tui", "bà ngoại", "thằng em", "bà chị".
_KIN: Final = frozenset(
    {"ba", "ma", "me", "cha", "bo", "tia", "vo", "chong", "con", "chau", "em", "anh", "chi", "ong"}
    | {"di", "chu", "bac", "cau", "mo", "thim", "duong"}  # not "co": "có tui" (only me) folds like "cô tui"
)
_OWNERS: Final = frozenset({"tui", "toi", "minh", "tao"})
# Someone else acts for the citizen: "nhờ người khác làm cho tui", "làm hộ cho tôi".
_ON_BEHALF: Final = frozenset({"nho", "ho", "gium", "dum", "giup", "khac", "thay"})
# What may follow "cho tui" when it closes the message: particles, "thôi", "luôn".
_FOR_ME_TAIL: Final = frozenset({"thoi", "thui", "a", "nha", "nhe", "ne", "di", "ha", "he", "luon", "nghen", "hen"})
_ONLY_BEFORE: Final = frozenset({"minh", "chi", "rieng", "co", "cho", "cua"})  # "có mình tui thôi", "cho tui thôi"
_NEGATION_TOKENS: Final = frozenset({"khong", "chua", "hong", "ko", "k", "chang", "cha", "hem", "hok"})
_KIN_AFTER: Final = frozenset({"noi", "ngoai", "gai", "trai", "ut", "re", "dau", "ruot", "ho", "gia"})  # "ông già"
_KIN_BEFORE: Final = frozenset({"thang", "con", "ba", "ong"})  # not "nha": the particle "nha", "nhé" folds alike
_NOT_KIN_BUT_OTHERS: Final = frozenset({("hang", "xom"), ("nguoi", "quen"), ("ban", "be"), ("ban", "tui")})
_STOP_VERBS: Final = frozenset({"lam", "dung", "huy", "bo", "thoat", "ngung", "ket", "tiep", "dep"})
_NOT_NOW: Final = frozenset(
    {("khong", "can"), ("cam", "on"), ("de", "sau"), ("bua", "khac"), ("khi", "khac"), ("luc", "khac")}
    | {("hom", "khac"), ("bua", "sau"), ("hom", "sau")}
)


def _not_now(tokens: Tokens) -> bool:
    """ "không cần nữa", "để sau", "bữa khác": not this (what the step offers), not now; with no word of
    stopping the procedure ("không làm nữa")."""
    pairs = set(itertools.pairwise(tokens))
    return bool(pairs & _NOT_NOW or "khoi" in tokens) and not _STOP_VERBS & set(tokens)


def _names(options: Options, vocab: Vocabulary, normalize: Normalizer) -> tuple[frozenset[str], ...]:
    """The words of the procedure's name and of its short aliases (a long alias is a situation, not a name),
    remembered per procedure like the labels."""
    found = vocab.names_seen.get(options.own_names)
    if found is None:
        names = [frozenset(_tokens(vocab.read_label(n, normalize, core=True))) for n in options.own_names]
        found = tuple(n for i, n in enumerate(names) if i == 0 or len(n) <= 4)
        if len(vocab.names_seen) > _CACHE_LIMIT:
            vocab.names_seen.clear()
        vocab.names_seen[options.own_names] = found
    return found


def _affirm(
    options: Options, done: bool, yes: list[str], flow: tuple[str, ...], finished: Sequence[str] = ()
) -> Reading:
    """A yes or done said at this step; ``finished``: the yes answers that say something is done ("… xong")."""
    if options.forward_needs_done and not done:
        return Reading("ask", candidates=flow, how="affirm")  # "ok" at a payment: paid, or read it?
    if options.forward:
        return Reading("choice", options.forward, how="affirm")
    if len(yes) == 1:
        return Reading("choice", yes[0], how="affirm")
    if done and len(finished) == 1:
        return Reading("choice", finished[0], how="affirm")  # "trả xong xuôi hết rồi": the one "… xong" answer
    if len(flow) == 1:
        return Reading("choice", flow[0], how="affirm")
    return Reading("ask", candidates=flow, how="affirm")


def _finished(labels: Sequence[tuple[str, Tokens]], yes: Sequence[str]) -> list[str]:
    """The yes answers whose label says something is done: "Đã thanh toán xong"."""
    return [cid for cid, label in labels if cid in yes and "xong" in label]


def _politeness(words: Phrase, vocab: Vocabulary) -> Reading:
    """Greetings and thanks (answered politely; the step stays), else nothing."""
    if _only(words, vocab.thanks, vocab):
        return Reading("thanks")
    if _only(words, vocab.greetings, vocab):
        return Reading("greeting")
    return NONE
