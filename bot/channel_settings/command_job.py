"""The `settings` job: `/settings …` run in the worker, answered through the command's response_url.

It is not a tool: the registry never holds it, so the model can neither be offered it nor call
it. Anyone may look; changes need a workspace admin or owner, by the rule of the admin tools
(bot.history.admins: not a stranger, of this workspace or its Grid org), read from the
`slack_users` cache refreshed with users.info when stale. The answer is ephemeral, and saved in
the transaction that makes the change, so a retry repeats the answer, never the change.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings import store
from bot.channel_settings.command import (
    DM_HAS_NO_CHANNEL_SETTINGS,
    HELP,
    HELP_TEXT,
    NOT_ADMIN,
    SHOW,
    parse_command,
    render_done,
    render_settings,
)
from bot.channel_settings.models import WORKSPACE
from bot.channel_settings.names import NAMES, BadValue, Choices, allowed, parse_value
from bot.channel_settings.reader import channel_of, defaults_of, resolved_in
from bot.history.users import current_user
from bot.mcp.status import McpServerStatus
from bot.queue.context import JobContext
from bot.queue.job_type import JobType
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients
from bot.slack.response_url import ResponseUrlAnswers
from bot.tools.registry import ToolRegistry
from bot.tools.slash_job import CommandPayload

log = logging.getLogger(__name__)

SETTINGS_COMMAND_NAME = "settings"


def choices_for(registry: ToolRegistry, settings: Any, sessions: sessionmaker[Session] | None = None) -> Choices:
    """What values are checked against: every tool the registry can offer the model (built-in,
    plugin, MCP), by name or slash command, and the attached models. With ``sessions``, the MCP
    tools the workers last found are known too (the web process holds no MCP connections)."""
    tools = list(registry)
    names = {tool.name for tool in tools}
    if sessions is not None:
        with sessions() as session:
            names.update(mcp_tool_names(session))
    return Choices(
        tool_names=tuple(sorted(names)),
        tool_commands={tool.command: tool.name for tool in tools if tool.command},
        models=tuple(getattr(settings, "attached_models", ()) or ()),
    )


def mcp_tool_names(session: Session) -> list[str]:
    """The tool names of every MCP server as the workers last found it (bot.mcp.status)."""
    names = []
    for tools in session.execute(select(McpServerStatus.tools)).scalars():
        names += [tool["name"] for tool in tools or [] if isinstance(tool, dict) and isinstance(tool.get("name"), str)]
    return names


def change_setting(
    session: Session, *, team_id: str, place: str, name: str, raw: str, choices: Choices, user_id: str
) -> store.Change | None:
    """Check ``raw`` and store it; raises BadValue (nothing stored). ``place``: a channel id or
    WORKSPACE. Shared by `/settings` and the App Home's modal."""
    return store.set_value(session, team_id, place, name, parse_value(name, raw, choices), user_id=user_id)


class SettingsCommandJob(ResponseUrlAnswers):
    def __init__(
        self,
        registry: ToolRegistry,
        slack: SlackClients,
        sessions: sessionmaker[Session],
        settings: Any,
        http: httpx.Client,
    ):
        super().__init__(http, settings.slack_api_url)
        self.registry = registry
        self.slack = slack
        self.sessions = sessions
        self.settings = settings

    def run(self, ctx: JobContext) -> None:
        if ctx.progress.get("done"):
            return
        if "answer" not in ctx.progress:
            self.respond(ctx)
        self.post_saved(ctx)

    def respond(self, ctx: JobContext) -> None:
        """Work out the answer (making the change, if any) and save it in the job's progress."""
        job, payload = ctx.job, ctx.payload
        channel = channel_of(payload.channel, is_dm=False)
        try:
            request = parse_command(payload.text)
        except BadValue as exc:
            return self._save(ctx, str(exc))
        if request.kind == HELP:
            choices = choices_for(self.registry, self.settings, self.sessions)
            return self._save(ctx, HELP_TEXT + "\n" + "\n".join(allowed(name, choices) for name in NAMES))
        place = WORKSPACE if request.workspace or channel is None else channel
        if request.kind == SHOW:
            return self._save(ctx, self._shown(job.team_id, None if place == WORKSPACE else place))
        if place == WORKSPACE and not request.workspace:
            return self._save(ctx, DM_HAS_NO_CHANNEL_SETTINGS)
        client = self.slack.for_team(job.team_id)
        asker = current_user(client, self.sessions, job.team_id, job.user_id, datetime.now(UTC))
        if not (asker and asker.is_admin):
            log.info("settings refused id=%d reason=not_admin", job.id)
            return self._save(ctx, NOT_ADMIN)
        label = "the workspace" if place == WORKSPACE else f"<#{place}>"
        try:
            with self.sessions.begin() as session:
                change = change_setting(
                    session,
                    team_id=job.team_id,
                    place=place,
                    name=request.name,
                    raw=request.raw,
                    choices=choices_for(self.registry, self.settings, self.sessions),
                    user_id=job.user_id,
                )
                ctx.save_progress_in(session, answer={"text": render_done(change, place=label), "public": False})
        except BadValue as exc:
            return self._save(ctx, str(exc))
        log.info("settings changed id=%d setting=%s workspace=%s", job.id, request.name, place == WORKSPACE)

    def _shown(self, team_id: str, channel: str | None) -> str:
        with self.sessions() as session:
            resolved = resolved_in(session, team_id, channel, defaults_of(self.settings))
            last = store.last_change(session, team_id, channel or WORKSPACE)
        title = f"Settings in <#{channel}>" if channel else "Workspace defaults (they apply in direct messages too)"
        return render_settings(resolved, title=title, last_change=last, workspace_view=channel is None)

    def _save(self, ctx: JobContext, text: str) -> None:
        ctx.save_progress(answer={"text": text, "public": False})


SETTINGS = JobType("settings", CommandPayload, SettingsCommandJob, lane=INTERACTIVE)
