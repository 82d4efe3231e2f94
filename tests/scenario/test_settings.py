"""Channel settings (#25) end to end, in one process (tests.support.in_process): signed requests →
web app → queue → worker → fakes, on SQLite and PostgreSQL. `/settings` changes a channel's
instructions and tools for its answers only, and the App Home's Edit button opens the modal from
the web app's lazy listener within the trigger's 3 seconds. (It ran against gunicorn and a worker
process in tests/e2e; nothing here is about the process boundary.)"""

from __future__ import annotations

import json
import time
import uuid

from bot.channel_settings.views import EDIT_ACTION
from tests.support import slack_requests as sr
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

ADMIN = "UADMINE2E"


def settings(stack, text: str, channel: str) -> str:
    name = uuid.uuid4().hex
    form = sr.slash_command_form(
        "/settings", text, user_id=ADMIN, channel_id=channel, response_url=stack.slack.response_url(name)
    )
    assert stack.post_form(form).status_code == 200
    assert wait_for(lambda: stack.slack.responses_to(name), timeout=20), stack.logs()[-3000:]
    return stack.slack.responses_to(name)[0].body["text"]


def request_for(stack, channel: str) -> dict:
    """The model request answering in ``channel`` (its system prompt names the channel)."""

    def found():
        for request in reversed(stack.inference.requests):
            body = request.body if isinstance(request.body, dict) else {}
            system = next((m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")
            if f"#{channel.lower()}" in system:
                return body
        return None

    body = wait_for(found, timeout=20)
    assert body, stack.logs()[-3000:]
    return body


def test_settings_change_only_their_channels_answers(fresh):
    stack = fresh
    stack.slack.add_user(ADMIN, name="ada", is_admin=True)
    a, b = new_channel(), new_channel()
    assert settings(stack, "instructions Reply in the voice of a ship's captain.", a).startswith("Done:")
    assert settings(stack, "tools calculate", a).startswith("Done:")
    for channel in (a, b):
        assert stack.post_event(sr.app_mention("<@UBOT> hello", channel=channel)).status_code == 200
    in_a, in_b = request_for(stack, a), request_for(stack, b)
    system_a = next(m["content"] for m in in_a["messages"] if m["role"] == "system")
    assert system_a.endswith("Reply in the voice of a ship's captain.")
    assert "captain" not in json.dumps(in_b["messages"][0])
    assert [t["function"]["name"] for t in in_a["tools"]] == ["calculate"]
    assert len(in_b["tools"]) > 1
    wait_idle(stack)


def test_the_home_tabs_edit_button_opens_the_modal(fresh):
    stack = fresh
    stack.slack.add_user(ADMIN, name="ada", is_admin=True)
    channel = new_channel()
    settings(stack, "answer mentions", channel)
    payload = {
        "type": "block_actions",
        "user": {"id": ADMIN, "username": "ada", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": "VHOME"},
        "trigger_id": stack.slack.new_trigger_id(),
        "team": {"id": "T1", "domain": "test-workspace"},
        "view": {"id": "VHOME", "type": "home", "hash": "1.1"},
        "actions": [
            {
                "type": "button",
                "action_id": EDIT_ACTION,
                "block_id": "b",
                "value": channel,
                "action_ts": str(time.time()),
            }
        ],
    }
    assert stack.post_form(sr.interactivity_form(payload)).status_code == 200
    # The fake refuses a trigger older than 3 s (expired_trigger_id): an ok call came in time.
    opened = wait_for(lambda: [c for c in stack.slack.calls_to("views.open") if c.ok] or None, timeout=10)
    assert opened, stack.logs()[-3000:]
    view = stack.slack.view(opened[0].response["view"]["id"])
    answer = next(b for b in view["blocks"] if b.get("block_id", "").startswith("setting_answer"))
    assert answer["element"]["initial_option"]["value"] == "mentions"
