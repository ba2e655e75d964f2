"""Command line: ``python -m bot <subcommand>``. Exit 0 on success, 1 on a reported problem, 2 on bad usage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import re
import socket
import sys
import time as clock
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bot import engine, schema
from bot.content import build
from bot.engine import Content, EngineConfig, Inbound, Session
from bot.errors import BotError, UsageError
from bot.loader import confusable_problems, did_you_mean, load_content
from bot.runner import vietnam_now
from bot.schema import Flow
from bot.storage import is_server, open_store, shown_db
from bot.storage.analytics import ReportScope

if TYPE_CHECKING:
    from bot.service import Service
from bot.privacy import PrivacyFilter, cap_third_party_logs, keep_tokens_out_of_http_logs
from bot.settings import (
    SETTINGS,
    VIETNAM_TZ,
    default_content_dir,
    drain_seconds,
    max_in_flight,
    messages_per_minute,
    nudge_settings,
    reload_seconds,
    resume_after_seconds,
    setting,
)

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "dvc-bot: trợ lý hướng dẫn người dân làm thủ tục hành chính trực tuyến.\nChạy không kèm lệnh con thì giống `run`."
)


# argparse's own words, in Vietnamese: it looks them up through gettext at the moment it prints them.
_ARGPARSE_VI: Final[dict[str, str]] = {
    "usage: ": "cách dùng: ",
    "positional arguments": "tham số",
    "options": "tùy chọn",
    "optional arguments": "tùy chọn",
    "show this help message and exit": "in hướng dẫn này rồi thoát",
    "the following arguments are required: %s": "thiếu tham số bắt buộc: %s",
    "unrecognized arguments: %s": "tham số không nhận ra: %s",
    "invalid choice: %(value)r (choose from %(choices)s)": "lựa chọn không hợp lệ: %(value)r (chọn một trong %(choices)s)",
    "argument %(argument_name)s: %(message)s": "tham số %(argument_name)s: %(message)s",
    "invalid %(type)s value: %(value)r": "giá trị không hợp lệ: %(value)r",
    "expected one argument": "cần một giá trị",
    "expected at least one argument": "cần ít nhất một giá trị",
    "expected at most one argument": "cần nhiều nhất một giá trị",
    "expected %s argument": "cần %s giá trị",
    "expected %s arguments": "cần %s giá trị",
    "ambiguous option: %(option)s could match %(matches)s": "tùy chọn chưa rõ: %(option)s có thể là %(matches)s",
    "not allowed with argument %s": "không dùng chung được với %s",
    "one of the arguments %s is required": "cần một trong các tham số %s",
    "ignored explicit argument %r": "bỏ qua giá trị %r",
}


def _vietnamese(message: str) -> str:
    return _ARGPARSE_VI.get(message, message)


setattr(argparse, "_", _vietnamese)  # noqa: B010 (argparse reads its module-level gettext alias at call time)
setattr(argparse, "ngettext", lambda one, many, n: _vietnamese(one if n == 1 else many))  # noqa: B010


class _Parser(argparse.ArgumentParser):
    """argparse with Vietnamese error lines and exit code 2 on bad usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: lỗi cách dùng: {message}\nGõ `{self.prog} --help` để xem hướng dẫn.\n")


def _add_eval(p: argparse.ArgumentParser, misses: str) -> None:
    """The arguments every scoring command takes: content, the TSV file, --json and --misses."""
    _add_content(p)
    p.add_argument("file", metavar="TỆP.tsv", type=Path)
    p.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    p.add_argument("--misses", action="store_true", help=misses)


def _add_content(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--content",
        metavar="THƯ_MỤC",
        type=Path,
        default=None,
        help="thư mục chứa procedures.yaml và flows/ (mặc định: BOT_CONTENT hoặc thư mục của dự án)",
    )


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="TỆP|URL",
        default=None,
        help="tệp SQLite, hoặc máy chủ postgresql://người_dùng:mật_khẩu@máy:5432/tên_csdl "
        "(mặc định: BOT_DB hoặc var/bot.db)",
    )


def redact_tokens_in_logs() -> None:
    """Tokens, chat ids and personal numbers never reach a log line; libraries never log below INFO."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, PrivacyFilter) for f in handler.filters):
            handler.addFilter(PrivacyFilter())
    cap_third_party_logs(logging.getLogger().level)
    keep_tokens_out_of_http_logs()


def build_parser() -> argparse.ArgumentParser:
    settings_help = "\n".join(
        f"  {s.env:<26} {s.help}"
        + (f" Mặc định: {s.default}." if s.default and "mặc định" not in s.help.lower() else "")
        for s in SETTINGS
    )
    parser = _Parser(
        prog="python -m bot",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Biến môi trường:\n" + settings_help,
    )
    sub = parser.add_subparsers(dest="command", metavar="LỆNH", parser_class=_Parser)

    p = sub.add_parser(
        "run",
        help="chạy bot: có TELEGRAM_BOT_TOKEN, ZALO_BOT_TOKEN thì nhận tin Telegram, Zalo Bot (long polling), "
        "không có mã nào thì trò chuyện trên màn hình",
    )
    _add_content(p)
    _add_db(p)

    p = sub.add_parser(
        "serve",
        help="máy chủ webhook cho các kênh: POST /webhook/telegram, /webhook/zalo, /webhook/zalo-oa, "
        "GET /healthz (đặt sau HTTPS)",
    )
    _add_content(p)
    _add_db(p)
    p.add_argument("--host", default="127.0.0.1", help="địa chỉ lắng nghe (mặc định 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="cổng lắng nghe (mặc định 8080)")
    p.add_argument(
        "--socket",
        metavar="TỆP",
        default=None,
        help="lắng nghe trên Unix socket này thay vì cổng TCP (ví dụ cho nginx: proxy_pass http://unix:PATH)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="số tiến trình cùng nhận webhook trên một cổng (mặc định 1; từ 2 trở lên cần --db postgresql://…)",
    )
    p.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)  # a worker of --workers

    p = sub.add_parser("chat", help="trò chuyện với bot ngay trên màn hình (không cần mạng)")
    _add_content(p)
    _add_db(p)
    p.add_argument("--user", metavar="ID", default="console", help="mã người dùng thử (mặc định: console)")
    p.add_argument(
        "--json",
        action="store_true",
        help="mỗi dòng vào là một tin nhắn; mỗi dòng ra là một dòng JSON (dùng cho chương trình khác)",
    )

    p = sub.add_parser("validate", help="kiểm tra procedures.yaml và flows/*.yaml, in mọi lỗi kèm tệp:dòng")
    _add_content(p)
    p.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    p.add_argument("--strict", action="store_true", help="coi cảnh báo cũng là lỗi (thoát mã 1)")
    p.add_argument(
        "--no-confusable",
        action="store_true",
        help="bỏ qua bước dò cách gọi, câu hỏi mẫu dễ bị nhầm sang thủ tục khác (bước này mất vài giây)",
    )

    p = sub.add_parser(
        "status", help="bot đang dùng phiên bản nội dung nào, nạp lúc nào, lần nạp lại gần nhất có lỗi gì"
    )
    _add_db(p)
    p.add_argument("--json", action="store_true", help="in kết quả dạng JSON")

    p = sub.add_parser("reload", help="bảo bot đang chạy nạp lại nội dung ngay (như gửi SIGHUP) và in kết quả")
    _add_db(p)
    p.add_argument(
        "--timeout", type=float, default=15.0, metavar="GIÂY", help="chờ kết quả tối đa bao nhiêu giây (mặc định 15)"
    )

    p = sub.add_parser("test", help="chạy các kịch bản kiểm thử hội thoại (YAML), in chỗ sai và độ phủ các bước")
    _add_content(p)
    p.add_argument(
        "paths",
        metavar="TỆP",
        nargs="*",
        type=Path,
        help="tệp hoặc thư mục kiểm thử (mặc định: tests/conversations trong thư mục nội dung)",
    )
    p.add_argument("--no-coverage", action="store_true", help="không in bảng độ phủ các bước")

    p = sub.add_parser(
        "graph", help="vẽ sơ đồ một kịch bản (Mermaid hoặc Graphviz DOT) để thấy nhánh, vòng lặp, chỗ cụt"
    )
    _add_content(p)
    p.add_argument("id", metavar="MÃ", help="mã thủ tục hoặc hướng dẫn, ví dụ dang-ky-tam-tru")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="kiểu sơ đồ (mặc định: mermaid)")
    p.add_argument("--out", metavar="TỆP", type=Path, default=None, help="ghi ra tệp thay vì in ra màn hình")

    p = sub.add_parser(
        "preview", help="đi thử một kịch bản trên màn hình, từ đầu hoặc từ một bước; không ghi gì vào thống kê"
    )
    _add_content(p)
    p.add_argument("id", metavar="MÃ", help="mã thủ tục hoặc hướng dẫn, ví dụ dang-ky-tam-tru")
    p.add_argument("--step", metavar="BƯỚC", default=None, help="bắt đầu từ bước này (mặc định: bước đầu)")
    p.add_argument(
        "--answer",
        metavar="BƯỚC=LỰA_CHỌN",
        action="append",
        default=[],
        help="coi như người dân đã chọn như vậy ở một câu hỏi (để xem giấy tờ hiện theo câu trả lời); dùng nhiều lần được",
    )
    p.add_argument(
        "--date", metavar="NĂM-THÁNG-NGÀY", default=None, help="xem như đang ở ngày này (để xem lệ phí sắp áp dụng)"
    )
    p.add_argument("--json", action="store_true", help="mỗi dòng vào là một tin nhắn; mỗi dòng ra là một dòng JSON")
    p.add_argument(
        "--reminder",
        action="store_true",
        help="xem lời nhắc người dân nhận được khi dừng ở bước này (như đã im lặng BOT_NUDGE_AFTER_MINUTES), "
        "rồi trả lời thử",
    )

    p = sub.add_parser("match", help="xem bot hiểu một câu hỏi là thủ tục nào (không có câu thì đọc mỗi dòng một câu)")
    _add_content(p)
    p.add_argument("text", metavar="CÂU", nargs="*", help="câu người dân gõ")
    p.add_argument("--json", action="store_true", help="mỗi câu một dòng JSON")

    p = sub.add_parser(
        "train-gate",
        help="học lại bộ phân biệt câu hỏi muốn làm thủ tục với câu hỏi xin tư vấn pháp luật (intent_gate)",
    )
    _add_content(p)
    p.add_argument(
        "--data",
        metavar="TỆP.tsv",
        type=Path,
        action="append",
        default=None,
        help="thêm một tệp câu hỏi có nhãn (query, expected, note); mặc định: các tệp của dự án trong tests/data/eval",
    )

    p = sub.add_parser("eval-match", help="đo độ chính xác của bộ so khớp trên một tệp TSV có nhãn (như dev.tsv)")
    _add_eval(p, "in cả các câu bot trả lời chưa đúng")
    p.add_argument(
        "--baseline",
        metavar="TỆP.json",
        type=Path,
        default=None,
        help="so với kết quả đã ghi; thoát mã 1 nếu top-1 hoặc tỉ lệ loại câu ngoài phạm vi giảm quá 2 điểm",
    )

    p = sub.add_parser(
        "eval-inflow",
        help="đo bot hiểu câu người dân gõ giữa chừng thủ tục (tệp TSV như inflow-dev.tsv), theo từng nhóm",
    )
    _add_eval(p, "in cả các câu bot hiểu chưa đúng")
    p.add_argument(
        "--min",
        metavar="TỔNG,NHÓM",
        default=None,
        help="ngưỡng phần trăm, ví dụ 95,90: thoát mã 1 nếu tổng hoặc một nhóm thấp hơn",
    )

    p = sub.add_parser("report", help="báo cáo: người dân bỏ dở ở đâu, vướng ở đâu, hỏi gì bot chưa hiểu")
    _add_content(p)
    _add_db(p)
    p.add_argument(
        "--format", choices=["table", "json", "csv", "html"], default="table", help="kiểu báo cáo (mặc định table)"
    )
    p.add_argument(
        "--table",
        choices=list(REPORT_TABLES),
        default=None,
        help="bảng cho csv, mặc định procedures (stages: phễu theo chặng; unresolved: câu hỏi bot đưa lựa chọn mà "
        "người dân không chọn)",
    )
    p.add_argument("--out", type=Path, default=None, metavar="TỆP", help="ghi ra tệp")
    p.add_argument("--since", default=None, metavar="NĂM-THÁNG-NGÀY", help="từ ngày (giờ Việt Nam)")
    p.add_argument("--until", default=None, metavar="NĂM-THÁNG-NGÀY", help="đến trước ngày")
    p.add_argument("--procedure", default=None, metavar="MÃ", help="chỉ một thủ tục")
    p.add_argument("--channel", default=None, metavar="KÊNH", help="chỉ một kênh: console, telegram, zalo-bot, zalo-oa")
    p.add_argument(
        "--idle-minutes",
        type=int,
        default=1440,
        metavar="PHÚT",
        help="im lặng bao lâu thì coi là bỏ dở (mặc định 1440)",
    )
    p.add_argument(
        "--compare-versions",
        nargs=2,
        metavar=("TRƯỚC", "SAU"),
        default=None,
        help="so sánh hai phiên bản nội dung (mã như `status` in): tỉ lệ hoàn thành và mất ở từng bước, "
        "kèm dấu hiệu khác biệt có thể chỉ là ngẫu nhiên",
    )

    p = sub.add_parser("purge", help="xoá nhật ký và phiên trò chuyện cũ hơn một khoảng thời gian (lưu giữ dữ liệu)")
    _add_db(p)
    p.add_argument(
        "--older-than", required=True, metavar="THỜI_GIAN", help="ví dụ 180d (ngày), 12w (tuần), 6m (tháng = 30 ngày)"
    )
    p.add_argument(
        "--include-active",
        action="store_true",
        help="xoá cả phiên của người đang trò chuyện (mặc định giữ phiên nào còn hoạt động trong 1440 phút qua)",
    )
    p.add_argument("--yes", action="store_true", help="xoá luôn, không hỏi lại")

    p = sub.add_parser(
        "migrate-db",
        help="chuyển toàn bộ dữ liệu từ tệp SQLite sang PostgreSQL (phiên, nhật ký, tin chờ gửi, token, khoá bí mật)",
    )
    p.add_argument("--from", dest="source", required=True, metavar="TỆP", help="tệp SQLite đang dùng, ví dụ var/bot.db")
    p.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="postgresql://người_dùng:mật_khẩu@máy/csdl"
    )
    p.add_argument("--force", action="store_true", help="thay dữ liệu đã có ở nơi đến (mặc định: từ chối ghi đè)")

    p = sub.add_parser("schema", help="in JSON Schema của hai loại tệp nội dung")
    p.add_argument(
        "--write",
        metavar="THƯ_MỤC",
        type=Path,
        default=None,
        help="ghi procedures.schema.json và flow.schema.json vào thư mục này",
    )
    # Each subcommand's own --help opens with the line the overview shows for it and ends with examples.
    for action in sub._choices_actions:
        child = sub.choices[action.dest]
        if child.description is None and action.help:
            child.description = action.help[0].upper() + action.help[1:] + "."
        child.formatter_class = argparse.RawDescriptionHelpFormatter
        child.epilog = "Ví dụ:\n" + "\n".join(f"  {line}" for line in EXAMPLES[action.dest])
    return parser


# Every subcommand's --help ends with these (a test keeps one or more for each).
EXAMPLES: Final[dict[str, tuple[str, ...]]] = {
    "run": (
        "python -m bot run                                  # không có mã: trò chuyện trên màn hình",
        "TELEGRAM_BOT_TOKEN=123:abc python -m bot run       # nhận tin Telegram",
    ),
    "serve": ("ZALO_BOT_WEBHOOK_SECRET=bi-mat ZALO_BOT_TOKEN=… python -m bot serve --port 8080",),
    "chat": (
        "python -m bot chat",
        "printf 'dk tam tru\\n1\\n' | python -m bot chat --json --user thu",
    ),
    "validate": ("python -m bot validate", "python -m bot validate --strict --content /duong/dan/noi-dung"),
    "status": ("python -m bot status --db var/bot.db",),
    "reload": ("python -m bot reload --db var/bot.db",),
    "test": ("python -m bot test", "python -m bot test tests/conversations/dang-ky-khai-sinh.yaml"),
    "graph": (
        "python -m bot graph dang-ky-khai-sinh --out khai-sinh.mmd",
        "python -m bot graph dang-ky-tam-tru --format dot",
    ),
    "preview": ("python -m bot preview dang-ky-tam-tru", "python -m bot preview dang-ky-khai-sinh --step chuan-bi"),
    "match": ('python -m bot match "lam lai can cuoc bi mat"', "python -m bot match < cau-hoi.txt"),
    "train-gate": ("python -m bot train-gate",),
    "eval-match": ("python -m bot eval-match tests/data/eval/dev.tsv --misses",),
    "eval-inflow": ("python -m bot eval-inflow tests/data/eval/inflow-dev.tsv --min 95,90",),
    "report": (
        "python -m bot report --since 2026-11-01 --format html --out bao-cao.html",
        "python -m bot report --format csv --table stages > chang.csv",
        "python -m bot report --compare-versions 1a2b3c4d5e6f 6f5e4d3c2b1a",
    ),
    "purge": ("python -m bot purge --older-than 180d", "python -m bot purge --older-than 12w --yes"),
    "migrate-db": ("python -m bot migrate-db --from var/bot.db --to postgresql://bot:MẬT_KHẨU@db:5432/dvcbot",),
    "schema": ("python -m bot schema --write schemas",),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=setting("log_level").upper() if setting("log_level").upper() in logging._nameToLevel else "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_tokens_in_logs()
    # A byte that is not UTF-8 (a broken terminal, a pasted file) becomes "�" instead of stopping the chat.
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")
    command = args.command or "run"
    if args.command is None:
        args = parser.parse_args(["run"])
    try:
        if command == "validate":
            return cmd_validate(args)
        if command == "schema":
            return cmd_schema(args)
        if command == "test":
            return cmd_test(args)
        if command == "graph":
            return cmd_graph(args)
        if command == "preview":
            return cmd_preview(args)
        if command == "match":
            return cmd_match(args)
        if command == "eval-match":
            return cmd_eval_match(args)
        if command == "train-gate":
            return cmd_train_gate(args)
        if command == "eval-inflow":
            return cmd_eval_inflow(args)
        if command == "chat":
            return asyncio.run(cmd_chat(args))
        if command == "run":
            return cmd_run(args)
        if command == "serve":
            if args.workers != 1:
                return cmd_serve_workers(args)
            return asyncio.run(cmd_serve(args))
        if command == "report":
            return asyncio.run(cmd_report(args))
        if command == "migrate-db":
            return cmd_migrate_db(args)
        if command == "purge":
            return asyncio.run(cmd_purge(args))
        if command == "status":
            return asyncio.run(cmd_status(args))
        if command == "reload":
            return asyncio.run(cmd_reload(args))
    except BotError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if not type(exc).__module__.startswith("psycopg"):
            raise
        # The PostgreSQL server went away or refused in the middle of a command: one line, not a traceback.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"Lỗi: cơ sở dữ liệu PostgreSQL báo lỗi: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nĐã dừng.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.print_help()
    return 2


def _content_dir(args: argparse.Namespace) -> Path:
    return Path(args.content) if args.content else default_content_dir()


def _db_path(args: argparse.Namespace) -> str:
    return str(args.db or setting("db"))


def cmd_validate(args: argparse.Namespace) -> int:
    content_dir = _content_dir(args)
    result = load_content(content_dir)
    if result.catalogue is not None and not args.no_confusable:
        result = replace(result, problems=(*result.problems, *confusable_problems(content_dir, result.catalogue)))
    if result.catalogue is not None:
        from bot.render_check import render_problems

        rendered = render_problems(content_dir, build(result), vietnam_now().date())
        result = replace(result, problems=(*result.problems, *rendered))
    errors, warnings = result.errors, result.warnings
    failed = bool(errors) or (args.strict and bool(warnings))
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not failed,
                    "version": result.version,
                    "errors": len(errors),
                    "warnings": len(warnings),
                    "problems": [p.as_dict() for p in result.problems],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 1 if failed else 0
    for problem in result.problems:
        print(problem.format())
    if result.catalogue is not None and not failed:
        cat = result.catalogue
        procs = sum(1 for p in cat.procedures if not p.is_guide)
        guides = len(cat.procedures) - procs
        tail = f", {len(warnings)} cảnh báo" if warnings else ""
        print(f"Nội dung hợp lệ: {procs} thủ tục, {guides} hướng dẫn, phiên bản {result.version}{tail}.")
        return 0
    print(f"Có {len(errors)} lỗi và {len(warnings)} cảnh báo.", file=sys.stderr)
    return 1


def _load_or_report(content_dir: Path) -> Content:
    """The content, or exit 1 after printing every problem (for commands that need valid content)."""
    result = load_content(content_dir)
    if result.catalogue is None:
        for problem in result.problems:
            print(problem.format(), file=sys.stderr)
    return build(result)


def cmd_test(args: argparse.Namespace) -> int:
    from bot import convtest

    content_dir = _content_dir(args)
    content = _load_or_report(content_dir)
    paths = list(args.paths) or [content_dir / "tests" / "conversations"]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise BotError(f"Không thấy tệp hoặc thư mục kiểm thử: {missing[0]}")
    files = convtest.find_files(paths)
    outcome = convtest.run_files(content, files, base=Path.cwd())
    print(convtest.report(content, outcome, verbose_coverage=not args.no_coverage))
    return 0 if outcome.ok else 1


def _flow_or_fail(content: Content, proc_id: str) -> Flow:
    flow = content.catalogue.flow(proc_id)
    if flow is None:
        ids = [p.id for p in content.catalogue.procedures]
        hint = did_you_mean(proc_id, ids)
        raise BotError(
            f"Không có thủ tục hay hướng dẫn nào mã “{proc_id}”. {hint + ' ' if hint else ''}Các mã có: {', '.join(ids)}."
        )
    return flow


def cmd_graph(args: argparse.Namespace) -> int:
    from bot import graph

    content = _load_or_report(_content_dir(args))
    text = graph.render(content.catalogue, _flow_or_fail(content, args.id), args.format)
    return _emit(text, args.out, "sơ đồ")


def _emit(text: str, out: Path | None, what: str) -> int:
    """Print ``text``, or write it to ``out`` and say so."""
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BotError(f"Không ghi được tệp {out}: {exc.strerror}.") from None
    print(f"Đã ghi {what} vào {out}.")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from bot.channels import console

    content = _load_or_report(_content_dir(args))
    flow = _flow_or_fail(content, args.id)
    now = vietnam_now()
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            raise UsageError(
                f"--date phải có dạng NĂM-THÁNG-NGÀY, ví dụ 2027-01-01, không phải “{args.date}”."
            ) from None
        now = datetime.combine(day, time(9, 0), VIETNAM_TZ)
    answers: dict[str, str] = {}
    for item in args.answer:
        step_id, _, option = item.partition("=")
        step = flow.step(step_id.strip())
        if step is None or step.kind != "choice":
            questions = [s.id for s in flow.steps if s.kind == "choice"]
            raise UsageError(
                f"--answer {item}: “{step_id}” không phải câu hỏi của {args.id}. "
                f"Các câu hỏi: {', '.join(questions) or '(không có)'}."
            )
        options = [o.id for o in step.options]
        if option.strip() not in options:
            raise UsageError(f"--answer {item}: câu hỏi {step_id} chỉ có các lựa chọn: {', '.join(options)}.")
        answers[f"{args.id}/{step.id}"] = option.strip()
    if args.step is not None:
        if flow.step(args.step) is None:
            steps = [s.id for s in flow.steps]
            hint = did_you_mean(args.step, steps)
            raise BotError(
                f"Kịch bản {args.id} không có bước “{args.step}”. {hint + ' ' if hint else ''}Các bước có: {', '.join(steps)}."
            )
        from bot.inflow_eval import start_session

        # As if the citizen had come along the shortest path: "quay lại" works as in a real conversation.
        session = replace(start_session(content, args.id, args.step, "", now), answers=answers)
        opening = Inbound(console.CHANNEL, console.PREVIEW_USER, kind="choice", choice_id="cmd:repeat")
    else:
        session = Session(answers=answers)
        opening = Inbound(console.CHANNEL, console.PREVIEW_USER, kind="start", start_payload=args.id)
    first: Inbound | engine.Result = opening
    if args.reminder:
        first = _reminder_preview(content, args.id, args.step or flow.start, answers, now)
        if not args.json:
            hours = (nudge_settings()[0] or 1200 * 60) / 3600
            print(
                f"(Lời nhắc gửi cho người dân dừng ở bước {args.step or flow.start} của “{args.id}” và im lặng "
                f"{hours:g} giờ. Không ghi gì vào thống kê. Gõ số để chọn, Ctrl+D để thoát.)\n"
            )
    elif not args.json:
        start = args.step or flow.start
        print(f"(Xem thử “{args.id}” từ bước {start}. Không ghi gì vào thống kê. Gõ số để chọn, Ctrl+D để thoát.)\n")
    console.run_preview(content, session, first, sys.stdin, sys.stdout, now, as_json=args.json)
    return 0


def _reminder_preview(
    content: engine.Content, proc_id: str, step_id: str, answers: dict[str, str], now: datetime
) -> engine.Result:
    """The reminder a citizen stopped at ``step_id`` gets, as if the silence had already passed (the clock is
    moved forward, the quiet hours are left out: an official sees it at any hour)."""
    from bot.channels import console
    from bot.inflow_eval import start_session

    after = nudge_settings()[0] or 1200 * 60.0
    then = now.timestamp() - after - 60
    session = replace(start_session(content, proc_id, step_id, "", now), answers=answers)
    session = replace(session, last_seen=then, started_at=session.started_at or then)
    run = engine.run_of(session) or ""
    session = replace(session, reminder=f"due:{run}")
    config = engine.EngineConfig(resume_after_seconds=float("inf"), remind_after_seconds=after)
    result = engine.remind(content, session, console.PREVIEW_USER, console.CHANNEL, run, now, config)
    if not result.replies:
        raise BotError(f"Bước “{step_id}” không có lời nhắc (bước kết thúc, hoặc nằm trong một hướng dẫn dùng chung).")
    return result


def cmd_match(args: argparse.Namespace) -> int:
    from bot import match_eval

    content = _load_or_report(_content_dir(args))
    texts = [" ".join(args.text)] if args.text else match_eval.queries(sys.stdin.readlines())
    for text in texts:
        result = content.matcher.match(text)
        if args.json:
            print(json.dumps(match_eval.result_json(text, result), ensure_ascii=False))
            continue
        names = {p.id: p.name for p in content.catalogue.procedures}
        verdict = {"confident": "chắc chắn", "ambiguous": "chưa chắc, hỏi lại", "none": "không thấy thủ tục phù hợp"}
        said = verdict[result.status]
        if result.intent == "law":
            said = "câu hỏi xin tư vấn pháp luật: chỉ nơi hỏi, không mở thủ tục"
        gate = f" (bộ phân loại: {result.gate_score:.2f})" if result.gate_score is not None else ""
        print(f"{text}\n  → {said}{gate}")
        for c in sorted(result.candidates, key=lambda c: -c.score):
            print(f"     {c.score:5.1f}  {c.procedure_id}  ({names.get(c.procedure_id, '')})")
    return 0


# Labelled question files the project ships for measuring; the gate also learns from them.
GATE_DATA: Final = ("dev.tsv", "real-dev.tsv")
PURGE_KEEPS_ACTIVE_SECONDS: Final = 1440 * 60  # sessions touched this recently survive `purge`
MAX_WORKERS: Final = 64
# The channels events are recorded under (each channel module's CHANNEL; a test keeps them in step).
CHANNELS: Final = ("console", "telegram", "zalo-bot", "zalo-oa")
# The report's tables for --table (bot.report.TABLES; a test keeps them in step without importing it here).
REPORT_TABLES: Final = tuple("overview channels trend procedures stages steps reminders unmatched unresolved".split())  # noqa: SIM905


def cmd_train_gate(args: argparse.Namespace) -> int:
    from bot import gate, match_eval

    content_dir = _content_dir(args)
    result = load_content(content_dir)
    catalogue = result.catalogue
    if catalogue is None:
        for problem in result.errors:
            print(problem.format(), file=sys.stderr)
        raise BotError("Nội dung còn lỗi; sửa xong (python -m bot validate) rồi học lại.")
    if catalogue.gate is None:
        raise BotError("procedures.yaml chưa có mục intent_gate (xem docs/authoring.md mục 17).")
    own = gate.content_examples(catalogue.gate.law, catalogue.gate.do, catalogue.procedures)
    shipped = Path(__file__).resolve().parent.parent / "tests" / "data" / "eval"
    files = args.data or [shipped / name for name in GATE_DATA if (shipped / name).is_file()]
    examples = list(own)
    sources = {"procedures.yaml": len(own)}
    for f in files:
        found = gate.tsv_examples([(q.query, "", q.note) for q in match_eval.read_tsv(f)])
        examples += found
        sources[f.name] = len(found)
    trained = gate.train(examples)
    target = content_dir / gate.GATE_FILE
    target.write_text(gate.dumps(trained, gate.data_hash(own), sources), encoding="utf-8")
    law = sum(1 for _, is_law in examples if is_law)
    print(f"Đã học từ {len(examples)} câu ({law} câu xin tư vấn pháp luật, {len(examples) - law} câu làm thủ tục).")
    print(f"Ghi vào {target}.")
    # The files above were learned from, so eval-match on them is optimistic: estimate on unseen
    # questions by learning 5 times, each time without a fifth of the examples, and testing on that fifth.
    caught, law_seen, flagged, do_seen = gate.cross_check(examples)
    print(
        f"Ước lượng trên câu chưa học (kiểm tra chéo 5 phần): nhận ra {100 * caught / max(law_seen, 1):.1f}% "
        f"câu hỏi luật; coi nhầm {100 * flagged / max(do_seen, 1):.1f}% câu muốn làm thủ tục là câu hỏi luật."
    )
    return 0


def cmd_eval_match(args: argparse.Namespace) -> int:
    from bot import match_eval

    content = _load_or_report(_content_dir(args))
    report = match_eval.evaluate(content.matcher, match_eval.read_tsv(args.file))
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(match_eval.format_report(report, show_misses=args.misses))
    if args.baseline is not None:
        try:
            baseline = json.loads(args.baseline.read_text(encoding="utf-8"))["overall"]
        except (OSError, ValueError, KeyError) as exc:
            raise BotError(f"Không đọc được tệp kết quả gốc {args.baseline}: {exc}") from exc
        drops = match_eval.baseline_ok(report, baseline)
        if drops:
            print("Kết quả kém hơn kết quả gốc quá 2 điểm: " + "; ".join(drops), file=sys.stderr)
            return 1
    return 0


def cmd_eval_inflow(args: argparse.Namespace) -> int:
    from bot import inflow_eval

    content = _load_or_report(_content_dir(args))
    report = inflow_eval.evaluate(content, inflow_eval.read_tsv(args.file), vietnam_now())
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(inflow_eval.format_report(report, show_misses=args.misses))
    if args.min:
        try:
            overall, per_category = (float(x) for x in args.min.split(","))
        except ValueError:
            raise UsageError(f"--min cần dạng TỔNG,NHÓM, ví dụ 95,90, không phải “{args.min}”.") from None
        short = inflow_eval.meets(report, overall, per_category)
        if short:
            print("Chưa đạt ngưỡng: " + "; ".join(short), file=sys.stderr)
            return 1
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    schemas = schema.json_schemas()
    if args.write:
        try:
            args.write.mkdir(parents=True, exist_ok=True)
            for name, body in schemas.items():
                (args.write / name).write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BotError(f"Không ghi được vào {args.write}: {exc.strerror}.") from None
        return 0
    print(json.dumps(schemas, ensure_ascii=False, indent=2))
    return 0


def served_config() -> EngineConfig:
    """The engine's settings in a bot process started with this environment (reminders on by default)."""
    after, quiet = nudge_settings()
    return EngineConfig(resume_after_seconds=resume_after_seconds(), remind_after_seconds=after, quiet_hours=quiet)


async def _open_service(args: argparse.Namespace, mode: str) -> Service:
    """Content, database and runner for a bot process, with the reload and rate-limit settings."""
    from bot.service import Service

    return await Service.open(
        _content_dir(args),
        _db_path(args),
        mode=mode,
        reload_interval=reload_seconds(),
        config=served_config(),
        messages_per_minute=messages_per_minute(),
    )


def cmd_run(args: argparse.Namespace) -> int:
    if setting("telegram_token") or setting("zalo_bot_token"):
        return asyncio.run(cmd_run_channels(args))
    chat_args = argparse.Namespace(content=args.content, db=args.db, user="console", json=False)
    return asyncio.run(cmd_chat(chat_args))


async def cmd_run_channels(args: argparse.Namespace) -> int:
    """Long polling on every channel with a token, in one process sharing one database."""
    from bot.channels import telegram, zalo_bot
    from bot.channels.common import stop_on_signals
    from bot.service import one_at_a_time

    service = await _open_service(args, "run")
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        service.start_reloading()
        runner = service.runner
        pollers = []
        # One worker long-polls each platform; others on the same database stand by (one_at_a_time).
        if setting("telegram_token"):
            pollers.append(
                one_at_a_time(
                    service.store,
                    "telegram",
                    lambda halt: telegram.run_polling(
                        runner, setting("telegram_token"), setting("telegram_base_url"), halt
                    ),
                    stop,
                )
            )
        if setting("zalo_bot_token"):
            pollers.append(
                one_at_a_time(
                    service.store,
                    "zalo-bot",
                    lambda halt: zalo_bot.run_polling(
                        runner, setting("zalo_bot_token"), setting("zalo_bot_base_url"), halt
                    ),
                    stop,
                )
            )
        tasks = [asyncio.ensure_future(p) for p in pollers]
        try:
            # One channel failing (a wrong token) stops them all with its one-line error.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await service.close()
    return 0


def _webhook_settings() -> tuple[str, str, bool, str, str]:
    """The channels `serve` takes webhooks for, checked: (Telegram token, Zalo Bot token, Zalo OA on,
    Telegram secret, Zalo Bot secret); a missing or malformed setting is one clear BotError."""
    tg_token, zalo_token = setting("telegram_token"), setting("zalo_bot_token")
    oa_on = bool(setting("zalo_oa_app_id") and setting("zalo_oa_secret_key"))
    if not tg_token and not zalo_token and not oa_on:
        raise BotError(
            "Chưa cấu hình kênh webhook nào: hãy đặt TELEGRAM_BOT_TOKEN và TELEGRAM_WEBHOOK_SECRET, "
            "hoặc ZALO_BOT_TOKEN và ZALO_BOT_WEBHOOK_SECRET, hoặc ZALO_OA_APP_ID và ZALO_OA_SECRET_KEY."
        )
    if oa_on and not (setting("zalo_oa_refresh_token") or setting("zalo_oa_access_token")):
        raise BotError("Zalo OA cần ZALO_OA_REFRESH_TOKEN (hoặc ZALO_OA_ACCESS_TOKEN) và ZALO_OA_APP_SECRET.")
    tg_secret = setting("telegram_webhook_secret")
    if tg_token and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", tg_secret):
        raise BotError("TELEGRAM_WEBHOOK_SECRET phải có 1-256 ký tự, chỉ gồm A-Z a-z 0-9 _ -.")
    zalo_secret = setting("zalo_bot_webhook_secret")
    if zalo_token and not 8 <= len(zalo_secret) <= 256:
        raise BotError("ZALO_BOT_WEBHOOK_SECRET phải dài 8-256 ký tự.")
    return tg_token, zalo_token, oa_on, tg_secret, zalo_secret


def cmd_serve_workers(args: argparse.Namespace) -> int:
    """`serve --workers N`: bind once, check what every worker would check, then supervise N workers."""
    from bot import server, workers

    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers cần từ 1 đến {MAX_WORKERS}, không phải {args.workers}.")
    db = _db_path(args)
    if not is_server(db):
        raise UsageError(
            "--workers từ 2 trở lên cần cơ sở dữ liệu PostgreSQL (--db postgresql://…): "
            "một tệp SQLite chỉ dùng được cho một tiến trình."
        )
    _webhook_settings()  # the usual mistakes are one line here, not one per worker
    _load_or_report(_content_dir(args))
    asyncio.run(_check_database(db))  # unreachable: one line; migrated once, before the workers start
    sock = server.bind_unix(args.socket) if args.socket else server.bind(args.host, args.port)
    # The address (its password) goes to the workers in their environment, not on a command line `ps` shows.
    child_args = ["--content", str(args.content)] if args.content else []
    try:
        return workers.supervise(sock, args.workers, child_args, {"BOT_DB": db})
    finally:
        sock.close()
        if args.socket:
            with contextlib.suppress(OSError):
                os.unlink(args.socket)


async def _check_database(db: str) -> None:
    store = await open_store(db)
    await store.close()


async def cmd_serve(args: argparse.Namespace) -> int:
    from bot import server
    from bot.channels import telegram, zalo_bot, zalo_oa

    tg_token, zalo_token, oa_on, tg_secret, zalo_secret = _webhook_settings()
    in_flight = max_in_flight()
    if args.listen_fd is not None:  # a worker of `serve --workers`: the parent bound the socket
        sock = socket.socket(fileno=args.listen_fd)
        sock.setblocking(False)
    else:  # a busy port fails before anything else happens
        sock = server.bind_unix(args.socket) if args.socket else server.bind(args.host, args.port)
    tg_hook: telegram.TelegramWebhook | None = None
    zalo_client: zalo_bot.ZaloBotClient | None = None
    oa_client: zalo_oa.ZaloOAClient | None = None
    try:
        service = await _open_service(args, "serve")
        try:
            service.start_reloading()  # SIGHUP from `reload` is handled from now on
            if tg_token:
                bot = telegram.build_bot(tg_token, setting("telegram_base_url"))
                tg_hook = telegram.TelegramWebhook(telegram.TelegramChannel(service.runner, bot), tg_secret)
                await tg_hook.start(setting("telegram_webhook_url") or None)
            zalo_hook = None
            if zalo_token:
                zalo_client = zalo_bot.ZaloBotClient(zalo_token, setting("zalo_bot_base_url"))
                await zalo_bot.start_client(zalo_client)
                if setting("zalo_bot_webhook_url"):
                    await zalo_client.set_webhook(setting("zalo_bot_webhook_url"), zalo_secret)
                zalo_channel = zalo_bot.ZaloBotChannel(service.runner, zalo_client)
                await zalo_channel.recover()
                zalo_hook = zalo_bot.ZaloBotWebhook(zalo_channel, zalo_secret)
            oa_channel = None
            if oa_on:
                initial = zalo_oa.OATokens(
                    setting("zalo_oa_access_token"), setting("zalo_oa_refresh_token"), expires_at=0.0
                )
                oa_client = zalo_oa.ZaloOAClient(
                    service.store,
                    setting("zalo_oa_app_id"),
                    setting("zalo_oa_app_secret"),
                    initial,
                    setting("zalo_oa_api_base_url"),
                    setting("zalo_oauth_base_url"),
                    secret=service.runner.secret,
                )
                oa_channel = zalo_oa.ZaloOAChannel(service.runner, oa_client, setting("zalo_oa_secret_key"))
                await oa_channel.recover()
            web = server.WebhookServer(service, tg_hook, zalo_hook, oa_channel, max_in_flight=in_flight)
            await server.serve(web, sock, drain_seconds=drain_seconds(), owner=args.listen_fd is None)
        finally:
            if tg_hook is not None:
                await tg_hook.stop(seconds=0)
            if zalo_client is not None:
                await zalo_client.close()
            if oa_client is not None:
                await oa_client.close()
            await service.close()
    finally:
        sock.close()
    return 0


async def cmd_chat(args: argparse.Namespace) -> int:
    from bot.channels import console

    service = await _open_service(args, "chat")
    try:
        service.start_reloading()
        if args.json:
            await console.run_json(service.runner, args.user, sys.stdin, sys.stdout)
        else:
            await console.run_interactive(service.runner, args.user, sys.stdin, sys.stdout)
    finally:
        await service.close()
    return 0


def _existing_db(args: argparse.Namespace) -> str:
    db = _db_path(args)
    if not is_server(db) and not Path(db).is_file():
        raise BotError(f"Không thấy cơ sở dữ liệu {db}: bot chưa chạy lần nào với tệp này (xem --db hoặc BOT_DB).")
    return db


def _day(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} cần dạng NĂM-THÁNG-NGÀY, ví dụ 2026-11-01, không phải “{text}”.") from None
    return datetime.combine(day, time(0, 0), VIETNAM_TZ).timestamp()


async def cmd_report(args: argparse.Namespace) -> int:
    from bot import report
    from bot.stages import stage_index

    since, until = _day(args.since, "--since"), _day(args.until, "--until")
    content = _load_or_report(_content_dir(args))
    ids = [p.id for p in content.catalogue.procedures]
    if args.procedure is not None and args.procedure not in ids:
        raise UsageError(f"--procedure: không có thủ tục “{args.procedure}”. Các mã có: {', '.join(ids)}.")
    if args.channel is not None and args.channel not in CHANNELS:
        raise UsageError(f"--channel: không có kênh “{args.channel}”. Các kênh: {', '.join(CHANNELS)}.")
    if args.idle_minutes < 0:
        raise UsageError(f"--idle-minutes cần là số phút không âm, không phải {args.idle_minutes}.")
    if since is not None and until is not None and since >= until:
        raise UsageError(f"--since {args.since} phải trước --until {args.until} (--until là ngày không tính vào).")
    if args.table is not None and args.format != "csv":
        raise UsageError("--table chỉ dùng với --format csv (các dạng khác in mọi bảng).")
    if args.compare_versions and args.format == "csv":
        raise UsageError("--compare-versions in dạng bảng, json hoặc html; csv chưa có cho phần so sánh.")
    idle_before = clock.time() - args.idle_minutes * 60
    stages = stage_index(content.catalogue)
    guides = [p.id for p in content.catalogue.procedures if p.is_guide]  # not in the per-day and channel totals
    scope = ReportScope(since, until, args.procedure, args.channel, idle_before, stages=stages, apart=guides)
    store = await open_store(_existing_db(args))
    try:
        if args.compare_versions:
            seen = [v for v, *_ in await store.versions()]
            missing = [v for v in args.compare_versions if v not in seen]
            if missing:
                raise UsageError(
                    f"--compare-versions: nhật ký không có phiên bản “{missing[0]}”. Các phiên bản có: "
                    f"{', '.join(seen) or '(chưa có)'}."
                )
            pair = [await store.analytics(replace(scope, version=v)) for v in args.compare_versions]
        else:
            data = await store.analytics(scope)
    finally:
        await store.close()
    names = {p.id: p.name for p in content.catalogue.procedures}
    filters = {
        "since": args.since,
        "until": args.until,
        "procedure": args.procedure,
        "procedure_name": names.get(args.procedure or ""),
        "channel": args.channel,
        "idle_minutes": args.idle_minutes,
    }
    if args.compare_versions:
        a, b = args.compare_versions
        both = report.compare(
            report.build(content.catalogue, pair[0], filters), report.build(content.catalogue, pair[1], filters), a, b
        )
        if args.format == "json":
            text = json.dumps(both, ensure_ascii=False, indent=2) + "\n"
        elif args.format == "html":
            text = report.compare_html(both)
        else:
            text = report.compare_table(both) + "\n"
        return _emit(text, args.out, "so sánh")
    built = report.build(content.catalogue, data, filters)
    if args.format == "json":
        text = json.dumps(built, ensure_ascii=False, indent=2) + "\n"
    elif args.format == "csv":
        text = report.to_csv(built, args.table or "procedures")
    elif args.format == "html":
        text = report.to_html(built)
    else:
        text = report.to_table(built) + "\n"
    return _emit(text, args.out, "báo cáo")


def parse_age(text: str) -> float:
    """Seconds in "180d", "12w" or "6m" (30-day months)."""
    m = re.fullmatch(r"\s*(\d+)\s*([dwm])\s*", text.lower())
    if not m:
        raise UsageError(f"--older-than cần dạng như 180d, 12w hoặc 6m, không phải “{text}”.")
    if int(m.group(1)) == 0:
        # "0d" would delete the processed-update ids (a redelivered webhook would run twice) and pending replies
        raise UsageError("--older-than phải lớn hơn 0, ví dụ 1d.")
    return int(m.group(1)) * {"d": 1, "w": 7, "m": 30}[m.group(2)] * 86400.0


async def cmd_purge(args: argparse.Namespace) -> int:

    age = parse_age(args.older_than)
    now = clock.time()
    before = now - age
    # A citizen in the middle of a procedure keeps their place, however old the cut-off asked for.
    sessions_before = None if args.include_active else now - PURGE_KEEPS_ACTIVE_SECONDS
    names = {
        "events": "sự kiện",
        "sessions": "phiên trò chuyện",
        "processed_updates": "mã tin đã xử lý",
        "outbox": "tin chờ gửi",
        "oa_windows": "mục theo dõi Zalo OA",
    }

    def listed(counts: dict[str, int]) -> str:
        return ", ".join(f"{counts.get(k, 0)} {v}" for k, v in names.items())

    store = await open_store(_existing_db(args))
    try:
        planned = await store.purge_counts(before, sessions_before)
        print(f"Sẽ xoá dữ liệu cũ hơn {args.older_than.strip()}: {listed(planned)}.")
        if sessions_before is not None and sessions_before < before:
            print("Phiên của người còn trò chuyện trong 1440 phút qua được giữ (thêm --include-active để xoá cả).")
        if not args.yes and not _confirmed("Xoá? Gõ “có” để xoá: "):
            print("Chưa xoá gì. Thêm --yes để xoá không cần hỏi.", file=sys.stderr)
            return 1
        counts = await store.purge(before, sessions_before)
    finally:
        await store.close()
    print(f"Đã xoá dữ liệu cũ hơn {args.older_than.strip()}: {listed(counts)}.")
    return 0


def cmd_migrate_db(args: argparse.Namespace) -> int:
    if not Path(args.source).is_file():
        raise BotError(f"Không thấy tệp SQLite {args.source}.")
    if not is_server(args.target):
        raise UsageError(f"--to cần địa chỉ postgresql://…, không phải “{args.target}”.")
    return asyncio.run(_migrate_db(args))


async def _migrate_db(args: argparse.Namespace) -> int:
    from bot import status
    from bot.storage.move import TABLES, move

    lite = await open_store(args.source)
    try:
        running = [f"tiến trình {i.pid}" for i in await lite.instances() if status.is_running(i)]
    finally:
        await lite.close()
    moved = await move(args.source, args.target, args.force, running)
    names = {
        "sessions": "phiên trò chuyện",
        "events": "sự kiện",
        "processed_updates": "mã tin đã xử lý",
        "content_loads": "lần nạp nội dung",
        "oa_tokens": "cặp token Zalo OA",
        "oa_windows": "mục theo dõi Zalo OA",
        "outbox": "tin chờ gửi",
        "reminders": "lời nhắc đã hẹn",
    }
    listed = ", ".join(f"{moved.counts[t]} {names[t]}" for t, _ in TABLES)
    print(f"Đã chép sang {shown_db(args.target)} và đếm lại từng bảng, khớp: {listed}.")
    if moved.secret_copied:
        print("Khoá bí mật (hash-secret) đã được chép vào cơ sở dữ liệu: mọi tiến trình dùng chung.")
    else:
        print("BOT_HASH_SECRET đang đặt: hãy đặt đúng giá trị đó cho mọi tiến trình dùng PostgreSQL.")
    print(f"Từ giờ chạy bot với --db {shown_db(args.target)} (hoặc BOT_DB); tệp SQLite được giữ nguyên.")
    return 0


def _confirmed(question: str) -> bool:
    """A yes typed at the terminal; no terminal (or end of input) is a no."""
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("có", "co", "c", "yes", "y")


async def cmd_status(args: argparse.Namespace) -> int:
    from bot import status

    store = await open_store(_existing_db(args))
    try:
        report = await status.gather(store)
    finally:
        await store.close()
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(status.format_report(report, shown_db(_db_path(args))))
    return 0 if report.healthy else 1


async def cmd_reload(args: argparse.Namespace) -> int:
    from bot import status

    store = await open_store(_existing_db(args))
    try:
        lines, ok = await status.request_reload(store, wait_seconds=args.timeout)
    finally:
        await store.close()
    print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
