"""Hostile input never stalls a worker (issue 22), end to end on PostgreSQL: gunicorn web + one
worker process, fake Slack and fake model over HTTP.

`/calc round(1, -10**8)` would make CPython build a 100-million-digit number while holding the
interpreter lock: minutes in which the worker neither answers anyone else nor renews its leases.
It is refused in one sentence, and other people's mentions are answered meanwhile."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.conftest import build_stack, new_channel, wait_idle
from tests.support import slack_requests as sr
from tests.support.processes import wait_for


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    stack = build_stack(request, tmp_path_factory, "postgres", WORKER_CONCURRENCY="4")
    return stack


def mention(stack, text: str, *, user: str) -> str:
    channel = new_channel()
    assert stack.post_event(sr.app_mention(f"<@UBOT> {text}", channel=channel, user=user)).status_code == 200
    return channel


def test_a_calculation_too_large_to_build_is_refused_while_others_are_answered(stack):
    name = uuid.uuid4().hex
    form = sr.slash_command_form(
        "/calc", "round(1, -10**8)", user_id="U1", channel_id=new_channel(), response_url=stack.slack.response_url(name)
    )
    started = time.monotonic()
    assert stack.post_form(form).status_code == 200
    # Others' mentions, sent while the calculation is being looked at.
    channels = [mention(stack, f"hello from person {n}", user=f"U{n + 10}") for n in range(3)]
    answers = wait_for(lambda: stack.slack.responses_to(name), timeout=5)
    assert answers, f"/calc not answered within 5 s; logs:\n{stack.logs()[-3000:]}"
    assert time.monotonic() - started < 5
    assert len(answers) == 1
    assert answers[0].body["text"] == "That number would have 100,000,001 digits; I work with at most 1,233."
    for channel in channels:
        assert wait_for(lambda c=channel: stack.slack.bot_messages(c), timeout=20), stack.logs()[-3000:]
    assert time.monotonic() - started < 20
    wait_idle(stack)
