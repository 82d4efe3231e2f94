"""`token_usage` (`/usage`): the asker's and the workspace's model tokens, today and lately.

Reads the `token_usage` table the gateway fills (per team, user and UTC day), scoped by team.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.limits.models import TokenUsage
from bot.tools.errors import ToolFailed
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.usage_logic import UsageReport, UsageTotals, describe_usage, window_start


def _totals(session: Session, team_id: str, user_id: str | None, today: date) -> tuple[UsageTotals, UsageTotals]:
    """(today, last 30 days) for the team, or for one user of it."""

    def today_only(column):
        return func.coalesce(func.sum(case((TokenUsage.day == today, column), else_=0)), 0)

    def all_days(column):
        return func.coalesce(func.sum(column), 0)

    columns = (TokenUsage.requests, TokenUsage.prompt_tokens, TokenUsage.completion_tokens)
    conditions = [TokenUsage.team_id == team_id, TokenUsage.day >= window_start(today), TokenUsage.day <= today]
    if user_id is not None:
        conditions.append(TokenUsage.user_id == user_id)
    row = session.execute(
        select(*[today_only(c) for c in columns], *[all_days(c) for c in columns]).where(*conditions)
    ).one()
    numbers = [int(value) for value in row]
    return UsageTotals(*numbers[:3]), UsageTotals(*numbers[3:])


def usage_report(session: Session, team_id: str, user_id: str, today: date) -> UsageReport:
    mine_today, mine_window = _totals(session, team_id, user_id, today)
    team_today, team_window = _totals(session, team_id, None, today)
    return UsageReport(mine_today, mine_window, team_today, team_window)


def token_usage(ctx: ToolContext) -> str:
    """Model tokens used by the asker and by this workspace, today and over the last 30 days. Also
    what is left of the daily budgets, when budgets are set."""
    if ctx.db is None or not ctx.team_id or not ctx.user_id:
        raise ToolFailed("Usage figures are not available here.")
    today = datetime.now(UTC).date()  # the gateway and the budgets count UTC days too
    with ctx.db() as session:
        report = usage_report(session, ctx.team_id, ctx.user_id, today)
    settings = ctx.settings
    return describe_usage(
        report,
        user_budget=getattr(settings, "daily_token_budget_per_user", None),
        team_budget=getattr(settings, "daily_token_budget_per_team", None),
    )


def register(registry: ToolRegistry) -> None:
    registry.add(token_usage, command="usage", usage="/usage", timeout=10.0)
