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
    from tests.e2e.test_moderation import png, verdict_model

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
