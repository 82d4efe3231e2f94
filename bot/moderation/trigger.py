"""Which posted files get moderated (pure).

Every image posted in a watched channel is moderated once: in top-level messages, thread
replies, and edits (``message_changed``) that add files. A channel is watched when it is in
MODERATION_CHANNELS, unless an admin switched it off with ``/moderation off``; any other
channel is watched only after ``/moderation on`` (the stored switch always wins).

"Once" is per (team, file id): `file_key` is the idempotency key the caller claims in the
transaction that enqueues the job, so retried deliveries, the app_mention twin of a message
and later edits listing the same file all find the key taken.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot.conversation.engagement import Inbound
from bot.images.files import MODERATION_FIELDS, is_stub

# Files Slack no longer shows (deleted, or beyond a free workspace's history limit).
GONE_MODES = frozenset({"tombstone", "hidden_by_limit"})
FILE_FIELDS = MODERATION_FIELDS


@dataclass(frozen=True)
class FileToModerate:
    file_id: str
    meta: dict  # a subset of Slack's file object (FILE_FIELDS)


def is_watched(channel: str, configured: Collection[str], switch: bool | None) -> bool:
    """`switch`: the stored ``/moderation on|off`` for this channel, None when never set."""
    if switch is not None:
        return switch
    return channel in configured


def might_be_image(meta: dict) -> bool:
    """An image by its mimetype, or a stub whose type only files.info will tell."""
    if meta.get("mode") in GONE_MODES:
        return False
    mimetype = str(meta.get("mimetype") or "")
    if mimetype:
        return mimetype.startswith("image/")
    return is_stub(meta)


def files_to_moderate(inbound: Inbound) -> list[FileToModerate]:
    """Image files of a new or edited message, each once, in the order posted."""
    if inbound.kind not in ("message", "edit") or not inbound.channel:
        return []
    return _unique_images(inbound.files)


def _unique_images(files: Iterable) -> list[FileToModerate]:
    found: list[FileToModerate] = []
    seen: set[str] = set()
    for meta in files:
        if not isinstance(meta, dict) or not meta.get("id") or meta["id"] in seen or not might_be_image(meta):
            continue
        seen.add(meta["id"])
        found.append(FileToModerate(meta["id"], {key: meta[key] for key in FILE_FIELDS if meta.get(key)}))
    return found


def file_key(file_id: str) -> str:
    return f"moderation:file:{file_id}"
