"""The `slash_command` job: run a tool's slash command in the worker and answer through the
command's response_url.

Answers are ephemeral (only the person who typed the command sees them) unless they asked with
`--public` and the tool succeeded; tools with private results (`bot.tools.audience`) always
answer ephemerally. Bad arguments get the usage line, refusals a plain sentence. The asker's
admin flag comes from the `slack_users` cache, refreshed with users.info when missing or stale.

The answer is saved in the job's progress before it is posted, so a retry (Slack or the network
failing) posts it again without running the tool twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bot.history.users import current_user
from bot.queue.context import JobContext
from bot.queue.job_type import JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients
from bot.slack.response_url import ResponseUrlAnswers
from bot.tools.audience import has_private_results
from bot.tools.job_context import job_tool_context
from bot.tools.registry import ToolRegistry
from bot.tools.runner import run_slash_command

log = logging.getLogger(__name__)

PRIVATE_NOTE = "\n\n_(Shown only to you: these results may come from conversations others cannot see.)_"


@dataclass(frozen=True)
class CommandPayload(Payload):
    """A slash command as Slack sent it (the `slash_command` and `ask` jobs)."""

    command: str
    text: str = ""
    channel: str = ""
    channel_name: str = ""
    user: str = ""
    response_url: str = ""


class SlashCommandJob(ResponseUrlAnswers):
    def __init__(
        self,
        registry: ToolRegistry,
        slack: SlackClients,
        sessions: sessionmaker[Session],
        settings,
        http: httpx.Client,
    ):
        super().__init__(http, settings.slack_api_url)
        self.registry = registry
        self.slack = slack
        self.sessions = sessions
        self.settings = settings

    def run(self, ctx: JobContext) -> None:
        if ctx.progress.get("done"):
            return
        if "answer" in ctx.progress:
            self.post_saved(ctx)
            return
        text, public = self.run_command(ctx)
        self.answer(ctx, text, public)

    def run_command(self, ctx: JobContext) -> tuple[str, bool]:
        job, payload = ctx.job, ctx.payload
        client = self.slack.for_team(job.team_id)
        asker = current_user(client, self.sessions, job.team_id, job.user_id, datetime.now(UTC))
        tool_ctx = job_tool_context(
            job,
            channel=payload.channel,
            thread_ts=None,  # slash commands never run inside a thread
            asker=asker,
            slack=client,
            sessions=self.sessions,
            settings=self.settings,
            http=self.http,
            typed_by_person=True,
        )
        command = payload.command
        outcome = run_slash_command(self.registry, command, payload.text, tool_ctx)
        tool = self.registry.for_command(command)
        log.info("command ran id=%d command=%s ok=%s", job.id, command, outcome.result.ok)
        text, public = outcome.result.content, outcome.public and outcome.result.ok
        if public and tool is not None and has_private_results(tool):
            return text + PRIVATE_NOTE, False
        return text, public


SLASH_COMMAND = JobType("slash_command", CommandPayload, SlashCommandJob, lane=INTERACTIVE)
