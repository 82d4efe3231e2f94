"""Threads the bot is engaged in, and every message of them, as the model will see them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId, JsonDocument, UTCDateTime


class Thread(Base):
    __tablename__ = "threads"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    engaged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A thread the bot joined mid-way is read from Slack once (conversations.replies), never again.
    needs_backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    backfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ThreadMessage(Base):
    """One entry of a thread: a Slack message (seq 0), or the bot's tool rounds and answer,
    stored under the ts of the message they answer with seq 1, 2, … so they sort right after it."""

    __tablename__ = "thread_messages"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | tool
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[list | None] = mapped_column(JsonDocument, nullable=True)  # Slack file metadata
    tool_calls: Mapped[list | None] = mapped_column(JsonDocument, nullable=True)
    tool_call_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reply_ts: Mapped[list | None] = mapped_column(JsonDocument, nullable=True)  # the bot's posted parts
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Token estimates kept with the row so a rebuild does not recount the thread: `tokens` is
    # bot.history.estimates.stored_tokens (text, file notes, documents; no attribution, no
    # images), `image_tokens` the prepared images' cost and `image_count` their number. Updated whenever the row or its
    # attachments change.
    tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    image_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    image_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # usable images

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "ts", "seq"),
        Index("ix_thread_messages_thread", "team_id", "channel_id", "thread_ts", "ts", "seq"),
    )


class MessageImage(Base):
    """An attachment after preparation, kept so a rebuild never downloads twice: an image
    validated and scaled (`data`), or the text read from a document (`text`), or why neither
    could be had (`problem`). One row per (message, file)."""

    __tablename__ = "message_images"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("thread_messages.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(String(32))
    media_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it could not be used
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # a document's extracted text

    __table_args__ = (UniqueConstraint("message_id", "file_id"),)


class AttachmentRead(Base):
    """A claim on reading one file of one message (bot.history.attachments): while it is held,
    another reply waits for the outcome instead of reading the same file again. Taken over
    when older than the claim's time (its reader died); removed when the outcome is stored."""

    __tablename__ = "attachment_reads"

    message_id: Mapped[int] = mapped_column(ForeignKey("thread_messages.id", ondelete="CASCADE"), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ThreadSummary(Base):
    """A long thread's running summary (bot.conversation.summary): the messages up to
    (covers_ts, covers_seq) in a few hundred words, and whether a (re)write is requested."""

    __tablename__ = "thread_summaries"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text, default="")  # empty until the first one is written
    covers_ts: Mapped[str] = mapped_column(String(32), default="")
    covers_seq: Mapped[int] = mapped_column(Integer, default=0)
    covered: Mapped[int] = mapped_column(Integer, default=0)  # messages it stands for
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SlackUser(Base):
    """users.info, cached: names for attribution and the admin flag for permissions."""

    __tablename__ = "slack_users"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
