"""A stored message's parts and its token estimates, from its row and prepared attachments (pure).

Works on any objects with the rows' attribute names (ORM rows, or the plain rows a migration
reads), so the writers, the loader and the backfill migration share one definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.documents.kinds import kind_from_metadata
from bot.history.messages import assistant_message, tool_message, user_text
from bot.history.thread import NOT_PREPARED_IMAGE, DocumentPart, FileNote, ThreadEntry, ToolCall
from bot.limits.tokens import estimate_image_tokens, estimate_messages_tokens


def stored_tokens(entry: ThreadEntry) -> int:
    """The part of an entry's estimate that is stored with its row when it is written, counted
    on the very text the model is sent (bot.history.messages): for a user entry its text, file
    notes and documents without attribution or images (names change when profiles are
    refreshed, images are capped per request); the whole message otherwise.

    bot.conversation.budget.estimate_entry_tokens adds the rest. Estimates of parts add up to at
    least the estimate of the whole (text estimates are subadditive), so the sum stays an upper
    bound.
    """
    if entry.role == "user":
        bare = replace(entry, user_id=None, user_name=None, images=(), images_left_out=0, tokens=None)
        return estimate_messages_tokens([{"role": "user", "content": user_text(bare)}])
    if entry.role == "assistant":
        return estimate_messages_tokens([assistant_message(entry)])
    return estimate_messages_tokens([tool_message(entry)])


@dataclass(frozen=True)
class AttachmentParts:
    """What a message's files become: usable images (attachment, file metadata), notes, documents."""

    images: list[tuple[Any, dict]]
    notes: list[FileNote]
    documents: list[DocumentPart]


def is_usable_image(attachment: Any) -> bool:
    return bool(attachment.media_type and attachment.width and attachment.height) and (
        getattr(attachment, "text", None) is None and getattr(attachment, "problem", None) is None
    )


def attachment_parts(files: Sequence[dict] | None, attachments: Iterable[Any]) -> AttachmentParts:
    """Per prepared attachment: an image, a document or a note with its problem; every file
    without one yet is a plain note (name, type, size). Nothing is dropped."""
    meta_of = {meta.get("id"): meta for meta in files or []}
    position = {file_id: index for index, file_id in enumerate(meta_of)}
    images, notes, documents, seen = [], [], [], set()
    # In the order the files were attached (they may have been prepared in another order).
    for attachment in sorted(attachments, key=lambda a: position.get(a.file_id, len(position))):
        seen.add(attachment.file_id)
        meta = meta_of.get(attachment.file_id, {})
        name = meta.get("name") or attachment.file_id
        text = getattr(attachment, "text", None)
        if text is not None:
            documents.append(DocumentPart(name, text))
        elif is_usable_image(attachment):
            images.append((attachment, meta))
        else:
            notes.append(
                FileNote(
                    name,
                    meta.get("mimetype", ""),
                    int(meta.get("size") or 0),
                    attachment.problem or "could not be read",
                )
            )
    for meta in files or []:
        if meta.get("id") and meta.get("id") not in seen:
            unprepared = NOT_PREPARED_IMAGE if kind_from_metadata(meta) == "image" else None
            notes.append(
                FileNote(
                    meta.get("name", meta.get("id", "file")),
                    meta.get("mimetype", ""),
                    int(meta.get("size") or 0),
                    unprepared,
                )
            )
    return AttachmentParts(images, notes, documents)


def bare_entry(row: Any, parts: AttachmentParts) -> ThreadEntry:
    """The row as an entry without attribution or images: what `stored_tokens` counts."""
    return ThreadEntry(
        ts=getattr(row, "ts", ""),
        role=row.role,
        text=row.text or "",
        deleted=bool(row.deleted),
        files=tuple(parts.notes),
        documents=tuple(parts.documents),
        tool_calls=tuple(ToolCall(c["id"], c["name"], c.get("arguments", "{}")) for c in row.tool_calls or []),
        tool_call_id=row.tool_call_id,
    )


def row_estimates(row: Any, attachments: Iterable[Any]) -> tuple[int, int, int]:
    """(tokens, image_tokens, image_count) to store with a row; a deleted row costs nothing."""
    if row.deleted:
        return 0, 0, 0
    if row.role != "user":  # only user messages carry files
        return stored_tokens(bare_entry(row, AttachmentParts([], [], []))), 0, 0
    parts = attachment_parts(row.files, attachments)
    tokens = stored_tokens(bare_entry(row, parts))
    image_tokens = sum(estimate_image_tokens(a.width, a.height) for a, _ in parts.images)
    return tokens, image_tokens, len(image_files(row.files, {a.file_id for a, _ in parts.images}))


def image_files(files: Sequence[dict] | None, prepared: set[str] = frozenset()) -> list[str]:
    """Ids of a message's image files in the order attached, prepared or not (by their
    metadata, or `prepared` as images: a Slack Connect stub has no mimetype): the thread's image
    numbers count these, so "the second screenshot" means what the person means."""
    return [
        meta["id"]
        for meta in files or []
        if meta.get("id") and (meta["id"] in prepared or kind_from_metadata(meta) == "image")
    ]


__all__ = [
    "AttachmentParts",
    "attachment_parts",
    "bare_entry",
    "image_files",
    "is_usable_image",
    "row_estimates",
    "stored_tokens",
]
