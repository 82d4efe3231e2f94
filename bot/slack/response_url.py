"""Answering a slash command through its `response_url` (valid 30 minutes, up to 5 posts).

No token is sent: the URL itself is the credential, and it came in a request signed by Slack.
Still, answers go only to Slack's hosts (https, *.slack.com) or to SLACK_API_URL's host (a local
Slack stand-in), so a forged or mistaken URL cannot make the worker post elsewhere.
Errors: `ResponseUrlRefused` when Slack says no for good (expired or used up, 4xx), so the
caller stops; network errors and 5xx are raised as httpx errors, so the job is retried.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx

from bot.failures import user_sentence
from bot.queue.context import JobContext
from bot.queue.job_type import JobEvent, JobHandler
from bot.slack.mentions import neutralize_mentions

log = logging.getLogger(__name__)

# A markdown block holds 12,000 characters; leave room, and cut on a line when possible.
MAX_ANSWER_CHARS = 11_000
CUT_NOTE = "\n\n_(The answer was cut short.)_"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
QUEUED_NOTE = "_Queued: other requests are ahead of yours; I'll answer in a moment._"
FAILED_NOTE = "Sorry, that command failed. Please try again in a few minutes."


class ResponseUrlRefused(Exception):
    """Slack refused the post (4xx): the response_url expired or was used up. Retrying cannot help."""


def fit_answer(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """`text`, cut to `limit` characters (at a line break when one is near) with a note."""
    text = text.strip() or "Done."
    if len(text) <= limit:
        return text
    room = limit - len(CUT_NOTE)
    cut = text.rfind("\n", room // 2, room)
    return text[: cut if cut > 0 else room].rstrip() + CUT_NOTE


def response_payload(text: str, *, public: bool) -> dict:
    """The JSON body: visible to the channel when `public`, else only to the person who asked."""
    # No broadcast pings from model output, neutralized before the text is cut to the limit.
    answer = fit_answer(neutralize_mentions(text))
    return {
        "response_type": "in_channel" if public else "ephemeral",
        "text": answer,
        "blocks": [{"type": "markdown", "text": answer}],
        # No link previews: Slack would fetch a link the model wrote with no click (DESIGN-NOTES).
        "unfurl_links": False,
        "unfurl_media": False,
    }


def response_url_allowed(url: str, slack_api_url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    return bool(host) and parts.scheme in ("http", "https") and host == (urlsplit(slack_api_url).hostname or "")


def post_response(http: httpx.Client, url: str, text: str, *, public: bool, slack_api_url: str) -> None:
    if not response_url_allowed(url, slack_api_url):
        raise ResponseUrlRefused("the command's response_url is not a Slack address")
    response = http.post(url, json=response_payload(text, public=public), timeout=TIMEOUT)
    if 400 <= response.status_code < 500:
        raise ResponseUrlRefused(f"response_url answered HTTP {response.status_code}")
    response.raise_for_status()


class ResponseUrlAnswers(JobHandler):
    """What the slash-command jobs share: answering once through the response_url, and the hooks."""

    def __init__(self, http: httpx.Client, slack_api_url: str):
        self.http = http
        self.slack_api_url = slack_api_url

    def _post(self, url: str, text: str, public: bool) -> None:
        post_response(self.http, url, text, public=public, slack_api_url=self.slack_api_url)

    def answer(self, ctx: JobContext, text: str, public: bool) -> None:
        ctx.save_progress(answer={"text": text, "public": public})
        self.post_saved(ctx)

    def post_saved(self, ctx: JobContext) -> None:
        saved = ctx.progress["answer"]
        ctx.checkpoint()
        try:
            self._post(ctx.payload.response_url, saved["text"], saved["public"])
        except ResponseUrlRefused as exc:
            log.warning("command answer_refused id=%d reason=%s", ctx.job.id, exc)
        ctx.save_progress(done=True)

    def on_waiting(self, ctx: JobContext, event: JobEvent) -> None:
        if event.update:  # told once; a new position is not worth another ephemeral note
            return
        self._post(ctx.payload.response_url, QUEUED_NOTE, False)

    def on_dead(self, ctx: JobContext, event: JobEvent) -> None:
        if ctx.progress.get("done"):
            return
        try:
            self._post(ctx.payload.response_url, user_sentence(event.error, FAILED_NOTE), False)
        except (httpx.HTTPError, ResponseUrlRefused) as error:
            log.warning("command dead_notice_failed id=%d error=%s", ctx.job.id, type(error).__name__)
