import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, Optional

import pytest

from bot.tools.errors import ArgumentError, ToolDefinitionError
from bot.tools.registry import ToolContext
from bot.tools.schema import describe_function, parse_docstring, validate_arguments, value_type_for

REPO = Path(__file__).resolve().parents[2]


# --- type hints → JSON schema ------------------------------------------------------------------

TYPE_CASES = [
    (str, {"type": "string"}, False),
    (int, {"type": "integer"}, False),
    (float, {"type": "number"}, False),
    (bool, {"type": "boolean"}, False),
    (Literal["c", "f"], {"type": "string", "enum": ["c", "f"]}, False),
    (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}, False),
    (list[str], {"type": "array", "items": {"type": "string"}}, False),
    (Sequence[int], {"type": "array", "items": {"type": "integer"}}, False),
    (list, {"type": "array"}, False),
    (list[Literal["a", "b"]], {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}, False),
    (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}, False),
    (dict, {"type": "object"}, False),
    (str | None, {"type": "string"}, True),
    (Optional[int], {"type": "integer"}, True),  # noqa: UP045 - the old spelling must work too
    (Annotated[float, "metadata is ignored"], {"type": "number"}, False),
    (list[int] | None, {"type": "array", "items": {"type": "integer"}}, True),
]


@pytest.mark.parametrize(("annotation", "schema", "nullable"), TYPE_CASES, ids=lambda v: repr(v))
def test_type_hint_maps_to_json_schema(annotation, schema, nullable):
    value_type, accepts_none = value_type_for(annotation)
    assert value_type.json_schema() == schema
    assert accepts_none is nullable


@pytest.mark.parametrize(
    "annotation",
    [int | str, Literal["a", 1], dict[int, str], object, bytes, set[str], tuple[int, int]],
    ids=repr,
)
def test_unsupported_type_hints_are_refused(annotation):
    with pytest.raises(ToolDefinitionError):
        value_type_for(annotation)


# --- whole functions -----------------------------------------------------------------------------


def forecast(
    ctx: ToolContext,
    city: str,
    days: int = 3,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    tags: list[str] | None = None,
    *,
    note: str | None,
    detailed: bool = False,
) -> str:
    """Forecast for a city.

    Continues the summary? No: this second paragraph is not part of the description.

    Args:
        city: City name,
            possibly with a country.
        days (int): How many days.
        unit: Temperature unit.
        tags: Labels to attach.
        detailed: Whether to add hourly data.

    Returns:
        Text.
    """
    return city


def test_function_schema_in_openai_format():
    assert describe_function(forecast).openai_schema() == {
        "type": "function",
        "function": {
            "name": "forecast",
            "description": "Forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, possibly with a country."},
                    "days": {"type": "integer", "description": "How many days.", "default": 3},
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "Temperature unit.",
                        "default": "celsius",
                    },
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels to attach."},
                    "note": {"type": "string"},
                    "detailed": {
                        "type": "boolean",
                        "description": "Whether to add hourly data.",
                        "default": False,
                    },
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }


def no_arguments(ctx: ToolContext) -> str:
    """Ping."""
    return "pong"


def test_function_without_parameters_has_an_empty_object_schema():
    assert describe_function(no_arguments, name="ping").openai_schema()["function"] == {
        "name": "ping",
        "description": "Ping.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }


DOCSTRING_CASES = [
    ("One line.", "One line.", {}),
    ("Two\nlines.\n\nMore.", "Two lines.", {}),
    ("Sum.\nArgs:\n    a: first\n    b: second\n", "Sum.", {"a": "first", "b": "second"}),
    (
        "Sum.\n\nArguments:\n    a (int): first,\n        still first\n\nRaises:\n    b: not a parameter\n",
        "Sum.",
        {"a": "first, still first"},
    ),
    ("Sum.\n\nParameters:\n    a:\n        on the next line\n", "Sum.", {"a": "on the next line"}),
    (None, "", {}),
]


@pytest.mark.parametrize(("doc", "summary", "params"), DOCSTRING_CASES)
def test_parse_docstring(doc, summary, params):
    assert parse_docstring(doc) == (summary, params)


def undocumented(ctx: ToolContext, x: int) -> int:
    return x


def documents_a_ghost(ctx: ToolContext, x: int) -> int:
    """Docs.

    Args:
        y: Not a parameter.
    """
    return x


def star_args(ctx: ToolContext, *values: int) -> int:
    """Docs."""
    return 0


def unannotated(ctx, x) -> int:
    """Docs."""
    return 0


def no_context() -> int:
    """Docs."""
    return 0


def unresolvable(ctx: ToolContext, x: "NoSuchType") -> int:  # noqa: F821 - unresolvable on purpose
    """Docs."""
    return 0


@pytest.mark.parametrize(
    ("func", "name", "fragment"),
    [
        (undocumented, None, "needs a docstring"),
        (documents_a_ghost, None, "does not have: ['y']"),
        (star_args, None, "*args"),
        (unannotated, None, "needs a type annotation"),
        (no_context, None, "context as its first parameter"),
        (unresolvable, None, "cannot be resolved"),
        (no_arguments, "has space", "must be 1-64"),
        (no_arguments, "x" * 65, "must be 1-64"),
    ],
)
def test_malformed_tools_are_refused_with_the_reason(func, name, fragment):
    with pytest.raises(ToolDefinitionError) as info:
        describe_function(func, name)
    assert fragment in str(info.value)


# --- checking model arguments ---------------------------------------------------------------------

SPEC = describe_function(forecast)

VALID_ARGUMENTS = [
    ({"city": "Oslo"}, {"city": "Oslo", "note": None}),
    ({"city": "Oslo", "days": 5.0}, {"city": "Oslo", "days": 5, "note": None}),
    ({"city": "Oslo", "days": None, "tags": ["a"]}, {"city": "Oslo", "tags": ["a"], "note": None}),
    ({"city": "Oslo", "note": "hi", "unit": "fahrenheit"}, {"city": "Oslo", "note": "hi", "unit": "fahrenheit"}),
    ({"city": "Oslo", "detailed": True}, {"city": "Oslo", "detailed": True, "note": None}),
]


@pytest.mark.parametrize(("arguments", "expected"), VALID_ARGUMENTS)
def test_valid_arguments_become_keyword_arguments(arguments, expected):
    assert validate_arguments(SPEC, arguments) == expected


INVALID_ARGUMENTS = [
    ({}, "missing required argument 'city'"),
    ({"city": 3}, "'city' must be text"),
    ({"city": "Oslo", "days": "3"}, "'days' must be a whole number"),
    ({"city": "Oslo", "days": 2.5}, "'days' must be a whole number"),
    ({"city": "Oslo", "days": True}, "'days' must be a whole number"),
    ({"city": "Oslo", "unit": "kelvin"}, '\'unit\' must be one of "celsius", "fahrenheit"'),
    ({"city": "Oslo", "tags": ["a", 2]}, "'tags' item 2 must be text"),
    ({"city": "Oslo", "tags": "a"}, "'tags' must be a list"),
    ({"city": "Oslo", "detailed": "yes"}, "'detailed' must be true or false"),
    ({"city": "Oslo", "color": "red"}, "unknown argument 'color'"),
]


@pytest.mark.parametrize(("arguments", "fragment"), INVALID_ARGUMENTS)
def test_invalid_arguments_are_refused_with_a_sentence(arguments, fragment):
    with pytest.raises(ArgumentError) as info:
        validate_arguments(SPEC, arguments)
    assert fragment in str(info.value)
    assert str(info.value).startswith("Invalid arguments for forecast:")


def test_every_problem_is_listed_at_once():
    with pytest.raises(ArgumentError) as info:
        validate_arguments(SPEC, {"days": "x", "color": 1})
    message = str(info.value)
    assert "unknown argument 'color'" in message
    assert "missing required argument 'city'" in message
    assert "'days' must be a whole number" in message


# --- byte-stable tool list -----------------------------------------------------------------------

DUMP = (
    "import json; from bot.builtin_tools import default_registry; "
    "print(json.dumps(default_registry().openai_tools(), ensure_ascii=False))"
)


def test_openai_tools_are_sorted_and_byte_identical_across_processes():
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", DUMP], cwd=REPO, env=env, capture_output=True, check=True, timeout=60
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    names = [tool["function"]["name"] for tool in json.loads(outputs[0])]
    assert names == sorted(names)
    assert {"calculate", "current_time", "get_weather"} <= set(names)
