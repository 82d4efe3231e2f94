"""Token usage, the pure half: the reporting window and the answer's text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WINDOW_DAYS = 30


@dataclass(frozen=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class UsageReport:
    mine_today: UsageTotals
    mine_window: UsageTotals
    team_today: UsageTotals
    team_window: UsageTotals


def window_start(today: date, days: int = WINDOW_DAYS) -> date:
    """The first day of the last `days` days, today included."""
    return today - timedelta(days=days - 1)


def _figures(totals: UsageTotals) -> str:
    noun = "request" if totals.requests == 1 else "requests"
    return (
        f"{totals.tokens:,} tokens ({totals.prompt_tokens:,} in, {totals.completion_tokens:,} out) "
        f"in {totals.requests:,} {noun}"
    )


def _budget(spent: int, budget: int | None) -> str:
    if not budget:
        return ""
    left = max(0, budget - spent)
    return f"; {left:,} of the daily budget of {budget:,} left"


def describe_usage(
    report: UsageReport, *, user_budget: int | None = None, team_budget: int | None = None, days: int = WINDOW_DAYS
) -> str:
    """What `/usage` answers. Days are UTC days, as the budgets count them."""
    return "\n".join(
        [
            "Model usage (UTC days):",
            f"• You today: {_figures(report.mine_today)}{_budget(report.mine_today.tokens, user_budget)}",
            f"• You, last {days} days: {_figures(report.mine_window)}",
            f"• This workspace today: {_figures(report.team_today)}{_budget(report.team_today.tokens, team_budget)}",
            f"• This workspace, last {days} days: {_figures(report.team_window)}",
        ]
    )
