"""Retention covers everything (#15), on SQLite and PostgreSQL: moderation decisions follow
RETENTION_DAYS and go with an uninstalled workspace; greetings are remembered per user for as
long as the installation lasts, while other idempotency keys expire after two days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bot.idempotency.models import IdempotencyKey
from bot.idempotency.store import claim_once, event_key, greeting_key
from bot.moderation.models import ModerationChannel, ModerationDecision
from bot.moderation.store import set_channel_switch
from bot.retention.policy import cutoffs
from bot.retention.purge import forget_workspace, purge_expired

NOW = datetime.now(UTC)


def decision(team: str, file_id: str, *, at: datetime) -> ModerationDecision:
    return ModerationDecision(
        team_id=team,
        channel_id="C1",
        message_ts="1.0",
        user_id="U1",
        file_id=file_id,
        file_name="secret-plans.png",
        permalink="https://example.slack.com/files/U1/F1",
        verdict="flag",
        categories=["scam"],
        reason="looks like a scam",
        action="reported",
        created_at=at,
    )


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def purge_all(sessions, retention_days: int) -> None:
    with sessions.begin() as session:
        purge_expired(session, cutoffs(datetime.now(UTC), retention_days), batch_size=100)


def test_moderation_decisions_follow_retention_days(sessions):
    with sessions.begin() as session:
        session.add(decision("T1", "FOLD", at=NOW - timedelta(days=40)))
        session.add(decision("T1", "FNEW", at=NOW - timedelta(days=1)))
    purge_all(sessions, retention_days=30)
    with sessions() as session:
        assert list(session.execute(select(ModerationDecision.file_id)).scalars()) == ["FNEW"]
    purge_all(sessions, retention_days=0)  # 0 keeps them
    assert count(sessions, ModerationDecision) == 1


def test_greetings_outlive_the_idempotency_window_but_not_the_installation(sessions):
    with sessions.begin() as session:
        assert claim_once(session, "T1", greeting_key("U1"))
        assert claim_once(session, "T1", event_key("Ev1"))
        assert claim_once(session, "T2", greeting_key("U1"))
        session.execute(update(IdempotencyKey).values(created_at=NOW - timedelta(days=90)))
    purge_all(sessions, retention_days=30)
    with sessions() as session:
        keys = set(session.execute(select(IdempotencyKey.team_id, IdempotencyKey.key)).all())
    assert keys == {("T1", greeting_key("U1")), ("T2", greeting_key("U1"))}
    with sessions.begin() as session:  # the user is still greeted only once
        assert not claim_once(session, "T1", greeting_key("U1"))
    while True:
        with sessions.begin() as session:
            if forget_workspace(session, "T1", batch_size=10) == 0:
                break
    assert count(sessions, IdempotencyKey, IdempotencyKey.team_id == "T1") == 0
    assert count(sessions, IdempotencyKey, IdempotencyKey.team_id == "T2") == 1


def test_an_uninstalled_workspace_takes_its_moderation_data_along(sessions):
    with sessions.begin() as session:
        session.add(decision("TGONE", "F1", at=NOW))
        session.add(decision("TSTAY", "F1", at=NOW))
        set_channel_switch(session, "TGONE", "C1", enabled=True, user_id="UADMIN")
        set_channel_switch(session, "TSTAY", "C1", enabled=True, user_id="UADMIN")
    while True:
        with sessions.begin() as session:
            if forget_workspace(session, "TGONE", batch_size=1) == 0:
                break
    assert count(sessions, ModerationDecision, ModerationDecision.team_id == "TGONE") == 0
    assert count(sessions, ModerationChannel, ModerationChannel.team_id == "TGONE") == 0
    assert count(sessions, ModerationDecision, ModerationDecision.team_id == "TSTAY") == 1
    assert count(sessions, ModerationChannel, ModerationChannel.team_id == "TSTAY") == 1
