"""What a person sees in a Slack that follows its documentation where a lenient fake would not
(tests/fakes/slack.py switches), in-process on PostgreSQL: finished streams stored as blocks with
chat.update keeping blocks it was not sent, channels the bot is not in, throttled thread reads."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.failures import MODEL_UNAVAILABLE
from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.scenario.conftest import Scenario, new_channel, start_scenario
from tests.support import slack_requests as sr
from tests.support.processes import wait_for

STOPPED = "_(stopped)_"


def reset_readings(slack: FakeSlack, inference: FakeInference) -> None:
    slack.streams_stored_as_blocks = slack.enforce_membership = slack.replies_throttle = False
    slack.replies_interval = 60.0
    slack._replies_last.clear()
    inference.reset_script()


@pytest.fixture
def blocks_kept(postgres_url, fakes) -> Iterator[Scenario]:
    """A Slack that stores finished streams as blocks; a job gets one attempt."""
    slack, inference = fakes
    reset_readings(slack, inference)
    slack.streams_stored_as_blocks = True
    try:
        yield from start_scenario(postgres_url, fakes, JOB_MAX_ATTEMPTS="1")
    finally:
        reset_readings(slack, inference)


def streaming_reply(scenario: Scenario, channel: str) -> dict:
    def found():
        for message in scenario.slack.bot_messages(channel):
            if scenario.slack.stream_state(channel, message["ts"]) == "streaming" and message.get("text"):
                return message
        return None

    return scenario.wait(found, "a reply streaming its first words")


def one_visible_reply(scenario: Scenario, channel: str, predicate, what: str) -> str:
    def visible():
        messages = scenario.slack.bot_messages(channel)
        if len(messages) != 1:
            return None
        text = scenario.slack.visible_text(channel, messages[0]["ts"])
        return text if predicate(text) else None

    return scenario.wait(visible, what)


LONG = " ".join(f"word{n}" for n in range(300))


def test_stops_note_shows_over_a_stream_slack_stored_as_blocks(blocks_kept):
    scenario, channel = blocks_kept, new_channel()
    scenario.inference.responder = lambda body: {"content": LONG}
    scenario.inference.hang_next(4.0, after_chunks=3)
    event = sr.app_mention("<@UBOT> a long story please", channel=channel)
    scenario.post_event(event)
    reply = streaming_reply(scenario, channel)
    stopped = scenario.slack.press_stop(channel, event["ts"])  # Slack ends the stream: stored as blocks
    assert stopped == [reply["ts"]]
    assert scenario.slack.message(channel, reply["ts"])["blocks"]
    scenario.post_event(
        {
            "type": "agent_session_stopped",
            "channel": channel,
            "thread_ts": event["ts"],
            "streaming_message_ts": stopped,
            "user": "U1",
            "event_ts": str(time.time()),
        }
    )
    text = one_visible_reply(scenario, channel, lambda text: text.endswith(STOPPED), "the stop note, visible")
    assert text.startswith("word0")


def test_the_failure_sentence_shows_over_a_stream_slack_stored_as_blocks(blocks_kept):
    scenario, channel = blocks_kept, new_channel()
    scenario.inference.responder = lambda body: {"content": LONG}
    scenario.inference.hang_next(1.0, after_chunks=3)  # some words, then the stream breaks
    scenario.post_event(sr.app_mention("<@UBOT> and now it breaks", channel=channel))
    reply = streaming_reply(scenario, channel)
    scenario.slack.expire_stream(channel, reply["ts"])  # Slack ends it: stored as blocks
    text = one_visible_reply(scenario, channel, lambda text: text == MODEL_UNAVAILABLE, "the failure sentence")
    assert text == MODEL_UNAVAILABLE
    [job] = scenario.wait_settled("reply")
    assert job.status == "dead"


def test_the_stream_fallback_shows_every_word_after_slack_ended_the_stream(blocks_kept):
    scenario, channel = blocks_kept, new_channel()
    scenario.inference.responder = lambda body: {"content": LONG}
    scenario.inference.latency_min = scenario.inference.latency_max = 3.0  # words trickle in
    try:
        scenario.post_event(sr.app_mention("<@UBOT> slowly now", channel=channel))
        reply = streaming_reply(scenario, channel)
        scenario.slack.expire_stream(channel, reply["ts"])  # the rest goes through chat.update
        text = one_visible_reply(scenario, channel, lambda text: text.rstrip().endswith("word299"), "every word")
    finally:
        scenario.inference.latency_min = scenario.inference.latency_max = 0.0
    assert text.startswith("word0") and text.count("word150 ") == 1
    updates = scenario.slack.calls_to("chat.update")
    mine = [call for call in updates if call.params.get("channel") == channel]
    assert mine and all(call.params.get("blocks") for call in mine)  # never text alone over blocks
    assert wait_for(lambda: scenario.jobs("reply") and scenario.jobs("reply")[-1].status == "done", timeout=10)


# -- the report channel: the bot must be a member to post there --------------------------------

WATCHED, REPORTS, POSTER, ADMIN = "CWATCHRD", "CREPORTRD", "UPOSTER", "UADMIN"


@pytest.fixture
def members_only(postgres_url, fakes) -> Iterator[Scenario]:
    """A Slack that refuses posts in channels the bot is not in; the report channel is one."""
    slack, inference = fakes
    reset_readings(slack, inference)
    slack.enforce_membership = True
    slack.add_channel(REPORTS, name="reports", members=[ADMIN])  # the bot was never invited
    slack.add_user(POSTER, name="paula", real_name="Paula")
    slack.add_user(ADMIN, name="ada", real_name="Ada", is_admin=True)
    try:
        yield from start_scenario(postgres_url, fakes, MODERATION_CHANNELS=WATCHED, MODERATION_REPORT_CHANNEL=REPORTS)
    finally:
        slack.channels.pop(REPORTS, None)
        reset_readings(slack, inference)


def _flag_image(scenario: Scenario) -> str:
    from tests.scenario.test_moderation import png, verdict_model

    scenario.inference.responder = verdict_model("flag", categories=["scam"], reason="Looks like a fake offer.")
    file_id = "F" + str(time.time_ns())[-10:]
    file_object = scenario.slack.add_file(file_id, png(), name="offer.png", mimetype="image/png", user=POSTER)
    assert scenario.post_event(sr.message("", user=POSTER, channel=WATCHED, files=[file_object])).status_code == 200
    return file_id


def _command(scenario: Scenario, text: str) -> str:
    name = f"moderation-{time.time_ns()}"
    form = sr.slash_command_form(
        "/moderation", text, user_id=ADMIN, channel_id=WATCHED, response_url=scenario.slack.response_url(name)
    )
    assert scenario.post_form(form).status_code == 200
    [post] = scenario.wait(lambda: scenario.slack.responses_to(name), "the /moderation answer")
    return str(post.body["text"])


def test_a_report_channel_the_bot_is_not_in_stores_the_decision_and_is_flagged_once(members_only, caplog):
    from bot.moderation import store
    from bot.moderation.models import ModerationDecision

    scenario = members_only
    caplog.set_level("ERROR", logger="bot.moderation.job")
    first, second = _flag_image(scenario), _flag_image(scenario)
    jobs = scenario.wait_settled("moderate", count=2)
    assert [(job.status, job.attempts) for job in jobs] == [("done", 1), ("done", 1)]  # never retried to death
    with scenario.runtime.sessions() as session:
        from sqlalchemy import select

        decisions = session.execute(
            select(ModerationDecision).where(ModerationDecision.file_id.in_([first, second]))
        ).scalars()
        assert {(d.verdict, d.action) for d in decisions} == {("flag", "unreported")}
        problem = store.report_problem(session, "T1")
        assert (problem.channel_id, problem.error) == (REPORTS, "not_in_channel")
    flagged = [r for r in caplog.records if "report_channel_unusable" in r.getMessage()]
    assert len(flagged) == 1  # in the log once, not once per image
    status = _command(scenario, "")
    assert "fail (not_in_channel)" in status and f"Invite @bot to <#{REPORTS}>" in status

    from bot.diagnostics import run_checks

    [check] = [r for r in run_checks(scenario.settings) if r.item == "report channel"]
    assert not check.ok and f"invite @bot to <#{REPORTS}>" in check.detail
    [stored] = [r for r in run_checks(scenario.settings) if r.item == "reports"]
    assert not stored.ok and "not_in_channel" in stored.detail


def test_moderation_report_refuses_a_channel_the_bot_is_not_in_and_says_what_to_do(members_only):
    scenario = members_only
    answer = _command(scenario, f"report <#{REPORTS}|reports>")
    assert f"I can't post in <#{REPORTS}> (not_in_channel): invite @bot to <#{REPORTS}>" in answer
    scenario.slack.add_channel(REPORTS, name="reports", members=[ADMIN, scenario.slack.bot_user_id])
    assert _command(scenario, f"report <#{REPORTS}|reports>") == f"Moderation reports now go to <#{REPORTS}>."


# -- an outage the person can see: the apology is the one message ------------------------------

APOLOGY_AFTER = 3.0


def _one_message(scenario: Scenario, channel: str, predicate, what: str, timeout: float) -> tuple[dict, float]:
    def found():
        messages = scenario.slack.bot_messages(channel)
        if len(messages) == 1 and predicate(scenario.slack.visible_text(channel, messages[0]["ts"])):
            return messages[0]
        return None

    message = scenario.wait(found, what, timeout=timeout)
    return message, time.monotonic()


@pytest.fixture
def outage(postgres_url, fakes) -> Iterator[Scenario]:
    slack, inference = fakes
    reset_readings(slack, inference)
    slack.streams_stored_as_blocks = True
    try:
        yield from start_scenario(
            postgres_url, fakes, BOT_APOLOGY_AFTER_SECONDS=str(APOLOGY_AFTER), JOB_MAX_ATTEMPTS="4"
        )
    finally:
        inference.set_down(False)
        reset_readings(slack, inference)


def test_during_an_outage_the_one_message_apologizes_then_becomes_the_answer(outage):
    from bot.agent.waiting import APOLOGY_MESSAGE

    scenario, channel = outage, new_channel()
    scenario.inference.set_down(True)
    posted = time.monotonic()
    scenario.post_event(sr.app_mention("<@UBOT> are you there?", channel=channel))
    apology, seen = _one_message(scenario, channel, lambda t: t == APOLOGY_MESSAGE, "the apology", APOLOGY_AFTER + 10)
    assert seen - posted <= APOLOGY_AFTER + 10
    scenario.inference.set_down(False)
    answer, _ = _one_message(scenario, channel, lambda t: "are you there?" in t, "the answer", 60)
    assert answer["ts"] == apology["ts"]  # replaced, not a second message
    [job] = scenario.wait_settled("reply", timeout=30)
    assert job.status == "done"


def test_when_the_outage_lasts_the_final_notice_replaces_the_apology(outage):
    from bot.agent.waiting import APOLOGY_MESSAGE

    scenario, channel = outage, new_channel()
    scenario.inference.set_down(True)
    scenario.post_event(sr.app_mention("<@UBOT> still nobody?", channel=channel))
    apology, _ = _one_message(scenario, channel, lambda t: t == APOLOGY_MESSAGE, "the apology", APOLOGY_AFTER + 10)
    notice, _ = _one_message(scenario, channel, lambda t: t == MODEL_UNAVAILABLE, "the final notice", 90)
    assert notice["ts"] == apology["ts"]
    [job] = scenario.wait_settled("reply")
    assert job.status == "dead"


def test_a_queue_wait_past_two_minutes_becomes_the_one_message_and_the_answer_replaces_it(
    postgres_url, fakes, monkeypatch
):
    from bot.queue import waiting

    monkeypatch.setattr(waiting, "LONG_WAIT_SECONDS", 2.0)  # two minutes in production
    slack, inference = fakes
    reset_readings(slack, inference)
    try:
        for scenario in start_scenario(postgres_url, fakes, WORKER_CONCURRENCY="1", BOT_QUEUED_NOTICE_SECONDS="0.5"):
            first, second = new_channel(), new_channel()
            scenario.inference.hang_next(6.0)  # the only worker thread is busy with the first
            scenario.post_event(sr.app_mention("<@UBOT> take your time", channel=first))
            jobs = scenario.jobs
            scenario.wait(lambda jobs=jobs: jobs("reply") and jobs("reply")[0].status == "running", "busy")
            scenario.post_event(sr.app_mention("<@UBOT> my turn yet?", channel=second))
            waited, _ = _one_message(scenario, second, lambda t: t.startswith("Sorry for the wait"), "the wait", 15)
            wait_for(scenario.inference.end_hangs, timeout=5)  # the first's call ends now: the thread is free
            answer, _ = _one_message(scenario, second, lambda t: "my turn yet?" in t, "the answer", 60)
            assert answer["ts"] == waited["ts"]
    finally:
        reset_readings(slack, inference)


# -- a long thread the bot never saw, under Slack's throttled conversations.replies -------------


def test_a_mention_in_a_40_message_thread_is_answered_at_once_and_the_rest_follows(postgres_url, fakes):
    from sqlalchemy import func, select

    from bot.history.models import Thread, ThreadMessage
    from tests.fakes.slack import next_ts

    slack, inference = fakes
    reset_readings(slack, inference)
    slack.replies_throttle = True  # 15 messages a call, one call a minute ...
    slack.replies_interval = 4.0  # ... shortened here so the background part ends within the test
    try:
        for scenario in start_scenario(postgres_url, fakes):
            channel, parent_ts = new_channel(), next_ts()
            thread = ["THE VERY FIRST MESSAGE: the offsite is in Lisbon"] + [f"reply number {n}" for n in range(1, 39)]
            slack.add_thread(channel, parent_ts, thread)
            mention = sr.app_mention("<@UBOT> where is the offsite?", channel=channel, thread_ts=parent_ts)
            slack.add_message(channel, {"text": mention["text"], "ts": mention["ts"]}, thread_ts=parent_ts)
            started = time.monotonic()
            scenario.post_event(mention)
            _answered, seen = _one_message(scenario, channel, lambda t: t.startswith("You said"), "the answer", 15)
            assert seen - started <= 15
            [body] = [r.body for r in list(inference.requests) if "where is the offsite?" in str(r.body)]
            assert "THE VERY FIRST MESSAGE" in str(body["messages"])  # the thread's start is in the request
            first_call = slack.calls_to("conversations.replies")[0]
            assert int(first_call.params["limit"]) == 15

            def backfilled(scenario=scenario, channel=channel, parent_ts=parent_ts):
                with scenario.runtime.sessions() as session:
                    done = session.get(Thread, ("T1", channel, parent_ts)).backfilled_at is not None
                    count = session.execute(
                        select(func.count()).where(ThreadMessage.channel_id == channel, ThreadMessage.seq == 0)
                    ).scalar_one()
                return done and count >= 40

            scenario.wait(backfilled, "the rest of the thread, in the background", timeout=40)
            assert slack.throttled_replies >= 1  # the background job met the limit and waited it out
            [job] = scenario.wait_settled("backfill")
            assert job.status == "done" and job.attempts <= 1  # throttling never used an attempt
            calls = slack.calls_to("conversations.replies")
            throttled_at = next(n for n, call in enumerate(calls) if call.status == 429)
            assert all(int(call.params["limit"]) == 15 for call in calls[throttled_at + 1 :])  # 15 once throttled
    finally:
        reset_readings(slack, inference)
