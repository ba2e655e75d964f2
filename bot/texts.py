"""Fixed user-facing Vietnamese strings, in one place so they read consistently."""

from __future__ import annotations

from typing import Final

# Buttons
CONTINUE: Final = "Tiếp tục"
BACK: Final = "Quay lại"
HELP: Final = "Gặp cán bộ / Trợ giúp"
MENU: Final = "Về menu chính"
REPEAT: Final = "Lặp lại"
RESUME: Final = "Tiếp tục bước đang làm"
RESTART: Final = "Bắt đầu lại thủ tục này"
NONE_OF_THESE: Final = "Không phải các mục trên"
STAY: Final = "Ở lại thủ tục đang làm"
CHECKLIST_DONE: Final = "Tôi đã có đủ giấy tờ"
CHECKLIST_MISSING: Final = "Tôi còn thiếu giấy tờ"
PAY_GUIDE: Final = "Xem cách thanh toán an toàn"
PAY_DONE: Final = "Đã thanh toán xong"
PAY_FAILED: Final = "Thanh toán bị lỗi"
GUIDES_AREA: Final = "Hướng dẫn chung (VNeID, thanh toán, tra cứu)"

# Conversation
WELCOME: Final = (
    "Xin chào! Tôi là trợ lý hướng dẫn làm thủ tục hành chính trực tuyến. "
    "Tôi sẽ chỉ bạn từng bước: cần giấy tờ gì, nộp thế nào, trả phí ra sao cho an toàn."
)
MENU_PROMPT: Final = (
    "Bạn cần làm thủ tục gì? Hãy gõ vài chữ, ví dụ: “làm lại căn cước”, “khai sinh cho con”.\n"
    "Hoặc chọn một nhóm bên dưới."
)
AREA_PROMPT: Final = "Nhóm “{area}”. Bạn chọn thủ tục cần làm:"
MENU_HINT: Final = "Lúc nào cũng có thể gõ: “quay lại”, “lặp lại”, “trợ giúp” hoặc “menu”."
THANKS_REPLY: Final = "Dạ không có gì ạ. Chúc bạn làm thủ tục thuận lợi!"
GREETING_REPLY: Final = "Xin chào bạn!"
NOT_UNDERSTOOD_STEP: Final = (
    "Xin lỗi, tôi chưa hiểu ý bạn. Bạn hãy bấm một nút bên dưới, hoặc gõ số thứ tự của lựa chọn (ví dụ: 1)."
)
NO_MATCH: Final = (
    "Xin lỗi, tôi chưa tìm được thủ tục phù hợp với câu bạn hỏi. "
    "Bạn thử gõ lại ngắn gọn hơn, ví dụ: “đăng ký tạm trú”, hoặc chọn trong danh sách."
)
NO_MATCH_HOTLINE: Final = "Nếu cần người giúp ngay, bạn gọi: {hotline}."
LEGAL_QUESTION: Final = (
    "Câu bạn hỏi là câu hỏi về luật (mức phạt, quyền lợi, thừa kế, được hay không…). "
    "Tôi chỉ hướng dẫn làm thủ tục, không tư vấn pháp luật, để khỏi trả lời sai cho bạn."
)
LEGAL_WHERE: Final = "Bạn hỏi giúp ở:\n{contacts}\nHoặc hỏi luật sư, trung tâm trợ giúp pháp lý của tỉnh."
LEGAL_DO: Final = "Nếu bạn cần làm thủ tục, tôi hướng dẫn từng bước:"
DO_PROCEDURE: Final = "Làm: {name}"
SEE_GUIDE: Final = "Xem: {name}"
FACT_TIME: Final = "Thời gian giải quyết thủ tục “{name}”: {time}."
FACT_PLACE: Final = "Nơi giải quyết thủ tục “{name}”: {agency}."
FACT_TIME_WHAT: Final = "thời gian giải quyết"
FACT_PLACE_WHAT: Final = "nơi giải quyết"
FACT_UNKNOWN: Final = "Tôi chưa có thông tin chắc chắn về {what} của thủ tục này. Bạn hỏi {where} cho chắc nhé."
AMBIGUOUS: Final = "Có phải bạn muốn hỏi một trong các thủ tục này? Bạn chọn giúp tôi:"
AMBIGUOUS_NONE: Final = "Vâng. Bạn thử gõ lại bằng lời khác, hoặc chọn một nhóm bên dưới."
SWITCH_OFFER: Final = "Bạn đang làm thủ tục “{current}”. Có phải bạn muốn chuyển sang thủ tục khác?"
STARTING: Final = "Bắt đầu thủ tục “{name}”."
STARTING_GUIDE: Final = "Mời bạn xem “{name}”."
RESUME_OFFER: Final = "Bạn đang ở bước {pos}/{total} của thủ tục “{name}”. Bạn muốn tiếp tục hay bắt đầu lại?"
RESUME_OFFER_GUIDE: Final = (
    "Bạn đang xem hướng dẫn “{guide}” trong thủ tục “{name}”. Bạn muốn tiếp tục hay bắt đầu lại?"
)
FIRST_STEP: Final = "Đây đã là bước đầu tiên."
CANCELLED: Final = (
    "Đã dừng thủ tục “{name}”. Tôi vẫn giữ chỗ bạn đang làm: khi cần, nhắn “làm tiếp” hoặc chọn trong menu."
)
CONFIRM_CANCEL: Final = (
    "Bạn muốn dừng thủ tục “{name}”? Tôi giữ lại chỗ bạn đang làm, lúc nào quay lại cũng làm tiếp được."
)
STOP: Final = "Dừng thủ tục"
CHECKLIST_ALREADY: Final = (
    "Mục {n} đã được đánh dấu ✅. Có đủ giấy tờ rồi thì bạn gõ số {onward} hoặc bấm “Tôi đã có đủ giấy tờ” để đi tiếp."
)
RESUME_PARKED: Final = "Làm tiếp: {name}"
COMPLETED: Final = "Bạn đã xem hết hướng dẫn thủ tục “{name}”."
BACK_TO_PROCEDURE: Final = "Xong phần hướng dẫn. Mời bạn quay lại thủ tục “{name}”."
STEP_GONE: Final = (
    "Nội dung thủ tục “{name}” vừa được cán bộ cập nhật, bước bạn đang làm không còn nữa. "
    "Xin lỗi vì sự bất tiện. Bạn bắt đầu lại thủ tục này nhé?"
)
STEP_GONE_RESUME: Final = (
    "Nội dung thủ tục “{name}” vừa được cán bộ cập nhật, bước bạn đang làm không còn nữa. "
    "Xin lỗi vì sự bất tiện. Bạn có thể làm tiếp từ bước trước đó, hoặc bắt đầu lại thủ tục."
)
RESUME_EARLIER: Final = "Làm tiếp từ bước trước đó"
EXIT_REASON_ASK: Final = (
    "Bạn cho tôi biết vì sao bạn dừng nhé (không bắt buộc)? Bấm một nút, hoặc cứ gõ việc khác cần làm."
)
EXIT_REASONS: Final = (
    ("thieu-giay-to", "Thiếu giấy tờ"),
    ("vneid", "Không đăng nhập được VNeID"),
    ("thanh-toan", "Lỗi thanh toán"),
    ("khong-hieu", "Không hiểu bước này"),
    ("de-sau", "Để sau"),
    ("khac", "Lý do khác"),
)
EXIT_REASON_ASK_RETURN: Final = (
    "Chào bạn quay lại! Lần trước bạn dừng giữa chừng thủ tục “{name}”. "
    "Bạn cho tôi biết vì sao nhé (không bắt buộc)? Hoặc bấm “Làm tiếp thủ tục này”."
)
CONTINUE_PROCEDURE: Final = "Làm tiếp thủ tục này"
EXIT_REASON_THANKS: Final = "Cảm ơn bạn. Ý kiến này giúp cán bộ làm thủ tục dễ hơn."
PROCEDURE_GONE: Final = (
    "Thủ tục bạn đang làm vừa được cán bộ cập nhật và tạm thời không còn trong danh sách. "
    "Xin lỗi vì sự bất tiện. Bạn chọn thủ tục khác nhé."
)
STALE_BUTTON: Final = "Nút này thuộc tin nhắn cũ. Đây là bước bạn đang làm:"
UNSUPPORTED_INPUT: Final = "Xin lỗi, tôi chỉ đọc được tin nhắn chữ. Bạn hãy gõ chữ hoặc bấm nút nhé."
EMPTY_INPUT: Final = "Bạn gõ chữ hoặc bấm một nút bên trên giúp tôi nhé."
ASK_PICK: Final = "Bạn chọn giúp tôi một mục bên dưới nhé (bấm nút hoặc gõ số)."
ASK_WHICH: Final = "Ý bạn là {options}? Bạn bấm nút hoặc gõ số giúp tôi nhé."
MESSAGE_TOO_LONG: Final = (
    "Tin nhắn của bạn dài quá (hơn {limit} chữ), tôi chưa đọc được. "
    "Bạn gõ ngắn gọn điều cần hỏi trong một hai câu, ví dụ: “làm căn cước cho con”."
)
RATE_LIMITED: Final = (
    "Bạn gửi nhanh quá, tôi chưa kịp đọc hết. Bạn đợi một phút rồi gửi lại tin nhắn cuối cùng giúp tôi nhé."
)
EDIT_IGNORED: Final = "Tôi không đọc lại tin nhắn đã sửa. Nếu muốn trả lời khác, bạn hãy gửi tin nhắn mới."
UNKNOWN_DEEPLINK: Final = "Không tìm thấy thủ tục trong đường link bạn bấm."
INTERNAL_ERROR: Final = (
    "Xin lỗi, hệ thống đang gặp trục trặc. Bạn thử lại sau ít phút, hoặc gọi tổng đài hỗ trợ nếu cần gấp."
)

# Help / handoff
HELP_INTRO: Final = "Bạn có thể nhờ cán bộ giúp trực tiếp:"
HELP_INTRO_PROC: Final = "Để được giúp về thủ tục “{name}”, bạn có thể liên hệ:"
BRING_INTRO: Final = "Khi đi, bạn mang theo:"
DEFAULT_BRING: Final = (
    "Thẻ căn cước (hoặc căn cước công dân) của bạn",
    "Điện thoại đang dùng số đã đăng ký VNeID",
    "Mã hồ sơ, nếu bạn đã nộp",
    "Giấy tờ bạn đang chuẩn bị cho thủ tục",
)
UNVERIFIED: Final = "chưa được xác nhận chính thức"
UNVERIFIED_MARK: Final = " (*)"
UNVERIFIED_FOOTNOTE: Final = "(*) Điều này chưa được xác nhận chính thức: bạn hỏi lại cán bộ khi nộp hồ sơ."
CHECKED_ON: Final = "(cập nhật {day})"
# A glossary term, the first time a conversation shows it
TERM_EXPLAINED: Final = "💡 {term}: {explain}"
NUMBER_OUT_OF_RANGE: Final = "Bạn hãy chọn một số từ 1 đến {count}."
UNVERIFIED_WHERE_DEFAULT: Final = "bộ phận một cửa"

# Checklist
CHECKLIST_HINT: Final = "Bấm vào giấy tờ bạn đã có để đánh dấu ✅."
CHECK_ON: Final = "✅"
CHECK_OFF: Final = "⬜"

# Payment
FEE_TITLE: Final = "Lệ phí “{name}”:"
FEE_FREE: Final = "miễn phí"
FEE_ONLINE: Final = "nộp trực tuyến: {amount}"
FEE_COUNTER: Final = "nộp tại quầy: {amount}"
FEE_BASIS: Final = "Căn cứ: {basis}."
FEE_SINCE: Final = "Mức trên áp dụng {period}."
FEE_EXEMPT: Final = "Được miễn: {who}."
FEE_UNVERIFIED: Final = (
    "(*) Mức phí này {unverified}: trước khi trả, bạn xem số tiền trên trang nộp hồ sơ hoặc hỏi lại cán bộ khi nộp."
)
FEE_CHECKED: Final = "Bảng phí cập nhật ngày {day}."
FEE_DISCOUNTED: Final = "(đang giảm; mức đầy đủ {full})"
FEE_UNTIL: Final = "đến hết {day}"
CONTACT_UNVERIFIED: Final = "(*) Số, địa chỉ này chưa được xác nhận chính thức; nếu không được, bạn hỏi {where}."
FEE_NONE: Final = "Chưa có thông tin lệ phí chính thức cho thủ tục này. Bạn hãy hỏi {where} trước khi nộp tiền."
FEE_UNPAID: Final = "Lưu ý: hồ sơ chỉ được chuyển tới cơ quan giải quyết sau khi thanh toán thành công."
SAFETY: Final = (
    "🔒 Để thanh toán an toàn:\n"
    "• Chỉ trả tiền trên trang có đuôi .gov.vn hoặc trong ứng dụng VNeID chính thức.\n"
    "• Không bao giờ chuyển lệ phí vào tài khoản của một cá nhân.\n"
    "• Không đọc mã OTP hay passcode cho ai, kể cả người xưng là cán bộ.\n"
    "• Công an không bao giờ gọi điện bảo cài ứng dụng hay chuyển tiền; kẻ gian còn giả làm cán bộ xã, "
    "bảo hiểm xã hội."
)
SAFETY_COUNTER: Final = (
    "🔒 Để trả lệ phí an toàn:\n"
    "• Chỉ trả cho cán bộ tại quầy, hoặc quét mã QR in trên giấy biên nhận của cơ quan, và lấy biên lai.\n"
    "• Không bao giờ chuyển lệ phí vào tài khoản của một cá nhân, dù người đó xưng là cán bộ.\n"
    "• Kẻ gian hay giả làm công an, cán bộ xã, bảo hiểm xã hội: ai gọi điện đòi tiền, hãy cúp máy và hỏi thẳng cơ quan."
)

# Reminders (issue 18): one per unfinished procedure, sent after a long silence, never at night.
REMINDER: Final = "Chào bạn, hôm trước bạn đang làm thủ tục “{name}”, đến bước “{step}”."
REMINDER_DEFAULT: Final = "Bạn muốn làm tiếp không? Nếu bạn vướng ở bước này, bấm “Gặp cán bộ” để biết nơi hỏi."
REMINDER_DEFAULT_GUIDE: Final = (
    "Bạn muốn làm tiếp không? Nếu bạn vướng ở bước này, bấm “Hướng dẫn bước này” hoặc “Gặp cán bộ”."
)
REMINDER_CONTINUE: Final = "Làm tiếp"
REMINDER_GUIDE: Final = "Hướng dẫn bước này"
REMINDER_OFFICIAL: Final = "Gặp cán bộ"
REMINDER_OFF: Final = "Không nhắc nữa"
REMINDERS_OFF: Final = "Dạ, từ nay tôi sẽ không nhắc bạn nữa. Khi nào muốn được nhắc lại, bạn gõ “bật nhắc”."
REMINDERS_ON: Final = "Dạ, khi bạn làm dở một thủ tục, tôi sẽ nhắc bạn một lần (không nhắc vào ban đêm)."
