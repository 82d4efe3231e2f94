import json
import logging
import threading

import pytest

from bot.tools.errors import ToolFailed
from bot.tools.registry import Permission, ToolContext, ToolRegistry
from bot.tools.runner import (
    ToolResult,
    result_text,
    run_slash_command,
    run_tool,
    run_tool_calls,
    truncate_result,
)

CTX = ToolContext(team_id="T1", channel_id="C1", thread_ts="1.0", user_id="U1")


def add(ctx: ToolContext, a: int, b: int = 0) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


def describe(ctx: ToolContext) -> dict:
    """Who is asking."""
    return {"user": ctx.user_id, "channel": ctx.channel_id, "ünicode": "é"}


def explode(ctx: ToolContext, secret: str) -> str:
    """Always fails.

    Args:
        secret: A value that must not reach the logs.
    """
    raise ValueError("boom")


def decline(ctx: ToolContext) -> str:
    """Fails in an expected way."""
    raise ToolFailed("Nothing to do here.")


def leave(ctx: ToolContext) -> str:
    """Calls sys.exit, which must not escape."""
    raise SystemExit(3)


def chatter(ctx: ToolContext, size: int) -> str:
    """Returns a long text.

    Args:
        size: Length.
    """
    return "x" * size


def nothing(ctx: ToolContext) -> None:
    """Returns nothing."""


@pytest.fixture
def registry():
    registry = ToolRegistry()
    for func in (add, describe, explode, decline, leave, nothing):
        registry.add(func)
    registry.add(chatter, max_result_chars=200)
    return registry


def test_a_call_returns_its_result_as_text(registry):
    assert run_tool(registry, "add", '{"a": 2, "b": 3}', CTX) == ToolResult(True, "5")


def test_the_context_reaches_the_tool_and_dicts_become_json(registry):
    result = run_tool(registry, "describe", "{}", CTX)
    assert result.ok
    assert json.loads(result.content) == {"user": "U1", "channel": "C1", "ünicode": "é"}
    assert "é" in result.content  # not \u-escaped: fewer tokens


@pytest.mark.parametrize("arguments_json", ["", "  ", "null"])
def test_empty_arguments_mean_none(registry, arguments_json):
    assert run_tool(registry, "describe", arguments_json, CTX).ok


def test_unknown_tool(registry):
    result = run_tool(registry, "delete_everything", "{}", CTX)
    assert not result.ok
    assert "There is no tool named 'delete_everything'" in result.content
    assert "add" in result.content


@pytest.mark.parametrize(
    ("arguments_json", "fragment"),
    [
        ('{"a": 1', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"a"', "must be a JSON object"),
        ('{"a": "one"}', "'a' must be a whole number"),
        ('{"b": 1}', "missing required argument 'a'"),
        ('{"a": 1, "c": 2}', "unknown argument 'c'"),
    ],
)
def test_bad_arguments_become_results(registry, arguments_json, fragment):
    result = run_tool(registry, "add", arguments_json, CTX)
    assert not result.ok
    assert fragment in result.content


def test_an_exception_becomes_a_result_and_is_logged_without_arguments(registry, caplog):
    caplog.set_level(logging.WARNING, logger="bot.tools.runner")
    result = run_tool(registry, "explode", '{"secret": "hunter2-top-secret"}', CTX)
    assert result == ToolResult(False, "explode failed unexpectedly (ValueError).")
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "explode" in record.getMessage() and record.exc_info is not None
    assert "hunter2-top-secret" not in caplog.text


def test_an_expected_failure_keeps_its_sentence(registry):
    assert run_tool(registry, "decline", "{}", CTX) == ToolResult(False, "Nothing to do here.")


def test_system_exit_in_a_tool_does_not_escape(registry):
    result = run_tool(registry, "leave", "{}", CTX)
    assert not result.ok and "failed unexpectedly" in result.content


def test_none_means_done(registry):
    assert run_tool(registry, "nothing", "{}", CTX) == ToolResult(True, "Done.")


def test_permission_refusal_becomes_a_result_and_the_tool_does_not_run():
    ran = threading.Event()

    def purge(ctx: ToolContext) -> str:
        """Delete everything."""
        ran.set()
        return "purged"

    registry = ToolRegistry()
    registry.add(purge, command="purge", permission=Permission.ADMINS)
    assert run_tool(registry, "purge", "{}", CTX) == ToolResult(False, "Only workspace admins can use /purge.")
    assert not ran.is_set()
    admin = ToolContext(user_id="U2", user_is_admin=True)
    assert run_tool(registry, "purge", "{}", admin) == ToolResult(True, "purged")


def test_a_slow_tool_times_out(caplog):
    release = threading.Event()

    def hang(ctx: ToolContext) -> str:
        """Waits until released."""
        release.wait(30)
        return "late"

    registry = ToolRegistry()
    registry.add(hang, timeout=0.2)
    try:
        result = run_tool(registry, "hang", "{}", CTX)
    finally:
        release.set()
    assert result == ToolResult(False, "hang did not finish within 0.2 seconds and was stopped.")
    assert "timed out" in caplog.text


def test_long_results_are_truncated_with_a_note(registry):
    result = run_tool(registry, "chatter", '{"size": 1000}', CTX)
    assert result.ok
    assert len(result.content) <= 200
    assert result.content.startswith("x" * 100)
    assert result.content.endswith("of 1000 characters]")
    assert run_tool(registry, "chatter", '{"size": 200}', CTX) == ToolResult(True, "x" * 200)


@pytest.mark.parametrize(("length", "limit"), [(101, 100), (5000, 4000), (10**6, 150)])
def test_truncate_result_stays_within_the_limit(length, limit):
    text = truncate_result("y" * length, limit)
    kept = text.count("y")
    assert len(text) <= limit
    assert text.endswith(f"[truncated: showing the first {kept} of {length} characters]")


@pytest.mark.parametrize(
    ("value", "text"),
    [("s", "s"), (None, "Done."), (3, "3"), ([1, "é"], '[1, "é"]'), ((1, 2), "[1, 2]"), ({"k": 1}, '{"k": 1}')],
)
def test_result_text(value, text):
    assert result_text(value) == text


def test_calls_run_in_parallel_and_results_keep_their_order():
    # Each call waits until both have arrived: that only succeeds if they run at the same time.
    both_arrived = threading.Barrier(2)

    def meet(ctx: ToolContext, who: str) -> str:
        """Meets the other call.

        Args:
            who: Name.
        """
        both_arrived.wait(timeout=5)
        return f"{who} met"

    registry = ToolRegistry()
    registry.add(meet)
    calls = [("call_1", "meet", '{"who": "a"}'), ("call_2", "meet", '{"who": "b"}')]
    assert run_tool_calls(registry, calls, CTX) == [
        ("call_1", ToolResult(True, "a met")),
        ("call_2", ToolResult(True, "b met")),
    ]


def test_failures_in_a_batch_stay_with_their_call(registry):
    calls = [("1", "add", '{"a": 1}'), ("2", "nope", "{}"), ("3", "explode", '{"secret": "s"}'), ("4", "add", "{")]
    results = run_tool_calls(registry, calls, CTX, max_workers=2)
    assert [call_id for call_id, _ in results] == ["1", "2", "3", "4"]
    assert [result.ok for _, result in results] == [True, False, False, False]
    assert run_tool_calls(registry, [], CTX) == []


# --- slash commands -------------------------------------------------------------------------------


@pytest.fixture
def slash_registry():
    def greet(ctx: ToolContext, name: str) -> str:
        """Greets someone.

        Args:
            name: Who.
        """
        return f"Hello, {name}!"

    def wipe(ctx: ToolContext) -> str:
        """Wipes."""
        return "wiped"

    registry = ToolRegistry()
    registry.add(greet, command="greet")
    registry.add(add, command="add", usage="/add a=<n> [b=<n>]")
    registry.add(wipe, command="wipe", permission=Permission.ADMINS)
    return registry


def test_slash_command_runs_the_tool(slash_registry):
    outcome = run_slash_command(slash_registry, "/greet", "Ada Lovelace --public", CTX)
    assert outcome.result == ToolResult(True, "Hello, Ada Lovelace!")
    assert outcome.public


def test_slash_command_with_pairs(slash_registry):
    outcome = run_slash_command(slash_registry, "/add", "a=2 b=40", CTX)
    assert outcome.result == ToolResult(True, "42") and not outcome.public


def test_slash_command_bad_input_shows_the_usage(slash_registry):
    outcome = run_slash_command(slash_registry, "/add", "a=two", CTX)
    assert not outcome.result.ok
    assert outcome.result.content.endswith("Usage: /add a=<n> [b=<n>]")


def test_slash_command_refused_before_reading_arguments(slash_registry):
    outcome = run_slash_command(slash_registry, "/wipe", "garbage=1", CTX)
    assert outcome.result == ToolResult(False, "Only workspace admins can use /wipe.")


def test_unknown_slash_command(slash_registry):
    outcome = run_slash_command(slash_registry, "/nope", "", CTX)
    assert outcome.result == ToolResult(False, "There is no /nope command here.")
