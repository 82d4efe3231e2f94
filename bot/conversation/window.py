"""Load what a reply can send: the newest messages of a thread until the context budget is
full, in one indexed query, with only the attachments that fit.

Every row carries its token estimate (written with it, see `bot.history.estimates`), so
the database picks the rows: a running sum over the thread from its newest message backwards
(the (team, channel, thread, ts, seq) index read in reverse), keeping rows until the sum passes
the budget, plus the oldest row considered (the thread's first message, or the first after the
summary). Nothing older is read, and of the images only the newest that fit the per-request
image cap are loaded with their bytes; older ones are counted and become notes.
"""

from __future__ import annotations

import json
from collections import namedtuple
from dataclasses import dataclass, field

from sqlalchemy import Text, case, cast, func, or_, select, tuple_
from sqlalchemy.orm import Session

from bot.conversation.budget import omitted_marker
from bot.history.estimates import image_files, is_usable_image
from bot.history.models import MessageImage, ThreadMessage
from bot.history.store import entry_of, user_names
from bot.history.thread import ThreadEntry

# Room per row for what the stored estimate leaves out (the attribution), so the rows the
# database picks cover what fit_to_budget keeps; fit_to_budget makes the exact cut.
ATTRIBUTION_ALLOWANCE = 16


# Plain rows, not ORM objects: building thousands of those is most of a rebuild's time otherwise.
ROW_COLUMNS = tuple(
    getattr(ThreadMessage, name)
    for name in (
        "id",
        "ts",
        "seq",
        "role",
        "user_id",
        "text",
        "files",
        "tool_calls",
        "tool_call_id",
        "deleted",
        "tokens",
        "image_tokens",
        "image_count",
    )
)


# In the window query the JSON columns come as text and are decoded here only when not null:
# most rows have neither files nor tool calls, and decoding ~750 JSON nulls was a tenth of a rebuild.
_JSON_COLUMNS = ("files", "tool_calls")
_WINDOW_COLUMNS = tuple(
    cast(column, Text).label(column.key) if column.key in _JSON_COLUMNS else column for column in ROW_COLUMNS
)
WindowRow = namedtuple(  # type: ignore[misc]
    "WindowRow", [column.key for column in ROW_COLUMNS] + ["after", "rows_here_on", "images_here_on"]
)
_FILES_AT, _CALLS_AT = (ROW_COLUMNS.index(getattr(ThreadMessage, name)) for name in _JSON_COLUMNS)


def _json(value: str | None):
    return json.loads(value) if value and value != "null" else None


def _window_row(values) -> WindowRow:
    values = list(values)
    values[_FILES_AT], values[_CALLS_AT] = _json(values[_FILES_AT]), _json(values[_CALLS_AT])
    return WindowRow._make(values)


@dataclass(frozen=True)
class Window:
    rows: list  # oldest first; rows with the ROW_COLUMNS attributes
    total_rows: int  # rows of the thread considered (after the summary, not deleted)
    total_tokens: int  # their stored estimates, summed
    first_image: dict = field(default_factory=dict)  # row id → the number of its first image in the thread

    @property
    def omitted(self) -> int:
        return self.total_rows - len(self.rows)


def thread_rows(team_id: str, channel_id: str, thread_ts: str, after: tuple[str, int] | None):
    """The conditions for a thread's live rows (after the position ``after``, when given)."""
    conditions = [
        ThreadMessage.team_id == team_id,
        ThreadMessage.channel_id == channel_id,
        ThreadMessage.thread_ts == thread_ts,
        ThreadMessage.deleted.is_(False),
    ]
    if after is not None:
        conditions.append(tuple_(ThreadMessage.ts, ThreadMessage.seq) > tuple_(*after))
    return conditions


def newest_rows(
    session: Session,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    *,
    budget_tokens: int,
    after: tuple[str, int] | None = None,
) -> Window:
    """The newest rows whose estimates add up to `budget_tokens` (the one crossing it included),
    and the oldest row; `after`: only rows after this (ts, seq), the part a summary covers."""
    cost = ThreadMessage.tokens + ThreadMessage.image_tokens + ATTRIBUTION_ALLOWANCE
    newest_first = (ThreadMessage.ts.desc(), ThreadMessage.seq.desc())
    in_thread = thread_rows(team_id, channel_id, thread_ts, after)
    # One pass over the thread's index from the newest row: running sums only (one window, no
    # second pass for totals: at the oldest row, which is always kept, they are the totals).
    windowed = (
        select(
            ThreadMessage.id.label("id"),
            cost.label("cost"),
            func.sum(cost).over(order_by=newest_first, rows=(None, 0)).label("after"),
            func.count().over(order_by=newest_first, rows=(None, 0)).label("rows_here_on"),
            func.sum(ThreadMessage.image_count).over(order_by=newest_first, rows=(None, 0)).label("images_here_on"),
        )
        .where(*in_thread)
        .subquery()
    )
    oldest = (
        select(ThreadMessage.id).where(*in_thread).order_by(ThreadMessage.ts, ThreadMessage.seq).limit(1)
    ).scalar_subquery()
    query = (
        select(*_WINDOW_COLUMNS, windowed.c.after, windowed.c.rows_here_on, windowed.c.images_here_on)
        .join(windowed, windowed.c.id == ThreadMessage.id)
        .where(or_(windowed.c.after - windowed.c.cost < budget_tokens, windowed.c.id == oldest))
        .order_by(ThreadMessage.ts, ThreadMessage.seq)
    )
    # Core, not the ORM: plain rows need none of its per-row work.
    result = [_window_row(values) for values in session.connection().execute(query)]
    if not result:
        return Window([], 0, 0)
    first = result[0]
    all_images = int(first.images_here_on or 0)
    first_image = {row.id: all_images - int(row.images_here_on or 0) + 1 for row in result if row.image_count}
    return Window(list(result), int(first.rows_here_on), int(first.after), first_image)


def load_window(
    session: Session,
    team_id: str,
    channel_id: str,
    thread_ts: str,
    *,
    budget_tokens: int,
    max_images: int,
    after: tuple[str, int] | None = None,
    window: Window | None = None,
) -> tuple[list[ThreadEntry], Window]:
    """The entries a reply rebuilds from: `newest_rows`, their prepared attachments (image bytes
    only for the newest `max_images` usable images), names, and a marker for the rows not
    loaded, so the prompt says that they were left out. `window`: rows already picked by
    `newest_rows` with the same arguments, still current (no attachment prepared since)."""
    if window is None:
        window = newest_rows(session, team_id, channel_id, thread_ts, budget_tokens=budget_tokens, after=after)
    rows = window.rows
    if not rows:
        return [], window
    # The rows holding the newest `max_images` images, from the stored counts: only their
    # images' bytes are read, in the same query as every attachment's metadata.
    with_bytes, wanted = set(), max_images
    for row in reversed(rows):
        if wanted <= 0:
            break
        if row.role == "user" and row.image_count:
            with_bytes.add(row.id)
            wanted -= row.image_count
    ids = [row.id for row in rows if row.files and row.role == "user"]  # only user messages carry files
    attachments = (
        list(
            session.execute(
                select(
                    MessageImage.id,
                    MessageImage.message_id,
                    MessageImage.file_id,
                    MessageImage.media_type,
                    MessageImage.width,
                    MessageImage.height,
                    MessageImage.problem,
                    MessageImage.text,
                    case((MessageImage.message_id.in_(with_bytes), MessageImage.data), else_=None).label("data"),
                )
                .where(MessageImage.message_id.in_(ids))
                .order_by(MessageImage.id)
            ).all()
        )
        if ids
        else []
    )
    order = {row.id: position for position, row in enumerate(rows)}
    with_files = set(ids)
    files_of = {row.id: [meta.get("id") for meta in row.files or []] for row in rows if row.id in with_files}

    def place(attachment) -> tuple[int, int]:  # thread order, then the order files were attached in
        files = files_of.get(attachment.message_id, [])
        return order[attachment.message_id], files.index(attachment.file_id) if attachment.file_id in files else len(
            files
        )

    usable = sorted((a for a in attachments if is_usable_image(a)), key=place)
    usable_ids: dict[int, set[str]] = {}
    for attachment in usable:
        usable_ids.setdefault(attachment.message_id, set()).add(attachment.file_id)
    images_of = {row.id: image_files(row.files, usable_ids.get(row.id, set())) for row in rows if row.id in with_files}
    chosen = {a.id for a in usable[-max_images:] if a.data is not None} if max_images else set()
    # Each image's place in the thread: its row's first number, then its place among the row's image files.
    numbers: dict[int, int] = {}
    for attachment in usable:
        if attachment.id in chosen and attachment.message_id in window.first_image:
            row_images = images_of.get(attachment.message_id, [])
            if attachment.file_id in row_images:
                numbers[attachment.id] = window.first_image[attachment.message_id] + row_images.index(
                    attachment.file_id
                )
    per_row: dict[int, list] = {}
    left_out: dict[int, int] = {}
    for attachment in attachments:
        if is_usable_image(attachment) and attachment.id not in chosen:
            left_out[attachment.message_id] = left_out.get(attachment.message_id, 0) + 1
            continue
        per_row.setdefault(attachment.message_id, []).append(attachment)
    names = user_names(session, team_id, {row.user_id for row in rows if row.user_id})
    entries = [
        entry_of(row, per_row.get(row.id, []), names, numbers=numbers, left_out=left_out.get(row.id, 0)) for row in rows
    ]
    if window.omitted:
        entries.insert(1, omitted_marker(rows[0].ts, window.omitted))
    return entries, window


__all__ = ["ATTRIBUTION_ALLOWANCE", "Window", "load_window", "newest_rows"]
