"""The composition root: builds the worker's parts from settings. Nothing is global."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.stops import STOP_CHANNEL, StopWatch
from bot.config import Settings
from bot.conversation.ask_job import AskJob
from bot.conversation.feedback_job import FeedbackThanksJob
from bot.conversation.reply_job import ReplyJob
from bot.conversation.summary_job import SUMMARIZE_JOB, SummaryJob
from bot.conversation.welcome_job import WelcomeJob
from bot.db.engine import make_engine, make_session_factory
from bot.db.listen import NotificationListener
from bot.documents.extract import Limits
from bot.images.attachments import AttachmentResolver
from bot.inference.client import InferenceClient
from bot.inference.gateway import ModelGateway
from bot.limits import admission
from bot.limits.admission import GlobalRateLimiter, rate_limits
from bot.limits.budgets import BudgetPolicy
from bot.moderation.job import moderation_handlers
from bot.queue import store
from bot.queue.worker import Worker
from bot.retention.tasks import FORGET_WORKSPACE_JOB, ForgetWorkspaceJob, RetentionTask
from bot.slack.clients import SlackClients
from bot.slack.listeners.agent import FEEDBACK_THANKS_JOB
from bot.slack.listeners.commands import ASK_JOB, SLASH_COMMAND_JOB
from bot.slack.listeners.home import WELCOME_JOB
from bot.slack.listeners.messages import REPLY_JOB
from bot.tools.builtin import configured_registry
from bot.tools.slash_job import SlashCommandJob

log = logging.getLogger(__name__)


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
    engine = make_engine(settings.database_url, pool_size=settings.worker_concurrency + 2)
    sessions = make_session_factory(engine)
    slack = slack or slack_clients(settings, engine)
    limiter = GlobalRateLimiter(sessions, rate_limits(settings))
    client = InferenceClient(
        settings.inference_url or "",
        settings.inference_key or "",
        settings.inference_model_id,
        timeout=settings.inference_timeout_seconds,
    )
    gateway = ModelGateway(
        client,
        limiter,
        sessions,
        budgets=BudgetPolicy(settings.daily_token_budget_per_user, settings.daily_token_budget_per_team),
        max_output_tokens=settings.inference_max_output_tokens,
    )
    tools = configured_registry(settings)
    attachments = AttachmentResolver(
        sessions,
        api_url=settings.slack_api_url,
        max_file_bytes=settings.max_file_bytes,
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)),
        document_max_bytes=settings.document_max_bytes,
        document_limits=Limits(max_pages=settings.pdf_max_pages, max_chars=settings.document_max_chars),
    )
    tools_http = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
    stops = StopWatch(sessions, notified=settings.is_postgres)  # the Stop button (bot.agent.stops)
    handlers = {
        REPLY_JOB: ReplyJob(gateway, slack, sessions, settings, tools, resolve_attachments=attachments, stops=stops),
        FEEDBACK_THANKS_JOB: FeedbackThanksJob(slack),
        WELCOME_JOB: WelcomeJob(slack),
        # Long threads: the older part summarized in the background.
        SUMMARIZE_JOB: SummaryJob(gateway, sessions, settings),
        FORGET_WORKSPACE_JOB: ForgetWorkspaceJob(sessions),
        # Slash commands answer through response_url, and tools use this client for their HTTP.
        SLASH_COMMAND_JOB: SlashCommandJob(tools, slack, sessions, settings, tools_http),
        ASK_JOB: AskJob(gateway, slack, sessions, settings, tools, tools_http),
        # Image moderation (background) and moderators' clicks on its reports.
        **moderation_handlers(gateway, slack, sessions, settings, http=attachments.http),
    }
    worker = Worker(
        sessions,
        handlers,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=1.0 if settings.is_postgres else 0.1,
        queued_notice_seconds=settings.queued_notice_seconds,
        housekeeping=[RetentionTask(sessions, settings.retention_days)],
    )
    listener = None
    if settings.is_postgres:
        listener = NotificationListener(
            settings.database_url,
            {
                store.NOTIFY_CHANNEL: worker.wake,
                admission.NOTIFY_CHANNEL: limiter.capacity_changed,
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
