"""Tool calls as steps a person can watch (pure).

Each tool call the model makes becomes a step with a stable id (the tool call's id), a short
human title ("Searching messages for 'deploy'"), a status (in_progress → complete | error),
a one-line output and the links it returned as sources. The same steps render as Slack
`task_update` chunks while streaming, as a compact context line when an answer is posted
and updated instead, and as lines in `bot chat`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

IN_PROGRESS, COMPLETE, ERROR = "in_progress", "complete", "error"
TITLE_MAX_CHARS = 80
OUTPUT_MAX_CHARS = 120
ARGUMENT_MAX_CHARS = 40
MAX_SOURCES = 5
SOURCE_TEXT_MAX_CHARS = 60
CONTEXT_MAX_CHARS = 2900  # a context block's mrkdwn text element takes 3,000

_ICONS = {IN_PROGRESS: "…", COMPLETE: "✓", ERROR: "✗"}
MCP_SEPARATOR = "__"  # between server and tool in an MCP tool's function name
# Slack's <url|label> and <url>, then bare http(s) URLs.
_SLACK_LINK = re.compile(r"<(https?://[^>|\s]+)(?:\|([^>]*))?>")
_BARE_URL = re.compile(r"(?<![<|\w])(https?://[^\s<>()\"']+[^\s<>()\"'.,;:!?])")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Source:
    url: str
    text: str


@dataclass(frozen=True)
class Step:
    id: str
    name: str  # the tool's name
    title: str
    status: str = IN_PROGRESS
    output: str | None = None
    sources: tuple[Source, ...] = field(default_factory=tuple)


def _short(text: str, limit: int) -> str:
    text = _SPACES.sub(" ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _arguments(raw: str | Mapping | None) -> dict:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _quoted(value: object) -> str:
    return "'" + _short(str(value).replace("'", "\u2019"), ARGUMENT_MAX_CHARS) + "'"


def _plain(value: object) -> str:
    return _short(str(value), ARGUMENT_MAX_CHARS)


_TITLES: dict[str, Callable[[dict], str | None]] = {
    "search_messages": lambda a: f"Searching messages for {_quoted(a['query'])}" if a.get("query") else None,
    "get_weather": lambda a: f"Checking the weather in {_plain(a['city'])}" if a.get("city") else None,
    "calculate": lambda a: f"Calculating {_plain(a['expression'])}" if a.get("expression") else None,
    "current_time": lambda a: f"Looking up the time in {_plain(a.get('timezone') or 'UTC')}",
    "token_usage": lambda a: "Checking token usage",
    "forget_thread": lambda a: "Forgetting the thread",
    "moderation": lambda a: "Checking image moderation",
}
_GENERIC = {
    "search_messages": "Searching messages",
    "get_weather": "Checking the weather",
    "calculate": "Calculating",
}
_LOADING = {
    "search_messages": "Searching messages…",
    "get_weather": "Checking the weather…",
    "calculate": "Calculating…",
    "current_time": "Looking up the time…",
    "token_usage": "Checking token usage…",
    "forget_thread": "Forgetting the thread…",
    "moderation": "Checking image moderation…",
}


def humanize(name: str) -> str:
    """ "get_weather" → "Get weather"; tools from plugins get titles this way."""
    words = name.replace("-", "_").split("_")
    text = " ".join(word for word in words if word)
    return text[:1].upper() + text[1:] if text else "Running a tool"


def step_title(name: str, arguments: str | Mapping | None) -> str:
    """A short human title for a tool call."""
    build = _TITLES.get(name)
    title = None
    if build is not None:
        try:
            title = build(_arguments(arguments))
        except (KeyError, TypeError, ValueError):
            title = None
    if not title and MCP_SEPARATOR in name.strip("_"):
        # An MCP server's tool (bot.mcp.names: "<server>__<tool>"): say whom we ask.
        server, tool = name.split(MCP_SEPARATOR, 1)
        title = f"Asking {server}: {humanize(tool).lower()}"
    if not title:
        title = _GENERIC.get(name) or (f"Running {humanize(name).lower()}" if name else "Running a tool")
    return _short(title, TITLE_MAX_CHARS)


def loading_message(name: str) -> str:
    """What the status line says while the tool runs ("Searching messages…")."""
    return _LOADING.get(name) or f"{humanize(name)}…"


def step_output(ok: bool, content: str) -> str:
    """One line from the tool's result: its first non-empty line, without Slack link markup."""
    text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), content or "")
    first = next((line.strip(" •-") for line in text.splitlines() if line.strip(" •-")), "")
    if not first:
        return "Done" if ok else "Failed"
    return _short(first, OUTPUT_MAX_CHARS)


def step_sources(content: str) -> tuple[Source, ...]:
    """The links a tool returned, in order, without repeats, at most MAX_SOURCES."""
    found: list[Source] = []
    seen: set[str] = set()

    def add(url: str, text: str | None) -> None:
        if url in seen or len(found) >= MAX_SOURCES:
            return
        seen.add(url)
        label = _short(text or re.sub(r"^https?://", "", url), SOURCE_TEXT_MAX_CHARS)
        found.append(Source(url=url, text=label))

    content = content or ""
    for match in _SLACK_LINK.finditer(content):
        add(match.group(1), match.group(2))
    for match in _BARE_URL.finditer(_SLACK_LINK.sub(" ", content)):
        add(match.group(1), None)
    return tuple(found)


def started(call_id: str, name: str, arguments: str | Mapping | None) -> Step:
    return Step(id=call_id, name=name, title=step_title(name, arguments))


def finished(step: Step, ok: bool, content: str) -> Step:
    return replace(
        step,
        status=COMPLETE if ok else ERROR,
        output=step_output(ok, content),
        sources=step_sources(content) if ok else (),
    )


def plan_title(steps: Sequence[Step]) -> str | None:
    """A title for answers of several steps; None for one step or none."""
    if len(steps) < 2:
        return None
    done = sum(1 for step in steps if step.status != IN_PROGRESS)
    if done == len(steps):
        return f"Worked through {len(steps)} steps"
    return f"Working through {len(steps)} steps"


def line(step: Step) -> str:
    """`… Searching messages for 'deploy'` / `✓ … — 3 messages matching "deploy":`."""
    text = f"{_ICONS.get(step.status, '•')} {step.title}"
    if step.status != IN_PROGRESS and step.output:
        text += f" — {step.output}"
    return text


def terminal_line(step: Step) -> str:
    """The terminal's line: lower-case title, no output (`… searching messages for 'x'`)."""
    title = step.title[:1].lower() + step.title[1:]
    return f"{_ICONS.get(step.status, '•')} {title}"


def context_text(steps: Sequence[Step]) -> str:
    """The steps as one compact mrkdwn text for a context block (post-and-update answers)."""
    lines = [line(step) for step in steps]
    title = plan_title(steps)
    if title:
        lines.insert(0, f"*{title}*")
    text = "\n".join(lines)
    return text if len(text) <= CONTEXT_MAX_CHARS else text[: CONTEXT_MAX_CHARS - 1] + "…"


class StepList:
    """The steps of one answer, in the order they started (state only; no I/O)."""

    def __init__(self) -> None:
        self._steps: dict[str, Step] = {}
        self._announced_plan: str | None = None

    @property
    def steps(self) -> list[Step]:
        return list(self._steps.values())

    def start(self, call_id: str, name: str, arguments: str | Mapping | None) -> Step:
        step = started(call_id or f"step-{len(self._steps) + 1}", name, arguments)
        self._steps[step.id] = step
        return step

    def finish(self, call_id: str, ok: bool, content: str) -> Step | None:
        step = self._steps.get(call_id)
        if step is None:
            return None
        step = finished(step, ok, content)
        self._steps[call_id] = step
        return step

    def new_plan_title(self) -> str | None:
        """The plan title, when it changed since it was last asked for."""
        title = plan_title(self.steps)
        if title == self._announced_plan:
            return None
        self._announced_plan = title
        return title

    def tool_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self._steps.values())
