"""The one definition of the content format: field specs for the YAML files and the frozen objects built from them.

The field specs drive three things: the loader's checks (unknown, missing and
mistyped keys), the JSON Schema shipped under ``schemas/`` for officials'
editors, and the documentation.  The dataclasses are what the engine reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

SLUG_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

FieldKind = Literal["str", "slug", "bool", "int", "date", "url", "list", "obj", "enum", "fact", "when", "step"]

StepKind = Literal["message", "choice", "checklist", "payment", "handoff", "end"]
STEP_KINDS: Final[tuple[StepKind, ...]] = (
    "message",
    "choice",
    "checklist",
    "payment",
    "handoff",
    "end",
)
PROCEDURE_KINDS: Final = ("procedure", "guide")

# A checklist item's button (✅ plus its label) must read whole on a phone.
CHECK_LABEL_CHARS: Final = 40
STEP_TITLE_CHARS: Final = 50  # a step's name in the report
STAGE_NAME_CHARS: Final = 28  # a stage's name, as a label of the report's funnel chart
# A choice button: longer labels are cut by Telegram and Zalo on a phone.
OPTION_LABEL_CHARS: Final = 60

# Telegram allows 4,096 characters, Zalo 2,000: content must fit the strictest.
STRICTEST_TEXT_LIMIT: Final = 2000

# How sure the reference is of a fact, as procedures-facts.md marks it, plus "can-bo": an official
# checked it on the portal. Only the first three count as checked; the bot marks the others (*).
GRADES: Final = ("S", "S-3p", "can-bo", "S-3p*", "BG", "?")
CHECKED_GRADES: Final = frozenset({"S", "S-3p", "can-bo"})
GRADE_NAMES: Final[Mapping[str, str]] = {
    "S": "có nguồn đã ghi",
    "S-3p": "bản ghi của Cổng do bên thứ ba lấy về",
    "can-bo": "cán bộ đã đối chiếu trên Cổng",
    "S-3p*": "danh sách bên thứ ba, chưa đối chiếu",
    "BG": "hiểu biết chung, chưa có nguồn",
    "?": "chưa rõ, các nguồn khác nhau",
}
# Where a payment step's citizen pays: on the portal or VNeID, or at the counter (receipt, no transfer).
PAY_WHERE: Final = ("online", "counter")

# Placeholders a step text may use, filled from the procedure's catalogue entry.
# {fact:ID} is a named fact of the procedure (or of the catalogue); {phone:ID} a contact's number.
PLACEHOLDERS: Final[Mapping[str, str]] = {
    "name": "tên thủ tục",
    "code": "mã thủ tục hành chính",
    "agency": "cơ quan giải quyết",
    "fee": "lệ phí (nộp trực tuyến và tại quầy); {fee:ma} là mức của một trường hợp (dòng lệ phí có id: ma)",
    "time": "thời gian giải quyết",
    "url": "địa chỉ trang nộp hồ sơ",
    "hotline": "các số điện thoại hỗ trợ",
    "fact": "một thông tin có tên trong mục facts, viết {fact:ma-thong-tin}",
    "phone": "số điện thoại của một liên hệ, viết {phone:ma-lien-he}",
}
NOTE_DOC: Final = "ghi chú cho cán bộ soạn nội dung; người dân không bao giờ thấy"


@dataclass(frozen=True)
class Field:
    """One key of a YAML mapping: its type, whether it is required, and a Vietnamese description."""

    kind: FieldKind
    doc: str
    required: bool = False
    item: Field | None = None
    obj: str | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False


def _s(doc: str, required: bool = False) -> Field:
    return Field("str", doc, required)


def _list(item: Field, doc: str, required: bool = False) -> Field:
    return Field("list", doc, required, item=item)


# The word lists of `dialogue:` (name, one item, the whole list), in the order officials see them.
DIALOGUE_LISTS: Final[tuple[tuple[str, str, str], ...]] = (
    ("affirm", "một câu đồng ý", "câu đồng ý, đi tiếp: dạ, vâng, ok, tiếp…"),
    (
        "done",
        "một câu báo đã làm xong",
        "câu báo đã làm xong: xong, rồi… (ở bước thanh toán chỉ những câu này mới là đã trả)",
    ),
    ("deny", "một câu trả lời không", "câu trả lời không, chưa: không, chưa, chưa có…"),
    ("back", "một cách nói quay lại", "cách nói quay lại bước trước: quay về, trở lại…"),
    ("repeat", "một cách nói lặp lại", "cách nói xem lại bước này: nhắc lại, nói lại…"),
    ("help", "một cách nói cần giúp", "cách nói cần giúp hoặc muốn gặp cán bộ: tôi không hiểu, gặp cán bộ…"),
    ("cancel", "một cách nói dừng", "cách nói dừng thủ tục: thôi, không làm nữa… (bot hỏi lại trước khi dừng)"),
    ("menu", "một cách nói về menu", "cách nói về menu chính: menu, trang chính…"),
    ("greetings", "một lời chào", "lời chào: chào, xin chào, alo…"),
    ("thanks", "một lời cảm ơn", "lời cảm ơn: cảm ơn, thanks…"),
    ("fillers", "một từ đệm", "từ đệm bỏ qua khi đọc: ạ, nha, nhé, đi…"),
    ("yes_words", "một chữ của lựa chọn có", "chữ cho biết một lựa chọn là câu trả lời có: có, được, đúng…"),
    ("negations", "một chữ phủ định", "chữ phủ định: không, chưa…"),
    ("ordinal_words", "một chữ chỉ số thứ tự", "chữ đi kèm số thứ tự: số, cái, thứ, chọn…"),
    ("questions", "một cách hỏi", "cách hỏi: bao lâu, bao nhiêu, ở đâu… (câu hỏi không phải câu đồng ý)"),
)
# Lists whose phrases must not repeat in one another (a phrase means one thing); affirm and done may share.
DIALOGUE_INTENTS: Final = ("affirm", "deny", "back", "repeat", "help", "cancel", "menu", "greetings", "thanks")

_VERIFICATION_KEYS: Final[dict[str, Field]] = {
    "grade": Field(
        "enum",
        "mức chắc chắn của nguồn, như tài liệu tham khảo ghi: S, S-3p, can-bo (đã kiểm tra); "
        "S-3p*, BG, ? (chưa chắc: bot đánh dấu (*) và nhắc hỏi lại cán bộ)",
        choices=GRADES,
    ),
    "verified": Field("bool", "true nếu đã kiểm tra; phải khớp với grade (có thể bỏ, bot suy ra từ grade)"),
    "source": _s("nguồn của thông tin (địa chỉ trang hoặc văn bản)"),
    "as_of": Field("date", "ngày gần nhất đã đối chiếu thông tin với nguồn (YYYY-MM-DD); người dân thấy ngày này"),
    "review_by": Field(
        "date", "ngày cần xem lại thông tin này (ví dụ khi một nghị định tạm thời hết hạn); validate nhắc khi quá ngày"
    ),
    "note": _s(NOTE_DOC),
}

# Kinds of question the bot answers by saying where to ask, not by starting a procedure (``intent_gate``).
GATE_CATEGORIES: Final[Mapping[str, str]] = {
    "penalty": "mức phạt, hình phạt, một lần bị phạt có đúng luật không",
    "inheritance-property": "thừa kế, di chúc, quyền với nhà đất, tài sản, tranh chấp",
    "eligibility": "ai được hưởng chế độ, trợ cấp, miễn giảm, với điều kiện gì",
    "legal-advice": "câu hỏi khác cho luật sư: quyền, nghĩa vụ, hợp đồng, hậu quả pháp lý",
}

OBJECTS: Final[dict[str, dict[str, Field]]] = {
    "catalogue": {
        "version": Field("int", "phiên bản định dạng, hiện là 1"),
        "allowed_domains": _list(
            _s("tên miền"),
            "tên miền chính thức được phép dẫn link (gov.vn: mọi trang có đuôi .gov.vn); link khác là lỗi",
            required=True,
        ),
        "facts": _list(
            Field("obj", "một thông tin dùng chung", obj="named_fact"),
            "thông tin dùng chung cho mọi kịch bản (số, thời hạn…), mỗi thông tin có nguồn và ngày kiểm tra",
        ),
        "glossary": _list(
            Field("obj", "một từ khó", obj="term"),
            "từ khó (OTP, VNeID mức 2…): lần đầu một từ hiện ra trong cuộc trò chuyện, bot giải thích một dòng",
        ),
        "default_contacts": _list(Field("slug", "mã liên hệ"), "các liên hệ hỗ trợ chung, dùng khi thủ tục không nêu"),
        "contacts": _list(Field("obj", "một đầu mối hỗ trợ", obj="contact"), "các đầu mối hỗ trợ"),
        "abbreviations": _list(
            Field("obj", "một chữ viết tắt", obj="abbreviation"),
            "bảng chữ viết tắt người dân hay gõ (dk → đăng ký); nghĩa về thủ tục hành chính được ưu tiên",
        ),
        "matching": Field("obj", "ngưỡng điểm của bộ so khớp, đã đo trên bộ câu hỏi mẫu", obj="matching"),
        "dialogue": Field(
            "obj",
            "những câu người dân hay gõ giữa chừng thủ tục: dạ, quay về, thôi không làm nữa…",
            obj="dialogue",
        ),
        "intent_gate": Field(
            "obj",
            "bộ phân biệt câu hỏi muốn làm thủ tục với câu hỏi xin tư vấn pháp luật (mức phạt, thừa kế, quyền lợi…)",
            obj="intent_gate",
        ),
        "stages": _list(
            Field("obj", "một chặng", obj="stage"),
            "các chặng của một thủ tục theo thứ tự (tìm hiểu → chuẩn bị → đăng nhập → nộp → thanh toán → sau khi "
            "nộp): báo cáo đếm người dân tới và bỏ dở theo chặng",
        ),
        "families": _list(
            Field("obj", "một nhóm thủ tục anh em", obj="family"),
            "nhóm thủ tục anh em (căn cước: lần đầu / đổi, lại / dưới 6 tuổi): câu hỏi chung chung cho cả nhóm thì "
            "bot hỏi lại bằng một câu, không đoán",
        ),
        "out_of_scope": _list(
            _s("một việc bot không hướng dẫn, ví dụ ly hôn"),
            "những việc người dân hay hỏi mà bot không hướng dẫn; câu hỏi giống chúng được trả lời là chưa hỗ trợ",
        ),
        "procedures": _list(
            Field("obj", "một thủ tục hoặc hướng dẫn", obj="procedure"),
            "danh sách thủ tục và hướng dẫn",
            required=True,
        ),
    },
    "abbreviation": {
        "short": _s("chữ viết tắt như người dân gõ, ví dụ dk", True),
        "full": _s("nghĩa đầy đủ, ví dụ đăng ký", True),
        "note": _s("ghi chú, ví dụ nghĩa khác của chữ này"),
        "exact": Field(
            "bool",
            "true: chỉ thay khi gõ đúng dấu (hông → không, nhưng hỏng vẫn là hỏng); mặc định bỏ dấu rồi so",
        ),
    },
    "dialogue": {name: _list(_s(doc_item), doc) for name, doc_item, doc in DIALOGUE_LISTS}
    | {
        "synonyms": _list(
            _list(_s("một cách nói"), "một nhóm cách nói cùng nghĩa"),
            "các nhóm cách nói cùng nghĩa, ví dụ [trên mạng, trực tuyến, online]; cách nói đầu tiên là cách chuẩn",
        )
    },
    "intent_gate": {
        "threshold": Field(
            "int",
            "điểm (1-99) từ đó một câu hỏi được coi là xin tư vấn pháp luật; đo bằng eval-match trước khi đổi",
            True,
        ),
        "contacts": _list(Field("slug", "mã liên hệ"), "nơi người dân hỏi tiếp khi bot không tư vấn pháp luật", True),
        "law": Field("obj", "câu hỏi mẫu xin tư vấn pháp luật, theo nhóm", True, obj="gate_law"),
        "do": _list(
            _s("một câu hỏi muốn làm thủ tục"),
            "câu hỏi mẫu muốn làm thủ tục, nhất là câu nghe như hỏi luật (… được quy định như thế nào?)",
        ),
    },
    "reminder": {
        "text": _s(
            "câu nhắc riêng cho bước này, sau câu chào nêu tên thủ tục và bước, ví dụ: Nếu chưa đăng nhập được "
            "VNeID, bấm Hướng dẫn bước này"
        ),
        "guide": Field("slug", "mã hướng dẫn dùng chung mở ra khi người dân bấm “Hướng dẫn bước này”"),
    },
    "stage": {
        "id": Field("slug", "mã chặng, không đổi sau khi đã dùng", True),
        "name": _s("tên chặng trong báo cáo, ví dụ Nộp hồ sơ", True),
        "steps": _list(
            Field("slug", "mã bước"),
            "các mã bước (dùng chung giữa các kịch bản) mặc định thuộc chặng này khi bước không ghi stage:",
        ),
        "kinds": _list(
            Field("enum", "loại bước", choices=STEP_KINDS),
            "các loại bước mặc định thuộc chặng này, ví dụ payment",
        ),
        "reminder": Field(
            "obj",
            "lời nhắc cho người dân dừng ở một bước của chặng này (bước nào có lời nhắc riêng thì dùng của bước)",
            obj="reminder",
        ),
    },
    "family": {
        "id": Field("slug", "mã nhóm", True),
        "question": _s("câu bot hỏi lại khi người dân hỏi chung chung cả nhóm, ví dụ Bạn làm thẻ cho ai?", True),
        "members": _list(Field("slug", "mã thủ tục"), "các thủ tục trong nhóm (ít nhất 2)", True),
        "margin": Field(
            "int", "thủ tục đứng đầu phải hơn thủ tục anh em bao nhiêu điểm mới được mở thẳng (mặc định 12)"
        ),
    },
    "gate_law": {category: _list(_s("một câu hỏi mẫu"), doc) for category, doc in GATE_CATEGORIES.items()},
    "matching": {
        "confident": Field("int", "điểm (0-100) từ đó bot mở thẳng thủ tục", True),
        "ambiguous": Field("int", "điểm (0-100) từ đó bot đưa ra 3 lựa chọn; thấp hơn là không hiểu", True),
        "margin": Field("int", "thủ tục đứng đầu phải hơn thủ tục thứ hai bao nhiêu điểm mới được mở thẳng", True),
        "min_words": Field("int", "câu ít chữ hơn số này thì không bao giờ mở thẳng thủ tục", True),
    },
    "contact": {
        "id": Field("slug", "mã liên hệ, chữ thường không dấu nối bằng gạch ngang", True),
        "name": _s("tên đầu mối, ví dụ Tổng đài dịch vụ công", True),
        "phone": _s("số điện thoại"),
        "url": Field("url", "trang web (https)"),
        "address": _s("địa chỉ"),
        "hours": _s("giờ làm việc"),
        **_VERIFICATION_KEYS,
        "grade": Field("enum", _VERIFICATION_KEYS["grade"].doc, True, choices=GRADES),
    },
    "named_fact": {
        "id": Field("slug", "mã thông tin, dùng trong kịch bản như {fact:ma-thong-tin}", True),
        "value": _s("giá trị người dân thấy, ví dụ 60 ngày kể từ ngày sinh", True),
        **_VERIFICATION_KEYS,
        "grade": Field("enum", _VERIFICATION_KEYS["grade"].doc, True, choices=GRADES),
        "source": _s("nguồn của thông tin (địa chỉ trang hoặc văn bản)", True),
        "as_of": Field("date", "ngày gần nhất đã đối chiếu thông tin với nguồn (YYYY-MM-DD)", True),
    },
    "term": {
        "term": _s("từ như hiện trong nội dung, ví dụ OTP", True),
        "forms": _list(_s("một cách viết khác"), "cách viết khác của từ, ví dụ mã OTP"),
        "explain": _s("giải thích một dòng, lời lẽ đơn giản", True),
        "note": _s(NOTE_DOC),
    },
    "procedure": {
        "id": Field("slug", "mã thủ tục, chữ thường không dấu nối bằng gạch ngang", True),
        "kind": Field("enum", "procedure (thủ tục) hoặc guide (hướng dẫn dùng chung)", choices=PROCEDURE_KINDS),
        "name": _s("tên thủ tục, viết như người dân đọc", True),
        "area": _s("lĩnh vực, ví dụ hộ tịch, cư trú", True),
        "aliases": _list(_s("một cách gọi"), "các cách người dân gọi thủ tục này"),
        "examples": _list(_s("một câu hỏi"), "câu hỏi mẫu người dân hay gõ"),
        "code": Field("fact", "mã thủ tục hành chính (mã TTHC)"),
        "agency": Field("obj", "cơ quan giải quyết", obj="agency"),
        "fees": _list(Field("obj", "một mức lệ phí", obj="fee"), "lệ phí theo cách nộp"),
        "fee_note": _s("câu người dân thấy về lệ phí khi không có số tiền cụ thể"),
        "facts": _list(
            Field("obj", "một thông tin của thủ tục", obj="named_fact"),
            "thông tin riêng của thủ tục (thời hạn, số điện thoại…) để kịch bản dùng qua {fact:ma-thong-tin}",
        ),
        "note": _s(NOTE_DOC),
        "processing_time": Field("fact", "thời gian giải quyết"),
        "url": Field("fact", "trang nộp hồ sơ chính thức (https)"),
        "fully_online": Field("bool", "true nếu làm trọn vẹn trực tuyến được"),
        "verification": Field("obj", "tình trạng kiểm tra thông tin", True, obj="verification"),
        "contacts": _list(Field("slug", "mã liên hệ"), "đầu mối hỗ trợ riêng cho thủ tục này"),
        "bring": _list(_s("một thứ cần mang"), "những gì cần mang khi đi gặp cán bộ"),
        "flow": _s("tệp kịch bản, ví dụ flows/dang-ky-khai-sinh.yaml", True),
    },
    "verification": dict(_VERIFICATION_KEYS)
    | {"grade": Field("enum", _VERIFICATION_KEYS["grade"].doc, True, choices=GRADES)},
    "fact": {
        "value": _s("giá trị", True),
        **_VERIFICATION_KEYS,
    },
    "agency": {
        "name": _s("tên cơ quan", True),
        "level": _s("cấp: xã, tỉnh, trung ương", True),
        "since": Field("date", "ngày cơ quan, cấp này bắt đầu giải quyết (YYYY-MM-DD)", True),
        **_VERIFICATION_KEYS,
    },
    "fee": {
        "id": Field(
            "slug",
            "mã trường hợp, để kịch bản nói riêng mức của trường hợp này bằng {fee:ma}; các dòng cùng một trường "
            "hợp ở những khoảng thời gian khác nhau dùng chung mã",
        ),
        "label": _s("trường hợp áp dụng, ví dụ Cấp lại thẻ", True),
        "online": Field("int", "số tiền khi nộp trực tuyến (đồng)", nullable=True),
        "counter": Field("int", "số tiền khi nộp tại quầy (đồng)", nullable=True),
        "unit": _s("đơn vị, ví dụ đồng/lần"),
        "exemptions": _list(_s("một trường hợp"), "những người được miễn"),
        "legal_basis": _s("văn bản quy định", True),
        "valid_from": Field("date", "áp dụng từ ngày (YYYY-MM-DD)", True),
        "valid_to": Field("date", "áp dụng đến hết ngày (YYYY-MM-DD)", nullable=True),
        "before_discount": Field("int", "mức đầy đủ khi mức này là mức đang được giảm (đồng)"),
        "start_known": Field(
            "bool",
            "false khi nguồn không nói mức này áp dụng từ ngày nào (valid_from chỉ để xếp thứ tự): "
            "bot không in ngày bắt đầu",
        ),
        "detail": _s("một câu người dân thấy dưới bảng lệ phí, ví dụ cộng thêm vào lệ phí ở trên"),
        **_VERIFICATION_KEYS,
    },
    "flow": {
        "procedure": Field("slug", "mã thủ tục của kịch bản này", True),
        "start": Field("slug", "bước bắt đầu; mặc định là bước đầu tiên"),
        "steps": _list(Field("step", "một bước"), "các bước theo thứ tự", True),
    },
    "option": {
        "id": Field("slug", "mã lựa chọn", True),
        "label": _s("chữ trên nút bấm", True),
        "next": Field("slug", "bước tiếp theo (hoặc bước quay về sau hướng dẫn)"),
        "goto": Field("slug", "mã hướng dẫn dùng chung cần nhảy vào"),
        "says": _list(
            _s("vài chữ, ví dụ: chưa lấy vợ"),
            "những cách người dân hay gõ để chọn nút này, ngoài chữ trên nút (mỗi mục vài chữ)",
        ),
        "note": _s(NOTE_DOC),
    },
    "item": {
        "id": Field("slug", "mã giấy tờ", True),
        "text": _s("tên giấy tờ và yêu cầu", True),
        "label": _s(f"chữ ngắn trên nút đánh dấu (tối đa {CHECK_LABEL_CHARS} ký tự); mặc định là phần đầu của text"),
        "note": _s(NOTE_DOC),
        "when": Field("when", "chỉ hiện khi câu trả lời trước khớp, ví dụ {hoi-dung-han: tre-han}"),
    },
}

_STEP_COMMON: Final[dict[str, Field]] = {
    "id": Field("slug", "mã bước, không đổi sau khi đã dùng", True),
    "kind": Field("enum", "loại bước", True, choices=STEP_KINDS),
    "text": _s("nội dung hiển thị", True),
    "links": _list(Field("url", "một địa chỉ https"), "các đường link kèm theo"),
    "title": _s(
        f"tên ngắn của bước trong báo cáo (tối đa {STEP_TITLE_CHARS} ký tự; không ghi thì lấy mấy chữ đầu của nội dung)"
    ),
    "stage": Field("slug", "mã chặng (mục stages trong procedures.yaml); mặc định theo mã bước, loại bước, bước trước"),
    "reminder": Field(
        "obj", "lời nhắc cho người dân dừng ở bước này (mặc định: của chặng, hoặc câu chung)", obj="reminder"
    ),
    "note": _s(NOTE_DOC),
}

STEP_FIELDS: Final[dict[StepKind, dict[str, Field]]] = {
    "message": _STEP_COMMON
    | {
        "next": Field("slug", "bước tiếp theo"),
        "goto": Field("slug", "mã hướng dẫn dùng chung cần nhảy vào trước khi sang bước tiếp theo"),
    },
    "choice": _STEP_COMMON | {"options": _list(Field("obj", "một lựa chọn", obj="option"), "các lựa chọn", True)},
    "checklist": _STEP_COMMON
    | {
        "items": _list(Field("obj", "một giấy tờ", obj="item"), "giấy tờ cần chuẩn bị", True),
        "next": Field("slug", "bước tiếp theo khi đã đủ giấy tờ", True),
        "missing_next": Field("slug", "bước khi người dân còn thiếu giấy tờ"),
    },
    "payment": _STEP_COMMON
    | {
        "text": _s("lời dẫn trước bảng lệ phí"),
        "next": Field("slug", "bước tiếp theo khi đã thanh toán", True),
        "failed_next": Field("slug", "bước khi thanh toán bị lỗi"),
        "guide": Field("slug", "hướng dẫn thanh toán; mặc định thanh-toan-truc-tuyen"),
        "where": Field(
            "enum",
            "online (trả trên Cổng hoặc VNeID, mặc định) hoặc counter (trả tại quầy, lấy biên lai)",
            choices=PAY_WHERE,
        ),
    },
    "handoff": _STEP_COMMON
    | {
        "contacts": _list(Field("slug", "mã liên hệ"), "đầu mối hỗ trợ; mặc định theo thủ tục"),
        "bring": _list(_s("một thứ cần mang"), "những gì cần mang theo"),
        "next": Field("slug", "bước tiếp theo nếu người dân muốn tiếp tục"),
    },
    "end": _STEP_COMMON
    | {
        "paid": Field(
            "bool",
            "true ở bước kết thúc của hướng dẫn thanh toán khi người dân đã trả xong: "
            "quay về thủ tục thì đi tiếp luôn, không hỏi lại đã thanh toán chưa",
        )
    },
}


# --------------------------------------------------------------------------
# Objects the engine reads.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """Whether a fact was checked, where, and when."""

    verified: bool
    source: str = ""
    as_of: date | None = None  # the day it was last checked against its source
    grade: str = ""
    review_by: date | None = None


@dataclass(frozen=True)
class Fact:
    """A catalogue value with its own verification status."""

    value: str
    verification: Verification


@dataclass(frozen=True)
class NamedFact:
    """A fact a flow names ({fact:id}): a deadline, a rule, a number, with its own verification."""

    id: str
    value: str
    verification: Verification


@dataclass(frozen=True)
class Term:
    """A word citizens may not know, explained in one line the first time it appears."""

    id: str
    term: str
    forms: tuple[str, ...]
    explain: str


@dataclass(frozen=True)
class Agency:
    name: str
    level: str
    since: date
    verification: Verification


@dataclass(frozen=True)
class Fee:
    label: str
    online: int | None
    counter: int | None
    unit: str
    exemptions: tuple[str, ...]
    legal_basis: str
    valid_from: date
    valid_to: date | None
    detail: str
    verification: Verification
    before_discount: int | None = None
    id: str = ""  # the case this row prices, for {fee:id}; rows of one case at other dates share it
    start_known: bool = True  # False: the source gives no start date, so none is shown

    def applies_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Contact:
    id: str
    name: str
    phone: str = ""
    url: str = ""
    address: str = ""
    hours: str = ""
    note: str = ""
    verification: Verification = Verification(False)


@dataclass(frozen=True)
class Condition:
    """``when`` of a checklist item: every named step must have one of the listed answers."""

    step: str
    answers: frozenset[str]


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    next: str | None = None
    goto: str | None = None
    says: tuple[str, ...] = ()  # other ways citizens type this choice ("độc thân" for "Chưa từng kết hôn")


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str
    when: tuple[Condition, ...] = ()
    label: str = ""

    def applies(self, answers: Mapping[str, str]) -> bool:
        return all(answers.get(c.step) in c.answers for c in self.when)


@dataclass(frozen=True)
class Reminder:
    """What the reminder to a citizen who stopped at a step says (``text``, after the procedure and the
    step are named) and which guide its "help with this step" button opens."""

    text: str = ""
    guide: str | None = None


@dataclass(frozen=True)
class Step:
    """One step of a flow; fields that a kind does not use stay empty."""

    id: str
    kind: StepKind
    text: str
    next: str | None = None
    goto: str | None = None
    links: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    items: tuple[ChecklistItem, ...] = ()
    missing_next: str | None = None
    failed_next: str | None = None
    guide: str | None = None
    contacts: tuple[str, ...] = ()
    bring: tuple[str, ...] = ()
    paid: bool = False  # an end step of a payment guide reached after paying
    where: str = "online"  # a payment step: "online" or "counter"
    title: str = ""  # a short name for reports; empty: the first words of the text
    stage: str | None = None  # a stage id; None: the default (see bot/stages.py)
    reminder: Reminder | None = None  # None: the stage's, else a default from the step


@dataclass(frozen=True)
class Flow:
    procedure_id: str
    start: str
    steps: tuple[Step, ...]
    by_id: Mapping[str, Step] = field(default_factory=dict, compare=False)

    def step(self, step_id: str) -> Step | None:
        return self.by_id.get(step_id)

    def position(self, step_id: str) -> int:
        """1-based position of a step in the file, for "bước 3/7"."""
        for i, s in enumerate(self.steps, 1):
            if s.id == step_id:
                return i
        return 0


@dataclass(frozen=True)
class Procedure:
    id: str
    kind: Literal["procedure", "guide"]
    name: str
    area: str
    aliases: tuple[str, ...]
    examples: tuple[str, ...]
    code: Fact | None
    agency: Agency | None
    fees: tuple[Fee, ...]
    fee_note: str
    processing_time: Fact | None
    url: Fact | None
    fully_online: bool | None
    verification: Verification
    contacts: tuple[str, ...]
    bring: tuple[str, ...]
    flow_path: str
    facts: Mapping[str, NamedFact] = field(default_factory=dict)

    @property
    def is_guide(self) -> bool:
        return self.kind == "guide"


@dataclass(frozen=True)
class Stage:
    """A part of every procedure (submission, payment…) that the report counts citizens by.

    ``steps`` and ``kinds`` say which steps belong to it when a step does not name its stage.
    """

    id: str
    name: str
    steps: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    reminder: Reminder | None = None


@dataclass(frozen=True)
class Family:
    """Sibling procedures a general question cannot tell apart: the bot asks ``question`` instead of guessing."""

    id: str
    question: str
    members: tuple[str, ...]
    margin: float = 12.0


@dataclass(frozen=True)
class GateData:
    """The catalogue's ``intent_gate``: examples to train on, where to send legal questions, and the weights."""

    threshold: float
    contacts: tuple[str, ...]
    law: Mapping[str, tuple[str, ...]]
    do: tuple[str, ...]
    weights: Mapping[str, object] | None = None  # intent-gate.json as read, when present and well-formed


@dataclass(frozen=True)
class MatchSettings:
    """Matcher thresholds on the fused 0-100 score, from the catalogue's ``matching`` section."""

    confident: float
    ambiguous: float
    margin: float
    min_words: int


@dataclass(frozen=True)
class Dialogue:
    """The `dialogue:` word lists as officials wrote them (the engine folds them)."""

    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    synonyms: tuple[tuple[str, ...], ...] = ()

    def words(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())


@dataclass(frozen=True)
class Catalogue:
    """A whole validated content set; ``version`` is a hash of the files it came from."""

    procedures: tuple[Procedure, ...]
    flows: Mapping[str, Flow]
    contacts: Mapping[str, Contact]
    default_contacts: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    version: str
    # folded short form -> folded expansion; may be empty
    abbreviations: Mapping[str, str] = field(default_factory=dict)
    # lowercase NFC word with its diacritics -> folded expansion (entries marked exact)
    exact_abbreviations: Mapping[str, str] = field(default_factory=dict)
    matching: MatchSettings | None = None
    gate: GateData | None = None
    families: tuple[Family, ...] = ()
    stages: tuple[Stage, ...] = ()
    out_of_scope: tuple[str, ...] = ()
    dialogue: Dialogue = field(default_factory=Dialogue)
    facts: Mapping[str, NamedFact] = field(default_factory=dict)
    glossary: tuple[Term, ...] = ()

    def procedure(self, proc_id: str) -> Procedure | None:
        for p in self.procedures:
            if p.id == proc_id:
                return p
        return None

    def flow(self, proc_id: str) -> Flow | None:
        return self.flows.get(proc_id)

    def areas(self) -> list[str]:
        """Areas of the procedures (not guides), in catalogue order."""
        seen: list[str] = []
        for p in self.procedures:
            if not p.is_guide and p.area not in seen:
                seen.append(p.area)
        return seen


# --------------------------------------------------------------------------
# JSON Schema for editors.
# --------------------------------------------------------------------------


def _json_field(f: Field) -> dict[str, Any]:
    out: dict[str, Any]
    if f.kind in ("str",):
        out = {"type": "string"}
    elif f.kind == "slug":
        out = {"type": "string", "pattern": SLUG_RE.pattern}
    elif f.kind == "url":
        out = {"type": "string", "pattern": "^https://"}
    elif f.kind == "bool":
        out = {"type": "boolean"}
    elif f.kind == "int":
        out = {"type": "integer", "minimum": 0}
    elif f.kind == "date":
        out = {"type": "string", "format": "date"}
    elif f.kind == "enum":
        out = {"enum": list(f.choices)}
    elif f.kind == "list":
        assert f.item is not None
        out = {"type": "array", "items": _json_field(f.item)}
    elif f.kind == "obj":
        out = {"$ref": f"#/$defs/{f.obj}"}
    elif f.kind == "fact":
        out = {"anyOf": [{"type": ["string", "number"]}, {"$ref": "#/$defs/fact"}]}
    elif f.kind == "when":
        out = {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}},
                ]
            },
        }
    else:  # step
        out = {"$ref": "#/$defs/step"}
    if f.nullable:
        out = {"anyOf": [out, {"type": "null"}]}
    out["description"] = f.doc
    return out


def _json_object(fields: Mapping[str, Field]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [k for k, f in fields.items() if f.required],
        "properties": {k: _json_field(f) for k, f in fields.items()},
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of ``procedures.yaml`` and of a flow file, keyed by file name."""
    defs = {name: _json_object(fields) for name, fields in OBJECTS.items()}
    step_variants = []
    for kind, fields in STEP_FIELDS.items():
        obj = _json_object(fields)
        obj["properties"]["kind"] = {"const": kind, "description": fields["kind"].doc}
        step_variants.append(obj)
    defs["step"] = {"oneOf": step_variants}
    base = "https://dvc-bot.example/schemas/"
    catalogue = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": base + "procedures.schema.json",
        "title": "dvc-bot: danh mục thủ tục (procedures.yaml)",
        **defs["catalogue"],
        "$defs": defs,
    }
    flow = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": base + "flow.schema.json",
        "title": "dvc-bot: kịch bản một thủ tục (flows/*.yaml)",
        **defs["flow"],
        "$defs": defs,
    }
    return {"procedures.schema.json": catalogue, "flow.schema.json": flow}
