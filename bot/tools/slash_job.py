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
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation.users import current_user
from bot.queue.job_type import JobEvent, JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.queue.worker import JobContext
from bot.slack.clients import SlackClients
from bot.slack.response_url import ResponseUrlRefused, post_response
from bot.tools.audience import has_private_results
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import run_slash_command

if TYPE_CHECKING:
    from bot.runtime import WorkerParts

log = logging.getLogger(__name__)

PRIVATE_NOTE = "\n\n_(Shown only to you: these results may come from conversations others cannot see.)_"
QUEUED_NOTE = "_Queued: other requests are ahead of yours; I'll answer in a moment._"
FAILED_NOTE = "Sorry, that command failed. Please try again in a few minutes."


@dataclass(frozen=True)
class CommandPayload(Payload):
    """A slash command as Slack sent it (the `slash_command` and `ask` jobs)."""

    command: str
    text: str = ""
    channel: str = ""
    channel_name: str = ""
    user: str = ""
    response_url: str = ""


class ResponseUrlAnswers(JobHandler):
    """What the slash-command jobs share: answering once through the response_url, and the hooks."""

    def __init__(self, http: httpx.Client, slack_api_url: str):
        self.http = http
        self.slack_api_url = slack_api_url

    def _post(self, url: str, text: str, public: bool) -> None:
        post_response(self.http, url, text, public=public, slack_api_url=self.slack_api_url)

    def answer(self, ctx: JobContext, text: str, public: bool) -> None:
        ctx.save_progress(answer={"text": text, "public": public})
        self.post_saved(ctx)

    def post_saved(self, ctx: JobContext) -> None:
        saved = ctx.progress["answer"]
        ctx.checkpoint()
        try:
            self._post(ctx.job.payload.get("response_url", ""), saved["text"], saved["public"])
        except ResponseUrlRefused as exc:
            log.warning("command answer_refused id=%d reason=%s", ctx.job.id, exc)
        ctx.save_progress(done=True)

    def on_waiting(self, ctx: JobContext, event: JobEvent) -> None:
        self._post(ctx.job.payload.get("response_url", ""), QUEUED_NOTE, False)

    def on_dead(self, ctx: JobContext, event: JobEvent) -> None:
        if ctx.progress.get("done"):
            return
        try:
            self._post(ctx.job.payload.get("response_url", ""), FAILED_NOTE, False)
        except (httpx.HTTPError, ResponseUrlRefused) as error:
            log.warning("command dead_notice_failed id=%d error=%s", ctx.job.id, type(error).__name__)


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

    @classmethod
    def from_parts(cls, parts: WorkerParts) -> SlashCommandJob:
        # Slash commands answer through response_url, and tools use this client for their HTTP.
        return cls(parts.tools, parts.slack, parts.sessions, parts.settings, parts.tools_http)

    def run(self, ctx: JobContext) -> None:
        if ctx.progress.get("done"):
            return
        if "answer" in ctx.progress:
            self.post_saved(ctx)
            return
        text, public = self.run_command(ctx)
        self.answer(ctx, text, public)

    def run_command(self, ctx: JobContext) -> tuple[str, bool]:
        job, payload = ctx.job, ctx.job.payload
        client = self.slack.for_team(job.team_id)
        asker = current_user(client, self.sessions, job.team_id, job.user_id, datetime.now(UTC))
        tool_ctx = ToolContext(
            team_id=job.team_id,
            channel_id=payload.get("channel") or None,
            thread_ts=None,  # slash commands never run inside a thread
            user_id=job.user_id,
            user_is_admin=bool(asker and asker.is_admin),
            slack=client,
            db=self.sessions,
            settings=self.settings,
            http=self.http,
            typed_by_person=True,
        )
        command = payload["command"]
        outcome = run_slash_command(self.registry, command, payload.get("text", ""), tool_ctx)
        tool = self.registry.for_command(command)
        log.info("command ran id=%d command=%s ok=%s", job.id, command, outcome.result.ok)
        text, public = outcome.result.content, outcome.public and outcome.result.ok
        if public and tool is not None and has_private_results(tool):
            return text + PRIVATE_NOTE, False
        return text, public


SLASH_COMMAND = JobType("slash_command", CommandPayload, SlashCommandJob, lane=INTERACTIVE)
