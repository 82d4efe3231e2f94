"""Optional daily token budgets per user and per workspace, and per channel (its `budget` setting,
bot.channel_settings), all in UTC days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.dialect import insert as dialect_insert
from bot.limits.models import ChannelTokenUsage, TokenUsage


@dataclass(frozen=True)
class BudgetPolicy:
    per_user_daily_tokens: int | None = None
    per_team_daily_tokens: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.per_user_daily_tokens or self.per_team_daily_tokens)


def budget_verdict(policy: BudgetPolicy, *, user_tokens_today: int, team_tokens_today: int) -> str | None:
    """A polite sentence when a budget is spent, else None (pure)."""
    if policy.per_user_daily_tokens and user_tokens_today >= policy.per_user_daily_tokens:
        return (
            "You have used your daily allowance of the model "
            f"({policy.per_user_daily_tokens:,} tokens). It resets at midnight UTC."
        )
    if policy.per_team_daily_tokens and team_tokens_today >= policy.per_team_daily_tokens:
        return (
            "This workspace has used its daily allowance of the model "
            f"({policy.per_team_daily_tokens:,} tokens). It resets at midnight UTC."
        )
    return None


def over_budget(session: Session, policy: BudgetPolicy, *, team_id: str, user_id: str) -> str | None:
    today = datetime.now(UTC).date()
    spent = TokenUsage.prompt_tokens + TokenUsage.completion_tokens
    team_total = session.execute(
        select(func.coalesce(func.sum(spent), 0)).where(TokenUsage.team_id == team_id, TokenUsage.day == today)
    ).scalar_one()
    user_total = session.execute(
        select(func.coalesce(func.sum(spent), 0)).where(
            TokenUsage.team_id == team_id, TokenUsage.user_id == user_id, TokenUsage.day == today
        )
    ).scalar_one()
    return budget_verdict(policy, user_tokens_today=int(user_total), team_tokens_today=int(team_total))


def channel_budget_verdict(daily_tokens: int | None, *, spent_today: int) -> str | None:
    """A polite sentence when a channel's daily budget is spent, else None (pure)."""
    if daily_tokens is None or spent_today < daily_tokens:
        return None
    return (
        f"This channel has used its daily allowance of the model ({daily_tokens:,} tokens). "
        "It resets at midnight UTC; a workspace admin can change it with /settings budget."
    )


def channel_over_budget(session: Session, *, team_id: str, channel_id: str, daily_tokens: int | None) -> str | None:
    if daily_tokens is None or not channel_id:
        return None
    spent = session.execute(
        select(func.coalesce(func.sum(ChannelTokenUsage.tokens), 0)).where(
            ChannelTokenUsage.team_id == team_id,
            ChannelTokenUsage.channel_id == channel_id,
            ChannelTokenUsage.day == datetime.now(UTC).date(),
        )
    ).scalar_one()
    return channel_budget_verdict(daily_tokens, spent_today=int(spent))


def record_channel_usage(session: Session, *, team_id: str, channel_id: str, tokens: int) -> None:
    """Add one call's tokens to the channel's total for today (caller commits)."""
    statement = dialect_insert(session)(ChannelTokenUsage).values(
        team_id=team_id, channel_id=channel_id, day=datetime.now(UTC).date(), tokens=tokens
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ChannelTokenUsage.team_id, ChannelTokenUsage.channel_id, ChannelTokenUsage.day],
            set_={"tokens": ChannelTokenUsage.tokens + statement.excluded.tokens},
        )
    )
