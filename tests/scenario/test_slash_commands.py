"""Slash commands end to end: a signed form → the web app → queue → worker → tool or model
→ the command's response_url at the fake Slack. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from bot.slack_app.commands import manifest_commands
from tests.fakes.open_meteo import FakeOpenMeteo
from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

ADMIN = "UADMIN"
STRANGER = "USTRANGER"


@pytest.fixture(scope="module")
def open_meteo():
    with FakeOpenMeteo() as fake:
        yield fake


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory, open_meteo):
    stack = build_stack(
        request,
        tmp_path_factory,
        request.param,
        OPEN_METEO_GEOCODING_URL=open_meteo.url,
        OPEN_METEO_FORECAST_URL=open_meteo.url,
        BOT_TOOL_MODULES="tests.support.admin_tool_plugin",
    )
    stack.slack.add_user("U1", name="alice", real_name="Alice", display_name="Alice", is_admin=False)
    stack.slack.add_user(ADMIN, name="ada", real_name="Ada", display_name="Ada", is_admin=True)
    # Slack Connect: an admin of another organization's workspace.
    stack.slack.add_user(STRANGER, name="sam", team_id="T9", is_admin=True, is_owner=True, is_stranger=True)
    return stack


def _text_of(content) -> str:
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def scripted_model(body: dict) -> dict:
    """Calls tools for some questions, then answers from their results (proving the loop ran)."""
    messages = body["messages"]
    if messages[-1]["role"] == "tool":
        results = [m["content"] for m in messages if m["role"] == "tool"]
        return {"content": "From the tools: " + " | ".join(results)}
    question = _text_of(messages[-1]["content"])
    if "weather in Berlin and Tokyo" in question:
        return {
            "content": "Let me check both.",
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Berlin"}},
                {"name": "get_weather", "arguments": {"city": "Tokyo"}},
            ],
        }
    if "divide one by zero" in question:
        return {"tool_calls": [{"name": "calculate", "arguments": {"expression": "1/0"}}]}
    if "six times seven" in question:
        return {"tool_calls": [{"name": "calculate", "arguments": {"expression": "6*7"}}]}
    return {"content": f"You asked: {question[-60:]}"}


@pytest.fixture
def fresh(stack):
    stack.inference.responder = scripted_model
    yield stack


def send(stack, command: str, text: str, *, user: str = "U1", channel: str | None = None) -> str:
    """POST the signed command; assert Slack's 3-second ack; return the response_url's name."""
    name = uuid.uuid4().hex
    form = sr.slash_command_form(
        command, text, user_id=user, channel_id=channel or new_channel(), response_url=stack.slack.response_url(name)
    )
    started = time.monotonic()
    response = stack.post_form(form)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3
    return name


def answer(stack, name: str, timeout: float = 20.0) -> dict:
    posts = wait_for(lambda: stack.slack.responses_to(name), timeout=timeout)
    assert posts, f"no answer at response_url {name}; logs:\n{stack.logs()[-3000:]}"
    return posts[-1].body


def run(stack, command: str, text: str, **kwargs) -> dict:
    return answer(stack, send(stack, command, text, **kwargs))


def test_calc_answers_privately_through_the_response_url(fresh):
    body = run(fresh, "/calc", "2+2")
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "2+2 = 4"
    assert body["blocks"] == [{"type": "markdown", "text": "2+2 = 4"}]


def test_public_flag_answers_in_the_channel(fresh):
    body = run(fresh, "/calc", "6*7 --public")
    assert body["response_type"] == "in_channel" and body["text"] == "6*7 = 42"


def test_weather_and_time(fresh, open_meteo):
    weather = run(fresh, "/weather", "Berlin")
    assert weather["text"].startswith("Berlin, Land Berlin, Germany: 7.4°C")
    clock = run(fresh, "/time", "Asia/Tokyo")
    assert "in Asia/Tokyo (JST, UTC+09:00)" in clock["text"]


def test_bad_arguments_get_the_usage_line_privately(fresh):
    body = run(fresh, "/calc", "--public")
    assert body["response_type"] == "ephemeral"
    assert body["text"].endswith("Usage: /calc <expression>")


def test_admin_only_tool_refuses_others_in_a_plain_sentence(fresh):
    refused = run(fresh, "/purge", "")
    assert refused["text"] == "Only workspace admins can use /purge." and refused["response_type"] == "ephemeral"
    allowed = run(fresh, "/purge", "", user=ADMIN)
    assert allowed["text"] == f"Caches purged by {ADMIN}."


def test_an_admin_of_another_organization_is_not_our_admin(fresh):
    refused = run(fresh, "/purge", "", user=STRANGER)
    assert refused["text"] == "Only workspace admins can use /purge."


def test_commands_work_in_dms(fresh):
    body = run(fresh, "/calc", "10/4", channel="D" + new_channel()[1:])
    assert body["text"] == "10/4 = 2.5"


def model_requests_about(stack, text: str) -> list[dict]:
    return [body for _, _, body in list(stack.inference.requests) if text in json.dumps(body)]


def test_ask_runs_one_tool_then_answers(fresh):
    body = run(fresh, "/ask", "what is six times seven?")
    assert body["response_type"] == "ephemeral"
    assert "From the tools: 6*7 = 42" in body["text"]
    first, second = model_requests_about(fresh, "six times seven")
    assert first["tool_choice"] == "auto" and {t["function"]["name"] for t in first["tools"]} >= {"calculate"}
    call = second["messages"][-2]["tool_calls"][0]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "6*7 = 42"}


def test_ask_runs_two_tools_in_parallel(fresh):
    body = run(fresh, "/ask", "what's the weather in Berlin and Tokyo?")
    assert body["text"].startswith("Let me check both.\n\nFrom the tools: ")
    assert "Berlin, Land Berlin, Germany: 7.4°C" in body["text"] and "Tokyo, Japan: 16°C" in body["text"]
    requests = model_requests_about(fresh, "weather in Berlin and Tokyo")
    assert len(requests) == 2
    tool_messages = [m for m in requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 2


def test_ask_reports_a_failing_tool_through_the_model(fresh):
    body = run(fresh, "/ask", "please divide one by zero")
    assert "From the tools: That divides by zero." in body["text"]


def test_ask_public_answers_in_the_channel_without_private_tools(fresh):
    body = run(fresh, "/ask", "hello everyone --public")
    assert body["response_type"] == "in_channel" and body["text"].endswith("Alice]: hello everyone")
    [request] = model_requests_about(fresh, "hello everyone")
    assert "--public" not in json.dumps(request["messages"])
    names = {t["function"]["name"] for t in request["tools"]}
    assert "calculate" in names and "search_messages" not in names
    private = run(fresh, "/ask", "hello just me")
    [request] = model_requests_about(fresh, "hello just me")
    assert "search_messages" in {t["function"]["name"] for t in request["tools"]}
    assert private["response_type"] == "ephemeral"


def test_ask_without_a_question_gets_its_usage(fresh):
    assert run(fresh, "/ask", "")["text"].endswith("Usage: /ask <question> [--public]")


def converse_in(stack, channel: str, text: str) -> dict:
    event = sr.app_mention(f"<@UBOT> {text}", channel=channel)
    assert stack.post_event(event).status_code == 200
    wait_for(lambda: stack.slack.bot_messages(channel), timeout=20)
    wait_idle(stack)
    return event


def test_search_usage_and_forget_over_the_stored_history(fresh):
    channel = new_channel()
    word = "zebra" + uuid.uuid4().hex[:6]
    event = converse_in(fresh, channel, f"remember the {word} project")
    found = run(fresh, "/search", word)
    assert found["response_type"] == "ephemeral"
    assert f"<#{channel}>" in found["text"] and f"remember the {word} project" in found["text"]
    # --public is refused for search: its results may come from conversations others cannot see.
    still_private = run(fresh, "/search", f"{word} --public")
    assert still_private["response_type"] == "ephemeral" and "Shown only to you" in still_private["text"]

    usage = run(fresh, "/usage", "")
    assert "You today:" in usage["text"] and "You today: 0 tokens" not in usage["text"]

    link = f"https://test-workspace.slack.com/archives/{channel}/p{event['ts'].replace('.', '')}"
    forgot = run(fresh, "/forget", link)
    assert forgot["text"].startswith("Done: I deleted the"), forgot["text"]
    assert "No stored messages match" in run(fresh, "/search", word)["text"]


def test_every_command_in_the_manifest_answers(fresh):
    samples = {"ask": "hello", "calc": "1+1", "time": "UTC", "weather": "Tokyo", "search": "anything"}
    names = {
        command.command: send(fresh, f"/{command.command}", samples.get(command.command, ""))
        for command in manifest_commands()
    }
    for command, name in names.items():
        body = answer(fresh, name)
        assert body["text"] and "There is no" not in body["text"], (command, body)
        assert "failed unexpectedly" not in body["text"], (command, body)
