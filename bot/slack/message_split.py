"""Split a long Markdown answer into pieces Slack accepts (pure).

Slack's ``markdown`` block takes standard Markdown (what LLMs write) but at most 12,000
characters per message; a section block takes 3,000; a message's ``text`` 40,000.

Where a piece ends, in order of preference: a blank line (paragraph break), a line break,
a space, and only as a last resort inside a word. A fenced code block that fits in one piece
is not split when any split point outside it exists; a longer one is split at its line
breaks, closing the fence at the end of one piece and reopening it (same fence and language)
at the start of the next. A split point in the second half of the allowed length is preferred
over an earlier, "better" one, so pieces are not needlessly short.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

MARKDOWN_BLOCK_MAX_CHARS = 12_000
SECTION_TEXT_MAX_CHARS = 3_000
MESSAGE_TEXT_MAX_CHARS = 40_000

# CommonMark fences: up to 3 spaces, then 3+ backticks (info without backticks) or 3+ tildes.
_FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[^\S\n]*")
_NON_SPACE = re.compile(r"\S")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_LINE_BREAK = re.compile(r"\n")
_SPACE = re.compile(r"[ \t]")
# Characters that belong to the character before them: never start a piece with one.
_JOINERS = frozenset("\u200c\u200d\ufe0e\ufe0f")


@dataclass(frozen=True)
class Piece:
    """One chunk: ``reopen + body + close``; ``body`` is a slice of the original text."""

    body: str
    reopen: str = ""  # e.g. "```python\n" when the piece continues a split code block
    close: str = ""  # e.g. "\n```" when the piece ends inside a code block

    @property
    def text(self) -> str:
        return self.reopen + self.body + self.close


@dataclass(frozen=True)
class _Fence:
    open_start: int  # start of the opening fence line
    content_start: int  # just after the opening line
    close_start: int  # start of the closing fence line (len(text) if never closed)
    end: int  # end of the closing fence line, before its line break (len(text) if never closed)
    reopen: str  # the opening line and a line break
    close: str  # a line break and a fence that closes it


def _find_fences(text: str) -> list[_Fence]:
    fences = []
    opened: tuple[int, int, str, str] | None = None  # open_start, content_start, opening line, marker
    indent = ""
    position = 0
    while True:
        newline = text.find("\n", position)
        line_end = len(text) if newline == -1 else newline
        line = text[position:line_end]
        if opened is None:
            match = _FENCE_OPEN.fullmatch(line)
            if match and not (match.group(2)[0] == "`" and "`" in match.group(3)):
                indent = match.group(1)
                opened = (position, min(line_end + 1, len(text)), line, match.group(2))
        else:
            match = _FENCE_CLOSE.fullmatch(line)
            marker = opened[3]
            if match and match.group(1)[0] == marker[0] and len(match.group(1)) >= len(marker):
                fences.append(
                    _Fence(opened[0], opened[1], position, line_end, opened[2] + "\n", "\n" + indent + marker)
                )
                opened = None
        if newline == -1:
            break
        position = newline + 1
    if opened is not None:
        end = len(text)
        fences.append(_Fence(opened[0], opened[1], end, end, opened[2] + "\n", "\n" + indent + opened[3]))
    return fences


class _Splitter:
    def __init__(self, text: str, max_chars: int):
        self.text = text
        self.max_chars = max_chars
        # A fence is only repaired when its two added lines leave most of a piece for content.
        self.fences = [f for f in _find_fences(text) if len(f.reopen) + len(f.close) <= max_chars // 2]
        self.fence_starts = [f.open_start for f in self.fences]
        self.candidates = {
            name: [m.start() for m in pattern.finditer(text)]
            for name, pattern in (("paragraph", _PARAGRAPH_BREAK), ("line", _LINE_BREAK), ("space", _SPACE))
        }
        self.text_end = len(text.rstrip())

    def first_non_space(self, position: int) -> int:
        match = _NON_SPACE.search(self.text, position)
        return match.start() if match else len(self.text)

    def next_start(self, position: int) -> int:
        """Where the piece after a split at ``position`` starts: past the whitespace, keeping indentation."""
        run_end = self.first_non_space(position)
        last_newline = self.text.rfind("\n", position, run_end)
        return run_end if last_newline == -1 else last_newline + 1

    def fence_at(self, position: int) -> _Fence | None:
        """The repairable fence a piece ending at ``position`` would end inside of."""
        index = bisect_left(self.fence_starts, position) - 1
        if index >= 0:
            fence = self.fences[index]
            if fence.open_start < position < fence.end:
                return fence
        return None

    def can_split_inside(self, fence: _Fence, start: int, position: int) -> bool:
        """Both sides of the split keep some of the block's content."""
        return (
            self.first_non_space(max(start, fence.content_start)) < position
            and self.first_non_space(position) < fence.close_start
        )

    def search(self, kind: str, where: str, low: int, start: int, limit: int) -> tuple[int, _Fence | None] | None:
        """The latest split point of ``kind`` in [low, start + limit] (added fence lines included).

        ``where``: "outside" code blocks, inside "oversized" ones (longer than a whole piece, so
        they must be split anyway), or inside "any" block.
        """
        positions = self.candidates[kind]
        index = bisect_right(positions, start + limit) - 1
        while index >= 0 and positions[index] >= low:
            position = positions[index]
            index -= 1
            fence = self.fence_at(position)
            if fence is None:
                if where == "outside":
                    return position, None
                continue
            if where == "outside" or (where == "oversized" and fence.end - fence.open_start <= self.max_chars):
                continue
            if position - start <= limit - len(fence.close) and self.can_split_inside(fence, start, position):
                return position, fence
        return None

    def safe_cut(self, position: int, low: int) -> int:
        """Move a cut inside a word back so it does not separate combining marks or joined emoji."""
        text = self.text
        for _ in range(16):
            if position - 1 <= low:
                break
            char, before = text[position], text[position - 1]
            if not (
                unicodedata.combining(char) or char in _JOINERS or before in _JOINERS or 0x1F3FB <= ord(char) <= 0x1F3FF
            ):
                break
            position -= 1
        return position

    def split_point(self, start: int, limit: int, first_visible: int) -> tuple[int, _Fence | None]:
        outside = (("paragraph", "outside"), ("line", "outside"), ("space", "outside"))
        oversized = (("line", "oversized"), ("space", "oversized"))
        tiers = [
            (start + limit // 2, (*outside, *oversized)),  # a late split point, best kind first
            (start + 1, (*outside, *oversized, ("line", "any"), ("space", "any"))),
        ]
        for low, kinds in tiers:
            for kind, where in kinds:
                found = self.search(kind, where, max(low, first_visible + 1), start, limit)
                if found is not None:
                    return found
        # No whitespace to split at: cut inside a word.
        position = self.safe_cut(start + limit, first_visible)
        fence = self.fence_at(position)
        if fence is None:
            return position, None
        inner = self.safe_cut(start + limit - len(fence.close), first_visible)
        if inner > first_visible and self.fence_at(inner) is fence and self.can_split_inside(fence, start, inner):
            return inner, fence
        return start + limit, None  # a degenerate block (its fence lines alone fill a piece): no repair

    def pieces(self) -> list[Piece]:
        text, pieces = self.text, []
        start, reopen = self.next_start(0), ""
        while True:
            first_visible = self.first_non_space(start)
            if first_visible >= self.text_end:
                return pieces
            limit = self.max_chars - len(reopen)
            if first_visible - start >= limit // 2:  # indentation that would fill half a piece is dropped
                start = first_visible
            if len(reopen) + self.text_end - start <= self.max_chars:
                pieces.append(Piece(text[start : self.text_end], reopen))
                return pieces
            position, fence = self.split_point(start, limit, first_visible)
            close = fence.close if fence is not None else ""
            pieces.append(Piece(text[start:position].rstrip(), reopen, close))
            reopen = fence.reopen if fence is not None else ""
            start = self.next_start(position)


def markdown_pieces(text: str, *, max_chars: int = MARKDOWN_BLOCK_MAX_CHARS) -> list[Piece]:
    """The pieces :func:`split_markdown` renders, with the added fence lines kept apart from the text."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive: {max_chars}")
    return _Splitter(text, max_chars).pieces()


def split_markdown(text: str, *, max_chars: int = MARKDOWN_BLOCK_MAX_CHARS) -> list[str]:
    """Split ``text`` into chunks of at most ``max_chars`` characters each; [] if it is blank.

    The invariant (tested): every chunk is ``reopen + body + close``, where ``reopen`` and
    ``close`` are the fence lines added around a split code block (both empty otherwise; see
    :func:`markdown_pieces`), and the bodies are the non-blank parts of ``text`` between split
    points, in order::

        text == w0 + body0 + w1 + body1 + ... + bodyN + wN+1

    where every ``w`` is whitespace (``str.isspace``), possibly empty. Each body contains a
    non-whitespace character, does not end in whitespace and does not start with a line
    break. So nothing visible is lost, reordered or changed: only whitespace at a split point
    (and at the two ends of ``text``) is dropped; a line's indentation is kept unless it would
    fill half a chunk. Code blocks are repaired only when their fence lines take at most half
    of ``max_chars``.
    """
    return [piece.text for piece in markdown_pieces(text, max_chars=max_chars)]


def split_section_text(text: str, max_chars: int = SECTION_TEXT_MAX_CHARS) -> list[str]:
    """:func:`split_markdown` for section blocks (3,000 characters of mrkdwn each); same invariant."""
    return split_markdown(text, max_chars=max_chars)


def to_blocks(chunk: str) -> list[dict]:
    """One ``markdown`` block holding ``chunk`` (a chunk from :func:`split_markdown`)."""
    if not chunk.strip():
        raise ValueError("a markdown block needs some text")
    if len(chunk) > MARKDOWN_BLOCK_MAX_CHARS:
        raise ValueError(f"a markdown block holds at most {MARKDOWN_BLOCK_MAX_CHARS} characters, got {len(chunk)}")
    return [{"type": "markdown", "text": chunk}]


def fallback_text(chunk: str, max_chars: int = MESSAGE_TEXT_MAX_CHARS) -> str:
    """The message's ``text`` (notifications, clients without blocks): ``chunk``, cut to ``max_chars`` with "…"."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive: {max_chars}")
    if len(chunk) <= max_chars:
        return chunk
    return chunk[: max_chars - 1] + "…"


__all__ = [
    "MARKDOWN_BLOCK_MAX_CHARS",
    "MESSAGE_TEXT_MAX_CHARS",
    "SECTION_TEXT_MAX_CHARS",
    "Piece",
    "fallback_text",
    "markdown_pieces",
    "split_markdown",
    "split_section_text",
    "to_blocks",
]
