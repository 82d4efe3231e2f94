"""Build and send requests the way Slack sends them to the bot: signed events, slash commands, interactivity.

    event = slack_requests.event_callback(slack_requests.app_mention("<@UBOT> hello"))
    response = slack_requests.post_signed(f"{web_url}/slack/events", event, SIGNING_SECRET)

Bodies are JSON for events (a dict) and ``application/x-www-form-urlencoded`` for slash commands and
interactivity (a str from :func:`slash_command_form` / :func:`interactivity_form`). ``ts`` values come from
``tests.fakes.slack.next_ts``, so they never collide with the ts of messages the fake Slack hands out.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.http import tls_context
from tests.fakes.slack import next_ts

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
BOT_USER_ID = "UBOT"
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def signed_headers(
    secret: str, body: bytes | str, timestamp: int | None = None, content_type: str | None = JSON_CONTENT_TYPE
) -> dict[str, str]:
    """``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` for `body` (and Content-Type unless None)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=_bytes(body))
    assert signature is not None
    headers = {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def new_event_id() -> str:
    return "Ev" + uuid.uuid4().hex[:10].upper()


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str = "T1",
    event_id: str | None = None,
    api_app_id: str = "A1",
    authorizations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The Events API envelope around `event` (a fresh event_id unless given)."""
    if authorizations is None:
        authorizations = [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ]
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(float(event.get("event_ts") or time.time())),
        "authorizations": authorizations,
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The rich_text block Slack attaches to a typed message (mentions become user elements)."""
    elements: list[dict[str, Any]] = []
    position = 0
    for match in _MENTION.finditer(text):
        if match.start() > position:
            elements.append({"type": "text", "text": text[position : match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        position = match.end()
    if position < len(text):
        elements.append({"type": "text", "text": text[position:]})
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def _user_message(
    event_type: str, text: str, user: str, channel: str, ts: str | None, thread_ts: str | None, team: str
) -> dict[str, Any]:
    ts = ts or next_ts()
    event: dict[str, Any] = {
        "type": event_type,
        "user": user,
        "text": text,
        "ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "team": team,
        "blocks": rich_text_blocks(text),
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def app_mention(
    text: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    ts: str | None = None,
    thread_ts: str | None = None,
    files: list[dict[str, Any]] | None = None,
    team: str = "T1",
) -> dict[str, Any]:
    """An ``app_mention`` event; put the mention in `text` yourself ("<@UBOT> hi")."""
    event = _user_message("app_mention", text, user, channel, ts, thread_ts, team)
    if files:
        event["files"] = files
    return event


def message(
    text: str,
    *,
    user: str,
    channel: str,
    channel_type: str = "channel",
    ts: str | None = None,
    thread_ts: str | None = None,
    subtype: str | None = None,
    files: list[dict[str, Any]] | None = None,
    bot_id: str | None = None,
    team: str = "T1",
) -> dict[str, Any]:
    """A ``message`` event (channel_type "im" for a DM). With files and no subtype, subtype is "file_share"."""
    event = _user_message("message", text, user, channel, ts, thread_ts, team)
    event["channel_type"] = channel_type
    if files:
        event["files"] = files
        subtype = subtype or "file_share"
    if subtype:
        event["subtype"] = subtype
    if bot_id:
        event["bot_id"] = bot_id
        event.pop("client_msg_id")
    return event


def message_changed(
    channel: str,
    ts: str,
    new_text: str,
    *,
    user: str = "U1",
    previous_text: str = "",
    channel_type: str = "channel",
    thread_ts: str | None = None,
    team: str = "T1",
) -> dict[str, Any]:
    """A ``message_changed`` event: the message at `ts` now reads `new_text`."""
    event_ts = next_ts()
    current = {"type": "message", "user": user, "text": new_text, "ts": ts, "team": team}
    previous = {"type": "message", "user": user, "text": previous_text, "ts": ts, "team": team}
    if thread_ts:
        current["thread_ts"] = previous["thread_ts"] = thread_ts
    current["edited"] = {"user": user, "ts": event_ts}
    current["blocks"] = rich_text_blocks(new_text)
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": current,
        "previous_message": previous,
        "channel": channel,
        "channel_type": channel_type,
        "ts": event_ts,
        "event_ts": event_ts,
    }


def message_deleted(
    channel: str,
    ts: str,
    *,
    user: str = "U1",
    previous_text: str = "",
    channel_type: str = "channel",
    thread_ts: str | None = None,
    team: str = "T1",
) -> dict[str, Any]:
    """A ``message_deleted`` event for the message at `ts`."""
    event_ts = next_ts()
    previous = {"type": "message", "user": user, "text": previous_text, "ts": ts, "team": team}
    if thread_ts:
        previous["thread_ts"] = thread_ts
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": ts,
        "previous_message": previous,
        "channel": channel,
        "channel_type": channel_type,
        "ts": event_ts,
        "event_ts": event_ts,
    }


def slash_command_form(
    command: str,
    text: str,
    *,
    user_id: str = "U1",
    channel_id: str = "C1",
    team_id: str = "T1",
    response_url: str,
    user_name: str = "alice",
    channel_name: str = "general",
    team_domain: str = "test-workspace",
    api_app_id: str = "A1",
    trigger_id: str | None = None,
) -> str:
    """A slash-command body, fields in the order Slack sends them."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "team_domain": team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        }
    )


def block_actions(
    *,
    user: str,
    channel: str,
    channel_name: str,
    message: dict[str, Any],
    action: dict[str, Any],
    response_url: str,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload as Slack sends it for a click on ``message`` (``action``
    without its ``action_ts``)."""
    container = {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False}
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex}",
        "team": {"id": "T1", "domain": "test-workspace"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "message": message,
        "response_url": response_url,
        "actions": [{**action, "action_ts": str(time.time())}],
    }


def interactivity_form(payload: dict[str, Any]) -> str:
    """An interactivity body: ``payload=<url-encoded JSON>``."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def post_signed(
    url: str,
    body: dict[str, Any] | str | bytes,
    secret: str,
    *,
    headers: dict[str, str] | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timestamp: int | None = None,
    timeout: float = 10,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST `body` signed with `secret`: a dict goes as JSON, a str/bytes as a form (unless headers say otherwise).

    With `retry_num`, adds ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason`` as Slack does on redelivery.
    With `client`, through it (an in-process web app behind httpx's WSGI transport).
    """
    if isinstance(body, dict):
        raw, content_type = json.dumps(body).encode("utf-8"), JSON_CONTENT_TYPE
    else:
        raw, content_type = _bytes(body), FORM_CONTENT_TYPE
    all_headers = {"User-Agent": SLACK_USER_AGENT, **signed_headers(secret, raw, timestamp, content_type)}
    if retry_num is not None:
        all_headers["X-Slack-Retry-Num"] = str(retry_num)
        all_headers["X-Slack-Retry-Reason"] = retry_reason
    all_headers.update(headers or {})
    if client is not None:
        return client.post(url, content=raw, headers=all_headers, timeout=timeout)
    # A client per request, as Slack's are; with the shared TLS context, not a CA bundle loaded for each.
    return httpx.post(url, content=raw, headers=all_headers, timeout=timeout, verify=tls_context())
