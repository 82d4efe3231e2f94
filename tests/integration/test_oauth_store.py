"""slack_sdk's own store queries run against our migrated database (SQLite and PostgreSQL):
the tables migration 0004 creates are the ones the stores expect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.config import Settings
from bot.failures import Permanent
from bot.slack.oauth import InstalledTokens, WorkspaceNotInstalled, find_bot_token, forget_tokens, installation_store

CLIENT_ID = "1111.2222"


def _installation(team_id: str, token: str, installed_at: datetime, user_id: str = "U1") -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=None,
        team_id=team_id,
        team_name=f"Team {team_id}",
        bot_token=token,
        bot_id=f"B{team_id}",
        bot_user_id=f"UBOT{team_id}",
        bot_scopes="chat:write,app_mentions:read",
        user_id=user_id,
        installed_at=installed_at.timestamp(),
    )


@pytest.fixture
def store(engine):
    return installation_store(Settings(slack_client_id=CLIENT_ID, slack_client_secret="s"), engine)


def test_the_store_saves_finds_and_deletes_on_the_migrated_schema(store):
    earlier = datetime.now(UTC) - timedelta(hours=1)
    store.save(_installation("TA", "xoxb-a-old", earlier))
    store.save(_installation("TA", "xoxb-a-new", datetime.now(UTC)))
    store.save(_installation("TB", "xoxb-b", datetime.now(UTC)))

    assert store.find_bot(enterprise_id=None, team_id="TA").bot_token == "xoxb-a-new"
    found = store.find_installation(enterprise_id=None, team_id="TA")
    assert found.bot_token == "xoxb-a-new" and found.team_name == "Team TA"
    assert store.find_installation(enterprise_id=None, team_id="TA", user_id="U1") is not None
    assert find_bot_token(store, "TA") == "xoxb-a-new"
    assert find_bot_token(store, "TZ") is None

    forget_tokens(store, enterprise_id=None, team_id="TA")
    assert store.find_bot(enterprise_id=None, team_id="TA") is None
    assert store.find_installation(enterprise_id=None, team_id="TA") is None
    assert find_bot_token(store, "TA") is None
    assert find_bot_token(store, "TB") == "xoxb-b"


def test_another_client_id_does_not_see_the_tokens(store, engine):
    store.save(_installation("TA", "xoxb-a", datetime.now(UTC)))
    other = installation_store(Settings(slack_client_id="9999.0000", slack_client_secret="s"), engine)
    assert other.find_bot(enterprise_id=None, team_id="TA") is None
    assert find_bot_token(other, "TA") is None


def test_the_state_store_issues_and_consumes_once(engine):
    states = SQLAlchemyOAuthStateStore(expiration_seconds=60, engine=engine)
    state = states.issue()
    assert states.consume(state) is True
    assert states.consume(state) is False
    expired = SQLAlchemyOAuthStateStore(expiration_seconds=-1, engine=engine).issue()
    assert states.consume(expired) is False


def test_installed_tokens_are_cached_briefly(store):
    now = [0.0]
    tokens = InstalledTokens(store, ttl=30.0, clock=lambda: now[0])
    with pytest.raises(WorkspaceNotInstalled) as missing:
        tokens.token_for("TA")
    assert isinstance(missing.value, Permanent)
    store.save(_installation("TA", "xoxb-a", datetime.now(UTC)))
    with pytest.raises(WorkspaceNotInstalled):  # the miss is cached too
        tokens.token_for("TA")
    now[0] = 31.0
    assert tokens.token_for("TA") == "xoxb-a"
    forget_tokens(store, enterprise_id=None, team_id="TA")
    assert tokens.token_for("TA") == "xoxb-a"  # still cached
    now[0] = 62.0
    with pytest.raises(WorkspaceNotInstalled):
        tokens.token_for("TA")
