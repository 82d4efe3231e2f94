"""Slash commands: every tool with a command, `/ask` and `/settings`. Record, enqueue, acknowledge.

Like the message listeners these run before Bolt acknowledges (process_before_response), so
they only write to the database: the tool or the model runs in the worker (`slash_command`
and `ask` jobs), which answers through the command's `response_url`. Commands are accepted
in channels and DMs alike. What people typed is stored in the job, never logged, except
`/moderation token xoxp-…`, which is checked and stored here (bot.slack_app.listeners.admin_token).
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings.command_job import SETTINGS
from bot.config import Settings
from bot.conversation.ask_job import ASK
from bot.idempotency.store import claim_once
from bot.queue import store
from bot.queue.job_type import JobType
from bot.slack_app.commands import ASK_COMMAND, SETTINGS_COMMAND
from bot.slack_app.listeners.admin_token import is_token_command, set_admin_token
from bot.tools.registry import ToolRegistry
from bot.tools.slash_job import SLASH_COMMAND, CommandPayload

log = logging.getLogger(__name__)

ASK_ACK = "_Thinking…_"
UNAVAILABLE = "Sorry, I can't take commands right now. Please try again in a minute."
ASK_QUEUE_FULL = (
    "You already have {waiting} requests waiting for me, the most one person can have, so I did not "
    "queue this one. Please ask again once some of them are answered."
)
MODEL_JOB_KINDS = ("reply", ASK.kind)  # the jobs that wait for the model, counted against the cap


# The app's own commands and the job each enqueues; every other command is a tool's, run by the
# slash_command job. A new app command is its SlashCommand in APP_COMMANDS and one line here.
APP_COMMAND_JOBS: dict[str, JobType] = {
    f"/{ASK_COMMAND.command}": ASK,
    f"/{SETTINGS_COMMAND.command}": SETTINGS,
}


def command_names(registry: ToolRegistry) -> list[str]:
    """`/ask`, `/settings` and the registry's commands, each once (a tool cannot take them over)."""
    names = list(APP_COMMAND_JOBS)
    for spec in registry.slash_commands():
        if spec.command in names:
            log.warning("command %s of a tool is shadowed by the app's own", spec.command)
            continue
        names.append(spec.command)
    return names


def job_type(command_name: str) -> JobType:
    return APP_COMMAND_JOBS.get(command_name, SLASH_COMMAND)


def register(app: App, sessions: sessionmaker[Session], settings: Settings, registry: ToolRegistry) -> None:
    def handle_command(ack, command: dict, context) -> None:
        name = command.get("command", "")
        team_id = command.get("team_id") or context.team_id or ""
        if is_token_command(name, command.get("text") or ""):  # a secret: never a job payload
            answer = set_admin_token(
                sessions,
                settings,
                context.client,
                team_id=team_id,
                user_id=command.get("user_id") or "",
                text=command.get("text") or "",
                enterprise_id=context.enterprise_id,
            )
            ack(text=answer, response_type="ephemeral")
            return
        try:
            job_id = record_command(sessions, settings, team_id=team_id, command=command)
        except QueueFull as full:  # one person cannot crowd out everyone: no model call
            ack(text=str(full), response_type="ephemeral")
            return
        except SQLAlchemyError as exc:
            log.warning("command not_recorded command=%s error=%s", name, type(exc).__name__)
            ack(text=UNAVAILABLE, response_type="ephemeral")
            return
        if job_id is not None and job_type(name) is ASK:
            ack(text=ASK_ACK, response_type="ephemeral")
        else:
            ack()

    for name in command_names(registry):
        app.command(name)(handle_command)


class QueueFull(Exception):
    """The person already has BOT_MAX_QUEUED_PER_USER model requests waiting."""


def record_command(sessions: sessionmaker[Session], settings: Settings, *, team_id: str, command: dict) -> int | None:
    """Enqueue the command's job once per trigger_id. Returns the job's id, None for a repeat."""
    name = command.get("command", "")
    with sessions.begin() as session:
        trigger_id = command.get("trigger_id")
        if trigger_id and not claim_once(session, team_id, f"command:{trigger_id}"):
            log.info("command duplicate command=%s", name)
            return None
        user = command.get("user_id") or ""
        if job_type(name) is ASK:
            waiting = store.waiting_for_user(session, team_id, user, kinds=MODEL_JOB_KINDS)
            if waiting >= settings.max_queued_per_user:
                raise QueueFull(ASK_QUEUE_FULL.format(waiting=waiting))
        job_id = job_type(name).enqueue(
            session,
            CommandPayload(
                command=name,
                text=command.get("text") or "",
                channel=command.get("channel_id") or "",
                channel_name=command.get("channel_name") or "",
                user=command.get("user_id") or "",
                response_url=command.get("response_url") or "",
            ),
            team_id=team_id,
            user_id=command.get("user_id") or "",
            settings=settings,
        )
    log.info("command queued job_id=%d command=%s channel=%s", job_id, name, command.get("channel_id"))
    return job_id
