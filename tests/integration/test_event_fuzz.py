"""Event payload fuzzing: whatever a signed request carries, the web app answers below 500."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from bot.config import Settings
from bot.conversation.engagement import classify, decide
from bot.web.app import create_web_app

SECRET = "fuzz-secret"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
event_types = st.sampled_from(["message", "app_mention", "app_home_opened", "assistant_thread_started", "x"])
subtypes = st.sampled_from([None, "message_changed", "message_deleted", "file_share", "bot_message", "weird"])
events = st.fixed_dictionaries(
    {"type": event_types},
    optional={
        "subtype": subtypes,
        "user": st.text(max_size=12) | json_values,
        "text": st.text(max_size=60) | json_values,
        "ts": st.text(max_size=20) | json_values,
        "thread_ts": st.text(max_size=20) | json_values,
        "channel": st.text(max_size=12) | json_values,
        "channel_type": st.sampled_from(["im", "channel", "mpim", "group"]) | json_values,
        "files": st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=3) | json_values,
        "message": st.dictionaries(st.sampled_from(["ts", "text", "thread_ts", "user", "files"]), json_values)
        | json_values,
        "deleted_ts": st.text(max_size=20) | json_values,
        "tab": st.sampled_from(["messages", "home"]) | json_values,
        "assistant_thread": json_values,
        "bot_id": st.none() | st.text(max_size=10),
    },
)


@given(event=events)
@settings(max_examples=300, deadline=None)
def test_classification_never_crashes_on_strings(event):
    try:
        inbound = classify(event, bot_user_id="UBOT", bot_id="BBOT", allow_bots=False)
    except (TypeError, AttributeError, ValueError) as exc:  # only non-string junk may be refused, not crash
        pytest.fail(f"classify raised {exc!r} for {event!r}")
    decide(inbound, thread_engaged=False, answer_followups=True)


@pytest.fixture(scope="module")
def client(tmp_path_factory, sqlite_template):
    import shutil

    from tests.fakes.slack import FakeSlack

    path = tmp_path_factory.mktemp("fuzz") / "bot.sqlite3"
    shutil.copy(sqlite_template, path)
    with FakeSlack() as slack:
        settings_ = Settings(
            database_url=f"sqlite:///{path}",
            slack_bot_token="xoxb-test-token",
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
        )
        app = create_web_app(settings_)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as http:
            yield http
        app.engine.dispose()


@given(
    event=events,
    envelope_extra=st.dictionaries(st.sampled_from(["team_id", "event_id", "authorizations"]), json_values, max_size=3),
)
@example(event={"type": "assistant_thread_started", "channel": "0", "assistant_thread": {}}, envelope_extra={})
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_signed_random_events_never_get_a_5xx(client, event, envelope_extra):
    body = {"type": "event_callback", "team_id": "T1", "event_id": f"Ev{time.monotonic_ns()}", "event": event}
    body.update(envelope_extra)
    raw = json.dumps(body)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=raw)
    response = client.post(
        "/slack/events",
        content=raw,
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            "Content-Type": "application/json",
        },
    )
    assert response.status_code < 500, (response.status_code, body)
