"""Connections as documented: engines never overflow their pool, and `bot check` prints the
budget for the configured concurrency and warns above DATABASE_CONNECTION_LIMIT."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy
from sqlalchemy import text

from bot.cli import run_check
from bot.config import Settings
from bot.db.connections import connection_budget, worker_pool_size
from bot.db.engine import make_engine


@pytest.mark.parametrize(
    ("web", "worker", "limit", "web_dyno", "worker_dyno", "fits"),
    [
        (2, 16, 20, 10, 19, False),  # the defaults do not fit Heroku essential-0
        (2, 6, 20, 10, 9, True),
        (1, 4, 20, 5, 7, True),
        (4, 16, 120, 20, 19, True),
    ],
)
def test_budget_per_dyno(web, worker, limit, web_dyno, worker_dyno, fits):
    budget = connection_budget(web_concurrency=web, worker_concurrency=worker, limit=limit)
    assert (budget.web_dyno, budget.worker_dyno, budget.fits) == (web_dyno, worker_dyno, fits)
    assert str(limit) in budget.describe()


def test_a_postgres_engine_never_opens_more_than_its_pool(postgres_url):
    engine = make_engine(postgres_url, pool_size=worker_pool_size(2))
    engine.pool._timeout = 0.5  # fail fast instead of the default 30 s wait
    held = [engine.connect() for _ in range(worker_pool_size(2))]
    try:
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            engine.connect()
        with held[0].begin():
            backends = (
                held[0]
                .execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"))
                .scalar_one()
            )
        assert backends == len(held)
    finally:
        for connection in held:
            connection.close()
        engine.dispose()


def test_bot_check_prints_the_budget_and_warns_over_the_limit(postgres_url, capsys):
    over = Settings(database_url=postgres_url, worker_concurrency=16, web_concurrency=2, database_connection_limit=20)
    run_check(over)
    line = next(line for line in capsys.readouterr().out.splitlines() if " connections: " in line)
    assert line.startswith("WARN connections: a web dyno uses up to 10 connections and a worker dyno up to 19")
    fits = Settings(database_url=postgres_url, worker_concurrency=4, web_concurrency=1, database_connection_limit=20)
    run_check(fits)
    line = next(line for line in capsys.readouterr().out.splitlines() if " connections: " in line)
    assert line.startswith("OK   connections:") and "to spare" in line


def test_connections_are_released_for_other_threads(postgres_url):
    engine = make_engine(postgres_url, pool_size=1)
    results = []

    def query():
        with engine.connect() as connection:
            results.append(connection.execute(text("SELECT 1")).scalar_one())

    threads = [threading.Thread(target=query) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    engine.dispose()
    assert results == [1, 1, 1, 1]
