"""What applies in a place, and where each value comes from (pure).

A channel's own value wins, then the workspace's default, then the app's (its environment:
BOT_ANSWER_THREAD_FOLLOWUPS, INFERENCE_MODEL_ID). Direct messages have no channel settings:
the workspace defaults apply there (and in `bot chat`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.channel_settings.names import (
    ANSWER,
    BUDGET,
    INSTRUCTIONS,
    MENTIONS,
    MODEL,
    NAMES,
    THREADS,
    TOOLS,
    budget_tokens,
    tool_selection,
)

CHANNEL, WORKSPACE_LEVEL, APP_DEFAULT = "channel", "workspace", "default"


@dataclass(frozen=True)
class Stored:
    """A value set in a place, by whom and when."""

    value: str
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True)
class Defaults:
    """The app's own values (from its configuration)."""

    answer: str = THREADS
    model: str = ""

    def value(self, name: str) -> str | None:
        if name == ANSWER:
            return self.answer
        if name == MODEL:
            return self.model or None
        return None


@dataclass(frozen=True)
class Resolved:
    """One setting as it applies: its value (None: nothing set anywhere) and where it comes from."""

    name: str
    value: str | None
    source: str  # CHANNEL, WORKSPACE_LEVEL or APP_DEFAULT
    stored: Stored | None = None  # set by whom and when (None for the app's default)


@dataclass(frozen=True)
class Applied:
    """What one answer in a place obeys."""

    instructions: str | None = None
    tools: frozenset[str] | None = None  # None: every tool
    answer: str = THREADS
    daily_budget: int | None = None
    model: str | None = None  # None: the app's model

    @property
    def answers_followups(self) -> bool:
        return self.answer != MENTIONS


def resolve(
    channel: Mapping[str, Stored] | None, workspace: Mapping[str, Stored], defaults: Defaults
) -> dict[str, Resolved]:
    """Every setting for a channel (``channel`` None: the workspace itself, or a DM)."""
    resolved = {}
    for name in NAMES:
        if channel is not None and name in channel:
            resolved[name] = Resolved(name, channel[name].value, CHANNEL, channel[name])
        elif name in workspace:
            resolved[name] = Resolved(name, workspace[name].value, WORKSPACE_LEVEL, workspace[name])
        else:
            resolved[name] = Resolved(name, defaults.value(name), APP_DEFAULT)
    return resolved


def applied(resolved: Mapping[str, Resolved], defaults: Defaults) -> Applied:
    model = resolved[MODEL].value
    return Applied(
        instructions=resolved[INSTRUCTIONS].value,
        tools=tool_selection(resolved[TOOLS].value),
        answer=resolved[ANSWER].value or defaults.answer,
        daily_budget=budget_tokens(resolved[BUDGET].value),
        model=None if not model or model == defaults.model else model,
    )
