"""Rebuilding a thread from the database: load (SQL) + budget + chat messages, end to end.

    python -m bench.bench_history_load [--runs 5]

Fills a scratch PostgreSQL database with threads of 100, 1,000 and 10,000 messages (two
users, ~400 characters each) and times `load_thread` + `fit_to_budget` + `thread_to_messages`,
median over runs. bench/bench_thread_rebuild.py times the pure part alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

from sqlalchemy import create_engine, insert, text

from bot.config import normalize_database_url
from bot.conversation.budget import fit_to_budget
from bot.conversation.messages import thread_to_messages
from bot.db.engine import make_engine, make_session_factory
from bot.db.migrate import upgrade
from bot.history import engage_thread, load_thread
from bot.history.models import ThreadMessage

ADMIN_URL = normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
SIZES = (100, 1_000, 10_000)
TEXT = ("A fairly ordinary message about the deployment plan, the dyno sizes and the budget. " * 5)[:400]


def admin(statement: str) -> None:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    name = f"bench_history_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        for size in SIZES:
            with sessions.begin() as session:
                engage_thread(session, "T1", f"C{size}", "1000.000000", mid_thread=False)
                session.execute(
                    insert(ThreadMessage),
                    [
                        {
                            "team_id": "T1",
                            "channel_id": f"C{size}",
                            "thread_ts": "1000.000000",
                            "ts": f"{1000 + n}.000000",
                            "seq": 0,
                            "role": "user" if n % 3 else "assistant",
                            "user_id": f"U{n % 2}" if n % 3 else None,
                            "text": TEXT,
                            "edited": False,
                            "deleted": False,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for n in range(size)
                    ],
                )
        print(f"Median of {args.runs} runs, PostgreSQL, ~400-character messages, budget 150,000 tokens.\n")
        print("| messages | load_thread | budget + messages | total |\n|---:|---:|---:|---:|")
        for size in SIZES:
            loads, builds = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                with sessions() as session:
                    # As the reply job does: only the newest text the budget could hold.
                    entries = load_thread(session, "T1", f"C{size}", "1000.000000", newest_chars=150_000 * 4)
                loaded = time.perf_counter()
                budget = fit_to_budget(entries, budget_tokens=150_000, fixed_tokens=6_000)
                thread_to_messages(budget.entries, system_prompt="system")
                loads.append(loaded - started)
                builds.append(time.perf_counter() - loaded)
            load_ms, build_ms = statistics.median(loads) * 1000, statistics.median(builds) * 1000
            print(f"| {size:,} | {load_ms:.1f} ms | {build_ms:.1f} ms | {load_ms + build_ms:.1f} ms |")
        engine.dispose()
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
