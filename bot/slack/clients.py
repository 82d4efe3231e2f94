"""Slack Web API clients: retry handlers on, the token sent only to Slack's host, no broadcast
or user-group mention in anything the bot posts, and no link previews: Slack unfurls links and
media in bot messages unless ``unfurl_links``/``unfurl_media`` are false, and a preview fetches
the URL with no click (a channel for leaking data from prompt-injected output; DESIGN-NOTES, Slack)."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.config import Settings
from bot.slack.mentions import neutralize_payload

# Every method that posts text people see. The payload is neutralized as a whole (text,
# blocks, markdown_text, chunks, attachments), whatever path built it.
POSTING_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.scheduleMessage",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "chat.meMessage",
    }
)


# The methods that take unfurl_links / unfurl_media (chat.postMessage's documented arguments).
UNFURLING_METHODS = frozenset({"chat.postMessage", "chat.scheduleMessage"})
NO_PREVIEWS = {"unfurl_links": False, "unfurl_media": False}


def without_previews(payload):
    """``payload`` with link and media previews off, unless it says otherwise."""
    if payload is None:
        return None
    return {**NO_PREVIEWS, **payload}


class SafeWebClient(WebClient):
    """A WebClient that neutralizes `<!channel>`, `<!here>`, `<!everyone>` and `<!subteam^…>`
    in everything it posts (see bot.slack.mentions), and posts without link previews."""

    def api_call(self, api_method: str, *, json=None, data=None, params=None, **kwargs):
        if api_method in POSTING_METHODS:
            json, data, params = neutralize_payload(json), neutralize_payload(data), neutralize_payload(params)
        if api_method in UNFURLING_METHODS:
            if json is not None or data is None:
                json = without_previews(json if json is not None else {})
            else:
                data = without_previews(data)
        return super().api_call(api_method, json=json, data=data, params=params, **kwargs)


def retry_handlers() -> list:
    # slack_sdk honours Retry-After on 429s; we never retry Slack calls by hand.
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def without_rate_limit_retries(client: WebClient) -> WebClient:
    """A client like ``client`` whose 429s are raised, not waited out (a background job
    reschedules itself after Retry-After instead of sleeping in a worker thread). Anything that
    is not a WebClient (the terminal of `bot chat`) is returned as it is."""
    if not isinstance(client, WebClient):
        return client
    return SafeWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=[h for h in client.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)],
    )


def web_client(settings: Settings, token: str | None) -> WebClient:
    return SafeWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=retry_handlers(),
    )


class SlackClients:
    """The bot's WebClient for a workspace: SLACK_BOT_TOKEN (one workspace), or in OAuth mode
    the workspace's installed token (`installations`: bot.slack.oauth.InstalledTokens)."""

    def __init__(self, settings: Settings, installations=None):
        self.settings = settings
        self.installations = installations
        self._single = web_client(settings, settings.slack_bot_token) if settings.slack_bot_token else None
        self._by_token: dict[str, WebClient] = {}

    def for_team(self, team_id: str) -> WebClient:
        if self.installations is not None:
            token = self.installations.token_for(team_id)  # raises WorkspaceNotInstalled
            client = self._by_token.get(token)
            if client is None:
                client = self._by_token[token] = web_client(self.settings, token)
            return client
        if self._single is None:
            raise LookupError(f"no Slack token for team {team_id}")
        return self._single
