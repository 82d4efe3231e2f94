"""Routes by job kind (bot.attachments): with a second attachment of another model, moderation
goes where BOT_MODERATION_MODEL says, "think hard" where BOT_THINKING_MODEL says, and plain
answers stay on the INFERENCE attachment's model. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest

from bot.conversation.reply_job import REPLY
from bot.moderation.job import MODERATE
from bot.moderation.policy import VERDICT_FUNCTION
from tests.fakes.inference import FakeInference, echo_responder
from tests.scenario.conftest import new_channel, start_scenario
from tests.scenario.test_moderation_jobs import png
from tests.support import slack_requests as sr
from tests.support.processes import INFERENCE_KEY

SONNET = "claude-4-5-sonnet"


def verdict_or_echo(body):
    """The verdict when the request offers the verdict tool, else an echo."""
    names = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    if VERDICT_FUNCTION not in names:
        return echo_responder(body)
    verdict = {"verdict": "allow", "categories": [], "confidence": 0.9, "reason": "A red square."}
    return {"content": "", "tool_calls": [{"name": VERDICT_FUNCTION, "arguments": json.dumps(verdict)}]}


SECOND_KEY = "second-attachment-key"


@pytest.fixture
def sonnet():
    with FakeInference(api_key=SECOND_KEY) as fake:
        fake.responder = verdict_or_echo
        yield fake


@pytest.fixture
def scenario(database_url, fakes, sonnet):
    yield from start_scenario(
        database_url,
        fakes,
        MODERATION_CHANNELS="CWATCHED",
        MODERATION_REPORT_CHANNEL="CREPORTS",
        INFERENCE_2_URL=sonnet.url,
        INFERENCE_2_KEY=SECOND_KEY,
        INFERENCE_2_MODEL_ID=SONNET,
        BOT_MODERATION_MODEL=SONNET,
        BOT_THINKING_MODEL=SONNET,
    )


def models_asked(fake: FakeInference) -> list[str]:
    return [r.body.get("model") for r in fake.requests if isinstance(r.body, dict)]


def test_moderation_and_thinking_go_to_their_model_and_answers_stay_on_inference(scenario, sonnet):
    haiku = scenario.inference
    haiku_before = len(haiku.requests)
    assert scenario.settings.attached_models == ("claude-4-5-haiku", SONNET)

    file_object = scenario.slack.add_file(
        "F" + uuid.uuid4().hex[:10].upper(), png(), name="offer.png", mimetype="image/png", user="UPOSTER"
    )
    assert (
        scenario.post_event(sr.message("", user="UPOSTER", channel="CWATCHED", files=[file_object])).status_code == 200
    )
    [moderation] = scenario.wait_settled(MODERATE.kind)
    assert moderation.status == "done"
    assert models_asked(sonnet) == [SONNET]  # the verdict call, with the second attachment's key
    assert sonnet.requests[0].headers.get("Authorization") == f"Bearer {SECOND_KEY}"

    channel = new_channel()
    assert scenario.post_event(sr.app_mention("<@UBOT> what is a dyno?", channel=channel)).status_code == 200
    scenario.wait_settled(REPLY.kind)
    asked = models_asked(haiku)[haiku_before:]
    assert asked and set(asked) == {"claude-4-5-haiku"}
    assert haiku.requests[-1].headers.get("Authorization") == f"Bearer {INFERENCE_KEY}"
    assert len(sonnet.requests) == 1

    thinking = new_channel()
    assert (
        scenario.post_event(sr.app_mention("<@UBOT> think hard: what is a dyno?", channel=thinking)).status_code == 200
    )
    scenario.wait_settled(REPLY.kind, count=2)
    assert models_asked(sonnet)[1:] and set(models_asked(sonnet)[1:]) == {SONNET}
    assert any("extended_thinking" in r.body for r in sonnet.requests[1:])
