"""The Bolt app factory: one place that wires listeners to an App."""

from __future__ import annotations

import logging
import re

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.slack.authorization import SingleWorkspaceAuthorization
from bot.slack.clients import web_client
from bot.slack.listeners import home, messages

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
    messages.register(app, sessions, settings)
    home.register(app, sessions)

    # Bolt answers 404 to events no listener matches, and Slack retries those.
    @app.event(re.compile(".*"))
    def handle_any_other_event() -> None:
        return None

    if warm_up:
        authorization.warm_up()
    return app
