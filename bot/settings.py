"""Settings as data: each has a name, an environment variable, a default and a help line."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Final

from bot.errors import BotError

# Vietnam has one time zone and no daylight saving: fee dates are read in it.
VIETNAM_TZ: Final = timezone(timedelta(hours=7), "ICT")


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str
    help: str


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "content",
        "BOT_CONTENT",
        "",
        "Thư mục chứa procedures.yaml và flows/ (mặc định: thư mục hiện tại hoặc thư mục của dự án).",
    ),
    Setting(
        "db",
        "BOT_DB",
        "var/bot.db",
        "Nơi lưu phiên trò chuyện và nhật ký sự kiện: tệp SQLite, hoặc máy chủ "
        "postgresql://người_dùng:mật_khẩu@máy:5432/tên_csdl.",
    ),
    Setting(
        "hash_secret",
        "BOT_HASH_SECRET",
        "",
        "Khoá bí mật để mã hoá mã người dùng; nếu trống, tạo tự động cạnh tệp SQLite "
        "(với PostgreSQL: tạo một lần trong cơ sở dữ liệu, mọi tiến trình dùng chung).",
    ),
    Setting(
        "resume_after_minutes",
        "BOT_RESUME_AFTER_MINUTES",
        "30",
        "Sau bao nhiêu phút im lặng thì hỏi người dân muốn tiếp tục hay bắt đầu lại.",
    ),
    Setting(
        "nudges",
        "BOT_NUDGES",
        "on",
        "Nhắc người dân làm tiếp thủ tục bỏ dở (một lần cho mỗi lần làm): on hoặc off.",
    ),
    Setting(
        "nudge_after_minutes",
        "BOT_NUDGE_AFTER_MINUTES",
        "1200",
        "Người dân im lặng bao nhiêu phút giữa chừng thủ tục thì nhắc (mặc định 1200 phút = 20 giờ).",
    ),
    Setting(
        "nudge_quiet_hours",
        "BOT_NUDGE_QUIET_HOURS",
        "21-7",
        "Giờ không nhắc, theo giờ Việt Nam, dạng giờ_bắt_đầu-giờ_kết_thúc (mặc định 21-7); để trống: nhắc cả ngày.",
    ),
    Setting(
        "reload_seconds",
        "BOT_RELOAD_SECONDS",
        "2",
        "Cứ bao nhiêu giây thì xem các tệp nội dung có bị sửa không, để nạp lại ngay (0: chỉ nạp lại khi có lệnh reload).",
    ),
    Setting(
        "telegram_webhook_secret",
        "TELEGRAM_WEBHOOK_SECRET",
        "",
        "Chuỗi bí mật Telegram gửi kèm mỗi webhook (1-256 ký tự A-Z a-z 0-9 _ -); bắt buộc với `serve`.",
    ),
    Setting(
        "telegram_webhook_url",
        "TELEGRAM_WEBHOOK_URL",
        "",
        "Địa chỉ https công khai của /webhook/telegram; có thì `serve` tự đăng ký webhook với Telegram.",
    ),
    Setting(
        "zalo_bot_token",
        "ZALO_BOT_TOKEN",
        "",
        "Mã bot Zalo Bot Platform (Zalo Bot Creator). Có thì `run` nhận tin Zalo.",
    ),
    Setting(
        "zalo_bot_base_url",
        "ZALO_BOT_BASE_URL",
        "https://bot-api.zaloplatforms.com",
        "Địa chỉ Zalo Bot API (yêu cầu gửi tới <địa chỉ>/bot<mã>/<lệnh>).",
    ),
    Setting(
        "zalo_bot_webhook_secret",
        "ZALO_BOT_WEBHOOK_SECRET",
        "",
        "Chuỗi bí mật (8-256 ký tự) Zalo gửi kèm mỗi webhook; bắt buộc với `serve` khi có ZALO_BOT_TOKEN.",
    ),
    Setting(
        "zalo_bot_webhook_url",
        "ZALO_BOT_WEBHOOK_URL",
        "",
        "Địa chỉ https công khai của /webhook/zalo; có thì `serve` tự đăng ký webhook với Zalo.",
    ),
    Setting(
        "zalo_oa_app_id",
        "ZALO_OA_APP_ID",
        "",
        "Mã ứng dụng (app id) Zalo của OA; có cùng ZALO_OA_SECRET_KEY thì `serve` nhận tin OA.",
    ),
    Setting(
        "zalo_oa_secret_key",
        "ZALO_OA_SECRET_KEY",
        "",
        "Khoá bí mật OA (OA secret key) trong phần webhook của ứng dụng, dùng để kiểm tra chữ ký X-ZEvent-Signature.",
    ),
    Setting(
        "zalo_oa_app_secret", "ZALO_OA_APP_SECRET", "", "Khoá bí mật ứng dụng (app secret), dùng để làm mới token OA."
    ),
    Setting(
        "zalo_oa_refresh_token",
        "ZALO_OA_REFRESH_TOKEN",
        "",
        "Refresh token đầu tiên của OA; các token sau được lưu trong cơ sở dữ liệu.",
    ),
    Setting("zalo_oa_access_token", "ZALO_OA_ACCESS_TOKEN", "", "Access token OA hiện có (không bắt buộc)."),
    Setting("zalo_oa_api_base_url", "ZALO_OA_API_BASE_URL", "https://openapi.zalo.me", "Địa chỉ Zalo OA Open API."),
    Setting(
        "zalo_oauth_base_url", "ZALO_OAUTH_BASE_URL", "https://oauth.zaloapp.com", "Địa chỉ máy chủ cấp token Zalo."
    ),
    Setting(
        "log_level",
        "BOT_LOG_LEVEL",
        "WARNING",
        "Mức ghi log: DEBUG, INFO, WARNING, ERROR (thư viện ngoài không bao giờ ghi dưới INFO; số điện thoại, mã chat bị che).",
    ),
    Setting(
        "messages_per_minute",
        "BOT_MESSAGES_PER_MINUTE",
        "20",
        "Mỗi người dân gửi tối đa bao nhiêu tin một phút trên Telegram/Zalo; quá thì được nhắc một lần, tin thừa bị bỏ qua (0: không giới hạn).",
    ),
    Setting(
        "drain_seconds",
        "BOT_DRAIN_SECONDS",
        "10",
        "Khi dừng `serve`, chờ tối đa bao nhiêu giây cho các tin trả lời còn đang chờ gửi; tin chưa gửi được sẽ gửi ở lần chạy sau.",
    ),
    Setting(
        "max_in_flight",
        "BOT_MAX_IN_FLIGHT",
        "200",
        "Số tin webhook xử lý cùng lúc tối đa; quá thì trả 503 kèm Retry-After để nền tảng gửi lại sau.",
    ),
    Setting(
        "db_pool",
        "BOT_DB_POOL",
        "10",
        "Số kết nối PostgreSQL tối đa của mỗi tiến trình (mỗi lượt trò chuyện giữ một kết nối trong lúc xử lý).",
    ),
    Setting(
        "outbox_lease_seconds",
        "BOT_OUTBOX_LEASE_SECONDS",
        "60",
        "Với PostgreSQL và nhiều tiến trình: tin trả lời của một tiến trình đã chết được tiến trình khác gửi sau "
        "bấy nhiêu giây (phải lâu hơn một lần gửi chậm nhất, kể cả khi nền tảng bắt chờ).",
    ),
    Setting(
        "telegram_token",
        "TELEGRAM_BOT_TOKEN",
        "",
        "Mã bot Telegram (lấy từ BotFather). Trống: chạy bản trò chuyện trên màn hình.",
    ),
    Setting(
        "telegram_base_url",
        "TELEGRAM_BASE_URL",
        "https://api.telegram.org/bot",
        "Địa chỉ Bot API (mã bot được nối vào sau), đổi khi dùng máy chủ Bot API riêng.",
    ),
)


def setting(name: str) -> str:
    """The value of a setting from the environment, or its default."""
    for s in SETTINGS:
        if s.name == name:
            return os.environ.get(s.env, s.default)
    raise KeyError(name)


def number_setting(name: str, unit: str) -> float:
    """A setting that must be a number ≥ 0; a typo stops the start with one clear line."""
    raw = setting(name)
    env = next(s.env for s in SETTINGS if s.name == name)
    try:
        value = float(raw)
    except ValueError:
        raise BotError(f"{env} phải là một số {unit}, không phải “{raw}”.") from None
    return max(value, 0.0)


def messages_per_minute() -> float:
    return number_setting("messages_per_minute", "tin nhắn")


def drain_seconds() -> float:
    return number_setting("drain_seconds", "giây")


def max_in_flight() -> int:
    return max(int(number_setting("max_in_flight", "yêu cầu")), 1)


def db_pool_size() -> int:
    return max(int(number_setting("db_pool", "kết nối")), 1)


def outbox_lease_seconds() -> float:
    return max(number_setting("outbox_lease_seconds", "giây"), 1.0)


def resume_after_seconds() -> float:
    return number_setting("resume_after_minutes", "phút") * 60


def nudge_settings() -> tuple[float, tuple[int, int] | None]:
    """(seconds of silence before a reminder, 0 when reminders are off; quiet hours (from, to) or None),
    checked: a typo stops the start with one clear line."""
    on = setting("nudges").strip().lower()
    if on not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
        raise BotError(f"BOT_NUDGES phải là on hoặc off, không phải “{setting('nudges')}”.")
    after = number_setting("nudge_after_minutes", "phút") * 60
    quiet = quiet_hours(setting("nudge_quiet_hours"))
    return (after if on in ("on", "1", "true", "yes") else 0.0), quiet


def quiet_hours(raw: str) -> tuple[int, int] | None:
    """ "21-7" -> (21, 7); empty -> None."""
    text = raw.strip()
    if not text:
        return None
    start, sep, end = text.partition("-")
    if sep and start.strip().isdigit() and end.strip().isdigit():
        a, b = int(start), int(end)
        if 0 <= a <= 23 and 0 <= b <= 23 and a != b:
            return a, b
    raise BotError(
        f"BOT_NUDGE_QUIET_HOURS phải có dạng giờ-giờ, ví dụ 21-7 (từ 21 giờ tối đến 7 giờ sáng), không phải “{raw}”."
    )


def reload_seconds() -> float:
    return number_setting("reload_seconds", "giây")


def default_content_dir() -> Path:
    """BOT_CONTENT, else the current directory if it holds procedures.yaml, else the project's own."""
    env = setting("content")
    if env:
        return Path(env)
    cwd = Path.cwd()
    if (cwd / "procedures.yaml").is_file():
        return cwd
    project = Path(__file__).resolve().parent.parent
    if (project / "procedures.yaml").is_file():
        return project
    return cwd


def hash_secret(db_path: str) -> bytes:
    """The secret for pseudonymous user keys: BOT_HASH_SECRET, else a file made on first run next to the database."""
    env = setting("hash_secret")
    if env:
        return env.encode()
    if db_path == ":memory:":
        return secrets.token_bytes(32)
    path = Path(db_path).parent / "hash-secret"
    try:
        if path.is_file():
            return path.read_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secret)
        return secret
    except FileExistsError:
        return path.read_bytes()
    except OSError as exc:
        raise BotError(f"Không tạo được tệp khoá bí mật {path}: {exc.strerror}.") from exc
