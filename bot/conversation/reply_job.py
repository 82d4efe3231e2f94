"""The `reply` job: answer a message in its thread from the history kept in the database.

Steps: backfill a thread joined mid-way (once), refresh unknown users' names, resolve
attachments, rebuild the thread as chat messages within the context budget, run the model
with the tools (several rounds if it calls tools), stream the answer into the thread, and
store the turn (tool calls, results, answer) so the next rebuild is exact.

A re-run after a crash continues instead of repeating: the ts of the posted reply is saved
as soon as it exists, and a re-run updates that message rather than posting another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.agent import waiting
from bot.agent.feedback import Trace
from bot.agent.stops import AnswerStopped, StopFlag, StopKey, StoppableGateway, StopWatch
from bot.channel_settings.reader import SettingsReader
from bot.channel_settings.resolve import Applied
from bot.config import Settings
from bot.conversation import summary_store
from bot.conversation.approval_gate import ApprovalGate
from bot.conversation.places import PlaceNames
from bot.conversation.summary import summary_entry, wants_summary
from bot.conversation.summary_job import SUMMARIZE, SummaryPayload
from bot.conversation.turn import run_model_turn
from bot.conversation.window import load_window, newest_rows
from bot.failures import JobStopped, Permanent, user_sentence
from bot.history import store as history
from bot.history.backfill import BotIdentity, first_page
from bot.history.backfill_job import BACKFILL, BackfillPayload
from bot.history.thread import ThreadEntry
from bot.history.users import refresh_users
from bot.inference.gateway import ModelGateway
from bot.queue import store as queue_store
from bot.queue.context import JobContext
from bot.queue.job_type import JobEvent, JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.queue.parking import JobParked
from bot.queue.store import ClaimedJob
from bot.slack.agent_session import AgentSession
from bot.slack.clients import SlackClients, without_rate_limit_retries
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
    def __init__(
        self,
        gateway: ModelGateway,
        slack: SlackClients,
        sessions: sessionmaker[Session],
        settings: Settings,
        tools: ToolRegistry,
        *,
        resolve_attachments: Callable[..., list[str] | None] | None = None,
        streaming: bool = True,
        stops: StopWatch | None = None,
    ):
        self.gateway = gateway
        self.slack = slack
        self.sessions = sessions
        self.settings = settings
        self.tools = tools
        self.resolve_attachments = resolve_attachments
        self.streaming = streaming
        self.stops = stops if stops is not None else StopWatch(sessions)
        self._identities: dict[str, BotIdentity] = {}
        self.places = PlaceNames(sessions)
        self.rules = SettingsReader(sessions, settings)  # the channel's settings, kept a few seconds
        # Queue feedback in the thread's status, sent off the job's thread (bounded per job).
        self.status_board = StatusBoard()

    # -- the job ----------------------------------------------------------------------------

    def run(self, ctx: JobContext) -> None:
        try:
            self._run(ctx)
        finally:
            self.status_board.forget(ctx.job.id)

    def _run(self, ctx: JobContext) -> None:
        job, payload = ctx.job, ctx.payload
        if ctx.progress.get("done"):
            return
        team, channel, thread_ts = job.team_id, payload.channel, payload.thread_ts
        client = self.slack.for_team(team)
        stop = StopFlag(self.stops, StopKey(team, channel, thread_ts, job.created_at))
        if stop.is_set(fresh=True):  # Stop was pressed while this waited in the queue
            log.info("reply stopped_before_start job_id=%d", job.id)
            if job.attempts > 1:  # an earlier attempt set the session to `processing`
                ended = AgentSession(client, channel=channel, thread_ts=thread_ts)
                ended.processing = True
                ended.ended(by_stream=False)
            ctx.save_progress(done=True, stopped=True)
            raise AnswerStopped()
        agent = AgentSession(client, channel=channel, thread_ts=thread_ts, user_id=job.user_id)
        agent.start()  # `processing`: Slack shows its Stop button
        self._backfill_if_needed(client, team, channel, thread_ts)
        budget = self.settings.context_budget_tokens
        with self.sessions() as session:
            # A long thread's older part is in its summary; the rows after it are read verbatim.
            summary = summary_store.get_summary(session, team, channel, thread_ts)
            after = summary.covers if summary else None
            # Only the newest rows the budget can hold, picked by the database from stored estimates.
            window = newest_rows(session, team, channel, thread_ts, budget_tokens=budget, after=after)
            user_ids = {row.user_id for row in window.rows if row.user_id and row.role == "user"}
            stale = history.stale_users(session, team, user_ids, datetime.now(UTC))
        self._refresh_users(client, team, stale)
        prepared = False
        if self.resolve_attachments and any(row.files for row in window.rows):
            # Only the files that can be sent: the newest images up to the cap, documents that fit.
            prepared = True
            spent = sum(row.tokens + row.image_tokens for row in window.rows)
            told = self.resolve_attachments(
                client,
                team,
                window.rows,
                max_images=self.settings.max_images_per_request,
                budget_tokens=max(0, budget - spent),
            )
            if told and not ctx.progress.get("file_notes"):
                ctx.save_progress(file_notes=told)
        with self.sessions() as session:
            entries, _ = load_window(
                session,
                team,
                channel,
                thread_ts,
                budget_tokens=budget,
                max_images=self.settings.max_images_per_request,
                after=after,
                window=None if prepared else window,  # estimates change when files are read
            )
            asker = history.get_user(session, team, job.user_id)
        if summary:
            entries.insert(0, summary_entry(summary))
        if wants_summary(window.total_tokens, budget):
            self._request_summary(job, channel, thread_ts)
        self._set_status(client, channel, thread_ts, entries)  # idempotent: a re-run may set it again
        self._set_title(agent, payload, entries)

        writer = self._writer(ctx, client, agent=agent, stop=stop)
        gateway = StoppableGateway(self.gateway, stop)
        # The channel's settings (DMs: the workspace defaults), read at most a few seconds ago.
        rules = self.rules.applied(team, channel, is_dm=payload.channel_type == "im")
        notes = ctx.progress.get("file_notes") or []
        if notes:
            # The person hears it in the answer itself (one message); the model reads it too.
            writer.append("".join(f"_{note}._\n" for note in notes) + "\n")
        try:
            turn, final_text = self._converse(ctx, entries, asker, writer, gateway, rules)
        except AnswerStopped:
            ctx.checkpoint()
            writer.stop_early(STOPPED_NOTE)
            ctx.save_progress(done=True, stopped=True)
            log.info("reply stopped job_id=%d model_calls=%d", job.id, gateway.calls)
            raise  # a Cancelled: the worker finishes the job, no retry, no notice
        except Permanent as exc:
            ctx.checkpoint()
            writer.finish_with_text(user_sentence(exc))
            ctx.save_progress(done=True)
            return
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
        ctx.checkpoint()
        posted = writer.finish(trace=self._trace(ctx, gateway, writer))
        ctx.checkpoint()
        with self.sessions.begin() as session:  # the turn is stored only while the job is ours
            history.record_turn(
                session,
                team_id=team,
                channel_id=channel,
                thread_ts=thread_ts,
                answers_ts=payload.ts,
                entries=[*turn, {"role": "assistant", "text": final_text, "reply_ts": posted}],
            )
            history.touch_thread(session, team, channel, thread_ts)
            ctx.save_progress_in(session, done=True, reply_ts=posted)

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

    def _converse(
        self, ctx: JobContext, entries: list[ThreadEntry], asker, writer, gateway=None, rules: Applied | None = None
    ) -> tuple[list[dict], str]:
        job, payload = ctx.job, ctx.payload
        # One fixed set for the whole turn: the gate and the runner must agree on every tool,
        # while MCP servers' tools come and go underneath (bot.tools.registry); only those the
        # channel allows (its `tools` setting), so no other can even ask for approval.
        tools = offered_tools(self.tools.snapshot(), rules.tools if rules else None)
        turn = run_model_turn(
            ctx,
            gateway=gateway or self.gateway,
            tools=tools,
            settings=self.settings,
            places=self.places,
            sessions=self.sessions,
            slack=self.slack.for_team(job.team_id),
            entries=entries,
            channel=payload.channel,
            thread_ts=payload.thread_ts,
            asker=asker,
            sink=writer,
            turn_ts=payload.ts,
            question=next((e.text for e in reversed(entries) if e.role == "user" and not e.deleted), ""),
            now=datetime.now(UTC),
            on_line=lambda ahead, seconds: self._tell_position(ctx, ahead, seconds),
            gate=ApprovalGate(
                tools,
                self.sessions,
                self.slack.for_team(job.team_id),
                team_id=job.team_id,
                job_id=job.id,
                channel=payload.channel,
                thread_ts=payload.thread_ts,
                asker=job.user_id,
                timeout_seconds=self.settings.approval_timeout_seconds,
            ),
            rules=rules,
        )
        return turn.stored, turn.text

    # -- Slack ------------------------------------------------------------------------------

    def _writer(
        self, ctx: JobContext, client: WebClient, *, agent: AgentSession | None = None, stop: StopFlag | None = None
    ) -> ReplyWriter:
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

    def _request_summary(self, job: ClaimedJob, channel: str, thread_ts: str) -> None:
        """Once per thread at a time: a background job folds the older messages into the summary."""
        with self.sessions.begin() as session:
            if summary_store.request_summary(session, job.team_id, channel, thread_ts):
                SUMMARIZE.enqueue(
                    session,
                    SummaryPayload(channel=channel, thread_ts=thread_ts),
                    team_id=job.team_id,
                    user_id=job.user_id,
                    settings=self.settings,
                )
                log.info("summary requested channel=%s", channel)

    def _set_status(self, client: WebClient, channel: str, thread_ts: str, entries: list[ThreadEntry] = ()) -> None:
        newest = next((e for e in reversed(entries) if e.role == "user" and not e.deleted), None)
        images = len(newest.images) if newest else 0
        files = len(newest.files) if newest else 0
        messages = waiting.thinking_messages(images=images, files=files)
        AgentSession(client, channel=channel, thread_ts=thread_ts).set_status(THINKING_STATUS, messages)

    def _set_title(self, agent: AgentSession, payload: ReplyPayload, entries: list[ThreadEntry]) -> None:
        """In the agent DM view, a new thread is titled after its first question."""
        if payload.channel_type != "im" or payload.ts != payload.thread_ts:
            return
        first = next((e for e in entries if e.role == "user" and not e.deleted), None)
        if first is not None:
            agent.set_title(waiting.thread_title(first.text))

    def _agent(self, ctx: JobContext) -> AgentSession:
        payload = ctx.payload
        return AgentSession(self.slack.for_team(ctx.job.team_id), channel=payload.channel, thread_ts=payload.thread_ts)

    def _tell_position(self, ctx: JobContext, ahead: int, seconds: float) -> None:
        """Waiting in the rate limiter's line: the thread's status says how many are ahead (never
        a message). Offered to the status board, so the wait itself is never held up by Slack."""
        if seconds < 1.0:
            return
        agent = self._agent(ctx)
        messages = [waiting.waiting_message(ahead)]

        def send() -> None:
            if ctx.lease_lost.is_set() or not ctx.lease_is_fresh():
                return  # not provably ours any more: another worker speaks for this job now
            agent.set_status(waiting.WAITING_STATUS, messages)

        self.status_board.offer(ctx.job.id, messages[0], send)

    def identity(self, client: WebClient, team_id: str) -> BotIdentity:
        if team_id not in self._identities:
            response = client.auth_test()
            self._identities[team_id] = BotIdentity(response["user_id"], response.get("bot_id"))
        return self._identities[team_id]

    def _backfill_if_needed(self, client: WebClient, team: str, channel: str, thread_ts: str) -> None:
        """A thread joined mid-way: one page now (its start), the rest in the background; a
        throttled Slack never holds the answer (bot.history.backfill)."""

        def later(cursor: str | None, delay: float) -> None:
            with self.sessions.begin() as session:
                BACKFILL.enqueue(
                    session,
                    BackfillPayload(
                        channel=channel,
                        thread_ts=thread_ts,
                        cursor=cursor or "",
                        answer_other_bots=self.settings.answer_other_bots,
                    ),
                    team_id=team,
                    delay_seconds=delay,
                )

        first_page(
            without_rate_limit_retries(client),
            self.sessions,
            team=team,
            channel=channel,
            thread_ts=thread_ts,
            identity=lambda: self.identity(client, team),
            answer_other_bots=self.settings.answer_other_bots,
            later=later,
        )

    def _refresh_users(self, client: WebClient, team: str, user_ids: set[str]) -> None:
        refresh_users(client, self.sessions, team, user_ids)

    # -- hooks the worker calls -----------------------------------------------------------------

    def on_waiting(self, ctx: JobContext, event: JobEvent) -> None:
        """Still queued: the thread's status says how many requests are ahead (it passes in
        seconds). A wait past LONG_WAIT_SECONDS (``event.waited``) becomes the one message, since
        Slack clears the status after 2 minutes; the answer replaces it when the job runs."""
        ahead = event.position if event.position is not None else 0
        if event.waited is not None:
            self._say_while_queued(ctx, waiting.queue_apology(ahead))
            return
        self._agent(ctx).set_status(waiting.WAITING_STATUS, [waiting.waiting_message(ahead)])

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
        agent = self._agent(ctx)
        agent.processing = True  # it may be: a failed answer must not leave the Stop button behind
        agent.ended(by_stream=False)


REPLY = JobType("reply", ReplyPayload, ReplyJob, lane=INTERACTIVE)
