"""The Bolt app factory: one place that wires listeners to an App."""

from __future__ import annotations

import logging
import re

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.builtin_tools import configured_registry
from bot.config import Settings
from bot.slack.authorization import SingleWorkspaceAuthorization
from bot.slack.clients import web_client
from bot.slack_app.listeners import (
    agent,
    approvals,
    commands,
    home,
    messages,
    moderation,
    settings_home,
    workspace,
)

log = logging.getLogger(__name__)


class _DropTokenWarnings(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN is unused when a client and `authorize` are given: it is,
    through them, on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage() and "will be ignored" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _DropTokenWarnings) for f in logger.filters):
        logger.addFilter(_DropTokenWarnings())
    return logger


def create_bolt_app(settings: Settings, sessions: sessionmaker[Session], *, warm_up: bool = True) -> App:
    if settings.oauth_enabled:
        return _create_oauth_app(settings, sessions)
    client = web_client(settings, settings.slack_bot_token)
    authorization = SingleWorkspaceAuthorization(client)
    app = App(
        signing_secret=settings.slack_signing_secret,
        client=client,
        authorize=authorization.bolt_authorize(),
        # Acknowledge only after the listener has recorded the event in the database.
        process_before_response=True,
        token_verification_enabled=False,
        logger=_bolt_logger(),
    )
    _register_listeners(app, sessions, settings, installation_store=None)
    if warm_up:
        authorization.warm_up()
    return app


def _create_oauth_app(settings: Settings, sessions: sessionmaker[Session]) -> App:
    """Many workspaces: tokens from the installation store on our database; Bolt's cached
    authorize makes one auth.test per token and process, not one per event."""
    from bot.slack import oauth

    engine = sessions.kw["bind"]
    store = oauth.installation_store(settings, engine)
    client = web_client(settings, None)  # the token exchange and auth.test go to SLACK_API_URL too
    app = App(
        signing_secret=settings.slack_signing_secret,
        client=client,
        authorize=oauth.bolt_authorize(settings, store),
        installation_store=store,
        oauth_flow=oauth.oauth_flow(settings, engine, store, client),
        process_before_response=True,
        token_verification_enabled=False,
        logger=_bolt_logger(),
    )
    from bot.slack.org_workspaces import OrgWorkspaceRecorder

    app.use(OrgWorkspaceRecorder(engine))  # Enterprise Grid: lets workers find an org install's token
    _register_listeners(app, sessions, settings, installation_store=store)
    return app


def _register_listeners(app: App, sessions: sessionmaker[Session], settings: Settings, *, installation_store) -> None:
    workspace.register(app, sessions, settings, installation_store)
    messages.register(app, sessions, settings)
    home.register(app, sessions)
    registry = configured_registry(settings)
    commands.register(app, sessions, settings, registry)
    settings_home.register(app, sessions, settings, registry)  # the App Home's settings modal
    moderation.register(app, sessions, settings)
    agent.register(app, sessions, settings)
    approvals.register(app, sessions, settings)  # Approve / Deny on state-changing tool calls

    # Last: Bolt runs the first listener that matches, and answers 404 (Slack then retries)
    # to events no listener matches.
    @app.event(re.compile(".*"))
    def handle_any_other_event() -> None:
        return None
