"""One model turn for a job: the system prompt, extended thinking, the tool context and the
call context, then the tool loop (bot.conversation.tool_loop). The reply and ask jobs are thin
adapters around it: they say where the answer goes and what the conversation is."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from slack_sdk import WebClient
from sqlalchemy.orm import sessionmaker

from bot.conversation.places import PlaceNames
from bot.conversation.prompt import build_system_prompt
from bot.conversation.tool_loop import ModelTurn, TextSink, ToolGate, converse
from bot.history.thread import ThreadEntry
from bot.inference.gateway import CallContext, ModelGateway
from bot.queue.context import JobContext
from bot.tools.job_context import job_tool_context
from bot.tools.registry import ToolRegistry

THINK_HARD = re.compile(r"\b(think (hard|harder|carefully|deeply)|ultrathink)\b", re.IGNORECASE)


def wants_extended_thinking(text: str) -> bool:
    return bool(THINK_HARD.search(text or ""))


def run_model_turn(
    ctx: JobContext,
    *,
    gateway: ModelGateway,
    tools: ToolRegistry,
    settings: Any,
    places: PlaceNames,
    sessions: sessionmaker,
    slack: WebClient,
    entries: list[ThreadEntry],
    channel: str,
    thread_ts: str | None,
    asker: Any,
    sink: TextSink,
    turn_ts: str,
    question: str,
    now: datetime,
    http: httpx.Client | None = None,
    on_wait: Callable[[float, str], None] | None = None,
    gate: ToolGate | None = None,
    on_line: Callable[[int, float], None] | None = None,
) -> ModelTurn:
    """Run the model over ``entries`` for ``ctx.job``. ``question``: the text being answered
    (it may ask for extended thinking); ``now``: for the date in the system prompt; ``gate``:
    sees each tool call first (bot.conversation.approval_gate)."""
    job = ctx.job
    system = build_system_prompt(
        settings.system_prompt,
        workspace=places.workspace(slack, job.team_id),
        channel=places.describe(slack, job.team_id, channel, asker_id=job.user_id),
        today=now.date().isoformat(),
    )
    tool_ctx = job_tool_context(
        job,
        channel=channel,
        thread_ts=thread_ts,
        asker=asker,
        slack=slack,
        sessions=sessions,
        settings=settings,
        http=http,
    )
    thinking = settings.extended_thinking or wants_extended_thinking(question)
    call = CallContext(
        team_id=job.team_id,
        user_id=job.user_id,
        should_stop=ctx.should_stop,
        on_wait=on_wait,
        on_line=on_line,
        model=settings.model_for("thinking") if thinking else None,  # BOT_THINKING_MODEL
    )
    return converse(
        gateway,
        tools,
        settings,
        system=system,
        entries=entries,
        tool_ctx=tool_ctx,
        call=call,
        sink=sink,
        turn_ts=turn_ts,
        thinking=thinking,
        gate=gate,
    )
