"""Deleting old or departed data in small batches, each in the caller's short transaction.

Every delete takes at most `batch_size` rows (`DELETE … WHERE key IN (SELECT … LIMIT n)`,
portable to SQLite and Postgres), so a large backlog never holds long locks; callers loop.
Deletes are idempotent, so two worker dynos purging at once only repeat each other's work.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from bot.agent.models import AnswerFeedback, StopRequest
from bot.channel_settings.models import ChannelSetting, ChannelSettingChange
from bot.history.models import MessageImage, SlackUser, Thread, ThreadMessage, ThreadSummary
from bot.idempotency.models import IdempotencyKey
from bot.idempotency.store import GREETING_KEY_PREFIX
from bot.limits.models import ChannelTokenUsage
from bot.moderation.models import ModerationChannel, ModerationDecision, ModerationSettings
from bot.queue.models import DEAD, DONE, Job
from bot.retention.policy import Cutoffs
from bot.slack.oauth_tables import oauth_states
from bot.slack.org_workspaces import OrgWorkspace
from bot.tools.approvals import ToolApproval


def _delete_messages(session: Session, where, batch_size: int) -> int:
    ids = list(session.execute(select(ThreadMessage.id).where(*where).limit(batch_size)).scalars())
    if not ids:
        return 0
    session.execute(delete(MessageImage).where(MessageImage.message_id.in_(ids)))
    return session.execute(delete(ThreadMessage).where(ThreadMessage.id.in_(ids))).rowcount


def _delete_by_key(session: Session, model, key_columns: list, where, batch_size: int) -> int:
    keys = select(*key_columns).where(*where).limit(batch_size)
    if len(key_columns) == 1:
        statement = delete(model).where(key_columns[0].in_(keys))
    else:
        statement = delete(model).where(tuple_(*key_columns).in_(keys))
    return session.execute(statement).rowcount


def purge_expired(session: Session, cutoffs: Cutoffs, *, batch_size: int) -> dict[str, int]:
    """One batch per kind of data older than its cutoff. Returns rows deleted per kind."""
    deleted = {
        "idempotency_keys": _delete_by_key(
            session,
            IdempotencyKey,
            [IdempotencyKey.team_id, IdempotencyKey.key],
            # Greetings are remembered for as long as the installation lasts (forget_workspace).
            [IdempotencyKey.created_at < cutoffs.idempotency_keys, ~IdempotencyKey.key.startswith(GREETING_KEY_PREFIX)],
            batch_size,
        )
    }
    deleted["oauth_states"] = _purge_expired_oauth_states(session, batch_size)
    # A Stop only concerns work begun before it, which is long finished two days later.
    deleted["stop_requests"] = _delete_by_key(
        session, StopRequest, [StopRequest.id], [StopRequest.requested_at < cutoffs.idempotency_keys], batch_size
    )
    if cutoffs.history is None:
        return deleted
    cutoff = cutoffs.history
    deleted["feedback"] = _delete_by_key(
        session, AnswerFeedback, [AnswerFeedback.id], [AnswerFeedback.updated_at < cutoff], batch_size
    )
    deleted["messages"] = _delete_messages(session, [ThreadMessage.created_at < cutoff], batch_size)
    deleted["threads"] = _delete_by_key(
        session,
        Thread,
        [Thread.team_id, Thread.channel_id, Thread.thread_ts],
        [Thread.last_activity_at < cutoff],
        batch_size,
    )
    deleted["summaries"] = _delete_by_key(
        session,
        ThreadSummary,
        [ThreadSummary.team_id, ThreadSummary.channel_id, ThreadSummary.thread_ts],
        [ThreadSummary.updated_at < cutoff],
        batch_size,
    )
    deleted["users"] = _delete_by_key(
        session, SlackUser, [SlackUser.team_id, SlackUser.user_id], [SlackUser.fetched_at < cutoff], batch_size
    )
    deleted["jobs"] = _delete_by_key(
        session, Job, [Job.id], [Job.status.in_((DONE, DEAD)), Job.finished_at < cutoff], batch_size
    )
    deleted["tool_approvals"] = _delete_by_key(
        session, ToolApproval, [ToolApproval.id], [ToolApproval.requested_at < cutoff], batch_size
    )
    # File names, posters, permalinks and reasons: kept as long as the conversations.
    deleted["moderation_decisions"] = _delete_by_key(
        session, ModerationDecision, [ModerationDecision.id], [ModerationDecision.created_at < cutoff], batch_size
    )
    # Who changed a setting, and the old text: history like the rest (the values themselves stay).
    deleted["setting_changes"] = _delete_by_key(
        session,
        ChannelSettingChange,
        [ChannelSettingChange.id],
        [ChannelSettingChange.changed_at < cutoff],
        batch_size,
    )
    deleted["channel_usage"] = _delete_by_key(
        session,
        ChannelTokenUsage,
        [ChannelTokenUsage.team_id, ChannelTokenUsage.channel_id, ChannelTokenUsage.day],
        [ChannelTokenUsage.day < cutoff.date()],
        batch_size,
    )
    return deleted


def _purge_expired_oauth_states(session: Session, batch_size: int) -> int:
    """Expired OAuth `state` values (installs started and never finished). Naive UTC, as slack_sdk writes."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return _delete_by_key(session, oauth_states, [oauth_states.c.id], [oauth_states.c.expire_at < now], batch_size)


def forget_workspace(session: Session, team_id: str, *, batch_size: int, keep_job_id: int | None = None) -> int:
    """One batch of everything stored for `team_id` (history, images, users, idempotency keys,
    settings and their changes, jobs other than `keep_job_id`). Returns rows deleted; 0 means nothing is left."""
    deleted = _delete_messages(session, [ThreadMessage.team_id == team_id], batch_size)
    deleted += _delete_by_key(
        session,
        Thread,
        [Thread.team_id, Thread.channel_id, Thread.thread_ts],
        [Thread.team_id == team_id],
        batch_size,
    )
    deleted += _delete_by_key(
        session,
        ThreadSummary,
        [ThreadSummary.team_id, ThreadSummary.channel_id, ThreadSummary.thread_ts],
        [ThreadSummary.team_id == team_id],
        batch_size,
    )
    deleted += _delete_by_key(
        session, SlackUser, [SlackUser.team_id, SlackUser.user_id], [SlackUser.team_id == team_id], batch_size
    )
    deleted += _delete_by_key(
        session,
        IdempotencyKey,
        [IdempotencyKey.team_id, IdempotencyKey.key],
        [IdempotencyKey.team_id == team_id],
        batch_size,
    )
    deleted += _delete_by_key(
        session, AnswerFeedback, [AnswerFeedback.id], [AnswerFeedback.team_id == team_id], batch_size
    )
    deleted += _delete_by_key(session, StopRequest, [StopRequest.id], [StopRequest.team_id == team_id], batch_size)
    deleted += _delete_by_key(
        session, ModerationDecision, [ModerationDecision.id], [ModerationDecision.team_id == team_id], batch_size
    )
    deleted += _delete_by_key(
        session,
        ModerationChannel,
        [ModerationChannel.team_id, ModerationChannel.channel_id],
        [ModerationChannel.team_id == team_id],
        batch_size,
    )
    deleted += _delete_by_key(
        session, ModerationSettings, [ModerationSettings.team_id], [ModerationSettings.team_id == team_id], batch_size
    )
    deleted += _delete_by_key(
        session, OrgWorkspace, [OrgWorkspace.team_id], [OrgWorkspace.team_id == team_id], batch_size
    )
    deleted += _delete_by_key(session, ToolApproval, [ToolApproval.id], [ToolApproval.team_id == team_id], batch_size)
    deleted += _delete_by_key(
        session,
        ChannelSetting,
        [ChannelSetting.team_id, ChannelSetting.channel_id, ChannelSetting.name],
        [ChannelSetting.team_id == team_id],
        batch_size,
    )
    deleted += _delete_by_key(
        session, ChannelSettingChange, [ChannelSettingChange.id], [ChannelSettingChange.team_id == team_id], batch_size
    )
    deleted += _delete_by_key(
        session,
        ChannelTokenUsage,
        [ChannelTokenUsage.team_id, ChannelTokenUsage.channel_id, ChannelTokenUsage.day],
        [ChannelTokenUsage.team_id == team_id],
        batch_size,
    )
    job_filter = [Job.team_id == team_id] + ([Job.id != keep_job_id] if keep_job_id is not None else [])
    deleted += _delete_by_key(session, Job, [Job.id], job_filter, batch_size)
    return deleted
