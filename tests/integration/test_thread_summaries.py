"""Thread summaries on both databases: requested once at a time, written by the job from the
older messages (the newest half of the budget stays verbatim), extended, and forgotten with the thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update

from bot.config import Settings
from bot.conversation import summary_store
from bot.conversation.summary import SUMMARIZER_PROMPT
from bot.conversation.summary_job import SUMMARIZE, SummaryJob, SummaryPayload
from bot.conversation.window import newest_rows
from bot.failures import Permanent
from bot.history import store as history
from bot.history.models import ThreadSummary
from bot.queue.context import JobContext
from bot.queue.store import ClaimedJob

WORDS = "we went through the deployment plan and the dyno sizes once more, with numbers "


@dataclass
class Completion:
    content: str


class ScriptedModel:
    """Stands in for the gateway: records each body and answers with a summary naming its size."""

    def __init__(self, fail: BaseException | None = None):
        self.bodies: list[dict] = []
        self.fail = fail

    def call(self, body, ctx, **_):
        self.bodies.append(body)
        if self.fail:
            raise self.fail
        return Completion(f"summary #{len(self.bodies)}: {body['messages'][1]['content'].count('[<@')} messages")


def fill(sessions, start, count):
    with sessions.begin() as session:
        history.engage_thread(session, "T1", "C1", "1.0", mid_thread=False)
        for n in range(start, start + count):
            history.upsert_message(
                session,
                team_id="T1",
                channel_id="C1",
                thread_ts="1.0",
                ts=f"{100 + n}.0",
                user_id="U1",
                text=f"message {n}: " + WORDS * 4,
            )


def context(sessions) -> JobContext:
    job = ClaimedJob(
        id=1,
        kind=SUMMARIZE.kind,
        payload=SummaryPayload("C1", "1.0").to_dict(),
        lane=SUMMARIZE.lane,
        team_id="T1",
        user_id="U1",
        attempts=1,
        max_attempts=3,
        lease_token="t",
        progress={},
        created_at=datetime.now(UTC),
        notified_at=None,
    )
    return JobContext(job=job, sessions=sessions, stopping=threading.Event(), payload=SUMMARIZE.payload_of(job))


def test_a_summary_is_requested_once_at_a_time(sessions):
    with sessions.begin() as session:
        assert summary_store.request_summary(session, "T1", "C1", "1.0")
        assert not summary_store.request_summary(session, "T1", "C1", "1.0")
        session.execute(
            update(ThreadSummary).values(requested_at=datetime.now(UTC) - summary_store.REQUEST_STALE_AFTER * 2)
        )
        assert summary_store.request_summary(session, "T1", "C1", "1.0")  # an abandoned request is made again
        assert summary_store.get_summary(session, "T1", "C1", "1.0") is None  # nothing written yet


def test_the_job_folds_the_older_part_into_the_summary_and_extends_it(sessions):
    settings = Settings(context_budget_tokens=2000)
    fill(sessions, 0, 40)
    with sessions.begin() as session:
        summary_store.request_summary(session, "T1", "C1", "1.0")
    model = ScriptedModel()
    SummaryJob(model, sessions, settings).run(context(sessions))
    [body] = model.bodies
    assert body["max_tokens"] <= 4096 and body["messages"][0]["content"] == SUMMARIZER_PROMPT
    assert "message 0:" in body["messages"][1]["content"] and "message 39:" not in body["messages"][1]["content"]
    with sessions() as session:
        summary = summary_store.get_summary(session, "T1", "C1", "1.0")
        row = summary_store.summary_row(session, "T1", "C1", "1.0")
        after = newest_rows(session, "T1", "C1", "1.0", budget_tokens=10**9, after=summary.covers)
    assert summary.text.startswith("summary #1") and row.requested_at is None
    assert summary.covered + after.total_rows == 40
    assert after.total_tokens <= settings.context_budget_tokens * 0.5 + 100  # the newest half stays verbatim

    fill(sessions, 40, 20)
    SummaryJob(model, sessions, settings).run(context(sessions))
    second = model.bodies[-1]["messages"][1]["content"]
    assert second.startswith("The summary so far:\nsummary #1") and "message 0:" not in second
    with sessions() as session:
        extended = summary_store.get_summary(session, "T1", "C1", "1.0")
    assert extended.covered > summary.covered and extended.text.startswith("summary #2")


def test_nothing_to_summarize_only_ends_the_request(sessions):
    fill(sessions, 0, 3)
    with sessions.begin() as session:
        summary_store.request_summary(session, "T1", "C1", "1.0")
    model = ScriptedModel()
    SummaryJob(model, sessions, Settings(context_budget_tokens=100_000)).run(context(sessions))
    with sessions() as session:
        assert model.bodies == [] and summary_store.summary_row(session, "T1", "C1", "1.0").requested_at is None


def test_a_refused_call_writes_nothing_and_crashes_nothing(sessions):
    class Spent(Permanent):
        reason = "budget"

    fill(sessions, 0, 40)
    with sessions.begin() as session:
        summary_store.request_summary(session, "T1", "C1", "1.0")
    SummaryJob(ScriptedModel(fail=Spent()), sessions, Settings(context_budget_tokens=2000)).run(context(sessions))
    with sessions() as session:
        assert summary_store.get_summary(session, "T1", "C1", "1.0") is None


def test_forgetting_the_thread_forgets_its_summary(sessions):
    fill(sessions, 0, 40)
    with sessions.begin() as session:
        summary_store.request_summary(session, "T1", "C1", "1.0")
    SummaryJob(ScriptedModel(), sessions, Settings(context_budget_tokens=2000)).run(context(sessions))
    with sessions.begin() as session:
        assert summary_store.get_summary(session, "T1", "C1", "1.0") is not None
        history.forget_thread(session, "T1", "C1", "1.0")
    with sessions() as session:
        assert summary_store.summary_row(session, "T1", "C1", "1.0") is None


def test_a_job_finishing_after_the_thread_was_forgotten_keeps_nothing(sessions):
    fill(sessions, 0, 40)
    with sessions.begin() as session:
        summary_store.request_summary(session, "T1", "C1", "1.0")

    class ForgetsFirst(ScriptedModel):
        def call(self, body, ctx, **_):
            with sessions.begin() as session:  # /forget while the model writes the summary
                history.forget_thread(session, "T1", "C1", "1.0")
            return super().call(body, ctx)

    SummaryJob(ForgetsFirst(), sessions, Settings(context_budget_tokens=2000)).run(context(sessions))
    with sessions() as session:
        assert summary_store.summary_row(session, "T1", "C1", "1.0") is None


def test_editing_or_deleting_a_covered_message_drops_the_summary(sessions):
    fill(sessions, 0, 40)
    for change in ("edit", "delete", "newer"):
        with sessions.begin() as session:
            summary_store.request_summary(session, "T1", "C1", "1.0")
        SummaryJob(ScriptedModel(), sessions, Settings(context_budget_tokens=2000)).run(context(sessions))
        with sessions.begin() as session:
            covers = summary_store.get_summary(session, "T1", "C1", "1.0").covers
            if change == "edit":
                history.edit_message(session, team_id="T1", channel_id="C1", ts="100.0", text="redacted", files=None)
            elif change == "delete":
                history.delete_message(session, team_id="T1", channel_id="C1", ts="101.0")
            else:  # a message after the summary changes nothing about it
                history.edit_message(session, team_id="T1", channel_id="C1", ts="139.0", text="later", files=None)
        with sessions() as session:
            kept = summary_store.get_summary(session, "T1", "C1", "1.0")
        assert (kept is not None) == (change == "newer"), (change, covers)
        if kept is None:
            with sessions.begin() as session:
                summary_store.delete_summary(session, "T1", "C1", "1.0")


def test_a_channels_model_setting_summarizes_its_threads(sessions):
    from bot.channel_settings import store as settings_store

    settings = Settings(context_budget_tokens=2000)
    fill(sessions, 0, 40)
    with sessions.begin() as session:
        summary_store.request_summary(session, "T1", "C1", "1.0")
        settings_store.set_value(session, "T1", "C1", "model", "claude-4-5-sonnet", user_id="UADMIN")
    contexts = []

    class Recording(ScriptedModel):
        def call(self, body, ctx, **kwargs):
            contexts.append(ctx)
            return super().call(body, ctx, **kwargs)

    SummaryJob(Recording(), sessions, settings).run(context(sessions))
    assert contexts and {ctx.model for ctx in contexts} == {"claude-4-5-sonnet"}
