"""Our declarations of slack_sdk's OAuth tables match what slack_sdk's stores build, column
for column (the migration is held to our declarations by test_migrations' `alembic check`)."""

import pytest
from sqlalchemy import MetaData

from bot.slack import oauth_tables


def _shape(table):
    columns = [
        (c.name, type(c.type).__name__, getattr(c.type, "length", None), c.nullable, c.primary_key)
        for c in table.columns
    ]
    indexes = sorted((i.name, tuple(c.name for c in i.columns)) for i in table.indexes)
    return columns, indexes


def _slack_sdk_tables():
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    metadata = MetaData()
    return {
        "slack_installations": SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations"),
        "slack_bots": SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots"),
        "slack_oauth_states": SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states"),
    }


@pytest.mark.parametrize(
    "ours", [oauth_tables.installations, oauth_tables.bots, oauth_tables.oauth_states], ids=lambda t: t.name
)
def test_declared_like_slack_sdk_builds_them(ours):
    theirs = _slack_sdk_tables()[ours.name]
    assert _shape(ours) == _shape(theirs)


def test_the_default_table_names_are_slack_sdks():
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    assert oauth_tables.INSTALLATIONS_TABLE == SQLAlchemyInstallationStore.default_installations_table_name
    assert oauth_tables.BOTS_TABLE == SQLAlchemyInstallationStore.default_bots_table_name
    assert oauth_tables.STATES_TABLE == SQLAlchemyOAuthStateStore.default_table_name
