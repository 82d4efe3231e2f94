"""Slash commands offered in the manifest, generated from the tool registry."""

from __future__ import annotations

from bot.slack.manifest import SlashCommand


def manifest_commands() -> list[SlashCommand]:
    # The tool registry becomes the source of slash commands once it is wired (tools issue).
    return []
