"""The two moderation job types in one process: an image in a watched channel becomes a
`moderate` job (verdict flag: a report with buttons), and a moderator's click becomes a
`moderation_action` job. On SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from PIL import Image

from bot.moderation.job import MODERATE, MODERATION_ACTION
from bot.moderation.policy import VERDICT_FUNCTION
from bot.moderation.report import DISMISS_ACTION_ID
from tests.fakes.inference import echo_responder
from tests.scenario.conftest import start_scenario
from tests.support import slack_requests as sr

WATCHED, REPORTS, POSTER, MODERATOR = "CWATCHED", "CREPORTS", "UPOSTER", "UMOD"


@pytest.fixture
def scenario(database_url, fakes):
    yield from start_scenario(database_url, fakes, MODERATION_CHANNELS=WATCHED, MODERATION_REPORT_CHANNEL=REPORTS)


def flag_model(body):
    choice = body.get("tool_choice")
    if not (isinstance(choice, dict) and choice.get("function", {}).get("name") == VERDICT_FUNCTION):
        return echo_responder(body)
    verdict = {"verdict": "flag", "categories": ["scam"], "confidence": 0.7, "reason": "Looks like a fake offer."}
    return {"content": "", "tool_calls": [{"name": VERDICT_FUNCTION, "arguments": json.dumps(verdict)}]}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buffer, "PNG")
    return buffer.getvalue()


def click_payload(report: dict, action_id: str, value: str, response_url: str) -> dict:
    return {
        "type": "block_actions",
        "user": {"id": MODERATOR, "username": "mo", "name": "mo", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": report["ts"], "channel_id": REPORTS, "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.1.{uuid.uuid4().hex}",
        "team": {"id": "T1", "domain": "test-workspace"},
        "channel": {"id": REPORTS, "name": "reports"},
        "message": report,
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": f"moderation_{value}",
                "text": {"type": "plain_text", "text": "x"},
                "value": value,
                "type": "button",
                "action_ts": str(time.time()),
            }
        ],
    }


def test_a_flagged_image_is_reported_and_a_dismiss_click_is_recorded(scenario):
    scenario.inference.responder = flag_model
    scenario.slack.add_user(POSTER, name="paula", real_name="Paula")
    scenario.slack.add_user(MODERATOR, name="mo", real_name="Mo")
    file_id = "F" + uuid.uuid4().hex[:10].upper()
    file_object = scenario.slack.add_file(file_id, png(), name="offer.png", mimetype="image/png", user=POSTER)
    event = sr.message("", user=POSTER, channel=WATCHED, files=[file_object])
    assert scenario.post_event(event).status_code == 200

    [job] = scenario.wait_settled(MODERATE.kind)
    assert job.status == "done" and job.lane == MODERATE.lane
    report = scenario.wait(
        lambda: next((m for m in scenario.slack.messages_in(REPORTS) if m.get("blocks")), None), "a report"
    )
    values = {
        element["action_id"]: element["value"]
        for block in report["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }
    payload = click_payload(report, DISMISS_ACTION_ID, values[DISMISS_ACTION_ID], scenario.slack.response_url("x"))
    assert scenario.post_form(sr.interactivity_form(payload)).status_code == 200

    [action] = scenario.wait_settled(MODERATION_ACTION.kind)
    assert action.status == "done" and action.payload["action"] == "dismiss"
    assert scenario.wait(
        lambda: "Dismissed by" in json.dumps(scenario.slack.message(REPORTS, report["ts"])), "the report updated"
    )
