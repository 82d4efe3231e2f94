"""The pure parts of MCP tools: MCP_SERVERS, function names, provider schemas, result text."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bot.config import ConfigError, load_settings, parse_mcp_servers
from bot.mcp.catalog import is_read_only, offered_tools
from bot.mcp.names import function_name
from bot.mcp.results import error_sentence, result_text
from bot.mcp.schema import SchemaRefused, provider_schema
from bot.tools.schema import TOOL_NAME_PATTERN

URL = "https://orders.example.com/mcp"


def test_servers_are_read_with_header_variables_from_the_environment():
    raw = json.dumps(
        {
            "orders": {
                "url": URL,
                "headers": {"Authorization": "Bearer ${ORDERS_TOKEN}", "X-Team": "${TEAM}-x"},
                "tools": ["lookup_order"],
                "read_only": ["lookup_order"],
            },
            "heroku": {"url": "https://example.herokuapp.com/mcp", "read_only": True},
        }
    )
    servers, problems = parse_mcp_servers(raw, {"ORDERS_TOKEN": "s3cret", "TEAM": "ops"})
    assert problems == []
    orders, heroku = servers
    assert orders.headers == {"Authorization": "Bearer s3cret", "X-Team": "ops-x"}
    assert orders.tools == ("lookup_order",) and orders.read_only == ("lookup_order",)
    assert heroku.tools is None and heroku.read_only is True and heroku.headers == {}
    assert "s3cret" not in repr(servers)  # header values never reach a log line through repr


@pytest.mark.parametrize(
    ("raw", "env", "expected"),
    [
        ("{not json", {}, "MCP_SERVERS is not valid JSON"),
        ("[]", {}, "MCP_SERVERS must be a JSON object"),
        ('{"a b": {"url": "https://x/mcp"}}', {}, "a server name is 1-24 letters"),
        ('{"a": {"url": "ftp://x/mcp"}}', {}, "needs a url of http(s)"),
        ('{"a": {"url": "https://x/mcp", "header": {}}}', {}, "unknown keys ['header']"),
        ('{"a": {"url": "https://x/mcp", "tools": "all"}}', {}, '"tools" must be a list'),
        ('{"a": {"url": "https://x/mcp", "read_only": "yes"}}', {}, '"read_only" must be a list'),
        ('{"a": {"url": "https://x/mcp", "headers": {"A": 1}}}', {}, '"headers" must be an object'),
        (
            '{"a": {"url": "https://x/mcp", "headers": {"Authorization": "Bearer ${A_TOKEN}"}}}',
            {"A_TOKEN": ""},
            "header Authorization needs the environment variable A_TOKEN, which is not set",
        ),
    ],
)
def test_bad_servers_are_one_sentence_each(raw, env, expected):
    _, problems = parse_mcp_servers(raw, env)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].endswith(".")


def test_a_missing_variable_is_a_start_up_error():
    with pytest.raises(ConfigError) as error:
        load_settings({"MCP_SERVERS": '{"a": {"url": "https://x/mcp", "headers": {"Authorization": "${NOPE}"}}}'})
    assert error.value.problems == [
        "MCP_SERVERS server 'a' header Authorization needs the environment variable NOPE, which is not set: "
        "set it (heroku config:set NOPE=…) or remove it from MCP_SERVERS."
    ]


@pytest.mark.parametrize(
    ("server", "tool", "taken", "expected"),
    [
        ("orders", "lookup_order", (), "orders__lookup_order"),
        ("orders", "orders.lookup/v2", (), "orders__orders_lookup_v2"),
        ("orders", "lookup_order", ("orders__lookup_order",), None),
        ("s", "t" * 80, (), None),
    ],
)
def test_function_names_keep_to_openai_rule_and_stay_unique(server, tool, taken, expected):
    name = function_name(server, tool, taken)
    assert TOOL_NAME_PATTERN.match(name) and name not in taken
    if expected:
        assert name == expected
    assert function_name(server, tool, taken) == name  # stable across refreshes


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, {"type": "object", "properties": {}}),
        ({"properties": {"a": {"type": "string"}}}, {"type": "object", "properties": {"a": {"type": "string"}}}),
        ({"type": ["object", "null"]}, {"type": "object", "properties": {}}),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
            },
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                "description": "Give at least one of: a; or b.",
            },
        ),
        (
            {"type": "object", "allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}]},
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        ),
    ],
)
def test_schemas_are_converted_to_what_the_provider_takes(schema, expected):
    converted, changes = provider_schema(schema)
    assert converted == expected
    assert not any(k in converted for k in ("anyOf", "oneOf", "allOf")) and converted["type"] == "object"
    assert changes or schema == expected


@pytest.mark.parametrize(
    "schema",
    [
        "object",
        {"type": "string"},
        {"type": "object", "oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}]},
        {"type": "object", "anyOf": [{"type": "string"}]},
        {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "oneOf": [{"properties": {"a": {"type": "integer"}}}],
        },
    ],
)
def test_schemas_that_cannot_be_made_acceptable_are_refused(schema):
    original = json.dumps(schema)
    with pytest.raises(SchemaRefused):
        provider_schema(schema)
    assert json.dumps(schema) == original  # never modified


def _tool(name, schema=None, read_only=None, description="Does a thing."):
    annotations = SimpleNamespace(read_only_hint=read_only) if read_only is not None else None
    return SimpleNamespace(
        name=name,
        input_schema=schema or {"type": "object"},
        annotations=annotations,
        description=description,
        title=None,
    )


def test_read_only_comes_from_the_config_else_the_servers_hint():
    from bot.config import McpServerConfig

    hinted = _tool("x", read_only=True).annotations
    assert is_read_only(McpServerConfig("s", URL), "x", hinted) is True
    assert is_read_only(McpServerConfig("s", URL), "x", None) is False
    assert is_read_only(McpServerConfig("s", URL, read_only=("y",)), "x", hinted) is False
    assert is_read_only(McpServerConfig("s", URL, read_only=True), "x", None) is True


def test_offered_tools_follow_the_allowlist_and_say_what_was_left_out():
    from bot.config import McpServerConfig

    server = McpServerConfig("s", URL, tools=("a", "b", "gone"))
    listed = [_tool("a", read_only=True), _tool("b", {"type": "string"}), _tool("c")]
    offered, left_out = offered_tools(server, listed)
    assert [tool.name for tool in offered] == ["s__a"]
    assert any("s/b left out" in sentence for sentence in left_out)
    assert any("does not offer gone" in sentence for sentence in left_out)


def _text(text):
    return SimpleNamespace(type="text", text=text)


def test_results_become_text_with_links_as_slack_links():
    result = SimpleNamespace(
        content=[
            _text("Two orders."),
            SimpleNamespace(type="resource_link", uri="https://o.example.com/1", name="order-1", title="Order 1"),
            SimpleNamespace(type="image", mime_type="image/png"),
        ],
        structured_content=None,
    )
    assert result_text(result) == "Two orders.\n<https://o.example.com/1|Order 1>\n[image (image/png), not shown]"
    assert result_text(SimpleNamespace(content=[], structured_content={"n": 1})) == '{"n": 1}'
    assert result_text(SimpleNamespace(content=[], structured_content=None)) == "Done."


def test_an_error_result_is_a_short_sentence():
    long = SimpleNamespace(content=[_text("boom " * 200)], structured_content=None)
    sentence = error_sentence("s__a", long)
    assert sentence.startswith("s__a reported an error: boom") and len(sentence) < 340
    assert error_sentence("s__a", SimpleNamespace(content=[], structured_content=None)) == "s__a failed."


class _NoNetwork:
    def __init__(self, server, timeout):
        self.server = server

    def list_tools(self):
        return [_tool("a", read_only=True)]


def test_a_recorded_view_that_differs_from_ours_is_fetched_again_at_most_every_few_seconds():
    from bot.config import McpServerConfig
    from bot.mcp.catalog import FOLLOW_SECONDS, McpCatalog

    views = {}
    catalog = McpCatalog(
        [McpServerConfig("s", URL)],
        timeout=1,
        refresh_seconds=300,
        recorded=lambda: views,
        watch_seconds=0,
        client_factory=_NoNetwork,
    )
    catalog.refresh()
    assert catalog._differing_from_record(1000.0) == []  # nothing recorded by others
    views["s"] = ("up", frozenset({"s__a"}))
    assert catalog._differing_from_record(1001.0) == []  # the same view as ours
    views["s"] = ("up", frozenset({"s__a", "s__b"}))  # `bot check` found a new tool
    assert catalog._differing_from_record(1002.0) == ["s"]
    assert catalog._differing_from_record(1003.0) == []  # not again at once
    assert catalog._differing_from_record(1002.0 + FOLLOW_SECONDS) == ["s"]
