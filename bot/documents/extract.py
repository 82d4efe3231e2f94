"""Read a document's text (pure: bytes in, text or a one-line note out; never raises).

PDFs are read with pypdf: text page by page under "[page N]" markers, at most `max_pages`
pages and `max_chars` characters. A page that costs too much (`TooCostly`, raised by a
`page_guard` or by the decompression caps of bot.documents.bounded) stops the reading: the
pages read so far are kept and the note says how far it got ("report.pdf is too costly to read
(stopped after 3 pages)"). Untrusted PDFs are read that way in a sandboxed child process.
Encrypted PDFs (unless they open with the empty password) and PDFs without a text layer give a
note instead, meant for both the model and the person:
"report.pdf has no text layer (scanned?)". Anything pypdf cannot parse gives a note too.
Text files are read as UTF-8 (a BOM dropped, undecodable bytes replaced), cut at `max_chars`.
NUL characters are removed everywhere: PostgreSQL text cannot hold them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

log = logging.getLogger(__name__)

TRUNCATED_MARK = "[…the rest of the file is not included: it is longer than the bot reads]"


class TooCostly(BaseException):
    """Reading further costs more than the budget allows (time or decompressed bytes)."""


def too_costly_note(name: str, pages_read: int) -> str:
    return f"{_display(name)} is too costly to read (stopped after {pages_read} page{'' if pages_read == 1 else 's'})"


def _no_guard(number: int) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Limits:
    max_pages: int = 100
    max_chars: int = 100_000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Extracted:
    """`text`: what the model reads (None: nothing readable); `note`: one line saying what went
    wrong or was left out, for the model and the person (None: nothing to say)."""

    text: str | None
    note: str | None = None
    pages: int = 0


def _display(name: str) -> str:
    return " ".join((name or "the file").split())[:200] or "the file"


def _clean(text: str) -> str:
    return text.replace("\x00", "")


def _cap(text: str, max_chars: int) -> tuple[str, bool]:
    if len(text) <= max_chars:
        return text, False
    return text[:max_chars].rstrip() + "\n" + TRUNCATED_MARK, True


def extract_text(data: bytes, name: str, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    text, cut = _cap(_clean(text), limits.max_chars)
    if not text.strip():
        return Extracted(None, f"{_display(name)} is empty")
    return Extracted(text, f"only the beginning of {_display(name)} was read (it is long)" if cut else None)


def extract_pdf(
    data: bytes,
    name: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    page_guard: Callable[[int], contextlib.AbstractContextManager] = _no_guard,
    on_page: Callable[[int], None] = lambda pages_read: None,
) -> Extracted:
    """`page_guard(n)` wraps the reading of page n and may raise TooCostly; `on_page(n)` is told
    when n pages are read."""
    shown = _display(name)
    stopped_at: int | None = None
    try:
        from pypdf import PdfReader

        reader = PdfReader(BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many PDFs only restrict editing, and open without a password
            except Exception:  # an unsupported cipher, or a damaged encryption dictionary
                opened = 0
            if not opened:
                return Extracted(None, f"{shown} is encrypted (password-protected), so its text cannot be read")
        total = len(reader.pages)
        parts: list[str] = []
        chars = 0
        read = 0
        for number in range(1, min(total, limits.max_pages) + 1):
            try:
                with page_guard(number):
                    page_text = _clean(reader.pages[number - 1].extract_text() or "").strip()
            except TooCostly:
                stopped_at = read
                log.info("pdf too_costly stopped_after_pages=%d", read)
                break
            except Exception as exc:  # one bad page does not lose the others
                log.info("pdf page unreadable page=%d error=%s", number, type(exc).__name__)
                page_text = ""
            read = number
            on_page(read)
            if page_text:
                parts.append(f"[page {number}]\n{page_text}")
                chars += len(parts[-1])
            if chars > limits.max_chars:
                break
    except TooCostly:  # opening the file (its page tree, its encryption) already cost too much
        return Extracted(None, too_costly_note(name, 0))
    except Exception as exc:  # pypdf raises many kinds of errors on damaged files; none may crash a job
        log.info("pdf unreadable error=%s", type(exc).__name__)
        return Extracted(None, f"{shown} could not be read: it is damaged or not really a PDF")
    if stopped_at is not None:
        note = too_costly_note(name, stopped_at)
        if not parts:
            return Extracted(None, note, pages=total)
        text, _ = _cap("\n\n".join(parts), limits.max_chars)
        return Extracted(text + f"\n({note})", note, pages=total)
    if not parts:
        if total == 0:
            return Extracted(None, f"{shown} has no pages")
        return Extracted(None, f"{shown} has no text layer (scanned?)", pages=total)
    text, cut = _cap("\n\n".join(parts), limits.max_chars)
    note = None
    if read < total or cut:
        note = f"only pages 1-{read} of the {total} pages of {shown} were read"
        text += f"\n({note})"
    return Extracted(text, note, pages=total)


def extract(kind: str, data: bytes, name: str, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    """`kind`: "pdf" or "text" (see bot.documents.kinds)."""
    if kind == "pdf":
        return extract_pdf(data, name, limits)
    return extract_text(data, name, limits)


__all__ = [
    "TRUNCATED_MARK",
    "Extracted",
    "Limits",
    "TooCostly",
    "extract",
    "extract_pdf",
    "extract_text",
    "too_costly_note",
]
