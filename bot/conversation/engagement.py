"""Which Slack message events the bot stores and answers (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["message", "edit", "delete", "ignore"]

# Subtypes that are ordinary messages; others (joins, topic changes, …) are not conversation.
MESSAGE_SUBTYPES = {None, "", "file_share", "thread_broadcast", "me_message", "bot_message"}


@dataclass(frozen=True)
class Inbound:
    kind: Kind
    channel: str = ""
    ts: str = ""
    thread_ts: str = ""
    user: str = ""
    text: str = ""
    files: tuple = ()
    channel_type: str = ""
    mentions_bot: bool = False
    from_bot: bool = False
    reason: str = ""  # why it is ignored, for the log

    @property
    def in_thread(self) -> bool:
        return self.thread_ts != self.ts

    @property
    def is_dm(self) -> bool:
        return self.channel_type == "im"


@dataclass(frozen=True)
class Decision:
    engage: bool  # start following the thread
    store: bool  # keep the message in the thread's history
    answer: bool  # enqueue a reply
    mid_thread: bool  # the thread has earlier messages we have not seen: backfill once


def _str(value: object) -> str:
    """Slack sends strings; anything else (a malformed or hostile payload) counts as absent."""
    return value if isinstance(value, str) else ""


def _files(value: object) -> tuple:
    return tuple(f for f in value if isinstance(f, dict)) if isinstance(value, list) else ()


def classify(event: dict, *, bot_user_id: str | None, bot_id: str | None, allow_bots: bool) -> Inbound:
    """Read a message or app_mention event into the facts the decision needs."""
    subtype = event.get("subtype")
    channel = _str(event.get("channel"))
    if subtype == "message_changed":
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        ts = _str(message.get("ts"))
        if not channel or not ts:
            return Inbound(kind="ignore", reason="malformed edit")
        return Inbound(
            kind="edit",
            channel=channel,
            ts=ts,
            thread_ts=_str(message.get("thread_ts")) or ts,
            user=_str(message.get("user")),
            text=_str(message.get("text")),
            files=_files(message.get("files")),
        )
    if subtype == "message_deleted":
        if not channel or not _str(event.get("deleted_ts")):
            return Inbound(kind="ignore", reason="malformed deletion")
        return Inbound(kind="delete", channel=channel, ts=_str(event.get("deleted_ts")))
    if not isinstance(subtype, str | None) or subtype not in MESSAGE_SUBTYPES:
        return Inbound(kind="ignore", reason=f"subtype {subtype}")
    user = _str(event.get("user"))
    own = bool(user and user == bot_user_id) or bool(bot_id and event.get("bot_id") == bot_id)
    if own:
        return Inbound(kind="ignore", reason="own message")
    from_bot = bool(event.get("bot_id")) or subtype == "bot_message"
    if from_bot and not allow_bots:
        return Inbound(kind="ignore", reason="other bot")
    text = _str(event.get("text"))
    ts = _str(event.get("ts"))
    if not channel or not ts:
        return Inbound(kind="ignore", reason="no channel or ts")
    return Inbound(
        kind="message",
        channel=channel,
        ts=ts,
        thread_ts=_str(event.get("thread_ts")) or ts,
        user=user or _str(event.get("bot_id")),
        text=text,
        files=_files(event.get("files")),
        channel_type=_str(event.get("channel_type")),
        mentions_bot=event.get("type") == "app_mention" or bool(bot_user_id and f"<@{bot_user_id}>" in text),
        from_bot=from_bot,
    )


def decide(inbound: Inbound, *, thread_engaged: bool, answer_followups: bool) -> Decision:
    if inbound.kind != "message":
        return Decision(engage=False, store=False, answer=False, mid_thread=False)
    followup = thread_engaged and inbound.in_thread and answer_followups and not inbound.from_bot
    answer = inbound.mentions_bot or inbound.is_dm or followup
    engage = answer and not thread_engaged
    return Decision(
        engage=engage,
        store=answer or thread_engaged,
        answer=answer,
        mid_thread=engage and inbound.in_thread,
    )
