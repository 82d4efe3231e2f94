"""The history store: threads and their messages in the database, scoped by team.

Functions work in the caller's session; the caller commits. Loading returns the plain
`ThreadEntry` values the pure conversation logic works on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.db.clock import db_now
from bot.db.dialect import insert as dialect_insert
from bot.history.estimates import attachment_parts, row_estimates
from bot.history.models import MessageImage, SlackUser, Thread, ThreadMessage, ThreadSummary
from bot.history.thread import ImagePart, ThreadEntry, ToolCall
from bot.images.files import STORED_FIELDS

USER_CACHE_TTL = timedelta(hours=24)


# -- threads ------------------------------------------------------------------------------


def get_thread(session: Session, team_id: str, channel_id: str, thread_ts: str) -> Thread | None:
    return session.get(Thread, (team_id, channel_id, thread_ts))


def engage_thread(session: Session, team_id: str, channel_id: str, thread_ts: str, *, mid_thread: bool) -> bool:
    """Start following a thread. True if it is new to us. `mid_thread`: the thread has
    earlier messages we have not seen, so the worker backfills it once."""
    now = db_now(session)
    result = session.execute(
        dialect_insert(session)(Thread)
        .values(
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            engaged_at=now,
            needs_backfill=mid_thread,
            last_activity_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Thread.team_id, Thread.channel_id, Thread.thread_ts])
        .returning(Thread.thread_ts)  # rowcount is not reliable for ORM-enabled upserts
    )
    return result.first() is not None


def touch_thread(session: Session, team_id: str, channel_id: str, thread_ts: str) -> None:
    session.execute(
        update(Thread)
        .where(Thread.team_id == team_id, Thread.channel_id == channel_id, Thread.thread_ts == thread_ts)
        .values(last_activity_at=db_now(session))
    )


def mark_backfilled(session: Session, team_id: str, channel_id: str, thread_ts: str) -> None:
    session.execute(
        update(Thread)
        .where(Thread.team_id == team_id, Thread.channel_id == channel_id, Thread.thread_ts == thread_ts)
        .values(needs_backfill=False, backfilled_at=db_now(session))
    )


# -- messages -----------------------------------------------------------------------------


def file_metadata(files: Iterable[dict] | None) -> list[dict] | None:
    """What we keep of Slack's file objects (never their content, never thumbnails' URLs)."""
    kept = [
        {key: f.get(key) for key in STORED_FIELDS if f.get(key) is not None}
        for f in files or ()
        if isinstance(f, dict) and f.get("id")
    ]
    return kept or None


def upsert_message(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    ts: str,
    user_id: str | None,
    text: str,
    files: list[dict] | None = None,
    role: str = "user",
) -> bool:
    """Store a Slack message once; a repeat delivery changes nothing. True if it was new."""
    now = db_now(session)
    kept_files = file_metadata(files)
    tokens, _, image_count = row_estimates(_Row(role=role, text=text or "", files=kept_files), ())
    result = session.execute(
        dialect_insert(session)(ThreadMessage)
        .values(
            team_id=team_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            ts=ts,
            seq=0,
            role=role,
            user_id=user_id,
            text=text or "",
            files=kept_files,
            edited=False,
            deleted=False,
            created_at=now,
            updated_at=now,
            tokens=tokens,
            image_tokens=0,
            image_count=image_count,
        )
        .on_conflict_do_nothing(
            index_elements=[ThreadMessage.team_id, ThreadMessage.channel_id, ThreadMessage.ts, ThreadMessage.seq]
        )
        .returning(ThreadMessage.id)
    )
    return result.first() is not None


def edit_message(
    session: Session, *, team_id: str, channel_id: str, ts: str, text: str, files: list[dict] | None
) -> bool:
    result = session.execute(
        update(ThreadMessage)
        .where(
            ThreadMessage.team_id == team_id,
            ThreadMessage.channel_id == channel_id,
            ThreadMessage.ts == ts,
            ThreadMessage.seq == 0,
        )
        .values(text=text or "", files=file_metadata(files), edited=True, updated_at=db_now(session))
    )
    if result.rowcount:
        ids = select(ThreadMessage.id).where(
            ThreadMessage.team_id == team_id,
            ThreadMessage.channel_id == channel_id,
            ThreadMessage.ts == ts,
            ThreadMessage.seq == 0,
        )
        refresh_tokens(session, list(session.execute(ids).scalars()))
        _forget_summary_covering(session, team_id, channel_id, ts)
    return result.rowcount > 0


def delete_message(session: Session, *, team_id: str, channel_id: str, ts: str) -> bool:
    """The model never sees it again; its text and images are dropped, not just hidden."""
    ids = select(ThreadMessage.id).where(
        ThreadMessage.team_id == team_id,
        ThreadMessage.channel_id == channel_id,
        ThreadMessage.ts == ts,
        ThreadMessage.seq == 0,
    )
    session.execute(delete(MessageImage).where(MessageImage.message_id.in_(ids)))
    result = session.execute(
        update(ThreadMessage)
        .where(
            ThreadMessage.team_id == team_id,
            ThreadMessage.channel_id == channel_id,
            ThreadMessage.ts == ts,
            ThreadMessage.seq == 0,
        )
        .values(text="", files=None, deleted=True, updated_at=db_now(session), tokens=0, image_tokens=0, image_count=0)
    )
    if result.rowcount:
        _forget_summary_covering(session, team_id, channel_id, ts)
    return result.rowcount > 0


def _forget_summary_covering(session: Session, team_id: str, channel_id: str, ts: str) -> None:
    """A summary that covers an edited or deleted message goes: it would keep the old words. The
    next reply asks for a new one, written from the messages as they are now."""
    thread_ts = thread_of_message(session, team_id, channel_id, ts)
    if thread_ts is None:
        return
    session.execute(
        delete(ThreadSummary).where(
            ThreadSummary.team_id == team_id,
            ThreadSummary.channel_id == channel_id,
            ThreadSummary.thread_ts == thread_ts,
            ThreadSummary.covers_ts >= ts,
        )
    )


@dataclass
class _Row:
    """A message about to be written, for `row_estimates`."""

    role: str
    text: str
    files: list[dict] | None = None
    tool_calls: list[dict] | None = None
    tool_call_id: str | None = None
    deleted: bool = False


def refresh_tokens(session: Session, message_ids: list[int]) -> None:
    """Recompute the stored estimates of these messages from their rows and prepared
    attachments (after an edit, or once their files were read)."""
    if not message_ids:
        return
    attachments: dict[int, list] = {}
    for attachment in session.execute(
        select(
            MessageImage.message_id,
            MessageImage.file_id,
            MessageImage.media_type,
            MessageImage.width,
            MessageImage.height,
            MessageImage.problem,
            MessageImage.text,
        ).where(MessageImage.message_id.in_(message_ids))
    ):
        attachments.setdefault(attachment.message_id, []).append(attachment)
    for row in session.execute(select(ThreadMessage).where(ThreadMessage.id.in_(message_ids))).scalars():
        row.tokens, row.image_tokens, row.image_count = row_estimates(row, attachments.get(row.id, []))
    session.flush()


def thread_of_message(session: Session, team_id: str, channel_id: str, ts: str) -> str | None:
    return session.execute(
        select(ThreadMessage.thread_ts)
        .where(ThreadMessage.team_id == team_id, ThreadMessage.channel_id == channel_id, ThreadMessage.ts == ts)
        .limit(1)
    ).scalar_one_or_none()


def _lock_thread(session: Session, team_id: str, channel_id: str, thread_ts: str) -> bool:
    """Lock the thread's row for this transaction; False if the thread is not stored (forgotten)."""
    return (
        session.execute(
            select(Thread.thread_ts)
            .where(Thread.team_id == team_id, Thread.channel_id == channel_id, Thread.thread_ts == thread_ts)
            .with_for_update()
        ).first()
        is not None
    )


def record_turn(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    answers_ts: str,
    entries: list[dict],
) -> bool:
    """Store the bot's turn (tool calls, tool results, answer) right after the message it answers.
    Each entry: role, text, and optionally tool_calls, tool_call_id, reply_ts. Nothing is written
    into a thread that was forgotten meanwhile (False): a reply in flight never brings it back."""
    if not _lock_thread(session, team_id, channel_id, thread_ts):
        return False
    now = db_now(session)
    last = session.execute(
        select(ThreadMessage.seq)
        .where(ThreadMessage.team_id == team_id, ThreadMessage.channel_id == channel_id, ThreadMessage.ts == answers_ts)
        .order_by(ThreadMessage.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    seq = (last or 0) + 1
    for entry in entries:
        row = _Row(
            role=entry["role"],
            text=entry.get("text") or "",
            tool_calls=entry.get("tool_calls"),
            tool_call_id=entry.get("tool_call_id"),
        )
        session.add(
            ThreadMessage(
                team_id=team_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                ts=answers_ts,
                seq=seq,
                role=entry["role"],
                user_id=None,
                text=entry.get("text") or "",
                tool_calls=entry.get("tool_calls"),
                tool_call_id=entry.get("tool_call_id"),
                reply_ts=entry.get("reply_ts"),
                edited=False,
                deleted=False,
                created_at=now,
                updated_at=now,
                tokens=row_estimates(row, ())[0],
                image_tokens=0,
            )
        )
        seq += 1
    session.flush()
    return True


def forget_thread(session: Session, team_id: str, channel_id: str, thread_ts: str) -> int:
    """Delete a thread's stored history (its images go with it). Returns messages deleted.
    The thread's row is locked first, so a reply storing its turn (`record_turn`, which locks
    it too) either finishes before and is deleted with the rest, or finds the thread gone."""
    _lock_thread(session, team_id, channel_id, thread_ts)
    ids = select(ThreadMessage.id).where(
        ThreadMessage.team_id == team_id,
        ThreadMessage.channel_id == channel_id,
        ThreadMessage.thread_ts == thread_ts,
    )
    session.execute(delete(MessageImage).where(MessageImage.message_id.in_(ids)))
    result = session.execute(
        delete(ThreadMessage).where(
            ThreadMessage.team_id == team_id,
            ThreadMessage.channel_id == channel_id,
            ThreadMessage.thread_ts == thread_ts,
        )
    )
    session.execute(
        delete(Thread).where(Thread.team_id == team_id, Thread.channel_id == channel_id, Thread.thread_ts == thread_ts)
    )
    session.execute(
        delete(ThreadSummary).where(
            ThreadSummary.team_id == team_id,
            ThreadSummary.channel_id == channel_id,
            ThreadSummary.thread_ts == thread_ts,
        )
    )
    return result.rowcount


# -- loading --------------------------------------------------------------------------------


def load_rows(
    session: Session, team_id: str, channel_id: str, thread_ts: str, *, newest_chars: int | None = None
) -> list[ThreadMessage]:
    """The thread in order. With `newest_chars`, only the newest messages whose text adds up
    to that much, plus the thread's first message: what the context budget could keep anyway,
    so a 10,000-message thread does not load 10,000 rows."""
    in_thread = (
        ThreadMessage.team_id == team_id,
        ThreadMessage.channel_id == channel_id,
        ThreadMessage.thread_ts == thread_ts,
    )
    query = select(ThreadMessage).where(*in_thread)
    if newest_chars is not None:
        newest = (
            select(
                ThreadMessage.id.label("id"),
                func.sum(func.length(ThreadMessage.text))
                .over(order_by=(ThreadMessage.ts.desc(), ThreadMessage.seq.desc()))
                .label("chars_after"),
            )
            .where(*in_thread)
            .subquery()
        )
        first = select(ThreadMessage.id).where(*in_thread).order_by(ThreadMessage.ts, ThreadMessage.seq).limit(1)
        kept = select(newest.c.id).where(newest.c.chars_after <= newest_chars)
        query = query.where(or_(ThreadMessage.id.in_(kept), ThreadMessage.id.in_(first)))
    return list(session.execute(query.order_by(ThreadMessage.ts, ThreadMessage.seq)).scalars())


def load_thread(
    session: Session, team_id: str, channel_id: str, thread_ts: str, *, newest_chars: int | None = None
) -> list[ThreadEntry]:
    rows = load_rows(session, team_id, channel_id, thread_ts, newest_chars=newest_chars)
    images: dict[int, list[MessageImage]] = {}
    if rows:
        for image in session.execute(
            select(MessageImage).where(MessageImage.message_id.in_([row.id for row in rows])).order_by(MessageImage.id)
        ).scalars():
            images.setdefault(image.message_id, []).append(image)
    names = user_names(session, team_id, {row.user_id for row in rows if row.user_id})
    return [entry_of(row, images.get(row.id, []), names) for row in rows]


def entry_of(
    row: ThreadMessage,
    images: list[MessageImage],
    names: dict[str, str],
    *,
    numbers: dict[int, int] | None = None,
    left_out: int = 0,
) -> ThreadEntry:
    """`images`: the row's prepared attachments (documents and failures included); `numbers`:
    attachment id → its place among the thread's images; `left_out`: usable images not loaded."""
    images_, notes, documents = (), (), ()
    if row.files or images:  # most rows have no files: skip the work
        parts = attachment_parts(row.files, images)
        numbers = numbers or {}
        images_ = tuple(
            ImagePart(
                image.media_type,
                getattr(image, "data", None) or b"",
                image.width,
                image.height,
                name=meta.get("name", ""),
                number=numbers.get(image.id, 0),
            )
            for image, meta in parts.images
        )
        notes, documents = tuple(parts.notes), tuple(parts.documents)
    calls = row.tool_calls
    return ThreadEntry(
        ts=row.ts,
        role=row.role,  # type: ignore[arg-type]
        text=row.text,
        user_id=row.user_id,
        user_name=names.get(row.user_id) if row.user_id else None,
        deleted=row.deleted,
        images=images_,
        files=notes,
        documents=documents,
        images_left_out=left_out,
        tokens=row.tokens or None,  # 0: not estimated yet (rows written before estimates), count it
        tool_calls=tuple(ToolCall(c["id"], c["name"], c.get("arguments", "{}")) for c in calls) if calls else (),
        tool_call_id=row.tool_call_id,
        extra={"id": row.id, "seq": row.seq},
    )


# -- users ----------------------------------------------------------------------------------


def user_names(session: Session, team_id: str, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(SlackUser.user_id, SlackUser.display_name).where(
            SlackUser.team_id == team_id, SlackUser.user_id.in_(user_ids)
        )
    ).all()
    return {user_id: name for user_id, name in rows if name}


def stale_users(session: Session, team_id: str, user_ids: set[str], now: datetime) -> set[str]:
    """Users never fetched or fetched over a day ago."""
    if not user_ids:
        return set()
    fresh = set(
        session.execute(
            select(SlackUser.user_id).where(
                SlackUser.team_id == team_id,
                SlackUser.user_id.in_(user_ids),
                SlackUser.fetched_at > now - USER_CACHE_TTL,
            )
        ).scalars()
    )
    return user_ids - fresh


def save_user(
    session: Session,
    *,
    team_id: str,
    user_id: str,
    display_name: str,
    is_admin: bool,
    is_bot: bool,
    timezone: str | None,
) -> None:
    values = dict(
        display_name=display_name[:200], is_admin=is_admin, is_bot=is_bot, timezone=timezone, fetched_at=db_now(session)
    )
    statement = dialect_insert(session)(SlackUser).values(team_id=team_id, user_id=user_id, **values)
    session.execute(statement.on_conflict_do_update(index_elements=[SlackUser.team_id, SlackUser.user_id], set_=values))


def get_user(session: Session, team_id: str, user_id: str) -> SlackUser | None:
    return session.get(SlackUser, (team_id, user_id))
