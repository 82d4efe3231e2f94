"""Which of the registry's tools the model is offered in a place (a channel's `tools` setting).

One function for every kind of tool: built-in, plugin and MCP tools are all registry entries, so
`offered_tools` filters them by name alike. The model is sent only the tools it returns, and the
tool loop runs calls only against it, so a call to a tool that was not offered is refused.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.tools.registry import ToolRegistry


def offered_tools(registry: ToolRegistry, names: Collection[str] | None) -> ToolRegistry:
    """The tools of ``registry`` named in ``names``; None: all of them (the registry itself)."""
    if names is None:
        return registry
    allowed = frozenset(names)
    return registry.filtered(lambda tool: tool.name in allowed)
