"""`migrate-db`: a SQLite bot moved to PostgreSQL keeps every citizen's place, its history and its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import ContentHolder
from bot.engine import Content
from bot.errors import BotError
from bot.runner import Incoming, Runner
from bot.settings import hash_secret
from bot.storage import OATokens
from tests.conftest import GOOD, NOW, open_store
from tests.test_cli import run


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_sqlite_bot_moved_to_postgresql_carries_on_where_it_was(
    db_url: str, tmp_path: Path, content: Content
) -> None:
    source = tmp_path / "var" / "bot.db"
    lite = await open_store(str(source))
    secret = hash_secret(str(source))  # made next to the file, as the bot does at its first start
    runner = Runner(ContentHolder(content, GOOD), lite, secret, clock=lambda: NOW)
    for i, text in enumerate(["dk tam tru cho nguoi thue tro", "1"]):
        await runner.handle_for_delivery(Incoming("zalo-oa", "citizen-1", text=text, event_id=f"m{i}"))
    await runner.handle_for_delivery(Incoming("zalo-oa", "citizen-2", text="khai sinh", event_id="m9"))
    await lite.save_oa_tokens(OATokens("sealed-access", "sealed-refresh", 123.0, "R0"))
    await lite.open_oa_window("k", 50.0)
    events, sessions_before = await lite.events(), await lite.load_session(runner.key("zalo-oa", "citizen-1"))
    pending = await lite.outbox_pending("zalo-oa")
    await lite.close()
    assert len(pending) == 3, "three turns' replies were never delivered"

    moved = run("migrate-db", "--from", str(source), "--to", db_url)
    assert moved.returncode == 0, moved.stderr
    assert "khớp: 2 phiên trò chuyện, " in moved.stdout and "3 mã tin đã xử lý" in moved.stdout
    assert "3 tin chờ gửi" in moved.stdout and "Khoá bí mật (hash-secret) đã được chép" in moved.stdout

    server = await open_store(db_url)
    try:
        assert await server.shared_secret() == secret, "citizens keep the same pseudonymous keys"
        assert await server.load_session(runner.key("zalo-oa", "citizen-1")) == sessions_before
        copied = await server.events()
        assert [(e["id"], e["type"], e["detail"]) for e in copied] == [
            (e["id"], e["type"], e["detail"]) for e in events
        ]
        assert await server.oa_tokens() == OATokens("sealed-access", "sealed-refresh", 123.0, "R0")
        assert (await server.oa_window("k")) is not None
        assert await server.is_processed("zalo-oa", "m1")
        assert [o for _, o in await server.outbox_pending("zalo-oa")] == [o for _, o in pending]
        # the citizen goes on, on PostgreSQL, with the same key: the next step follows the copied one
        runner = Runner(ContentHolder(content, GOOD), server, await server.shared_secret(), clock=lambda: NOW)
        again = await runner.handle_for_delivery(Incoming("zalo-oa", "citizen-1", text="1", event_id="m1"))
        assert again is None, "an update done before the move is not done again"
        later = await runner.handle_for_delivery(Incoming("zalo-oa", "citizen-1", text="tiếp", event_id="m2"))
        assert later is not None and max(e["id"] for e in await server.events()) > max(e["id"] for e in events)
    finally:
        await server.close()

    refused = run("migrate-db", "--from", str(source), "--to", db_url)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "đã có dữ liệu" in refused.stderr and "--force" in refused.stderr
    forced = run("migrate-db", "--from", str(source), "--to", db_url, "--force")
    assert forced.returncode == 0, forced.stderr
    server = await open_store(db_url)
    try:
        assert len(await server.events()) == len(events), "replaced, not added to"
    finally:
        await server.close()


async def test_moving_refuses_a_bot_still_running_and_a_file_without_its_secret(tmp_path: Path) -> None:
    from bot.storage.move import move

    with pytest.raises(BotError, match="Bot vẫn đang chạy"):
        await move(str(tmp_path / "bot.db"), "postgresql://x@/y", force=False, running=["tiến trình 7"])
    source = tmp_path / "bot.db"
    lite = await open_store(str(source))
    await lite.close()
    no_secret = run("migrate-db", "--from", str(source), "--to", "postgresql://bot@/dvc?host=/nonexistent")
    assert no_secret.returncode == 1 and "Không thấy tệp hash-secret" in no_secret.stderr
    not_server = run("migrate-db", "--from", str(source), "--to", str(tmp_path / "other.db"))
    assert not_server.returncode == 2 and "--to cần địa chỉ postgresql://" in not_server.stderr
