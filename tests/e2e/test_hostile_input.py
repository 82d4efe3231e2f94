"""Hostile input never stalls a worker (issue 22), end to end on PostgreSQL: gunicorn web + one
worker process, fake Slack and fake model over HTTP.

`/calc round(1, -10**8)` would make CPython build a 100-million-digit number while holding the
interpreter lock: minutes in which the worker neither answers anyone else nor renews its leases.
It is refused in one sentence, and other people's mentions are answered meanwhile.

An 85 KB PDF whose 40 pages share one Flate stream inflating to 30 MB of text operators cost
pypdf ~3.5 s of CPU and ~180 MB a page, inside the reply job, and again for every new mention in
the thread. It is read in a sandboxed child, stopped at its caps, answered with a note, and the
outcome stored: a follow-up does not read it again."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import build_stack, new_channel, wait_idle
from tests.support import slack_requests as sr
from tests.support.pdfs import make_pdf_bomb
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


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_pdf_bomb_is_answered_with_a_note_while_others_are_answered(stack):
    bomb = make_pdf_bomb()
    assert 80_000 < len(bomb) < 95_000
    pdf = stack.slack.add_file("FBOMB", bomb, name="quarterly.pdf", mimetype="application/pdf")
    worker = stack.workers[0].proc.pid
    before = peak_rss_bytes(worker)
    channel = new_channel()
    started = time.monotonic()
    event = sr.app_mention("<@UBOT> summarize this report", channel=channel, files=[pdf])
    assert stack.post_event(event).status_code == 200
    others = [mention(stack, f"a question from person {n}", user=f"U{n + 20}") for n in range(3)]
    for other in others:
        assert wait_for(lambda c=other: stack.slack.bot_messages(c), timeout=20), stack.logs()[-3000:]
    assert time.monotonic() - started < 20
    assert wait_for(lambda: stack.slack.bot_messages(channel), timeout=30), stack.logs()[-3000:]
    wait_idle(stack, timeout=30)
    assert time.monotonic() - started < 30
    [answer] = stack.slack.bot_messages(channel)
    note = "quarterly.pdf is too costly to read (stopped after 0 pages)"
    assert note in stack.slack.text_of(channel, answer["ts"])
    assert peak_rss_bytes(worker) - before <= 150 * 1024 * 1024
    # A follow-up in the thread: the stored outcome, no second download or read.
    downloads = len(stack.slack.downloads)
    follow_up = sr.app_mention("<@UBOT> and now?", channel=channel, thread_ts=event["ts"])
    assert stack.post_event(follow_up).status_code == 200
    assert wait_for(lambda: len(stack.slack.bot_messages(channel)) == 2, timeout=20), stack.logs()[-3000:]
    wait_idle(stack)
    assert len(stack.slack.downloads) == downloads
    [request] = [body for _, _, body in list(stack.inference.requests) if "and now?" in json.dumps(body)]
    assert note in json.dumps(request)
