"""Parked jobs (bot.queue.parking) on SQLite and PostgreSQL: a job waiting for a person holds no
lease, is never claimed, keeps its attempts, and comes back when woken or when its time is up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.queue import parking, store
from bot.queue.models import QUEUED, Job
from bot.tools import approvals


def test_park_wake_and_time_up(sessions):
    with sessions.begin() as session:
        job_id = store.enqueue(session, kind="reply", payload={}, team_id="T1")
    with sessions.begin() as session:
        [claimed] = store.claim(session, lease_seconds=30)
    with sessions.begin() as session:
        assert parking.park(session, job_id, claimed.lease_token, until=datetime.now(UTC) + timedelta(hours=1))
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.lease_token, job.attempts) == (parking.AWAITING_APPROVAL, None, 0)
    with sessions.begin() as session:
        assert store.claim(session, lease_seconds=30) == []  # waiting is not claimable
        assert parking.wake_due(session) == 0
    with sessions.begin() as session:
        assert parking.wake(session, job_id)
        assert not parking.wake(session, job_id)  # a second click finds it queued
    with sessions() as session:
        assert session.get(Job, job_id).status == QUEUED
    # Parked again, its time runs out: housekeeping wakes it.
    with sessions.begin() as session:
        [claimed] = store.claim(session, lease_seconds=30)
    with sessions.begin() as session:
        parking.park(session, job_id, claimed.lease_token, until=datetime.now(UTC) - timedelta(seconds=1))
    with sessions.begin() as session:
        assert parking.wake_due(session) == 1
        [again] = store.claim(session, lease_seconds=30)
    assert again.id == job_id


def test_only_the_asker_decides_and_only_once(sessions):
    with sessions.begin() as session:
        approval = approvals.request(
            session,
            team_id="T1",
            job_id=1,
            channel_id="C1",
            thread_ts="1.0",
            user_id="U1",
            tool="forget_thread",
            arguments="{}",
            what="forget",
            timeout_seconds=60,
        )
        same = approvals.request(
            session,
            team_id="T1",
            job_id=1,
            channel_id="C1",
            thread_ts="1.0",
            user_id="U1",
            tool="forget_thread",
            arguments="{}",
            what="forget",
            timeout_seconds=60,
        )
        assert same.id == approval.id
    with sessions.begin() as session:
        assert approvals.decide(session, team_id="T2", approval_id=approval.id, clicker="U1", approve=True)[0] == (
            "unknown"
        )  # another workspace's click never reaches it
        assert approvals.decide(session, team_id="T1", approval_id=approval.id, clicker="U2", approve=True)[0] == (
            "not_asker"
        )
        assert approvals.decide(session, team_id="T1", approval_id=approval.id, clicker="U1", approve=False)[0] == (
            "decided"
        )
        assert approvals.decide(session, team_id="T1", approval_id=approval.id, clicker="U1", approve=True)[0] == (
            "settled"
        )
    with sessions.begin() as session:
        other = approvals.request(
            session,
            team_id="T1",
            job_id=2,
            channel_id="C1",
            thread_ts="1.0",
            user_id="U1",
            tool="forget_thread",
            arguments="{}",
            what="forget",
            timeout_seconds=60,
        )
        session.execute(
            update(approvals.ToolApproval)
            .where(approvals.ToolApproval.id == other.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with sessions.begin() as session:
        assert approvals.decide(session, team_id="T1", approval_id=other.id, clicker="U1", approve=True)[0] == (
            "settled"
        )  # too late
