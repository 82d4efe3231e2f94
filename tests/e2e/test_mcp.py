"""Tools from MCP servers through the bot's real flows, on PostgreSQL: signed Slack requests →
web (gunicorn) → worker → a real MCP server (the `mcp` SDK's MCPServer over streamable HTTP, in
its own process, requiring a bearer token that the bot reads from the environment) and the
fake Slack and model.

Two servers: `orders` stays up; `desk` is killed in the last tests."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from bot.tools.approval_logic import APPROVE_ACTION
from tests.e2e.conftest import build_stack, new_channel, wait_idle
from tests.e2e.test_operations import run_cli
from tests.fakes.mcp_server import McpTestServer
from tests.scenario.test_approvals import answer_of, card_in, click, job_status, parked, sql
from tests.scenario.test_conversations import bot_messages, finished_replies
from tests.support import slack_requests as sr
from tests.support.processes import wait_for

ASKER, OTHER, ADMIN = "U1", "U2", "UADMIN"
ORDERS_TOKEN, DESK_TOKEN = "orders-token-e2e-5521", "desk-token-e2e-7730"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mcp-e2e")
    orders = McpTestServer(token=ORDERS_TOKEN, record=folder / "orders.jsonl").start()
    desk = McpTestServer(token=DESK_TOKEN, record=folder / "desk.jsonl").start()
    yield orders, desk
    orders.stop()
    desk.stop()


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory, servers):
    orders, desk = servers
    config = {
        "orders": {"url": orders.url, "headers": {"Authorization": "Bearer ${ORDERS_MCP_TOKEN}"}},
        "desk": {"url": desk.url, "headers": {"Authorization": "Bearer ${DESK_MCP_TOKEN}"}},
    }
    stack = build_stack(
        request,
        tmp_path_factory,
        "postgres",
        MCP_SERVERS=json.dumps(config),
        ORDERS_MCP_TOKEN=ORDERS_TOKEN,
        DESK_MCP_TOKEN=DESK_TOKEN,
        MCP_REFRESH_SECONDS="2",
        MCP_TIMEOUT_SECONDS="5",
        BOT_APPROVAL_TIMEOUT_SECONDS="120",
    )
    stack.slack.add_user(ASKER, name="alice", real_name="Alice", display_name="Alice")
    stack.slack.add_user(OTHER, name="bob", real_name="Bob", display_name="Bob")
    stack.slack.add_user(ADMIN, name="ada", real_name="Ada", display_name="Ada", is_admin=True)
    stack.inference.responder = order_desk_model
    assert wait_for(lambda: statuses(stack) == {"orders": "up", "desk": "up"}, timeout=30), stack.logs()[-3000:]
    return stack


def statuses(stack) -> dict[str, str]:
    return dict(sql(stack, "SELECT name, status FROM mcp_server_status"))


def _text(content) -> str:
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


CALLS = {
    "look up order 42": ("orders__lookup_order", {"order_id": "42"}),
    "cancel order 7": ("orders__cancel_order", {"order_id": "7", "reason": "asked"}),
    "ask the desk about order 9": ("desk__lookup_order", {"order_id": "9"}),
}


def order_desk_model(body: dict) -> dict:
    """Calls the MCP tool the question names (when it is offered), then answers with its result."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return {"content": "Result: " + _text(last["content"])}
    said = _text(last["content"])
    offered = {tool["function"]["name"] for tool in body.get("tools") or []}
    for question, (name, arguments) in CALLS.items():
        if question in said:
            if name not in offered:
                return {"content": f"I cannot use {name} right now."}
            return {"content": "Let me check.", "tool_calls": [{"name": name, "arguments": arguments}]}
    return {"content": "Nothing to do."}


def offered_tools(stack, text: str) -> set[str]:
    bodies = [body for _, _, body in list(stack.inference.requests) if text in json.dumps(body)]
    return {tool["function"]["name"] for tool in bodies[-1].get("tools") or []}


def test_a_mention_that_needs_the_read_tool_is_answered_with_its_result_shown_as_a_step(stack, servers):
    channel = new_channel()
    stack.post_event(sr.app_mention("<@UBOT> please look up order 42", channel=channel, user=ASKER))
    [reply] = finished_replies(stack, channel, timeout=30)
    answer = stack.slack.text_of(channel, reply["ts"])
    assert "Result: Order 42 is shipped" in answer
    assert len(bot_messages(stack, channel)) == 1
    [updates] = stack.slack.tasks_of(channel, reply["ts"]).values()
    assert [u["status"] for u in updates] == ["in_progress", "complete"]
    assert {u["title"] for u in updates} == {"Asking orders: lookup order"}
    assert "Order 42 is shipped" in updates[-1]["output"]
    assert {s["url"] for s in updates[-1]["sources"]} == {"https://orders.example.com/orders/42"}
    # Offered like any tool, with the schema Claude would refuse converted and the unconvertible one left out.
    offered = offered_tools(stack, "look up order 42")
    assert {"orders__lookup_order", "orders__cancel_order", "orders__find_orders", "calculate"} <= offered
    assert "orders__count_orders" not in offered
    assert ORDERS_TOKEN not in stack.logs() and DESK_TOKEN not in stack.logs()


def test_the_write_tool_runs_only_after_the_askers_click_exactly_once(stack, servers):
    orders, _ = servers
    before = len(orders.calls())
    channel = new_channel()
    event = sr.app_mention("<@UBOT> cancel order 7 please", channel=channel, user=ASKER)
    stack.post_event(event)
    card = card_in(stack, channel, timeout=30)
    what = card["blocks"][0]["text"]["text"]
    assert '*orders__cancel_order* (order_id="7"' in what and "Cancel an order" in what
    parked(stack, channel)
    assert len(orders.calls()) == before  # nothing ran yet

    click(stack, card, channel, APPROVE_ACTION, user=OTHER)  # another person's click does nothing
    assert wait_for(
        lambda: any(
            c.params.get("user") == OTHER and ASKER in str(c.params.get("text"))
            for c in stack.slack.calls_to("chat.postEphemeral")
        ),
        timeout=15,
    )
    assert job_status(stack, channel) == "awaiting" and len(orders.calls()) == before

    click(stack, card, channel, APPROVE_ACTION, user=ASKER)
    answer = answer_of(stack, channel, event["ts"], card["ts"], "Result:", timeout=30)
    assert "Order 7 is cancelled" in answer
    wait_idle(stack)
    assert job_status(stack, channel) == "done"
    assert orders.calls()[before:] == [{"tool": "cancel_order", "order_id": "7", "reason": "asked"}]
    click(stack, card, channel, APPROVE_ACTION, user=ASKER)  # a second click runs nothing more
    wait_idle(stack)
    assert len(orders.calls()) == before + 1


def settings_command(stack, text: str, channel: str) -> str:
    name = uuid.uuid4().hex
    form = sr.slash_command_form(
        "/settings", text, user_id=ADMIN, channel_id=channel, response_url=stack.slack.response_url(name)
    )
    assert stack.post_form(form).status_code == 200
    posts = wait_for(lambda: stack.slack.responses_to(name), timeout=30)
    assert posts, f"no answer to /settings {text}; logs:\n{stack.logs()[-3000:]}"
    return posts[0].body["text"]


def test_a_channels_tools_setting_names_mcp_tools_like_any_other(stack):
    channel = new_channel()
    answer = settings_command(stack, "tools orders__lookup_order calculate", channel)
    assert answer.startswith("Done:"), answer
    stack.post_event(sr.app_mention("<@UBOT> look up order 42 here", channel=channel, user=ASKER))
    [reply] = finished_replies(stack, channel, timeout=30)
    assert "Order 42 is shipped" in stack.slack.text_of(channel, reply["ts"])
    assert offered_tools(stack, "look up order 42 here") == {"orders__lookup_order", "calculate"}
    stack.post_event(sr.app_mention("<@UBOT> cancel order 7 here", channel=channel, user=ASKER))
    [_, reply] = finished_replies(stack, channel, count=2, timeout=30)
    assert "cannot use orders__cancel_order" in stack.slack.text_of(channel, reply["ts"])


def test_bot_check_shows_the_servers_and_their_tools(stack):
    result = run_cli(stack.env, "check", timeout=120)
    lines = {line.split(":", 1)[0]: line for line in result.stdout.splitlines()}
    orders = lines["OK   mcp orders"]
    assert "reachable, authenticated" in orders
    assert "orders__lookup_order" in orders and "orders__find_orders" in orders
    assert orders.split("need approval: ", 1)[1].startswith("orders__cancel_order")
    assert "orders__lookup_order" not in orders.split("need approval: ", 1)[1]
    assert "count_orders left out" in result.stdout
    assert "OK   mcp desk" in lines
    assert ORDERS_TOKEN not in result.stdout + result.stderr


def health(stack) -> dict:
    return httpx.get(f"{stack.url}/healthz", timeout=10).json()


def test_with_a_server_killed_mentions_are_still_answered_in_one_message(stack, servers):
    _, desk = servers
    assert health(stack)["mcp"] == {"servers": 2, "down": 0, "unchecked": 0}
    desk.kill()
    # At once, before any refresh noticed: the model may still call the desk's tool; the call
    # fails fast and the answer says so, in its one message.
    channel = new_channel()
    started = time.monotonic()
    stack.post_event(sr.app_mention("<@UBOT> ask the desk about order 9", channel=channel, user=ASKER))
    [reply] = finished_replies(stack, channel, timeout=30)
    assert time.monotonic() - started < 20
    assert len(bot_messages(stack, channel)) == 1
    assert stack.slack.text_of(channel, reply["ts"]).strip()

    # Once the workers know, the desk's tools are not offered at all, and /healthz counts it.
    assert wait_for(lambda: health(stack)["mcp"]["down"] == 1, timeout=30), stack.logs()[-3000:]
    assert statuses(stack)["desk"] == "down"
    channel = new_channel()
    started = time.monotonic()
    stack.post_event(sr.app_mention("<@UBOT> ask the desk about order 9 again", channel=channel, user=ASKER))
    [reply] = finished_replies(stack, channel, timeout=30)
    assert time.monotonic() - started < 20
    assert len(bot_messages(stack, channel)) == 1
    assert "cannot use desk__lookup_order" in stack.slack.text_of(channel, reply["ts"])
    offered = offered_tools(stack, "ask the desk about order 9 again")
    assert "desk__lookup_order" not in offered and "orders__lookup_order" in offered

    # The other server's tools still work.
    channel = new_channel()
    stack.post_event(sr.app_mention("<@UBOT> look up order 42", channel=channel, user=ASKER))
    [reply] = finished_replies(stack, channel, timeout=30)
    assert "Order 42 is shipped" in stack.slack.text_of(channel, reply["ts"])
