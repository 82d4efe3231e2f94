"""The `approval_note` job: tells someone privately why their click on an approval card did
nothing (only the asker can answer). The web records the click; this job makes the Slack call."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients


@dataclass(frozen=True)
class ApprovalNotePayload(Payload):
    channel: str
    thread_ts: str
    user: str  # who clicked
    text: str


class ApprovalNoteJob(JobHandler):
    def __init__(self, slack: SlackClients):
        self.slack = slack

    def run(self, ctx: JobContext) -> None:
        payload: ApprovalNotePayload = ctx.payload
        ctx.checkpoint()
        try:
            self.slack.for_team(ctx.job.team_id).chat_postEphemeral(
                channel=payload.channel, thread_ts=payload.thread_ts, user=payload.user, text=payload.text
            )
        except SlackApiError:  # the person left the channel: nothing to tell
            return


APPROVAL_NOTE = JobType("approval_note", ApprovalNotePayload, ApprovalNoteJob, lane=INTERACTIVE, max_attempts=3)
