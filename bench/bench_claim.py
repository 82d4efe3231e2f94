"""Claim latency with a large backlog (issue 22): 100,000 jobs waiting, goal p50 <= 5 ms.

A scratch PostgreSQL database is migrated and filled with `--jobs` queued jobs from `--users`
people (90 % interactive, 10 % background, rounds as `enqueue` gives them), then a claim of
`--limit` jobs (what a worker asks for when slots free) is timed `--runs` times, each in a
transaction rolled back so the backlog stays the same. Also timed: `enqueue` (its two indexed
lookups), the queue-feedback pass (`waiting_positions`) and, for comparison, the claim as it
was before (a window over the whole ready backlog, then a sort).

    python -m bench.bench_claim [--jobs 100000] [--users 5000] [--runs 200] [--limit 4]

The admin URL is $BENCH_ADMIN_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

from sqlalchemy import case, create_engine, func, literal_column, select, text

from bot.db.engine import make_engine, make_session_factory
from bot.db.migrate import upgrade
from bot.queue import store
from bot.queue.models import INTERACTIVE, Job


def old_claim_ids(session, limit: int) -> list[int]:
    """The claim's pick before issue 22: each user's turn by a window over every ready job."""
    now = func.now()
    is_queued = literal_column("jobs.status") == literal_column("'queued'")
    turns = (
        select(
            Job.id.label("id"),
            func.row_number()
            .over(partition_by=(Job.lane, Job.team_id, Job.user_id), order_by=(Job.run_at, Job.id))
            .label("turn"),
        )
        .where(is_queued, Job.run_at <= now)
        .cte("turns")
    )
    priority = case((Job.lane == INTERACTIVE, 0), (Job.run_at <= now - store.BACKGROUND_MAX_WAIT, 0), else_=1)
    picked = (
        select(Job.id)
        .join(turns, turns.c.id == Job.id)
        .where(is_queued)
        .order_by(priority, turns.c.turn, Job.run_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Job)
    )
    return list(session.execute(picked).scalars())


def claim_sql(engine, limit: int) -> str:
    """The claim's pick as SQL text, with the database's clock as `now`."""
    pick = store.fair_pick(func.now(), limit)
    return str(pick.compile(engine, compile_kwargs={"literal_binds": True}))


def fill(sessions, jobs: int, users: int) -> None:
    with sessions.begin() as session:
        session.execute(
            text(
                "INSERT INTO jobs (kind, payload, lane, team_id, user_id, status, attempts, max_attempts, run_at, "
                "created_at, fair_key) "
                "SELECT 'reply', '{}', CASE WHEN g % 10 = 0 THEN 'background' ELSE 'interactive' END, 'T1', "
                "'U' || (g % :users), 'queued', 0, 5, now() - interval '1 minute' + g * interval '1 millisecond', "
                "now(), g / :users + 1 FROM generate_series(1, :jobs) AS g"
            ),
            {"users": users, "jobs": jobs},
        )
    with sessions.begin() as session:
        session.execute(text("ANALYZE jobs"))


def timed(function, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def describe(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(f"{name}: p50 {statistics.median(samples):.2f} ms, p95 {p95:.2f} ms ({len(samples)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args()
    admin = os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"bench_claim_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(
        admin.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin_engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    try:
        upgrade(url)
        sessions = make_session_factory(engine)
        fill(sessions, args.jobs, args.users)
        print(f"{args.jobs:,} jobs waiting from {args.users:,} people; claims of {args.limit}")

        def claim_once() -> None:
            with sessions() as session:
                assert len(store.claim(session, lease_seconds=60, limit=args.limit)) == args.limit
                session.rollback()

        def old_claim_once() -> None:
            with sessions() as session:
                assert len(old_claim_ids(session, args.limit)) == args.limit
                session.rollback()

        def enqueue_once() -> None:
            with sessions() as session:
                store.enqueue(session, kind="reply", payload={}, team_id="T1", user_id="U7")
                session.rollback()

        def positions_once() -> None:
            with sessions() as session:
                store.waiting_positions(session, older_than_seconds=0)

        timed(claim_once, 10)  # warm the cache
        describe("claim (now)", timed(claim_once, args.runs))
        describe("enqueue (now)", timed(enqueue_once, args.runs))
        describe("queue feedback pass, waiting_positions (now)", timed(positions_once, max(10, args.runs // 10)))
        describe("claim (before)", timed(old_claim_once, max(10, args.runs // 10)))
        with sessions() as session:
            plan = [row[0] for row in session.execute(text("EXPLAIN ANALYZE " + claim_sql(engine, args.limit)))]
        print("plan:\n  " + "\n  ".join(plan))
    finally:
        engine.dispose()
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


if __name__ == "__main__":
    main()
