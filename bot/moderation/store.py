"""Moderation in the database: channel switches, decisions, moderator clicks, the summary.

Every function works inside the caller's session; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.db.clock import db_now
from bot.db.dialect import insert as dialect_insert
from bot.moderation.models import ModerationChannel, ModerationDecision, ModerationReportProblem, ModerationSettings
from bot.moderation.report import DecisionView
from bot.moderation.verdict import Verdict
from bot.moderation.workspace import StoredSettings


def workspace_settings(session: Session, team_id: str) -> StoredSettings | None:
    row = session.get(ModerationSettings, team_id)
    return StoredSettings(row.report_channel, row.admin_user_token) if row else None


def set_workspace_setting(session: Session, team_id: str, *, user_id: str, **values: str | None) -> None:
    """Set `report_channel` and/or `admin_user_token` (None clears) for the workspace."""
    insert = dialect_insert(session)
    values = {**values, "changed_by": user_id, "changed_at": db_now(session)}
    session.execute(
        insert(ModerationSettings)
        .values(team_id=team_id, **values)
        .on_conflict_do_update(index_elements=[ModerationSettings.team_id], set_=values)
    )


def flag_report_problem(session: Session, team_id: str, channel_id: str, error: str) -> bool:
    """Remember that reports to ``channel_id`` fail with ``error``; True only the first time
    (for this channel and error, across concurrent jobs), so it is logged once."""
    values = {"channel_id": channel_id, "error": error[:64], "seen_at": db_now(session)}
    inserted = session.execute(
        dialect_insert(session)(ModerationReportProblem)
        .values(team_id=team_id, **values)
        .on_conflict_do_nothing(index_elements=[ModerationReportProblem.team_id])
        .returning(ModerationReportProblem.team_id)
    ).scalar_one_or_none()
    if inserted is not None:
        return True
    changed = session.execute(
        update(ModerationReportProblem)
        .where(
            ModerationReportProblem.team_id == team_id,
            or_(ModerationReportProblem.channel_id != channel_id, ModerationReportProblem.error != values["error"]),
        )
        .values(**values)
        .returning(ModerationReportProblem.team_id)
    ).scalar_one_or_none()
    return changed is not None


def report_problem(session: Session, team_id: str) -> ModerationReportProblem | None:
    return session.get(ModerationReportProblem, team_id)


def report_problems(session: Session) -> list[ModerationReportProblem]:
    return list(session.execute(select(ModerationReportProblem).order_by(ModerationReportProblem.team_id)).scalars())


def clear_report_problem(session: Session, team_id: str) -> None:
    row = session.get(ModerationReportProblem, team_id)
    if row is not None:
        session.delete(row)


def channel_switch(session: Session, team_id: str, channel_id: str) -> bool | None:
    """The stored `/moderation on|off` for the channel, None when nobody switched it."""
    return session.execute(
        select(ModerationChannel.enabled).where(
            ModerationChannel.team_id == team_id, ModerationChannel.channel_id == channel_id
        )
    ).scalar_one_or_none()


def set_channel_switch(session: Session, team_id: str, channel_id: str, *, enabled: bool, user_id: str) -> None:
    insert = dialect_insert(session)
    values = {"enabled": enabled, "changed_by": user_id, "changed_at": db_now(session)}
    session.execute(
        insert(ModerationChannel)
        .values(team_id=team_id, channel_id=channel_id, **values)
        .on_conflict_do_update(index_elements=[ModerationChannel.team_id, ModerationChannel.channel_id], set_=values)
    )


def find_decision(session: Session, team_id: str, file_id: str) -> ModerationDecision | None:
    return session.execute(
        select(ModerationDecision).where(ModerationDecision.team_id == team_id, ModerationDecision.file_id == file_id)
    ).scalar_one_or_none()


def get_decision(session: Session, decision_id: int) -> ModerationDecision | None:
    return session.get(ModerationDecision, decision_id)


@dataclass(frozen=True)
class Subject:
    """The file a decision is about, from the job's payload."""

    team_id: str
    channel_id: str
    message_ts: str
    user_id: str
    file_id: str
    file_name: str
    permalink: str | None


def save_decision(
    session: Session,
    subject: Subject,
    verdict: Verdict,
    *,
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    action: str,
) -> ModerationDecision:
    decision = ModerationDecision(
        team_id=subject.team_id,
        channel_id=subject.channel_id,
        message_ts=subject.message_ts,
        user_id=subject.user_id,
        file_id=subject.file_id,
        file_name=subject.file_name[:255],
        permalink=subject.permalink,
        verdict=verdict.verdict,
        categories=list(verdict.categories),
        confidence=verdict.confidence,
        reason=verdict.reason,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        action=action,
        created_at=db_now(session),
    )
    session.add(decision)
    session.flush()
    return decision


def record_click(session: Session, decision_id: int, *, action: str, user_id: str) -> ModerationDecision | None:
    """A moderator's Dismiss or Remove: who, what, when (the latest click wins)."""
    decision = session.get(ModerationDecision, decision_id, with_for_update=True)
    if decision is None:
        return None
    decision.override_action = action
    decision.overridden_by = user_id
    decision.overridden_at = db_now(session)
    return decision


def view(decision: ModerationDecision) -> DecisionView:
    return DecisionView(
        id=decision.id,
        channel_id=decision.channel_id,
        user_id=decision.user_id,
        file_id=decision.file_id,
        file_name=decision.file_name,
        permalink=decision.permalink,
        verdict=decision.verdict,
        categories=tuple(decision.categories or ()),
        confidence=decision.confidence,
        reason=decision.reason,
        model=decision.model,
        action=decision.action,
        created_at=decision.created_at,
        action_detail=decision.action_detail,
        override_action=decision.override_action,
        overridden_by=decision.overridden_by,
        overridden_at=decision.overridden_at,
    )


@dataclass(frozen=True)
class Summary:
    counts: dict[str, int]  # by verdict
    overridden: int
    recent: list[DecisionView]


def summary(
    session: Session, team_id: str, *, days: int = 7, recent: int = 10, only_channel: str | None = None
) -> Summary:
    """Counts of the last `days` and the `recent` latest decisions (of `only_channel` alone, when
    given: an answer others may read never lists decisions from other, maybe private, channels)."""
    since: datetime = db_now(session) - timedelta(days=days)
    in_window = (ModerationDecision.team_id == team_id, ModerationDecision.created_at >= since)
    counts = dict(
        session.execute(
            select(ModerationDecision.verdict, func.count()).where(*in_window).group_by(ModerationDecision.verdict)
        ).all()
    )
    overridden = session.execute(
        select(func.count()).where(*in_window, ModerationDecision.override_action.is_not(None))
    ).scalar_one()
    rows = (
        session.execute(
            select(ModerationDecision)
            .where(
                ModerationDecision.team_id == team_id,
                *([ModerationDecision.channel_id == only_channel] if only_channel else []),
            )
            .order_by(ModerationDecision.id.desc())
            .limit(recent)
        )
        .scalars()
        .all()
    )
    return Summary({k: int(v) for k, v in counts.items()}, int(overridden), [view(row) for row in rows])
