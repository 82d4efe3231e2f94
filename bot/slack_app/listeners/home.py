"""The agent messages tab: suggested prompts when someone opens it or starts an assistant thread;
the Home tab: the settings (published by a `settings_home` job).

Recorded and enqueued here (before the ack); the welcome job makes the Slack calls."""

from __future__ import annotations

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings.home_job import PUBLISH_HOME, HomePayload
from bot.conversation.welcome_job import WELCOME, WelcomePayload
from bot.idempotency.store import claim_once, event_key, greeting_key


def register(app: App, sessions: sessionmaker[Session]) -> None:
    def handle_app_home_opened(body: dict, event: dict, context) -> None:
        team_id = context.team_id or body.get("team_id") or ""
        if event.get("tab") == "home" and event.get("user"):
            publish_home(sessions, team_id, event["user"], body.get("event_id"))
            return
        if event.get("tab") != "messages" or not event.get("channel"):
            return
        # Greet once per person, not on every visit.
        welcome(
            sessions,
            team_id,
            greeting_key(event.get("user") or ""),
            WelcomePayload(kind="home", channel=event["channel"]),
            event.get("user", ""),
        )

    def handle_assistant_thread_started(body: dict, event: dict, context) -> None:
        thread = event.get("assistant_thread")
        thread = thread if isinstance(thread, dict) else {}  # a string here is not from Slack
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if not channel or not thread_ts:
            return
        team_id = context.team_id or body.get("team_id") or ""
        welcome(
            sessions,
            team_id,
            f"assistant_thread:{channel}:{thread_ts}",
            WelcomePayload(kind="assistant_thread", channel=channel, thread_ts=thread_ts),
            thread.get("user_id", ""),
        )

    app.event("app_home_opened")(handle_app_home_opened)
    app.event("assistant_thread_started")(handle_assistant_thread_started)


def publish_home(sessions: sessionmaker[Session], team_id: str, user_id: str, event_id: str | None) -> None:
    """The Home tab shows the settings (bot.channel_settings.home_job), on every visit: they change."""
    with sessions.begin() as session:
        if event_id and not claim_once(session, team_id, event_key(event_id)):
            return
        PUBLISH_HOME.enqueue(session, HomePayload(user=user_id), team_id=team_id, user_id=user_id)


def welcome(sessions: sessionmaker[Session], team_id: str, key: str, payload: WelcomePayload, user_id: str) -> None:
    with sessions.begin() as session:
        if claim_once(session, team_id, key):
            WELCOME.enqueue(session, payload, team_id=team_id, user_id=user_id)
