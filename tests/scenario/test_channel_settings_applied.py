"""Channel settings (#25) applied to answers, through signed Slack requests, on SQLite and
PostgreSQL: a channel's instructions, tools, answer policy, budget and model change what its
answers send (and only its), DMs and `/ask` follow the same rules."""

from __future__ import annotations

import time
import uuid

import pytest

from bot.channel_settings.reader import CACHE_SECONDS
from bot.conversation.ask_job import ASK
from bot.conversation.reply_job import REPLY
from tests.fakes.inference import FakeInference, echo_responder
from tests.scenario.conftest import new_channel, start_scenario
from tests.scenario.test_channel_settings import ADMIN, people, settings_command
from tests.support import slack_requests as sr

SONNET = "claude-4-5-sonnet"
SECOND_KEY = "second-attachment-key"


@pytest.fixture
def sonnet():
    with FakeInference(api_key=SECOND_KEY) as fake:
        fake.responder = echo_responder
        yield fake


@pytest.fixture
def scenario(database_url, fakes, sonnet):
    yield from start_scenario(
        database_url, fakes, INFERENCE_2_URL=sonnet.url, INFERENCE_2_KEY=SECOND_KEY, INFERENCE_2_MODEL_ID=SONNET
    )


def bodies(fake: FakeInference, since: int = 0) -> list[dict]:
    return [r.body for r in fake.requests[since:] if isinstance(r.body, dict)]


def system_prompt(body: dict) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "system")


def tool_names(body: dict) -> list[str]:
    return sorted(t["function"]["name"] for t in body.get("tools") or [])


def answer(scenario, event: dict, replies_so_far: int) -> list[dict]:
    """Post ``event`` and wait for its reply job; the model requests it made."""
    before = len(scenario.inference.requests)
    assert scenario.post_event(event).status_code == 200
    [*_, job] = scenario.wait_settled(REPLY.kind, count=replies_so_far + 1)
    assert job.status == "done", job.last_error
    return bodies(scenario.inference, before)


def test_instructions_and_tools_apply_in_their_channel_only(scenario):
    people(scenario)
    a, b = new_channel(), new_channel()
    assert settings_command(scenario, "instructions Always answer like a pirate.", channel=a).startswith("Done:")
    assert settings_command(scenario, "tools calculate", channel=a).startswith("Done:")
    [in_a] = answer(scenario, sr.app_mention("<@UBOT> hello", channel=a), 0)
    [in_b] = answer(scenario, sr.app_mention("<@UBOT> hello", channel=b), 1)
    assert "Always answer like a pirate." in system_prompt(in_a)
    assert f"Instructions for #{a.lower()}" in system_prompt(in_a)
    assert "pirate" not in system_prompt(in_b)
    assert tool_names(in_a) == ["calculate"]
    assert len(tool_names(in_b)) > 1 and "calculate" in tool_names(in_b)
    # /settings is not a tool: the model is never offered a way to change a setting.
    assert not [name for name in tool_names(in_b) if "setting" in name]


def test_ask_in_a_channel_follows_its_settings(scenario):
    people(scenario)
    a = new_channel()
    settings_command(scenario, "tools none", channel=a)
    settings_command(scenario, "instructions Mention the weather.", channel=a)
    before = len(scenario.inference.requests)
    name = uuid.uuid4().hex
    form = sr.slash_command_form("/ask", "hi", channel_id=a, response_url=scenario.slack.response_url(name))
    assert scenario.post_form(form).status_code == 200
    [job] = scenario.wait_settled(ASK.kind)
    assert job.status == "done"
    [body] = bodies(scenario.inference, before)
    assert "tools" not in body and "Mention the weather." in system_prompt(body)


def test_direct_messages_follow_the_workspace_defaults(scenario):
    people(scenario)
    settings_command(scenario, "workspace instructions Sign every answer with a haiku.")
    settings_command(scenario, "workspace tools current_time")
    dm = "D" + new_channel()[1:]
    [body] = answer(scenario, sr.message("hello", user="U1", channel=dm, channel_type="im"), 0)
    assert "Sign every answer with a haiku." in system_prompt(body)
    assert tool_names(body) == ["current_time"]


def test_answer_mentions_skips_follow_ups_but_answers_mentions(scenario):
    people(scenario)
    a, b = new_channel(), new_channel()
    settings_command(scenario, "answer mentions", channel=a)
    first = sr.app_mention("<@UBOT> start", channel=a)
    answer(scenario, first, 0)
    before = len(scenario.inference.requests)
    follow_up = sr.message("and another thing", user="U1", channel=a, thread_ts=first["ts"])
    assert scenario.post_event(follow_up).status_code == 200
    # The control: the same follow-up in a channel without the setting is answered.
    other = sr.app_mention("<@UBOT> start", channel=b)
    answer(scenario, other, 1)
    answer(scenario, sr.message("and another thing", user="U1", channel=b, thread_ts=other["ts"]), 2)
    assert len(scenario.jobs(REPLY.kind)) == 3  # nothing for the follow-up in A
    since = bodies(scenario.inference, before)
    assert len(since) == 2 and all(f"#{a.lower()}" not in system_prompt(body) for body in since)  # both B's
    [body] = answer(scenario, sr.app_mention("<@UBOT> now?", channel=a, thread_ts=first["ts"]), 3)
    assert "another thing" in str(body["messages"])  # stored, so the mention's answer sees it


def test_a_spent_channel_budget_gives_one_message_and_no_model_call(scenario):
    people(scenario)
    a = new_channel()
    settings_command(scenario, "budget 10", channel=a)
    answer(scenario, sr.app_mention("<@UBOT> first", channel=a), 0)  # spends more than 10 tokens
    before = len(scenario.inference.requests)
    question = sr.app_mention("<@UBOT> second", channel=a)
    assert answer(scenario, question, 1) == []  # no model call
    replies = [m for m in scenario.slack.bot_messages(a) if m.get("thread_ts") == question["ts"]]
    assert len(replies) == 1
    assert "This channel has used its daily allowance of the model (10 tokens)" in scenario.slack.text_of(
        a, replies[0]["ts"]
    )
    assert len(scenario.inference.requests) == before
    settings_command(scenario, "budget none", channel=a)  # an admin lifts it: answered again
    lifted = time.monotonic()
    replies_so_far = 2
    while not answer(scenario, sr.app_mention("<@UBOT> again", channel=a), replies_so_far):
        replies_so_far += 1
        # Each worker keeps a channel's settings for at most CACHE_SECONDS.
        assert time.monotonic() - lifted < CACHE_SECONDS + 2, "the lifted budget did not apply within seconds"


def test_a_channel_model_routes_its_answers_and_is_checked(scenario, sonnet):
    people(scenario)
    a, b = new_channel(), new_channel()
    assert settings_command(scenario, f"model {SONNET}", channel=a).startswith("Done:")
    answer(scenario, sr.app_mention("<@UBOT> hi", channel=a), 0)
    assert [body["model"] for body in bodies(sonnet)] == [SONNET]
    [in_b] = answer(scenario, sr.app_mention("<@UBOT> hi", channel=b), 1)
    assert in_b["model"] == scenario.settings.inference_model_id and len(sonnet.requests) == 1
    refused = settings_command(scenario, "model claude-9-opus", channel=b, user=ADMIN)
    assert f"`{SONNET}`" in refused and "not an attached model" in refused
