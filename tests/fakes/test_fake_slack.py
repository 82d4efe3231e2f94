"""The fake Slack speaks to the real slack_sdk WebClient, and the request helpers sign like Slack."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack, next_ts
from tests.support import slack_requests

SECRET = "test-signing-secret"


@pytest.fixture(scope="module")
def running_slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack(running_slack: FakeSlack) -> FakeSlack:
    running_slack.reset()
    return running_slack


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url, timeout=5)


class RecordingServer:
    """A bare local server that records what arrives (plays the bot's web process, or a foreign file host)."""

    def __init__(self, answer: bytes = b"foreign"):
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answer = answer
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append((self.command, self.path, dict(self.headers.items()), raw))
                self.send_response(200)
                self.send_header("Content-Length", str(len(recorder.answer)))
                self.end_headers()
                self.wfile.write(recorder.answer)

            do_GET = do_POST = _record

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> RecordingServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- messages ---


def test_post_and_update_round_trip(slack: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="thinking…", thread_ts="1700000000.000001")
    second = client.chat_postMessage(channel="C1", text="another")
    assert first["ok"] and first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["bot_id"] == "BBOT" and first["message"]["user"] == "UBOT"

    blocks = [{"type": "markdown", "text": "**done**"}]
    updated = client.chat_update(channel="C1", ts=first["ts"], text="done", blocks=blocks)

    assert updated["ts"] == first["ts"]
    stored = slack.message("C1", first["ts"])
    assert stored is not None
    assert (stored["text"], stored["blocks"], stored["thread_ts"]) == ("done", blocks, "1700000000.000001")
    assert slack.text_of("C1", second["ts"]) == "another"
    post = slack.calls_to("chat.postMessage")[0]
    assert post.params["text"] == "thinking…"
    assert post.authorization == f"Bearer {DEFAULT_TOKEN}"
    assert [call.method for call in slack.calls] == ["chat.postMessage", "chat.postMessage", "chat.update"]


def test_form_encoded_calls_are_parsed_like_json_ones(slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    answer = httpx.post(
        f"{slack.api_url}chat.postMessage",
        data={"channel": "C9", "text": "hi", "blocks": json.dumps(blocks), "token": DEFAULT_TOKEN},
    ).json()
    assert answer["ok"]
    assert slack.message("C9", answer["ts"])["blocks"] == blocks
    assert "token" not in slack.calls_to("chat.postMessage")[0].params


def test_update_and_delete_of_unknown_or_foreign_messages(slack: FakeSlack, client: WebClient) -> None:
    slack.add_thread("C1", "1700000000.000001", [{"user": "U1", "text": "a user's message"}])
    attempts = (
        (lambda: client.chat_update(channel="C1", ts="1.000000", text="x"), "message_not_found"),
        (lambda: client.chat_update(channel="C1", ts="1700000000.000001", text="x"), "cant_update_message"),
        (lambda: client.chat_delete(channel="C1", ts="1700000000.000001"), "cant_delete_message"),
    )
    for attempt, error in attempts:
        with pytest.raises(SlackApiError) as raised:
            attempt()
        assert raised.value.response["error"] == error

    slack.add_token("xoxp-admin", user_id="UADMIN", is_admin=True)
    WebClient(token="xoxp-admin", base_url=slack.api_url).chat_delete(channel="C1", ts="1700000000.000001")
    assert slack.message("C1", "1700000000.000001") is None


def test_message_limits_are_enforced(slack: FakeSlack, client: WebClient) -> None:
    cases = {
        "msg_too_long": {"text": "x" * 40_001},
        "invalid_blocks": {"text": "t", "blocks": [{"type": "markdown", "text": "y" * 12_001}]},
    }
    for error, arguments in cases.items():
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="C1", **arguments)
        assert raised.value.response["error"] == error
    assert client.chat_postMessage(channel="C1", text="x" * 40_000)["ok"]


# --- streaming ---


def test_chat_stream_round_trip(slack: FakeSlack, client: WebClient) -> None:
    streamer = client.chat_stream(
        channel="C1",
        thread_ts="1700000000.000001",
        recipient_team_id="T1",
        recipient_user_id="U1",
        buffer_size=5,
    )
    pieces = ["Hello", ", wor", "ld! ", "Bye."]
    for piece in pieces:
        streamer.append(markdown_text=piece)
    streamer.stop(markdown_text=" (end)")

    assert streamer.ts is not None
    assert slack.text_of("C1", streamer.ts) == "".join(pieces) + " (end)"
    assert slack.stream_state("C1", streamer.ts) == "stopped"
    methods = [call.method for call in slack.calls]
    assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"
    assert "chat.appendStream" in methods

    with pytest.raises(SlackApiError) as raised:
        client.chat_appendStream(channel="C1", ts=streamer.ts, markdown_text="late")
    assert raised.value.response["error"] == "message_not_in_streaming_state"


def test_stream_rules(slack: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.chat_startStream(channel="C1", thread_ts="1700000000.000001")
    assert raised.value.response["error"] == "missing_recipient_team_id"

    started = client.chat_startStream(channel="D1", thread_ts="1700000000.000001", markdown_text="a")
    slack.expire_stream("D1", started["ts"])
    with pytest.raises(SlackApiError) as raised:
        client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="b")
    assert raised.value.response["error"] == "message_not_in_streaming_state"
    # The bot's fallback: chat.update on the same ts.
    client.chat_update(channel="D1", ts=started["ts"], text="a b")
    assert slack.text_of("D1", started["ts"]) == "a b"

    slack.streaming_enabled = False
    try:
        with pytest.raises(SlackApiError) as raised:
            client.chat_startStream(channel="D1", thread_ts="1700000000.000001")
        assert raised.value.response["error"] == "unknown_method"
    finally:
        slack.streaming_enabled = True


# --- threads, users, misc methods ---


def test_conversations_replies_paginates_with_cursors(slack: FakeSlack, client: WebClient) -> None:
    parent_ts = next_ts()
    seeded = slack.add_thread("C1", parent_ts, [f"message {n}" for n in range(5)])
    reply = client.chat_postMessage(channel="C1", thread_ts=parent_ts, text="bot reply")

    pages, cursor = [], None
    while True:
        page = client.conversations_replies(channel="C1", ts=parent_ts, limit=2, cursor=cursor)
        pages.append([message["ts"] for message in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break

    assert pages == [[m["ts"] for m in seeded[:2]], [m["ts"] for m in seeded[2:4]], [seeded[4]["ts"], reply["ts"]]]
    iterated = [
        m["text"]
        for page in client.conversations_replies(channel="C1", ts=parent_ts, limit=4)
        for m in page["messages"]
    ]
    assert iterated == [f"message {n}" for n in range(5)] + ["bot reply"]
    assert client.conversations_replies(channel="C1", ts=parent_ts)["messages"][0]["reply_count"] == 5

    for arguments, error in (({"ts": "1.000001"}, "thread_not_found"), ({"ts": parent_ts, "cursor": "zz"}, None)):
        with pytest.raises(SlackApiError) as raised:
            client.conversations_replies(channel="C1", **arguments)
        assert raised.value.response["error"] == (error or "invalid_cursor")


def test_identity_users_and_small_methods(slack: FakeSlack, client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T1", "UBOT", "BBOT")
    slack.add_user("U7", name="ada", real_name="Ada Lovelace", is_admin=True, tz="Europe/London")
    user = client.users_info(user="U7")["user"]
    assert (user["real_name"], user["is_admin"], user["is_bot"], user["tz"]) == (
        "Ada Lovelace",
        True,
        False,
        "Europe/London",
    )
    with pytest.raises(SlackApiError) as raised:
        client.users_info(user="U404")
    assert raised.value.response["error"] == "user_not_found"

    client.reactions_add(channel="C1", timestamp="1700000000.000001", name="eyes")
    with pytest.raises(SlackApiError) as raised:
        client.reactions_add(channel="C1", timestamp="1700000000.000001", name="eyes")
    assert raised.value.response["error"] == "already_reacted"
    client.assistant_threads_setStatus(channel_id="D1", thread_ts="1700000000.000001", status="is thinking…")
    assert slack.calls_to("assistant.threads.setStatus")[0].params["status"] == "is thinking…"
    assert client.chat_postEphemeral(channel="C1", user="U7", text="only you")["message_ts"]
    assert client.team_info()["team"]["id"] == "T1"
    assert client.conversations_info(channel="D5")["channel"]["is_im"] is True
    assert "UBOT" in client.conversations_members(channel="C1")["members"]
    with pytest.raises(SlackApiError) as raised:
        client.api_call("admin.teams.create")
    assert raised.value.response["error"] == "unknown_method"


def test_oauth_v2_access_exchanges_a_code_once(slack: FakeSlack, client: WebClient) -> None:
    slack.add_oauth_code("code-1", access_token="xoxb-t2", team_id="T2", bot_user_id="UBOT2", bot_id="BBOT2")
    anonymous = WebClient(base_url=slack.api_url)
    answer = anonymous.oauth_v2_access(client_id="111.222", client_secret="s3cret", code="code-1")
    assert (answer["access_token"], answer["team"]["id"], answer["bot_user_id"]) == ("xoxb-t2", "T2", "UBOT2")
    assert answer["enterprise"] is None and answer["authed_user"]["id"] == "U2"
    installed = WebClient(token="xoxb-t2", base_url=slack.api_url).auth_test()
    assert (installed["team_id"], installed["bot_id"]) == ("T2", "BBOT2")
    with pytest.raises(SlackApiError) as raised:
        anonymous.oauth_v2_access(client_id="111.222", client_secret="s3cret", code="code-1")
    assert raised.value.response["error"] == "code_already_used"


# --- authentication and faults ---


def test_tokens_are_checked(slack: FakeSlack) -> None:
    for token, error in (("xoxb-wrong", "invalid_auth"), (None, "not_authed")):
        with pytest.raises(SlackApiError) as raised:
            WebClient(token=token, base_url=slack.api_url).chat_postMessage(channel="C1", text="hi")
        assert raised.value.response["error"] == error
    assert slack.messages == {}


def test_rate_limit_is_retried_after_retry_after(slack: FakeSlack) -> None:
    client = WebClient(
        token=DEFAULT_TOKEN, base_url=slack.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    answer = client.chat_postMessage(channel="C1", text="patience")

    assert answer["ok"] and slack.text_of("C1", answer["ts"]) == "patience"
    refused, accepted = slack.calls_to("chat.postMessage")
    assert (refused.status, refused.response["error"], accepted.status) == (429, "ratelimited", 200)
    assert accepted.time - refused.time >= 1.0


def test_faults_without_retry_handler(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="hi")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"

    slack.fail_next("*", error="channel_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="C1", text="hi")
        assert raised.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]


def test_delay_next_makes_a_call_slow(slack: FakeSlack) -> None:
    slack.delay_next("auth.test", 1.0)
    impatient = WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url, timeout=0.2, retry_handlers=[])
    with pytest.raises(TimeoutError):
        impatient.auth_test()
    assert WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url).auth_test()["ok"]


def test_wait_for_sees_calls_from_another_thread(slack: FakeSlack, client: WebClient) -> None:
    worker = threading.Thread(target=lambda: client.chat_postMessage(channel="C2", text="from a worker"))
    worker.start()
    call = slack.wait_for_call("chat.postMessage", where=lambda c: c.params["channel"] == "C2")
    worker.join(timeout=5)
    assert call.params["text"] == "from a worker"
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        slack.wait_for(lambda: slack.calls_to("chat.delete"), timeout=0.05)


# --- files ---


def test_file_download_with_and_without_token(slack: FakeSlack, client: WebClient) -> None:
    content = b"\x89PNG\r\n\x1a\nfake image bytes"
    file = slack.add_file("F1", content, name="cat.png", mimetype="image/png")
    assert (file["filetype"], file["size"]) == ("png", len(content))
    assert file["url_private_download"].startswith(f"{slack.base_url}/files-pri/T1-F1/")

    with_token = httpx.get(file["url_private_download"], headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    without_token = httpx.get(file["url_private"])

    assert (with_token.status_code, with_token.content) == (200, content)
    assert with_token.headers["content-type"] == "image/png"
    assert without_token.status_code == 200 and without_token.headers["content-type"].startswith("text/html")
    wrong_token = httpx.get(file["url_private"], headers={"Authorization": "Bearer xoxb-revoked"})
    assert b"Sign in" in wrong_token.content and content not in wrong_token.content
    assert [d.authorization for d in slack.downloads] == [f"Bearer {DEFAULT_TOKEN}", None, "Bearer xoxb-revoked"]

    html_only = slack.add_file("F2", content, name="no-scope.png", mimetype="image/png", mode="html")
    refused = httpx.get(html_only["url_private"], headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    assert refused.status_code == 200 and b"Sign in" in refused.content


def test_file_redirects_stubs_and_delete(slack: FakeSlack, client: WebClient) -> None:
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    redirected = slack.add_file("F3", b"moved", name="a.txt", mimetype="text/plain", mode="redirect")
    first_hop = httpx.get(redirected["url_private"], headers=auth)
    assert first_hop.status_code == 302 and first_hop.headers["location"].startswith(slack.base_url)
    assert httpx.get(first_hop.headers["location"], headers=auth).content == b"moved"
    assert b"Sign in" in httpx.get(first_hop.headers["location"]).content

    with RecordingServer(answer=b"foreign bytes") as foreign:
        away = slack.add_file(
            "F4", b"x", name="b.txt", mimetype="text/plain", mode="redirect_foreign", redirect_to=f"{foreign.url}/f"
        )
        followed = httpx.get(away["url_private"], headers=auth, follow_redirects=True)
        assert followed.content == b"foreign bytes"
        # httpx drops Authorization on a cross-origin redirect; the foreign host must not see the token.
        assert "authorization" not in {name.lower() for name in foreign.requests[0][2]}

    stub = slack.add_file("F5", b"shared", name="c.txt", mimetype="text/plain", mode="stub")
    assert stub["file_access"] == "check_file_info" and "url_private" not in stub
    full = client.files_info(file="F5")["file"]
    assert httpx.get(full["url_private_download"], headers=auth).content == b"shared"

    with pytest.raises(SlackApiError) as raised:
        client.files_delete(file="F5")
    assert raised.value.response["error"] == "cant_delete_file"
    own = slack.add_file("F6", b"mine", name="d.txt", mimetype="text/plain", user="UBOT")
    client.files_delete(file="F6")
    assert httpx.get(own["url_private"], headers=auth).status_code == 404
    with pytest.raises(SlackApiError) as raised:
        client.files_info(file="F6")
    assert raised.value.response["error"] == "file_deleted"


def test_response_url_records_posts(slack: FakeSlack) -> None:
    url = slack.response_url("weather-1")
    assert httpx.post(url, json={"response_type": "ephemeral", "text": "12°C"}).status_code == 200
    assert [post.body["text"] for post in slack.responses_to("weather-1")] == ["12°C"]
    assert slack.responses_to("other") == []


# --- signed requests ---


def test_signed_headers_verify_and_tampering_fails() -> None:
    body = json.dumps(slack_requests.event_callback(slack_requests.app_mention("<@UBOT> hi")))
    headers = slack_requests.signed_headers(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body.encode(), headers)
    assert not verifier.is_valid(body + " ", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    stale = slack_requests.signed_headers(SECRET, body, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, stale)


def test_post_signed_sends_what_slack_sends() -> None:
    mention = slack_requests.app_mention("<@UBOT> summarise", thread_ts="1700000000.000001")
    envelope = slack_requests.event_callback(mention)
    form = slack_requests.slash_command_form("/weather", "Berlin now", response_url="http://127.0.0.1:1/r")
    verifier = SignatureVerifier(SECRET)
    with RecordingServer(answer=b"") as bot:
        slack_requests.post_signed(f"{bot.url}/slack/events", envelope, SECRET, retry_num=1)
        slack_requests.post_signed(f"{bot.url}/slack/commands", form, SECRET)

    (_, _, event_headers, event_raw), (_, _, form_headers, form_raw) = bot.requests
    for headers, raw in ((event_headers, event_raw), (form_headers, form_raw)):
        assert verifier.is_valid_request(raw, headers)
    assert event_headers["Content-Type"] == "application/json"
    assert (event_headers["X-Slack-Retry-Num"], event_headers["X-Slack-Retry-Reason"]) == ("1", "http_timeout")
    assert json.loads(event_raw) == envelope
    assert form_headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-Slack-Retry-Num" not in form_headers
    fields = {key: values[0] for key, values in parse_qs(form_raw.decode()).items()}
    assert (fields["command"], fields["text"], fields["user_id"]) == ("/weather", "Berlin now", "U1")


def test_event_builders_are_realistic() -> None:
    first = slack_requests.app_mention("<@UBOT> hi")
    second = slack_requests.message("hello", user="U2", channel="D1", channel_type="im")
    envelopes = [slack_requests.event_callback(first), slack_requests.event_callback(second)]
    assert float(second["ts"]) > float(first["ts"])
    assert envelopes[0]["event_id"] != envelopes[1]["event_id"]
    assert envelopes[0]["authorizations"][0] == {
        "enterprise_id": None,
        "team_id": "T1",
        "user_id": "UBOT",
        "is_bot": True,
        "is_enterprise_install": False,
    }
    assert first["blocks"][0]["elements"][0]["elements"][0] == {"type": "user", "user_id": "UBOT"}

    shared = slack_requests.message("look", user="U1", channel="C1", files=[{"id": "F1"}])
    assert shared["subtype"] == "file_share"
    changed = slack_requests.message_changed("C1", first["ts"], "edited")
    assert (changed["subtype"], changed["message"]["ts"], changed["message"]["text"]) == (
        "message_changed",
        first["ts"],
        "edited",
    )
    deleted = slack_requests.message_deleted("C1", first["ts"])
    assert (deleted["subtype"], deleted["deleted_ts"]) == ("message_deleted", first["ts"])
    payload = {"type": "block_actions", "actions": [{"action_id": "retry"}]}
    assert json.loads(parse_qs(slack_requests.interactivity_form(payload))["payload"][0]) == payload


def test_seeding_and_reading_helpers(slack: FakeSlack, client: WebClient) -> None:
    parent_ts = next_ts()
    slack.add_thread("C3", parent_ts, ["question"])
    mention = slack.add_message("C3", {"user": "U2", "text": "<@UBOT> answer?"}, thread_ts=parent_ts)
    [more] = slack.add_thread("C3", parent_ts, ["more context"])  # the parent exists: a reply
    reply = client.chat_postMessage(channel="C3", thread_ts=parent_ts, text="answer")

    thread = client.conversations_replies(channel="C3", ts=parent_ts)["messages"]
    assert [m["text"] for m in thread] == ["question", "<@UBOT> answer?", "more context", "answer"]
    assert {m["thread_ts"] for m in thread} == {parent_ts}
    assert (mention["user"], more["user"]) == ("U2", "U1")
    assert [m["ts"] for m in slack.messages_in("C3")] == [m["ts"] for m in thread]
    assert [m["ts"] for m in slack.bot_messages("C3")] == [reply["ts"]]


# --- the agent surface: chunks, sessions, Stop, feedback blocks -------------------------------------


def _error(call) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response["error"]


def test_task_and_plan_chunks_from_slack_sdk_models_are_accepted_and_kept(slack: FakeSlack, client: WebClient) -> None:
    from slack_sdk.models.messages.chunk import MarkdownTextChunk, PlanUpdateChunk, TaskUpdateChunk

    stream = client.chat_stream(channel="D1", thread_ts="1.0", task_display_mode="plan", buffer_size=1000)
    stream.append(markdown_text="Looking. ")
    stream.append(
        chunks=[PlanUpdateChunk(title="Two steps"), TaskUpdateChunk(id="t1", title="Search", status="in_progress")]
    )
    stream.append(
        chunks=[
            TaskUpdateChunk(
                id="t1",
                title="Search",
                status="complete",
                output="3 found",
                sources=[{"type": "url", "url": "https://e.example/a", "text": "a"}],
            ),
            MarkdownTextChunk(text="Done."),
        ]
    )
    stream.stop(session_status="active")
    assert slack.text_of("D1", stream.ts) == "Looking. Done."
    assert [c["type"] for c in slack.chunks_of("D1", stream.ts)] == [
        "markdown_text",
        "plan_update",
        "task_update",
        "task_update",
        "markdown_text",
    ]
    assert [u["status"] for u in slack.tasks_of("D1", stream.ts)["t1"]] == ["in_progress", "complete"]
    assert slack.session_status("D1", "1.0") == "active"


@pytest.mark.parametrize(
    "chunk",
    [
        {"type": "task_update", "id": "t1", "title": "x", "status": "done"},
        {"type": "task_update", "id": "t1", "status": "complete"},
        {"type": "task_update", "title": "x", "status": "complete"},
        {"type": "task_update", "id": "t1", "title": "x", "status": "complete", "sources": [{"url": "https://e"}]},
        {"type": "task_update", "id": "t1", "title": "x", "status": "complete", "colour": "red"},
        {"type": "plan_update"},
        {"type": "markdown_text"},
        {"type": "thinking", "text": "x"},
        {"text": "no type"},
    ],
)
def test_chunks_outside_the_documented_shapes_are_refused(slack: FakeSlack, client: WebClient, chunk) -> None:
    ts = client.chat_startStream(channel="D1", thread_ts="1.0")["ts"]
    assert _error(lambda: client.chat_appendStream(channel="D1", ts=ts, chunks=[chunk])) == "invalid_chunks"


def test_stream_display_mode_and_session_statuses_are_checked(slack: FakeSlack, client: WebClient) -> None:
    assert _error(lambda: client.chat_startStream(channel="D1", thread_ts="1.0", task_display_mode="grid")) == (
        "invalid_arguments"
    )
    assert _error(lambda: client.agents_sessions_setStatus(channel_id="D1", thread_ts="1.0", status="done")) == (
        "invalid_arguments"
    )
    assert _error(lambda: client.api_call("agents.sessions.setStatus", json={"channel_id": "D1"})) == (
        "invalid_arguments"
    )
    ts = client.chat_startStream(channel="D1", thread_ts="1.0")["ts"]
    assert _error(lambda: client.chat_stopStream(channel="D1", ts=ts, session_status="stopped")) == "invalid_arguments"
    assert slack.stream_state("D1", ts) == "streaming"  # a refused stop leaves the stream open


def test_pressing_stop_ends_the_threads_streams_but_not_the_session(slack: FakeSlack, client: WebClient) -> None:
    client.agents_sessions_setStatus(channel_id="D1", thread_ts="1.0", status="processing")
    mine = client.chat_startStream(channel="D1", thread_ts="1.0")["ts"]
    other = client.chat_startStream(channel="D1", thread_ts="2.0")["ts"]
    assert slack.press_stop("D1", "1.0") == [mine]
    assert slack.stream_state("D1", mine) == "stopped" and slack.stream_state("D1", other) == "streaming"
    assert slack.session_status("D1", "1.0") == "processing"
    assert _error(lambda: client.chat_appendStream(channel="D1", ts=mine, markdown_text="more")) == (
        "message_not_in_streaming_state"
    )
    client.agents_sessions_setStatus(channel_id="D1", thread_ts="1.0", status="active")
    assert slack.session_history("D1", "1.0") == ["processing", "active"]


def test_loading_messages_and_titles(slack: FakeSlack, client: WebClient) -> None:
    client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.0", status="is thinking…", loading_messages=["a"])
    too_many = [f"m{n}" for n in range(11)]
    assert _error(
        lambda: client.assistant_threads_setStatus(
            channel_id="D1", thread_ts="1.0", status="x", loading_messages=too_many
        )
    ) == ("invalid_arguments")
    client.assistant_threads_setTitle(channel_id="D1", thread_ts="1.0", title="A title")
    assert _error(lambda: client.assistant_threads_setTitle(channel_id="D1", thread_ts="1.0", title="")) == (
        "invalid_arguments"
    )


def test_feedback_blocks_are_checked(slack: FakeSlack, client: WebClient) -> None:
    from bot.agent.feedback import Trace
    from bot.agent.render import feedback_block

    good = feedback_block(Trace(model="m")).to_dict()
    client.chat_postMessage(channel="C1", text="answer", blocks=[good])
    bad_value = json.loads(json.dumps(good))
    bad_value["elements"][0]["positive_button"]["value"] = ""
    empty = {"type": "context_actions", "elements": []}
    wrong = {"type": "context_actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x"}}]}
    for blocks in ([bad_value], [empty], [wrong]):
        assert _error(lambda b=blocks: client.chat_postMessage(channel="C1", text="x", blocks=b)) == "invalid_blocks"


def _modal(**changes) -> dict:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Settings"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "b1",
                "label": {"type": "plain_text", "text": "Tools"},
                "element": {"type": "plain_text_input", "action_id": "tools"},
            }
        ],
    }
    view.update(changes)
    return view


def test_views_open_takes_a_fresh_trigger_once_and_checks_the_view(slack: FakeSlack, client: WebClient) -> None:
    def refused(call, **kwargs) -> str:
        with pytest.raises(SlackApiError) as raised:
            call(**kwargs)
        return raised.value.response["error"]

    assert refused(client.views_open, trigger_id="1.2.unknown", view=_modal()) == "invalid_trigger_id"
    trigger = slack.new_trigger_id()
    too_long = _modal(title={"type": "plain_text", "text": "x" * 25})
    assert refused(client.views_open, trigger_id=trigger, view=too_long) == "invalid_arguments"
    no_submit = {key: value for key, value in _modal().items() if key != "submit"}
    assert refused(client.views_open, trigger_id=trigger, view=no_submit) == "invalid_arguments"
    opened = client.views_open(trigger_id=trigger, view=_modal())["view"]
    assert refused(client.views_open, trigger_id=trigger, view=_modal()) == "exchanged_trigger_id"
    stale = slack.new_trigger_id()
    with slack._lock:
        issued, used = slack._triggers[stale]
        slack._triggers[stale] = (issued - 3.5, used)  # issued 3.5 s ago
    assert refused(client.views_open, trigger_id=stale, view=_modal()) == "expired_trigger_id"

    assert refused(client.views_update, view_id=opened["id"], hash="0.0", view=_modal()) == "hash_conflict"
    assert refused(client.views_update, view_id="VNOPE", view=_modal()) == "not_found"
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal(callback_id="x"))["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert slack.view(opened["id"])["callback_id"] == "x"

    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    assert refused(client.views_publish, user_id="U1", view=_modal()) == "invalid_arguments"  # not a home view
    assert refused(client.views_publish, user_id="U1", view={**home, "blocks": home["blocks"] * 101}) == (
        "invalid_arguments"
    )
    client.views_publish(user_id="U1", view=home)
    assert slack.home_of("U1")["blocks"] == home["blocks"]
