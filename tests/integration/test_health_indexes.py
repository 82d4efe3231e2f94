"""/healthz is cheap (#15): its counts can be answered from partial indexes (the predicates
match them literally, on Postgres), and each web process builds the summary at most once a
second however often it is hit."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from bot.config import Settings
from bot.db.engine import make_engine, make_session_factory
from bot.queue import store
from bot.web import app as web


def test_each_status_count_reads_its_partial_index(postgres_url):
    compiled = []
    engine = make_engine(postgres_url)
    with make_session_factory(engine)() as session:
        connection = session.connection()
        from sqlalchemy import event

        @event.listens_for(connection, "before_cursor_execute")
        def record(_conn, _cursor, statement, parameters, _context, _many):
            compiled.append((statement, parameters))

        store.queue_stats(session)
        event.remove(connection, "before_cursor_execute", record)
        session.execute(text("SET LOCAL enable_seqscan = off"))
        counts = [(s, p) for s, p in compiled if "count(" in s]
        assert len(counts) == 3
        plans = [
            " ".join(session.execute(text("EXPLAIN " + statement), parameters or {}).scalars())
            for statement, parameters in counts
        ]
    engine.dispose()
    # Any partial index whose predicate is the counted status answers the count without the table
    # (the queued jobs have three: the ready order, the fair order and each user's queue).
    partial = [{"ix_jobs_ready", "ix_jobs_fair", "ix_jobs_user_queue"}, {"ix_jobs_leased"}, {"ix_jobs_dead"}]
    for plan, indexes in zip(plans, partial, strict=True):
        assert any(index in plan for index in indexes), plan
        assert "Seq Scan" not in plan, plan


def test_the_summary_is_built_at_most_once_a_second(database_url, monkeypatch):
    calls = []
    real = web.queue_stats
    monkeypatch.setattr(web, "queue_stats", lambda session: calls.append(1) or real(session))
    app = web.create_web_app(Settings(database_url=database_url), warm_up=False)
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
            bodies = [client.get("/healthz").json() for _ in range(20)]
        assert len(calls) == 1 and all(body == bodies[0] for body in bodies)
        monkeypatch.setattr(web, "HEALTH_CACHE_SECONDS", 0.0)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
            client.get("/healthz")
        assert len(calls) == 2
    finally:
        app.engine.dispose()
