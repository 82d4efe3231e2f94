"""Which attachments a reply prepares (downloads, scales, reads) now (pure).

Only what can be sent: walking the thread's files from the newest, images until the
per-request image cap is reached, and documents while their text still fits the budget
left by the messages. Files already prepared count as they are; the rest wait, and are
prepared by a later reply that can use them (or never, when newer files always win).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.documents.kinds import Kind

# A document not read yet is counted at its size, as if every byte were a character, and
# text runs at least ~3 characters a token; a PDF's bytes are mostly not text, so this is high.
CHARS_PER_TOKEN_FLOOR = 3
DOCUMENT_OVERHEAD_TOKENS = 40


@dataclass(frozen=True)
class Candidate:
    key: tuple  # (message id, file id)
    kind: Kind
    size: int = 0
    prepared: bool = False
    usable: bool = False  # prepared and usable: an image with pixels, a document with text
    tokens: int = 0  # for a prepared document: its stored estimate


def document_estimate(size: int, max_chars: int) -> int:
    return min(max(size, 0), max_chars) // CHARS_PER_TOKEN_FLOOR + DOCUMENT_OVERHEAD_TOKENS


def plan_preparation(
    newest_first: Sequence[Candidate], *, max_images: int, budget_tokens: int, max_chars: int
) -> list[tuple]:
    """Keys of the candidates to prepare now, newest first."""
    images = 0
    spent = 0
    chosen = []
    for candidate in newest_first:
        if candidate.kind == "image":
            if candidate.prepared and not candidate.usable:
                continue  # a failed image is a note; it takes no image slot
            if images >= max_images:
                continue
            images += 1
            if not candidate.prepared:
                chosen.append(candidate.key)
        elif candidate.kind in ("pdf", "text", "sniff"):
            if candidate.prepared:
                spent += candidate.tokens
                continue
            cost = document_estimate(candidate.size, max_chars)
            if spent + cost > budget_tokens:
                continue
            spent += cost
            chosen.append(candidate.key)
    return chosen


__all__ = ["Candidate", "document_estimate", "plan_preparation"]
