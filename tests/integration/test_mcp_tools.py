"""MCP tools against a real MCP server (the SDK's MCPServer over streamable HTTP, with a bearer
token, in its own process): listing, calling through the shared runner, the token from the
environment, a server that is down, a slow one, a huge result, and schemas the provider would
refuse. No database: the catalog and the runner alone."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.config import load_settings
from bot.mcp.catalog import McpCatalog
from bot.mcp.state import DOWN, UNAUTHORIZED, UP
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import run_tool
from tests.fakes.mcp_server import McpTestServer

TOKEN = "orders-secret-token-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = McpTestServer(token=TOKEN, record=tmp_path_factory.mktemp("mcp") / "calls.jsonl").start()
    yield server
    server.stop()


def settings_for(url: str, token_var: str = "ORDERS_TOKEN", token: str = TOKEN, **entry):
    servers = {"orders": {"url": url, "headers": {"Authorization": f"Bearer ${{{token_var}}}"}, **entry}}
    return load_settings({"MCP_SERVERS": json.dumps(servers), token_var: token, "MCP_TIMEOUT_SECONDS": "3"})


def catalog_for(settings, **options) -> McpCatalog:
    return McpCatalog(
        settings.mcp_servers,
        timeout=settings.mcp_timeout_seconds,
        refresh_seconds=settings.mcp_refresh_seconds,
        **options,
    )


def registry_with(catalog: McpCatalog) -> ToolRegistry:
    registry = ToolRegistry()
    registry.add_source(catalog)
    return registry


CTX = ToolContext(team_id="T1", user_id="U1")


def test_the_token_comes_from_the_environment_and_the_tools_are_listed(server):
    catalog = catalog_for(settings_for(server.url))
    [state] = catalog.refresh()
    assert state.status == UP, state.detail
    offered = {tool.name: tool for tool in state.tools}
    assert {"orders__lookup_order", "orders__cancel_order", "orders__find_orders"} <= set(offered)
    assert offered["orders__lookup_order"].read_only and offered["orders__lookup_order"].description
    assert offered["orders__cancel_order"].needs_approval  # destructiveHint, no readOnlyHint
    registry = registry_with(catalog)
    schema = {t["function"]["name"]: t["function"] for t in registry.openai_tools()}
    assert schema["orders__lookup_order"]["parameters"]["required"] == ["order_id"]
    assert registry.get("orders__cancel_order").changes_state is True


def test_a_wrong_token_is_reported_as_unauthorized_without_its_value(server, caplog):
    caplog.set_level(logging.INFO)
    catalog = catalog_for(settings_for(server.url, token="wrong-token-456"))
    [state] = catalog.refresh()
    assert state.status == UNAUTHORIZED and "credentials" in state.detail
    assert catalog.tools() == []
    assert "wrong-token-456" not in caplog.text and "wrong-token-456" not in state.detail


def test_the_read_tool_runs_through_the_shared_runner(server):
    catalog = catalog_for(settings_for(server.url))
    catalog.refresh()
    result = run_tool(registry_with(catalog), "orders__lookup_order", '{"order_id": "42"}', CTX)
    assert result.ok and "Order 42 is shipped" in result.content
    assert "https://orders.example.com/orders/42" in result.content


def test_the_allowlist_and_read_only_come_from_the_config(server):
    catalog = catalog_for(settings_for(server.url, tools=["lookup_order", "cancel_order"], read_only=["cancel_order"]))
    [state] = catalog.refresh()
    assert {tool.remote_name: tool.read_only for tool in state.tools} == {"lookup_order": False, "cancel_order": True}


def test_a_tool_error_comes_back_as_a_short_sentence(server):
    catalog = catalog_for(settings_for(server.url))
    catalog.refresh()
    result = run_tool(registry_with(catalog), "orders__lookup_order", '{"order_id": 5}', CTX)
    assert not result.ok and result.content.startswith("orders__lookup_order reported an error")
    assert len(result.content) < 400


def test_a_slow_server_hits_the_timeout(server):
    catalog = catalog_for(settings_for(server.url))
    catalog.refresh()
    started = time.monotonic()
    result = run_tool(registry_with(catalog), "orders__slow_lookup", '{"order_id": "1", "seconds": 30}', CTX)
    elapsed = time.monotonic() - started
    assert not result.ok and "within 3 seconds" in result.content
    assert elapsed < 3 + 2  # the client's timeout, before the runner's backstop


def test_a_huge_result_is_capped(server):
    catalog = catalog_for(settings_for(server.url), max_result_chars=2000)
    catalog.refresh()
    result = run_tool(registry_with(catalog), "orders__export_orders", '{"size": 1000000}', CTX)
    assert result.ok and len(result.content) <= 2000 and "truncated" in result.content


def test_a_result_larger_than_any_use_is_refused_not_read(server):
    catalog = catalog_for(settings_for(server.url))
    catalog.refresh()
    result = run_tool(registry_with(catalog), "orders__export_orders", '{"size": 20000000}', CTX)
    assert not result.ok and "too large" in result.content


def test_schemas_the_provider_would_refuse_are_converted_or_left_out_with_a_log_line(server, caplog):
    caplog.set_level(logging.INFO)
    catalog = catalog_for(settings_for(server.url))
    [state] = catalog.refresh()
    offered = {tool.name: tool for tool in state.tools}
    find = offered["orders__find_orders"].parameters
    assert "anyOf" not in find and find["type"] == "object"
    assert set(find["properties"]) == {"customer", "email"}
    assert "customer" in find["description"] and "email" in find["description"]
    assert "orders__count_orders" not in offered
    assert any("count_orders left out" in sentence for sentence in state.left_out)
    assert "count_orders left out" in caplog.text and "find_orders schema converted" in caplog.text
    result = run_tool(registry_with(catalog), "orders__find_orders", '{"email": "a@example.com"}', CTX)
    assert result.ok and "2 orders" in result.content


def test_a_server_that_is_down_offers_nothing_and_costs_no_wait(tmp_path):
    down = McpTestServer(token=TOKEN, record=tmp_path / "calls.jsonl").start()
    catalog = catalog_for(settings_for(down.url))
    catalog.refresh()
    registry = registry_with(catalog)
    assert "orders__lookup_order" in registry
    down.kill()
    started = time.monotonic()
    result = run_tool(registry, "orders__lookup_order", '{"order_id": "42"}', CTX)
    assert not result.ok and "not reachable" in result.content
    assert time.monotonic() - started < 2
    assert "orders__lookup_order" not in registry  # left out until a refresh finds it back
    [state] = catalog.refresh()
    assert state.status == DOWN and catalog.tools() == [] and catalog.down_count() == 1


def test_the_older_sse_transport_works_too(tmp_path):
    """Heroku's toolkit URL ($INFERENCE_URL/mcp/sse) speaks HTTP+SSE: chosen from the URL."""
    sse = McpTestServer(token=TOKEN, record=tmp_path / "calls.jsonl", transport="sse").start()
    try:
        settings = settings_for(sse.url)
        assert settings.mcp_servers[0].transport == "sse"
        catalog = catalog_for(settings)
        [state] = catalog.refresh()
        assert state.status == UP, state.detail
        result = run_tool(registry_with(catalog), "orders__lookup_order", '{"order_id": "7"}', CTX)
        assert result.ok and "Order 7 is shipped" in result.content
        [state] = catalog_for(settings_for(sse.url, token="wrong")).refresh()
        assert state.status == UNAUTHORIZED
    finally:
        sse.stop()
