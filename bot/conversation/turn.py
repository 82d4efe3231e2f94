"""One model turn for a job: the system prompt, extended thinking, the tool context and the
call context, then the tool loop (bot.conversation.tool_loop). The reply and ask jobs are thin
adapters around it: they say what the conversation is and where the answer goes.

Three objects carry what a turn needs:

* :class:`ModelTurns`, built once by the composition root: the gateway, the settings and the
  database, and the place names it caches;
* :class:`Conversation`, what is answered: the entries, where they are (and the place's
  settings), who asks;
* :class:`AnswerSurface`, where the answer goes while it is written: the text sink, the gate
  every tool call passes, and who hears that the call waits in the rate limiter's line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings.resolve import Applied
from bot.conversation.places import PlaceNames
from bot.conversation.prompt import build_system_prompt
from bot.conversation.tool_loop import ModelTurn, TextSink, ToolGate, converse
from bot.history.thread import ThreadEntry
from bot.inference.gateway import CallContext, ModelGateway
from bot.queue.context import JobContext
from bot.tools.job_context import job_tool_context
from bot.tools.registry import ToolRegistry
from bot.tools.selection import offered_tools

THINK_HARD = re.compile(r"\b(think (hard|harder|carefully|deeply)|ultrathink)\b", re.IGNORECASE)


def wants_extended_thinking(text: str) -> bool:
    return bool(THINK_HARD.search(text or ""))


@dataclass(frozen=True)
class Conversation:
    """What the model answers: ``entries`` (a thread, or one question) in ``channel`` of the
    workspace ``slack`` speaks for, in ``thread_ts`` (None outside a thread: tools that need one
    say so), asked by ``asker`` (their `slack_users` row; None if unknown) in message ``turn_ts``.
    ``rules``: the place's settings (bot.channel_settings: its instructions, tools, budget, model)."""

    slack: WebClient
    channel: str
    thread_ts: str | None
    turn_ts: str
    asker: Any
    entries: list[ThreadEntry]
    rules: Applied = field(default_factory=Applied)

    @property
    def question(self) -> str:
        """The text being answered (the newest user entry): it may ask for extended thinking."""
        return next((e.text for e in reversed(self.entries) if e.role == "user" and not e.deleted), "")


@dataclass(frozen=True)
class AnswerSurface:
    """Where the answer goes: ``sink`` gets the text as it is written; ``gate`` sees each tool
    call first (bot.conversation.approval_gate); ``on_line(calls_ahead, seconds)`` hears that a
    call waits in the rate limiter's line."""

    sink: TextSink
    gate: ToolGate | None = None
    on_line: Callable[[int, float], None] | None = None


class ModelTurns:
    """Runs model turns for jobs; built once with what does not change between them."""

    def __init__(self, gateway: ModelGateway, settings: Any, sessions: sessionmaker[Session]):
        self.gateway = gateway
        self.settings = settings
        self.sessions = sessions
        self.places = PlaceNames(sessions)

    def run(
        self,
        ctx: JobContext,
        conversation: Conversation,
        answer: AnswerSurface,
        tools: ToolRegistry,
        *,
        gateway: Any = None,
        http: httpx.Client | None = None,
        now: datetime | None = None,
    ) -> ModelTurn:
        """Run the model over the conversation for ``ctx.job`` with ``tools``. ``gateway``: this
        answer's own wrapper of the gateway (a Stop button's); ``http``: the tools' client;
        ``now``: for the date in the system prompt."""
        job, settings, slack, rules = ctx.job, self.settings, conversation.slack, conversation.rules
        now = now or datetime.now(UTC)
        system = build_system_prompt(
            settings.system_prompt,
            workspace=self.places.workspace(slack, job.team_id),
            channel=self.places.describe(slack, job.team_id, conversation.channel, asker_id=job.user_id),
            today=now.date().isoformat(),
            channel_instructions=rules.instructions,
        )
        tool_ctx = job_tool_context(
            job,
            channel=conversation.channel,
            thread_ts=conversation.thread_ts,
            asker=conversation.asker,
            slack=slack,
            sessions=self.sessions,
            settings=settings,
            http=http,
        )
        thinking = settings.extended_thinking or wants_extended_thinking(conversation.question)
        call = CallContext(
            team_id=job.team_id,
            user_id=job.user_id,
            should_stop=ctx.should_stop,
            on_line=answer.on_line,
            # BOT_THINKING_MODEL for a request to think hard, else the place's model (None: the default).
            model=(getattr(settings, "thinking_model", None) if thinking else None) or rules.model,
            channel_id=conversation.channel
            or "",  # its tokens count toward the channel's budget (set now or later today)
            channel_daily_tokens=rules.daily_budget,
        )
        return converse(
            gateway or self.gateway,
            offered_tools(tools, rules.tools),
            settings,
            system=system,
            entries=conversation.entries,
            tool_ctx=tool_ctx,
            call=call,
            sink=answer.sink,
            turn_ts=conversation.turn_ts,
            thinking=thinking,
            gate=answer.gate,
        )
