"""`bot stats`: what /healthz reports (queue, limiter) plus model usage per workspace."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.feedback import positive_share
from bot.agent.feedback_store import feedback_by_day, feedback_counts
from bot.db.clock import db_now
from bot.limits.admission import RateLimiter
from bot.limits.models import TokenUsage
from bot.queue.store import QueueStats, queue_stats


@dataclass(frozen=True)
class WorkspaceUsage:
    team_id: str
    requests_today: int
    tokens_today: int
    requests_7d: int
    tokens_7d: int
    users_7d: int


def usage_by_workspace(session: Session, today: date) -> list[WorkspaceUsage]:
    """Today's and the last 7 days' (UTC) requests and tokens per workspace, biggest first."""
    week_start = today - timedelta(days=6)
    tokens = TokenUsage.prompt_tokens + TokenUsage.completion_tokens
    is_today = TokenUsage.day == today
    rows = session.execute(
        select(
            TokenUsage.team_id,
            func.sum(case((is_today, TokenUsage.requests), else_=0)),
            func.sum(case((is_today, tokens), else_=0)),
            func.sum(TokenUsage.requests),
            func.sum(tokens),
            func.count(func.distinct(TokenUsage.user_id)),
        )
        .where(TokenUsage.day >= week_start, TokenUsage.day <= today)
        .group_by(TokenUsage.team_id)
    ).all()
    usage = [WorkspaceUsage(row[0], *(int(value or 0) for value in row[1:])) for row in rows]
    return sorted(usage, key=lambda u: (-u.tokens_7d, u.team_id))


def queue_and_limiter(queue: QueueStats, limiter: RateLimiter) -> dict:
    """The "queue" and "limiter" sections, as /healthz and `bot stats --json` both show them:
    "limiter" is the INFERENCE attachment's window, "attachments" every attachment's."""
    attachments = []
    for name, limits in limiter.limits.items():
        requests, tokens = limiter.usage(name)
        attachments.append(
            {
                "name": name,
                "window_seconds": limits.window_seconds,
                "requests": requests,
                "max_requests": limits.max_requests,
                "tokens": tokens,
                "max_tokens": limits.max_tokens,
            }
        )
    return {
        "queue": {
            "queued": queue.queued,
            "running": queue.running,
            "dead": queue.dead,
            "oldest_queued_age_seconds": queue.oldest_queued_age_seconds,
        },
        "limiter": {key: value for key, value in attachments[0].items() if key != "name"},
        "attachments": attachments,
    }


def collect(sessions: sessionmaker[Session], limiter: RateLimiter) -> dict:
    with sessions() as session:
        queue = queue_stats(session)
        today = db_now(session).date()
        workspaces = usage_by_workspace(session, today)
        feedback = feedback_stats(session, today)
    return {
        **queue_and_limiter(queue, limiter),
        "usage_day": today.isoformat(),
        "workspaces": [asdict(w) for w in workspaces],
        "feedback": feedback,
    }


FEEDBACK_DAYS = 7


def feedback_stats(session: Session, today: date) -> dict:
    """👍/👎 given over the same 7 UTC days as the usage, in total and per day."""
    since_day = today - timedelta(days=FEEDBACK_DAYS - 1)
    since = datetime.combine(since_day, time.min, tzinfo=UTC)
    total = feedback_counts(session, since=since)
    return {
        "positive": total.positive,
        "negative": total.negative,
        "since": since_day.isoformat(),
        "days": [
            {"day": day, "positive": counts.positive, "negative": counts.negative}
            for day, counts in feedback_by_day(session, since=since).items()
        ],
    }


def format_stats(stats: dict) -> str:
    """Plain lines for a terminal (pure)."""
    queue, limiter = stats["queue"], stats["limiter"]
    age = queue["oldest_queued_age_seconds"]
    lines = [
        f"queue: {queue['queued']} queued, {queue['running']} running, {queue['dead']} dead; "
        f"oldest queued: {'none' if age is None else f'{age:.1f} s'}",
        *(
            f"limiter {a['name']} ({a['window_seconds']:g} s window): {a['requests']}/{a['max_requests']} requests, "
            f"{a['tokens']}/{a['max_tokens']} tokens"
            for a in stats.get("attachments") or [{"name": "inference", **limiter}]
        ),
        f"usage per workspace (today is {stats['usage_day']} UTC):",
    ]
    if not stats["workspaces"]:
        lines.append("  none in the last 7 days")
    for w in stats["workspaces"]:
        lines.append(
            f"  {w['team_id']}: today {w['requests_today']} requests, {w['tokens_today']} tokens; "
            f"7 days {w['requests_7d']} requests, {w['tokens_7d']} tokens, {w['users_7d']} users"
        )
    feedback = stats.get("feedback")
    if feedback is not None:
        share = positive_share(feedback["positive"], feedback["negative"])
        shown = "no clicks yet" if share is None else f"{share:.0%} 👍"
        lines.append(
            f"feedback since {feedback['since']}: {feedback['positive']} 👍, {feedback['negative']} 👎 ({shown})"
        )
        for day in feedback["days"]:
            lines.append(f"  {day['day']}: {day['positive']} 👍, {day['negative']} 👎")
    return "\n".join(lines)
