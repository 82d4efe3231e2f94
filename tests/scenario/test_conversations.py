"""Conversations, in one process: signed events → the web app → a worker thread → fake inference → fake Slack."""

from __future__ import annotations

import concurrent.futures
import json

from tests.fakes.slack import next_ts
from tests.support import slack_requests as sr
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

READ_METHODS = {"conversations.replies", "conversations.history", "users.info", "auth.test", "files.info"}


def replies_in(stack, channel: str) -> list[str]:
    """Texts the bot posted in `channel` (final state of each message), oldest first."""
    messages = stack.slack.messages.get(channel, {})
    return [
        stack.slack.text_of(channel, ts)
        for ts in sorted(messages)
        if messages[ts].get("bot_id") or messages[ts].get("user") == stack.slack.bot_user_id
    ]


def bot_messages(stack, channel: str) -> list[dict]:
    with stack.slack._lock:
        messages = dict(stack.slack.messages.get(channel, {}))
    return [m for ts, m in sorted(messages.items()) if m.get("user") == stack.slack.bot_user_id or m.get("bot_id")]


def finished_replies(stack, channel: str, count: int = 1, timeout: float = 20.0) -> list[dict]:
    """Wait until the bot has `count` finished messages in `channel` and no job is pending."""

    def done():
        messages = [
            m for m in bot_messages(stack, channel) if stack.slack.stream_state(channel, m["ts"]) != "streaming"
        ]
        return messages if len(messages) >= count else None

    assert wait_for(done, timeout=timeout), f"no reply in {channel}; logs:\n{stack.logs()[-3000:]}"
    wait_idle(stack, timeout=timeout)
    return done()


def requests_mentioning(stack, text: str) -> list[dict]:
    return [body for _, _, body in list(stack.inference.requests) if text in json.dumps(body)]


def test_a_mention_is_answered_in_its_thread(fresh):
    channel = new_channel()
    fresh.slack.add_user("U1", name="alice", real_name="Alice", display_name="Alice")
    event = sr.app_mention("<@UBOT> what is a dyno?", channel=channel)
    assert fresh.post_event(event).status_code == 200
    [reply] = finished_replies(fresh, channel)
    assert reply["thread_ts"] == event["ts"]
    assert "what is a dyno?" in fresh.slack.text_of(channel, reply["ts"])
    [body] = requests_mentioning(fresh, "what is a dyno?")
    system = body["messages"][0]
    # The place by name (the fake Slack names an unknown channel after its id), never the raw id.
    assert system["role"] == "system" and f"#{channel.lower()}" in system["content"]
    assert channel not in system["content"]
    user = body["messages"][-1]
    assert user["role"] == "user" and "<@U1>" in json.dumps(user) and "Alice" in json.dumps(user)


def test_a_follow_up_in_a_known_thread_reads_nothing_from_slack(fresh):
    channel = new_channel()
    fresh.slack.add_user("U1", name="alice", real_name="Alice", display_name="Alice")
    first = sr.app_mention("<@UBOT> remember the word pineapple", channel=channel)
    fresh.post_event(first)
    finished_replies(fresh, channel)
    calls_before = len(fresh.slack.all_calls())
    follow_up = sr.message("which word?", user="U1", channel=channel, thread_ts=first["ts"])
    fresh.post_event(follow_up)
    finished_replies(fresh, channel, count=2)
    new_calls = [call.method for call in fresh.slack.all_calls()[calls_before:]]
    assert not READ_METHODS & set(new_calls), new_calls
    # The model saw the whole thread, rebuilt from the database.
    [body] = requests_mentioning(fresh, "which word?")
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "pineapple" in json.dumps(body["messages"][1])


def test_duplicate_deliveries_give_one_reply(fresh):
    channel = new_channel()
    event = sr.app_mention("<@UBOT> only once please", channel=channel)
    event_id = sr.new_event_id()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(lambda n: fresh.post_event(event, event_id=event_id, retry_num=n or None).status_code, range(4))
        )
    assert statuses == [200] * 4
    finished_replies(fresh, channel)
    # The message event Slack also sends for the same message is not a second request either.
    message_event = {**event, "type": "message", "channel_type": "channel"}
    assert fresh.post_event(message_event).status_code == 200
    wait_for(lambda: len(requests_mentioning(fresh, "only once please")) > 1, timeout=3)
    assert len(bot_messages(fresh, channel)) == 1
    assert len(requests_mentioning(fresh, "only once please")) == 1


def test_edits_and_deletions_change_what_the_model_sees(fresh):
    channel = new_channel()
    parent = sr.app_mention("<@UBOT> the secret number is 41", channel=channel)
    fresh.post_event(parent)
    finished_replies(fresh, channel)
    aside = sr.message("an aside that gets deleted", user="U2", channel=channel, thread_ts=parent["ts"])
    fresh.post_event(aside)
    finished_replies(fresh, channel, count=2)
    fresh.post_event(sr.message_changed(channel, parent["ts"], "<@UBOT> the secret number is 42"))
    fresh.post_event(sr.message_deleted(channel, aside["ts"], thread_ts=parent["ts"]))
    follow_up = sr.message("what is the secret number?", user="U1", channel=channel, thread_ts=parent["ts"])
    fresh.post_event(follow_up)
    finished_replies(fresh, channel, count=3)
    [body] = requests_mentioning(fresh, "what is the secret number?")
    # The bot's own earlier answers stay as they were; what people wrote is what they wrote last.
    seen = json.dumps([m for m in body["messages"] if m["role"] == "user"])
    assert "number is 42" in seen and "number is 41" not in seen
    assert "an aside that gets deleted" not in seen


def test_a_mention_mid_thread_backfills_once(fresh):
    channel = new_channel()
    parent_ts = next_ts()
    fresh.slack.add_thread(
        channel, parent_ts, ["we are planning the offsite", {"user": "U2", "text": "Lisbon or Porto?"}]
    )
    before = len(fresh.slack.calls_to("conversations.replies"))
    mention = sr.app_mention("<@UBOT> which one do you suggest?", channel=channel, thread_ts=parent_ts)
    fresh.slack.add_thread(channel, parent_ts, [])  # no-op: the thread exists
    with fresh.slack._lock:
        fresh.slack.messages[channel][mention["ts"]] = {
            "type": "message",
            "user": "U1",
            "text": mention["text"],
            "ts": mention["ts"],
            "thread_ts": parent_ts,
        }
    fresh.post_event(mention)
    finished_replies(fresh, channel)
    [body] = requests_mentioning(fresh, "which one do you suggest?")
    seen = json.dumps(body["messages"])
    assert "planning the offsite" in seen and "Lisbon or Porto?" in seen
    assert len(fresh.slack.calls_to("conversations.replies")) == before + 1
    fresh.post_event(sr.message("and for food?", user="U2", channel=channel, thread_ts=parent_ts))
    finished_replies(fresh, channel, count=2)
    assert len(fresh.slack.calls_to("conversations.replies")) == before + 1


def test_two_users_in_one_thread_are_told_apart(fresh):
    channel = new_channel()
    fresh.slack.add_user("U1", name="alice", real_name="Alice", display_name="Alice")
    fresh.slack.add_user("U2", name="bob", real_name="Bob", display_name="Bob")
    parent = sr.app_mention("<@UBOT> I like tea", channel=channel, user="U1")
    fresh.post_event(parent)
    finished_replies(fresh, channel)
    fresh.post_event(sr.message("I prefer coffee", user="U2", channel=channel, thread_ts=parent["ts"]))
    finished_replies(fresh, channel, count=2)
    [body] = requests_mentioning(fresh, "I prefer coffee")
    user_messages = [json.dumps(m) for m in body["messages"] if m["role"] == "user"]
    assert "<@U1> Alice" in user_messages[0] and "tea" in user_messages[0]
    assert "<@U2> Bob" in user_messages[-1] and "coffee" in user_messages[-1]


def test_a_dm_is_answered(fresh):
    channel = "D" + new_channel()[1:]
    fresh.post_event(sr.message("hello in private", user="U1", channel=channel, channel_type="im"))
    [reply] = finished_replies(fresh, channel)
    assert "hello in private" in fresh.slack.text_of(channel, reply["ts"])


def test_an_answer_longer_than_one_message_is_split_within_slacks_limits(fresh):
    channel = new_channel()
    paragraphs = [f"Paragraph {n}: " + "lorem ipsum dolor sit amet " * 30 for n in range(17)]
    long_answer = "\n\n".join(paragraphs)
    # Longer than a message's 12,000 characters, within Haiku's 4096 output tokens (the fake: 4 chars each).
    assert 12_000 < len(long_answer) < 4096 * 4
    fresh.inference.responder = lambda body: {"content": long_answer}
    fresh.post_event(sr.app_mention("<@UBOT> write a lot", channel=channel))
    replies = finished_replies(fresh, channel, count=2)
    texts = [fresh.slack.text_of(channel, m["ts"]) for m in replies]
    assert all(len(text) <= 12_000 for text in texts)
    joined = "".join(texts)
    for paragraph in paragraphs:
        assert paragraph.strip() in joined


def test_when_the_model_rejects_the_request_the_user_hears_one_plain_sentence(fresh):
    channel = new_channel()
    fresh.inference.fail_next(400, body={"error": {"message": "prompt is too long", "type": "invalid_request_error"}})
    fresh.post_event(sr.app_mention("<@UBOT> this will be rejected", channel=channel))
    [reply] = finished_replies(fresh, channel)
    text = fresh.slack.text_of(channel, reply["ts"])
    assert text.startswith("Sorry") and "prompt is too long" in text
    assert "Traceback" not in text


def test_without_streaming_the_answer_is_posted_then_finished_with_a_markdown_block(fresh):
    channel = new_channel()
    fresh.slack.streaming_enabled = False
    try:
        fresh.inference.responder = lambda body: {"content": "**Bold** answer with `code`."}
        fresh.post_event(sr.app_mention("<@UBOT> no streaming here", channel=channel))
        [reply] = finished_replies(fresh, channel)
    finally:
        fresh.slack.streaming_enabled = True
    message = fresh.slack.message(channel, reply["ts"])
    markdown, feedback = message["blocks"]  # the answer, then its 👍/👎 (tests/scenario/test_agent.py)
    assert markdown == {"type": "markdown", "text": "**Bold** answer with `code`."}
    assert feedback["type"] == "context_actions"
    assert fresh.slack.calls_to("chat.update")


def test_an_expired_stream_is_finished_with_chat_update_on_the_same_message(fresh):
    channel = new_channel()
    answer = " ".join(f"word{n}" for n in range(400))
    fresh.inference.responder = lambda body: {"content": answer}
    fresh.slack.fail_next("chat.appendStream", error="message_not_in_streaming_state")
    fresh.post_event(sr.app_mention("<@UBOT> a stream that expires", channel=channel))
    assert wait_for(lambda: bot_messages(fresh, channel), timeout=20)
    wait_idle(fresh)
    # (The injected error leaves the fake's stream open; Slack's would have ended it.)
    [reply] = bot_messages(fresh, channel)
    assert fresh.slack.text_of(channel, reply["ts"]).strip() == answer
    assert fresh.slack.calls_to("chat.update")


def test_the_messages_tab_greets_once_and_assistant_threads_get_suggested_prompts(fresh):
    dm = "D" + new_channel()[1:]
    opened = {"type": "app_home_opened", "user": "U7", "channel": dm, "tab": "messages", "event_ts": next_ts()}
    fresh.post_event(opened)
    fresh.post_event({**opened, "event_ts": next_ts()})  # a second visit
    assert wait_for(lambda: bot_messages(fresh, dm), timeout=20)
    wait_idle(fresh)
    [greeting] = bot_messages(fresh, dm)
    assert "What can you help me with" in fresh.slack.text_of(dm, greeting["ts"])
    started = {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": "U7", "channel_id": dm, "thread_ts": next_ts()},
        "event_ts": next_ts(),
    }
    fresh.post_event(started)
    call = fresh.slack.wait_for_call("assistant.threads.setSuggestedPrompts", timeout=20)
    assert call.ok and call.params["channel_id"] == dm
    prompts = call.params["prompts"]
    assert len(json.loads(prompts) if isinstance(prompts, str) else prompts) == 3


def test_text_postgres_rejects_is_recorded_and_answered(fresh):
    # NUL is refused by Postgres text columns and a lone surrogate by psycopg; SQLite takes both.
    channel = new_channel()
    event = sr.app_mention("<@UBOT> nul\u0000here and a lone \ud83d surrogate", channel=channel)
    assert fresh.post_event(event).status_code == 200
    [reply] = finished_replies(fresh, channel)
    assert "nulhere and a lone \ufffd surrogate" in fresh.slack.text_of(channel, reply["ts"])


def test_model_output_never_pings_a_channel_or_group(fresh):
    channel = new_channel()
    fresh.inference.responder = lambda body: {"content": "Attention <!channel> <!here> <!subteam^S1|@ops> @everyone"}
    fresh.post_event(sr.app_mention("<@UBOT> shout", channel=channel))
    [reply] = finished_replies(fresh, channel)
    posted = [
        json.dumps(call.params, ensure_ascii=False)
        for call in fresh.slack.all_calls()
        if call.method.startswith("chat.") and call.params.get("channel") == channel
    ]
    assert posted and not any("<!" in p or " @everyone" in p for p in posted), posted
    assert "@\u2060channel" in fresh.slack.text_of(channel, reply["ts"])
