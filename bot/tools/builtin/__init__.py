"""The built-in tools, one module per tool, each with `register(registry)`."""

from __future__ import annotations

from typing import Any

from bot.tools.builtin import calculator, clock, weather
from bot.tools.registry import ToolRegistry


def default_registry(settings: Any = None) -> ToolRegistry:
    """A registry holding every built-in tool; `settings` supplies optional endpoints (see weather)."""
    registry = ToolRegistry()
    calculator.register(registry)
    clock.register(registry)
    weather.register(registry, settings)
    return registry
