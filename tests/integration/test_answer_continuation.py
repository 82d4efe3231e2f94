"""An answer cut off at max_tokens continues in follow-up calls, into the same reply."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import Settings
from bot.conversation.tool_loop import CONTINUE_PROMPT, LENGTH_NOTE, CollectedText, converse, output_tokens
from bot.history.thread import ThreadEntry
from bot.inference.client import InferenceClient
from bot.inference.gateway import CallContext, ModelGateway
from bot.limits.admission import RateLimiter
from bot.limits.slots import RateLimits
from bot.tools.registry import ToolContext, ToolRegistry
from tests.fakes.inference import CHARS_PER_TOKEN, FakeInference

KEY = "continuation-key"
# Three pieces of 80 characters: 20 fake tokens each.
PIECES = ["A" * 79 + " ", "B" * 79 + " ", "C" * 79 + "."]


def responder(body):
    """The answer is PIECES joined; each call says what follows what the assistant already wrote."""
    messages = body["messages"]
    written = ""
    if messages[-1]["content"] == CONTINUE_PROMPT:
        written = messages[-2]["content"]
    return {"content": "".join(PIECES)[len(written) :]}


class StreamedText:
    streams_text = True

    def __init__(self):
        self.text = ""

    def append(self, text: str) -> None:
        self.text += text


def run(sessions, settings, sink):
    with (
        FakeInference(api_key=KEY, responder=responder) as fake,
        InferenceClient(fake.url, KEY, "claude-4-5-haiku") as client,
    ):
        gateway = ModelGateway(client, RateLimiter(sessions, RateLimits(100, 10**6, 60)), sessions)
        turn = converse(
            gateway,
            ToolRegistry(),
            settings,
            system="You are helpful.",
            entries=[ThreadEntry(ts="1.0", role="user", text="tell me a long story", user_id="U1")],
            tool_ctx=ToolContext(team_id="T1"),
            call=CallContext(team_id="T1", user_id="U1"),
            sink=sink,
            turn_ts="1.0",
        )
        return turn, fake.requests


@pytest.mark.parametrize("sink_kind", ["streamed", "collected"])
def test_a_long_answer_arrives_whole(sessions, sink_kind):
    settings = replace(Settings(), answer_max_tokens=80 // CHARS_PER_TOKEN, answer_continuations=3)
    sink = StreamedText() if sink_kind == "streamed" else CollectedText()
    turn, requests = run(sessions, settings, sink)
    assert turn.text == "".join(PIECES)
    assert sink.text == "".join(PIECES)  # one reply, no paragraph breaks where the calls joined
    assert len(requests) == 3
    assert [r.body["max_tokens"] for r in requests] == [20, 20, 20]
    follow_up = requests[1].body["messages"]
    assert follow_up[-2] == {"role": "assistant", "content": PIECES[0]}
    assert follow_up[-1] == {"role": "user", "content": CONTINUE_PROMPT}


def test_continuations_are_limited_then_the_cut_is_said(sessions):
    settings = replace(Settings(), answer_max_tokens=20, answer_continuations=1)
    turn, requests = run(sessions, settings, StreamedText())
    assert len(requests) == 2
    assert turn.text == PIECES[0] + PIECES[1] + LENGTH_NOTE


def test_answer_tokens_stay_within_the_output_cap():
    assert output_tokens(Settings()) == 1024
    assert output_tokens(replace(Settings(), answer_max_tokens=9000)) == 4096
    assert output_tokens(Settings(), thinking=True) == 4096
