"""OAuth mode (many workspaces): slack_sdk's SQLAlchemy stores on our database, Bolt's OAuth
flow at /slack/install and /slack/oauth_redirect, and cached per-event authorization.

The stores' tables belong to our migrations (0004), never to `create_tables()`. Only bot
tokens are used (`bot_only`): a workspace's token is its newest row in `slack_bots`, so
revoking or uninstalling (which deletes those rows) stops the bot there at once.

slack_sdk's SQLAlchemy module imports sqlalchemy.ext.asyncio, which needs `greenlet`: it
is imported here lazily, so single-workspace mode never needs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from sqlalchemy import Engine, select

from bot.config import Settings
from bot.failures import Permanent
from bot.slack.manifest import BOT_SCOPES

if TYPE_CHECKING:
    from slack_bolt.authorization.authorize import InstallationStoreAuthorize
    from slack_bolt.oauth import OAuthFlow
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

log = logging.getLogger(__name__)

STATE_EXPIRATION_SECONDS = 600
# How long a worker reuses a workspace's token before reading it again: a revoked token
# is used at most this long by jobs already running (queued ones are deleted with the rest).
TOKEN_CACHE_SECONDS = 30.0


class WorkspaceNotInstalled(LookupError, Permanent):
    """No bot token for this workspace (never installed, or uninstalled): retrying cannot help."""

    reason = "not_installed"


def installation_store(settings: Settings, engine: Engine) -> SQLAlchemyInstallationStore:
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    return SQLAlchemyInstallationStore(client_id=settings.slack_client_id or "", engine=engine, logger=log)


def bolt_authorize(settings: Settings, store) -> InstallationStoreAuthorize:
    """Bolt's installation-store authorize with its auth.test cache on: one auth.test per
    token and web process, not one per event."""
    from slack_bolt.authorization.authorize import InstallationStoreAuthorize

    return InstallationStoreAuthorize(
        logger=logging.getLogger("bot.slack.bolt"),
        installation_store=store,
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        bot_only=True,
        cache_enabled=True,
    )


def oauth_flow(settings: Settings, engine: Engine, store, client: WebClient) -> OAuthFlow:
    """Bolt's flow; `client` (our base URL, no token) makes the oauth.v2.access exchange."""
    from slack_bolt.oauth import OAuthFlow
    from slack_bolt.oauth.oauth_settings import OAuthSettings
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    oauth_settings = OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        installation_store=store,
        installation_store_bot_only=True,
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_SECONDS, engine=engine, logger=log),
        state_expiration_seconds=STATE_EXPIRATION_SECONDS,
        logger=logging.getLogger("bot.slack.bolt"),
    )
    return OAuthFlow(client=client, settings=oauth_settings, logger=logging.getLogger("bot.slack.bolt"))


def find_bot_token(store, team_id: str) -> str | None:
    """The newest bot token installed for `team_id` (any enterprise), from the store's own table;
    else, for a workspace of an Enterprise Grid org, the org-wide install's token."""
    from bot.slack.org_workspaces import OrgWorkspace

    bots = store.bots
    newest = (bots.c.installed_at.desc(), bots.c.id.desc())
    query = (
        select(bots.c.bot_token)
        .where(bots.c.client_id == store.client_id, bots.c.team_id == team_id, bots.c.bot_token.is_not(None))
        .order_by(*newest)
        .limit(1)
    )
    org_wide = (
        select(bots.c.bot_token)
        .join(OrgWorkspace.__table__, OrgWorkspace.enterprise_id == bots.c.enterprise_id)
        .where(
            bots.c.client_id == store.client_id,
            OrgWorkspace.team_id == team_id,
            bots.c.is_enterprise_install.is_(True),
            bots.c.bot_token.is_not(None),
        )
        .order_by(*newest)
        .limit(1)
    )
    with store.engine.connect() as connection:
        return connection.execute(query).scalar_one_or_none() or connection.execute(org_wide).scalar_one_or_none()


def forget_tokens(store, *, enterprise_id: str | None, team_id: str | None) -> None:
    """Delete every installation and bot row of a workspace."""
    store.delete_bot(enterprise_id=enterprise_id, team_id=team_id)
    store.delete_installation(enterprise_id=enterprise_id, team_id=team_id)


class InstalledTokens:
    """Bot tokens by workspace for the worker, each read at most every TOKEN_CACHE_SECONDS."""

    def __init__(self, store, *, ttl: float = TOKEN_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def token_for(self, team_id: str) -> str:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(team_id)
        if cached is None or now >= cached[1]:
            token = find_bot_token(self.store, team_id)
            with self._lock:
                self._cache[team_id] = (token, now + self.ttl)
        else:
            token = cached[0]
        if not token:
            raise WorkspaceNotInstalled(f"the app is not installed in workspace {team_id}")
        return token
