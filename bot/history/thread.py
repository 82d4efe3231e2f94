"""What a stored Slack thread looks like to the pure conversation logic.

The database layer loads rows into these plain values; everything that turns a thread
into a model request works on them, so it can be tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.images.part import ImagePart

__all__ = ["NOT_PREPARED_IMAGE", "DocumentPart", "FileNote", "ImagePart", "Role", "ThreadEntry", "ToolCall"]

Role = Literal["user", "assistant", "tool"]

# The problem noted for an image file not prepared because newer images fill the request.
NOT_PREPARED_IMAGE = "not included in this request (only the newest images are sent)"


@dataclass(frozen=True)
class DocumentPart:
    """Text read from an attached file (a text-layer PDF, a text or source file), once, and stored."""

    name: str
    text: str


@dataclass(frozen=True)
class FileNote:
    """A file the model cannot see, described in words (or an image that failed)."""

    name: str
    mimetype: str
    size: int
    problem: str | None = None  # why it is not shown, e.g. "could not be downloaded"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text exactly as the model sent it


@dataclass(frozen=True)
class ThreadEntry:
    """One stored message of a thread, in thread order (by ts, then by sequence)."""

    ts: str
    role: Role
    text: str
    user_id: str | None = None
    user_name: str | None = None
    deleted: bool = False
    images: tuple[ImagePart, ...] = ()
    files: tuple[FileNote, ...] = ()
    documents: tuple[DocumentPart, ...] = ()
    # Older images of this entry not loaded because newer ones fill the per-request image cap.
    images_left_out: int = 0
    # The stored estimate of the entry's tokens without attribution and images (see
    # bot.history.estimates.stored_tokens); None: compute it.
    tokens: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # role == "assistant" only
    tool_call_id: str | None = None  # role == "tool" only
    extra: dict = field(default_factory=dict, compare=False)
