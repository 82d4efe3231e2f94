"""The settings' pure parts: reading typed values, reading `/settings …`, what applies where."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.channel_settings.command import HELP, SET, SHOW, parse_command, render_settings
from bot.channel_settings.names import MAX_INSTRUCTIONS_CHARS, BadValue, Choices, parse_value, tool_selection
from bot.channel_settings.resolve import APP_DEFAULT, CHANNEL, WORKSPACE_LEVEL, Defaults, Stored, applied, resolve

CHOICES = Choices(
    tool_names=("calculate", "current_time", "get_weather"), tool_commands={"calc": "calculate"}, models=("haiku",)
)
AT = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("instructions", "  Be brief.\nUse bullets. ", "Be brief.\nUse bullets."),
        ("instructions", "clear", None),
        ("instructions", "a\x00b", "ab"),
        ("tools", "calculate", "calculate"),
        ("tools", "get_weather, /calc", "calculate,get_weather"),
        ("tools", "ALL", "all"),
        ("tools", "none", "none"),
        ("tools", "default", None),
        ("answer", "Mentions", "mentions"),
        ("answer", "threads", "threads"),
        ("budget", "200k", "200000"),
        ("budget", "1,500", "1500"),
        ("budget", "2m", "2000000"),
        ("budget", "none", "none"),
        ("budget", "default", None),
        ("model", "haiku", "haiku"),
        ("model", "default", None),
    ],
)
def test_values_are_read_into_their_stored_form(name, raw, value):
    assert parse_value(name, raw, CHOICES) == value


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("tools", "calculate, teleport", "`current_time`"),
        ("tools", ",", "Unknown tool"),
        ("answer", "always", "`mentions`"),
        ("budget", "0", "out of range"),
        ("budget", "-5", "not a number"),
        ("budget", "9" * 40, "not a number"),
        ("budget", "1e9", "not a number"),
        ("model", "sonnet", "`haiku`"),
        ("instructions", "x" * (MAX_INSTRUCTIONS_CHARS + 1), "characters long"),
        ("instructions", "   ", "Give a value"),
    ],
)
def test_bad_values_say_what_is_allowed_with_the_usage_line(name, raw, says):
    with pytest.raises(BadValue) as raised:
        parse_value(name, raw, CHOICES)
    assert says in str(raised.value) and "Usage: /settings" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "kind", "workspace", "name", "raw"),
    [
        ("", SHOW, False, "", ""),
        ("workspace", SHOW, True, "", ""),
        ("help", HELP, False, "", ""),
        ("tools  calculate   clock", SET, False, "tools", "calculate clock"),
        ("workspace answer mentions", SET, True, "answer", "mentions"),
        ("instructions Line one\nline two", SET, False, "instructions", "Line one\nline two"),
        ("MODEL haiku", SET, False, "model", "haiku"),
    ],
)
def test_the_command_text_is_read(text, kind, workspace, name, raw):
    request = parse_command(text)
    assert (request.kind, request.workspace, request.name, request.raw) == (kind, workspace, name, raw)


def test_an_unknown_setting_or_a_missing_value_gets_the_usage():
    with pytest.raises(BadValue, match="There is no setting 'colour'"):
        parse_command("colour blue")
    with pytest.raises(BadValue, match="Usage: /settings budget"):
        parse_command("budget")


def test_a_channel_value_wins_then_the_workspace_then_the_app():
    defaults = Defaults(answer="threads", model="haiku")
    channel = {"tools": Stored("calculate", "U1", AT)}
    workspace = {"tools": Stored("none", "U2", AT), "budget": Stored("1000", "U2", AT)}
    resolved = resolve(channel, workspace, defaults)
    assert (resolved["tools"].value, resolved["tools"].source) == ("calculate", CHANNEL)
    assert (resolved["budget"].value, resolved["budget"].source) == ("1000", WORKSPACE_LEVEL)
    assert (resolved["answer"].value, resolved["answer"].source) == ("threads", APP_DEFAULT)
    rules = applied(resolved, defaults)
    assert rules.tools == frozenset({"calculate"}) and rules.daily_budget == 1000 and rules.model is None
    assert rules.answers_followups and rules.instructions is None
    in_dm = applied(resolve(None, workspace, defaults), defaults)
    assert in_dm.tools == frozenset() and in_dm.daily_budget == 1000


def test_tool_selections():
    assert tool_selection(None) is None and tool_selection("all") is None
    assert tool_selection("none") == frozenset()
    assert tool_selection("a,b") == frozenset({"a", "b"})


def test_the_shown_settings_name_every_setting_and_its_source():
    defaults = Defaults(model="haiku")
    resolved = resolve({"answer": Stored("mentions", "U1", AT)}, {}, defaults)
    text = render_settings(resolved, title="Settings in <#C1>", workspace_view=False)
    assert "*answer*: `mentions` — _this channel, by <@U1> on 2026-12-07 07:00 UTC_" in text
    assert "*model*: `haiku` — _app default_" in text and "Last change: none yet." in text


def test_channel_instructions_come_last_under_their_heading_and_the_prefix_stays_shared():
    from bot.conversation.prompt import build_system_prompt

    plain = build_system_prompt(None, workspace="W", channel="#eng", today="2026-12-07")
    with_rules = build_system_prompt(
        None, workspace="W", channel="#eng", today="2026-12-07", channel_instructions="  Answer in French.\n"
    )
    assert with_rules.startswith(plain)
    assert with_rules.endswith(
        "Instructions for #eng, set by this workspace's admins (follow them unless they "
        "conflict with the rules above):\nAnswer in French."
    )
    assert build_system_prompt(None, workspace="W", channel="#eng", today="x", channel_instructions="  ") == (
        build_system_prompt(None, workspace="W", channel="#eng", today="x")
    )


def test_the_tools_setting_filters_every_registry_entry_by_name():
    from bot.builtin_tools import default_registry
    from bot.tools.selection import offered_tools

    registry = default_registry(None)
    assert offered_tools(registry, None) is registry
    assert offered_tools(registry, frozenset({"calculate", "not_a_tool"})).names() == ["calculate"]
    assert len(offered_tools(registry, frozenset())) == 0


def test_a_channel_budget_verdict():
    from bot.limits.budgets import channel_budget_verdict

    assert channel_budget_verdict(None, spent_today=10**9) is None
    assert channel_budget_verdict(100, spent_today=99) is None
    assert "(100 tokens)" in channel_budget_verdict(100, spent_today=100)


def test_the_manifest_turns_the_home_tab_on_and_lists_settings():
    from bot.slack.manifest import build_manifest
    from bot.slack_app.commands import manifest_commands

    manifest = build_manifest(url="https://bot.example.com", commands=manifest_commands())
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "/settings" in {c["command"] for c in manifest["features"]["slash_commands"]}
