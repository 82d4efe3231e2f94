"""The worker side of moderation: the `moderate` job (one image: download, judge, act) and the
`moderation_action` job (a moderator's Dismiss or Remove click).

`moderate`:
1. A decision already stored for the file (a re-run after a crash) is acted on, not judged again.
2. The file is downloaded with the bot token and prepared with the image pipeline
   (`bot.images.download`, `bot.images.processing`). Slack Connect stubs are resolved with
   files.info first; a file that turns out not to be an image is skipped without a decision.
   A transient download failure (timeout, 5xx) is retried by the queue; any other failure
   (login page, too large, not decodable) becomes a `flag` decision whose reason starts with
   "could not be checked:", so a person looks at it. No model call is made for it.
3. One model call through the gateway, forced to call `record_moderation_verdict`. A malformed
   answer is asked once more, then recorded as a `flag` (bot.moderation.verdict).
4. The decision is stored (tokens of both calls included), then acted on (bot.moderation.plan).
   Each visible step is remembered in the job's progress, so a re-run does not repeat it.
A job that dies (the model rejected the image, a budget is spent, attempts ran out) still
stores a `flag` decision and reports it (`on_dead`): moderation never fails silently.

Privacy: nothing here logs image bytes, message text or the model's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.failures import Permanent
from bot.history.messages import image_part
from bot.images.download import DownloadError, DownloadFailed, download_slack_file
from bot.images.files import needs_file_info
from bot.images.processing import ImageRejected, prepare_image
from bot.inference.errors import RejectedError
from bot.inference.gateway import CallContext, ModelGateway, OverBudget
from bot.limits.admission import RequestTooLarge
from bot.moderation import store
from bot.moderation.plan import DISMISS, REMOVE, REMOVED, UNREPORTED, after_failed_delete, plan_actions
from bot.moderation.policy import category_names, moderation_request, parse_policy
from bot.moderation.report import (
    AUTOMATIC_REMOVAL_OFF,
    REMOVE_NEEDS_ADMIN,
    UNUSABLE_REPORT_CHANNEL,
    invite_hint,
    poster_notice,
    report_blocks,
    report_channel_problem,
    report_text,
)
from bot.moderation.verdict import MalformedVerdict, Verdict, could_not_check, parse_verdict, unreadable_answer
from bot.moderation.workspace import EffectiveSettings, effective
from bot.queue.context import JobContext
from bot.queue.job_type import JobEvent, JobHandler, JobType, Payload
from bot.queue.models import BACKGROUND, INTERACTIVE
from bot.slack.clients import SlackClients, web_client

log = logging.getLogger(__name__)

PENDING = "pending"  # the action column until the bot has acted
GONE_ERRORS = frozenset({"file_not_found", "file_deleted"})
MODEL_TRIES = 2


@dataclass(frozen=True)
class ModeratePayload(Payload):
    """One image file (``file``: Slack's file object) posted by ``user`` in message ``ts``."""

    channel: str
    ts: str
    user: str
    file: dict[str, Any]


@dataclass(frozen=True)
class ModerationActionPayload(Payload):
    """A moderator's click (``action``: dismiss or remove) on the report of ``decision_id``."""

    decision_id: int
    action: str
    user: str
    report_channel: str
    report_ts: str


class WorkspaceModeration:
    """A workspace's report channel and admin client (bot.moderation.workspace decides which)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings):
        self.sessions = sessions
        self.settings = settings
        self._clients: dict[str, WebClient] = {}

    def effective(self, team_id: str) -> EffectiveSettings:
        with self.sessions() as session:
            stored = store.workspace_settings(session, team_id)
        return effective(
            stored,
            env_report_channel=self.settings.moderation_report_channel,
            env_admin_token=self.settings.slack_admin_user_token,
            oauth=self.settings.oauth_enabled,
        )

    def admin_client(self, token: str | None) -> WebClient | None:
        if not token:
            return None
        client = self._clients.get(token)
        if client is None:
            client = self._clients[token] = web_client(self.settings, token)
        return client


def is_transient(exc: DownloadError) -> bool:
    return isinstance(exc, DownloadFailed) and (exc.status is None or exc.status >= 500 or exc.status == 429)


def dead_reason(exc: BaseException | None) -> str:
    """Why a job gave up, in words safe for a report."""
    if isinstance(exc, OverBudget):
        return exc.message
    if isinstance(exc, RejectedError):
        return f"the model refused the request ({exc.message})"
    if isinstance(exc, RequestTooLarge):
        return "the image is too large for the model's limits"
    return f"the check kept failing ({type(exc).__name__})"


class ModerateJob(JobHandler):
    def __init__(
        self,
        gateway: ModelGateway,
        slack: SlackClients,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        http: httpx.Client,
        workspaces: WorkspaceModeration,
    ):
        self.gateway = gateway
        self.slack = slack
        self.sessions = sessions
        self.settings = settings
        self.http = http
        self.workspaces = workspaces
        self.policy = parse_policy(settings.moderation_policy)

    # -- the job --------------------------------------------------------------------------

    def run(self, ctx: JobContext) -> None:
        job, payload = ctx.job, ctx.payload
        client = self.slack.for_team(job.team_id)
        with self.sessions() as session:
            existing = store.find_decision(session, job.team_id, payload.file["id"])
            decision_id = existing.id if existing else None
            if existing is not None and existing.action != PENDING:
                return  # acted on already (a re-run after the last step)
        if decision_id is None:
            meta = self._resolve(client, payload.file)
            if meta is None:
                return
            verdict, audit = self._judge(ctx, client, meta)
            with self.sessions.begin() as session:
                decision = store.save_decision(session, self._subject(ctx, meta), verdict, **audit, action=PENDING)
                decision_id = decision.id
            log.info(
                "moderation decided id=%d file=%s verdict=%s categories=%d",
                decision_id,
                meta["id"],
                verdict.verdict,
                len(verdict.categories),
            )
        self._act(ctx, client, decision_id, remember=lambda **done: ctx.save_progress(**done))

    def _subject(self, ctx: JobContext, meta: dict) -> store.Subject:
        payload: ModeratePayload = ctx.payload
        return store.Subject(
            team_id=ctx.job.team_id,
            channel_id=payload.channel,
            message_ts=payload.ts,
            user_id=payload.user or meta.get("user") or "",
            file_id=meta["id"],
            file_name=meta.get("name") or meta.get("title") or "",
            permalink=meta.get("permalink"),
        )

    def _resolve(self, client: WebClient, meta: dict) -> dict | None:
        """The full file object; None when it is gone or not an image (nothing to moderate)."""
        if needs_file_info(meta):
            try:
                meta = client.files_info(file=meta["id"])["file"]
            except SlackApiError as error:
                if error.response.get("error") in GONE_ERRORS:
                    log.info("moderation skipped file=%s reason=gone", meta["id"])
                    return None
                raise
        if not str(meta.get("mimetype", "")).startswith("image/"):
            log.info("moderation skipped file=%s reason=not_an_image", meta["id"])
            return None
        return meta

    def _judge(self, ctx: JobContext, client: WebClient, meta: dict) -> tuple[Verdict, dict]:
        """(verdict, the audit fields: model and tokens)."""
        url = meta.get("url_private_download") or meta.get("url_private")
        try:
            if not url:
                raise DownloadFailed("Slack gave no download link")
            data = download_slack_file(
                url,
                token=client.token or "",
                api_url=self.settings.slack_api_url,
                http=self.http,
                max_bytes=self.settings.max_file_bytes,
            )
            image = prepare_image(data)
        except DownloadError as exc:
            if is_transient(exc) and ctx.job.attempts < ctx.job.max_attempts:
                raise
            return could_not_check(exc.message), {"model": None, "prompt_tokens": 0, "completion_tokens": 0}
        except ImageRejected as exc:
            return could_not_check(exc.reason), {"model": None, "prompt_tokens": 0, "completion_tokens": 0}
        body = moderation_request(self.policy, image_part(image.media_type, image.data))
        call = CallContext(
            team_id=ctx.job.team_id,
            user_id=ctx.job.user_id,
            should_stop=ctx.should_stop,
            model=self.settings.model_for("moderation"),  # BOT_MODERATION_MODEL
        )
        names = category_names(self.policy)
        prompt_tokens = completion_tokens = 0
        problem = ""
        for attempt in range(1, MODEL_TRIES + 1):
            try:
                completion = self.gateway.call(body, call)
            except Permanent as exc:  # asking again cannot help
                verdict = could_not_check(dead_reason(exc))
                break
            if completion.usage:
                prompt_tokens += completion.usage.prompt_tokens
                completion_tokens += completion.usage.completion_tokens
            try:
                verdict = parse_verdict([(c.name, c.arguments) for c in completion.tool_calls], names)
                break
            except MalformedVerdict as exc:
                problem = exc.problem
                log.warning("moderation malformed_answer file=%s try=%d problem=%r", meta["id"], attempt, problem)
        else:
            verdict = unreadable_answer(problem)
        audit = {
            "model": self.settings.model_for("moderation"),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
        }
        return verdict, audit

    # -- acting on a decision -----------------------------------------------------------------

    def _act(self, ctx: JobContext, client: WebClient, decision_id: int, *, remember: Callable[..., None]) -> None:
        done = ctx.progress
        with self.sessions() as session:
            decision = store.get_decision(session, decision_id)
            view = store.view(decision)
            report_ts = decision.report_ts
        workspace = self.workspaces.effective(ctx.job.team_id)  # never another workspace's channel
        admin = self.workspaces.admin_client(workspace.admin_user_token)
        plan = plan_actions(
            view.verdict,
            can_delete=admin is not None,
            allow_reaction=self.settings.moderation_allow_reaction,
            report_channel=bool(workspace.report_channel),
        )
        detail = AUTOMATIC_REMOVAL_OFF if view.verdict == "remove" and admin is None else None
        if plan.react and not done.get("reacted"):
            ctx.checkpoint()
            self._react(client, view.channel_id, ctx.payload.ts, plan.react)
            remember(reacted=True)
        if plan.delete:
            if done.get("delete_failed"):
                plan, detail = after_failed_delete(plan), done["delete_failed"]
            elif not done.get("deleted"):
                ctx.checkpoint()
                problem = delete_file(admin, view.file_id)
                if problem:
                    plan, detail = after_failed_delete(plan), problem
                    remember(delete_failed=problem)
                else:
                    remember(deleted=True)
        # The action is stored last: until then the decision reads "pending" (a re-run resumes).
        view = replace(view, action=plan.action, action_detail=detail)
        if plan.tell_poster and not done.get("told"):
            ctx.checkpoint()
            self._tell(client, view.channel_id, view.user_id, poster_notice(view, removed=plan.delete))
            remember(told=True)
        channel = workspace.report_channel
        if plan.report and not report_ts and not done.get("report_ts"):
            ctx.checkpoint()
            try:
                posted = client.chat_postMessage(
                    channel=channel, text=report_text(view), blocks=report_blocks(view, buttons=plan.buttons)
                )
            except SlackApiError as error:
                code = str(error.response.get("error") or "")
                if code not in UNUSABLE_REPORT_CHANNEL:
                    raise
                # Retrying cannot make the bot a member: the decision is stored, the problem flagged once.
                self._flag_report_channel(ctx.job.team_id, channel, code)
                plan = replace(plan, action=UNREPORTED)
                detail = report_channel_problem(channel, code)
                view = replace(view, action=plan.action, action_detail=detail)
            else:
                remember(report_ts=posted["ts"])
                with self.sessions.begin() as session:
                    store.clear_report_problem(session, ctx.job.team_id)
        elif not plan.report and view.verdict != "allow":
            log.warning("moderation unreported id=%d: MODERATION_REPORT_CHANNEL is not set", decision_id)
        with self.sessions.begin() as session:
            decision = store.get_decision(session, decision_id)
            decision.action, decision.action_detail = plan.action, detail
            if done.get("report_ts") and not decision.report_ts:
                decision.report_channel, decision.report_ts = channel, done["report_ts"]

    def _flag_report_channel(self, team_id: str, channel: str, code: str) -> None:
        with self.sessions.begin() as session:
            first = store.flag_report_problem(session, team_id, channel, code)
        if first:
            log.error(
                "moderation report_channel_unusable channel=%s error=%s: %s", channel, code, invite_hint(channel, code)
            )

    def _react(self, client: WebClient, channel: str, ts: str, name: str) -> None:
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as error:  # a missing reaction is cosmetic; the decision is stored
            if error.response.get("error") != "already_reacted":
                log.warning("moderation reaction_failed error=%s", error.response.get("error"))

    def _tell(self, client: WebClient, channel: str, user: str, text: str) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as error:  # e.g. the poster left the channel; the report still goes out
            log.warning("moderation notice_failed error=%s", error.response.get("error"))

    # -- hooks the worker calls ---------------------------------------------------------------

    def on_dead(self, ctx: JobContext, event: JobEvent) -> None:
        """Out of attempts or rejected: store a flag and report it, so a person checks the image."""
        job, exc = ctx.job, event.error
        client = self.slack.for_team(job.team_id)
        meta = ctx.payload.file
        with self.sessions.begin() as session:
            decision = store.find_decision(session, job.team_id, meta["id"])
            if decision is None:
                verdict = could_not_check(dead_reason(exc))
                audit = {"model": None, "prompt_tokens": 0, "completion_tokens": 0}
                decision = store.save_decision(session, self._subject(ctx, meta), verdict, **audit, action=PENDING)
            decision_id, acted = decision.id, decision.action != PENDING
        if acted:
            return
        log.warning("moderation gave_up id=%d file=%s error=%s", decision_id, meta["id"], type(exc).__name__)
        # The lease is gone: keep progress in memory only; nothing is retried after this.
        self._act(ctx, client, decision_id, remember=lambda **done: ctx.progress.update(done))


def delete_file(admin: WebClient | None, file_id: str) -> str | None:
    """Delete with the admin's user token; None when done (or deleted already), else why not."""
    if admin is None:
        return "SLACK_ADMIN_USER_TOKEN is not set"
    try:
        admin.files_delete(file=file_id)
    except SlackApiError as error:
        code = error.response.get("error")
        if code == "file_deleted":
            return None
        log.warning("moderation delete_failed file=%s error=%s", file_id, code)
        if code == "file_not_found":  # not "deleted": the admin cannot see it (another workspace's token?)
            return "Slack says the admin token cannot see this file (file_not_found): is it this workspace's admin?"
        return f"Slack refused files.delete ({code}); the admin token needs the files:write scope"
    return None


class ModerationActionJob(JobHandler):
    """A moderator clicked Dismiss or Remove on a report (recorded by the web listener)."""

    def __init__(self, slack: SlackClients, sessions: sessionmaker[Session], *, workspaces: WorkspaceModeration):
        self.slack = slack
        self.sessions = sessions
        self.workspaces = workspaces

    def run(self, ctx: JobContext) -> None:
        job, payload = ctx.job, ctx.payload
        client = self.slack.for_team(job.team_id)
        decision_id, action, moderator = payload.decision_id, payload.action, payload.user
        with self.sessions() as session:
            decision = store.get_decision(session, decision_id)
            if decision is None:
                return
            view = store.view(decision)
        admin = self.workspaces.admin_client(self.workspaces.effective(job.team_id).admin_user_token)
        if action == REMOVE and view.action != REMOVED:
            ctx.checkpoint()
            problem = delete_file(admin, view.file_id)
            with self.sessions.begin() as session:
                decision = store.get_decision(session, decision_id)
                if problem is None:
                    decision.action, decision.action_detail = REMOVED, None
                else:
                    decision.action_detail = problem
                view = store.view(decision)
            if problem is None and not ctx.progress.get("told"):
                self._ephemeral(
                    client, view.channel_id, view.user_id, poster_notice(view, removed=True, by_moderator=True)
                )
                ctx.save_progress(told=True)
            elif problem is not None:
                missing = REMOVE_NEEDS_ADMIN if admin is None else f"I couldn't remove the file: {problem}."
                self._ephemeral(client, payload.report_channel, moderator, missing)
        elif action == DISMISS:
            log.info("moderation dismissed id=%d", decision_id)
        ctx.checkpoint()
        try:
            client.chat_update(
                channel=payload.report_channel,
                ts=payload.report_ts,
                text=report_text(view),
                blocks=report_blocks(view, buttons=True),
            )
        except SlackApiError as error:  # the report was deleted: the decision is recorded anyway
            log.warning("moderation report_update_failed error=%s", error.response.get("error"))

    def _ephemeral(self, client: WebClient, channel: str, user: str, text: str) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as error:
            log.warning("moderation notice_failed error=%s", error.response.get("error"))


# Image moderation runs in the background; a moderator's click is answered at once.
MODERATE = JobType("moderate", ModeratePayload, ModerateJob, lane=BACKGROUND)
MODERATION_ACTION = JobType("moderation_action", ModerationActionPayload, ModerationActionJob, lane=INTERACTIVE)
