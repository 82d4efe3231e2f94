"""Message search, pure half: words, LIKE patterns, who may see what, snippets, the answer."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.tools.search_logic import (
    SearchHit,
    format_hits,
    like_pattern,
    permalink,
    prefix_tsquery,
    quiet_broadcasts,
    search_terms,
    searchable_channels,
    snippet,
)


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("Deploy Friday", ["deploy", "friday"]),
        ("deploy, deploy!", ["deploy"]),
        ("snake_case & 100%", ["snake", "case", "100"]),
        ("%_\\ '*:", []),
        ("Crème brûlée", ["crème", "brûlée"]),
        ("a b c d e f g h i j", ["a", "b", "c", "d", "e", "f", "g", "h"]),
    ],
)
def test_search_terms(query, terms):
    assert search_terms(query) == terms


@pytest.mark.parametrize(
    ("term", "pattern"),
    [("plain", "%plain%"), ("100%", "%100\\%%"), ("a_b", "%a\\_b%"), ("back\\slash", "%back\\\\slash%")],
)
def test_like_patterns_take_wildcards_literally(term, pattern):
    assert like_pattern(term) == pattern


def test_prefix_tsquery_ands_word_prefixes():
    assert prefix_tsquery(["deploy", "friday"]) == "deploy:* & friday:*"


@pytest.mark.parametrize(
    ("channel", "thread_ts", "mine", "expected"),
    [
        # A slash command answers only the asker: every channel of theirs, and the one they are in.
        ("C9", None, {"C1", "D1"}, {"C1", "D1", "C9"}),
        # The model in the asker's DM with the bot: the same.
        ("D1", "1.0", {"C1", "D1"}, {"C1", "D1"}),
        # The model in a channel thread answers the whole channel: only that channel.
        ("C1", "1.0", {"C1", "C2", "D1"}, {"C1"}),
        ("G7", "1.0", {"C1"}, {"G7"}),
        (None, None, {"C1"}, {"C1"}),
    ],
)
def test_searchable_channels(channel, thread_ts, mine, expected):
    assert searchable_channels(channel, thread_ts, mine) == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "quiet"),
    [
        ("<!channel> deploy now", "`@channel` deploy now"),
        ("<!here|here> ok", "`@here` ok"),
        ("ping <!subteam^S1|@oncall>", "ping `@oncall`"),
        ("<@U1> and <#C1>", "<@U1> and <#C1>"),
    ],
)
def test_broadcast_mentions_are_quoted_not_repeated(text, quiet):
    assert quiet_broadcasts(text) == quiet


def test_short_text_is_its_own_snippet_on_one_line():
    assert snippet("we deploy\n  on   friday", ["deploy"]) == "we deploy on friday"


def test_long_text_snippet_shows_the_term_with_ellipses():
    text = "lorem ipsum " * 40 + "the NEEDLE is here " + "dolor sit " * 40
    cut = snippet(text, ["needle"], width=80)
    assert "NEEDLE" in cut
    assert cut.startswith("…") and cut.endswith("…")
    assert len(cut) <= 82


@given(
    words=st.lists(st.text(alphabet="abcdefghij ", min_size=1, max_size=12), min_size=1, max_size=60),
    term=st.text(alphabet="abcdefghij", min_size=1, max_size=10),
    width=st.integers(min_value=30, max_value=200),
)
def test_snippets_are_bounded_pieces_of_the_text_holding_the_term(words, term, width):
    text = " ".join(words)
    flat = " ".join(text.split())
    cut = snippet(text, [term], width=width)
    body = cut.removeprefix("…").removesuffix("…")
    assert len(body) <= width
    assert body in flat
    if term in flat:
        assert term in body


def test_answer_lists_channel_date_author_and_snippet():
    when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    hits = [
        SearchHit("C1", "1.0", "1.0", "U1", "user", "deploy on friday <!channel>", when),
        SearchHit("D2", "2.0", "2.0", None, "assistant", "I said deploy", when),
    ]
    text = format_hits("deploy", hits, ["deploy"])
    lines = text.splitlines()
    assert lines[0] == '2 messages matching "deploy":'
    assert lines[1] == "• <#C1> 2026-11-25, <@U1>: deploy on friday `@channel`"
    assert lines[2] == "• <#D2> 2026-11-25, the assistant: I said deploy"
    assert format_hits("  nothing\nhere ", [], ["nothing"]) == (
        'No stored messages match "nothing here" in the conversations you can see.'
    )


@pytest.mark.parametrize(
    ("url", "channel", "ts", "thread_ts", "link"),
    [
        (
            "https://acme.slack.com/",
            "C1",
            "1700000000.000100",
            None,
            "https://acme.slack.com/archives/C1/p1700000000000100",
        ),
        (
            "https://acme.slack.com/",
            "C1",
            "1700000000.000100",
            "1700000000.000100",
            "https://acme.slack.com/archives/C1/p1700000000000100",
        ),
        (
            "https://acme.slack.com",
            "C1",
            "1700000001.000200",
            "1700000000.000100",
            "https://acme.slack.com/archives/C1/p1700000001000200?thread_ts=1700000000.000100&cid=C1",
        ),
        ("https://acme.enterprise.slack.com/", "D2", "1.5", None, "https://acme.enterprise.slack.com/archives/D2/p15"),
        ("http://acme.slack.com/", "C1", "1.5", None, None),
        ("https://evil.example/", "C1", "1.5", None, None),
        ("", "C1", "1.5", None, None),
        ("https://acme.slack.com/", "C1", "not-a-ts", None, None),
    ],
)
def test_permalinks(url, channel, ts, thread_ts, link):
    assert permalink(url, channel, ts, thread_ts) == link


def test_hits_carry_their_links_when_given():
    hit = SearchHit("C1", "1.0", "1.5", "U1", "user", "we deploy on friday", datetime(2026, 11, 30, tzinfo=UTC))
    text = format_hits(
        "deploy", [hit], ["deploy"], lambda h: permalink("https://acme.slack.com/", h.channel_id, h.ts, h.thread_ts)
    )
    assert "<#C1> 2026-11-30 (<https://acme.slack.com/archives/C1/p15?thread_ts=1.0&cid=C1|link>), <@U1>:" in text
