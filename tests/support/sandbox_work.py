"""Work for sandboxed children in the tests (module-level, so a child can import it)."""

from __future__ import annotations

import os


def add(a: int, b: int) -> int:
    return a + b


def burn_cpu(pages: int) -> int:
    """Reports a page done, then spins forever (a calculation that would never end)."""
    from bot.sandbox import report_progress

    report_progress(pages)
    while True:
        pass


def eat_memory(megabytes: int) -> int:
    hoard = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(hoard)


def environment() -> dict:
    return dict(os.environ)


def fail() -> None:
    raise KeyError("nope")
