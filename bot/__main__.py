"""Entry point for ``python -m bot``; a missing dependency is one line, not a traceback."""

import sys

try:
    from bot.cli import main
except ModuleNotFoundError as exc:  # pragma: no cover - exercised by running without installing
    print(
        f"Lỗi: thiếu thư viện {exc.name}. Hãy cài đặt trước: pip install -e . (xem README).",
        file=sys.stderr,
    )
    raise SystemExit(1) from None

raise SystemExit(main())
