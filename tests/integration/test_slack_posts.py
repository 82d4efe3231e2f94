"""What every bot post carries, against the fake Slack (which holds Slack's limits): no link
previews, and broadcast mentions neutralized before the text is split, so each part stays within
the 12,000-character markdown limit after."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.slack.clients import web_client
from bot.slack.replies import UpdatingReply
from bot.slack.response_url import response_payload
from tests.fakes.slack import DEFAULT_TOKEN, MAX_MARKDOWN_BLOCK_CHARS, FakeSlack


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack):
    settings = load_settings({"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url})
    return web_client(settings, DEFAULT_TOKEN)


def test_every_post_goes_without_link_previews(slack, client):
    client.chat_postMessage(channel="C1", text="see https://example.com/leak?data=secret")
    client.chat_postMessage(channel="C1", text="blocks too", blocks=[{"type": "markdown", "text": "hi"}])
    for call in slack.calls_to("chat.postMessage"):
        assert call.params["unfurl_links"] in (False, "false", "0") and call.params["unfurl_media"] in (
            False,
            "false",
            "0",
        )
    client.chat_postMessage(channel="C1", text="an explicit choice stays", unfurl_links=True)
    assert slack.calls_to("chat.postMessage")[-1].params["unfurl_links"] in (True, "true", "1")


def test_a_response_url_answer_goes_without_link_previews():
    payload = response_payload("https://example.com", public=True)
    assert payload["unfurl_links"] is False and payload["unfurl_media"] is False


def test_mentions_are_neutralized_before_splitting_so_every_part_fits(slack, client):
    # A bare "@here" becomes one character longer: split first, and a full part would overflow.
    text = ("@here " * 4000).strip()
    reply = UpdatingReply(client, channel="C1", thread_ts="1.000100")
    reply.append(text)
    posted = reply.finish()
    assert len(posted) >= 3
    for ts in posted:
        message = slack.message("C1", ts)
        assert sum(len(b["text"]) for b in message["blocks"] if b["type"] == "markdown") <= MAX_MARKDOWN_BLOCK_CHARS
        assert "@here" not in message["text"]  # "@\u2060here": shown, never a ping


def test_the_response_url_answer_is_cut_after_neutralizing():
    payload = response_payload("@here " * 3000, public=False)
    assert len(payload["blocks"][0]["text"]) <= 11_000
