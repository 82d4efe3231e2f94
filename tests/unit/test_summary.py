"""Thread summaries (pure): when to ask, what to summarize, the request the model gets."""

from __future__ import annotations

import pytest

from bot.conversation.budget import fit_to_budget
from bot.conversation.summary import (
    SUMMARIZER_PROMPT,
    SUMMARY_MAX_TOKENS,
    Summary,
    chunks,
    split_point,
    summary_entry,
    summary_request,
    transcript_line,
    wants_summary,
)
from bot.history.messages import thread_to_messages
from bot.history.thread import DocumentPart, ImagePart, ThreadEntry, ToolCall


def test_a_summary_is_wanted_when_the_history_nearly_fills_the_budget():
    assert not wants_summary(800, 1000) and wants_summary(901, 1000)


@pytest.mark.parametrize(
    ("rows", "budget", "point"),
    [
        # Keep the newest half of the budget (500) verbatim: the last five rows of 100.
        ([("1", 0, 100)] * 10, 1000, 5),
        ([("1", 0, 100)] * 3, 1000, 0),  # everything fits in the kept half: nothing to summarize
        # Never start the verbatim part inside a bot turn (seq > 0): move the cut back to its message.
        ([("1", 0, 100), ("2", 0, 100), ("2", 1, 100), ("2", 2, 100), ("3", 0, 100), ("3", 1, 100)], 700, 1),
        ([("1", 0, 900), ("2", 0, 10)], 1000, 1),
        ([], 1000, 0),
    ],
)
def test_split_point(rows, budget, point):
    assert split_point(rows, budget) == point


@pytest.mark.parametrize(
    ("tokens", "limit", "ranges"),
    [
        ([10, 10, 10], 25, [(0, 2), (2, 3)]),
        ([10, 10, 10], 100, [(0, 3)]),
        ([500, 10], 100, [(0, 1), (1, 2)]),  # a big message is a chunk of its own
        ([], 100, []),
    ],
)
def test_chunks(tokens, limit, ranges):
    assert chunks(tokens, limit) == ranges


def test_the_request_is_valid_and_carries_the_summary_so_far_and_the_new_messages():
    entries = [
        ThreadEntry("1", "user", "the launch code is PAPAYA", "U1", "Ann"),
        ThreadEntry("1", "assistant", "", tool_calls=(ToolCall("c1", "search", '{"q": "x"}'),)),
        ThreadEntry("1", "tool", "result " * 500, tool_call_id="c1"),
        ThreadEntry("2", "assistant", "Noted."),
        ThreadEntry(
            "3",
            "user",
            "see file",
            "U2",
            documents=(DocumentPart("plan.md", "step one"),),
            images=(ImagePart("image/png", b"", 1, 1, name="shot.png"),),
        ),
        ThreadEntry("4", "user", "gone", "U1", deleted=True),
    ]
    body = summary_request("Earlier: Ann asked about launches.", entries)
    assert body["max_tokens"] == SUMMARY_MAX_TOKENS <= 4096
    system, user = body["messages"]
    assert system == {"role": "system", "content": SUMMARIZER_PROMPT}
    assert user["role"] == "user" and user["content"].strip()
    content = user["content"]
    assert content.startswith("The summary so far:\nEarlier: Ann asked about launches.")
    assert "[<@U1> Ann]: the launch code is PAPAYA" in content and "[the bot]: Noted." in content
    assert "(called search(" in content and "[tool result]: result" in content and "[…]" in content
    assert '(file "plan.md", beginning: step one)' in content and '(image "shot.png")' in content
    assert "gone" not in content


def test_the_first_request_says_there_is_no_summary_yet():
    body = summary_request(None, [ThreadEntry("1", "user", "hi", "U1")])
    assert body["messages"][1]["content"].startswith("There is no summary yet.")


def test_the_summary_goes_first_marked_as_a_summary_and_stays_within_the_budget():
    summary = Summary("Ann set the launch code to PAPAYA.", ("9", 0), 40)
    entries = [summary_entry(summary)] + [
        ThreadEntry(
            str(10 + n), "user" if n % 2 == 0 else "assistant", f"message {n} " * 40, "U1" if n % 2 == 0 else None
        )
        for n in range(30)
    ]
    fitted = fit_to_budget(entries, budget_tokens=2000, fixed_tokens=200)
    messages = thread_to_messages(fitted.entries, system_prompt="s")
    first = messages[1]["content"]
    assert first.startswith("[Summary of the earlier part of this thread (40 messages)")
    assert "PAPAYA" in first and fitted.fits


def test_transcript_lines_without_attribution_still_say_who():
    assert transcript_line(ThreadEntry("1", "user", "hello")) == "[someone]: hello"
