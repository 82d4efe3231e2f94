"""Slack's file objects: which of their fields we keep, and stubs.

A Slack Connect file can arrive as a stub (``file_access: check_file_info``) without its
type or links; ``files.info`` has the real object. A file without a mimetype is asked the
same way."""

from __future__ import annotations

STUB_ACCESS = "check_file_info"

# What the history keeps of each file of a message (never content, never thumbnails' URLs).
STORED_FIELDS = (
    "id",
    "name",
    "title",
    "mimetype",
    "filetype",
    "size",
    "url_private_download",
    "url_private",
    "permalink",
    "file_access",
)
# What a moderation job needs to find and report the file; never the message text.
MODERATION_FIELDS = (
    "id",
    "name",
    "mimetype",
    "url_private",
    "url_private_download",
    "permalink",
    "file_access",
    "user",
)


def is_stub(meta: dict) -> bool:
    return meta.get("file_access") == STUB_ACCESS


def needs_file_info(meta: dict) -> bool:
    """Whether only files.info can tell what this file is."""
    return is_stub(meta) or not meta.get("mimetype")
