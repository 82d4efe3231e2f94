"""Long threads end to end: a thread longer than the context budget keeps what was said early.

Real web and worker processes with a small context budget. Until a summary exists the reply
keeps the thread's first message and says how many were left out; the background summary job
(a valid request through the same limiter) then folds the older part into a summary, which
later requests carry, marked as such, in place of those messages."""

from __future__ import annotations

import json
import re

import pytest

from bot.conversation.summary import SUMMARIZER_PROMPT
from tests.fakes.inference import echo_responder
from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

BUDGET = 12_000
FILLER = "We compared dyno sizes, build times and the release phase again, with logs attached. " * 18  # ~1,500 chars


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    return build_stack(
        request,
        tmp_path_factory,
        request.param,
        BOT_CONTEXT_BUDGET_TOKENS=str(BUDGET),
        INFERENCE_MAX_OUTPUT_TOKENS="2048",
        INFERENCE_THINKING_BUDGET_TOKENS="1024",
    )


def summarizing_model(body):
    """The fake model: as the summarizer, keeps every capitalized code word it reads (the
    summary so far included); otherwise answers like the echo model."""
    messages = body.get("messages") or []
    if messages and messages[0].get("content") == SUMMARIZER_PROMPT:
        words = sorted(set(re.findall(r"\b[A-Z]{5,}\b", messages[-1]["content"])))
        return {"content": "Key points so far: the codes " + ", ".join(words) + " were agreed in this thread."}
    return echo_responder(body)


def test_early_points_of_a_thread_longer_than_the_budget_reach_the_final_request(stack):
    stack.inference.responder = summarizing_model
    channel = new_channel()
    opening = sr.app_mention("<@UBOT> let's plan the launch together", channel=channel)
    assert stack.post_event(opening).status_code == 200
    parent = opening["ts"]
    assert wait_for(lambda: len(stack.slack.bot_messages(channel)) == 1, timeout=30), stack.logs()[-3000:]

    def say(text: str, user: str) -> None:
        before = len(stack.slack.bot_messages(channel))
        assert stack.post_event(sr.message(text, user=user, channel=channel, thread_ts=parent)).status_code == 200
        assert wait_for(lambda: len(stack.slack.bot_messages(channel)) > before, timeout=30), stack.logs()[-3000:]

    say("Decision: the launch code is PAPAYA, and the backup code is MANGOSTEEN.", "U2")
    for n in range(44):
        say(f"Update {n}: {FILLER}", "U1")
    wait_idle(stack, timeout=60)
    say("What were the launch code and the backup code we agreed on?", "U2")
    wait_idle(stack, timeout=60)

    requests = [body for _, _, body in list(stack.inference.requests)]
    ours = [b for b in requests if "let's plan the launch" in json.dumps(b) or "Update 0:" in json.dumps(b)]
    summaries = [b for b in requests if b["messages"][0].get("content") == SUMMARIZER_PROMPT]
    assert summaries, "no summary was requested"
    # Written once, then extended as the thread grew: the later call carries the summary so far.
    assert len(summaries) >= 2, len(summaries)
    assert summaries[0]["messages"][1]["content"].startswith("There is no summary yet.")
    assert all("The summary so far:" in b["messages"][1]["content"] for b in summaries[1:])
    for body in summaries:  # valid requests: a cap Haiku accepts, something to summarize
        assert body["max_tokens"] <= 4096 and body["messages"][1]["content"].strip()
        assert "tools" not in body
    # Before the summary existed, replies kept the first message and said what was left out.
    early = [b for b in ours if "left out here to fit" in json.dumps(b) and b not in summaries]
    assert early and all("let's plan the launch" in json.dumps(b) for b in early)
    [final] = [b for b in requests if "What were the launch code" in json.dumps(b) and b not in summaries]
    first_user = final["messages"][1]["content"]
    first_text = first_user if isinstance(first_user, str) else json.dumps(first_user)
    assert first_text.startswith("[Summary of the earlier part of this thread")
    assert "PAPAYA" in first_text and "MANGOSTEEN" in first_text
    # The messages after the summary stay verbatim; the request fits the budget.
    assert "Update 43:" in json.dumps(final) and "Decision: the launch code" not in json.dumps(final)
    assert "job dead" not in stack.logs()
