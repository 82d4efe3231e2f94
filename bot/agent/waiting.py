"""What the status line says while an answer is worked on (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.agent.steps import loading_message

THINKING_STATUS = "is thinking…"
MAX_LOADING_MESSAGES = 10  # assistant.threads.setStatus takes at most 10
TITLE_MAX_CHARS = 60
_MENTION = re.compile(r"<[@#!][^>]*>")
_LINK = re.compile(r"<(https?://[^>|]+)(?:\|([^>]*))?>")
# *bold*, _italic_, ~strike~ and `code` around words; not the * of "5*5".
_PAIRED = re.compile(r"(?<!\w)([*_~`])(\S(?:.*?\S)?)\1(?!\w)")
_QUOTE = re.compile(r"^\s*(?:&gt;|>)\s*")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")
_DANGLING = re.compile(r"[,;:]+(?=[?!.]|$)")
_SPACES = re.compile(r"\s+")


def thinking_messages(*, images: int = 0, files: int = 0) -> list[str]:
    """Rotating messages while the model is first asked."""
    messages = []
    if images:
        messages.append("Reading the image…" if images == 1 else f"Reading the {images} images…")
    if files:
        messages.append("Reading the file…" if files == 1 else f"Reading the {files} files…")
    messages += ["Thinking…", "Reading the thread…", "Writing an answer…"]
    return messages[:MAX_LOADING_MESSAGES]


def tool_messages(names: Sequence[str]) -> list[str]:
    """Rotating messages while tools run ("Searching messages…"), then the model again."""
    messages: list[str] = []
    for name in names:
        message = loading_message(name)
        if message not in messages:
            messages.append(message)
    return [*messages[: MAX_LOADING_MESSAGES - 1], "Thinking…"]


def thread_title(question: str) -> str:
    """A title for the thread from its first question, without a model call: its first line,
    without mentions or markup, cut at a word boundary."""
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), question or "")
    text = _MENTION.sub(" ", text)
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = _PAIRED.sub(lambda m: m.group(2), _QUOTE.sub("", first))
    first = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", first)).strip()
    first = _DANGLING.sub("", first).strip(" :,-")
    if len(first) <= TITLE_MAX_CHARS:
        return first[:1].upper() + first[1:]
    cut = first[: TITLE_MAX_CHARS - 1]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut[: cut.rfind(" ")]
    cut = cut.rstrip(" ,.;:-")
    return cut[:1].upper() + cut[1:] + "…"


WAITING_STATUS = "is waiting for the model…"
RETRYING_STATUS = "is retrying…"
APOLOGY_MESSAGE = "Sorry, the model is not answering right now. I'll keep trying and answer here."


def queue_apology(ahead: int) -> str:
    """The one message of a request that has waited in the queue for minutes."""
    many = f" ({ahead} request{'s' if ahead != 1 else ''} ahead of yours)" if ahead > 0 else ""
    return f"Sorry for the wait: it is busy right now{many}. I'll answer here as soon as it is your turn."


def waiting_message(ahead: int) -> str:
    """The status while a request waits its turn; `ahead`: requests ahead of it in the fair order."""
    if ahead <= 0:
        return "Waiting for the model: yours is next"
    return f"Waiting for the model: {ahead} request{'s' if ahead != 1 else ''} ahead of yours"
