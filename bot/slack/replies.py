"""Writing an answer into a Slack thread as the model produces it.

`StreamingReply` uses Slack's streaming methods (chat.startStream / appendStream /
stopStream, through slack_sdk's `chat_stream`). When streaming is not available, or a stream
expires, `UpdatingReply` takes over: chat.postMessage, then chat.update at most once a
second, finishing with `markdown` blocks. Answers longer than one message continue in
further messages, split where Markdown allows.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.message_split import MARKDOWN_BLOCK_MAX_CHARS, fallback_text, split_markdown, to_blocks

log = logging.getLogger(__name__)

# Room left for a closing fence when a streamed message has to stop inside a code block.
STREAM_MAX_CHARS = MARKDOWN_BLOCK_MAX_CHARS - 100
PREVIEW_MAX_CHARS = 3000
UPDATE_INTERVAL_SECONDS = 1.0
STREAM_BUFFER_CHARS = 120
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def open_fence(text: str) -> str | None:
    """The opening fence line if `text` ends inside a fenced code block, else None."""
    opened: str | None = None
    marker = ""
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if not match:
            continue
        if opened is None:
            opened, marker = line.strip(), match.group(1)
        elif match.group(1).startswith(marker[0]) and len(match.group(1)) >= len(marker) and not match.group(2).strip():
            opened = None
    return opened


def cut_to_fit(text: str, room: int) -> int:
    """Where to cut `text` so at most `room` characters go now: the last line break or space
    within the room, or the room itself if there is none."""
    if len(text) <= room:
        return len(text)
    window = text[:room]
    for separator in ("\n\n", "\n", " "):
        index = window.rfind(separator)
        if index > room // 2:
            return index + len(separator)
    return room


class UpdatingReply:
    """Post, update at most once a second, then finish with markdown blocks."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        existing_ts: str | None = None,
        on_posted: Callable[[list[str]], None] = lambda ts: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.text = ""
        self.ts_list: list[str] = [existing_ts] if existing_ts else []
        self.on_posted = on_posted
        self.clock = clock
        self._last_update = float("-inf")

    def append(self, delta: str) -> None:
        self.text += delta
        if not self.text.strip():
            return
        now = self.clock()
        if self.ts_list and now - self._last_update < UPDATE_INTERVAL_SECONDS:
            return
        preview = self.text if len(self.text) <= PREVIEW_MAX_CHARS else self.text[:PREVIEW_MAX_CHARS] + " …"
        if not self.ts_list:
            response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=preview)
            self.ts_list.append(response["ts"])
            self.on_posted(list(self.ts_list))
        else:
            self.client.chat_update(channel=self.channel, ts=self.ts_list[0], text=preview)
        self._last_update = now

    def finish(self, extra_text: str = "") -> list[str]:
        self.text += extra_text
        parts = split_markdown(self.text) or ["_(no answer)_"]
        if self.ts_list:
            self.client.chat_update(
                channel=self.channel, ts=self.ts_list[0], text=fallback_text(parts[0]), blocks=to_blocks(parts[0])
            )
        else:
            response = self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=fallback_text(parts[0]), blocks=to_blocks(parts[0])
            )
            self.ts_list.append(response["ts"])
            self.on_posted(list(self.ts_list))
        for part in parts[1:]:
            response = self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=fallback_text(part), blocks=to_blocks(part)
            )
            self.ts_list.append(response["ts"])
            self.on_posted(list(self.ts_list))
        return list(self.ts_list)


class StreamingReply:
    """Stream into one message; overflow beyond one message's limit is posted after it."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        team_id: str,
        user_id: str,
        on_posted: Callable[[list[str]], None] = lambda ts: None,
    ):
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.on_posted = on_posted
        self.stream = client.chat_stream(
            channel=channel,
            thread_ts=thread_ts,
            recipient_team_id=team_id or None,
            recipient_user_id=user_id or None,
            buffer_size=STREAM_BUFFER_CHARS,
        )
        self.streamed = ""  # what went into the streamed message
        self.overflow = ""  # what comes after it, posted when the answer is complete
        self.fallback: UpdatingReply | None = None

    def append(self, delta: str) -> None:
        if self.fallback:
            self.fallback.append(delta)
            return
        if self.overflow:
            self.overflow += delta
            return
        room = STREAM_MAX_CHARS - len(self.streamed)
        cut = cut_to_fit(delta, room)
        now, later = delta[:cut], delta[cut:]
        if now:
            self._stream(now)
        if later:
            self.overflow = later

    def _stream(self, text: str) -> None:
        try:
            self.stream.append(markdown_text=text)
            self.streamed += text
            self._report_ts()
        except SlackApiError as error:
            self._fall_back(error, text)

    def _report_ts(self) -> None:
        if self.stream.ts and not getattr(self, "_reported", False):
            self._reported = True
            self.on_posted([self.stream.ts])

    def _fall_back(self, error: SlackApiError, pending: str) -> None:
        code = error.response.get("error", "")
        log.warning("reply streaming_fallback error=%s", code)
        existing = self.stream.ts
        self.fallback = UpdatingReply(
            self.client, channel=self.channel, thread_ts=self.thread_ts, existing_ts=existing, on_posted=self.on_posted
        )
        self.fallback.append(self.streamed + pending)

    def finish(self) -> list[str]:
        if self.fallback:
            return self.fallback.finish(self.overflow)
        reopen = ""
        try:
            fence = open_fence(self.streamed) if self.overflow else None
            if fence:
                reopen = fence + "\n"
            if not self.streamed.strip() and not self.overflow:
                self.stream.append(markdown_text="_(no answer)_")
            self.stream.stop(markdown_text="\n" + fence[: len(fence) - len(fence.lstrip("`~"))] if fence else None)
            self._report_ts()
        except SlackApiError as error:
            self._fall_back(error, "")
            return self.fallback.finish(self.overflow)  # type: ignore[union-attr]
        ts_list = [self.stream.ts] if self.stream.ts else []
        for part in split_markdown(reopen + self.overflow) if self.overflow.strip() else []:
            response = self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=fallback_text(part), blocks=to_blocks(part)
            )
            ts_list.append(response["ts"])
            self.on_posted(list(ts_list))
        return ts_list


class ReplyWriter:
    """Picks streaming or post-and-update, and guards every Slack write with the lease."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        team_id: str,
        user_id: str,
        existing_ts: str | None,
        streaming: bool,
        on_posted: Callable[[list[str]], None],
        checkpoint: Callable[[], None],
    ):
        self.checkpoint = checkpoint
        self.streams_text = True
        if streaming:
            self.inner: StreamingReply | UpdatingReply = StreamingReply(
                client, channel=channel, thread_ts=thread_ts, team_id=team_id, user_id=user_id, on_posted=on_posted
            )
        else:
            self.inner = UpdatingReply(
                client, channel=channel, thread_ts=thread_ts, existing_ts=existing_ts, on_posted=on_posted
            )

    def append(self, text: str) -> None:
        if text:
            self.checkpoint()
            self.inner.append(text)

    def finish(self) -> list[str]:
        self.checkpoint()
        return self.inner.finish()

    def finish_with_text(self, text: str) -> list[str]:
        self.append(text)
        return self.finish()
