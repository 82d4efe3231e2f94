"""A tool plugin for tests (BOT_TOOL_MODULES=tests.support.admin_tool_plugin): one admin-only tool."""

from bot.tools.registry import Permission, ToolContext, ToolRegistry


def purge_cache(ctx: ToolContext) -> str:
    """Purge the assistant's caches (admins only)."""
    return f"Caches purged by {ctx.user_id}."


def register(registry: ToolRegistry) -> None:
    registry.add(purge_cache, command="purge", permission=Permission.ADMINS)
