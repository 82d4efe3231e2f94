"""/forget's links and answers, /usage's window and answer (pure)."""

from datetime import date

import pytest

from bot.tools.forget_logic import MessageLink, forgotten_message, parse_message_link
from bot.tools.usage_logic import UsageReport, UsageTotals, describe_usage, window_start


@pytest.mark.parametrize(
    ("text", "link"),
    [
        (
            "https://acme.slack.com/archives/C0123ABC/p1700000000000100",
            MessageLink("C0123ABC", "1700000000.000100", None),
        ),
        (
            "<https://acme.slack.com/archives/C0123ABC/p1700000000000200?thread_ts=1700000000.000100&cid=C0123ABC>",
            MessageLink("C0123ABC", "1700000000.000200", "1700000000.000100"),
        ),
        (
            "<https://acme.enterprise.slack.com/archives/D42/p1700000000000100|a message>",
            MessageLink("D42", "1700000000.000100", None),
        ),
        ("https://evil.example.com/archives/C1/p1700000000000100", None),
        ("https://acme.slack.com/archives/C1/1700000000000100", None),
        ("https://acme.slack.com/archives/C1/p1700000000000100?thread_ts=soon", None),
        ("C1 1700000000.000100", None),
        ("", None),
    ],
)
def test_message_links(text, link):
    assert parse_message_link(text) == link


def test_forgotten_message_counts():
    assert forgotten_message(0) == "I had nothing stored from that thread."
    assert forgotten_message(1).startswith("Done: I deleted the 1 message I had stored")
    assert "the 12 messages" in forgotten_message(12)


def test_window_is_thirty_days_including_today():
    assert window_start(date(2026, 3, 30)) == date(2026, 3, 1)
    assert window_start(date(2026, 3, 1), days=1) == date(2026, 3, 1)


def test_usage_answer_shows_every_figure_and_what_is_left_of_budgets():
    report = UsageReport(
        mine_today=UsageTotals(2, 1200, 300),
        mine_window=UsageTotals(9, 15000, 4000),
        team_today=UsageTotals(5, 3000, 1000),
        team_window=UsageTotals(40, 90000, 20000),
    )
    text = describe_usage(report, user_budget=2000, team_budget=None)
    lines = text.splitlines()
    assert lines[1] == (
        "• You today: 1,500 tokens (1,200 in, 300 out) in 2 requests; 500 of the daily budget of 2,000 left"
    )
    assert lines[2] == "• You, last 30 days: 19,000 tokens (15,000 in, 4,000 out) in 9 requests"
    assert lines[3] == "• This workspace today: 4,000 tokens (3,000 in, 1,000 out) in 5 requests"
    assert lines[4] == "• This workspace, last 30 days: 110,000 tokens (90,000 in, 20,000 out) in 40 requests"
    over = describe_usage(
        UsageReport(UsageTotals(1, 10, 0), UsageTotals(1, 10, 0), UsageTotals(), UsageTotals()), user_budget=5
    )
    assert "in 1 request; 0 of the daily budget of 5 left" in over
