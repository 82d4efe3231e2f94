"""Reading a downloaded document's text where the operating system can stop it.

PDFs are parsed in a sandboxed child (bot.sandbox) by bot.documents.bounded, within a memory
limit, a CPU limit, a wall-clock deadline and a per-page budget; whatever happens there, the
caller gets an `Extracted`: the text, or a note to store and tell ("report.pdf is too costly to
read (stopped after 3 pages)"). Text files cost what they weigh (their bytes are capped on
download) and are read here."""

from __future__ import annotations

import logging

from bot.documents.bounded import DEFAULT_BUDGET, ReadBudget, read_document
from bot.documents.extract import DEFAULT_LIMITS, Extracted, Limits, extract, too_costly_note
from bot.sandbox import Bounds, Sandbox, SandboxCrashed, SandboxExceeded

log = logging.getLogger(__name__)

# The child's own limits, past the budget's graceful stops: its memory may grow by 128 MB (the
# worker's stays flat), it gets 10 s of CPU and 25 s of wall clock (an answer within 30 s).
DOCUMENT_BOUNDS = Bounds(cpu_seconds=10.0, memory_bytes=128 * 1024 * 1024, wall_seconds=25.0)


class DocumentReader:
    def __init__(
        self,
        sandbox: Sandbox,
        *,
        limits: Limits = DEFAULT_LIMITS,
        budget: ReadBudget = DEFAULT_BUDGET,
        bounds: Bounds = DOCUMENT_BOUNDS,
    ):
        self.sandbox = sandbox
        self.limits, self.budget, self.bounds = limits, budget, bounds

    def read(self, kind: str, data: bytes, name: str) -> Extracted:
        if kind != "pdf":
            return extract(kind, data, name, self.limits)
        try:
            fields = self.sandbox.run(read_document, kind, data, name, self.limits, self.budget, bounds=self.bounds)
            return Extracted(**fields)
        except SandboxExceeded as exc:
            log.info("document too_costly bound=%s pages_read=%d", exc.what, exc.progress)
            return Extracted(None, too_costly_note(name, exc.progress))
        except SandboxCrashed as exc:
            log.info("document unreadable error=%s", exc.error_type)
            shown = " ".join(name.split())[:200] or "the file"
            return Extracted(None, f"{shown} could not be read: it is damaged or not really a PDF")


__all__ = ["DOCUMENT_BOUNDS", "DocumentReader"]
