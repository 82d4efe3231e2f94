"""The `approval_note` job: tells someone privately why their click on an approval card did
nothing (only the asker can answer). The web records the click; this job makes the Slack call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients

if TYPE_CHECKING:
    from bot.runtime import WorkerParts


@dataclass(frozen=True)
class ApprovalNotePayload(Payload):
    channel: str
    thread_ts: str
    user: str  # who clicked
    text: str


class ApprovalNoteJob(JobHandler):
    def __init__(self, slack: SlackClients):
        self.slack = slack

    @classmethod
    def from_parts(cls, parts: WorkerParts) -> ApprovalNoteJob:
        return cls(parts.slack)

    def run(self, ctx: JobContext) -> None:
        payload = ctx.job.payload
        ctx.checkpoint()
        try:
            self.slack.for_team(ctx.job.team_id).chat_postEphemeral(
                channel=payload["channel"], thread_ts=payload["thread_ts"], user=payload["user"], text=payload["text"]
            )
        except SlackApiError:  # the person left the channel: nothing to tell
            return


APPROVAL_NOTE = JobType("approval_note", ApprovalNotePayload, ApprovalNoteJob, lane=INTERACTIVE, max_attempts=3)
