"""Slash commands offered in the manifest, generated from the tool registry.

`bot manifest` has no settings and must not need the database or the network, so the registry
is built from the built-in tools (`default_registry(None)`: the tools only need settings and a
database when they run) plus the installed plugins' entry points; plugin modules named in
BOT_TOOL_MODULES are included when the caller passes them as `tool_modules`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.slack.manifest import SlashCommand

log = logging.getLogger(__name__)

# Not a tool: a whole model conversation, with the tools (bot.conversation.ask_job).
ASK_COMMAND = SlashCommand(
    "ask", "Ask the assistant a question; it can use its tools to answer.", "<question> [--public]"
)


# Not a tool either: the model is never offered it (bot.channel_settings.command_job).
SETTINGS_COMMAND = SlashCommand(
    "settings",
    "See this channel's settings; workspace admins change them.",
    "[workspace] [instructions|tools|answer|budget|model] [value]",
)
# Commands of the app itself, which no tool can take over.
APP_COMMANDS = (ASK_COMMAND, SETTINGS_COMMAND)


def manifest_commands(tool_modules: Sequence[str] = ()) -> list[SlashCommand]:
    """`/ask`, `/settings` and every registry tool's command, sorted by name."""
    from bot.builtin_tools import default_registry
    from bot.tools.plugins import load_plugins

    registry = default_registry(None)
    for problem in load_plugins(registry, tool_modules):
        log.warning("plugin problem=%r", problem)
    commands = {command.command: command for command in APP_COMMANDS}
    for spec in registry.slash_commands():
        name = spec.command.lstrip("/")
        commands.setdefault(name, SlashCommand(name, spec.description, spec.usage_hint))
    return [commands[name] for name in sorted(commands)]
