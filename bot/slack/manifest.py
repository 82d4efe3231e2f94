"""The Slack app manifest (pure): scopes, events and slash commands the bot needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BOT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "mpim:history",
    "mpim:read",
    "reactions:write",
    "users:read",
)

BOT_EVENTS = (
    "agent_session_stopped",  # the native Stop button (needs assistant:write and chat:write)
    "app_home_opened",
    "app_mention",
    "app_uninstalled",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "tokens_revoked",
)

SUGGESTED_PROMPTS = (
    {"title": "What can you do?", "message": "What can you help me with, and which tools do you have?"},
    {"title": "Summarize a thread", "message": "Summarize this conversation in five bullet points."},
    {"title": "Explain a screenshot", "message": "I'll paste a screenshot: explain what it shows."},
)


@dataclass(frozen=True)
class SlashCommand:
    command: str  # without the slash
    description: str
    usage_hint: str = ""


def build_manifest(
    *,
    url: str | None = None,
    socket_mode: bool = False,
    commands: Sequence[SlashCommand] = (),
    name: str = "AI Assistant",
) -> dict:
    base = (url or "https://YOUR-APP.herokuapp.com").rstrip("/")
    events_url = f"{base}/slack/events"
    features: dict = {
        "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True, "messages_tab_read_only_enabled": False},
        "bot_user": {"display_name": name, "always_online": True},
        "agent_view": {
            "agent_description": "Answers questions in threads and DMs, reads screenshots, and runs tools.",
            "suggested_prompts": list(SUGGESTED_PROMPTS),
        },
    }
    if commands:
        features["slash_commands"] = [
            {
                "command": f"/{command.command}",
                "description": command.description[:100],
                **({"usage_hint": command.usage_hint[:100]} if command.usage_hint else {}),
                "should_escape": False,
                **({} if socket_mode else {"url": events_url}),
            }
            for command in sorted(commands, key=lambda c: c.command)
        ]
    settings: dict = {
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    oauth_config: dict = {"scopes": {"bot": list(BOT_SCOPES)}}
    if not socket_mode:
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
        oauth_config["redirect_urls"] = [f"{base}/slack/oauth_redirect"]
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "An AI assistant on Heroku Managed Inference.",
            "background_color": "#3b2f63",
        },
        "features": features,
        "oauth_config": oauth_config,
        "settings": settings,
    }
