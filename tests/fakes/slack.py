"""A local, real-HTTP fake of Slack: the Web API, a private file host and response_url endpoints.

Point slack_sdk at it with ``WebClient(token="xoxb-test-token", base_url=fake.api_url)``::

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.calls_to("chat.postMessage")[0].params["text"] == "hi"

Paths on the one server:
  ``POST|GET /api/<method>``                 Web API (form, multipart or JSON body; query string too)
  ``GET /files-pri/<team>-<file>/[download/]<name>``  private file downloads (see :meth:`FakeSlack.add_file`)
  ``GET /files-origin/<team>-<file>/<name>`` where ``mode="redirect"`` downloads are sent
  ``POST /response/<name>``                  slash-command ``response_url`` (:meth:`FakeSlack.response_url`)

What each request goes through, in order: the configured latency (``latency=``: seconds per Web API
call, or per method), optional delay (:meth:`delay_next`), the per-channel posting limit
(``post_limit_per_channel=``: chat.postMessage calls per channel per second, beyond which Slack
answers 429 with ``Retry-After``), injected fault
(:meth:`fail_next`), authentication (Bearer header or ``token`` parameter; ``not_authed`` /
``invalid_auth``), then the method. Like Slack, API errors are HTTP 200 with ``{"ok": false, "error": ...}``;
only rate limits (429 + ``Retry-After``) and injected 5xx use other statuses.

Views: ``views.open`` takes a trigger_id from :meth:`FakeSlack.new_trigger_id` once, within 3 seconds
(``invalid_trigger_id`` / ``exchanged_trigger_id`` / ``expired_trigger_id``); ``views.update`` takes exactly
one of ``view_id``/``external_id`` and refuses a stale ``hash`` (``hash_conflict``); ``views.publish`` keeps
each person's Home tab (:meth:`FakeSlack.home_of`); every view is checked against the view and Block Kit
limits (:func:`check_view`, ``invalid_arguments`` with a json-pointer).

Streaming chunks are checked as Slack documents them (``markdown_text`` with ``text``;
``task_update`` with ``id``, ``title`` and a ``status`` of pending|in_progress|complete|error, optional
``details``/``output`` strings and ``sources`` of ``{"type": "url", "url", "text"}``; ``plan_update`` with
``title``; ``blocks``), ``task_display_mode`` is timeline|plan, and a bad one is ``invalid_chunks`` /
``invalid_arguments``; each stream's chunks are kept (:meth:`FakeSlack.chunks_of`, :meth:`FakeSlack.tasks_of`).
Agent sessions: ``agents.sessions.setStatus`` and ``chat.stopStream``'s ``session_status`` take
processing|active|suspended|closed and are recorded per thread (:meth:`FakeSlack.session_status`);
:meth:`FakeSlack.press_stop` is a person clicking the native Stop button. ``context_actions`` blocks take
1 to 5 ``feedback_buttons``/``icon_button`` elements with the documented button fields.

The fake holds Slack's limits that the bot must respect: ``text`` over 40,000 characters is
``msg_too_long``; more than 50 blocks, a section text over 3,000 characters or markdown blocks over
12,000 characters in total are ``invalid_blocks``; streaming into a channel (C…/G…) without
``recipient_team_id``/``recipient_user_id`` is ``missing_recipient_*``; bots may delete only their own
messages and files (an admin's user token, see :meth:`add_token`, may delete any).

Readings where Slack's documentation says more than a lenient fake would show, each a switch (off by
default; DESIGN-NOTES, Slack):

* ``streams_stored_as_blocks``: a finished stream is stored as blocks (its text as a ``markdown``
  block, then the blocks ``chat.stopStream`` sent). ``chat.update`` always keeps blocks it was not
  sent ("If you don't include this field, the message's previous blocks will be retained"), so a
  text-only update of such a message changes nothing a person sees: read it with
  :meth:`FakeSlack.visible_text`.
* ``enforce_membership``: posting into a channel the bot is not a member of (see ``add_channel``'s
  ``members``) fails with ``not_in_channel``, as it does without ``chat:write.public``;
  ``conversations.info`` still succeeds there (with ``is_member: false``).
* ``replies_throttle``: ``conversations.replies`` as for a commercially distributed app outside the
  Marketplace since 2025-05-29: at most 15 messages a call and 1 call a minute
  (``replies_max_per_call``, ``replies_interval``); a faster call is a 429 with ``Retry-After``.

``ts`` values come from :func:`next_ts`, shared with ``tests.support.slack_requests``: they follow the
wall clock and never repeat, so a bot reply always sorts after the user message it answers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

T = TypeVar("T")

DEFAULT_TOKEN = "xoxb-test-token"
MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT_CHARS = 3_000
MAX_MARKDOWN_BLOCK_CHARS = 12_000  # all markdown blocks of one message together
MAX_STREAM_TEXT_CHARS = 12_000  # markdown_text of one stream call
# Form-encoded calls carry these as JSON strings; decode them so params look the same either way.
JSON_FIELDS = frozenset({"blocks", "attachments", "chunks", "metadata", "unfurls", "user_auth_blocks"})
NO_AUTH_METHODS = frozenset({"oauth.v2.access", "api.test"})
STREAM_METHODS = frozenset({"chat.startStream", "chat.appendStream", "chat.stopStream"})
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
TASK_DISPLAY_MODES = frozenset({"timeline", "plan"})
SESSION_STATUSES = frozenset({"processing", "active", "suspended", "closed"})
MAX_LOADING_MESSAGES = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_ACTIONS_ELEMENTS = 5
MAX_FEEDBACK_TEXT_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2000
DEFAULT_REPLIES_LIMIT = 1000
# Views (docs.slack.dev/reference/views, /reference/methods/views.open): a trigger_id is good for
# 3 seconds and one use; a view holds at most 100 blocks; a modal's title, submit and close texts
# at most 24 characters; private_metadata 3000, callback_id and external_id 255; Block Kit's own
# limits below (section text 3000, input label 2000, plain_text_input 3000, an option's text 75 and
# value 150, at most 100 options, a button's text 75 and value 2000, an action_id or block_id 255).
TRIGGER_SECONDS = 3.0
MAX_VIEW_BLOCKS = 100
MAX_VIEW_TITLE_CHARS = 24
MAX_PRIVATE_METADATA_CHARS = 3000
MAX_ID_CHARS = 255
MAX_INPUT_LABEL_CHARS = 2000
MAX_PLAIN_TEXT_INPUT_CHARS = 3000
MAX_OPTION_TEXT_CHARS = 75
MAX_OPTION_VALUE_CHARS = 150
MAX_OPTIONS = 100
MAX_BUTTON_TEXT_CHARS = 75
BLOCK_TYPES = frozenset(
    {"section", "divider", "header", "context", "actions", "input", "image", "rich_text", "markdown"}
)
INPUT_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "static_select",
        "multi_static_select",
        "conversations_select",
        "channels_select",
        "users_select",
        "checkboxes",
        "radio_buttons",
        "number_input",
    }
)

LOGIN_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Slack</title></head>'
    b'<body><h1>Sign in to your workspace</h1><form action="/signin" method="post">'
    b'<input type="email" name="email"></form></body></html>'
)

_FILETYPES = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "gif": "gif", "webp": "webp", "pdf": "pdf", "txt": "text"}


# --- ts values -------------------------------------------------------------------------------------

_ts_lock = threading.Lock()
_last_ts_micros = 0


def next_ts() -> str:
    """A Slack ts ("1700000000.000100" style) from the wall clock, unique and increasing in this process."""
    global _last_ts_micros
    with _ts_lock:
        _last_ts_micros = max(time.time_ns() // 1000, _last_ts_micros + 1)
        micros = _last_ts_micros
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


# --- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One Web API request as the fake saw it (recorded after it was answered)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]  # as sent, names in the sender's case
    time: float  # time.monotonic() when the request arrived
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def authorization(self) -> str | None:
        return _header(self.headers, "Authorization")


@dataclass(frozen=True)
class Download:
    """One GET on the file host."""

    path: str
    file_id: str | None
    authorization: str | None  # the Authorization header it carried, if any
    status: int
    time: float


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url."""

    name: str
    body: Any  # parsed JSON, or the raw text when it was not JSON
    headers: dict[str, str]
    time: float


@dataclass(frozen=True)
class Identity:
    """Who a token speaks for. Bot tokens have a bot_id; user tokens do not."""

    team_id: str
    team_name: str
    user_id: str
    bot_id: str | None
    is_admin: bool = False
    enterprise_id: str | None = None


@dataclass
class _HostedFile:
    file_id: str
    content: bytes
    info: dict[str, Any]
    mode: str
    redirect_to: str | None
    deleted: bool = False


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: int | None
    error: str | None


class SlackError(Exception):
    """An ``{"ok": false, "error": ...}`` answer, raised inside method handlers."""

    def __init__(self, error: str, **extra: Any):
        super().__init__(error)
        self.error = error
        self.extra = extra


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _encode_cursor(ts: str) -> str:
    # Slack's cursors look like base64("next_ts:1512085861000543").
    return base64.b64encode(f"next_ts:{ts.replace('.', '')}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise SlackError("invalid_cursor") from error
    prefix, _, digits = text.partition(":")
    if prefix != "next_ts" or not digits.isdigit() or len(digits) < 7:
        raise SlackError("invalid_cursor")
    return int(digits[:-6]), int(digits[-6:])


def parse_api_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """Parameters of a Web API request body, whichever encoding the client chose."""
    kind = content_type.split(";")[0].strip().lower()
    if not raw:
        return {}
    if kind == "application/json":
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise SlackError("invalid_json") from error
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        return body
    if kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        if not message.is_multipart():
            raise SlackError("invalid_form_data")
        params: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True) or b""
            params[name] = payload if part.get_filename() else payload.decode("utf-8", "replace")
        return _decode_json_fields(params)
    if kind in ("application/x-www-form-urlencoded", "text/plain", ""):
        try:
            pairs = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError) as error:
            raise SlackError("invalid_form_data") from error
        return _decode_json_fields({key: values[-1] for key, values in pairs.items()})
    raise SlackError("invalid_post_type")


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    for name in JSON_FIELDS & params.keys():
        value = params[name]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                params[name] = json.loads(value)
            except ValueError as error:
                raise SlackError(f"invalid_{name}_format" if name == "blocks" else "invalid_arguments") from error
    return params


def _markdown_chunks_text(chunks: Any) -> str:
    if not isinstance(chunks, list):
        return ""
    return "".join(
        str(chunk.get("text", ""))
        for chunk in chunks
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text"
    )


WORD_BLOCKS = frozenset({"markdown", "section", "header", "context", "rich_text"})


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "markdown":
        return str(block.get("text") or "")
    if kind in ("section", "header"):
        return str((block.get("text") or {}).get("text") or "")
    if kind == "context":
        return " ".join(str(e.get("text") or "") for e in block.get("elements") or [] if isinstance(e, dict))
    if kind == "rich_text":
        return json.dumps(block.get("elements"))
    return ""


def _bad(error: str, message: str) -> SlackError:
    return SlackError(error, response_metadata={"messages": [f"[ERROR] {message}"]})


def check_chunks(chunks: Any) -> list[dict[str, Any]]:
    """Streaming chunks as Slack documents them (raises SlackError ``invalid_chunks``)."""
    if chunks is None:
        return []
    if not isinstance(chunks, list):
        raise _bad("invalid_chunks", "chunks must be an array")
    for index, chunk in enumerate(chunks):
        where = f"[json-pointer:/chunks/{index}]"
        if not isinstance(chunk, dict) or not isinstance(chunk.get("type"), str):
            raise _bad("invalid_chunks", f"a chunk must be an object with a type {where}")
        kind = chunk["type"]
        if kind == "markdown_text":
            allowed, required = {"type", "text"}, ("text",)
        elif kind == "task_update":
            allowed = {"type", "id", "title", "status", "details", "output", "sources"}
            required = ("id", "title", "status")
        elif kind == "plan_update":
            allowed, required = {"type", "title"}, ("title",)
        elif kind == "blocks":
            allowed, required = {"type", "blocks"}, ("blocks",)
        else:
            raise _bad("invalid_chunks", f"unknown chunk type {kind!r} {where}")
        unknown = set(chunk) - allowed
        if unknown:
            raise _bad("invalid_chunks", f"unknown fields {sorted(unknown)} {where}")
        for name in required:
            if chunk.get(name) in (None, "") and not (kind == "markdown_text" and chunk.get(name) == ""):
                raise _bad("invalid_chunks", f"missing {name!r} {where}")
        if kind in ("markdown_text", "plan_update") or kind == "task_update":
            for name in ("text", "title", "id", "details", "output"):
                if name in chunk and chunk[name] is not None and not isinstance(chunk[name], str):
                    raise _bad("invalid_chunks", f"{name!r} must be a string {where}")
        if kind == "markdown_text" and len(chunk["text"]) > MAX_STREAM_TEXT_CHARS:
            raise SlackError("msg_too_long")
        if kind == "task_update":
            if chunk["status"] not in TASK_STATUSES:
                raise _bad("invalid_chunks", f"status must be one of {sorted(TASK_STATUSES)} {where}")
            sources = chunk.get("sources")
            if sources is not None:
                if not isinstance(sources, list):
                    raise _bad("invalid_chunks", f"sources must be an array {where}")
                for source in sources:
                    if (
                        not isinstance(source, dict)
                        or source.get("type") != "url"
                        or not str(source.get("url", "")).startswith(("http://", "https://"))
                        or not source.get("text")
                        or set(source) - {"type", "url", "text"}
                    ):
                        raise _bad("invalid_chunks", f"a source is {{type: url, url, text}} {where}")
        if kind == "blocks":
            check_message_limits(None, chunk["blocks"])
    return chunks


def _plain_text(value: Any, limit: int) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "plain_text"
        and isinstance(value.get("text"), str)
        and 0 < len(value["text"]) <= limit
    )


def _check_context_actions(block: dict[str, Any], index: int) -> None:
    elements = block.get("elements")
    where = f"[json-pointer:/blocks/{index}/elements]"
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ACTIONS_ELEMENTS:
        raise _bad("invalid_blocks", f"context_actions takes 1 to 5 elements {where}")
    for element in elements:
        kind = element.get("type") if isinstance(element, dict) else None
        if kind == "feedback_buttons":
            for side in ("positive_button", "negative_button"):
                button = element.get(side)
                if (
                    not isinstance(button, dict)
                    or not _plain_text(button.get("text"), MAX_FEEDBACK_TEXT_CHARS)
                    or not isinstance(button.get("value"), str)
                    or not 0 < len(button["value"]) <= MAX_BUTTON_VALUE_CHARS
                ):
                    raise _bad("invalid_blocks", f"{side} needs plain_text text and a value {where}")
        elif kind == "icon_button":
            if not element.get("icon") or not _plain_text(element.get("text"), MAX_FEEDBACK_TEXT_CHARS):
                raise _bad("invalid_blocks", f"icon_button needs icon and text {where}")
        else:
            raise _bad("invalid_blocks", f"context_actions takes feedback_buttons or icon_button {where}")


def check_message_limits(text: Any, blocks: Any) -> None:
    """Slack's size limits for a posted or updated message (raises SlackError)."""
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        raise SlackError("msg_too_long")
    if blocks is None:
        return
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise SlackError("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks", response_metadata={"messages": ["[ERROR] no more than 50 items allowed"]})
    markdown_chars = 0
    for index, block in enumerate(blocks):
        if block.get("type") == "section":
            section_text = (block.get("text") or {}).get("text", "")
            if len(section_text) > MAX_SECTION_TEXT_CHARS:
                message = f"[ERROR] must be less than 3001 characters [json-pointer:/blocks/{index}/text/text]"
                raise SlackError("invalid_blocks", response_metadata={"messages": [message]})
        elif block.get("type") == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                raise _bad("invalid_blocks", f"context takes 1 to 10 elements [json-pointer:/blocks/{index}]")
            for element in elements:
                if not isinstance(element, dict) or element.get("type") not in ("mrkdwn", "plain_text", "image"):
                    raise _bad("invalid_blocks", f"bad context element [json-pointer:/blocks/{index}]")
                if element.get("type") != "image" and len(str(element.get("text", ""))) > MAX_SECTION_TEXT_CHARS:
                    raise _bad("invalid_blocks", f"context text over 3000 characters [json-pointer:/blocks/{index}]")
        elif block.get("type") == "context_actions":
            _check_context_actions(block, index)
        elif block.get("type") == "markdown":
            markdown_chars += len(block.get("text", ""))
    if markdown_chars > MAX_MARKDOWN_BLOCK_CHARS:
        message = "[ERROR] markdown blocks must not exceed 12000 characters in total"
        raise SlackError("invalid_blocks", response_metadata={"messages": [message]})


# --- the fake --------------------------------------------------------------------------------------


def _view_error(message: str, pointer: str) -> SlackError:
    return _bad("invalid_arguments", f"{message} [json-pointer:/view{pointer}]")


def _check_plain(value: Any, limit: int, pointer: str, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not _plain_text(value, limit):
        raise _view_error(f"must be a plain_text object of 1 to {limit} characters", pointer)


def _check_element(element: Any, pointer: str) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        raise _view_error("an element must be an object with a type", pointer)
    kind = element["type"]
    if len(str(element.get("action_id", ""))) > MAX_ID_CHARS:
        raise _view_error("action_id is too long", f"{pointer}/action_id")
    if kind == "button":
        _check_plain(element.get("text"), MAX_BUTTON_TEXT_CHARS, f"{pointer}/text")
        if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE_CHARS:
            raise _view_error("value is too long", f"{pointer}/value")
    elif kind == "plain_text_input":
        limit = element.get("max_length", MAX_PLAIN_TEXT_INPUT_CHARS)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PLAIN_TEXT_INPUT_CHARS:
            raise _view_error(f"max_length must be 1 to {MAX_PLAIN_TEXT_INPUT_CHARS}", f"{pointer}/max_length")
        if len(str(element.get("initial_value", ""))) > limit:
            raise _view_error("initial_value is longer than max_length", f"{pointer}/initial_value")
        _check_plain(element.get("placeholder"), 150, f"{pointer}/placeholder", required=False)
    elif kind in ("static_select", "multi_static_select"):
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
            raise _view_error(f"options must hold 1 to {MAX_OPTIONS} options", f"{pointer}/options")
        for index, option in enumerate(options):
            where = f"{pointer}/options/{index}"
            if not isinstance(option, dict):
                raise _view_error("an option must be an object", where)
            _check_plain(option.get("text"), MAX_OPTION_TEXT_CHARS, f"{where}/text")
            if not isinstance(option.get("value"), str) or not 0 < len(option["value"]) <= MAX_OPTION_VALUE_CHARS:
                raise _view_error("an option's value is 1 to 150 characters", f"{where}/value")
        if "initial_option" in element and element["initial_option"] not in options:
            raise _view_error("initial_option must be one of options", f"{pointer}/initial_option")
    elif kind not in INPUT_ELEMENTS and kind not in ("image", "overflow", "datepicker"):
        raise _view_error(f"unknown element type {kind!r}", f"{pointer}/type")


def check_view(view: Any, kind: str) -> None:
    """A view object as Slack's reference describes a modal or a Home tab (raises SlackError)."""
    if not isinstance(view, dict):
        raise _bad("invalid_arguments", "view must be a JSON object")
    if view.get("type") != kind:
        raise _view_error(f"type must be {kind}", "/type")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        raise _view_error(f"blocks must be an array of at most {MAX_VIEW_BLOCKS}", "/blocks")
    if len(str(view.get("private_metadata", ""))) > MAX_PRIVATE_METADATA_CHARS:
        raise _view_error("private_metadata is too long", "/private_metadata")
    for name in ("callback_id", "external_id"):
        if len(str(view.get(name, ""))) > MAX_ID_CHARS:
            raise _view_error(f"{name} is too long", f"/{name}")
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if kind == "modal":
        _check_plain(view.get("title"), MAX_VIEW_TITLE_CHARS, "/title")
        _check_plain(view.get("submit"), MAX_VIEW_TITLE_CHARS, "/submit", required=has_input)
        _check_plain(view.get("close"), MAX_VIEW_TITLE_CHARS, "/close", required=False)
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"/blocks/{index}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            raise _view_error("unknown block type", where)
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= MAX_ID_CHARS or block_id in block_ids:
                raise _view_error("block_id must be unique and at most 255 characters", f"{where}/block_id")
            block_ids.add(block_id)
        kind_of = block["type"]
        if kind_of == "section":
            text = block.get("text")
            if not isinstance(text, dict) or not 0 < len(str(text.get("text", ""))) <= MAX_SECTION_TEXT_CHARS:
                raise _view_error("a section's text is 1 to 3000 characters", f"{where}/text")
            if "accessory" in block:
                _check_element(block["accessory"], f"{where}/accessory")
        elif kind_of == "header":
            _check_plain(block.get("text"), 150, f"{where}/text")
        elif kind_of == "input":
            _check_plain(block.get("label"), MAX_INPUT_LABEL_CHARS, f"{where}/label")
            _check_plain(block.get("hint"), MAX_INPUT_LABEL_CHARS, f"{where}/hint", required=False)
            element = block.get("element")
            if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
                raise _view_error("an input block needs an input element", f"{where}/element")
            _check_element(element, f"{where}/element")
        elif kind_of == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                raise _view_error("actions take 1 to 25 elements", f"{where}/elements")
            for position, element in enumerate(elements):
                _check_element(element, f"{where}/elements/{position}")
        elif kind_of == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                raise _view_error("context takes 1 to 10 elements", f"{where}/elements")


class FakeSlack:
    """Slack's Web API, file host and response_url endpoints on 127.0.0.1 (see the module docstring).

    State you read: ``calls``, ``messages`` (channel -> ts -> message dict), ``downloads``, ``responses``,
    ``reactions``, ``homes`` (views.publish). State you fill: ``users`` (id -> partial user dict),
    ``add_thread``, ``add_file``, ``add_channel``, ``add_token``, ``add_oauth_code``. All of it is
    guarded by one lock; read through the accessor methods (which copy) when the bot may be writing at the same time.
    """

    def __init__(
        self,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        *,
        team_id: str = "T1",
        team_name: str = "Test Workspace",
        team_domain: str = "test-workspace",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = "A1",
        streaming_enabled: bool = True,
        client_id: str | None = None,
        client_secret: str | None = None,
        latency: float | dict[str, float] = 0.0,
        post_limit_per_channel: int | None = None,
    ):
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.streaming_enabled = streaming_enabled
        self.client_id = client_id  # None: oauth.v2.access accepts any client credentials
        self.client_secret = client_secret
        # Socket Mode: apps.connections.open answers this websocket URL (None: unknown_method).
        self.socket_mode_url: str | None = None
        # Seconds every Web API call takes (a dict: per method, "*" for the others).
        self.latency = latency
        # chat.postMessage calls allowed per channel in any second (None: no limit); refused: 429.
        self.post_limit_per_channel = post_limit_per_channel
        self.rate_limited_posts = 0
        # The readings (module docstring): off by default.
        self.streams_stored_as_blocks = False
        self.enforce_membership = False
        self.replies_throttle = False
        self.replies_max_per_call = 15
        self.replies_interval = 60.0
        self._replies_last: dict[str, float] = {}  # token -> monotonic time of the last accepted call
        self.throttled_replies = 0
        self._posts: dict[str, deque[float]] = {}  # channel -> arrival of accepted chat.postMessage

        self._lock = threading.RLock()
        self._identities: dict[str, Identity] = {}
        for token in tokens:
            self.add_token(token)
        self.users: dict[str, dict[str, Any]] = {
            bot_user_id: {"name": "bot", "real_name": "Bot", "is_bot": True, "tz": "UTC"}
        }
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.reactions: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (channel, ts) -> [(user, name)]
        self.calls: list[Call] = []
        self.downloads: list[Download] = []
        self.responses: list[ResponsePost] = []
        self._streams: dict[tuple[str, str], str] = {}  # (channel, ts) -> "streaming" | "stopped"
        self._stream_chunks: dict[tuple[str, str], list[dict[str, Any]]] = {}  # every chunk, in order
        self._sessions: dict[tuple[str, str], list[str]] = {}  # (channel, thread_ts) -> statuses set
        self._files: dict[str, _HostedFile] = {}
        self._oauth_codes: dict[str, dict[str, Any]] = {}
        self._used_oauth_codes: set[str] = set()
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._triggers: dict[str, tuple[float, bool]] = {}  # trigger_id -> (issued, used)
        self._views: dict[str, dict[str, Any]] = {}  # view id -> the view as Slack keeps it
        self.homes: dict[str, dict[str, Any]] = {}  # user id -> their published Home tab
        self._view_serial = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> FakeSlack:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """The Web API base, ending with "/api/": pass it as ``WebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    # --- configuration ---

    @property
    def valid_tokens(self) -> set[str]:
        with self._lock:
            return set(self._identities)

    def add_token(
        self,
        token: str,
        *,
        team_id: str | None = None,
        team_name: str | None = None,
        user_id: str | None = None,
        bot_id: str | None = None,
        is_admin: bool = False,
        enterprise_id: str | None = None,
    ) -> Identity:
        """Accept `token`. Defaults to this workspace's bot; ``xoxp-`` tokens default to a user token (no bot_id)."""
        is_user_token = token.startswith("xoxp-")
        identity = Identity(
            team_id=team_id or self.team_id,
            team_name=team_name or self.team_name,
            user_id=user_id or ("U1" if is_user_token else self.bot_user_id),
            bot_id=None if is_user_token else (bot_id or self.bot_id),
            is_admin=is_admin,
            enterprise_id=enterprise_id,
        )
        with self._lock:
            self._identities[token] = identity
        return identity

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._identities.pop(token, None)

    def add_user(self, user_id: str, **info: Any) -> None:
        """Shorthand for ``users[user_id] = info`` (name, real_name, is_admin, is_bot, tz, team_id...)."""
        with self._lock:
            self.users[user_id] = dict(info)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        members: Iterable[str] = (),
        is_private: bool | None = None,
        user: str | None = None,
        is_archived: bool = False,
    ) -> None:
        """``user``: for a direct message (a ``D…`` id), the person at the other end. ``members``
        without the bot's user makes a channel the bot is not in (see ``enforce_membership``)."""
        with self._lock:
            self.channels[channel_id] = {
                "name": name,
                "members": list(members),
                "is_private": is_private,
                "user": user,
                "is_archived": is_archived,
            }

    def add_thread(self, channel: str, thread_ts: str, messages: Iterable[dict[str, Any] | str]) -> list[dict]:
        """Seed a thread: the first message is the parent (ts=thread_ts), the others replies with fresh ts.

        If the parent already exists, every message given is a reply. A message is a dict (``user``,
        ``text``, optional ``ts``, ``bot_id``, ``files``...) or just its text (from "U1"). Returns the
        stored messages in order.
        """
        stored = []
        with self._lock:
            has_parent = thread_ts in self.messages.get(channel, {})
            for message in messages:
                stored.append(
                    self.add_message(channel, message, ts=None if has_parent else thread_ts, thread_ts=thread_ts)
                )
                has_parent = True
        return stored

    def add_message(
        self, channel: str, message: dict[str, Any] | str, *, ts: str | None = None, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """Seed one message someone posted (default user "U1"; a fresh ts unless given or in the dict).

        E.g. the user message an event is about, so conversations.replies includes it. Returns a copy.
        """
        entry = {"text": message} if isinstance(message, str) else dict(message)
        entry.setdefault("type", "message")
        entry.setdefault("user", "U1")
        entry.setdefault("ts", ts or next_ts())
        if thread_ts and entry["ts"] != thread_ts:
            entry.setdefault("thread_ts", thread_ts)
        with self._lock:
            self.messages.setdefault(channel, {})[entry["ts"]] = entry
        return dict(entry)

    def add_oauth_code(
        self,
        code: str,
        *,
        access_token: str = "xoxb-installed-token",
        team_id: str = "T2",
        team_name: str = "Second Workspace",
        bot_user_id: str = "UBOT2",
        bot_id: str = "BBOT2",
        scope: str = "app_mentions:read,chat:write,commands,files:read,im:history,reactions:write,users:read",
        authed_user_id: str = "U2",
        enterprise: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Make `code` exchangeable (once) by oauth.v2.access; the token it yields then works for the API."""
        answer = {
            "ok": True,
            "access_token": access_token,
            "token_type": "bot",
            "scope": scope,
            "bot_user_id": bot_user_id,
            "app_id": self.app_id,
            "team": {"id": team_id, "name": team_name},
            "enterprise": enterprise,
            "is_enterprise_install": False,
            "authed_user": {"id": authed_user_id},
        }
        with self._lock:
            self._oauth_codes[code] = {"answer": answer, "bot_id": bot_id}
        return answer

    def add_file(
        self,
        file_id: str,
        content: bytes,
        *,
        name: str,
        mimetype: str,
        filetype: str | None = None,
        mode: str = "ok",
        redirect_to: str | None = None,
        user: str = "U1",
        title: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Host a file and return the file object an event would carry.

        Download behaviour by mode: "ok" (needs the Bearer token, else the HTML login page), "html"
        (always the login page, as without files:read), "redirect" (302 to /files-origin/ on this host,
        which needs the token), "redirect_foreign" (302 to `redirect_to`), "stub" (downloads like "ok",
        but the returned object is a Slack Connect stub: ``file_access: "check_file_info"``; files.info
        has the full object).
        """
        if mode not in ("ok", "html", "redirect", "redirect_foreign", "stub"):
            raise ValueError(f"unknown file mode {mode!r}")
        if mode == "redirect_foreign" and not redirect_to:
            raise ValueError("mode='redirect_foreign' needs redirect_to")
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        filetype = filetype or _FILETYPES.get(extension, extension or "binary")
        created = int(time.time())
        path_prefix = f"{self.base_url}/files-pri/{self.team_id}-{file_id}"
        quoted_name = quote(name)
        info = {
            "id": file_id,
            "created": created,
            "timestamp": created,
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{path_prefix}/{quoted_name}",
            "url_private_download": f"{path_prefix}/download/{quoted_name}",
            "permalink": f"{self.base_url}/files/{user}/{file_id}/{quoted_name}",
            "permalink_public": f"{self.base_url}/{self.team_id}-{file_id}-public",
            "has_rich_preview": False,
            "file_access": "visible",
            **(extra or {}),
        }
        with self._lock:
            self._files[file_id] = _HostedFile(file_id, content, info, mode, redirect_to)
        if mode == "stub":
            return {
                "id": file_id,
                "mode": "hosted",
                "file_access": "check_file_info",
                "created": created,
                "timestamp": created,
                "user": user,
            }
        return dict(info)

    def response_url(self, name: str) -> str:
        """A response_url for a slash command; POSTs to it land in ``responses`` under `name`."""
        return f"{self.base_url}/response/{quote(name, safe='')}"

    # --- fault injection ---

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` calls to `method` ("*": any method) fail, once `after` more calls
        to it have succeeded.

        With `error`: HTTP 200 ``{"ok": false, "error": error}``. Otherwise HTTP `status` (429 carries
        ``Retry-After: retry_after`` and error "ratelimited", as Slack sends).
        """
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            queue.extend([None] * after)  # calls let through before the faults
            queue.extend(_Fault(status, retry_after, error) for _ in range(times))

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls to `method` ("*": any method) are answered `seconds` late."""
        with self._lock:
            self._delays.setdefault(method, deque()).extend([seconds] * times)

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a stream as Slack does when it times out: later appends get message_not_in_streaming_state."""
        with self._lock:
            self._streams[(channel, ts)] = "stopped"
            self._stored_as_blocks(channel, ts)

    def _stored_as_blocks(self, channel: str, ts: str) -> None:
        """With ``streams_stored_as_blocks``: a stream Slack ended keeps its text as a block."""
        message = self.messages.get(channel, {}).get(ts)
        if self.streams_stored_as_blocks and message is not None and not message.get("blocks"):
            if message.get("text", "").strip():
                message["blocks"] = [{"type": "markdown", "text": message["text"]}]

    # --- reading what happened ---

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def all_calls(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current state of a message (after every update/append), or None."""
        with self._lock:
            found = self.messages.get(channel, {}).get(ts)
            return json.loads(json.dumps(found)) if found is not None else None

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        """Copies of every message in `channel`, oldest first."""
        with self._lock:
            found = sorted(self.messages.get(channel, {}).values(), key=lambda m: _ts_key(m["ts"]))
            return json.loads(json.dumps(found))

    def bot_messages(self, channel: str) -> list[dict[str, Any]]:
        """Copies of the messages apps posted in `channel` (they carry a bot_id), oldest first."""
        return [m for m in self.messages_in(channel) if m.get("bot_id")]

    def text_of(self, channel: str, ts: str) -> str:
        found = self.message(channel, ts)
        if found is None:
            raise KeyError(f"no message {channel}/{ts}")
        return found.get("text", "")

    def visible_text(self, channel: str, ts: str) -> str:
        """What a person sees of a message: its blocks' text when it has blocks (Slack shows
        those, not ``text``), else its ``text``."""
        found = self.message(channel, ts)
        if found is None:
            raise KeyError(f"no message {channel}/{ts}")
        blocks = [block for block in found.get("blocks") or [] if block.get("type") in WORD_BLOCKS]
        if not blocks:  # no block carries words (e.g. only feedback buttons): the text shows
            return found.get("text", "")
        return "\n".join(part for block in blocks if (part := _block_text(block)))

    def chunks_of(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Every chunk streamed into a message (markdown text given as ``markdown_text`` included)."""
        with self._lock:
            return json.loads(json.dumps(self._stream_chunks.get((channel, ts), [])))

    def tasks_of(self, channel: str, ts: str) -> dict[str, list[dict[str, Any]]]:
        """{task id: its task_update chunks in order} for one streamed message."""
        tasks: dict[str, list[dict[str, Any]]] = {}
        for chunk in self.chunks_of(channel, ts):
            if chunk["type"] == "task_update":
                tasks.setdefault(chunk["id"], []).append(chunk)
        return tasks

    def session_status(self, channel: str, thread_ts: str) -> str | None:
        """The agent session's current status for a thread (None: never set)."""
        with self._lock:
            history = self._sessions.get((channel, thread_ts))
            return history[-1] if history else None

    def session_history(self, channel: str, thread_ts: str) -> list[str]:
        with self._lock:
            return list(self._sessions.get((channel, thread_ts), []))

    def press_stop(self, channel: str, thread_ts: str) -> list[str]:
        """A person clicks the native Stop button: Slack stops the app's streams in the thread and
        returns their ts (the event's ``streaming_message_ts``). The session status stays as it is:
        the app must move it on."""
        with self._lock:
            stopped = []
            for (stream_channel, ts), state in self._streams.items():
                message = self.messages.get(stream_channel, {}).get(ts, {})
                if stream_channel == channel and state == "streaming" and message.get("thread_ts") == thread_ts:
                    self._streams[(stream_channel, ts)] = "stopped"
                    self._stored_as_blocks(stream_channel, ts)
                    stopped.append(ts)
            return sorted(stopped, key=_ts_key)

    def stream_state(self, channel: str, ts: str) -> str | None:
        """ "streaming", "stopped", or None when `ts` was never a stream."""
        with self._lock:
            return self._streams.get((channel, ts))

    def responses_to(self, name: str) -> list[ResponsePost]:
        with self._lock:
            return [post for post in self.responses if post.name == name]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
        """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                methods = [call.method for call in self.all_calls()]
                raise TimeoutError(f"condition not met within {timeout}s; Web API calls so far: {methods}")
            time.sleep(interval)

    def wait_for_call(self, method: str, where: Callable[[Call], bool] | None = None, timeout: float = 5.0) -> Call:
        """The first recorded call to `method` (matching `where`), waiting up to `timeout` for it."""

        def find() -> Call | None:
            return next((call for call in self.calls_to(method) if where is None or where(call)), None)

        return self.wait_for(find, timeout)

    def new_trigger_id(self) -> str:
        """A trigger_id as an interaction payload carries it (good for TRIGGER_SECONDS, once)."""
        trigger = f"{int(time.time())}.{len(self._triggers) + 1}.{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._triggers[trigger] = (time.monotonic(), False)
        return trigger

    def view(self, view_id: str) -> dict[str, Any] | None:
        """A view opened with views.open (as last updated), as Slack would send it back."""
        with self._lock:
            found = self._views.get(view_id)
            return json.loads(json.dumps(found)) if found else None

    def home_of(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.homes.get(user_id)
            return json.loads(json.dumps(found)) if found else None

    def reset(self) -> None:
        """Forget what happened (calls, messages, streams, reactions, downloads, responses, pending faults).

        Configuration stays: tokens, users, channels, hosted files, OAuth codes.
        """
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self.reactions.clear()
            self.downloads.clear()
            self.responses.clear()
            self._streams.clear()
            self._stream_chunks.clear()
            self._sessions.clear()
            self._faults.clear()
            self._delays.clear()
            self._views.clear()
            self.homes.clear()

    # --- the Web API ---

    def _take(self, queues: dict[str, deque], method: str) -> Any:
        """The next queued fault or delay for `method` (None: a call let through)."""
        with self._lock:
            for key in (method, "*"):
                queue = queues.get(key)
                if queue:
                    return queue.popleft()
        return None

    def handle_api(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict, dict]:
        """Answer one Web API call: (HTTP status, JSON body, extra response headers)."""
        latency = (
            self.latency.get(method, self.latency.get("*", 0.0)) if isinstance(self.latency, dict) else self.latency
        )
        if latency:
            time.sleep(latency)  # the fake's latency, not test synchronisation
        delay = self._take(self._delays, method)
        if delay:
            time.sleep(delay)  # the fake's latency, not test synchronisation
        if method == "chat.postMessage" and self.post_limit_per_channel is not None:
            retry_after = self._post_allowance(str(params.get("channel") or ""))
            if retry_after is not None:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        if method == "conversations.replies" and self.replies_throttle:
            retry_after = self._replies_allowance(_header(headers, "Authorization") or str(params.get("token")))
            if retry_after is not None:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        fault = self._take(self._faults, method)
        if fault is not None:
            if fault.error is not None:
                return 200, {"ok": False, "error": fault.error}, {}
            if fault.status == 429:
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return 429, {"ok": False, "error": "ratelimited"}, extra
            return fault.status, {"ok": False, "error": "fatal_error"}, {}
        try:
            identity = self._authenticate(method, params, headers)
            answer = self._answer(method, params, headers, identity)
        except SlackError as error:
            return 200, {"ok": False, "error": error.error, **error.extra}, {}
        return 200, {"ok": True, **answer}, {}

    def _post_allowance(self, channel: str) -> int | None:
        """None if a post to `channel` may go now (and count it), else the Retry-After in seconds."""
        now = time.monotonic()
        with self._lock:
            posts = self._posts.setdefault(channel, deque())
            while posts and posts[0] <= now - 1.0:
                posts.popleft()
            if len(posts) >= (self.post_limit_per_channel or 0):
                self.rate_limited_posts += 1
                return max(1, math.ceil(posts[0] + 1.0 - now))
            posts.append(now)
        return None

    def _replies_allowance(self, caller: str) -> int | None:
        """None if a throttled conversations.replies call may go now (and count it), else the
        Retry-After in seconds (1 call a minute per app and workspace, since 2025-05-29)."""
        now = time.monotonic()
        with self._lock:
            last = self._replies_last.get(caller)
            if last is not None and now - last < self.replies_interval:
                self.throttled_replies += 1
                return max(1, math.ceil(last + self.replies_interval - now))
            self._replies_last[caller] = now
        return None

    def _authenticate(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> Identity | None:
        if method in NO_AUTH_METHODS:
            return None
        authorization = _header(headers, "Authorization") or ""
        token = params.pop("token", None)
        if authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip()
        if not token:
            raise SlackError("not_authed")
        with self._lock:
            identity = self._identities.get(token)
        if identity is None:
            raise SlackError("invalid_auth")
        return identity

    def _answer(
        self, method: str, params: dict[str, Any], headers: dict[str, str], identity: Identity | None
    ) -> dict[str, Any]:
        if method == "oauth.v2.access":
            with self._lock:
                return self._oauth_v2_access(params, headers)
        if method == "apps.connections.open" and self.socket_mode_url:
            return {"url": self.socket_mode_url}
        handler = self._methods().get(method)
        if handler is None or (method in STREAM_METHODS and not self.streaming_enabled):
            raise SlackError("unknown_method", req_method=method)
        assert identity is not None
        with self._lock:
            return handler(params, identity)

    def _methods(self) -> dict[str, Callable[[dict[str, Any], Identity], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "team.info": self._team_info,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_suggested_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "agents.sessions.setStatus": self._agents_sessions_set_status,
            "agents.sessions.rename": self._agents_sessions_rename,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "conversations.replies": self._conversations_replies,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "files.info": self._files_info,
            "files.delete": self._files_delete,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
        }

    @staticmethod
    def _required(params: dict[str, Any], *names: str) -> None:
        for name in names:
            if params.get(name) in (None, ""):
                raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing '{name}'"]})

    def _auth_test(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        answer = {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": identity.team_name,
            "user": (self.users.get(identity.user_id) or {}).get("name", "bot"),
            "team_id": identity.team_id,
            "user_id": identity.user_id,
            "is_enterprise_install": False,
        }
        if identity.bot_id:
            answer["bot_id"] = identity.bot_id
        if identity.enterprise_id:
            answer["enterprise_id"] = identity.enterprise_id
        return answer

    def _team_info(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        return {
            "team": {
                "id": identity.team_id,
                "name": identity.team_name,
                "domain": self.team_domain,
                "email_domain": "",
                "icon": {"image_default": True},
                "enterprise_id": identity.enterprise_id,
            }
        }

    def _new_message(self, params: dict[str, Any], identity: Identity, ts: str, text: str) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "text": text, "user": identity.user_id, "ts": ts}
        if identity.bot_id:
            message.update(bot_id=identity.bot_id, app_id=self.app_id)
        message["team"] = identity.team_id
        if params.get("blocks") is not None:
            message["blocks"] = params["blocks"]
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        return message

    def _check_can_post(self, channel: str) -> None:
        """``enforce_membership``: Slack's answer to a post where the bot cannot write."""
        if not self.enforce_membership or channel.startswith("D"):
            return
        if channel not in self.channels:
            return  # channels nobody registered have the bot as a member
        info = self._channel(channel)
        if info["is_archived"]:
            raise SlackError("is_archived")
        if not info["is_member"]:
            raise SlackError("not_in_channel")

    def _chat_post_message(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel")
        self._check_can_post(str(params["channel"]))
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise SlackError("no_text")
        check_message_limits(params.get("text"), params.get("blocks"))
        channel = str(params["channel"])
        ts = next_ts()
        message = self._new_message(params, identity, ts, str(params.get("text") or ""))
        self.messages.setdefault(channel, {})[ts] = message
        return {"channel": channel, "ts": ts, "message": dict(message)}

    def _existing(self, channel: str, ts: str) -> dict[str, Any]:
        message = self.messages.get(channel, {}).get(ts)
        if message is None:
            raise SlackError("message_not_found")
        return message

    def _chat_update(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel", "ts")
        channel, ts = str(params["channel"]), str(params["ts"])
        message = self._existing(channel, ts)
        if message.get("user") != identity.user_id:
            raise SlackError("cant_update_message")
        check_message_limits(params.get("text"), params.get("blocks"))
        if "text" in params:
            message["text"] = str(params["text"] or "")
        if "blocks" in params:
            message["blocks"] = params["blocks"]
        message["edited"] = {"user": identity.user_id, "ts": next_ts()}
        return {"channel": channel, "ts": ts, "text": message.get("text", ""), "message": dict(message)}

    def _chat_delete(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel", "ts")
        channel, ts = str(params["channel"]), str(params["ts"])
        message = self._existing(channel, ts)
        if message.get("user") != identity.user_id and not identity.is_admin:
            raise SlackError("cant_delete_message")
        del self.messages[channel][ts]
        self._streams.pop((channel, ts), None)
        return {"channel": channel, "ts": ts}

    def _chat_post_ephemeral(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel", "user")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise SlackError("no_text")
        check_message_limits(params.get("text"), params.get("blocks"))
        return {"message_ts": next_ts()}

    def _stream_text(self, params: dict[str, Any]) -> str:
        markdown_text = params.get("markdown_text")
        if isinstance(markdown_text, str) and len(markdown_text) > MAX_STREAM_TEXT_CHARS:
            raise SlackError("msg_too_long")
        check_chunks(params.get("chunks"))
        return str(markdown_text or "") + _markdown_chunks_text(params.get("chunks"))

    def _keep_chunks(self, channel: str, ts: str, params: dict[str, Any]) -> None:
        kept = self._stream_chunks.setdefault((channel, ts), [])
        if params.get("markdown_text"):
            kept.append({"type": "markdown_text", "text": str(params["markdown_text"])})
        kept.extend(json.loads(json.dumps(params.get("chunks") or [])))

    def _set_session(self, channel: str, thread_ts: str, status: Any) -> None:
        if status not in SESSION_STATUSES:
            raise _bad("invalid_arguments", f"status must be one of {sorted(SESSION_STATUSES)}")
        self._sessions.setdefault((channel, thread_ts), []).append(str(status))

    def _chat_start_stream(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel", "thread_ts")
        channel = str(params["channel"])
        self._check_can_post(channel)
        if channel.startswith(("C", "G")):
            if not params.get("recipient_team_id"):
                raise SlackError("missing_recipient_team_id")
            if not params.get("recipient_user_id"):
                raise SlackError("missing_recipient_user_id")
        mode = params.get("task_display_mode")
        if mode is not None and mode not in TASK_DISPLAY_MODES:
            raise _bad("invalid_arguments", "task_display_mode must be timeline or plan")
        text = self._stream_text(params)
        ts = next_ts()
        self.messages.setdefault(channel, {})[ts] = self._new_message(params, identity, ts, text)
        self._streams[(channel, ts)] = "streaming"
        self._keep_chunks(channel, ts, params)
        return {"channel": channel, "ts": ts}

    def _streaming_message(self, params: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        self._required(params, "channel", "ts")
        channel, ts = str(params["channel"]), str(params["ts"])
        if self._streams.get((channel, ts)) != "streaming":
            raise SlackError("message_not_in_streaming_state")
        return channel, ts, self.messages[channel][ts]

    def _chat_append_stream(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        channel, ts, message = self._streaming_message(params)
        message["text"] = message.get("text", "") + self._stream_text(params)
        self._keep_chunks(channel, ts, params)
        return {"channel": channel, "ts": ts}

    def _chat_stop_stream(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        channel, ts, message = self._streaming_message(params)
        text = self._stream_text(params)
        if params.get("blocks") is not None:
            check_message_limits(None, params["blocks"])
        if params.get("session_status") is not None:
            self._set_session(channel, str(message.get("thread_ts") or ts), params["session_status"])
        message["text"] = message.get("text", "") + text
        if params.get("blocks") is not None:
            message["blocks"] = params["blocks"]
        if self.streams_stored_as_blocks:
            streamed = [{"type": "markdown", "text": message["text"]}] if message["text"].strip() else []
            message["blocks"] = [*streamed, *(params.get("blocks") or [])]
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        self._keep_chunks(channel, ts, params)
        self._streams[(channel, ts)] = "stopped"
        return {"channel": channel, "ts": ts, "message": dict(message)}

    def _assistant_set_status(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel_id", "thread_ts")
        if "status" not in params:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing 'status'"]})
        messages = params.get("loading_messages")
        if isinstance(messages, str):
            messages = json.loads(messages)
        if messages is not None and (
            not isinstance(messages, list)
            or not 1 <= len(messages) <= MAX_LOADING_MESSAGES
            or not all(isinstance(m, str) and m for m in messages)
        ):
            raise _bad("invalid_arguments", "loading_messages: 1 to 10 non-empty strings")
        return {}

    def _assistant_set_title(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel_id", "thread_ts", "title")
        return {}

    def _agents_sessions_rename(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel_id", "title")
        return {}

    def _agents_sessions_set_status(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel_id", "status")
        channel = str(params["channel_id"])
        self._set_session(channel, str(params.get("thread_ts") or ""), params["status"])
        return {}

    def _assistant_set_suggested_prompts(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel_id", "prompts")
        prompts = params["prompts"]
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] 1 to 4 prompts"]})
        return {}

    def _reactions_add(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel", "timestamp", "name")
        key = (str(params["channel"]), str(params["timestamp"]))
        entry = (identity.user_id, str(params["name"]))
        reactions = self.reactions.setdefault(key, [])
        if entry in reactions:
            raise SlackError("already_reacted")
        reactions.append(entry)
        return {}

    def _users_info(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "user")
        user_id = str(params["user"])
        info = self.users.get(user_id)
        if info is None:
            raise SlackError("user_not_found")
        name = info.get("name", user_id.lower())
        real_name = info.get("real_name", name)
        extra = {key: info[key] for key in ("is_stranger", "enterprise_user") if key in info}
        return {
            "user": {
                **extra,
                "id": user_id,
                "team_id": info.get("team_id", identity.team_id),
                "name": name,
                "deleted": info.get("deleted", False),
                "real_name": real_name,
                "tz": info.get("tz", "UTC"),
                "tz_label": info.get("tz_label", info.get("tz", "UTC")),
                "tz_offset": info.get("tz_offset", 0),
                "is_admin": info.get("is_admin", False),
                "is_owner": info.get("is_owner", False),
                "is_bot": info.get("is_bot", False),
                "is_app_user": False,
                "profile": {"real_name": real_name, "display_name": info.get("display_name", name)},
            }
        }

    def _conversations_replies(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel", "ts")
        channel, thread_ts = str(params["channel"]), str(params["ts"])
        in_channel = self.messages.get(channel, {})
        if thread_ts not in in_channel:
            raise SlackError("thread_not_found")
        thread = sorted(
            (m for m in in_channel.values() if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts),
            key=lambda m: _ts_key(m["ts"]),
        )
        try:
            limit = int(params.get("limit") or DEFAULT_REPLIES_LIMIT)
        except (TypeError, ValueError) as error:
            raise SlackError("invalid_limit") from error
        if self.replies_throttle:
            limit = min(limit, self.replies_max_per_call)  # "limit ... maximum of 15" for these apps
        start = 0
        if params.get("cursor"):
            position = _decode_cursor(str(params["cursor"]))
            start = next((i for i, m in enumerate(thread) if _ts_key(m["ts"]) >= position), len(thread))
        page = thread[start : start + max(limit, 1)]
        has_more = start + len(page) < len(thread)
        messages = [json.loads(json.dumps(m)) for m in page]
        for message in messages:
            if message["ts"] == thread_ts:
                replies = thread[1:]
                message.update(
                    thread_ts=thread_ts,
                    reply_count=len(replies),
                    reply_users=sorted({m.get("user", "") for m in replies}),
                    latest_reply=replies[-1]["ts"] if replies else thread_ts,
                )
        next_cursor = _encode_cursor(thread[start + len(page)]["ts"]) if has_more else ""
        return {"messages": messages, "has_more": has_more, "response_metadata": {"next_cursor": next_cursor}}

    def _channel(self, channel_id: str) -> dict[str, Any]:
        # Channels nobody registered are made up from the id: C public, G private, D a DM.
        known = self.channels.get(channel_id, {})
        is_im = channel_id.startswith("D")
        is_private = known.get("is_private")
        if is_private is None:
            is_private = channel_id.startswith("G")
        members = known.get("members") or [self.bot_user_id, *sorted(u for u in self.users if u != self.bot_user_id)]
        return {
            "id": channel_id,
            "name": known.get("name") or (None if is_im else channel_id.lower()),
            "is_channel": not is_im and not is_private,
            "is_group": is_private,
            "is_im": is_im,
            "is_private": is_private or is_im,
            "is_member": self.bot_user_id in members,
            "is_archived": bool(known.get("is_archived")),
            "is_ext_shared": False,
            "members": members,
            # Slack's conversations.info names the other person of a direct message (when registered here).
            **({"user": known["user"]} if is_im and known.get("user") else {}),
        }

    def _conversations_info(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel")
        channel = self._channel(str(params["channel"]))
        channel.pop("members")
        return {"channel": channel}

    def _conversations_members(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "channel")
        return {"members": self._channel(str(params["channel"]))["members"], "response_metadata": {"next_cursor": ""}}

    def _hosted(self, params: dict[str, Any]) -> _HostedFile:
        self._required(params, "file")
        hosted = self._files.get(str(params["file"]))
        if hosted is None:
            raise SlackError("file_not_found")
        if hosted.deleted:
            raise SlackError("file_deleted")
        return hosted

    def _files_info(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        hosted = self._hosted(params)
        return {"file": dict(hosted.info), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _files_delete(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        hosted = self._hosted(params)
        if hosted.info.get("user") != identity.user_id and not identity.is_admin:
            raise SlackError("cant_delete_file")
        hosted.deleted = True
        return {}

    def _oauth_v2_access(self, params: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        authorization = _header(headers, "Authorization") or ""
        if authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            except (binascii.Error, UnicodeDecodeError) as error:
                raise SlackError("invalid_client_id") from error
            client_id, _, client_secret = decoded.partition(":")
        if not client_id:
            raise SlackError("invalid_client_id")
        if self.client_id is not None and client_id != self.client_id:
            raise SlackError("invalid_client_id")
        if self.client_secret is not None and client_secret != self.client_secret:
            raise SlackError("bad_client_secret")
        code = str(params.get("code") or "")
        if code in self._used_oauth_codes:
            raise SlackError("code_already_used")
        grant = self._oauth_codes.get(code)
        if grant is None:
            raise SlackError("invalid_code")
        self._used_oauth_codes.add(code)
        answer = grant["answer"]
        self.add_token(
            answer["access_token"],
            team_id=answer["team"]["id"],
            team_name=answer["team"]["name"],
            user_id=answer["bot_user_id"],
            bot_id=grant["bot_id"],
        )
        return {key: value for key, value in answer.items() if key != "ok"}

    # --- views ---

    def _stored_view(self, view: dict[str, Any], identity: Identity, *, view_id: str | None = None) -> dict[str, Any]:
        self._view_serial += 1
        stored = {
            "id": view_id or f"V{self._view_serial:08d}",
            "team_id": identity.team_id,
            "app_id": self.app_id,
            "bot_id": identity.bot_id,
            "hash": f"{int(time.time())}.{self._view_serial}",
            "state": {"values": {}},
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            **json.loads(json.dumps(view)),
        }
        stored["root_view_id"] = stored["id"]
        return stored

    def _views_open(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "view")
        trigger = params.get("trigger_id")
        if bool(trigger) == bool(params.get("interactivity_pointer")):
            raise SlackError("invalid_arguments")
        issued = self._triggers.get(str(trigger))
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if issued[1]:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - issued[0] > TRIGGER_SECONDS:
            raise SlackError("expired_trigger_id")
        check_view(params["view"], "modal")
        self._triggers[str(trigger)] = (issued[0], True)
        stored = self._stored_view(params["view"], identity)
        self._views[stored["id"]] = stored
        return {"view": stored}

    def _views_update(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "view")
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if bool(view_id) == bool(external_id):
            raise SlackError("invalid_arguments")  # exactly one of them
        current = (
            self._views.get(str(view_id))
            if view_id
            else next((v for v in self._views.values() if v.get("external_id") == external_id), None)
        )
        if current is None:
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        check_view(params["view"], "modal")
        stored = self._stored_view(params["view"], identity, view_id=current["id"])
        self._views[stored["id"]] = stored
        return {"view": stored}

    def _views_publish(self, params: dict[str, Any], identity: Identity) -> dict[str, Any]:
        self._required(params, "user_id", "view")
        check_view(params["view"], "home")
        stored = self._stored_view(params["view"], identity)
        self.homes[str(params["user_id"])] = stored
        return {"view": stored}

    # --- file host and response_url ---

    _FILE_PATH = re.compile(r"^/files-(pri|origin)/([A-Z0-9]+)-([A-Za-z0-9]+)/(?:download/)?([^/]+)$")

    def handle_download(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        """Answer a GET on the file host: (status, body, headers)."""
        authorization = _header(headers, "Authorization")
        matched = self._FILE_PATH.match(path)
        with self._lock:
            hosted = self._files.get(matched.group(3)) if matched else None
            if hosted is not None and (hosted.deleted or unquote(matched.group(4)) != hosted.info["name"]):
                hosted = None
            token_ok = (
                authorization is not None
                and authorization.startswith("Bearer ")
                and authorization.removeprefix("Bearer ").strip() in self._identities
            )
        if hosted is None:
            status, body, answer_headers = 404, b"<html><body>File not found</body></html>", {}
            answer_headers["Content-Type"] = "text/html; charset=utf-8"
        elif matched.group(1) == "pri" and hosted.mode == "redirect":
            origin = f"{self.base_url}/files-origin/{matched.group(2)}-{hosted.file_id}/{matched.group(4)}"
            status, body, answer_headers = 302, b"", {"Location": origin}
        elif matched.group(1) == "pri" and hosted.mode == "redirect_foreign":
            status, body, answer_headers = 302, b"", {"Location": str(hosted.redirect_to)}
        elif hosted.mode == "html" or not token_ok:
            status, body, answer_headers = 200, LOGIN_PAGE, {"Content-Type": "text/html; charset=utf-8"}
        else:
            status, body = 200, hosted.content
            answer_headers = {"Content-Type": hosted.info["mimetype"]}
        with self._lock:
            file_id = hosted.file_id if hosted else None
            self.downloads.append(Download(path, file_id, authorization, status, time.monotonic()))
        return status, body, answer_headers

    def handle_response_url(self, name: str, raw: bytes, headers: dict[str, str]) -> None:
        try:
            body: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.responses.append(ResponsePost(name, body, headers, time.monotonic()))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _read_body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _api(self, method: str, query: str, raw: bytes) -> None:
                arrival = time.monotonic()
                headers = dict(self.headers.items())
                try:
                    params = {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}
                    params.update(parse_api_body(self.headers.get("Content-Type", ""), raw))
                except SlackError as error:
                    params = {}
                    status, answer, extra = 200, {"ok": False, "error": error.error}, {}
                else:
                    status, answer, extra = fake.handle_api(method, dict(params), headers)
                recorded = {key: value for key, value in params.items() if key != "token"}
                with fake._lock:
                    fake.calls.append(Call(method, recorded, headers, arrival, status, answer))
                self._reply(
                    status, json.dumps(answer).encode(), {"Content-Type": "application/json; charset=utf-8", **extra}
                )

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                raw = self._read_body()
                if parts.path.startswith("/api/"):
                    self._api(parts.path.removeprefix("/api/"), parts.query, raw)
                elif parts.path.startswith("/response/"):
                    fake.handle_response_url(
                        unquote(parts.path.removeprefix("/response/")), raw, dict(self.headers.items())
                    )
                    self._reply(200, b"ok", {"Content-Type": "text/plain"})
                else:
                    self._reply(404, b"not found", {"Content-Type": "text/plain"})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path.startswith("/api/"):
                    self._api(parts.path.removeprefix("/api/"), parts.query, b"")
                elif parts.path.startswith(("/files-pri/", "/files-origin/")):
                    self._reply(*fake.handle_download(parts.path, dict(self.headers.items())))
                else:
                    self._reply(404, b"not found", {"Content-Type": "text/plain"})

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
