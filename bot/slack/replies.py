"""Writing an answer into a Slack thread as the model produces it.

`StreamingReply` uses Slack's streaming methods (chat.startStream / appendStream /
stopStream, through slack_sdk's `chat_stream`). When streaming is not available, or a stream
expires, `UpdatingReply` takes over: chat.postMessage, then chat.update at most once a
second, finishing with `markdown` blocks. Answers longer than one message continue in
further messages, split where Markdown allows.

Every chat.update sends the whole content as blocks: Slack keeps a message's blocks when an
update sends none ("If you don't include this field, the message's previous blocks will be
retained", chat.update docs), and a finished stream is stored as blocks, so a text-only update
of it would change nothing a person sees (DESIGN-NOTES, Slack). Broadcast mentions are
neutralized before the text is measured and split, so the limits hold after (bot.slack.mentions).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.agent import waiting
from bot.agent.feedback import Trace
from bot.agent.render import TASK_DISPLAY_MODE, feedback_block, plan_chunk, steps_block, task_chunk
from bot.agent.steps import StepList
from bot.agent.stops import STREAM_ENDED_GRACE_SECONDS, AnswerStopped, StopFlag
from bot.slack.agent_session import AgentSession
from bot.slack.mentions import neutralize_mentions
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


def message_content(text: str, lead_blocks: Sequence[dict] = ()) -> dict:
    """The whole visible content of a message as chat.update/postMessage arguments: ``text``
    (the notification fallback) and the same words as blocks, under ``lead_blocks``."""
    words = neutralize_mentions(text).strip() or "…"
    if len(words) > MARKDOWN_BLOCK_MAX_CHARS:
        words = words[: MARKDOWN_BLOCK_MAX_CHARS - 1] + "…"
    return {"text": fallback_text(words), "blocks": [*lead_blocks, *to_blocks(words)]}


class UpdatingReply:
    """Post, update at most once a second, then finish with markdown blocks."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        existing_ts: str | Sequence[str] | None = None,
        on_posted: Callable[[list[str]], None] = lambda ts: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`existing_ts`: the messages an earlier attempt posted for this answer, every part of
        it: they are updated in place, never posted again (and parts no longer needed go)."""
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.text = ""
        self.ts_list: list[str] = [existing_ts] if isinstance(existing_ts, str) else list(existing_ts or ())
        self.on_posted = on_posted
        self.clock = clock
        self._last_update = float("-inf")
        self.shown = ""  # the text people can see now (the last post or update)
        self.lead_blocks: list[dict] = []  # shown above the text while it is written (the steps)

    def append(self, delta: str) -> None:
        self.text += delta
        if not self.text.strip():
            return
        now = self.clock()
        if self.ts_list and now - self._last_update < UPDATE_INTERVAL_SECONDS:
            return
        preview = self.text if len(self.text) <= PREVIEW_MAX_CHARS else self.text[:PREVIEW_MAX_CHARS] + " …"
        self._show(preview)
        self.shown = preview
        self._last_update = now

    def show_lead(self, blocks: Sequence[dict]) -> None:
        """Show `blocks` above the text at once (a tool step started or ended)."""
        self.lead_blocks = list(blocks)
        self._show(self.shown)
        self._last_update = self.clock()

    def _show(self, preview: str) -> None:
        content = message_content(preview, self.lead_blocks)
        if not self.ts_list:
            response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, **content)
            self.ts_list.append(response["ts"])
            self.on_posted(list(self.ts_list))
        else:
            self.client.chat_update(channel=self.channel, ts=self.ts_list[0], **content)

    def finish(
        self, extra_text: str = "", *, lead_blocks: Sequence[dict] = (), tail_blocks: Sequence[dict] = ()
    ) -> list[str]:
        """`lead_blocks` go before the answer's first part (the steps), `tail_blocks` after its last
        (the feedback buttons)."""
        self.text += extra_text
        parts = split_markdown(neutralize_mentions(self.text)) or ["_(no answer)_"]
        last = len(parts) - 1
        for index, part in enumerate(parts):
            blocks = [*(lead_blocks if index == 0 else ()), *to_blocks(part), *(tail_blocks if index == last else ())]
            if index < len(self.ts_list):  # posted by this run or an earlier attempt: updated in place
                self.client.chat_update(
                    channel=self.channel, ts=self.ts_list[index], text=fallback_text(part), blocks=blocks
                )
                continue
            response = self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=fallback_text(part), blocks=blocks
            )
            self.ts_list.append(response["ts"])
            self.on_posted(list(self.ts_list))
        if len(self.ts_list) > len(parts):  # an earlier attempt's answer was longer
            self._remove(self.ts_list[len(parts) :])
            del self.ts_list[len(parts) :]
            self.on_posted(list(self.ts_list))
        return list(self.ts_list)

    def _remove(self, surplus: Sequence[str]) -> None:
        for ts in surplus:
            try:
                self.client.chat_delete(channel=self.channel, ts=ts)  # our own message: chat:write allows it
            except SlackApiError as error:
                log.warning("reply surplus_part_not_deleted error=%s", error.response.get("error"))

    def stop_early(self, note: str) -> list[str]:
        """Stopped: what people already see stays, `note` is added, nothing else is posted."""
        if self.ts_list:
            content = message_content(self.shown + note, self.lead_blocks)
            self.client.chat_update(channel=self.channel, ts=self.ts_list[0], **content)
        else:
            content = message_content(note)
            response = self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, **content)
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
        stream_ended: Callable[[], None] | None = None,
    ):
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.on_posted = on_posted
        # Called when the stream ends under us, before falling back; may raise (Stop pressed).
        self.stream_ended = stream_ended
        self.stream = client.chat_stream(
            channel=channel,
            thread_ts=thread_ts,
            recipient_team_id=team_id or None,
            recipient_user_id=user_id or None,
            task_display_mode=TASK_DISPLAY_MODE,
            buffer_size=STREAM_BUFFER_CHARS,
        )
        self.streamed = ""  # what went into the streamed message
        self.shown = 0  # how much of it Slack has (the rest waits in the stream's buffer)
        self.session_status_sent = False  # chat.stopStream moved the agent session on
        self.overflow = ""  # what comes after it, posted when the answer is complete
        self.fallback: UpdatingReply | None = None

    def append(self, delta: str) -> None:
        if self.fallback:
            self.fallback.append(delta)
            return
        if self.overflow:
            self.overflow += delta
            return
        delta = neutralize_mentions(delta)  # measured as it will be posted
        room = STREAM_MAX_CHARS - len(self.streamed)
        cut = cut_to_fit(delta, room)
        now, later = delta[:cut], delta[cut:]
        if now:
            self._stream(now)
        if later:
            self.overflow = later

    def _stream(self, text: str) -> None:
        try:
            flushed = self.stream.append(markdown_text=text)
            self.streamed += text
            if flushed is not None:
                self.shown = len(self.streamed)
            self._report_ts()
        except SlackApiError as error:
            self._fall_back(error, text)

    def append_chunks(self, chunks: Sequence) -> None:
        """Structured chunks (task and plan updates) into the stream, after the text so far."""
        if self.fallback:
            return
        try:
            self.stream.append(chunks=list(chunks))
            self.shown = len(self.streamed)
            self._report_ts()
        except SlackApiError as error:
            self._fall_back(error, "")

    def _report_ts(self) -> None:
        if self.stream.ts and not getattr(self, "_reported", False):
            self._reported = True
            self.on_posted([self.stream.ts])

    def _fall_back(self, error: SlackApiError, pending: str) -> None:
        code = error.response.get("error", "")
        if self.stream_ended is not None:
            self.stream_ended()
        log.warning("reply streaming_fallback error=%s", code)
        existing = self.stream.ts
        self.fallback = UpdatingReply(
            self.client, channel=self.channel, thread_ts=self.thread_ts, existing_ts=existing, on_posted=self.on_posted
        )
        self.fallback.append(self.streamed + pending)

    def finish(
        self,
        *,
        blocks: Sequence[dict] = (),
        session_status: str | None = None,
        lead_blocks: Sequence[dict] = (),
    ) -> list[str]:
        """`blocks` end the answer (in chat.stopStream, or under its last overflow part);
        `session_status` moves the agent session on; `lead_blocks` are for the post-and-update
        fallback only (the steps, which a stream shows as task cards)."""
        if self.fallback:
            return self.fallback.finish(self.overflow, lead_blocks=lead_blocks, tail_blocks=blocks)
        reopen = ""
        self.overflow = neutralize_mentions(self.overflow)
        overflow_parts = split_markdown(self.overflow) if self.overflow.strip() else []
        try:
            fence = open_fence(self.streamed) if self.overflow else None
            if fence:
                reopen = fence + "\n"
                overflow_parts = split_markdown(reopen + self.overflow)
            if not self.streamed.strip() and not self.overflow:
                self.stream.append(markdown_text="_(no answer)_")
            self.stream.stop(
                markdown_text="\n" + fence[: len(fence) - len(fence.lstrip("`~"))] if fence else None,
                blocks=list(blocks) if blocks and not overflow_parts else None,
                session_status=session_status,
            )
            self.session_status_sent = session_status is not None
            self._report_ts()
        except SlackApiError as error:
            self._fall_back(error, "")
            return self.fallback.finish(self.overflow, lead_blocks=lead_blocks, tail_blocks=blocks)  # type: ignore[union-attr]
        ts_list = [self.stream.ts] if self.stream.ts else []
        for index, part in enumerate(overflow_parts):
            last = index == len(overflow_parts) - 1
            response = self.client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.thread_ts,
                text=fallback_text(part),
                blocks=[*to_blocks(part), *(blocks if last else ())],
            )
            ts_list.append(response["ts"])
            self.on_posted(list(ts_list))
        return ts_list

    def stop_early(self, note: str, *, session_status: str | None = None) -> list[str]:
        """Stopped: what Slack already shows stays, `note` is added, nothing else is posted (the
        stream's unsent buffer is dropped)."""
        if self.fallback:
            return self.fallback.stop_early(note)
        ts = self.stream.ts
        if ts is None:  # nothing was shown yet
            response = self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, **message_content(note)
            )
            self.on_posted([response["ts"]])
            return [response["ts"]]
        try:
            self.client.chat_stopStream(channel=self.channel, ts=ts, markdown_text=note, session_status=session_status)
            self.session_status_sent = session_status is not None
        except SlackApiError:  # Slack stopped the stream itself when Stop was pressed
            # Stored as blocks by now: the note shows only if the update sends blocks too.
            content = message_content(self.streamed[: self.shown] + note)
            self.client.chat_update(channel=self.channel, ts=ts, **content)
        return [ts]


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
        existing_ts: str | Sequence[str] | None,
        streaming: bool,
        on_posted: Callable[[list[str]], None],
        checkpoint: Callable[[], None],
        agent: AgentSession | None = None,
        stop: StopFlag | None = None,
    ):
        self.checkpoint = checkpoint
        self.streams_text = True
        self.agent = agent
        self.stop = stop
        self.steps = StepList()
        if streaming:
            self.inner: StreamingReply | UpdatingReply = StreamingReply(
                client,
                channel=channel,
                thread_ts=thread_ts,
                team_id=team_id,
                user_id=user_id,
                on_posted=on_posted,
                stream_ended=self._stream_ended,
            )
        else:
            self.inner = UpdatingReply(
                client, channel=channel, thread_ts=thread_ts, existing_ts=existing_ts, on_posted=on_posted
            )

    def append(self, text: str) -> None:
        if text:
            self.checkpoint()
            self.inner.append(text)

    def _stream_ended(self) -> None:
        """Slack ended our stream: when Stop was pressed, the event follows in a moment."""
        if self.stop is not None and self.stop.wait(STREAM_ENDED_GRACE_SECONDS):
            raise AnswerStopped()

    # -- tool steps (the tool loop calls these around each round's tool calls) ------------

    def tool_started(self, call_id: str, name: str, arguments: str) -> None:
        if self.stop is not None:
            self.stop.check()  # no tool call starts once Stop was pressed
        self.checkpoint()
        step = self.steps.start(call_id, name, arguments)
        self._show([task_chunk(step)])
        if self.agent is not None:
            self.agent.set_status(waiting.THINKING_STATUS, waiting.tool_messages([name]))

    def tool_finished(self, call_id: str, ok: bool, content: str) -> None:
        step = self.steps.finish(call_id, ok, content)
        if step is None or (self.stop is not None and self.stop.is_set()):
            return
        self.checkpoint()
        self._show([task_chunk(step)])

    def _show(self, chunks: list) -> None:
        title = self.steps.new_plan_title()
        if title:
            chunks = [plan_chunk(title), *chunks]
        if isinstance(self.inner, StreamingReply) and self.inner.fallback is None:
            self.inner.append_chunks(chunks)
            if self.inner.fallback is None:
                return  # else streaming just failed: show the steps the other way
        updating = self.inner.fallback if isinstance(self.inner, StreamingReply) else self.inner
        if updating is not None:
            updating.show_lead(self._lead_blocks())  # post and update: the steps as a context line

    # -- the end ------------------------------------------------------------------------

    def _lead_blocks(self) -> list[dict]:
        block = steps_block(self.steps.steps)
        return [block.to_dict()] if block is not None else []

    def finish(self, trace: Trace | None = None) -> list[str]:
        self.checkpoint()
        tail = [feedback_block(trace).to_dict()] if trace is not None else []
        status = self.agent.final_status if self.agent else None
        if isinstance(self.inner, StreamingReply):
            posted = self.inner.finish(blocks=tail, session_status=status, lead_blocks=self._lead_blocks())
            by_stream = self.inner.session_status_sent
        else:
            posted = self.inner.finish(lead_blocks=self._lead_blocks(), tail_blocks=tail)
            by_stream = False
        if self.agent is not None:
            self.agent.ended(by_stream=by_stream)
        return posted

    def finish_with_text(self, text: str) -> list[str]:
        self.append(text)
        return self.finish()

    def stop_early(self, note: str) -> list[str]:
        """Stop was pressed: add `note` to what is shown, post nothing else, end the session."""
        status = self.agent.final_status if self.agent else None
        if isinstance(self.inner, StreamingReply):
            posted = self.inner.stop_early(note, session_status=status)
            by_stream = self.inner.session_status_sent
        else:
            posted = self.inner.stop_early(note)
            by_stream = False
        if self.agent is not None:
            self.agent.ended(by_stream=by_stream)
        return posted
