"""The queue under faults, with the real processes: killed and stopped workers, a busy or
absent model. Every mention gets exactly one answer, and nobody waits in silence. (A job held back
by the limits: tests/scenario/test_queue_faults.py, in one process.)"""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import create_engine, text

from bot.config import normalize_database_url
from tests.e2e.conftest import build_stack, new_channel, wait_idle
from tests.scenario.test_queue_faults import FAST, bot_texts
from tests.support import slack_requests as sr
from tests.support.processes import start_worker, wait_for


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    return build_stack(request, tmp_path_factory, request.param, **FAST)


def job_statuses(stack) -> dict[int, str]:
    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT id, status FROM jobs")).all())
    finally:
        engine.dispose()


def test_a_worker_killed_mid_call_gives_exactly_one_reply_after_the_lease(stack):
    from tests.fakes.inference import echo_responder

    stack.inference.responder = echo_responder
    channel = new_channel()
    stack.inference.hang_next(20)
    requests_before = len(stack.inference.requests)
    stack.post_event(sr.app_mention("<@UBOT> survive a crash", channel=channel))
    assert wait_for(lambda: len(stack.inference.requests) > requests_before, timeout=10)
    victim = stack.workers.pop()
    victim.signal(signal.SIGKILL)
    victim.proc.wait(5)
    stack.workers.append(start_worker(stack.env, stack.log_dir, name="worker-after-kill"))
    assert wait_for(lambda: bot_texts(stack, channel), timeout=20), stack.logs()[-2000:]
    wait_idle(stack)
    texts = bot_texts(stack, channel)
    assert len(texts) == 1 and "survive a crash" in texts[0]


def test_a_stopped_worker_drains_and_loses_nothing(stack):
    def slow(body):
        time.sleep(1.5)
        return {"content": "slow answer"}

    stack.inference.responder = slow
    channels = [new_channel() for _ in range(6)]
    for channel in channels:
        stack.post_event(sr.app_mention("<@UBOT> take your time", channel=channel))
    assert wait_for(lambda: sum(1 for _, _, b in list(stack.inference.requests) if "take your time" in str(b)) >= 4)
    worker = stack.workers.pop()
    started = time.monotonic()
    assert worker.stop(timeout=30) == 0
    assert time.monotonic() - started < 25
    stack.workers.append(start_worker(stack.env, stack.log_dir, name="worker-after-drain"))
    wait_idle(stack, timeout=30)
    for channel in channels:
        assert bot_texts(stack, channel) == ["slow answer"], channel
    assert "Traceback" not in worker.output()


def test_when_the_model_is_down_the_user_hears_an_apology_then_the_answer(stack):
    from tests.fakes.inference import echo_responder

    stack.inference.responder = echo_responder
    channel = new_channel()
    stack.inference.set_down(True)
    try:
        stack.post_event(sr.app_mention("<@UBOT> are you there?", channel=channel))
        # The apology is the thread's one message (the status clears after 2 minutes, #21);
        # the answer replaces it.
        assert wait_for(lambda: any("not answering" in t for t in bot_texts(stack, channel)), timeout=20), stack.logs()[
            -2000:
        ]
    finally:
        stack.inference.set_down(False)
    assert wait_for(lambda: any("are you there?" in t for t in bot_texts(stack, channel)), timeout=20)
    wait_idle(stack)
    texts = bot_texts(stack, channel)
    assert len(texts) == 1  # the answer, the thread's only bot message
    assert not any("not answering" in t for t in texts)  # the apology was replaced


def test_out_of_attempts_the_user_is_told_and_the_job_is_kept(stack):
    channel = new_channel()
    stack.inference.fail_next(500, times=3)
    stack.post_event(sr.app_mention("<@UBOT> this will keep failing", channel=channel))
    assert wait_for(lambda: any(t.startswith("Sorry, I couldn't") for t in bot_texts(stack, channel)), timeout=30), (
        stack.logs()[-2000:]
    )
    assert "dead" in job_statuses(stack).values()
