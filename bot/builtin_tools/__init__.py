"""The built-in tools, one module per tool, each with `register(registry)`."""

from __future__ import annotations

import logging
from typing import Any

from bot.builtin_tools import calculator, clock, forget, moderation, search, usage, weather
from bot.tools.plugins import load_plugins
from bot.tools.registry import ToolRegistry

log = logging.getLogger(__name__)


def default_registry(settings: Any = None) -> ToolRegistry:
    """A registry holding every built-in tool; `settings` supplies optional endpoints (see weather).
    Needs neither settings nor a database to build (the manifest builds one without either):
    the database tools use `ToolContext.db` when they run."""
    registry = ToolRegistry()
    calculator.register(registry)
    clock.register(registry)
    weather.register(registry, settings)
    search.register(registry)
    usage.register(registry)
    forget.register(registry)
    moderation.register(registry)
    return registry


def configured_registry(settings: Any) -> ToolRegistry:
    """The built-ins plus the plugins: entry points and the modules BOT_TOOL_MODULES names.
    The web process (slash commands) and the worker (function calling) build the same one."""
    registry = default_registry(settings)
    for problem in load_plugins(registry, getattr(settings, "tool_modules", ())):
        log.warning("plugin problem=%r", problem)
    return registry
