"""The agent surface's database side on SQLite and PostgreSQL: Stop requests and the queued
replies they cancel, the stop flag a worker reads, feedback rows and their counts, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.agent.feedback import Trace
from bot.agent.feedback_store import feedback_by_day, feedback_counts, record_feedback
from bot.agent.models import AnswerFeedback, StopRequest
from bot.agent.stops import AnswerStopped, StopFlag, StopKey, StoppableGateway, StopWatch
from bot.config import Settings
from bot.db.clock import db_now
from bot.queue import store as queue
from bot.queue.models import DONE, QUEUED, Job
from bot.retention.policy import cutoffs
from bot.retention.purge import forget_workspace, purge_expired
from bot.slack_app.listeners.agent import STOPPED_ERROR, record_stop

SETTINGS = Settings()


def enqueue_reply(sessions, team: str, channel: str, thread_ts: str) -> int:
    with sessions.begin() as session:
        return queue.enqueue(
            session, kind="reply", payload={"channel": channel, "thread_ts": thread_ts, "ts": thread_ts}, team_id=team
        )


def test_a_stop_finishes_the_threads_queued_replies_only(sessions):
    mine = enqueue_reply(sessions, "T1", "C1", "1.0")
    other_thread = enqueue_reply(sessions, "T1", "C1", "2.0")
    other_team = enqueue_reply(sessions, "T2", "C1", "1.0")
    event = {"type": "agent_session_stopped", "channel": "C1", "thread_ts": "1.0", "user": "U1"}
    assert record_stop(sessions, team_id="T1", event=event, event_id="Ev1") == 1
    assert record_stop(sessions, team_id="T1", event=event, event_id="Ev1") is None  # a redelivery
    with sessions() as session:
        jobs = {job.id: job for job in session.execute(select(Job)).scalars()}
    assert (jobs[mine].status, jobs[mine].last_error) == (DONE, STOPPED_ERROR)
    assert jobs[other_thread].status == QUEUED and jobs[other_team].status == QUEUED
    with sessions.begin() as session:
        claimed = queue.claim(session, lease_seconds=30, limit=10)
    assert sorted(job.id for job in claimed) == sorted([other_thread, other_team])


def test_the_stop_flag_sees_stops_made_after_the_job_began_and_scoped_by_team(sessions):
    with sessions() as session:
        begun = db_now(session)
    watch = StopWatch(sessions)
    flag = StopFlag(watch, StopKey("T1", "C1", "1.0", begun))
    stranger = StopFlag(watch, StopKey("T2", "C1", "1.0", begun))
    assert not flag.is_set(fresh=True)
    record_stop(sessions, team_id="T1", event={"channel": "C1", "thread_ts": "1.0"}, event_id=None)
    assert flag.is_set(fresh=True) and not stranger.is_set(fresh=True)
    with sessions() as session:
        later = db_now(session) + timedelta(seconds=1)
    assert not StopFlag(watch, StopKey("T1", "C1", "1.0", later)).is_set(fresh=True)  # a later question


class _SlowGateway:
    def __init__(self):
        import threading

        self.release = threading.Event()
        self.calls = 0

    def call(self, body, ctx, *, on_text=None):
        self.calls += 1
        if on_text:
            on_text("early ")
        self.release.wait(10)
        if on_text:
            on_text("late")
        return None


def test_a_stopped_model_call_is_abandoned_and_no_call_follows(sessions):
    with sessions() as session:
        begun = db_now(session)
    flag = StopFlag(StopWatch(sessions), StopKey("T1", "C9", "9.0", begun))
    inner, written = _SlowGateway(), []
    gateway = StoppableGateway(inner, flag)
    import threading

    stopper = threading.Timer(
        0.3, lambda: record_stop(sessions, team_id="T1", event={"channel": "C9", "thread_ts": "9.0"}, event_id=None)
    )
    stopper.start()
    with pytest.raises(AnswerStopped):
        gateway.call({}, None, on_text=written.append)
    inner.release.set()
    with pytest.raises(AnswerStopped):
        gateway.call({}, None, on_text=written.append)
    assert inner.calls == 1 and written == ["early "]


def test_feedback_is_kept_once_per_person_and_answer_and_counted(sessions):
    trace = Trace(model="m", prompt_tokens=10, completion_tokens=2, tools=("calculate",), latency_ms=5, attempts=1)
    with sessions.begin() as session:
        assert record_feedback(
            session, team_id="T1", channel_id="C1", answer_ts="1.1", user_id="U1", rating="negative", trace=trace
        )
        assert not record_feedback(
            session, team_id="T1", channel_id="C1", answer_ts="1.1", user_id="U1", rating="positive", trace=trace
        )
        record_feedback(
            session, team_id="T1", channel_id="C1", answer_ts="1.1", user_id="U2", rating="negative", trace=trace
        )
        record_feedback(
            session, team_id="T2", channel_id="C1", answer_ts="1.1", user_id="U1", rating="positive", trace=trace
        )
    since = datetime.now(UTC) - timedelta(days=1)
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(AnswerFeedback)).scalar_one() == 3
        counts = feedback_counts(session, since=since, team_id="T1")
        assert (counts.positive, counts.negative) == (1, 1)
        everyone = feedback_counts(session, since=since)
        assert (everyone.positive, everyone.negative) == (2, 1)
        [(day, per_day)] = feedback_by_day(session, since=since).items()
        assert day == datetime.now(UTC).date().isoformat() and per_day.positive == 2
        row = session.execute(
            select(AnswerFeedback).where(AnswerFeedback.user_id == "U1", AnswerFeedback.team_id == "T1")
        ).scalar_one()
        assert (row.rating, row.tools, row.prompt_tokens) == ("positive", ["calculate"], 10)
    with pytest.raises(ValueError):
        with sessions.begin() as session:
            record_feedback(
                session, team_id="T1", channel_id="C1", answer_ts="1.1", user_id="U3", rating="meh", trace=trace
            )


def test_feedback_and_stops_follow_retention_and_uninstall(sessions):
    trace = Trace(model="m")
    with sessions.begin() as session:
        for team in ("T1", "T2"):
            record_feedback(
                session, team_id=team, channel_id="C1", answer_ts="1.1", user_id="U1", rating="positive", trace=trace
            )
    record_stop(sessions, team_id="T1", event={"channel": "C1", "thread_ts": "1.0"}, event_id=None)
    with sessions.begin() as session:
        while forget_workspace(session, "T2", batch_size=100):
            pass
        teams = set(session.execute(select(AnswerFeedback.team_id)).scalars())
    assert teams == {"T1"}
    future = datetime.now(UTC) + timedelta(days=40)
    with sessions.begin() as session:
        deleted = purge_expired(session, cutoffs(future, 30), batch_size=100)
    assert deleted["feedback"] == 1 and deleted["stop_requests"] == 1
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(StopRequest)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(AnswerFeedback)).scalar_one() == 0


def test_a_reply_waiting_for_a_retry_is_made_due_so_its_worker_can_end_the_session(sessions):
    job_id = enqueue_reply(sessions, "T1", "C5", "5.0")
    with sessions.begin() as session:
        [claimed] = queue.claim(session, lease_seconds=30, limit=1)
        queue.retry_later(session, claimed.id, claimed.lease_token, error="timeout", delay_seconds=600)
    assert record_stop(sessions, team_id="T1", event={"channel": "C5", "thread_ts": "5.0"}, event_id=None) == 1
    with sessions.begin() as session:
        [again] = queue.claim(session, lease_seconds=30, limit=1)
    assert again.id == job_id and again.attempts == 2


def test_a_call_still_waiting_for_admission_gives_up_when_stopped(sessions):
    from bot.inference.gateway import CallContext

    with sessions() as session:
        begun = db_now(session)
    flag = StopFlag(StopWatch(sessions), StopKey("T1", "C8", "8.0", begun))
    seen: list[bool] = []

    class Waiting:
        def call(self, body, ctx, *, on_text=None):
            import time

            while not ctx.should_stop():  # what the limiter does while it waits for capacity
                time.sleep(0.02)
            seen.append(True)
            raise RuntimeError("gave up waiting")

    gateway = StoppableGateway(Waiting(), flag)
    import threading

    threading.Timer(
        0.2, lambda: record_stop(sessions, team_id="T1", event={"channel": "C8", "thread_ts": "8.0"}, event_id=None)
    ).start()
    with pytest.raises(AnswerStopped):
        gateway.call({}, CallContext(team_id="T1", user_id="U1"))
    import time

    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == [True]
