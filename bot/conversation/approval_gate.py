"""The approval gate of a reply: state-changing tool calls the model makes wait for the asker.

For each call (bot.conversation.tool_loop asks before running anything): a reading tool runs;
a state-changing one looks up its approval (bot.tools.approvals) — approved: it runs; denied
or expired: the model is told it was refused; new or pending: the card is posted in the thread
(once) and the job parks (bot.queue.parking.JobParked) until the asker answers or time is up.
The job then runs again from the thread and finds the decision when the model repeats the call.
An approval covers one call (the n-th identical call of a run has the n-th approval), and an
approved call runs at most once over every attempt of the job (`ApprovedCall`); parking asks
whether the answer came already, in the parking transaction, so an early click is never lost.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.queue.parking import JobParked
from bot.tools import approvals
from bot.tools.approval_logic import (
    APPROVED,
    EXPIRED,
    PENDING,
    STARTED_BEFORE_RESULT,
    approval_card,
    arguments_key,
    card_text,
    describe_call,
    effective_status,
    needs_approval,
    parse_arguments,
    refused_result,
    settled_card,
)
from bot.tools.registry import ToolRegistry
from bot.tools.runner import ToolResult

log = logging.getLogger(__name__)

NO_CARD_HERE = (
    "This action changes something, so the person must approve it first, and that cannot be asked "
    "here: tell them to ask in a thread, or to use the slash command themselves."
)


def _state_changing(tools: ToolRegistry, name: str, arguments_json: str):
    """(tool, arguments) when this call changes state (the model made it), else (None, None)."""
    tool = tools.get(name)
    arguments = parse_arguments(arguments_json)
    if tool is None or arguments is None or not needs_approval(tool.changes_state, arguments, typed_by_person=False):
        return None, None
    return tool, arguments


class RefuseStateChanges:
    """For `/ask` (no thread to post a card in): state-changing calls are refused with a reason."""

    def __init__(self, tools: ToolRegistry):
        self.tools = tools

    def check(self, name: str, arguments_json: str) -> ToolResult | None:
        tool = self.tools.get(name)
        arguments = parse_arguments(arguments_json)
        if (
            tool is None
            or arguments is None
            or not needs_approval(tool.changes_state, arguments, typed_by_person=False)
        ):
            return None
        return ToolResult(ok=False, content=NO_CARD_HERE)


class ApprovedCall:
    """One approved call: runs at most once over every attempt of the job (bot.tools.runner.RunsOnce)."""

    def __init__(self, sessions: sessionmaker[Session], approval_id: int):
        self.sessions = sessions
        self.approval_id = approval_id

    def run(self, execute) -> ToolResult:
        with self.sessions.begin() as session:
            ours = approvals.use(session, self.approval_id)
        if not ours:  # another run of the job started it: never twice
            return _earlier_result(self.sessions, self.approval_id)
        result = execute()
        with self.sessions.begin() as session:
            approvals.record_result(session, self.approval_id, ok=result.ok, content=result.content)
        return result


def _earlier_result(sessions: sessionmaker[Session], approval_id: int) -> ToolResult:
    with sessions() as session:
        approval = session.get(approvals.ToolApproval, approval_id)
        if approval is None or approval.result is None:
            return ToolResult(ok=False, content=STARTED_BEFORE_RESULT)
        return ToolResult(ok=bool(approval.result_ok), content=approval.result)


class ApprovalGate:
    """Per run of a job: counts identical calls, so the n-th one has the n-th approval."""

    def __init__(
        self,
        tools: ToolRegistry,
        sessions: sessionmaker[Session],
        client: WebClient,
        *,
        team_id: str,
        job_id: int,
        channel: str,
        thread_ts: str,
        asker: str,
        timeout_seconds: float,
    ):
        self.tools = tools
        self.sessions = sessions
        self.client = client
        self.team_id, self.job_id = team_id, job_id
        self.channel, self.thread_ts, self.asker = channel, thread_ts, asker
        self.timeout_seconds = timeout_seconds
        self._seen: Counter[tuple[str, str]] = Counter()

    def check(self, name: str, arguments_json: str) -> ToolResult | ApprovedCall | None:
        tool, arguments = _state_changing(self.tools, name, arguments_json)
        if tool is None:
            return None  # reading tools run; unknown tools and bad JSON are the runner's to refuse
        key = arguments_key(arguments)
        self._seen[(name, key)] += 1
        occurrence = self._seen[(name, key)]
        what = describe_call(tool.label, tool.spec.description, arguments)
        with self.sessions.begin() as session:
            approval = approvals.request(
                session,
                team_id=self.team_id,
                job_id=self.job_id,
                channel_id=self.channel,
                thread_ts=self.thread_ts,
                user_id=self.asker,
                tool=name,
                arguments=key,
                what=what,
                timeout_seconds=self.timeout_seconds,
                occurrence=occurrence,
            )
            status = effective_status(approval.state(), datetime.now(UTC))
            if status == EXPIRED and approval.status == PENDING:
                approval.status = EXPIRED
            approval_id, card_ts, expires_at, decided_by = (
                approval.id,
                approval.card_ts,
                approval.expires_at,
                approval.decided_by,
            )
            used = approval.used_at is not None
        if status == PENDING:
            if card_ts is None:
                self._post_card(approval_id, what)
            log.info("tool awaiting_approval job_id=%d tool=%s approval_id=%d", self.job_id, name, approval_id)
            raise JobParked(
                f"{name} awaits approval",
                until=expires_at,
                answered=lambda session: approvals.answered(session, approval_id),
            )
        if card_ts and not used:
            self._settle_card(card_ts, what, status, decided_by)
        log.info("tool approval job_id=%d tool=%s status=%s used=%s", self.job_id, name, status, used)
        if status != APPROVED:
            return ToolResult(ok=False, content=refused_result(status))
        if used:
            return _earlier_result(self.sessions, approval_id)
        return ApprovedCall(self.sessions, approval_id)

    def _post_card(self, approval_id: int, what: str) -> None:
        hours = self.timeout_seconds / 3600
        posted = self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=self.thread_ts,
            text=card_text(what),
            blocks=approval_card(approval_id, asker=self.asker, what=what, timeout_hours=round(hours, 2)),
        )
        with self.sessions.begin() as session:
            approval = session.get(approvals.ToolApproval, approval_id)
            approval.card_ts = posted["ts"]

    def _settle_card(self, card_ts: str, what: str, status: str, decided_by: str | None) -> None:
        try:
            self.client.chat_update(
                channel=self.channel,
                ts=card_ts,
                text=card_text(what),
                blocks=settled_card(asker=self.asker, what=what, status=status, decided_by=decided_by),
            )
        except SlackApiError as error:  # cosmetic: the decision is stored and acted on
            log.warning("approval card_update_failed error=%s", error.response.get("error"))
