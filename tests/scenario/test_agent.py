"""Slack's agent surface end to end (web app and worker in one process, fake Slack):
tool calls as task steps, 👍/👎 on every answer and clicks kept, the native Stop button."""

from __future__ import annotations

import json
import threading
import time
import uuid

from tests.e2e.test_operations import run_cli
from tests.scenario.test_conversations import bot_messages, finished_replies
from tests.support import slack_requests as sr
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle


def _tool_then_answer(name: str, arguments: dict, answer: str):
    def responder(body):
        if any(m.get("role") == "tool" for m in body["messages"]):
            return {"content": answer}
        return {"content": "", "tool_calls": [{"id": "call_calc_1", "name": name, "arguments": json.dumps(arguments)}]}

    return responder


def test_a_tool_call_is_streamed_as_a_task_step_then_the_answer_ends_with_feedback_buttons(fresh):
    channel = new_channel()
    fresh.inference.responder = _tool_then_answer("calculate", {"expression": "6*7"}, "It is 42.")
    event = sr.app_mention("<@UBOT> what is 6*7?", channel=channel)
    fresh.post_event(event)
    [reply] = finished_replies(fresh, channel)

    tasks = fresh.slack.tasks_of(channel, reply["ts"])
    assert list(tasks) == ["call_calc_1"]  # the tool call's id: stable across its updates
    updates = tasks["call_calc_1"]
    assert [u["status"] for u in updates] == ["in_progress", "complete"]
    assert {u["title"] for u in updates} == {"Calculating 6*7"}
    assert "42" in updates[-1]["output"]
    start = fresh.slack.wait_for_call("chat.startStream", where=lambda c: c.params["channel"] == channel)
    assert start.params["task_display_mode"] == "timeline"
    assert "It is 42." in fresh.slack.text_of(channel, reply["ts"])

    [feedback] = [b for b in fresh.slack.message(channel, reply["ts"])["blocks"] if b["type"] == "context_actions"]
    [buttons] = feedback["elements"]
    assert buttons["type"] == "feedback_buttons"
    assert buttons["positive_button"]["text"]["text"] == "👍" and buttons["negative_button"]["text"]["text"] == "👎"
    stop = fresh.slack.wait_for_call("chat.stopStream", where=lambda c: c.params["channel"] == channel)
    assert stop.params["blocks"] == [feedback]

    # The session was `processing` while the answer was worked on, and is not any more.
    assert fresh.slack.session_history(channel, event["ts"]) == ["processing", "active"]


def test_several_tool_calls_show_a_plan_title(fresh):
    channel = new_channel()

    def responder(body):
        if any(m.get("role") == "tool" for m in body["messages"]):
            return {"content": "Both done."}
        return {
            "content": "",
            "tool_calls": [
                {"id": "call_a", "name": "calculate", "arguments": json.dumps({"expression": "1+1"})},
                {"id": "call_b", "name": "current_time", "arguments": json.dumps({"timezone": "Europe/Paris"})},
            ],
        }

    fresh.inference.responder = responder
    fresh.post_event(sr.app_mention("<@UBOT> two things", channel=channel))
    [reply] = finished_replies(fresh, channel)
    chunks = fresh.slack.chunks_of(channel, reply["ts"])
    plans = [c["title"] for c in chunks if c["type"] == "plan_update"]
    assert plans and plans[-1] == "Worked through 2 steps"
    tasks = fresh.slack.tasks_of(channel, reply["ts"])
    assert set(tasks) == {"call_a", "call_b"}
    assert tasks["call_b"][0]["title"] == "Looking up the time in Europe/Paris"
    assert all(updates[-1]["status"] == "complete" for updates in tasks.values())


def test_without_streaming_the_steps_are_a_context_line_in_the_one_message(fresh):
    channel = new_channel()
    fresh.slack.streaming_enabled = False
    try:
        fresh.inference.responder = _tool_then_answer("calculate", {"expression": "2+2"}, "Four.")
        fresh.post_event(sr.app_mention("<@UBOT> 2+2 please", channel=channel))
        [reply] = finished_replies(fresh, channel)
    finally:
        fresh.slack.streaming_enabled = True
    assert len(bot_messages(fresh, channel)) == 1
    blocks = fresh.slack.message(channel, reply["ts"])["blocks"]
    assert [b["type"] for b in blocks] == ["context", "markdown", "context_actions"]
    assert blocks[0]["elements"][0]["text"].startswith("✓ Calculating 2+2 — ")
    # While the tool ran, the message already showed the step in progress.
    shown = [
        c.params["blocks"]
        for c in fresh.slack.calls_to("chat.postMessage") + fresh.slack.calls_to("chat.update")
        if c.params.get("channel") == channel and c.params.get("blocks")
    ]
    steps = [b[0]["elements"][0]["text"] for b in shown if b[0]["type"] == "context"]
    assert steps[0] == "… Calculating 2+2" and steps[-1].startswith("✓ Calculating 2+2")
    wait_idle(fresh)


def test_a_tool_that_fails_is_an_error_step(fresh):
    channel = new_channel()
    fresh.inference.responder = _tool_then_answer("calculate", {"expression": "1/0"}, "Cannot.")
    fresh.post_event(sr.app_mention("<@UBOT> divide by zero", channel=channel))
    [reply] = finished_replies(fresh, channel)
    updates = fresh.slack.tasks_of(channel, reply["ts"])["call_calc_1"]
    assert [u["status"] for u in updates] == ["in_progress", "error"]
    assert updates[-1]["output"]


def _click(stack, channel: str, answer: dict, rating: str, *, user: str = "U1"):
    [block] = [b for b in stack.slack.message(channel, answer["ts"])["blocks"] if b["type"] == "context_actions"]
    [element] = block["elements"]
    button = element["positive_button" if rating == "positive" else "negative_button"]
    payload = sr.block_actions(
        user=user,
        channel=channel,
        channel_name=channel.lower(),
        message=stack.slack.message(channel, answer["ts"]),
        action={
            "type": "feedback_buttons",
            "action_id": element["action_id"],
            "block_id": block.get("block_id", "fb"),
            "text": button["text"],
            "value": button["value"],
        },
        response_url=stack.slack.response_url(uuid.uuid4().hex),
        thread_ts=answer.get("thread_ts"),
    )
    response = stack.post_form(sr.interactivity_form(payload))
    assert response.status_code == 200, response.text


def _stats(stack) -> dict:
    result = run_cli(stack.env, "stats", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_click_is_thanked_stored_once_per_person_with_the_trace_and_counted_by_bot_stats(fresh):
    channel = new_channel()
    fresh.inference.responder = _tool_then_answer("calculate", {"expression": "3*3"}, "Nine.")
    event = sr.app_mention("<@UBOT> 3*3?", channel=channel)
    fresh.post_event(event)
    [reply] = finished_replies(fresh, channel)
    before = _stats(fresh)["feedback"]

    _click(fresh, channel, reply, "negative")
    thanks = fresh.slack.wait_for_call(
        "chat.postEphemeral", where=lambda c: c.params["channel"] == channel and c.params["user"] == "U1", timeout=20
    )
    assert thanks.ok and "Thanks" in thanks.params["text"]
    _click(fresh, channel, reply, "positive")  # the same person changes their mind
    _click(fresh, channel, reply, "positive", user="U2")
    wait_idle(fresh)

    rows = _feedback_rows(fresh, channel)
    assert [(r["user_id"], r["rating"]) for r in rows] == [("U1", "positive"), ("U2", "positive")]
    row = rows[0]
    assert row["team_id"] == "T1" and row["answer_ts"] == reply["ts"] and row["thread_ts"] == event["ts"]
    assert row["model"] == "claude-4-5-haiku" and json.loads(row["tools"]) == ["calculate"]
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["latency_ms"] > 0
    assert row["attempts"] == 1

    after = _stats(fresh)["feedback"]
    assert after["positive"] == before["positive"] + 2 and after["negative"] == before["negative"]
    assert sum(day["positive"] for day in after["days"]) == after["positive"]
    plain = run_cli(fresh.env, "stats")
    assert "👍" in plain.stdout and "% 👍" in plain.stdout


def _feedback_rows(stack, channel: str) -> list[dict]:
    from sqlalchemy import create_engine, text

    from bot.config import normalize_database_url

    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT team_id, channel_id, thread_ts, answer_ts, user_id, rating, model, prompt_tokens,"
                    " completion_tokens, CAST(tools AS TEXT) AS tools, latency_ms, attempts FROM answer_feedback"
                    " WHERE channel_id = :channel ORDER BY user_id"
                ),
                {"channel": channel},
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def _job_rows(stack, channel: str) -> list[dict]:
    from sqlalchemy import create_engine, text

    from bot.config import normalize_database_url

    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, kind, status, attempts, CAST(progress AS TEXT) AS progress,"
                    " CAST(payload AS TEXT) AS payload, last_error FROM jobs WHERE kind = 'reply' ORDER BY id"
                )
            )
            found = [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()
    return [row for row in found if json.loads(row["payload"]).get("channel") == channel]


def test_stop_during_a_slow_model_call_ends_the_answer_at_once_and_for_good(fresh):
    channel = new_channel()
    long_answer = " ".join(f"word{n}" for n in range(600))
    fresh.inference.responder = lambda body: {"content": long_answer}
    hang_seconds = 6.0
    fresh.inference.hang_next(hang_seconds, after_chunks=3)  # some text, then the model stalls
    event = sr.app_mention("<@UBOT> tell me a long story", channel=channel)
    fresh.post_event(event)

    def streaming_reply():
        messages = [
            m for m in bot_messages(fresh, channel) if fresh.slack.stream_state(channel, m["ts"]) == "streaming"
        ]
        return messages[0] if messages and fresh.slack.text_of(channel, messages[0]["ts"]) else None

    reply = wait_for(streaming_reply, timeout=20)
    assert reply, fresh.logs()[-3000:]
    assert fresh.slack.session_status(channel, event["ts"]) == "processing"
    requests_before = len(fresh.inference.requests)

    stopped = fresh.slack.press_stop(channel, event["ts"])
    assert stopped == [reply["ts"]]
    shown = fresh.slack.text_of(channel, reply["ts"])
    stop_event = {
        "type": "agent_session_stopped",
        "channel": channel,
        "thread_ts": event["ts"],
        "streaming_message_ts": stopped,
        "user": "U1",
        "event_ts": str(time.time()),
    }
    assert fresh.post_event(stop_event).status_code == 200

    # The session leaves `processing` and the job ends as stopped, long before the model would answer.
    started = time.monotonic()
    assert wait_for(lambda: fresh.slack.session_status(channel, event["ts"]) == "active", timeout=hang_seconds - 1)
    wait_idle(fresh, timeout=hang_seconds)
    assert time.monotonic() - started < hang_seconds, "the stopped call was waited for"
    [job] = _job_rows(fresh, channel)
    assert job["status"] == "done" and job["attempts"] == 1, job
    assert json.loads(job["progress"]).get("stopped") is True

    # Nothing but the note was added to the answer, no other message was posted ...
    [only] = bot_messages(fresh, channel)
    assert only["ts"] == reply["ts"]
    final = fresh.slack.text_of(channel, reply["ts"])
    assert final.startswith(shown.strip()) and final[len(shown.strip()) :].strip() == "_(stopped)_"
    # ... and, once the stalled call has given up, no model call follows: no retry, no next round.
    # The provider ends the stall now rather than after hang_seconds; once the abandoned call's
    # thread has ended, nothing is left that could send another request.
    calls_in_flight = [thread for thread in threading.enumerate() if thread.name == "model-call"]
    wait_for(fresh.inference.end_hangs, timeout=2)
    for thread in calls_in_flight:
        thread.join(timeout=hang_seconds + 2)
    assert len(fresh.inference.requests) == requests_before
    assert [j["status"] for j in _job_rows(fresh, channel)] == ["done"]
    assert fresh.slack.text_of(channel, reply["ts"]) == final
    assert "answer_feedback" not in json.dumps(fresh.slack.message(channel, reply["ts"]).get("blocks") or [])


# `bot chat` started as a terminal starts it, with Ctrl-C (SIGINT) not ignored. A shell without job
# control starts background commands (a suite run with `&`, nohup, some CI runners) with SIGINT
# ignored; children inherit that and Python keeps it, so the Ctrl-C below would never arrive.
CHAT_AS_IN_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('bot.cli', run_name='__main__', alter_sys=True)"
)


def test_bot_chat_shows_steps_as_lines_and_ctrl_c_stops_the_answer_not_the_program(tmp_path, sqlite_url):
    import os
    import signal
    import subprocess
    import sys
    import threading

    from tests.e2e.test_operations import REPO
    from tests.fakes.inference import FakeInference
    from tests.support.processes import INFERENCE_KEY, bot_env

    with FakeInference(api_key=INFERENCE_KEY) as inference:

        def responder(body):
            said = json.dumps(body["messages"][-1])
            if any(m.get("role") == "tool" for m in body["messages"]):
                return {"content": "It is 42."}
            if "6*7" not in said:
                return {"content": " ".join(f"word{n}" for n in range(400))}
            return {
                "content": "",
                "tool_calls": [{"id": "c1", "name": "calculate", "arguments": '{"expression": "6*7"}'}],
            }

        inference.responder = responder
        # The first request, the story, stalls after its first words until the test ends the stall.
        inference.hang_next(300, after_chunks=3)
        env = bot_env(sqlite_url, INFERENCE_URL=inference.url, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="")
        chat = subprocess.Popen(
            [sys.executable, "-c", CHAT_AS_IN_A_TERMINAL, "chat"],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        output: list[str] = []  # what the terminal shows, as it comes (answers stream without new lines)

        def read() -> None:
            while piece := os.read(chat.stdout.fileno(), 4096):
                output.append(piece.decode("utf-8", "replace"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        # Generous deadlines: they only bound a failure; a loaded machine may take long to start it.
        try:
            chat.stdin.write("tell me a story\n")
            chat.stdin.flush()
            assert wait_for(lambda: "word0" in "".join(output) or chat.poll() is not None, timeout=120)
            chat.send_signal(signal.SIGINT)  # Ctrl-C while the answer streams
            assert wait_for(lambda: "(stopped)" in "".join(output) or chat.poll() is not None, timeout=60)
            assert chat.poll() is None, "Ctrl-C ended the program"
            # The provider ends the stopped story now: its call is settled, so the limiter does not
            # hold the next question back waiting for that call's answer (its first-call probe).
            wait_for(inference.end_hangs, timeout=10)
            chat.stdin.write("what is 6*7?\n/exit\n")
            chat.stdin.flush()
            assert chat.wait(timeout=120) == 0
            reader.join(timeout=5)
        finally:
            if chat.poll() is None:
                chat.kill()
        text = "".join(output)
        assert "  … calculating 6*7\n" in text and "  ✓ calculating 6*7\n" in text, text
        assert "It is 42." in text
        assert len(inference.requests) == 3, text  # the story once (not retried), then the tool round


def test_waiting_says_what_happens_and_a_new_dm_thread_is_titled_from_its_question(fresh):
    dm = "D" + new_channel()[1:]
    fresh.inference.responder = _tool_then_answer("calculate", {"expression": "5*5"}, "25.")
    event = sr.message("*What* is 5*5, <@UBOT>?\nThanks", user="U1", channel=dm, channel_type="im")
    fresh.post_event(event)
    finished_replies(fresh, dm)
    # Agent sessions are renamed with agents.sessions.rename (Slack's agent surface, 2026).
    title = fresh.slack.wait_for_call("agents.sessions.rename", where=lambda c: c.params["channel_id"] == dm)
    assert title.ok and title.params == {"channel_id": dm, "thread_ts": event["ts"], "title": "What is 5*5?"}
    statuses = [c for c in fresh.slack.calls_to("assistant.threads.setStatus") if c.params["channel_id"] == dm]
    assert all(c.ok for c in statuses)
    loading = [c.params.get("loading_messages") for c in statuses]
    loading = [json.loads(m) if isinstance(m, str) else m for m in loading]
    assert loading[0][0] == "Thinking…"
    assert ["Calculating…", "Thinking…"] in loading  # while the tool ran
    # A follow-up in the same thread keeps its title.
    fresh.post_event(sr.message("and 6*6?", user="U1", channel=dm, channel_type="im", thread_ts=event["ts"]))
    finished_replies(fresh, dm, count=2)
    assert len([c for c in fresh.slack.calls_to("agents.sessions.rename") if c.params["channel_id"] == dm]) == 1
    assert not [c for c in fresh.slack.calls_to("assistant.threads.setTitle") if c.params["channel_id"] == dm]


def test_messages_a_search_finds_become_the_steps_sources(fresh):
    channel = new_channel()
    earlier = sr.app_mention("<@UBOT> we deploy on friday", channel=channel)
    fresh.post_event(earlier)
    finished_replies(fresh, channel)
    fresh.inference.responder = _tool_then_answer("search_messages", {"query": "deploy"}, "On Friday.")
    fresh.post_event(sr.app_mention("<@UBOT> when do we deploy?", channel=channel))
    finished_replies(fresh, channel, count=2)
    [reply] = [m for m in bot_messages(fresh, channel) if fresh.slack.tasks_of(channel, m["ts"])]
    [updates] = fresh.slack.tasks_of(channel, reply["ts"]).values()
    assert updates[0]["title"] == "Searching messages for 'deploy'"
    links = {source["url"] for source in updates[-1]["sources"]}
    assert f"https://test-workspace.slack.com/archives/{channel}/p{earlier['ts'].replace('.', '')}" in links


def test_a_failed_answer_also_moves_the_session_out_of_processing(fresh):
    channel = new_channel()
    fresh.inference.fail_next(400, body={"error": {"message": "prompt is too long", "type": "invalid_request_error"}})
    event = sr.app_mention("<@UBOT> this will be refused", channel=channel)
    fresh.post_event(event)
    [reply] = finished_replies(fresh, channel)
    assert "could not answer" in fresh.slack.text_of(channel, reply["ts"])
    assert fresh.slack.session_history(channel, event["ts"]) == ["processing", "active"]
    blocks = fresh.slack.message(channel, reply["ts"]).get("blocks") or []
    assert not [b for b in blocks if b["type"] == "context_actions"]  # no 👍/👎 on an apology
