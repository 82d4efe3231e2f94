"""The settings, what each allows, and how a typed value becomes a stored one (pure).

A stored value is a string: ``instructions`` the text; ``tools`` ``all``, ``none`` or tool names
joined by commas (sorted); ``answer`` ``mentions`` or ``threads``; ``budget`` ``none`` or a
number of tokens per UTC day; ``model`` a model id. ``default`` (and ``clear`` for instructions)
removes the place's own value, so the channel inherits the workspace's and the workspace the app's.
The same reading serves `/settings`, the App Home's modal and `bot chat`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

INSTRUCTIONS = "instructions"
TOOLS = "tools"
ANSWER = "answer"
BUDGET = "budget"
MODEL = "model"
NAMES = (INSTRUCTIONS, TOOLS, ANSWER, BUDGET, MODEL)

ALL, NONE, DEFAULT = "all", "none", "default"
MENTIONS, THREADS = "mentions", "threads"
ANSWER_VALUES = (MENTIONS, THREADS)
# Slack's plain_text_input holds at most 3000 characters (the modal's field); every answer in
# the channel carries the instructions, so they stay short.
MAX_INSTRUCTIONS_CHARS = 3000
MAX_BUDGET_TOKENS = 10**12
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}
_BUDGET = re.compile(r"^(\d+(?:\.\d+)?)\s*([km]?)$")
# Postgres rejects NUL in text; other control characters (but newlines and tabs) carry nothing.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

USAGE = (
    "/settings [workspace] [instructions <text>|tools <names|all|none>|answer <mentions|threads>"
    "|budget <tokens|none>|model <id>] (or <setting> default)"
)
SETTING_USAGE = {
    INSTRUCTIONS: "/settings instructions <text>  (or: /settings instructions clear)",
    TOOLS: "/settings tools <name,name|all|none>  (or: default)",
    ANSWER: "/settings answer <mentions|threads>  (or: default)",
    BUDGET: "/settings budget <tokens per day|none>  (or: default), e.g. 200000 or 200k",
    MODEL: "/settings model <model id|default>",
}


class BadValue(ValueError):
    """A value the setting does not allow; the message says what is allowed."""


@dataclass(frozen=True)
class Choices:
    """What the values are checked against: the tools the model can be offered, the attached models."""

    tool_names: tuple[str, ...] = ()
    tool_commands: Mapping[str, str] | None = None  # slash command (without "/") → tool name
    models: tuple[str, ...] = ()


def allowed(name: str, choices: Choices) -> str:
    """The sentence saying what ``name`` takes."""
    if name == INSTRUCTIONS:
        return f"Instructions are text of at most {MAX_INSTRUCTIONS_CHARS:,} characters, or `clear`."
    if name == TOOLS:
        names = ", ".join(f"`{tool}`" for tool in choices.tool_names) or "(none registered)"
        return f"Tools: `all`, `none`, or names separated by commas from: {names}."
    if name == ANSWER:
        return "Answer: `mentions` (only when mentioned) or `threads` (also follow-ups in threads I am in)."
    if name == BUDGET:
        return f"Budget: a number of tokens per UTC day (1 to {MAX_BUDGET_TOKENS:,}; `200k` works), or `none`."
    if name == MODEL:
        models = ", ".join(f"`{model}`" for model in choices.models) or "(none attached)"
        return f"Model: one of the attached models: {models}; or `default`."
    return f"Settings: {', '.join(NAMES)}."


def bad(name: str, problem: str, choices: Choices) -> BadValue:
    return BadValue(f"{problem}\nUsage: {SETTING_USAGE.get(name, USAGE)}\n{allowed(name, choices)}")


def parse_value(name: str, raw: str, choices: Choices) -> str | None:
    """The stored form of ``raw`` for ``name``; None removes the place's own value. Raises BadValue."""
    text = _CONTROLS.sub("", raw or "").strip()
    word = text.lower()
    if name not in NAMES:
        raise bad(name, f"There is no setting {name!r}.", choices)
    if not text:
        raise bad(name, f"Give a value for {name}.", choices)
    if word == DEFAULT or (name == INSTRUCTIONS and word == "clear"):
        return None
    if name == INSTRUCTIONS:
        if len(text) > MAX_INSTRUCTIONS_CHARS:
            raise bad(name, f"Those instructions are {len(text):,} characters long.", choices)
        return text
    if name == TOOLS:
        return _tools(text, choices)
    if name == ANSWER:
        if word not in ANSWER_VALUES:
            raise bad(name, f"{text!r} is not an answer policy.", choices)
        return word
    if name == BUDGET:
        return _budget(word, choices)
    if text not in choices.models:
        raise bad(name, f"{text!r} is not an attached model.", choices)
    return text


def _tools(text: str, choices: Choices) -> str:
    words = [w for w in re.split(r"[,\s]+", text) if w]
    lowered = [w.lower() for w in words]
    if lowered in ([ALL], [NONE]):
        return lowered[0]
    commands = choices.tool_commands or {}
    names, unknown = set(), []
    for word in words:
        name = word if word in choices.tool_names else commands.get(word.lstrip("/").lower())
        if name is None:
            unknown.append(word)
        else:
            names.add(name)
    if unknown or not names:
        raise bad(TOOLS, f"Unknown tool{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.", choices)
    return ",".join(sorted(names))


def _budget(word: str, choices: Choices) -> str:
    if word == NONE:
        return NONE
    matched = _BUDGET.match(word.replace(",", "").replace("_", ""))
    if not matched or len(matched.group(1)) > 20:
        raise bad(BUDGET, f"{word!r} is not a number of tokens.", choices)
    tokens = int(float(matched.group(1)) * _UNITS[matched.group(2)])
    if not 1 <= tokens <= MAX_BUDGET_TOKENS:
        raise bad(BUDGET, f"{tokens:,} tokens is out of range.", choices)
    return str(tokens)


def tool_selection(stored: str | None) -> frozenset[str] | None:
    """The tool names a stored ``tools`` value allows; None: every tool."""
    if stored is None or stored == ALL:
        return None
    if stored == NONE:
        return frozenset()
    return frozenset(name for name in stored.split(",") if name)


def budget_tokens(stored: str | None) -> int | None:
    """The daily token budget of a stored ``budget`` value; None: no budget."""
    if stored is None or stored == NONE:
        return None
    return int(stored)


def shown(name: str, stored: str | None) -> str:
    """A value as people read it."""
    if stored is None:
        return "none" if name in (INSTRUCTIONS, BUDGET) else ALL if name == TOOLS else "-"
    if name == TOOLS and stored not in (ALL, NONE):
        return ", ".join(stored.split(","))
    if name == BUDGET and stored != NONE:
        return f"{int(stored):,} tokens a day"
    return stored


def choices_from(tool_names: Iterable[str], commands: Mapping[str, str], models: Iterable[str]) -> Choices:
    return Choices(tuple(sorted(tool_names)), dict(commands), tuple(models))
