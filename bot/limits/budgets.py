"""Optional daily token budgets per user and per workspace (UTC days)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.limits.models import TokenUsage


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
