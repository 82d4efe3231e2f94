"""The admin token never in a job payload (issue 22), on PostgreSQL: `/moderation token xoxp-…`
is checked and stored by the web process before it acknowledges; no job carries the token."""

from __future__ import annotations

import json
import uuid

import pytest

from bot.moderation import store
from tests.scenario.conftest import new_channel, start_scenario
from tests.support import slack_requests as sr


@pytest.fixture
def scenario(postgres_url, fakes):
    yield from start_scenario(postgres_url, fakes)


def token_command(scenario, text: str, user: str):
    form = sr.slash_command_form(
        "/moderation",
        text,
        user_id=user,
        channel_id=new_channel(),
        response_url=scenario.slack.response_url(uuid.uuid4().hex),
    )
    return scenario.post_form(form)


def test_the_admin_token_is_stored_by_the_web_and_never_queued(scenario):
    scenario.slack.add_user("UADMIN", name="ada", is_admin=True)
    scenario.slack.add_user("UPLAIN", name="pat", is_admin=False)
    scenario.slack.add_token("xoxp-admin-token", team_id="T1", user_id="UADMIN", is_admin=True)
    refused = token_command(scenario, "token xoxp-admin-token", "UPLAIN")
    assert refused.status_code == 200 and refused.json()["text"] == "Only workspace admins can use /moderation."
    stored = token_command(scenario, "token xoxp-admin-token", "UADMIN")
    assert stored.status_code == 200 and stored.json()["text"] == "The admin token is stored: removals are on."
    with scenario.runtime.sessions() as session:
        assert store.workspace_settings(session, "T1").admin_user_token == "xoxp-admin-token"
    assert not any("xoxp-" in json.dumps(job.payload) for job in scenario.jobs())
    wrong = token_command(scenario, "token xoxp-unknown", "UADMIN")
    assert wrong.json()["text"] == "Slack refused that token (invalid_auth)."
