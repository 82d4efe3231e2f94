"""Rebuilding a thread from the database, end to end, as the reply job does it.

    python -m bench.bench_history_load [--runs 7]

Fills a scratch PostgreSQL database with threads of 100, 1,000 and 10,000 messages (two
users and the bot, ~400 characters each, one message in 25 with a ~50 kB image already
prepared), written with their token estimates as the bot writes them, and times the reply
job's path: `newest_rows` (the rows the budget can hold, picked by the database),
`load_window` (those rows, their attachments, image bytes for the newest ten only, names),
`fit_to_budget` and `thread_to_messages`; median over runs. Budget 150,000 tokens.
bench/bench_thread_rebuild.py times the pure part alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import create_engine, insert, select, text

from bot.config import normalize_database_url
from bot.conversation.budget import fit_to_budget, stored_tokens
from bot.conversation.window import load_window, newest_rows
from bot.db.engine import make_engine, make_session_factory
from bot.db.migrate import upgrade
from bot.history.estimates import attachment_parts, bare_entry
from bot.history.messages import thread_to_messages
from bot.history.models import MessageImage, ThreadMessage
from bot.history.store import engage_thread, refresh_tokens

ADMIN_URL = normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
SIZES = (100, 1_000, 10_000)
BUDGET = 150_000
MAX_IMAGES = 10
IMAGE_EVERY = 25
TEXT = ("A fairly ordinary message about the deployment plan, the dyno sizes and the budget. " * 5)[:400]
IMAGE = b"\xff\xd8\xff" + os.urandom(50_000)


def admin(statement: str) -> None:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def fill(sessions, size: int, now: datetime) -> None:
    channel = f"C{size}"
    rows = []
    for n in range(size):
        role = "user" if n % 3 else "assistant"
        files = [{"id": f"F{n}", "name": f"shot{n}.jpg", "mimetype": "image/jpeg"}] if n % IMAGE_EVERY == 1 else None
        row = {
            "team_id": "T1",
            "channel_id": channel,
            "thread_ts": "1000.000000",
            "ts": f"{1000 + n}.000000",
            "seq": 0,
            "role": role,
            "user_id": f"U{n % 2}" if role == "user" else None,
            "text": TEXT,
            "files": files,
            "edited": False,
            "deleted": False,
            "created_at": now,
            "updated_at": now,
        }
        entry_row = type("Row", (), {**row, "tool_calls": None, "tool_call_id": None})
        row["tokens"] = stored_tokens(bare_entry(entry_row, attachment_parts(files, ())))
        rows.append(row)
    with sessions.begin() as session:
        engage_thread(session, "T1", channel, "1000.000000", mid_thread=False)
        session.execute(insert(ThreadMessage), rows)
        with_files = [
            (i, f)
            for i, f in session.execute(
                select(ThreadMessage.id, ThreadMessage.files).where(ThreadMessage.channel_id == channel)
            )
            if f
        ]
        session.execute(
            insert(MessageImage),
            [
                {
                    "message_id": i,
                    "file_id": f[0]["id"],
                    "media_type": "image/jpeg",
                    "data": IMAGE,
                    "width": 1568,
                    "height": 1176,
                }
                for i, f in with_files
            ],
        )
        refresh_tokens(session, [i for i, _ in with_files])  # as the attachment resolver does


def rebuild(sessions, size: int) -> tuple[float, float, int, int]:
    started = time.perf_counter()
    with sessions() as session:
        # As the reply job does when no new file is to be read: one window query, then its attachments.
        window = newest_rows(session, "T1", f"C{size}", "1000.000000", budget_tokens=BUDGET)
        entries, _ = load_window(
            session, "T1", f"C{size}", "1000.000000", budget_tokens=BUDGET, max_images=MAX_IMAGES, window=window
        )
    loaded = time.perf_counter()
    budget = fit_to_budget(entries, budget_tokens=BUDGET, fixed_tokens=6_000)
    messages = thread_to_messages(budget.entries, system_prompt="system", max_images=MAX_IMAGES)
    done = time.perf_counter()
    images = sum(
        1 for m in messages if isinstance(m.get("content"), list) for p in m["content"] if p.get("type") == "image_url"
    )
    return loaded - started, done - loaded, len(budget.entries), images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    name = f"bench_history_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        now = datetime.now(UTC)
        for size in SIZES:
            fill(sessions, size, now)
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
        print(
            f"Median of {args.runs} runs, PostgreSQL, ~400-character messages, an image in {IMAGE_EVERY}, "
            f"budget {BUDGET:,} tokens, at most {MAX_IMAGES} images.\n"
        )
        print("| messages | sent entries | images sent | load (SQL) | budget + messages | total |")
        print("|---:|---:|---:|---:|---:|---:|")
        for size in SIZES:
            rebuild(sessions, size)  # warm the connection pool and caches once
            runs = [rebuild(sessions, size) for _ in range(args.runs)]
            load_ms = statistics.median(r[0] for r in runs) * 1000
            build_ms = statistics.median(r[1] for r in runs) * 1000
            total_ms = statistics.median(r[0] + r[1] for r in runs) * 1000
            sent, images = runs[0][2], runs[0][3]
            print(f"| {size:,} | {sent:,} | {images} | {load_ms:.1f} ms | {build_ms:.1f} ms | {total_ms:.1f} ms |")
        engine.dispose()
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
