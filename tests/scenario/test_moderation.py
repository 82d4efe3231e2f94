"""Image moderation end to end: signed events → the web app → `moderate` jobs → worker →
fake model (forced verdict function) → fake Slack (reactions, reports, deletions, ephemerals),
and moderators' button clicks as signed interactivity POSTs. On SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.db.engine import make_engine, make_session_factory
from bot.idempotency.models import IdempotencyKey
from bot.moderation.models import ModerationDecision
from bot.moderation.policy import VERDICT_FUNCTION
from bot.moderation.report import DISMISS_ACTION_ID, REMOVE_ACTION_ID
from bot.queue.models import Job
from tests.fakes.inference import echo_responder
from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

REPORTS = "CREPORTS"
ADMIN_TOKEN = "xoxp-admin-user-token"
ADMIN, MODERATOR, POSTER = "UADMIN", "UMOD", "UPOSTER"
# One watched channel per test, so tests never see each other's images.
WATCHED = {
    name: f"CMOD{number}"
    for number, name in enumerate(
        [
            "allow",
            "dismiss",
            "remove_click",
            "remove",
            "refused",
            "twice",
            "malformed",
            "retry",
            "unreadable",
            "bomb",
            "rejected",
            "stub",
            "off",
            "burst",
        ]
    )
}
BURST = 50


def base_env(**extra: str) -> dict[str, str]:
    return {
        "MODERATION_CHANNELS": ",".join(WATCHED.values()),
        "MODERATION_REPORT_CHANNEL": REPORTS,
        "WORKER_CONCURRENCY": "2",
        "WEB_CONCURRENCY": "1",
        "INFERENCE_MAX_REQUESTS_PER_MINUTE": "100000",
        "BOT_QUEUED_NOTICE_SECONDS": "60",
        **extra,
    }


def prepare(stack):
    stack.slack.add_user(POSTER, name="paula", real_name="Paula")
    stack.slack.add_user(MODERATOR, name="mo", real_name="Mo")
    stack.slack.add_user(ADMIN, name="ada", real_name="Ada", is_admin=True)
    return stack


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    stack = build_stack(
        request,
        tmp_path_factory,
        request.param,
        **base_env(SLACK_ADMIN_USER_TOKEN=ADMIN_TOKEN, MODERATION_ALLOW_REACTION="white_check_mark"),
    )
    stack.slack.add_token(ADMIN_TOKEN, user_id=ADMIN, is_admin=True)
    return prepare(stack)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tokenless(request, tmp_path_factory):
    """A stack without SLACK_ADMIN_USER_TOKEN: nothing can be deleted."""
    return prepare(build_stack(request, tmp_path_factory, request.param, **base_env()))


def reset(stack):
    stack.inference.responder = echo_responder
    stack.inference.latency_min = stack.inference.latency_max = 0.0
    return stack


@pytest.fixture
def fresh(stack):
    yield reset(stack)
    reset(stack)


@pytest.fixture
def fresh_tokenless(tokenless):
    yield reset(tokenless)


# -- helpers ------------------------------------------------------------------------------------

_sessions: dict[str, object] = {}


@pytest.fixture(scope="module", autouse=True)
def _dispose_engines():
    yield
    for factory in _sessions.values():
        factory.kw["bind"].dispose()
    _sessions.clear()


def sessions_for(stack):
    if stack.database_url not in _sessions:
        _sessions[stack.database_url] = make_session_factory(make_engine(stack.database_url))
    return _sessions[stack.database_url]


def decisions(stack, *file_ids: str) -> list[ModerationDecision]:
    with sessions_for(stack)() as session:
        rows = session.execute(
            select(ModerationDecision).where(ModerationDecision.file_id.in_(file_ids)).order_by(ModerationDecision.id)
        )
        return list(rows.scalars())


def decided(stack, file_id: str, *, settled: bool = True, timeout: float = 20.0) -> ModerationDecision:
    """The file's decision once stored and (with `settled`) acted on."""

    def find():
        rows = decisions(stack, file_id)
        return rows[0] if rows and (not settled or rows[0].action != "pending") else None

    found = wait_for(find, timeout=timeout)
    assert found, f"no decision for {file_id}; logs:\n{stack.logs()[-3000:]}"
    return found


def moderate_jobs(stack, *statuses: str) -> int:
    with sessions_for(stack)() as session:
        query = select(func.count()).select_from(Job).where(Job.kind == "moderate")
        if statuses:
            query = query.where(Job.status.in_(statuses))
        return session.execute(query).scalar_one()


def png(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def new_file(stack, *, mode: str = "ok", user: str = POSTER) -> dict:
    file_id = "F" + uuid.uuid4().hex[:10].upper()
    return stack.slack.add_file(
        file_id, png(), name=f"{file_id.lower()}.png", mimetype="image/png", mode=mode, user=user
    )


def post_image(stack, channel: str, file_object: dict, **kwargs) -> dict:
    event = sr.message("", user=POSTER, channel=channel, files=[file_object], **kwargs)
    response = stack.post_event(event)
    assert response.status_code == 200, response.text
    return event


def is_moderation(body) -> bool:
    tools = (body.get("tools") or []) if isinstance(body, dict) else []
    return [tool["function"]["name"] for tool in tools] == [VERDICT_FUNCTION]


def moderation_requests(stack) -> list[dict]:
    return [body for _, _, body in list(stack.inference.requests) if is_moderation(body)]


def verdict_model(verdict: str, categories=(), confidence: float = 0.9, reason: str = "Looks fine."):
    arguments = {"verdict": verdict, "categories": list(categories), "confidence": confidence, "reason": reason}

    def respond(body):
        if not is_moderation(body):
            return echo_responder(body)
        return {"content": "", "tool_calls": [{"name": VERDICT_FUNCTION, "arguments": json.dumps(arguments)}]}

    return respond


def report_for(stack, decision_id: int, timeout: float = 20.0) -> dict:
    def find():
        for message in stack.slack.messages_in(REPORTS):
            if f"Decision #{decision_id}" in json.dumps(message.get("blocks")):
                return message
        return None

    found = wait_for(find, timeout=timeout)
    assert found, f"no report for decision {decision_id}; logs:\n{stack.logs()[-3000:]}"
    return found


def buttons(message: dict) -> dict[str, str]:
    return {
        element["action_id"]: element["value"]
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for element in block["elements"]
    }


def click(stack, report: dict, action_id: str, *, user: str = MODERATOR):
    value = buttons(report)[action_id]
    payload = sr.block_actions(
        user=user,
        channel=REPORTS,
        channel_name="reports",
        message=report,
        action={
            "action_id": action_id,
            "block_id": f"moderation_{value}",
            "text": {"type": "plain_text", "text": "x"},
            "value": value,
            "type": "button",
        },
        response_url=stack.slack.response_url(uuid.uuid4().hex),
    )
    started = time.monotonic()
    response = stack.post_form(sr.interactivity_form(payload))
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3


def ephemerals_to(stack, user: str, channel: str) -> list[str]:
    return [
        str(call.params.get("text"))
        for call in stack.slack.calls_to("chat.postEphemeral")
        if call.params.get("user") == user and call.params.get("channel") == channel
    ]


def deletions_of(stack, file_id: str):
    return [call for call in stack.slack.calls_to("files.delete") if call.params.get("file") == file_id]


# -- verdicts -----------------------------------------------------------------------------------


def test_an_allowed_image_only_gets_the_reaction_and_the_audit_is_complete(fresh):
    fresh.inference.responder = verdict_model("allow", reason="A red rectangle.")
    file_object = new_file(fresh)
    event = post_image(fresh, WATCHED["allow"], file_object)
    decision = decided(fresh, file_object["id"])
    assert (decision.verdict, decision.action, decision.categories) == ("allow", "reacted", [])
    assert decision.confidence == pytest.approx(0.9) and decision.reason == "A red rectangle."
    assert decision.model == "claude-4-5-haiku" and decision.user_id == POSTER
    assert decision.prompt_tokens > 0 and decision.completion_tokens > 0
    assert (decision.channel_id, decision.message_ts) == (WATCHED["allow"], event["ts"])
    assert fresh.slack.wait_for(lambda: fresh.slack.reactions.get((WATCHED["allow"], event["ts"])), timeout=10) == [
        ("UBOT", "white_check_mark")
    ]
    body = moderation_requests(fresh)[-1]
    # Only documented fields: "required" with the single tool forces the verdict; deterministic.
    assert (body["tool_choice"], body["temperature"]) == ("required", 0)
    assert set(body) <= {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "temperature",
        "max_tokens",
        "stream",
        "stream_options",
    }
    assert "extended_thinking" not in body
    image = body["messages"][-1]["content"][-1]
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/png;base64,")
    wait_idle(fresh)
    assert not [m for m in fresh.slack.messages_in(REPORTS) if f"#{decision.id}" in json.dumps(m)]
    assert not ephemerals_to(fresh, POSTER, WATCHED["allow"])
    # Privacy: neither the image nor the model's reason reaches the logs.
    assert "A red rectangle" not in fresh.logs() and "base64" not in fresh.logs()


def test_a_flag_is_reported_and_a_dismiss_click_is_recorded(fresh):
    fresh.inference.responder = verdict_model("flag", ["personal data"], 0.7, "A card number may be visible.")
    file_object = new_file(fresh)
    post_image(fresh, WATCHED["dismiss"], file_object)
    decision = decided(fresh, file_object["id"])
    assert (decision.verdict, decision.action, decision.categories) == ("flag", "reported", ["personal data"])
    report = report_for(fresh, decision.id)
    text = json.dumps(report["blocks"])
    for part in (file_object["permalink"], f"<@{POSTER}>", "personal data", "A card number may be visible.", "70%"):
        assert part in text
    assert buttons(report) == {DISMISS_ACTION_ID: str(decision.id), REMOVE_ACTION_ID: str(decision.id)}
    assert (decision.report_channel, decision.report_ts) == (REPORTS, report["ts"])

    click(fresh, report, DISMISS_ACTION_ID)
    updated = fresh.slack.wait_for(
        lambda: (
            "Dismissed by" in json.dumps(fresh.slack.message(REPORTS, report["ts"]))
            and fresh.slack.message(REPORTS, report["ts"])
        ),
        timeout=20,
    )
    assert f"Dismissed by <@{MODERATOR}>" in json.dumps(updated["blocks"]) and buttons(updated) == {}
    [row] = decisions(fresh, file_object["id"])
    assert (row.override_action, row.overridden_by) == ("dismiss", MODERATOR) and row.overridden_at is not None
    assert deletions_of(fresh, file_object["id"]) == []


def test_a_flag_removed_by_a_moderator_is_deleted_with_the_admin_token(fresh):
    fresh.inference.responder = verdict_model("flag", ["scam"], 0.6, "Looks like a fake giveaway.")
    file_object = new_file(fresh)
    post_image(fresh, WATCHED["remove_click"], file_object)
    decision = decided(fresh, file_object["id"])
    report = report_for(fresh, decision.id)
    click(fresh, report, REMOVE_ACTION_ID)
    [deletion] = fresh.slack.wait_for(lambda: deletions_of(fresh, file_object["id"]), timeout=20)
    assert deletion.authorization == f"Bearer {ADMIN_TOKEN}" and deletion.ok
    fresh.slack.wait_for(lambda: "Removed by" in json.dumps(fresh.slack.message(REPORTS, report["ts"])), timeout=20)
    assert buttons(fresh.slack.message(REPORTS, report["ts"])) == {}
    [notice] = fresh.slack.wait_for(lambda: ephemerals_to(fresh, POSTER, WATCHED["remove_click"]), timeout=20)
    assert "A moderator removed your image" in notice and "fake giveaway" in notice
    [row] = decisions(fresh, file_object["id"])
    assert (row.action, row.override_action, row.overridden_by) == ("removed", "remove", MODERATOR)


def test_a_remove_verdict_deletes_the_file_tells_the_poster_and_reports_it(fresh):
    fresh.inference.responder = verdict_model("remove", ["graphic violence"], 0.97, "Shows a serious injury.")
    file_object = new_file(fresh)
    post_image(fresh, WATCHED["remove"], file_object)
    decision = decided(fresh, file_object["id"])
    assert (decision.verdict, decision.action) == ("remove", "removed")
    [deletion] = deletions_of(fresh, file_object["id"])
    assert deletion.authorization == f"Bearer {ADMIN_TOKEN}" and deletion.ok
    [notice] = fresh.slack.wait_for(lambda: ephemerals_to(fresh, POSTER, WATCHED["remove"]), timeout=10)
    assert "I removed your image" in notice and "graphic violence" in notice and "serious injury" in notice
    report = report_for(fresh, decision.id)
    assert "Image removed" in json.dumps(report["blocks"]) and buttons(report) == {}


def test_a_refused_deletion_falls_back_to_a_report_with_buttons_and_a_warning(fresh):
    fresh.inference.responder = verdict_model("remove", ["scam"], 0.9, "A phishing page.")
    fresh.slack.fail_next("files.delete", error="cant_delete_file")
    file_object = new_file(fresh)
    post_image(fresh, WATCHED["refused"], file_object)
    decision = decided(fresh, file_object["id"])
    assert (decision.verdict, decision.action) == ("remove", "warned")
    assert "cant_delete_file" in decision.action_detail
    report = report_for(fresh, decision.id)
    assert "cant_delete_file" in json.dumps(report["blocks"]) and set(buttons(report)) == {
        DISMISS_ACTION_ID,
        REMOVE_ACTION_ID,
    }
    [warning] = fresh.slack.wait_for(lambda: ephemerals_to(fresh, POSTER, WATCHED["refused"]), timeout=10)
    assert "Moderators have been told" in warning


def test_without_the_admin_token_a_remove_is_reported_and_the_button_says_what_is_missing(fresh_tokenless):
    stack = fresh_tokenless
    channel = WATCHED["remove"]
    stack.inference.responder = verdict_model("remove", ["hate symbols"], 0.95, "A hate symbol is shown.")
    file_object = new_file(stack)
    post_image(stack, channel, file_object)
    decision = decided(stack, file_object["id"])
    assert (decision.verdict, decision.action) == ("remove", "warned")
    [warning] = stack.slack.wait_for(lambda: ephemerals_to(stack, POSTER, channel), timeout=10)
    assert "Moderators have been told" in warning and "hate symbols" in warning
    report = report_for(stack, decision.id)
    assert "SLACK_ADMIN_USER_TOKEN" in json.dumps(report["blocks"])
    assert set(buttons(report)) == {DISMISS_ACTION_ID, REMOVE_ACTION_ID}

    click(stack, report, REMOVE_ACTION_ID)
    [missing] = stack.slack.wait_for(lambda: ephemerals_to(stack, MODERATOR, REPORTS), timeout=20)
    assert "Set SLACK_ADMIN_USER_TOKEN" in missing and "files:write" in missing
    stack.slack.wait_for(lambda: "not removed" in json.dumps(stack.slack.message(REPORTS, report["ts"])), timeout=20)
    assert set(buttons(stack.slack.message(REPORTS, report["ts"]))) == {DISMISS_ACTION_ID, REMOVE_ACTION_ID}
    assert stack.slack.calls_to("files.delete") == []
    [row] = decisions(stack, file_object["id"])
    assert (row.action, row.override_action, row.overridden_by) == ("warned", "remove", MODERATOR)


# -- which images, how often --------------------------------------------------------------------


def test_a_channel_that_is_not_watched_makes_no_request(fresh):
    fresh.inference.responder = verdict_model("flag")
    channel, file_object = new_channel(), new_file(fresh)
    jobs, requests = moderate_jobs(fresh), len(moderation_requests(fresh))
    event = post_image(fresh, channel, file_object)
    post_image(fresh, channel, new_file(fresh), thread_ts=event["ts"])
    # The web process records before it acknowledges: a job would exist by now.
    assert moderate_jobs(fresh) == jobs
    wait_idle(fresh)
    assert len(moderation_requests(fresh)) == requests
    assert decisions(fresh, file_object["id"]) == []
    assert not [d for d in fresh.slack.downloads if d.file_id == file_object["id"]]


def test_each_file_is_moderated_once_across_retries_twins_and_edits(fresh):
    fresh.inference.responder = verdict_model("allow")
    channel = WATCHED["twice"]
    first, added, reply_file = new_file(fresh), new_file(fresh), new_file(fresh)
    requests = len(moderation_requests(fresh))
    event = sr.message("", user=POSTER, channel=channel, files=[first])
    event_id = sr.new_event_id()
    assert fresh.post_event(event, event_id=event_id).status_code == 200
    assert fresh.post_event(event, event_id=event_id, retry_num=1).status_code == 200  # Slack's redelivery
    twin = sr.app_mention(f"<@UBOT> {uuid.uuid4().hex}", user=POSTER, channel=channel, ts=event["ts"], files=[first])
    assert fresh.post_event(twin).status_code == 200  # the app_mention of the same message
    edit = sr.message_changed(channel, event["ts"], "now with another picture", user=POSTER)
    edit["message"]["files"] = [first, added]
    assert fresh.post_event(edit).status_code == 200
    post_image(fresh, channel, reply_file, thread_ts=event["ts"])  # a thread reply
    for file_object in (first, added, reply_file):
        decided(fresh, file_object["id"])
    wait_idle(fresh)
    rows = decisions(fresh, first["id"], added["id"], reply_file["id"])
    assert sorted(row.file_id for row in rows) == sorted([first["id"], added["id"], reply_file["id"]])
    assert len(moderation_requests(fresh)) == requests + 3
    assert {row.message_ts for row in rows if row.file_id != reply_file["id"]} == {event["ts"]}
    assert moderate_jobs(fresh, "queued", "running") == 0
    with sessions_for(fresh)() as session:
        keys = session.execute(select(IdempotencyKey.key).where(IdempotencyKey.key.like("moderation:file:%"))).all()
    assert {f"moderation:file:{first['id']}", f"moderation:file:{added['id']}"} <= {key for (key,) in keys}


def test_a_malformed_answer_is_asked_again_then_flagged(fresh):
    fresh.inference.responder = lambda body: (
        {"content": "It looks fine to me."} if is_moderation(body) else (echo_responder(body))
    )
    file_object = new_file(fresh)
    requests = len(moderation_requests(fresh))
    post_image(fresh, WATCHED["malformed"], file_object)
    decision = decided(fresh, file_object["id"])
    assert len(moderation_requests(fresh)) == requests + 2
    assert (decision.verdict, decision.confidence, decision.action) == ("flag", None, "reported")
    assert "could not be read twice" in decision.reason and f"did not call {VERDICT_FUNCTION}" in decision.reason
    report_for(fresh, decision.id)


def test_one_malformed_answer_then_a_good_one_counts_both_calls(fresh):
    answers = iter(
        ["not json {", json.dumps({"verdict": "allow", "categories": [], "confidence": 0.8, "reason": "ok"})]
    )
    lock = threading.Lock()

    def respond(body):
        if not is_moderation(body):
            return echo_responder(body)
        with lock:
            arguments = next(answers)
        return {"tool_calls": [{"name": VERDICT_FUNCTION, "arguments": arguments}]}

    fresh.inference.responder = respond
    file_object = new_file(fresh)
    post_image(fresh, WATCHED["retry"], file_object)
    decision = decided(fresh, file_object["id"])
    assert (decision.verdict, decision.reason) == ("allow", "ok")
    first, second = moderation_requests(fresh)[-2:]
    assert first == second
    assert decision.prompt_tokens > 2 * 100  # both calls' prompts (an image and the policy each)


def test_an_image_that_cannot_be_read_is_flagged_without_a_model_call(fresh):
    file_object = new_file(fresh, mode="html")  # Slack's login page instead of the file
    requests = len(moderation_requests(fresh))
    post_image(fresh, WATCHED["unreadable"], file_object)
    decision = decided(fresh, file_object["id"])
    assert decision.verdict == "flag" and decision.model is None and decision.confidence is None
    assert decision.reason.startswith("could not be checked: Slack answered with a login page")
    assert len(moderation_requests(fresh)) == requests
    assert "needs a look" in json.dumps(report_for(fresh, decision.id)["blocks"])


def test_a_pixel_bomb_is_flagged_unchecked_from_its_header(fresh):
    from tests.integration.test_image_memory import png_bomb

    file_id = "F" + uuid.uuid4().hex[:10].upper()
    file_object = fresh.slack.add_file(
        file_id, png_bomb(7000, 7000), name="bomb.png", mimetype="image/png", user=POSTER
    )
    requests = len(moderation_requests(fresh))
    post_image(fresh, WATCHED["bomb"], file_object)
    decision = decided(fresh, file_object["id"])
    assert decision.verdict == "flag" and decision.model is None
    assert decision.reason.startswith("could not be checked: the image is too large (too many pixels: 7000x7000")
    assert len(moderation_requests(fresh)) == requests


def test_an_image_the_model_refuses_is_flagged_for_a_person(fresh):
    fresh.inference.fail_next(400, body={"error": {"message": "image too large", "type": "invalid_request_error"}})
    file_object = new_file(fresh)
    post_image(fresh, WATCHED["rejected"], file_object)
    decision = decided(fresh, file_object["id"])
    assert decision.verdict == "flag" and decision.confidence is None
    assert decision.reason.startswith("could not be checked: the model refused the request")
    assert "image too large" in decision.reason
    report_for(fresh, decision.id)


def test_a_slack_connect_stub_is_resolved_with_files_info(fresh):
    fresh.inference.responder = verdict_model("allow")
    file_object = new_file(fresh, mode="stub")
    assert "mimetype" not in file_object
    post_image(fresh, WATCHED["stub"], file_object)
    decision = decided(fresh, file_object["id"])
    assert decision.verdict == "allow" and decision.file_name == f"{file_object['id'].lower()}.png"
    assert [c for c in fresh.slack.calls_to("files.info") if c.params.get("file") == file_object["id"]]


# -- /moderation --------------------------------------------------------------------------------


def command(stack, text: str, *, user: str, channel: str) -> str:
    name = uuid.uuid4().hex
    form = sr.slash_command_form(
        "/moderation", text, user_id=user, channel_id=channel, response_url=stack.slack.response_url(name)
    )
    assert stack.post_form(form).status_code == 200
    posts = wait_for(lambda: stack.slack.responses_to(name), timeout=20)
    assert posts, f"no answer to /moderation {text}; logs:\n{stack.logs()[-3000:]}"
    return posts[-1].body["text"]


def test_admins_switch_channels_on_and_off_and_see_recent_decisions(fresh):
    fresh.inference.responder = verdict_model("allow")
    watched, unwatched = WATCHED["off"], new_channel()
    assert command(fresh, "off", user=POSTER, channel=watched) == "Only workspace admins can use /moderation."

    assert "now *off*" in command(fresh, "off", user=ADMIN, channel=watched)
    jobs = moderate_jobs(fresh)
    post_image(fresh, watched, new_file(fresh))
    assert moderate_jobs(fresh) == jobs  # the stored switch beats MODERATION_CHANNELS

    answer = command(fresh, "on", user=ADMIN, channel=unwatched)
    assert "now *on*" in answer and "switched on with /moderation" in answer
    file_object = new_file(fresh)
    post_image(fresh, unwatched, file_object)
    decision = decided(fresh, file_object["id"])

    status = command(fresh, "", user=ADMIN, channel=unwatched)
    assert f"#{decision.id}" in status and f"<@{POSTER}>" in status and "images checked" in status
    assert f"Reports go to <#{REPORTS}>" in status


# -- fairness -----------------------------------------------------------------------------------


def test_a_mention_is_answered_before_a_burst_of_images_is_moderated(fresh):
    fresh.inference.responder = verdict_model("allow")
    fresh.inference.latency_min = fresh.inference.latency_max = 0.2
    channel = WATCHED["burst"]
    files = [new_file(fresh) for _ in range(BURST)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # a burst, as when people paste screenshots at once
        list(pool.map(lambda file_object: post_image(fresh, channel, file_object), files))
    mention_channel = new_channel()
    fresh.post_event(sr.app_mention("<@UBOT> are you there?", channel=mention_channel))
    assert wait_for(lambda: fresh.slack.bot_messages(mention_channel), timeout=20), fresh.logs()[-3000:]
    pending = moderate_jobs(fresh, "queued", "running")
    assert pending >= BURST // 2, f"only {pending} of {BURST} moderation jobs were still waiting"
    fresh.inference.latency_min = fresh.inference.latency_max = 0.0  # the rest need not be slow
    wait_idle(fresh, timeout=60)
    assert len(decisions(fresh, *[f["id"] for f in files])) == BURST
