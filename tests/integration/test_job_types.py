"""Job types as declared objects: one declaration per kind, enqueued through it, built by the runtime."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from bot.conversation.reply_job import REPLY, ReplyPayload
from bot.queue.job_type import JobEvent, JobHandler, JobType, Payload
from bot.queue.models import BACKGROUND, INTERACTIVE, Job
from bot.queue.store import claim
from bot.runtime import JOB_TYPES, build_handlers


@dataclass(frozen=True)
class GreetPayload(Payload):
    channel: str
    times: int = 1


class GreetJob(JobHandler):
    def __init__(self, greeting: str):
        self.greeting = greeting

    def run(self, ctx) -> None:  # pragma: no cover - not run here
        pass


GREET = JobType("greet", GreetPayload, GreetJob, lane=BACKGROUND, max_attempts=2)


def test_every_kind_is_declared_once_with_a_known_lane():
    kinds = [job_type.kind for job_type in JOB_TYPES]
    assert len(kinds) == len(set(kinds))
    assert {job_type.lane for job_type in JOB_TYPES} <= {INTERACTIVE, BACKGROUND}
    assert REPLY in JOB_TYPES


def test_enqueue_stores_the_payload_lane_and_attempts(sessions):
    with sessions.begin() as session:
        job_id = GREET.enqueue(session, GreetPayload(channel="C1", times=3), team_id="T1", user_id="U1")
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.kind, job.lane, job.max_attempts, job.payload) == (
            "greet",
            BACKGROUND,
            2,
            {"channel": "C1", "times": 3},
        )
    with sessions.begin() as session:
        [claimed] = claim(session, lease_seconds=30, limit=1)
    assert GREET.payload_of(claimed) == GreetPayload(channel="C1", times=3)


def test_attempts_come_from_the_settings_unless_declared(sessions):
    with sessions.begin() as session:
        job_id = REPLY.enqueue(
            session,
            ReplyPayload(channel="C1", thread_ts="1.0", ts="1.0", user="U1"),
            team_id="T1",
            settings=SimpleNamespace(job_max_attempts=7),
        )
        assert session.get(Job, job_id).max_attempts == 7
        with pytest.raises(ValueError):
            REPLY.enqueue(session, ReplyPayload(channel="C1", thread_ts="1.0", ts="1.0"), team_id="T1")


def test_a_payload_of_another_kind_is_refused(sessions):
    with sessions.begin() as session, pytest.raises(TypeError):
        GREET.enqueue(session, ReplyPayload(channel="C1", thread_ts="1.0", ts="1.0"), team_id="T1")


def test_payloads_load_from_older_or_newer_dicts():
    assert GreetPayload.from_dict({"channel": "C1", "added_later": True}) == GreetPayload(channel="C1")


def test_the_handler_table_is_built_from_the_declarations():
    greet = (GREET, lambda shared: GreetJob(shared.greeting))
    handlers = build_handlers(SimpleNamespace(greeting="hi"), (greet,))
    assert isinstance(handlers["greet"], GreetJob) and handlers["greet"].greeting == "hi"
    with pytest.raises(ValueError):
        build_handlers(SimpleNamespace(greeting="hi"), (greet, greet))


def test_hooks_are_no_ops_by_default():
    handler = GreetJob("hi")
    for hook in (handler.on_waiting, handler.on_retry, handler.on_dead):
        assert hook(None, JobEvent()) is None


def test_an_unknown_lane_is_refused_at_declaration():
    with pytest.raises(ValueError):
        JobType("x", GreetPayload, GreetJob, lane="fast")
