from typing import Literal

import pytest

from bot.tools.errors import ArgumentError
from bot.tools.registry import ToolContext
from bot.tools.schema import describe_function
from bot.tools.slash_args import default_usage, parse_slash_text, split_public_flag


def weather(ctx: ToolContext, city: str, days: int = 1) -> str:
    """Weather.

    Args:
        city: City.
        days: Days.
    """
    return city


def clock(ctx: ToolContext, timezone: str = "UTC") -> str:
    """Clock."""
    return timezone


def search(
    ctx: ToolContext,
    query: str,
    limit: int,
    exact: bool = False,
    channels: list[str] | None = None,
    score: float = 0.5,
    order: Literal["new", "old"] = "new",
) -> str:
    """Search."""
    return query


def usage_stats(ctx: ToolContext, days: int = 7) -> str:
    """Usage."""
    return ""


WEATHER = describe_function(weather)
CLOCK = describe_function(clock)
SEARCH = describe_function(search)
USAGE_STATS = describe_function(usage_stats)
SEARCH_USAGE = "/search query=<text> limit=<n>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Berlin", ("Berlin", False)),
        ("  Berlin  ", ("Berlin", False)),
        ("New York --public", ("New York", True)),
        ("--public New York", ("New York", True)),
        ("--public", ("", True)),
        ("New --public York", ("New --public York", False)),
        ("New York --publicity", ("New York --publicity", False)),
        ("", ("", False)),
    ],
)
def test_public_flag(text, expected):
    assert split_public_flag(text) == expected


PARSE_CASES = [
    # one required string parameter: the whole text
    (WEATHER, "New York", {"city": "New York"}, False),
    (WEATHER, "  São Paulo, Brazil  --public", {"city": "São Paulo, Brazil"}, True),
    (WEATHER, '"Los Angeles"', {"city": "Los Angeles"}, False),
    (WEATHER, "Oslo days=3", {"city": "Oslo days=3"}, False),
    (WEATHER, "city=Oslo colour=red", {"city": "city=Oslo colour=red"}, False),
    # ... unless every word is name=value with its parameter names, for tools with more parameters
    (WEATHER, "city=Oslo days=3 --public", {"city": "Oslo", "days": 3}, True),
    (WEATHER, 'city="Rio de Janeiro"', {"city": "Rio de Janeiro"}, False),
    (CLOCK, "timezone=UTC", {"timezone": "timezone=UTC"}, False),
    # a single optional string parameter: the whole text, or its default when empty
    (CLOCK, "Europe/Paris", {"timezone": "Europe/Paris"}, False),
    (CLOCK, "", {}, False),
    (CLOCK, "--public", {}, True),
    # otherwise name=value pairs (shell quoting) or a JSON object
    (SEARCH, 'query="budget report" limit=5', {"query": "budget report", "limit": 5}, False),
    (
        SEARCH,
        "query=q limit=2 exact=yes channels=C1,C2 score=0.75 order=old --public",
        {"query": "q", "limit": 2, "exact": True, "channels": ["C1", "C2"], "score": 0.75, "order": "old"},
        True,
    ),
    (SEARCH, """query=q limit=1 channels='["C1"]'""", {"query": "q", "limit": 1, "channels": ["C1"]}, False),
    (SEARCH, "query= limit=1", {"query": "", "limit": 1}, False),
    (SEARCH, '{"query": "q", "limit": 3, "exact": true}', {"query": "q", "limit": 3, "exact": True}, False),
    (USAGE_STATS, "", {}, False),
    (USAGE_STATS, "days=30", {"days": 30}, False),
]


@pytest.mark.parametrize(("spec", "text", "arguments", "public"), PARSE_CASES)
def test_slash_text_becomes_arguments(spec, text, arguments, public):
    invocation = parse_slash_text(spec, text, "/x usage")
    assert invocation.arguments == arguments
    assert invocation.public is public


BAD_INPUT = [
    (WEATHER, "", "Please give the city."),
    (WEATHER, "--public", "Please give the city."),
    (WEATHER, "days=3", "missing required argument 'city'"),
    (WEATHER, "city=Oslo days=x", "'days' must be a whole number, got 'x'."),
    (SEARCH, "budget", "Expected name=value, got 'budget'."),
    (SEARCH, "query=q", "missing required argument 'limit'"),
    (SEARCH, "query=q limit=five", "'limit' must be a whole number, got 'five'."),
    (SEARCH, "query=q limit=1 exact=maybe", "'exact' must be true or false"),
    (SEARCH, "query=q limit=1 score=nan", "'score' must be a number"),
    (SEARCH, "query=q limit=1 order=random", '\'order\' must be one of "new", "old"'),
    (SEARCH, "query=q limit=1 colour=red", "Unknown argument 'colour'; this command takes query, limit"),
    (SEARCH, "query=a query=b limit=1", "'query' is given twice."),
    (SEARCH, 'query="unclosed limit=1', "A quote is not closed."),
    (SEARCH, "=q limit=1", "Expected name=value, got '=q'."),
    (SEARCH, '{"query": "q", limit: 1}', "not valid JSON"),
    (SEARCH, '{"query": "q", "limit": "1"}', "'limit' must be a whole number"),
    (SEARCH, "query=q limit=1 channels=[1", "'channels' must be a list, each item text, written as JSON"),
    (USAGE_STATS, "30", "Expected name=value, got '30'."),
]


@pytest.mark.parametrize(("spec", "text", "fragment"), BAD_INPUT)
def test_bad_input_names_the_problem_and_carries_the_usage_line(spec, text, fragment):
    with pytest.raises(ArgumentError) as info:
        parse_slash_text(spec, text, SEARCH_USAGE)
    assert fragment in info.value.message
    assert info.value.usage == SEARCH_USAGE
    assert str(info.value).endswith(f"\nUsage: {SEARCH_USAGE}")


@pytest.mark.parametrize(
    ("command", "spec", "usage"),
    [
        ("weather", WEATHER, "/weather <city>"),
        ("time", CLOCK, "/time [timezone]"),
        (
            "search",
            SEARCH,
            "/search query=<text> limit=<a whole number> [exact=<true or false>] "
            '[channels=<a list, each item text>] [score=<a number>] [order=<one of "new", "old">]',
        ),
        ("usage", USAGE_STATS, "/usage [days=<a whole number>]"),
    ],
)
def test_default_usage_line(command, spec, usage):
    assert default_usage(command, spec) == usage
