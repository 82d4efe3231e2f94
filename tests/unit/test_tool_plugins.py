import logging
from pathlib import Path

import pytest

from bot.tools.plugins import (
    ENTRY_POINT_GROUP,
    load_entry_point_plugins,
    load_module_plugins,
    load_plugins,
    parse_module_list,
)
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import ToolResult, run_slash_command, run_tool

# A real distribution (`*.dist-info` with entry_points.txt) plus its package, made visible by
# putting this directory on sys.path.
PLUGIN_DIR = Path(__file__).resolve().parents[1] / "fixtures_plugin"


@pytest.fixture
def plugin_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))


def existing(ctx: ToolContext, text: str) -> str:
    """A tool that was there first.

    Args:
        text: Text.
    """
    return text


@pytest.mark.parametrize(
    ("raw", "modules"),
    [(None, []), ("", []), ("a.b", ["a.b"]), (" a.b , c ,, d.e.f ", ["a.b", "c", "d.e.f"])],
)
def test_parse_module_list(raw, modules):
    assert parse_module_list(raw) == modules


def test_entry_points_register_tools_and_a_broken_plugin_is_reported(plugin_on_path, caplog):
    caplog.set_level(logging.WARNING, logger="bot.tools.plugins")
    registry = ToolRegistry()
    problems = load_entry_point_plugins(registry)
    assert registry.names() == ["shout"]
    assert problems == [
        "Tool plugin entry point 'broken' (demo_tool_plugin.broken:register) was not loaded: "
        "RuntimeError: the plugin's configuration is missing"
    ]
    assert "broken" in caplog.text
    # The broken plugin had added `whisper` before failing: none of its tools may stay.
    assert registry.get("whisper") is None and registry.for_command("whisper") is None
    assert run_slash_command(registry, "/shout", "text=hi times=2", ToolContext()).result == ToolResult(True, "HI HI")


def test_without_the_plugin_on_the_path_no_entry_point_is_found():
    registry = ToolRegistry()
    assert load_entry_point_plugins(registry, group=ENTRY_POINT_GROUP) == []
    assert len(registry) == 0


def test_module_paths_register_tools(plugin_on_path):
    registry = ToolRegistry()
    assert load_module_plugins(registry, ["demo_tool_plugin"]) == []
    assert run_tool(registry, "shout", '{"text": "hey"}', ToolContext()) == ToolResult(True, "HEY")


@pytest.mark.parametrize(
    ("module", "fragment"),
    [
        ("no_such_plugin_module", "ModuleNotFoundError"),
        ("demo_tool_plugin.broken", "RuntimeError: the plugin's configuration is missing"),
        ("json", "AttributeError"),  # a module without register()
    ],
)
def test_failing_module_plugins_are_reported_not_fatal(plugin_on_path, module, fragment):
    registry = ToolRegistry()
    problems = load_module_plugins(registry, [module, "demo_tool_plugin"])
    assert len(problems) == 1
    assert problems[0].startswith(f"Tool plugin module {module!r} was not loaded: ")
    assert fragment in problems[0]
    assert registry.names() == ["shout"]


def test_a_plugin_clashing_with_an_existing_tool_is_skipped_whole(plugin_on_path):
    registry = ToolRegistry()
    registry.add(existing, name="shout")
    problems = load_module_plugins(registry, ["demo_tool_plugin"])
    assert len(problems) == 1 and "already registered" in problems[0]
    assert registry.get("shout").func is existing


def test_load_plugins_does_both_and_collects_problems(plugin_on_path):
    registry = ToolRegistry()
    problems = load_plugins(registry, ["no_such_plugin_module"])
    assert registry.names() == ["shout"]
    assert len(problems) == 2
    assert "entry point 'broken'" in problems[0] and "module 'no_such_plugin_module'" in problems[1]
