"""Enterprise Grid and per-workspace settings (#15), on SQLite and PostgreSQL, with slack_sdk's
SQLAlchemy installation store on our migrated schema and the fake Slack over HTTP.

An org-wide install stores one bot for the enterprise and no workspace: events of every
workspace of the org are authorized (web) and their jobs find the org's token (worker). In
OAuth mode a workspace's moderation reports go only to the channel that workspace set.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select

from bot.builtin_tools import moderation as moderation_tool
from bot.config import Settings
from bot.moderation import store as moderation_store
from bot.moderation.job import WorkspaceModeration
from bot.moderation.workspace import StoredSettings, effective, parse_channel
from bot.queue.models import Job
from bot.slack.clients import SlackClients
from bot.slack.oauth import InstalledTokens, WorkspaceNotInstalled, installation_store
from bot.slack.org_workspaces import OrgWorkspace
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import run_slash_command
from bot.web.app import create_web_app
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests as sr

CLIENT_ID = "1111.2222"
SECRET = "grid-secret"
ORG_TOKEN = "xoxb-org-wide"


def org_installation() -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id="E1",
        enterprise_name="Org",
        team_id=None,
        bot_token=ORG_TOKEN,
        bot_id="BORG",
        bot_user_id="UBOT",
        bot_scopes="chat:write,app_mentions:read",
        user_id="UINSTALLER",
        is_enterprise_install=True,
        installed_at=datetime.now(UTC).timestamp(),
    )


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_token(ORG_TOKEN, team_id="T2", enterprise_id="E1")
        yield fake


def oauth_settings(database_url: str, slack: FakeSlack, **extra) -> Settings:
    return Settings(
        database_url=database_url,
        slack_client_id=CLIENT_ID,
        slack_client_secret="client-secret",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        **extra,
    )


def post_org_event(client: httpx.Client, team_id: str) -> httpx.Response:
    event = sr.app_mention("<@UBOT> hello from the org", channel="C1", team=team_id)
    body = sr.event_callback(
        event,
        team_id=team_id,
        authorizations=[
            {
                "enterprise_id": "E1",
                "team_id": team_id,
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": True,
            }
        ],
    )
    body["enterprise_id"] = body["context_enterprise_id"] = "E1"
    body["is_enterprise_install"] = True
    raw = json.dumps(body)
    return client.post("/slack/events", content=raw, headers=sr.signed_headers(SECRET, raw, int(time.time())))


def test_an_org_wide_install_answers_in_every_workspace_of_the_org(database_url, engine, sessions, slack):
    settings = oauth_settings(database_url, slack)
    store = installation_store(settings, engine)
    store.save(org_installation())
    app = create_web_app(settings, warm_up=False)
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
            for team in ("T2", "T3"):
                assert post_org_event(client, team).status_code == 200
    finally:
        app.engine.dispose()
    with sessions() as session:
        jobs = sorted(session.execute(select(Job.team_id).where(Job.kind == "reply")).scalars())
        pairs = set(session.execute(select(OrgWorkspace.team_id, OrgWorkspace.enterprise_id)).all())
    assert jobs == ["T2", "T3"] and pairs == {("T2", "E1"), ("T3", "E1")}
    # The worker: each workspace of the org gets the org's token; a workspace never seen does not.
    clients = SlackClients(settings, InstalledTokens(store))
    assert clients.for_team("T2").token == ORG_TOKEN and clients.for_team("T3").token == ORG_TOKEN
    with pytest.raises(WorkspaceNotInstalled):
        clients.for_team("T9")


def test_uninstalling_an_org_wide_install_forgets_the_org(database_url, engine, sessions, slack):
    settings = oauth_settings(database_url, slack)
    store = installation_store(settings, engine)
    store.save(org_installation())
    app = create_web_app(settings, warm_up=False)
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
            for team in ("T2", "T3"):
                assert post_org_event(client, team).status_code == 200
            body = sr.event_callback(
                {"type": "app_uninstalled", "event_ts": str(time.time())},
                team_id="T2",
                authorizations=[
                    {
                        "enterprise_id": "E1",
                        "team_id": "T2",
                        "user_id": "UBOT",
                        "is_bot": True,
                        "is_enterprise_install": True,
                    }
                ],
            )
            body["enterprise_id"] = "E1"
            body["is_enterprise_install"] = True
            raw = json.dumps(body)
            response = client.post(
                "/slack/events", content=raw, headers=sr.signed_headers(SECRET, raw, int(time.time()))
            )
            assert response.status_code == 200
    finally:
        app.engine.dispose()
    assert store.find_bot(enterprise_id="E1", team_id=None, is_enterprise_install=True) is None
    with pytest.raises(WorkspaceNotInstalled):
        InstalledTokens(store).token_for("T3")
    with sessions() as session:
        forgets = sorted(session.execute(select(Job.team_id).where(Job.kind == "forget_workspace")).scalars())
    assert forgets == ["T2", "T3"]


def test_a_workspace_install_still_wins_over_the_org(database_url, engine, sessions, slack):
    settings = oauth_settings(database_url, slack)
    store = installation_store(settings, engine)
    store.save(org_installation())
    store.save(
        Installation(
            app_id="A1",
            enterprise_id="E1",
            team_id="T2",
            bot_token="xoxb-t2",
            bot_id="BT2",
            bot_user_id="UBOT",
            user_id="U1",
            installed_at=datetime.now(UTC).timestamp(),
        )
    )
    from bot.slack.org_workspaces import remember_org_workspace

    with sessions.begin() as session:
        remember_org_workspace(session, team_id="T2", enterprise_id="E1")
    assert InstalledTokens(store).token_for("T2") == "xoxb-t2"


@pytest.mark.parametrize(
    ("stored", "oauth", "expected"),
    [
        (None, False, ("CENV", "xoxp-env")),
        (StoredSettings("COWN", None), False, ("COWN", "xoxp-env")),
        (None, True, (None, None)),  # OAuth: the environment belongs to no particular workspace
        (StoredSettings("COWN", "xoxp-own"), True, ("COWN", "xoxp-own")),
    ],
)
def test_which_channel_and_token_a_workspace_uses(stored, oauth, expected):
    result = effective(stored, env_report_channel="CENV", env_admin_token="xoxp-env", oauth=oauth)
    assert (result.report_channel, result.admin_user_token) == expected


@pytest.mark.parametrize(
    ("text", "channel"), [("C0123ABC", "C0123ABC"), ("<#C0123ABC|mods>", "C0123ABC"), ("general", None), ("", None)]
)
def test_parse_channel(text, channel):
    assert parse_channel(text) == channel


def test_moderation_settings_are_per_workspace_and_set_by_a_person_only(database_url, sessions, slack):
    registry = ToolRegistry()
    moderation_tool.register(registry)
    settings = oauth_settings(database_url, slack, moderation_report_channel="CENV")
    slack.add_token("xoxp-admin-t1", team_id="T1")
    slack.add_token("xoxp-admin-t2", team_id="T2")
    from bot.slack.clients import web_client

    def ctx(team: str, *, typed: bool = True) -> ToolContext:
        return ToolContext(
            team_id=team,
            channel_id="CHERE",
            user_id="UADMIN",
            user_is_admin=True,
            slack=web_client(settings, "xoxb-test-token"),
            db=sessions,
            settings=settings,
            typed_by_person=typed,
        )

    set_report = run_slash_command(registry, "/moderation", "report <#CMODS1|mods>", ctx("T1"))
    assert set_report.result.ok and "<#CMODS1>" in set_report.result.content
    wrong_token = run_slash_command(registry, "/moderation", "token xoxp-admin-t2", ctx("T1"))
    assert not wrong_token.result.ok and "another workspace" in wrong_token.result.content
    assert run_slash_command(registry, "/moderation", "token xoxp-admin-t1", ctx("T1")).result.ok
    # The model cannot redirect reports, even for an admin.
    from bot.tools.runner import run_tool

    by_model = run_tool(registry, "moderation", json.dumps({"action": "report C_ATTACKER"}), ctx("T1", typed=False))
    assert not by_model.ok and "only be set with the /moderation command" in by_model.content
    workspaces = WorkspaceModeration(sessions, settings)
    t1, t2 = workspaces.effective("T1"), workspaces.effective("T2")
    assert (t1.report_channel, t1.admin_user_token) == ("CMODS1", "xoxp-admin-t1")
    assert (t2.report_channel, t2.admin_user_token) == (None, None)  # never T1's, never the environment's
    with sessions() as session:
        assert moderation_store.workspace_settings(session, "T2") is None
