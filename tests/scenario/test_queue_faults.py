"""The queue under a busy model, in one process (tests.support.in_process): a job the limits hold
back says so in the thread's status and is answered in one message. (It ran against gunicorn and
a worker process in tests/e2e; the limiter, not the process boundary, is its point. The faults
that need real processes, killed and stopped workers, stay in tests/e2e/test_queue_faults.py.)"""

from __future__ import annotations

import pytest

from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import wait_for
from tests.support.stacks import new_channel

FAST = {
    "JOB_LEASE_SECONDS": "3",
    "JOB_MAX_ATTEMPTS": "3",
    "BOT_QUEUED_NOTICE_SECONDS": "1",
    "BOT_APOLOGY_AFTER_SECONDS": "3",
}


def bot_texts(stack, channel: str) -> list[str]:
    return [stack.slack.text_of(channel, m["ts"]) for m in stack.slack.bot_messages(channel)]


def statuses(stack, channel: str) -> list[str]:
    """What the thread's status line said (assistant.threads.setStatus), rotating messages included."""
    return [
        f"{c.params.get('status')} {c.params.get('loading_messages')}"
        for c in stack.slack.calls_to("assistant.threads.setStatus")
        if c.params.get("channel_id") == channel
    ]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_job_held_back_by_the_limits_says_so_in_the_status_and_answers_in_one_message(
    request, tmp_path_factory, kind
):
    limited = build_stack(
        request,
        tmp_path_factory,
        kind,
        INFERENCE_MAX_REQUESTS_PER_MINUTE="1",
        INFERENCE_RATE_WINDOW_SECONDS="2",  # the second job waits out the window: any length says so
        **FAST,
    )
    first, second = new_channel(), new_channel()
    limited.post_event(sr.app_mention("<@UBOT> first", channel=first))
    assert wait_for(lambda: bot_texts(limited, first), timeout=10)
    limited.post_event(sr.app_mention("<@UBOT> second", channel=second))
    assert wait_for(lambda: any("second" in t for t in bot_texts(limited, second)), timeout=20)
    texts = bot_texts(limited, second)
    assert len(texts) == 1  # no "queued" note beside the answer
    assert any("Waiting for the model" in t for t in statuses(limited, second)), statuses(limited, second)
    assert len(limited.inference.requests) == 2 and limited.inference.rejected_429 == 0
