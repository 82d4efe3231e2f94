"""The `reply` job: answer a message in its thread from the history kept in the database.

Read the thread (bot.conversation.thread_reader: backfill, names, attachments, the summary and
the newest rows within the context budget), run one model turn with the tools
(bot.conversation.turn), stream the answer into the thread, and store the turn (tool calls,
results, answer) so the next rebuild is exact.

A re-run after a crash continues instead of repeating: the ts of the posted reply is saved
as soon as it exists, and a re-run updates that message rather than posting another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.agent import waiting
from bot.agent.feedback import Trace
from bot.agent.stops import AnswerStopped, StopFlag, StopKey, StoppableGateway, StopWatch
from bot.channel_settings.reader import SettingsReader
from bot.config import Settings
from bot.conversation.approval_gate import ApprovalGate
from bot.conversation.thread_reader import ThreadReader
from bot.conversation.tool_loop import ModelTurn
from bot.conversation.turn import AnswerSurface, Conversation, ModelTurns
from bot.failures import JobStopped, Permanent, user_sentence
from bot.history import store as history
from bot.history.thread import ThreadEntry
from bot.queue import store as queue_store
from bot.queue.context import JobContext
from bot.queue.job_type import JobEvent, JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.queue.parking import JobParked
from bot.slack.agent_session import AgentSession
from bot.slack.clients import SlackClients
from bot.slack.replies import ReplyWriter, message_content
from bot.slack.status_board import StatusBoard
from bot.tools.registry import ToolRegistry
from bot.tools.selection import offered_tools

log = logging.getLogger(__name__)

THINKING_STATUS = waiting.THINKING_STATUS
STOPPED_NOTE = "\n\n_(stopped)_"
AWAITING_APPROVAL_NOTE = "\n\n_(waiting for your approval below)_"


@dataclass(frozen=True)
class ReplyPayload(Payload):
    """The message to answer: ``ts`` in ``thread_ts`` of ``channel``, written by ``user``."""

    channel: str
    thread_ts: str
    ts: str
    user: str = ""
    channel_type: str = ""


class ReplyJob(JobHandler):
    """Read, turn, post: the thread (bot.conversation.thread_reader), one model turn
    (bot.conversation.turn), and the answer's one message (bot.slack.replies), stored with
    the turn so the next rebuild is exact."""

    def __init__(
        self,
        turns: ModelTurns,
        reader: ThreadReader,
        slack: SlackClients,
        sessions: sessionmaker[Session],
        settings: Settings,
        tools: ToolRegistry,
        *,
        streaming: bool = True,
        stops: StopWatch | None = None,
    ):
        self.turns = turns
        self.reader = reader
        self.slack = slack
        self.sessions = sessions
        self.settings = settings
        self.tools = tools
        self.streaming = streaming
        self.stops = stops if stops is not None else StopWatch(sessions)
        self.rules = SettingsReader(sessions, settings)  # the channel's settings, kept a few seconds
        # Queue feedback in the thread's status, sent off the job's thread (bounded per job).
        self.status_board = StatusBoard()

    # -- the job ----------------------------------------------------------------------------

    def run(self, ctx: JobContext) -> None:
        try:
            if not ctx.progress.get("done"):
                self._reply(ctx)
        finally:
            self.status_board.forget(ctx.job.id)

    def _reply(self, ctx: JobContext) -> None:
        job, payload = ctx.job, ctx.payload
        client = self.slack.for_team(job.team_id)
        agent = self._session(ctx)
        stop = StopFlag(self.stops, StopKey(job.team_id, payload.channel, payload.thread_ts, job.created_at))
        if stop.is_set(fresh=True):  # Stop was pressed while this waited in the queue
            self._stopped_before_start(ctx, agent)
        agent.start()  # `processing`: Slack shows its Stop button
        thread = self.reader.read(
            client, team=job.team_id, user=job.user_id, channel=payload.channel, thread_ts=payload.thread_ts
        )
        if thread.file_notes and not ctx.progress.get("file_notes"):
            ctx.save_progress(file_notes=thread.file_notes)
        self._show_thinking(agent, payload, thread.entries)  # idempotent: a re-run may set it again
        # The channel's settings (DMs: the workspace defaults), read at most a few seconds ago.
        rules = self.rules.applied(job.team_id, payload.channel, is_dm=payload.channel_type == "im")
        conversation = Conversation(
            client,
            payload.channel,
            payload.thread_ts,
            payload.ts,
            asker=thread.asker,
            entries=thread.entries,
            rules=rules,
        )
        writer = self._writer(ctx, client, agent, stop)
        gateway = StoppableGateway(self.turns.gateway, stop)
        turn = self._turn(ctx, conversation, writer, gateway)
        if turn is not None:
            self._post(ctx, writer, gateway, turn)

    def _turn(
        self, ctx: JobContext, conversation: Conversation, writer: ReplyWriter, gateway: StoppableGateway
    ) -> ModelTurn | None:
        """The model's turn, written into the answer as it comes; None when the answer already
        says why there is none (a failure the person must hear about)."""
        notes = ctx.progress.get("file_notes") or []
        if notes:
            # The person hears it in the answer itself (one message); the model reads it too.
            writer.append("".join(f"_{note}._\n" for note in notes) + "\n")
        # One fixed set for the whole turn: the gate and the runner must agree on every tool,
        # while MCP servers' tools come and go underneath (bot.tools.registry); only those the
        # channel allows (its `tools` setting), so no other can even ask for approval.
        tools = offered_tools(self.tools.snapshot(), conversation.rules.tools)
        answer = AnswerSurface(
            writer,
            gate=self._gate(ctx, conversation.slack, tools),
            on_line=lambda ahead, seconds: self._tell_position(ctx, ahead, seconds),
        )
        try:
            return self.turns.run(ctx, conversation, answer, tools, gateway=gateway)
        except AnswerStopped:
            ctx.checkpoint()
            writer.stop_early(STOPPED_NOTE)
            ctx.save_progress(done=True, stopped=True)
            log.info("reply stopped job_id=%d model_calls=%d", ctx.job.id, gateway.calls)
            raise  # a Cancelled: the worker finishes the job, no retry, no notice
        except Permanent as exc:
            ctx.checkpoint()
            writer.finish_with_text(user_sentence(exc))
            ctx.save_progress(done=True)
            return None
        except JobParked:
            # A state-changing tool waits for the asker (the card is in the thread); the answer
            # message says so, and is updated when the job runs again after the answer.
            ctx.checkpoint()
            writer.stop_early(AWAITING_APPROVAL_NOTE)
            raise
        except Exception:
            if ctx.stopping.is_set():
                raise JobStopped() from None
            raise

    def _post(self, ctx: JobContext, writer: ReplyWriter, gateway: StoppableGateway, turn: ModelTurn) -> None:
        """Finish the answer's message, then store the turn, only while the job is ours."""
        job, payload = ctx.job, ctx.payload
        ctx.checkpoint()
        posted = writer.finish(trace=self._trace(ctx, gateway, writer))
        ctx.checkpoint()
        with self.sessions.begin() as session:
            stored = history.record_turn(
                session,
                team_id=job.team_id,
                channel_id=payload.channel,
                thread_ts=payload.thread_ts,
                answers_ts=payload.ts,
                entries=[*turn.stored, {"role": "assistant", "text": turn.text, "reply_ts": posted}],
            )
            if not stored:  # forgotten while this was answered: the thread stays forgotten
                log.info("reply turn_not_stored job_id=%d reason=thread_forgotten", job.id)
            history.touch_thread(session, job.team_id, payload.channel, payload.thread_ts)
            ctx.save_progress_in(session, done=True, reply_ts=posted)

    def _stopped_before_start(self, ctx: JobContext, agent: AgentSession) -> None:
        log.info("reply stopped_before_start job_id=%d", ctx.job.id)
        if ctx.job.attempts > 1:  # an earlier attempt set the session to `processing`
            agent.processing = True
            agent.ended(by_stream=False)
        ctx.save_progress(done=True, stopped=True)
        raise AnswerStopped()

    def _gate(self, ctx: JobContext, client: WebClient, tools: ToolRegistry) -> ApprovalGate:
        """State-changing tools wait for the asker's click on a card in the thread."""
        job, payload = ctx.job, ctx.payload
        return ApprovalGate(
            tools,
            self.sessions,
            client,
            team_id=job.team_id,
            job_id=job.id,
            channel=payload.channel,
            thread_ts=payload.thread_ts,
            asker=job.user_id,
            timeout_seconds=self.settings.approval_timeout_seconds,
        )

    def _trace(self, ctx: JobContext, gateway: StoppableGateway, writer: ReplyWriter) -> Trace:
        latency = (datetime.now(UTC) - ctx.job.created_at).total_seconds()
        return Trace(
            model=self.settings.inference_model_id or "",
            prompt_tokens=gateway.prompt_tokens,
            completion_tokens=gateway.completion_tokens,
            tools=writer.steps.tool_names(),
            latency_ms=max(int(latency * 1000), 0),
            attempts=ctx.job.attempts,
            thread_ts=ctx.payload.thread_ts,
        )

    # -- Slack ------------------------------------------------------------------------------

    def _session(self, ctx: JobContext) -> AgentSession:
        """The thread's agent session and status line, as this job speaks to them."""
        payload = ctx.payload
        return AgentSession(
            self.slack.for_team(ctx.job.team_id),
            channel=payload.channel,
            thread_ts=payload.thread_ts,
            user_id=ctx.job.user_id,
        )

    def _writer(self, ctx: JobContext, client: WebClient, agent: AgentSession, stop: StopFlag) -> ReplyWriter:
        payload = ctx.payload
        existing = list(ctx.progress.get("reply_ts") or [])  # every part an earlier attempt posted

        def remember(ts_list: list[str]) -> None:
            ctx.save_progress(reply_ts=ts_list)

        return ReplyWriter(
            client,
            channel=payload.channel,
            thread_ts=payload.thread_ts,
            team_id=ctx.job.team_id,
            user_id=ctx.job.user_id,
            existing_ts=existing,
            streaming=self.streaming and not existing,
            on_posted=remember,
            checkpoint=ctx.checkpoint,
            agent=agent,
            stop=stop,
        )

    def _show_thinking(self, agent: AgentSession, payload: ReplyPayload, entries: list[ThreadEntry]) -> None:
        """The thinking status (naming the newest message's images and files) and, in the agent
        DM view, a new thread's title after its first question."""
        newest = next((e for e in reversed(entries) if e.role == "user" and not e.deleted), None)
        images = len(newest.images) if newest else 0
        files = len(newest.files) if newest else 0
        agent.set_status(THINKING_STATUS, waiting.thinking_messages(images=images, files=files))
        if payload.channel_type != "im" or payload.ts != payload.thread_ts:
            return
        first = next((e for e in entries if e.role == "user" and not e.deleted), None)
        if first is not None:
            agent.set_title(waiting.thread_title(first.text))

    def _tell_position(self, ctx: JobContext, ahead: int, seconds: float) -> None:
        """Waiting in the rate limiter's line: the thread's status says how many are ahead (never
        a message). Offered to the status board, so the wait itself is never held up by Slack."""
        if seconds < 1.0:
            return
        agent = self._session(ctx)
        messages = [waiting.waiting_message(ahead)]

        def send() -> None:
            if ctx.lease_lost.is_set() or not ctx.lease_is_fresh():
                return  # not provably ours any more: another worker speaks for this job now
            agent.set_status(waiting.WAITING_STATUS, messages)

        self.status_board.offer(ctx.job.id, messages[0], send)

    # -- hooks the worker calls -----------------------------------------------------------------

    def on_waiting(self, ctx: JobContext, event: JobEvent) -> None:
        """Still queued: the thread's status says how many requests are ahead (it passes in
        seconds). A wait past LONG_WAIT_SECONDS (``event.waited``) becomes the one message, since
        Slack clears the status after 2 minutes; the answer replaces it when the job runs."""
        ahead = event.position if event.position is not None else 0
        if event.waited is not None:
            self._say_while_queued(ctx, waiting.queue_apology(ahead))
            return
        self._session(ctx).set_status(waiting.WAITING_STATUS, [waiting.waiting_message(ahead)])

    def on_retry(self, ctx: JobContext, event: JobEvent) -> None:
        """The model has not answered, and will not within BOT_APOLOGY_AFTER_SECONDS: the apology
        becomes the one message (a thread status clears after 2 minutes, DESIGN-NOTES, Slack).
        The re-run replaces it with the answer, on_dead with the final notice."""
        age = (datetime.now(UTC) - ctx.job.created_at).total_seconds()
        if age + event.delay < self.settings.apology_after_seconds or ctx.progress.get("apologized"):
            return
        ctx.checkpoint()  # the lease is still ours here: only its holder writes the message
        existing = (ctx.progress.get("reply_ts") or [None])[0]
        ts = self._show_notice(ctx, existing, waiting.APOLOGY_MESSAGE)
        if ts is not None:
            ctx.save_progress(reply_ts=[ts], apologized=True)
            log.info("reply apology_posted job_id=%d age_s=%.0f", ctx.job.id, age)

    def _say_while_queued(self, ctx: JobContext, text: str) -> None:
        """Post ``text`` as the job's one message while it is still queued: its row is locked
        meanwhile (a claim skips it), and the message's ts is stored before the lock goes."""
        with self.sessions.begin() as session:
            progress = queue_store.hold_queued(session, ctx.job.id)
            if progress is None or progress.get("reply_ts"):
                return  # started (or being started) already, or it has its message
            ts = self._show_notice(ctx, None, text)
            if ts is not None:
                queue_store.set_queued_progress(session, ctx.job.id, {**progress, "reply_ts": [ts], "apologized": True})
                log.info("reply queue_wait_posted job_id=%d", ctx.job.id)

    def _show_notice(self, ctx: JobContext, existing: str | None, text: str) -> str | None:
        payload = ctx.payload
        client = self.slack.for_team(ctx.job.team_id)
        content = message_content(text)
        try:
            if existing:
                client.chat_update(channel=payload.channel, ts=existing, **content)
                return existing
            return client.chat_postMessage(channel=payload.channel, thread_ts=payload.thread_ts, **content)["ts"]
        except SlackApiError as error:
            log.warning("reply notice_failed job_id=%d error=%s", ctx.job.id, error.response.get("error"))
            return None

    def on_dead(self, ctx: JobContext, event: JobEvent) -> None:
        """Given up: the failure sentence becomes the answer's one message (the message already
        started, if any, else the one posted now)."""
        if ctx.progress.get("done"):
            return
        payload = ctx.payload
        client = self.slack.for_team(ctx.job.team_id)
        sentence = user_sentence(event.error or Exception())
        existing = (ctx.progress.get("reply_ts") or [None])[0]
        content = message_content(sentence)  # as blocks: a text-only update of a stream shows nothing
        try:
            if existing:
                client.chat_update(channel=payload.channel, ts=existing, **content)
            else:
                client.chat_postMessage(channel=payload.channel, thread_ts=payload.thread_ts, **content)
        except SlackApiError as error:
            log.warning("job dead_notice_failed id=%d error=%s", ctx.job.id, error.response.get("error"))
        agent = self._session(ctx)
        agent.processing = True  # it may be: a failed answer must not leave the Stop button behind
        agent.ended(by_stream=False)


REPLY = JobType("reply", ReplyPayload, ReplyJob, lane=INTERACTIVE)
