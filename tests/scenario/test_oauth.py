"""OAuth mode end to end, in one process (tests.support.in_process): two workspaces install through
/slack/install and /slack/oauth_redirect (the token exchange goes to the fake Slack), each is
answered with its own token and sees only its own history, and uninstalling one deletes its
tokens and everything stored for it. (It ran against gunicorn and a worker process in tests/e2e;
nothing here is about the process boundary.)"""

from __future__ import annotations

import json
import re
from html import unescape

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.config import normalize_database_url
from tests.fakes.slack import next_ts
from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import SIGNING_SECRET, wait_for
from tests.support.stacks import wait_idle

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "oauth-client-secret"
WORKSPACES = {
    "TALPHA": {"token": "xoxb-alpha-token", "bot_user": "UBOTA", "bot_id": "BBOTA"},
    "TBETA": {"token": "xoxb-beta-token", "bot_user": "UBOTB", "bot_id": "BBOTB"},
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def oauth_stack(request, tmp_path_factory):
    return build_stack(
        request,
        tmp_path_factory,
        request.param,
        SLACK_BOT_TOKEN="",
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
    )


def install(stack, team_id: str) -> None:
    """The browser's side of the OAuth flow: the install page, Slack's redirect back with a code."""
    workspace = WORKSPACES[team_id]
    code = f"code-{team_id}"
    stack.slack.add_oauth_code(
        code,
        access_token=workspace["token"],
        team_id=team_id,
        team_name=f"Workspace {team_id}",
        bot_user_id=workspace["bot_user"],
        bot_id=workspace["bot_id"],
    )
    with stack.browser(timeout=10) as browser:
        page = browser.get("/slack/install")
        assert page.status_code == 200, page.text
        authorize_url = unescape(re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text).group(1))
        assert f"client_id={CLIENT_ID}" in authorize_url
        state = re.search(r"state=([^&]+)", authorize_url).group(1)
        cookie = page.headers["set-cookie"].split(";")[0]
        done = browser.get("/slack/oauth_redirect", params={"code": code, "state": state}, headers={"Cookie": cookie})
    assert done.status_code == 200, done.text
    assert [call for call in stack.slack.calls_to("oauth.v2.access") if call.params.get("code") == code]


def post_event(stack, team_id: str, event: dict) -> httpx.Response:
    body = sr.event_callback(
        event,
        team_id=team_id,
        authorizations=[
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": WORKSPACES.get(team_id, {}).get("bot_user", "UBOT"),
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    )
    return sr.post_signed(f"{stack.url}/slack/events", body, SIGNING_SECRET, client=stack.http)


def count(stack, sql: str, **params) -> int:
    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def tokens_used_for(stack, method: str) -> set[str]:
    return {call.headers.get("Authorization", "").removeprefix("Bearer ") for call in stack.slack.calls_to(method)}


def test_two_workspaces_never_see_each_other_and_uninstalling_forgets_one(oauth_stack):
    stack = oauth_stack
    install(stack, "TALPHA")
    install(stack, "TBETA")
    assert count(stack, "SELECT count(*) FROM slack_bots WHERE client_id = :c", c=CLIENT_ID) == 2

    # The same channel id and message ts in both workspaces.
    channel, ts = "CSHARED01", next_ts()
    alpha = sr.app_mention("<@UBOTA> the launch code is zebra-alpha-42", channel=channel, ts=ts, team="TALPHA")
    assert post_event(stack, "TALPHA", alpha).status_code == 200
    wait_for(lambda: any("zebra-alpha-42" in json.dumps(r[2]) for r in stack.inference.requests), timeout=20)
    wait_idle(stack)
    beta = sr.app_mention("<@UBOTB> what is the launch code?", channel=channel, ts=ts, team="TBETA")
    assert post_event(stack, "TBETA", beta).status_code == 200
    assert wait_for(
        lambda: [r for r in stack.inference.requests if "what is the launch code?" in json.dumps(r[2])], timeout=20
    ), stack.logs()[-3000:]
    wait_idle(stack)

    [beta_request] = [r[2] for r in stack.inference.requests if "what is the launch code?" in json.dumps(r[2])]
    assert "zebra-alpha" not in json.dumps(beta_request)
    assert [m["role"] for m in beta_request["messages"]] == ["system", "user"]
    # Each workspace was answered with its own token.
    posted_with = tokens_used_for(stack, "chat.startStream") | tokens_used_for(stack, "chat.postMessage")
    assert {"xoxb-alpha-token", "xoxb-beta-token"} <= posted_with

    # Alpha uninstalls: its tokens go at once, its history soon after (the worker's job).
    response = post_event(stack, "TALPHA", {"type": "app_uninstalled"})
    assert response.status_code == 200
    assert count(stack, "SELECT count(*) FROM slack_bots WHERE team_id = 'TALPHA'") == 0
    assert count(stack, "SELECT count(*) FROM slack_installations WHERE team_id = 'TALPHA'") == 0
    assert wait_for(
        lambda: count(stack, "SELECT count(*) FROM thread_messages WHERE team_id = 'TALPHA'") == 0, timeout=20
    ), stack.logs()[-3000:]
    wait_idle(stack)
    assert count(stack, "SELECT count(*) FROM threads WHERE team_id = 'TALPHA'") == 0
    assert count(stack, "SELECT count(*) FROM idempotency_keys WHERE team_id = 'TALPHA'") == 0
    assert count(stack, "SELECT count(*) FROM jobs WHERE team_id = 'TALPHA' AND kind = 'reply'") == 0
    # Beta is untouched.
    assert count(stack, "SELECT count(*) FROM thread_messages WHERE team_id = 'TBETA'") >= 2
    assert count(stack, "SELECT count(*) FROM slack_bots WHERE team_id = 'TBETA'") == 1

    # An event from the uninstalled workspace is no longer authorized: nothing is stored or queued.
    again = sr.app_mention("<@UBOTA> are you there?", channel=channel, team="TALPHA")
    post_event(stack, "TALPHA", again)
    assert count(stack, "SELECT count(*) FROM thread_messages WHERE team_id = 'TALPHA'") == 0
    assert count(stack, "SELECT count(*) FROM jobs WHERE team_id = 'TALPHA' AND kind = 'reply'") == 0


def test_revoking_the_bot_token_removes_it(oauth_stack):
    stack = oauth_stack
    team = "TGAMMA"
    WORKSPACES[team] = {"token": "xoxb-gamma-token", "bot_user": "UBOTG", "bot_id": "BBOTG"}
    install(stack, team)
    assert count(stack, "SELECT count(*) FROM slack_bots WHERE team_id = :t", t=team) == 1
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOTG"]}}
    assert post_event(stack, team, revoked).status_code == 200
    assert count(stack, "SELECT count(*) FROM slack_bots WHERE team_id = :t", t=team) == 0
    assert count(stack, "SELECT count(*) FROM slack_installations WHERE team_id = :t", t=team) == 0
