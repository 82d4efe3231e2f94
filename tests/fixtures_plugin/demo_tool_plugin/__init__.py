"""A plugin adding one tool, `shout`, with the slash command `/shout`."""

from bot.tools.registry import ToolContext, ToolRegistry


def shout(ctx: ToolContext, text: str, times: int = 1) -> str:
    """Repeat text in capitals.

    Args:
        text: What to shout.
        times: How many times.
    """
    return " ".join([text.upper()] * times)


def register(registry: ToolRegistry) -> None:
    registry.add(shout, command="shout")
