"""The database tools on SQLite and PostgreSQL: /search (scoped by team and by the asker's
channels), /usage and /forget, run the way the model and slash commands run them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.builtin_tools import default_registry
from bot.history import store as history
from bot.limits.models import TokenUsage
from bot.tools.forget_logic import HOW_TO_FORGET, NOT_YOURS
from bot.tools.registry import ToolContext
from bot.tools.runner import run_slash_command, run_tool

REGISTRY = default_registry()


def say(sessions, text, *, team="T1", channel="C1", thread="1.0", ts=None, user="U1", role="user"):
    ts = ts or thread
    with sessions.begin() as session:
        history.engage_thread(session, team, channel, thread, mid_thread=False)
        if role == "user":
            history.upsert_message(
                session, team_id=team, channel_id=channel, thread_ts=thread, ts=ts, user_id=user, text=text
            )
        else:
            history.record_turn(
                session,
                team_id=team,
                channel_id=channel,
                thread_ts=thread,
                answers_ts=ts,
                entries=[{"role": role, "text": text}],
            )


def ctx(sessions, *, team="T1", channel="C9", thread=None, user="U1", admin=False):
    return ToolContext(
        team_id=team, channel_id=channel, thread_ts=thread, user_id=user, user_is_admin=admin, db=sessions
    )


def search(sessions, query, **where):
    result = run_tool(REGISTRY, "search_messages", json.dumps({"query": query}), ctx(sessions, **where))
    assert result.ok, result.content
    return result.content


def test_search_finds_words_in_the_askers_channels_of_this_workspace_only(sessions):
    say(sessions, "We deploy the payments service on Friday", channel="C1", thread="1.0")
    say(sessions, "Deploys are frozen until Monday", channel="C1", thread="1.0", ts="1.1", role="assistant")
    say(sessions, "deploy secrets of another workspace", team="T2", channel="C1", thread="1.0")
    say(sessions, "deploy chatter where U1 never wrote", channel="C2", thread="2.0", user="U2")
    say(sessions, "deploy in U1's DM", channel="D1", thread="3.0")
    say(sessions, "deploy tool output", channel="C1", thread="1.0", ts="1.2", role="tool")
    say(sessions, "deploy, then deleted", channel="C1", thread="1.0", ts="1.3")
    with sessions.begin() as session:
        history.delete_message(session, team_id="T1", channel_id="C1", ts="1.3")
    with sessions.begin() as session:
        history.upsert_message(
            session,
            team_id="T1",
            channel_id="C1",
            thread_ts="1.0",
            ts="1.4",
            user_id="U1",
            text="payments deployed twice",
        )

    answer = search(sessions, "deploy")
    assert "payments service on Friday" in answer
    assert "Deploys are frozen" in answer and "the assistant" in answer
    assert "deploy in U1's DM" in answer
    assert "another workspace" not in answer
    assert "never wrote" not in answer
    assert "tool output" not in answer and "then deleted" not in answer
    assert answer.startswith("4 messages matching") and "<#C1>" in answer and "<#D1>" in answer
    # Every word must appear; case does not matter.
    both = search(sessions, "PAYMENTS deploy")
    assert both.startswith("2 messages matching")
    # Another workspace's asker sees only that workspace's messages.
    assert "another workspace" in search(sessions, "deploy", team="T2", channel="C1")
    assert "payments" not in search(sessions, "deploy", team="T2", channel="C1")


def test_search_from_a_channel_the_asker_never_wrote_in_includes_that_channel(sessions):
    say(sessions, "the offsite is in Lisbon", channel="C2", thread="2.0", user="U2")
    assert "No stored messages match" in search(sessions, "lisbon", channel="C9")
    assert "the offsite is in Lisbon" in search(sessions, "lisbon", channel="C2")


def test_the_model_in_a_channel_thread_searches_that_channel_only_and_not_its_own_thread(sessions):
    say(sessions, "budget numbers are final", channel="C1", thread="1.0")
    say(sessions, "budget draft, private", channel="D1", thread="3.0")
    say(sessions, "what were the budget numbers?", channel="C1", thread="5.0")
    answer = search(sessions, "budget", channel="C1", thread="5.0")
    assert "budget numbers are final" in answer
    assert "private" not in answer and "what were the budget numbers" not in answer
    # In the asker's DM with the bot, the model may search all of the asker's channels.
    assert "budget numbers are final" in search(sessions, "budget", channel="D1", thread="9.0")


def test_search_reads_only_words_so_wildcards_match_nothing_special(sessions):
    say(sessions, "100 percent done", channel="C1")
    say(sessions, "snake_case names", channel="C1", thread="2.0")
    assert "snake_case names" in search(sessions, "snake_case", channel="C1")
    assert "No stored messages match" in search(sessions, "snake_%_percent", channel="C1")
    result = run_slash_command(REGISTRY, "/search", "%%", ctx(sessions))
    assert not result.result.ok and "at least one word" in result.result.content


def test_postgres_search_uses_the_gin_index(postgres_url):
    from bot.builtin_tools.search import find_messages
    from bot.db.engine import make_engine, make_session_factory

    engine = make_engine(postgres_url)
    try:
        sessions = make_session_factory(engine)
        say(sessions, "indexed words here")
        with sessions() as session:
            session.execute(text("SET enable_seqscan = off"))
            hits = find_messages(session, team_id="T1", channels=["C1"], terms=["indexed"])
            assert [h.text for h in hits] == ["indexed words here"]
            from bot.builtin_tools.search import text_vector

            compiled = str(
                text_vector().compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
            )
            plan = "\n".join(
                row[0]
                for row in session.execute(
                    text(f"EXPLAIN SELECT id FROM thread_messages WHERE {compiled} @@ to_tsquery('simple', 'a:*')")
                )
            )
        assert "ix_thread_messages_text_search" in plan, plan
    finally:
        engine.dispose()


def add_usage(sessions, team, user, day, requests, prompt, completion):
    with sessions.begin() as session:
        session.add(
            TokenUsage(
                team_id=team,
                user_id=user,
                day=day,
                requests=requests,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
        )


def test_usage_counts_today_and_thirty_days_per_user_and_workspace(sessions):
    today = datetime.now(UTC).date()
    add_usage(sessions, "T1", "U1", today, 2, 100, 20)
    add_usage(sessions, "T1", "U1", today - timedelta(days=10), 3, 1000, 200)
    add_usage(sessions, "T1", "U1", today - timedelta(days=29), 1, 5, 5)
    add_usage(sessions, "T1", "U1", today - timedelta(days=30), 50, 99999, 99999)  # outside the window
    add_usage(sessions, "T1", "U2", today, 1, 7, 3)
    add_usage(sessions, "T2", "U1", today, 9, 88888, 88888)  # another workspace
    result = run_slash_command(REGISTRY, "/usage", "", ctx(sessions))
    assert result.result.ok, result.result.content
    lines = result.result.content.splitlines()
    assert lines[1] == "• You today: 120 tokens (100 in, 20 out) in 2 requests"
    assert lines[2] == "• You, last 30 days: 1,330 tokens (1,105 in, 225 out) in 6 requests"
    assert lines[3] == "• This workspace today: 130 tokens (107 in, 23 out) in 3 requests"
    assert lines[4] == "• This workspace, last 30 days: 1,340 tokens (1,112 in, 228 out) in 7 requests"


def stored(sessions, team="T1", channel="C1", thread="1.0"):
    with sessions() as session:
        return [e.text for e in history.load_thread(session, team, channel, thread)]


def test_forget_in_a_thread_deletes_that_thread_only(sessions):
    say(sessions, "forget me", channel="C1", thread="1.0")
    say(sessions, "keep me", channel="C1", thread="2.0")
    say(sessions, "other workspace, same ids", team="T2", channel="C1", thread="1.0")
    result = run_tool(REGISTRY, "forget_thread", "{}", ctx(sessions, channel="C1", thread="1.0"))
    assert result.ok and "deleted the 1 message" in result.content
    assert stored(sessions) == []
    assert stored(sessions, thread="2.0") == ["keep me"]
    assert stored(sessions, team="T2") == ["other workspace, same ids"]
    with sessions() as session:
        assert history.get_thread(session, "T1", "C1", "1.0") is None


def test_forget_as_a_slash_command_needs_a_link_to_a_thread_the_asker_wrote_in(sessions):
    say(sessions, "parent by U1", channel="C1", thread="1700000000.000100")
    say(sessions, "reply by U2", channel="C1", thread="1700000000.000100", ts="1700000000.000200", user="U2")
    no_link = run_slash_command(REGISTRY, "/forget", "", ctx(sessions))
    assert not no_link.result.ok and no_link.result.content == HOW_TO_FORGET
    bad = run_slash_command(REGISTRY, "/forget", "yesterday's thread", ctx(sessions))
    assert not bad.result.ok and "doesn't look like a link" in bad.result.content
    # A link to the reply finds its thread; U3 never wrote there and is not an admin.
    reply_link = "<https://acme.slack.com/archives/C1/p1700000000000200>"
    refused = run_slash_command(REGISTRY, "/forget", reply_link, ctx(sessions, user="U3"))
    assert not refused.result.ok and refused.result.content == NOT_YOURS
    assert len(stored(sessions, thread="1700000000.000100")) == 2
    done = run_slash_command(REGISTRY, "/forget", reply_link, ctx(sessions, user="U2"))
    assert done.result.ok and "deleted the 2 messages" in done.result.content
    assert stored(sessions, thread="1700000000.000100") == []


def test_an_admin_may_forget_any_thread_of_the_workspace(sessions):
    say(sessions, "someone's thread", channel="C5", thread="1700000000.000300", user="U7")
    link = "https://acme.slack.com/archives/C5/p1700000000000300"
    result = run_slash_command(REGISTRY, "/forget", link, ctx(sessions, user="UADMIN", admin=True))
    assert result.result.ok, result.result.content
    assert stored(sessions, channel="C5", thread="1700000000.000300") == []


@pytest.mark.parametrize("name", ["search_messages", "token_usage", "forget_thread"])
def test_database_tools_say_so_without_a_database(name):
    result = run_tool(
        REGISTRY,
        name,
        json.dumps({"query": "x"} if name == "search_messages" else {}),
        ToolContext(team_id="T1", user_id="U1"),
    )
    assert not result.ok and "not available" in result.content
