"""Approvals that cannot be lost or reused (issue 22), with the real worker, gate and click
handler on PostgreSQL.

- A click that lands between the card being posted and the job being parked used to record
  "approved" and wake nothing (the job was not parked yet): the job then slept until the
  approval expired (24 h). Parking now asks for the answer in its own transaction.
- An approval covers one call: an identical later call in the turn asks again, and a retry of
  a job whose approved call already ran gets its result back instead of running it twice.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.conversation.approval_gate import ApprovalGate, ApprovedCall
from bot.db.engine import make_engine, make_session_factory
from bot.failures import AwaitingPerson
from bot.queue import parking, store
from bot.queue.job_type import JobHandler
from bot.queue.models import QUEUED, Job
from bot.queue.worker import Worker
from bot.slack_app.listeners.approvals import record_answer
from bot.tools import approvals
from bot.tools.approval_logic import APPROVE_ACTION, STARTED_BEFORE_RESULT
from bot.tools.registry import ToolRegistry
from bot.tools.runner import ToolResult, run_tool_calls
from tests.support.processes import wait_for


@pytest.fixture
def pg_sessions(postgres_url):
    engine = make_engine(postgres_url, pool_size=20)
    yield make_session_factory(engine)
    engine.dispose()


def delete_everything(ctx, thread: str) -> str:
    """Delete everything in a thread.

    Args:
        thread: Which thread.
    """
    return f"deleted {thread}"


def registry() -> ToolRegistry:
    tools = ToolRegistry()
    tools.add(delete_everything, changes_state=True)
    return tools


class CardClient:
    """Slack as the gate sees it: posting the card returns a ts; `on_card` runs while the
    post is "in flight" (a fast click lands before the job is parked)."""

    def __init__(self, on_card=None):
        self.on_card = on_card
        self.cards: list[dict] = []
        self.updates: list[dict] = []

    def chat_postMessage(self, **kwargs):
        self.cards.append(kwargs)
        if self.on_card is not None:
            self.on_card(kwargs)
        return {"ts": f"9.{len(self.cards)}"}

    def chat_update(self, **kwargs):
        self.updates.append(kwargs)
        return {"ok": True}


def gate(sessions, client, job_id: int, tools: ToolRegistry) -> ApprovalGate:
    return ApprovalGate(
        tools,
        sessions,
        client,
        team_id="T1",
        job_id=job_id,
        channel="C1",
        thread_ts="1.0",
        asker="U1",
        timeout_seconds=24 * 3600,
    )


def click(sessions, approval_id: int, user: str = "U1") -> str:
    return record_answer(
        sessions,
        None,
        body={"user": {"id": user}, "team": {"id": "T1"}},
        action={"action_id": APPROVE_ACTION, "value": str(approval_id)},
        team_id="T1",
    )


class ApprovingJob(JobHandler):
    """A reply's tool round in miniature: the gate, then the approved call through its guard."""

    def __init__(self, sessions, client, tools):
        self.sessions, self.client, self.tools = sessions, client, tools
        self.ran: list[str] = []

    def run(self, ctx) -> None:
        calls = [("call-1", "delete_everything", '{"thread": "C1/1.0"}')]
        verdict = gate(self.sessions, self.client, ctx.job.id, self.tools).check(calls[0][1], calls[0][2])
        assert isinstance(verdict, ApprovedCall)
        [(_, result)] = run_tool_calls(self.tools, calls, _tool_ctx(), once={"call-1": verdict})
        self.ran.append(result.content)


def _tool_ctx():
    from bot.tools.registry import ToolContext

    return ToolContext(team_id="T1", user_id="U1")


def test_a_click_before_the_job_is_parked_runs_it_at_once(pg_sessions):
    sessions = pg_sessions

    def click_while_posting(card: dict) -> None:
        approval_id = int(card["blocks"][1]["elements"][0]["value"])
        assert click(sessions, approval_id) == "decided"  # the job is still running: nothing to wake

    tools = registry()
    handler = ApprovingJob(sessions, CardClient(on_card=click_while_posting), tools)
    with sessions.begin() as session:
        job_id = store.enqueue(session, kind="approving", payload={}, team_id="T1", user_id="U1")
    worker = Worker(sessions, {"approving": handler}, poll_seconds=0.05, lease_seconds=10)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # Without the check in the parking transaction, the job stays parked for 24 hours.
        assert wait_for(lambda: handler.ran, timeout=10), "the approved call did not run"
        assert handler.ran == ["deleted C1/1.0"]
        assert wait_for(lambda: _status(sessions, job_id) == "done", timeout=10)
    finally:
        worker.stop()
        thread.join(timeout=10)


def test_clicks_racing_the_parking_never_leave_a_job_parked(pg_sessions):
    """Click and park at the same moment, many times: the row lock orders them either way."""
    for round_number in range(20):
        job_id = _click_while_parking(pg_sessions, click_later=bool(round_number % 2))
        assert _status(pg_sessions, job_id) == QUEUED, f"round {round_number}: the job stayed parked"


def _click_while_parking(sessions, *, click_later: bool) -> int:
    with sessions.begin() as session:
        job_id = store.enqueue(session, kind="approving", payload={}, team_id="T1", user_id="U1")
    with sessions.begin() as session:
        [claimed] = store.claim(session, lease_seconds=30)
    with sessions.begin() as session:
        approval_id = approvals.request(
            session,
            team_id="T1",
            job_id=job_id,
            channel_id="C1",
            thread_ts="1.0",
            user_id="U1",
            tool="delete_everything",
            arguments="{}",
            what="delete",
            timeout_seconds=3600,
        ).id
    start = threading.Barrier(2)

    def park() -> None:
        start.wait()
        with sessions.begin() as session:
            parking.park(
                session,
                job_id,
                claimed.lease_token,
                until=datetime.now(UTC) + timedelta(hours=24),
                answered=lambda s: approvals.answered(s, approval_id),
            )

    parker = threading.Thread(target=park)
    parker.start()
    start.wait()
    if click_later:
        time.sleep(0.001)
    assert click(sessions, approval_id) == "decided"
    parker.join(timeout=10)
    return job_id


def _status(sessions, job_id: int) -> str:
    with sessions() as session:
        return session.get(Job, job_id).status


def test_an_approval_covers_one_call_and_a_retry_does_not_run_it_twice(pg_sessions):
    sessions = pg_sessions
    tools = registry()
    client = CardClient()
    arguments = '{"thread": "C1/1.0"}'
    ran: list[str] = []

    def execute() -> ToolResult:
        ran.append("ran")
        return ToolResult(True, "deleted C1/1.0")

    # First run: the call waits for the person.
    with pytest.raises(AwaitingPerson):
        gate(sessions, client, 7, tools).check("delete_everything", arguments)
    with sessions() as session:
        [first] = session.execute(select(approvals.ToolApproval)).scalars().all()
    assert click(sessions, first.id) == "decided"

    # The job runs again: the approved call runs once; an identical later call asks again.
    run_two = gate(sessions, client, 7, tools)
    approved = run_two.check("delete_everything", arguments)
    assert isinstance(approved, ApprovedCall)
    assert approved.run(execute).content == "deleted C1/1.0"
    with pytest.raises(AwaitingPerson):
        run_two.check("delete_everything", arguments)
    assert len(client.cards) == 2, "the second identical call gets its own card"
    with sessions() as session:
        second = approvals.find(session, 7, "delete_everything", '{"thread":"C1/1.0"}', occurrence=2)
    assert click(sessions, second.id) == "decided"

    # A retry of the job (a crash after the first call ran): the first call is not run again,
    # its result comes back; the second, approved, runs once.
    retry = gate(sessions, client, 7, tools)
    again = retry.check("delete_everything", arguments)
    assert isinstance(again, ToolResult) and again.content == "deleted C1/1.0"
    then = retry.check("delete_everything", arguments)
    assert isinstance(then, ApprovedCall)
    then.run(execute)
    assert ran == ["ran", "ran"]
    # The same guard handed out twice (two runs of the job at once) still runs it once.
    assert ApprovedCall(sessions, second.id).run(execute).content == "deleted C1/1.0"
    assert ran == ["ran", "ran"]


def test_an_approved_call_whose_outcome_was_lost_is_not_run_again(pg_sessions):
    sessions = pg_sessions
    with sessions.begin() as session:
        approval = approvals.request(
            session,
            team_id="T1",
            job_id=8,
            channel_id="C1",
            thread_ts="1.0",
            user_id="U1",
            tool="delete_everything",
            arguments="{}",
            what="delete",
            timeout_seconds=3600,
        )
        approval_id = approval.id
    click(sessions, approval_id)
    with sessions.begin() as session:
        assert approvals.use(session, approval_id)  # the first attempt started it, then died
    result = ApprovedCall(sessions, approval_id).run(lambda: pytest.fail("ran twice"))
    assert result == ToolResult(False, STARTED_BEFORE_RESULT)
