"""Conservative token estimates for a chat-completions request (pure).

The limiter reserves an estimate before each call and reconciles it with the response's
``usage`` afterwards, so an estimate only has to be safe, not exact: it should over-count
rather than under-count, or concurrent calls can push the server past its token limit.

Text: we have no copy of Claude's tokenizer, so the count is a small lexical model that
is deliberately pessimistic (see :func:`estimate_text_tokens`).
Images: Claude scales an image so its long edge is at most 1568 px and charges about
width x height / 750 tokens; an image we cannot measure counts as the largest image.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from io import BytesIO
from typing import Any, NamedTuple

from PIL import Image

MAX_IMAGE_EDGE = 1568
PIXELS_PER_IMAGE_TOKEN = 750
DEFAULT_MAX_TOKENS = 1024

# Role markers and separators around each message.
MESSAGE_OVERHEAD_TOKENS = 8
# Framing of one tool call (id, type, wrapper) besides its name and arguments.
TOOL_CALL_OVERHEAD_TOKENS = 16
# The hidden system prompt Claude adds when tools are present: Anthropic's table lists
# 159-530 tokens depending on model and tool_choice; rounded up past the largest.
TOOL_USE_SYSTEM_PROMPT_TOKENS = 600
# Start and end of the whole prompt.
REQUEST_OVERHEAD_TOKENS = 8

# One pre-token piece: a run of ASCII letters, of digits, of spaces/tabs, of newlines,
# of non-ASCII characters, or a single other character (punctuation, control).
_PIECE = re.compile(r"[A-Za-z]+|[0-9]+|[ \t]+|\n+|[^\x00-\x7f]+|.", re.DOTALL)


def estimate_text_tokens(text: str) -> int:
    """An upper estimate of the tokens Claude needs for ``text``.

    The larger of two counts:

    * ``ceil(len / 3.5)``: Claude averages about 3.5-4 characters per token on English;
    * a piece count that stays high on code and other languages: a letter run costs one
      token per 4 letters (rounded up), a digit run one per 2 digits, every punctuation
      character one, a newline one, an indentation run one per 4 spaces (a single space
      is free: it merges with the next word), and non-ASCII text one token per 2 UTF-8
      bytes (so a CJK character counts 1.5 and an emoji 2).
    """
    if not text:
        return 0
    pieces = 0
    for match in _PIECE.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isascii() and first.isalpha():
            pieces += -(-len(piece) // 4)
        elif first.isascii() and first.isdigit():
            pieces += -(-len(piece) // 2)
        elif first in " \t":
            pieces += 0 if len(piece) == 1 else -(-len(piece) // 4)
        elif first == "\n":
            pieces += len(piece)
        elif not first.isascii():
            pieces += -(-len(piece.encode("utf-8", "surrogatepass")) // 2)
        else:
            pieces += 1
    by_length = -(-len(text) * 2 // 7)  # ceil(len / 3.5) in integers
    return max(pieces, by_length)


def estimate_image_tokens(width: int, height: int) -> int:
    """Tokens for a ``width`` x ``height`` image after Claude's downscale to a 1568 px long edge."""
    if width < 0 or height < 0:
        raise ValueError(f"image dimensions must not be negative: {width}x{height}")
    long_edge = max(width, height)
    if long_edge <= MAX_IMAGE_EDGE:
        return -(-(width * height) // PIXELS_PER_IMAGE_TOKEN)
    # Scaled area is w*h*(1568/long)^2; keep it exact in integers.
    numerator = width * height * MAX_IMAGE_EDGE * MAX_IMAGE_EDGE
    return -(-numerator // (long_edge * long_edge * PIXELS_PER_IMAGE_TOKEN))


MAX_IMAGE_TOKENS = estimate_image_tokens(MAX_IMAGE_EDGE, MAX_IMAGE_EDGE)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def estimate_tools_tokens(tools: Sequence[Mapping[str, Any]]) -> int:
    """Tokens for the tool schemas: their JSON text plus the tool-use system prompt."""
    if not tools:
        return 0
    return TOOL_USE_SYSTEM_PROMPT_TOKENS + estimate_text_tokens(_json_text(list(tools)))


# Enough base64 for the header of almost any image (a multiple of 4 so it decodes alone);
# JPEGs with large metadata before the frame header fall back to the whole payload.
_HEADER_PREFIX_CHARS = 64 * 1024


def _size_of(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(BytesIO(data)) as image:  # lazy: reads the header only
            return image.size
    except Exception:  # any unreadable image means "size unknown", a normal outcome here
        return None


def image_size_from_data_url(url: str) -> tuple[int, int] | None:
    """(width, height) read from the header of a base64 ``data:`` URL image, or None."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    chunks = [payload[:_HEADER_PREFIX_CHARS]]
    if len(payload) > _HEADER_PREFIX_CHARS:
        chunks.append(payload)
    for chunk in chunks:
        try:
            data = base64.b64decode(chunk, validate=False)
        except (binascii.Error, ValueError):
            continue
        size = _size_of(data)
        if size is not None:
            return size
    return None


def _image_part_tokens(part: Mapping[str, Any]) -> int:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    size = image_size_from_data_url(url) if isinstance(url, str) else None
    if size is None:
        return MAX_IMAGE_TOKENS
    return estimate_image_tokens(*size)


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                total += estimate_text_tokens(str(part.get("text") or ""))
            elif isinstance(part, Mapping) and part.get("type") == "image_url":
                total += _image_part_tokens(part)
            else:  # unknown part: count what would be sent
                total += estimate_text_tokens(_json_text(part))
        return total
    return estimate_text_tokens(_json_text(content))


def _tool_calls_tokens(tool_calls: Any) -> int:
    if not tool_calls:
        return 0
    total = 0
    for call in tool_calls:
        total += TOOL_CALL_OVERHEAD_TOKENS
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            total += estimate_text_tokens(str(function.get("name") or ""))
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = _json_text(arguments)
            total += estimate_text_tokens(arguments)
        else:
            total += estimate_text_tokens(_json_text(call))
    return total


def estimate_messages_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Tokens for OpenAI-format chat messages: text, image parts, tool calls and tool results."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        total += _content_tokens(message.get("content"))
        total += _tool_calls_tokens(message.get("tool_calls"))
        for key in ("name", "tool_call_id"):
            value = message.get(key)
            if value:
                total += estimate_text_tokens(str(value))
    return total


class RequestEstimate(NamedTuple):
    """A chat-completions request's estimate: ``prompt`` (input) and ``output`` (the output cap)."""

    prompt: int
    output: int

    @property
    def total(self) -> int:
        return self.prompt + self.output


def estimate_request(body: Mapping[str, Any]) -> RequestEstimate:
    """What the limiter reserves for a chat-completions ``body``: input and output cap.

    A thinking budget adds nothing: thinking tokens come out of ``max_tokens`` (the budget
    must be below it), so the output cap already covers them.
    """
    prompt = REQUEST_OVERHEAD_TOKENS
    prompt += estimate_messages_tokens(body.get("messages") or [])
    prompt += estimate_tools_tokens(body.get("tools") or [])
    max_tokens = body.get("max_tokens")
    return RequestEstimate(prompt, DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens))


def estimate_request_tokens(body: Mapping[str, Any]) -> int:
    """The whole estimate of :func:`estimate_request`: input and output cap."""
    return estimate_request(body).total


__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MAX_IMAGE_EDGE",
    "MAX_IMAGE_TOKENS",
    "RequestEstimate",
    "estimate_image_tokens",
    "estimate_messages_tokens",
    "estimate_request",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "estimate_tools_tokens",
    "image_size_from_data_url",
]
