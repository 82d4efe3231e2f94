"""A plugin that fails halfway: it adds a tool, then raises. None of its tools may stay."""

from bot.tools.registry import ToolContext, ToolRegistry


def whisper(ctx: ToolContext, text: str) -> str:
    """Repeat text in lowercase.

    Args:
        text: What to whisper.
    """
    return text.lower()


def register(registry: ToolRegistry) -> None:
    registry.add(whisper, command="whisper")
    raise RuntimeError("the plugin's configuration is missing")
