"""`GET /healthz` with a million done jobs: the summary's queries, and the cached answer.

    python -m bench.bench_healthz [--jobs 1000000] [--runs 200]

Fills a scratch PostgreSQL database (BENCH_DATABASE_URL, default the local test server) with
`--jobs` done jobs, 1,000 dead, 20 queued and 4 running, ANALYZEs it, then times the web app's
/healthz in-process (httpx's WSGI transport: routing, queries, JSON): every request rebuilding
the summary from the database (the cache off), then with the one-second cache on. Prints the
median and p99 of each, and the EXPLAIN of the status counts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

import httpx
from sqlalchemy import create_engine, text

from bot.config import Settings, normalize_database_url
from bot.db.migrate import upgrade
from bot.web import app as web

ADMIN_URL = normalize_database_url(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))

FILL = """
INSERT INTO jobs (kind, payload, lane, team_id, user_id, status, attempts, max_attempts, run_at,
                  created_at, started_at, finished_at)
SELECT 'reply', '{}'::jsonb, 'interactive', 'T' || (g % 50), 'U' || (g % 5000), CAST(:status AS varchar), 1, 8,
       now() - interval '1 day', now() - interval '1 day', now() - interval '1 day',
       CASE WHEN CAST(:status AS varchar) IN ('done', 'dead') THEN now() - interval '1 day' END
FROM generate_series(1, CAST(:n AS integer)) AS g
"""


def admin(statement: str) -> None:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def timed(client: httpx.Client, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/healthz")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return timings


def describe(label: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{label}: median {statistics.median(ordered):.2f} ms, p99 {p99:.2f} ms over {len(ordered)} requests"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    name = f"bench_healthz_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        filler = create_engine(url)
        with filler.begin() as connection:
            for status, n in (("done", args.jobs), ("dead", 1000), ("queued", 20), ("running", 4)):
                connection.execute(text(FILL), {"status": status, "n": n})
        with filler.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE jobs"))
            for status in ("queued", "running", "dead"):
                plan = connection.execute(
                    text(f"EXPLAIN SELECT count(*) FROM jobs WHERE jobs.status = '{status}'")
                ).scalars()
                print(f"plan ({status}): " + " / ".join(line.strip() for line in plan))
            before = []  # the query /healthz ran before #15, for comparison
            for _ in range(20):
                started = time.perf_counter()
                connection.execute(
                    text(
                        "SELECT status, count(*) FROM jobs WHERE status IN ('queued', 'running', 'dead') "
                        "GROUP BY status"
                    )
                ).all()
                before.append((time.perf_counter() - started) * 1000)
            print(describe("the former GROUP BY status count alone", before))
        filler.dispose()
        app = web.create_web_app(Settings(database_url=url), warm_up=False)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
            print(client.get("/healthz").json()["queue"])
            web.HEALTH_CACHE_SECONDS = 0.0
            timed(client, 10)  # warm the pool
            print(describe(f"/healthz, {args.jobs:,} done jobs, summary rebuilt each time", timed(client, args.runs)))
            web.HEALTH_CACHE_SECONDS = 1.0
            print(describe("/healthz, cached summary (1 s)", timed(client, args.runs)))
        app.engine.dispose()
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
