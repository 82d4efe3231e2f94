"""The `ask` job (`/ask <question> [--public]`): one model conversation with the tools, outside
any thread, answered through the command's response_url.

The question is the whole conversation: nothing is stored in the thread history (there is no
thread). The answer is ephemeral unless `--public`; a public answer is not offered the tools
whose results are private to the asker (`bot.tools.audience`). Budgets, the global limiter and
the tool loop are the same as for thread replies (`bot.conversation.tool_loop`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings.reader import SettingsReader
from bot.config import Settings
from bot.conversation.approval_gate import RefuseStateChanges
from bot.conversation.tool_loop import CollectedText
from bot.conversation.turn import AnswerSurface, Conversation, ModelTurns
from bot.failures import JobStopped, Permanent, user_sentence
from bot.history.thread import ThreadEntry
from bot.history.users import current_user
from bot.queue.context import JobContext
from bot.queue.job_type import JobType
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients
from bot.slack.response_url import ResponseUrlAnswers
from bot.tools.audience import without_private_tools
from bot.tools.registry import ToolRegistry
from bot.tools.selection import offered_tools
from bot.tools.slash_args import split_public_flag
from bot.tools.slash_job import CommandPayload

log = logging.getLogger(__name__)

ASK_USAGE = "Ask me anything after the command.\nUsage: /ask <question> [--public]"
NO_ANSWER = "Sorry, I have no answer to that."


class AskJob(ResponseUrlAnswers):
    def __init__(
        self,
        turns: ModelTurns,
        slack: SlackClients,
        sessions: sessionmaker[Session],
        settings: Settings,
        tools: ToolRegistry,
        http: httpx.Client,
    ):
        super().__init__(http, settings.slack_api_url)
        self.turns = turns
        self.slack = slack
        self.sessions = sessions
        self.tools = tools
        self.rules = SettingsReader(sessions, settings)  # the channel's settings, kept a few seconds

    def run(self, ctx: JobContext) -> None:
        if ctx.progress.get("done"):
            return
        if "answer" in ctx.progress:
            self.post_saved(ctx)
            return
        payload: CommandPayload = ctx.payload
        question, public = split_public_flag(payload.text)
        if not question:
            self.answer(ctx, ASK_USAGE, False)
            return
        try:
            text = self.ask(ctx, question, public) or NO_ANSWER
        except Permanent as exc:
            self.answer(ctx, user_sentence(exc), False)
            return
        except Exception:
            if ctx.stopping.is_set():
                raise JobStopped() from None
            raise
        self.answer(ctx, text, public)

    def ask(self, ctx: JobContext, question: str, public: bool) -> str:
        job, payload = ctx.job, ctx.payload
        client = self.slack.for_team(job.team_id)
        asker = current_user(client, self.sessions, job.team_id, job.user_id, datetime.now(UTC))
        entry = ThreadEntry(
            ts=str(job.id),
            role="user",
            text=question,
            user_id=job.user_id,
            user_name=(asker.display_name or None) if asker else None,
        )
        # In a channel its settings apply (in a DM the workspace defaults): only the tools it allows.
        rules = self.rules.applied(job.team_id, payload.channel)
        # No thread: tools that need one say so.
        conversation = Conversation(client, payload.channel, None, str(job.id), asker, [entry], rules=rules)
        sink = CollectedText()
        tools = offered_tools(self.tools.snapshot(), rules.tools)  # one fixed set for the turn (MCP tools come and go)
        # No thread for an approval card either: state-changing tools are refused with a reason.
        answer = AnswerSurface(sink, gate=RefuseStateChanges(tools))
        offered = without_private_tools(tools) if public else tools
        turn = self.turns.run(ctx, conversation, answer, offered, http=self.http)
        log.info("ask answered id=%d tool_rounds=%d public=%s", job.id, turn.tool_rounds, public)
        # What the model said in every round, as a thread reply would show it.
        return sink.text.strip()


ASK = JobType("ask", CommandPayload, AskJob, lane=INTERACTIVE)
