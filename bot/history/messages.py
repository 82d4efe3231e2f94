"""A stored thread → OpenAI-format chat messages for Heroku Managed Inference (pure).

The result is always a sequence Claude accepts, whatever the thread went through
(deletions, a crash between a tool call and its result, a bot reply that starts the thread):

* the system message comes first, then a user message;
* roles alternate: consecutive user messages are merged into one (each part keeps its own
  ``[<@U123> Alice]: `` attribution, so nothing is lost), and so are consecutive assistant
  messages. Claude's own API would merge them too, but not every gateway does, and merged
  turns are what the model sees anyway;
* every tool call is answered exactly once, immediately after the assistant message that
  made it: results are looked up by ``tool_call_id`` wherever they are stored, a missing one
  becomes ``(no result recorded)``, and a result whose call is gone is not sent at all;
* after tool results the next message is an assistant one: if a user message follows
  directly (the final answer was never stored), a short placeholder reply is put between;
* if the first kept entry is the bot's, a placeholder user turn says the start of the
  thread is not available (rather than dropping the bot's words, which may be the context
  the newest question refers to).

An empty thread gives just the system message; callers always have a user message to answer.
The sequence may end with an assistant message only if the stored thread does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.history.thread import NOT_PREPARED_IMAGE, DocumentPart, FileNote, ImagePart, ThreadEntry

# Placeholders keep the sequence valid; each says in words what is missing.
THREAD_START_PLACEHOLDER = "(the beginning of this thread is not available)"
TOOL_CALLS_PLACEHOLDER = "(using tools)"  # Claude wants non-empty content next to tool calls
MISSING_TOOL_RESULT = "(no result recorded)"
EMPTY_TOOL_RESULT = "(empty result)"
MISSING_REPLY_PLACEHOLDER = "(no reply was recorded)"
IMAGE_LEFT_OUT_NOTE = "(an earlier image was left out)"

DEFAULT_MAX_IMAGES = 10

# Attribution must not be forgeable from a display name, so names lose brackets and line breaks.
_NAME_NOISE = re.compile(r"[\[\]\x00-\x1f\x7f\u0085\u2028\u2029]+")
_USER_ID_NOISE = re.compile(r"[^A-Za-z0-9]+")
_SPACES = re.compile(r"\s+")


def _clean_name(value: str | None) -> str:
    if not value:
        return ""
    return _SPACES.sub(" ", _NAME_NOISE.sub(" ", value)).strip()


def attribution(entry: ThreadEntry) -> str:
    """``[<@U123> Alice]: `` (or the parts that are known; empty when neither is)."""
    user_id = _USER_ID_NOISE.sub("", entry.user_id or "")
    name = _clean_name(entry.user_name)
    who = " ".join(part for part in (f"<@{user_id}>" if user_id else "", name) if part)
    return f"[{who}]: " if who else ""


def human_size(size: int) -> str:
    """1536 → ``1.5 KB`` (binary units, one decimal; bytes as a whole number)."""
    if size < 0:
        return "unknown size"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TB"


def file_note(note: FileNote) -> str:
    """A one-line description of a file the model cannot see, and why if there is a reason."""
    name = _clean_name(note.name).replace('"', "'") or "unnamed"
    mimetype = _clean_name(note.mimetype) or "unknown type"
    described = f'attached file "{name}", {mimetype}, {human_size(note.size)}'
    problem = _clean_name(note.problem)
    if problem == NOT_PREPARED_IMAGE:
        return f"({described}; {problem})"
    if problem:
        return f"({described}; could not be read: {problem})"
    return f"({described}; not readable)"


def _who(entry: ThreadEntry) -> str:
    who = attribution(entry).removeprefix("[").removesuffix("]: ")
    return f" by {who}" if who else ""


def document_text(document: DocumentPart, entry: ThreadEntry) -> str:
    """A file's text, between lines naming the file and who shared it."""
    name = _clean_name(document.name).replace('"', "'") or "unnamed"
    return f'--- file "{name}", shared{_who(entry)}; its text: ---\n{document.text.strip()}\n--- end of "{name}" ---'


def image_label(image: ImagePart, entry: ThreadEntry) -> str:
    """The line before an image: which of the thread's images it is, its name and who posted it."""
    name = _clean_name(image.name).replace('"', "'")
    which = f"image {image.number} of this thread" if image.number else "image"
    named = f', "{name}"' if name else ""
    return f"({which}{named}, posted{_who(entry)})"


def user_text(entry: ThreadEntry, *, images_left_out: int = 0) -> str:
    """The text a user entry is sent as: attribution + text, then one line per file note, the
    documents' text, and one line per left-out image."""
    head = attribution(entry) + entry.text.strip()
    lines = [head.rstrip()] if head.strip() else []
    lines.extend(file_note(note) for note in entry.files)
    lines.extend(document_text(document, entry) for document in entry.documents)
    lines.extend([IMAGE_LEFT_OUT_NOTE] * (images_left_out + entry.images_left_out))
    return "\n".join(lines)


def image_part(media_type: str, data: bytes) -> dict[str, Any]:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def assistant_message(entry: ThreadEntry) -> dict[str, Any]:
    """The assistant message for one entry; tool calls in OpenAI format, content never empty beside them."""
    text = entry.text.rstrip()  # Claude rejects a final assistant turn that ends in whitespace
    if not entry.tool_calls:
        return {"role": "assistant", "content": text}
    return {
        "role": "assistant",
        "content": text if text.strip() else TOOL_CALLS_PLACEHOLDER,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}
            for call in entry.tool_calls
        ],
    }


def tool_message(entry: ThreadEntry) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": entry.tool_call_id,
        "content": entry.text if entry.text.strip() else EMPTY_TOOL_RESULT,
    }


def missing_tool_result(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": MISSING_TOOL_RESULT}


def sendable_entries(entries: Sequence[ThreadEntry]) -> list[ThreadEntry]:
    """The entries that will be sent, in thread order.

    Left out: deleted entries; user entries with no text, images or files; assistant entries
    with neither text nor tool calls; tool results whose call is not in a kept assistant entry,
    and second results for the same call. A tool call id used again by a later assistant entry
    is removed from that entry (ids must be unique in a request).
    """
    kept: list[ThreadEntry] = []
    call_ids: set[str] = set()
    for entry in entries:
        if entry.deleted:
            continue
        if entry.role == "user":
            if entry.text.strip() or entry.images or entry.files or entry.documents or entry.images_left_out:
                kept.append(entry)
        elif entry.role == "assistant":
            calls = []
            for call in entry.tool_calls:
                if call.id and call.id not in call_ids:
                    call_ids.add(call.id)
                    calls.append(call)
            if len(calls) != len(entry.tool_calls):
                entry = replace(entry, tool_calls=tuple(calls))
            if entry.text.strip() or entry.tool_calls:
                kept.append(entry)
        elif entry.role == "tool":
            kept.append(entry)
    answered: set[str] = set()
    sendable = []
    for entry in kept:
        if entry.role == "tool":
            if entry.tool_call_id not in call_ids or entry.tool_call_id in answered:
                continue
            answered.add(entry.tool_call_id)
        sendable.append(entry)
    return sendable


def _images_left_out(entries: Sequence[ThreadEntry], max_images: int) -> list[int]:
    """Per entry, how many of its images (counted from its first) fall outside the newest ``max_images``."""
    total = sum(len(entry.images) for entry in entries)
    to_leave_out = max(0, total - max_images)
    counts = []
    for entry in entries:
        here = min(len(entry.images), to_leave_out)
        counts.append(here)
        to_leave_out -= here
    return counts


def _as_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _add_user(messages: list[dict[str, Any]], content: str | list[dict[str, Any]]) -> None:
    last = messages[-1]
    if last["role"] == "user":
        if isinstance(last["content"], str) and isinstance(content, str):
            last["content"] = last["content"] + "\n\n" + content
        else:
            last["content"] = _as_parts(last["content"]) + _as_parts(content)
        return
    if last["role"] == "tool":
        messages.append({"role": "assistant", "content": MISSING_REPLY_PLACEHOLDER})
    messages.append({"role": "user", "content": content})


def _add_assistant(messages: list[dict[str, Any]], entry: ThreadEntry) -> None:
    message = assistant_message(entry)
    last = messages[-1]
    if last["role"] == "system":
        messages.append({"role": "user", "content": THREAD_START_PLACEHOLDER})
    elif last["role"] == "assistant":  # never has tool_calls: their results always follow them
        own_text = entry.text.strip()
        message["content"] = last["content"] + ("\n\n" + own_text if own_text else "")
        messages[-1] = message
        return
    messages.append(message)


def thread_to_messages(
    entries: Sequence[ThreadEntry], *, system_prompt: str, max_images: int = DEFAULT_MAX_IMAGES
) -> list[dict[str, Any]]:
    """Chat messages for ``entries`` (a thread in order): see the module docstring for the rules.

    At most ``max_images`` images are attached, the most recent ones (thread order, then
    order within a message); each older image becomes the note ``(an earlier image was left out)``.
    """
    if max_images < 0:
        raise ValueError(f"max_images must not be negative: {max_images}")
    kept = sendable_entries(entries)
    results = {entry.tool_call_id: entry for entry in kept if entry.role == "tool"}
    left_out = _images_left_out(kept, max_images)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
    for entry, images_left_out in zip(kept, left_out, strict=True):
        if entry.role == "user":
            text = user_text(entry, images_left_out=images_left_out)
            images = [
                part
                for image in entry.images[images_left_out:]
                for part in (
                    {"type": "text", "text": image_label(image, entry)},
                    image_part(image.media_type, image.data),
                )
            ]
            if images:
                content: str | list[dict[str, Any]] = ([{"type": "text", "text": text}] if text else []) + images
            else:
                content = text
            _add_user(messages, content)
        elif entry.role == "assistant":
            _add_assistant(messages, entry)
            for call in entry.tool_calls:
                result = results.get(call.id)
                messages.append(tool_message(result) if result is not None else missing_tool_result(call.id))
        # tool entries were sent right after the call they answer
    return messages


__all__ = [
    "DEFAULT_MAX_IMAGES",
    "EMPTY_TOOL_RESULT",
    "IMAGE_LEFT_OUT_NOTE",
    "MISSING_REPLY_PLACEHOLDER",
    "MISSING_TOOL_RESULT",
    "NOT_PREPARED_IMAGE",
    "THREAD_START_PLACEHOLDER",
    "TOOL_CALLS_PLACEHOLDER",
    "assistant_message",
    "attribution",
    "document_text",
    "file_note",
    "human_size",
    "image_label",
    "image_part",
    "missing_tool_result",
    "sendable_entries",
    "thread_to_messages",
    "tool_message",
    "user_text",
]
