"""Retention on SQLite and PostgreSQL: old data is purged in batches, recent data stays, and a
departed workspace's data goes entirely while other workspaces keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bot.history import store as history
from bot.history.models import MessageImage, SlackUser, Thread, ThreadMessage
from bot.idempotency.models import IdempotencyKey
from bot.idempotency.store import claim_once
from bot.limits.models import TokenUsage
from bot.queue import store as queue
from bot.queue.models import DONE, Job
from bot.retention.policy import cutoffs
from bot.retention.purge import forget_workspace, purge_expired
from bot.retention.tasks import RetentionTask
from bot.slack.oauth_tables import oauth_states

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)


def seed(sessions, team: str, channel: str, thread: str, *, at: datetime) -> None:
    """A thread with a user message + image, the bot's answer, a cached user, a key and a finished job."""
    with sessions.begin() as session:
        history.engage_thread(session, team, channel, thread, mid_thread=False)
        history.upsert_message(
            session, team_id=team, channel_id=channel, thread_ts=thread, ts=thread, user_id="U1", text="old words"
        )
        message_id = session.execute(
            select(ThreadMessage.id).where(ThreadMessage.team_id == team, ThreadMessage.ts == thread)
        ).scalar_one()
        session.add(MessageImage(message_id=message_id, file_id="F1", media_type="image/png", data=b"x"))
        history.record_turn(
            session,
            team_id=team,
            channel_id=channel,
            thread_ts=thread,
            answers_ts=thread,
            entries=[{"role": "assistant", "text": "answer"}],
        )
        history.save_user(
            session, team_id=team, user_id="U1", display_name="A", is_admin=False, is_bot=False, timezone=None
        )
        claim_once(session, team, f"event:{team}{thread}")
        job_id = queue.enqueue(session, kind="reply", payload={}, team_id=team)
        session.execute(update(Job).where(Job.id == job_id).values(status=DONE, finished_at=at, created_at=at))
        session.add(
            TokenUsage(
                team_id=team, user_id=f"U{thread}", day=at.date(), requests=1, prompt_tokens=5, completion_tokens=5
            )
        )
        # Age everything to `at`.
        session.execute(update(ThreadMessage).where(ThreadMessage.thread_ts == thread).values(created_at=at))
        session.execute(update(Thread).where(Thread.thread_ts == thread).values(last_activity_at=at))
        session.execute(update(SlackUser).where(SlackUser.team_id == team).values(fetched_at=at))
        session.execute(update(IdempotencyKey).where(IdempotencyKey.team_id == team).values(created_at=at))


def counts(sessions, team: str) -> dict[str, int]:
    with sessions() as session:

        def n(model, *where):
            return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

        return {
            "messages": n(ThreadMessage, ThreadMessage.team_id == team),
            "images": n(
                MessageImage, MessageImage.message_id.in_(select(ThreadMessage.id).where(ThreadMessage.team_id == team))
            ),
            "orphan_images": n(MessageImage, MessageImage.message_id.not_in(select(ThreadMessage.id))),
            "threads": n(Thread, Thread.team_id == team),
            "users": n(SlackUser, SlackUser.team_id == team),
            "keys": n(IdempotencyKey, IdempotencyKey.team_id == team),
            "jobs": n(Job, Job.team_id == team),
            "usage": n(TokenUsage, TokenUsage.team_id == team),
        }


def test_purge_removes_only_what_is_older_than_the_window(sessions):
    seed(sessions, "TOLD", "C1", "100.000001", at=OLD)
    seed(sessions, "TNEW", "C1", "200.000001", at=NOW - timedelta(days=1))
    with sessions.begin() as session:
        session.execute(oauth_states.insert().values(state="gone", expire_at=datetime(2000, 1, 1)))
        session.execute(oauth_states.insert().values(state="live", expire_at=datetime(2999, 1, 1)))

    with sessions.begin() as session:
        deleted = purge_expired(session, cutoffs(NOW, 30), batch_size=100)
    assert deleted["messages"] == 2 and deleted["threads"] == 1 and deleted["jobs"] == 1
    assert counts(sessions, "TOLD") == {
        "messages": 0,
        "images": 0,
        "orphan_images": 0,
        "threads": 0,
        "users": 0,
        "keys": 0,
        "jobs": 0,
        "usage": 1,
    }
    assert counts(sessions, "TNEW") == {
        "messages": 2,
        "images": 1,
        "orphan_images": 0,
        "threads": 1,
        "users": 1,
        "keys": 1,
        "jobs": 1,
        "usage": 1,
    }
    with sessions() as session:
        assert list(session.execute(select(oauth_states.c.state)).scalars()) == ["live"]


def test_zero_days_keeps_history(sessions):
    seed(sessions, "TOLD", "C1", "100.000001", at=OLD)
    with sessions.begin() as session:
        purge_expired(session, cutoffs(NOW, 0), batch_size=100)
    left = counts(sessions, "TOLD")
    assert left["messages"] == 2 and left["threads"] == 1 and left["keys"] == 0  # keys expire regardless


def test_the_task_purges_in_small_batches_until_done(sessions):
    for i in range(5):
        seed(sessions, "TOLD", f"C{i}", f"10{i}.000001", at=OLD)
    now = [0.0]
    task = RetentionTask(sessions, 30, interval=300, batch_size=2, max_batches=2, clock=lambda: now[0])
    task()
    assert counts(sessions, "TOLD")["messages"] == 6  # two batches of two messages
    task()  # not due yet: the run stopped at its batch limit, the next comes after a short pause
    assert counts(sessions, "TOLD")["messages"] == 6
    for _ in range(5):
        now[0] += 6
        task()
    assert counts(sessions, "TOLD") == {
        "messages": 0,
        "images": 0,
        "orphan_images": 0,
        "threads": 0,
        "users": 0,
        "keys": 0,
        "jobs": 0,
        "usage": 5,  # usage counts stay
    }


def test_forgetting_a_workspace_leaves_the_others_and_the_running_job(sessions):
    seed(sessions, "TGONE", "C1", "300.000001", at=NOW)
    seed(sessions, "TGONE", "C2", "301.000001", at=NOW)
    seed(sessions, "TSTAY", "C1", "300.000001", at=NOW)  # same channel and ts, other workspace
    with sessions.begin() as session:
        queued = queue.enqueue(session, kind="reply", payload={}, team_id="TGONE")
        own = queue.enqueue(session, kind="forget_workspace", payload={}, team_id="TGONE")
    while True:
        with sessions.begin() as session:
            if forget_workspace(session, "TGONE", batch_size=1, keep_job_id=own) == 0:
                break
    left = counts(sessions, "TGONE")
    assert left == {
        "messages": 0,
        "images": 0,
        "orphan_images": 0,
        "threads": 0,
        "users": 0,
        "keys": 0,
        "jobs": 1,
        "usage": 2,
    }
    with sessions() as session:
        assert session.get(Job, queued) is None and session.get(Job, own) is not None
    assert counts(sessions, "TSTAY") == {
        "messages": 2,
        "images": 1,
        "orphan_images": 0,
        "threads": 1,
        "users": 1,
        "keys": 1,
        "jobs": 1,
        "usage": 1,
    }
