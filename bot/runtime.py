"""The composition root: builds the worker's parts from settings. Nothing is global."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.conversation.reply_job import ReplyJob
from bot.conversation.welcome_job import WelcomeJob
from bot.db.engine import make_engine, make_session_factory
from bot.db.listen import NotificationListener
from bot.images.attachments import AttachmentResolver
from bot.inference.client import InferenceClient
from bot.inference.gateway import ModelGateway
from bot.limits import admission
from bot.limits.admission import GlobalRateLimiter, rate_limits
from bot.limits.budgets import BudgetPolicy
from bot.queue import store
from bot.queue.worker import Worker
from bot.slack.clients import SlackClients
from bot.slack.listeners.home import WELCOME_JOB
from bot.slack.listeners.messages import REPLY_JOB
from bot.tools.builtin import default_registry
from bot.tools.plugins import load_plugins

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


def build_worker(settings: Settings) -> WorkerRuntime:
    # Each job thread may hold a connection while the heartbeat and listener use others.
    engine = make_engine(settings.database_url, pool_size=settings.worker_concurrency + 2)
    sessions = make_session_factory(engine)
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
    tools = default_registry(settings)
    for problem in load_plugins(tools, settings.tool_modules):
        log.warning("plugin problem=%r", problem)
    attachments = AttachmentResolver(
        sessions,
        api_url=settings.slack_api_url,
        max_file_bytes=settings.max_file_bytes,
        http=httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)),
    )
    handlers = {
        REPLY_JOB: ReplyJob(
            gateway, SlackClients(settings), sessions, settings, tools, resolve_attachments=attachments
        ),
        WELCOME_JOB: WelcomeJob(SlackClients(settings)),
    }
    worker = Worker(
        sessions,
        handlers,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        poll_seconds=1.0 if settings.is_postgres else 0.1,
        queued_notice_seconds=settings.queued_notice_seconds,
    )
    listener = None
    if settings.is_postgres:
        listener = NotificationListener(
            settings.database_url,
            {store.NOTIFY_CHANNEL: worker.wake, admission.NOTIFY_CHANNEL: limiter.capacity_changed},
            on_reconnect=worker.wake,
        )
    return WorkerRuntime(engine, sessions, worker, listener)
