"""The `settings_home` job: publish a person's App Home (views.publish) with the settings.

Enqueued when someone opens the Home tab and after an admin saves the settings modal. Admins
(bot.history.admins, from the `slack_users` cache refreshed when stale) get Edit buttons; everyone
else reads the workspace defaults and the channels' settings, which are what applies to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings import store
from bot.channel_settings.models import WORKSPACE
from bot.channel_settings.views import MAX_HOME_CHANNELS, home_view
from bot.history.users import current_user
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HomePayload(Payload):
    """Whose Home tab to publish."""

    user: str


def home_for(sessions: sessionmaker[Session], team_id: str, *, is_admin: bool) -> dict:
    """The Home tab's view for an admin or anyone else (reads the workspace's settings)."""
    with sessions() as session:
        channel_ids = store.channels_with_settings(session, team_id, limit=MAX_HOME_CHANNELS + 1)
        values = store.values(session, team_id, [WORKSPACE, *channel_ids[:MAX_HOME_CHANNELS]])
    shown = channel_ids[:MAX_HOME_CHANNELS]
    more = len(channel_ids) - len(shown)
    return home_view(is_admin=is_admin, workspace=values[WORKSPACE], channels={c: values[c] for c in shown}, more=more)


class SettingsHomeJob(JobHandler):
    def __init__(self, slack: SlackClients, sessions: sessionmaker[Session]):
        self.slack = slack
        self.sessions = sessions

    def run(self, ctx: JobContext) -> None:
        job, payload = ctx.job, ctx.payload
        client = self.slack.for_team(job.team_id)
        person = current_user(client, self.sessions, job.team_id, payload.user, datetime.now(UTC))
        view = home_for(self.sessions, job.team_id, is_admin=bool(person and person.is_admin))
        ctx.checkpoint()
        client.views_publish(user_id=payload.user, view=view)  # the latest view wins: a re-run is harmless
        log.info("settings home published id=%d admin=%s", job.id, bool(person and person.is_admin))


PUBLISH_HOME = JobType("settings_home", HomePayload, SettingsHomeJob, lane=INTERACTIVE, max_attempts=3)
