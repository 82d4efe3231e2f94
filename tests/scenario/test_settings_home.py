"""The App Home's settings (#25) through signed Slack requests, on SQLite and PostgreSQL: an admin
sees the settings with Edit buttons, a button opens a modal (views.open with the click's trigger),
picking a channel fills it (views.update with the view's hash), a submission is checked like
`/settings` and saves; everyone else reads what applies to them and can change nothing."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from bot.channel_settings.home_job import PUBLISH_HOME
from bot.channel_settings.models import ChannelSetting
from bot.channel_settings.views import ADD_ACTION, CHANNEL_ACTION, EDIT_ACTION, MODAL_CALLBACK, PLACE_BLOCK
from tests.fakes.slack import next_ts
from tests.scenario.conftest import new_channel
from tests.scenario.test_channel_settings import ADMIN, MEMBER, people, settings_command
from tests.support import slack_requests as sr


def open_home(scenario, user: str, count: int) -> dict:
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home", "event_ts": next_ts()}
    assert scenario.post_event(event).status_code == 200
    [*_, job] = scenario.wait_settled(PUBLISH_HOME.kind, count=count)
    assert job.status == "done", job.last_error
    return scenario.slack.home_of(user)


def buttons(view: dict) -> list[tuple[str, str]]:
    found = []
    for block in view["blocks"]:
        for element in [block.get("accessory"), *(block.get("elements") or [])]:
            if isinstance(element, dict) and element.get("type") == "button":
                found.append((element["action_id"], element["value"]))
    return found


def click(scenario, user: str, action: dict, *, view: dict | None = None) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": (view or {}).get("id", "VHOME")},
        "trigger_id": scenario.slack.new_trigger_id(),
        "team": {"id": "T1", "domain": "test-workspace"},
        "view": view or {"id": "VHOME", "type": "home", "hash": "1.1"},
        "actions": [{**action, "action_ts": str(time.time())}],
    }
    assert scenario.post_form(sr.interactivity_form(payload)).status_code == 200


def submit(scenario, user: str, view: dict, values: dict[str, str]):
    """Submit ``view`` with ``values`` ({setting: typed text or chosen value}); the HTTP response."""
    state = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element = block["element"]
        action_id = element["action_id"]
        if block["block_id"] == PLACE_BLOCK:
            continue
        if element["type"] == "static_select":
            chosen = values.get(action_id, element["initial_option"]["value"])
            option = next(o for o in element["options"] if o["value"] == chosen)
            state[block["block_id"]] = {action_id: {"type": "static_select", "selected_option": option}}
        else:
            state[block["block_id"]] = {
                action_id: {"type": "plain_text_input", "value": values.get(action_id, element.get("initial_value"))}
            }
    payload = {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "test-workspace"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": scenario.slack.new_trigger_id(),
        "view": {**view, "state": {"values": state}},
    }
    response = scenario.post_form(sr.interactivity_form(payload))
    assert response.status_code == 200
    return response


def opened_modal(scenario, count: int = 1) -> dict:
    calls = scenario.wait(
        lambda: [c for c in scenario.slack.calls_to("views.open") if c.ok][count - 1 :] or None, "views.open"
    )
    return scenario.slack.view(calls[0].response["view"]["id"])


def stored(scenario, channel: str) -> dict[str, str]:
    with scenario.runtime.sessions() as session:
        rows = session.execute(select(ChannelSetting).where(ChannelSetting.channel_id == channel)).scalars()
        return {row.name: row.value for row in rows}


def test_an_admin_edits_a_channel_from_the_app_home(scenario):
    people(scenario)
    a = new_channel()
    settings_command(scenario, "tools calculate", channel=a)
    home = open_home(scenario, ADMIN, 1)
    text = json.dumps(home["blocks"])
    assert f"<#{a}>" in text and "calculate" in text
    assert (EDIT_ACTION, a) in buttons(home) and (EDIT_ACTION, "workspace") in buttons(home)
    click(scenario, ADMIN, {"type": "button", "action_id": EDIT_ACTION, "block_id": "b", "value": a})
    modal = opened_modal(scenario)
    assert modal["callback_id"] == MODAL_CALLBACK and f"<#{a}>" in json.dumps(modal["blocks"])
    tools_field = next(b for b in modal["blocks"] if b.get("block_id", "").startswith("setting_tools"))
    assert tools_field["element"]["initial_value"] == "calculate"

    refused = submit(scenario, ADMIN, modal, {"tools": "calculate, teleport", "budget": "lots"})
    answer = refused.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {f"setting_tools_{a}", f"setting_budget_{a}"}
    assert "Unknown tool: teleport." in answer["errors"][f"setting_tools_{a}"]
    assert "`calculate`" in answer["errors"][f"setting_tools_{a}"]  # what is allowed
    assert stored(scenario, a) == {"tools": "calculate"}  # nothing saved

    saved = submit(
        scenario,
        ADMIN,
        modal,
        {"tools": "get_weather", "answer": "mentions", "instructions": "Be brief.", "budget": ""},
    )
    assert saved.content in (b"", b"{}") or not saved.json().get("errors")
    assert stored(scenario, a) == {"tools": "get_weather", "answer": "mentions", "instructions": "Be brief."}
    republished = scenario.wait_settled(PUBLISH_HOME.kind, count=2)[-1]
    assert republished.status == "done"
    assert "get_weather" in json.dumps(scenario.slack.home_of(ADMIN)["blocks"])
    assert "mentions" in settings_command(scenario, "", user=MEMBER, channel=a)  # the command agrees


def test_add_a_channel_fills_the_modal_with_views_update(scenario):
    people(scenario)
    b = new_channel()
    settings_command(scenario, "budget 5000", channel=b)
    open_home(scenario, ADMIN, 1)
    click(scenario, ADMIN, {"type": "button", "action_id": ADD_ACTION, "block_id": "a", "value": "add"})
    modal = opened_modal(scenario)
    assert modal["blocks"][0]["block_id"] == PLACE_BLOCK
    pick = {"type": "conversations_select", "action_id": CHANNEL_ACTION, "block_id": PLACE_BLOCK}
    click(scenario, ADMIN, {**pick, "selected_conversation": b}, view=modal)
    update = scenario.slack.wait_for_call("views.update", timeout=10)
    assert update.ok and update.params["view_id"] == modal["id"] and update.params["hash"] == modal["hash"]
    filled = scenario.slack.view(modal["id"])
    budget = next(x for x in filled["blocks"] if x.get("block_id", "").startswith("setting_budget"))
    assert budget["element"]["initial_value"] == "5000"
    submit(scenario, ADMIN, filled, {"model": scenario.settings.inference_model_id})
    assert stored(scenario, b) == {"budget": "5000", "model": scenario.settings.inference_model_id}


def test_everyone_else_reads_what_applies_and_changes_nothing(scenario):
    people(scenario)
    a = new_channel()
    settings_command(scenario, "answer mentions", channel=a)
    settings_command(scenario, "workspace instructions Be kind.", channel=a)
    home = open_home(scenario, MEMBER, 1)
    text = json.dumps(home["blocks"])
    assert "Be kind." in text and f"<#{a}>" in text and "mentions" in text
    assert buttons(home) == [] and "Only workspace admins and owners can change settings" in text
    click(scenario, MEMBER, {"type": "button", "action_id": EDIT_ACTION, "block_id": "b", "value": a})
    notice = opened_modal(scenario)
    assert "submit" not in notice and "Only workspace admins" in json.dumps(notice["blocks"])
    # A submission forged from an admin's modal is refused too.
    open_home(scenario, ADMIN, 2)
    click(scenario, ADMIN, {"type": "button", "action_id": EDIT_ACTION, "block_id": "b", "value": a})
    modal = opened_modal(scenario, 2)
    refused = submit(scenario, MEMBER, modal, {"answer": "threads"}).json()
    assert refused["response_action"] == "errors" and "Only workspace admins" in json.dumps(refused["errors"])
    assert stored(scenario, a) == {"answer": "mentions"}
