"""The composition root: builds the worker and every job handler from settings, with explicit
constructors. Nothing is global, and nothing below imports this module."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.stops import STOP_CHANNEL, StopWatch
from bot.builtin_tools import configured_registry
from bot.channel_settings.command_job import SETTINGS, SettingsCommandJob
from bot.channel_settings.home_job import PUBLISH_HOME, SettingsHomeJob
from bot.config import Settings
from bot.conversation.ask_job import ASK, AskJob
from bot.conversation.feedback_job import FEEDBACK_THANKS, FeedbackThanksJob
from bot.conversation.queue_full_job import QUEUE_FULL, QueueFullJob
from bot.conversation.reply_job import REPLY, ReplyJob
from bot.conversation.summary_job import SUMMARIZE, SummaryJob
from bot.conversation.thread_reader import ThreadReader
from bot.conversation.turn import ModelTurns
from bot.conversation.welcome_job import WELCOME, WelcomeJob
from bot.db.connections import worker_pool_size
from bot.db.dialect import LocalListener
from bot.db.engine import make_engine, make_session_factory
from bot.db.listen import NotificationListener
from bot.documents.extract import Limits
from bot.documents.reader import DocumentReader
from bot.history.attachments import AttachmentResolver
from bot.history.backfill_job import BACKFILL, BackfillJob
from bot.http import tls_context
from bot.images.processing import set_decode_concurrency
from bot.inference.gateway import ModelGateway, build_gateway
from bot.limits import admission
from bot.mcp import status as mcp_status
from bot.mcp.catalog import McpCatalog
from bot.moderation.job import MODERATE, MODERATION_ACTION, ModerateJob, ModerationActionJob, WorkspaceModeration
from bot.queue import store
from bot.queue.job_type import JobHandler, JobType, handler_table
from bot.queue.parking import ParkedJobWaker
from bot.queue.worker import Worker
from bot.retention.tasks import FORGET_WORKSPACE, ForgetWorkspaceJob, RetentionTask
from bot.sandbox import Sandbox
from bot.slack.clients import SlackClients
from bot.tools.approval_note_job import APPROVAL_NOTE, ApprovalNoteJob
from bot.tools.registry import ToolRegistry
from bot.tools.slash_job import SLASH_COMMAND, SlashCommandJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shared:
    """What this process builds once and the handlers below are built from. Only this module
    sees it: each handler's constructor names what it takes, and no job module imports this one."""

    settings: Settings
    sessions: sessionmaker[Session]
    slack: SlackClients
    gateway: ModelGateway
    turns: ModelTurns  # one model turn with the tools (the reply and ask jobs)
    reader: ThreadReader  # a thread as the model sees it (the reply job)
    tools: ToolRegistry
    http: httpx.Client  # Slack file downloads (shared with the attachment resolver)
    tools_http: httpx.Client  # tools' own HTTP and response_url answers
    stops: StopWatch  # Stop requests of this process's answers (bot.agent.stops)


# Every job type the worker runs, with how its handler is built: a new job type is its own
# module (payload, handler, JobType) plus one line here.
JOBS: tuple[tuple[JobType, Callable[[Shared], JobHandler]], ...] = (
    (REPLY, lambda s: ReplyJob(s.turns, s.reader, s.slack, s.sessions, s.settings, s.tools, stops=s.stops)),
    (ASK, lambda s: AskJob(s.turns, s.slack, s.sessions, s.settings, s.tools, s.tools_http)),
    (SLASH_COMMAND, lambda s: SlashCommandJob(s.tools, s.slack, s.sessions, s.settings, s.tools_http)),
    (WELCOME, lambda s: WelcomeJob(s.slack)),
    (FEEDBACK_THANKS, lambda s: FeedbackThanksJob(s.slack)),
    (FORGET_WORKSPACE, lambda s: ForgetWorkspaceJob(s.sessions)),
    (
        MODERATE,
        lambda s: ModerateJob(
            s.gateway,
            s.slack,
            s.sessions,
            s.settings,
            http=s.http,
            workspaces=WorkspaceModeration(s.sessions, s.settings),
        ),
    ),
    (
        MODERATION_ACTION,
        lambda s: ModerationActionJob(s.slack, s.sessions, workspaces=WorkspaceModeration(s.sessions, s.settings)),
    ),
    (SUMMARIZE, lambda s: SummaryJob(s.gateway, s.sessions, s.settings)),
    (APPROVAL_NOTE, lambda s: ApprovalNoteJob(s.slack)),
    (BACKFILL, lambda s: BackfillJob(s.slack, s.sessions)),
    (QUEUE_FULL, lambda s: QueueFullJob(s.slack)),
    (SETTINGS, lambda s: SettingsCommandJob(s.tools, s.slack, s.sessions, s.settings, s.tools_http)),
    (PUBLISH_HOME, lambda s: SettingsHomeJob(s.slack, s.sessions)),
)
JOB_TYPES: tuple[JobType, ...] = tuple(job_type for job_type, _ in JOBS)


def build_handlers(shared, jobs=JOBS) -> dict[str, JobHandler]:
    """The worker's table {kind: handler}, each handler built from what this process shares."""
    return handler_table((job_type, build(shared)) for job_type, build in jobs)


@dataclass
class WorkerRuntime:
    engine: Engine
    sessions: sessionmaker[Session]
    worker: Worker
    listener: NotificationListener | LocalListener | None
    mcp: McpCatalog | None = None  # MCP servers' tools, refreshed in a thread of their own

    def run(self) -> None:
        if self.listener:
            self.listener.start()
        if self.mcp:
            self.mcp.start()  # the first refresh runs at once; jobs never wait for it
        try:
            self.worker.run()
        finally:
            if self.mcp:
                self.mcp.stop()
            if self.listener:
                self.listener.stop()
            self.engine.dispose()


def mcp_catalog(settings: Settings, sessions: sessionmaker[Session] | None) -> McpCatalog | None:
    """The MCP_SERVERS catalog (None without servers); `sessions`: where refreshes are recorded."""
    if not settings.mcp_servers:
        return None
    return McpCatalog(
        settings.mcp_servers,
        timeout=settings.mcp_timeout_seconds,
        refresh_seconds=settings.mcp_refresh_seconds,
        on_refresh=mcp_status.recorder(sessions) if sessions is not None else None,
        recorded=mcp_status.recorded_views(sessions) if sessions is not None else None,
    )


def build_worker(settings: Settings, *, slack: SlackClients | None = None) -> WorkerRuntime:
    """`slack`: where replies go (default: the Slack workspaces; `bot chat` passes the terminal)."""
    # Each job thread may hold a connection while the heartbeat and listener use others.
    engine = make_engine(settings.database_url, pool_size=worker_pool_size(settings.worker_concurrency))
    sessions = make_session_factory(engine)
    set_decode_concurrency(settings.image_decode_concurrency)  # memory: images decoded at once
    slack = slack or slack_clients(settings, engine)
    gateway = build_gateway(settings, sessions)  # every attachment, pooled per model (bot.limits.admission)
    limiter = gateway.limiter
    tools = configured_registry(settings)
    mcp = mcp_catalog(settings, sessions)
    if mcp:
        tools.add_source(mcp)  # MCP tools are ordinary registry entries while their server is up
    document_limits = Limits(max_pages=settings.pdf_max_pages, max_chars=settings.document_max_chars)
    attachments = AttachmentResolver(
        sessions,
        api_url=settings.slack_api_url,
        max_file_bytes=settings.max_file_bytes,
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0), verify=tls_context()),
        document_max_bytes=settings.document_max_bytes,
        document_limits=document_limits,
        # PDFs are parsed in child processes the OS can stop, one at a time per worker process.
        documents=DocumentReader(Sandbox(slots=1), limits=document_limits),
    )
    stops = StopWatch(sessions, notified=settings.is_postgres)  # the Stop button (bot.agent.stops)
    shared = Shared(
        settings=settings,
        sessions=sessions,
        slack=slack,
        gateway=gateway,
        turns=ModelTurns(gateway, settings, sessions),
        reader=ThreadReader(sessions, settings, resolve_attachments=attachments),
        tools=tools,
        http=attachments.http,
        tools_http=httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0), verify=tls_context()),
        stops=stops,
    )
    worker = Worker(
        sessions,
        build_handlers(shared),
        job_types=JOB_TYPES,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=1.0 if settings.is_postgres else 0.1,
        queued_notice_seconds=settings.queued_notice_seconds,
        # Parked jobs whose approval time is up go back to the queue (to tell the model no).
        housekeeping=[RetentionTask(sessions, settings.retention_days), ParkedJobWaker(sessions)],
        line_length=limiter.line_length,
    )
    listener: NotificationListener | LocalListener
    if not settings.is_postgres:
        listener = LocalListener(settings.database_url, {store.NOTIFY_CHANNEL: worker.wake})
    else:
        listener = NotificationListener(
            settings.database_url,
            {
                store.NOTIFY_CHANNEL: worker.wake,
                admission.NOTIFY_CHANNEL: limiter.paused_elsewhere,
                STOP_CHANNEL: stops.notify,
            },
            on_reconnect=worker.wake,
        )
    return WorkerRuntime(engine, sessions, worker, listener, mcp)


def slack_clients(settings: Settings, engine: Engine) -> SlackClients:
    """SLACK_BOT_TOKEN's workspace, or in OAuth mode every installed workspace's token."""
    if not settings.oauth_enabled:
        return SlackClients(settings)
    from bot.slack.oauth import InstalledTokens, installation_store

    return SlackClients(settings, InstalledTokens(installation_store(settings, engine)))
