"""Third-party tools: entry points in the group `slack_ai_bot.tools`, and modules named in settings.

A plugin is a function `register(registry)` (for a module: its `register` attribute) that adds
tools the usual way. A plugin that fails to import or register, or clashes with a tool already
there, is skipped as a whole and reported as one sentence; it never stops the bot.

A plugin package declares itself in its own pyproject.toml:

    [project.entry-points."slack_ai_bot.tools"]
    my_tools = "my_package.tools:register"
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from importlib import metadata
from types import ModuleType
from typing import Any

from bot.tools.registry import ToolRegistry

ENTRY_POINT_GROUP = "slack_ai_bot.tools"

logger = logging.getLogger(__name__)


def parse_module_list(raw: str | None) -> list[str]:
    """`"pkg.mod, other.mod"` (e.g. BOT_TOOL_MODULES) → `["pkg.mod", "other.mod"]`."""
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def load_plugins(registry: ToolRegistry, module_paths: Iterable[str] = ()) -> list[str]:
    """Load entry-point plugins, then the named modules; return one sentence per problem."""
    return load_entry_point_plugins(registry) + load_module_plugins(registry, module_paths)


def load_entry_point_plugins(registry: ToolRegistry, group: str = ENTRY_POINT_GROUP) -> list[str]:
    problems = []
    for entry_point in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name):
        label = f"entry point {entry_point.name!r} ({entry_point.value})"
        problem = _install(registry, label, entry_point.load)
        if problem:
            problems.append(problem)
    return problems


def load_module_plugins(registry: ToolRegistry, module_paths: Iterable[str]) -> list[str]:
    problems = []
    for path in module_paths:
        problem = _install(registry, f"module {path!r}", lambda path=path: importlib.import_module(path))
        if problem:
            problems.append(problem)
    return problems


def _install(registry: ToolRegistry, label: str, load: Callable[[], Any]) -> str | None:
    """Run one plugin against a scratch registry, then add its tools all at once."""
    try:
        target = load()
        register = target.register if isinstance(target, ModuleType) else target
        if not callable(register):
            raise TypeError("it has no register(registry) function")
        scratch = registry.empty_like()
        register(scratch)
        registry.include(scratch)
    except Exception as exc:
        logger.warning("tool plugin %s could not be loaded", label, exc_info=exc)
        return f"Tool plugin {label} was not loaded: {type(exc).__name__}: {exc}"
    logger.info("tool plugin %s loaded: %s", label, ", ".join(scratch.names()) or "no tools")
    return None
