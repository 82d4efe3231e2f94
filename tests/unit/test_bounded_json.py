"""Tool arguments nest at most MAX_JSON_DEPTH levels: deeper JSON gets a sentence, never a
RecursionError that fails the job (issue 22)."""

import json

import pytest

from bot.tools import bounded_json
from bot.tools.approval_logic import parse_arguments
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import run_tool

DEEP = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": 2}]}', 3),
        ('{"a": "[[[[[[[["}', 1),  # brackets inside strings do not count
        ('{"a": "\\"[[["}', 1),  # nor after an escaped quote
        ("[]" * 50, 1),
        ("", 0),
    ],
)
def test_nesting_depth(text, depth):
    assert bounded_json.nesting_depth(text) == depth


def test_deep_json_is_refused_with_a_sentence():
    with pytest.raises(bounded_json.TooDeep, match="deeper than 32 levels"):
        bounded_json.loads(DEEP)
    assert bounded_json.loads('{"a": ' + "[" * 31 + "]" * 31 + "}") == json.loads('{"a": ' + "[" * 31 + "]" * 31 + "}")
    assert parse_arguments(DEEP) is None


def test_the_runner_tells_the_model_instead_of_failing_the_job():
    def echo(ctx, a: list) -> str:
        """Echo.

        Args:
            a: Anything.
        """
        return "ok"

    tools = ToolRegistry()
    tools.add(echo)
    result = run_tool(tools, "echo", DEEP, ToolContext())
    assert not result.ok and "nests deeper than 32 levels" in result.content
