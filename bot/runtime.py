"""The composition root: builds the worker's parts from settings. Nothing is global."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.stops import STOP_CHANNEL, StopWatch
from bot.builtin_tools import configured_registry
from bot.config import Settings
from bot.conversation.ask_job import ASK
from bot.conversation.feedback_job import FEEDBACK_THANKS
from bot.conversation.reply_job import REPLY
from bot.conversation.summary_job import SUMMARIZE
from bot.conversation.welcome_job import WELCOME
from bot.db.connections import worker_pool_size
from bot.db.engine import make_engine, make_session_factory
from bot.db.listen import NotificationListener
from bot.documents.extract import Limits
from bot.history.attachments import AttachmentResolver
from bot.images.processing import set_decode_concurrency
from bot.inference.gateway import ModelGateway, build_gateway
from bot.limits import admission
from bot.moderation.job import MODERATE, MODERATION_ACTION
from bot.queue import store
from bot.queue.job_type import JobType
from bot.queue.parking import ParkedJobWaker
from bot.queue.worker import Worker
from bot.retention.tasks import FORGET_WORKSPACE, RetentionTask
from bot.slack.clients import SlackClients
from bot.tools.approval_note_job import APPROVAL_NOTE
from bot.tools.registry import ToolRegistry
from bot.tools.slash_job import SLASH_COMMAND

log = logging.getLogger(__name__)

# Every job type the worker runs: a new one is declared in its own module and added here.
JOB_TYPES: tuple[JobType, ...] = (
    REPLY,
    ASK,
    SLASH_COMMAND,
    WELCOME,
    FEEDBACK_THANKS,
    FORGET_WORKSPACE,
    MODERATE,
    MODERATION_ACTION,
    SUMMARIZE,
    APPROVAL_NOTE,
)


@dataclass
class WorkerParts:
    """What job handlers are built from (each takes the parts it needs in ``from_parts``)."""

    settings: Settings
    sessions: sessionmaker[Session]
    slack: SlackClients
    gateway: ModelGateway
    tools: ToolRegistry
    attachments: AttachmentResolver
    http: httpx.Client  # Slack file downloads (shared with the attachment resolver)
    tools_http: httpx.Client  # tools' own HTTP and response_url answers
    stops: StopWatch  # Stop requests of this process's answers (bot.agent.stops)


def build_handlers(parts: WorkerParts, job_types: tuple[JobType, ...] = JOB_TYPES) -> dict:
    """The worker's table {kind: handler}, built from the declarations."""
    handlers = {}
    for job_type in job_types:
        if job_type.kind in handlers:
            raise ValueError(f"job kind {job_type.kind!r} is declared twice")
        handlers[job_type.kind] = job_type.build(parts)
    return handlers


@dataclass
class WorkerRuntime:
    engine: Engine
    sessions: sessionmaker[Session]
    worker: Worker
    listener: NotificationListener | None

    def run(self) -> None:
        if self.listener:
            self.listener.start()
        try:
            self.worker.run()
        finally:
            if self.listener:
                self.listener.stop()
            self.engine.dispose()


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
    attachments = AttachmentResolver(
        sessions,
        api_url=settings.slack_api_url,
        max_file_bytes=settings.max_file_bytes,
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)),
        document_max_bytes=settings.document_max_bytes,
        document_limits=Limits(max_pages=settings.pdf_max_pages, max_chars=settings.document_max_chars),
    )
    stops = StopWatch(sessions, notified=settings.is_postgres)  # the Stop button (bot.agent.stops)
    parts = WorkerParts(
        settings=settings,
        sessions=sessions,
        slack=slack,
        gateway=gateway,
        tools=tools,
        attachments=attachments,
        http=attachments.http,
        tools_http=httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0)),
        stops=stops,
    )
    handlers = build_handlers(parts)
    worker = Worker(
        sessions,
        handlers,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=1.0 if settings.is_postgres else 0.1,
        queued_notice_seconds=settings.queued_notice_seconds,
        # Parked jobs whose approval time is up go back to the queue (to tell the model no).
        housekeeping=[RetentionTask(sessions, settings.retention_days), ParkedJobWaker(sessions)],
        line_length=limiter.line_length,
    )
    listener = None
    if settings.is_postgres:
        listener = NotificationListener(
            settings.database_url,
            {
                store.NOTIFY_CHANNEL: worker.wake,
                admission.NOTIFY_CHANNEL: limiter.paused_elsewhere,
                STOP_CHANNEL: stops.notify,
            },
            on_reconnect=worker.wake,
        )
    return WorkerRuntime(engine, sessions, worker, listener)


def slack_clients(settings: Settings, engine: Engine) -> SlackClients:
    """SLACK_BOT_TOKEN's workspace, or in OAuth mode every installed workspace's token."""
    if not settings.oauth_enabled:
        return SlackClients(settings)
    from bot.slack.oauth import InstalledTokens, installation_store

    return SlackClients(settings, InstalledTokens(installation_store(settings, engine)))
