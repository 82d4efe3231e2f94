"""The jobs table as a queue: claiming, fairness, fencing, retries, lease recovery."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from bot.queue import store
from bot.queue.models import BACKGROUND, DEAD, QUEUED, RUNNING, Job


def _enqueue(sessions, user="U1", lane="interactive", team="T1", **kw) -> int:
    with sessions.begin() as session:
        return store.enqueue(session, kind="test", payload={"user": user}, team_id=team, user_id=user, lane=lane, **kw)


def _claim(sessions, limit=1, lease=30.0):
    with sessions.begin() as session:
        return store.claim(session, lease_seconds=lease, limit=limit)


def _job(sessions, job_id) -> Job:
    with sessions() as session:
        return session.get(Job, job_id)


def test_claim_marks_running_and_completion_is_fenced_by_the_lease_token(sessions):
    job_id = _enqueue(sessions)
    [job] = _claim(sessions)
    assert job.id == job_id and job.attempts == 1 and job.lease_token
    assert _job(sessions, job_id).status == RUNNING
    assert _claim(sessions) == []  # nothing else is ready
    with sessions.begin() as session:
        assert not store.complete(session, job_id, "not-the-token")
        assert store.complete(session, job_id, job.lease_token)
        assert not store.complete(session, job_id, job.lease_token)  # only once


def test_users_take_turns_within_a_lane(sessions):
    a = [_enqueue(sessions, user="A") for _ in range(3)]
    b = _enqueue(sessions, user="B")
    c = _enqueue(sessions, user="C")
    first = {job.id for job in _claim(sessions, limit=3)}
    assert first == {a[0], b, c}
    assert {job.id for job in _claim(sessions, limit=3)} == {a[1], a[2]}


def test_interactive_goes_first_but_background_is_not_starved(sessions):
    old_background = _enqueue(sessions, user="M", lane=BACKGROUND)
    fresh_background = _enqueue(sessions, user="N", lane=BACKGROUND)
    interactive = _enqueue(sessions, user="U")
    assert [job.id for job in _claim(sessions)] == [interactive]
    # A background job that has waited longer than BACKGROUND_MAX_WAIT is served before new interactive work.
    with sessions.begin() as session:
        past = datetime.now(UTC) - store.BACKGROUND_MAX_WAIT - timedelta(seconds=5)
        session.execute(update(Job).where(Job.id == old_background).values(run_at=past))
    _enqueue(sessions, user="V")
    assert [job.id for job in _claim(sessions)] == [old_background]
    assert fresh_background not in [job.id for job in _claim(sessions)]


def test_retry_later_hides_the_job_until_its_time(sessions):
    job_id = _enqueue(sessions)
    [job] = _claim(sessions)
    with sessions.begin() as session:
        assert store.retry_later(session, job_id, job.lease_token, error="boom", delay_seconds=30)
    assert _claim(sessions) == []
    row = _job(sessions, job_id)
    assert row.status == QUEUED and row.last_error == "boom" and row.attempts == 1
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(run_at=datetime.now(UTC) - timedelta(seconds=1)))
    [again] = _claim(sessions)
    assert again.attempts == 2


def test_release_gives_the_job_back_without_counting_the_attempt(sessions):
    job_id = _enqueue(sessions)
    [job] = _claim(sessions)
    with sessions.begin() as session:
        assert store.release(session, job_id, job.lease_token)
    [again] = _claim(sessions)
    assert again.id == job_id and again.attempts == 1


def test_expired_lease_is_requeued_and_the_old_holder_cannot_finish(sessions):
    job_id = _enqueue(sessions, max_attempts=2)
    [first] = _claim(sessions, lease=0.01)
    with sessions.begin() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        requeued, dead = store.recover_expired(session)
    assert (requeued, dead) == (1, [])
    [second] = _claim(sessions)
    assert second.lease_token != first.lease_token
    with sessions.begin() as session:
        assert not store.complete(session, job_id, first.lease_token)
    # The second holder dies too: out of attempts, the job is kept, dead, for inspection.
    with sessions.begin() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        requeued, dead = store.recover_expired(session)
    assert requeued == 0 and [job.id for job in dead] == [job_id]
    assert _job(sessions, job_id).status == DEAD


def test_waiting_jobs_are_reported_once(sessions):
    job_id = _enqueue(sessions)
    with sessions.begin() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(created_at=datetime.now(UTC) - timedelta(seconds=30))
        )
        assert [job.id for job in store.jobs_waiting_since(session, older_than_seconds=5)] == [job_id]
        assert store.mark_notified(session, job_id)
        assert not store.mark_notified(session, job_id)
        assert store.jobs_waiting_since(session, older_than_seconds=5) == []


def test_queue_stats(sessions):
    _enqueue(sessions)
    _enqueue(sessions)
    _claim(sessions)
    with sessions() as session:
        stats = store.queue_stats(session)
    assert (stats.queued, stats.running, stats.dead) == (1, 1, 0)
    assert stats.oldest_queued_age_seconds is not None and stats.oldest_queued_age_seconds >= 0


def test_concurrent_claimers_never_share_a_job(sessions):
    total = 300
    with sessions.begin() as session:
        for n in range(total):
            store.enqueue(session, kind="test", payload={}, team_id="T1", user_id=f"U{n % 7}")
    claimed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer():
        try:
            while True:
                jobs = _claim(sessions, limit=3)
                if not jobs:
                    return
                with lock:
                    claimed.extend(job.id for job in jobs)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(claimed) == total
    assert len(set(claimed)) == total


def test_claim_and_recovery_queries_use_the_partial_indexes(postgres_url):
    from bot.db.engine import make_engine, make_session_factory

    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            for n in range(50):
                store.enqueue(session, kind="test", payload={}, team_id="T1", user_id=f"U{n}")
        with sessions.begin() as session:
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in session.execute(
                    text("EXPLAIN SELECT count(*) FROM jobs WHERE jobs.status = 'queued' AND run_at <= now()")
                )
            )
            assert "ix_jobs_" in plan and "Seq Scan" not in plan  # a partial index of the queued jobs
            # The claim reads the fair order from ix_jobs_fair, a few entries per lane (issue 22).
            pick = store.fair_pick(func.now(), 4).compile(engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(row[0] for row in session.execute(text(f"EXPLAIN {pick}")))
            assert "ix_jobs_fair" in plan and "Seq Scan" not in plan
            assert "WindowAgg" not in plan  # no window over the whole backlog any more
            plan = "\n".join(
                row[0]
                for row in session.execute(
                    text("EXPLAIN SELECT id FROM jobs WHERE jobs.status = 'running' AND lease_expires_at < now()")
                )
            )
            assert "ix_jobs_leased" in plan
            # The SQL the claim actually sends carries the same literal predicate.
            compiled = str(
                select(Job.id).where(store.IS_QUEUED).compile(engine, compile_kwargs={"literal_binds": True})
            )
            assert "jobs.status = 'queued'" in compiled
    finally:
        engine.dispose()


@pytest.mark.parametrize("lane", ["urgent", ""])
def test_unknown_lane_is_refused(sessions, lane):
    with pytest.raises(ValueError), sessions.begin() as session:
        store.enqueue(session, kind="t", payload={}, team_id="T1", lane=lane)
