"""The ToolContext of a job: who asked, where, and what the tools may use (shared by the
reply, ask and slash-command jobs)."""

from __future__ import annotations

from typing import Any

import httpx
from slack_sdk import WebClient
from sqlalchemy.orm import sessionmaker

from bot.queue.store import ClaimedJob
from bot.tools.registry import ToolContext


def job_tool_context(
    job: ClaimedJob,
    *,
    channel: str | None,
    thread_ts: str | None,
    asker: Any,
    slack: WebClient,
    sessions: sessionmaker,
    settings: Any,
    http: httpx.Client | None = None,
    typed_by_person: bool = False,
) -> ToolContext:
    """``asker``: the job's user from the `slack_users` cache (None if unknown: not an admin).
    ``thread_ts`` None: the job runs outside a thread, and tools that need one say so.
    ``typed_by_person``: the person typed the call (a slash command), not the model."""
    return ToolContext(
        team_id=job.team_id,
        channel_id=channel or None,
        thread_ts=thread_ts,
        user_id=job.user_id,
        user_is_admin=bool(asker and asker.is_admin),
        slack=slack,
        db=sessions,
        settings=settings,
        http=http,
        typed_by_person=typed_by_person,
    )
