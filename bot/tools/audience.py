"""Tools whose results must stay with the person who asked.

A search reads messages from channels the asker can see; posting its results for everyone
(`--public`, or `/ask --public`) could show them to people who cannot. Such tools are marked
with `@private_results`: slash commands answer them only to the asker, and a model answer
meant for a channel is not offered them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bot.tools.registry import Tool, ToolRegistry

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "_bot_private_results"


def private_results(func: F) -> F:
    setattr(func, _MARK, True)
    return func


def has_private_results(tool: Tool) -> bool:
    return bool(getattr(tool.func, _MARK, False))


def without_private_tools(registry: ToolRegistry) -> ToolRegistry:
    """A registry holding every tool `registry` offers now except those marked `@private_results`."""
    return registry.filtered(lambda tool: not has_private_results(tool))
