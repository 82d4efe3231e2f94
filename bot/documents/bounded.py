"""Reading an untrusted document inside a sandboxed child (bot.sandbox), within a budget.

A small PDF can cost far more than it weighs: 40 pages sharing one Flate stream that inflates
to 30 MB of text operators cost pypdf ~3.5 s of CPU and ~180 MB per page (issue 22). Inside the
child, on top of the process's own RLIMIT_AS / RLIMIT_CPU:

- decompression is capped per stream (pypdf's own output limits, lowered) and per file (every
  decoded stream counted); past either, reading stops;
- each page gets a CPU-time budget (an ITIMER_PROF alarm) and the file a total one; past
  either, reading stops, keeping the pages read so far;
- progress is reported page by page, so the parent can say how far it got even if the
  kernel has to stop the child.

Only call `read_document` in a child process: it installs a signal handler and patches pypdf.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from bot.documents.extract import DEFAULT_LIMITS, Limits, TooCostly, extract, extract_pdf
from bot.sandbox import report_progress


@dataclass(frozen=True)
class ReadBudget:
    page_cpu_seconds: float = 2.0
    file_cpu_seconds: float = 8.0
    max_stream_bytes: int = 8 * 1024 * 1024  # one decoded stream (content streams are rarely 1 MB)
    max_file_decoded_bytes: int = 48 * 1024 * 1024  # every stream decoded for the file, together


DEFAULT_BUDGET = ReadBudget()


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _raise_too_costly(signum, frame) -> None:
    raise TooCostly("a page took longer than its budget")


def _cap_decompression(budget: ReadBudget) -> None:
    import pypdf.filters as filters

    try:  # pypdf >= 6: one configuration object
        from pypdf import _configuration

        _configuration.overwrite_configuration(
            **{
                key: budget.max_stream_bytes
                for key in (
                    "zlib_maximum_output_length",
                    "lzw_maximum_output_length",
                    "run_length_maximum_output_length",
                    "jbig2_maximum_output_length",
                    "array_based_stream_maximum_output_length",
                    "maximum_declared_stream_length",
                )
            }
        )
    except (ImportError, AttributeError, TypeError):  # older pypdf: module constants
        for constant in ("ZLIB_MAX_OUTPUT_LENGTH", "LZW_MAX_OUTPUT_LENGTH", "RUN_LENGTH_MAX_OUTPUT_LENGTH"):
            if hasattr(filters, constant):
                setattr(filters, constant, budget.max_stream_bytes)
    decode = filters.decode_stream_data
    decoded = [0]

    def counted(stream):
        try:
            data = decode(stream)
        except Exception as exc:  # pypdf's LimitReachedError: let it through pypdf's own handlers
            if type(exc).__name__ == "LimitReachedError":
                raise TooCostly("a stream inflates beyond the cap") from None
            raise
        if len(data) > budget.max_stream_bytes:
            raise TooCostly("a stream inflates beyond the cap")
        decoded[0] += len(data)
        if decoded[0] > budget.max_file_decoded_bytes:
            raise TooCostly("the file inflates beyond the cap")
        return data

    filters.decode_stream_data = counted


def _page_guard(budget: ReadBudget):
    started = _cpu_seconds()
    signal.signal(signal.SIGPROF, _raise_too_costly)

    @contextlib.contextmanager
    def guard(number: int) -> Iterator[None]:
        left = budget.file_cpu_seconds - (_cpu_seconds() - started)
        if left <= 0:
            raise TooCostly("the file took longer than its budget")
        signal.setitimer(signal.ITIMER_PROF, min(budget.page_cpu_seconds, left))
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)

    return guard


def read_document(
    kind: str, data: bytes, name: str, limits: Limits = DEFAULT_LIMITS, budget: ReadBudget = DEFAULT_BUDGET
) -> dict:
    """`extract` within `budget`, as a dict of `Extracted`'s fields (in a sandboxed child only)."""
    if kind != "pdf":
        return asdict(extract(kind, data, name, limits))
    _cap_decompression(budget)
    return asdict(extract_pdf(data, name, limits, page_guard=_page_guard(budget), on_page=report_progress))


__all__ = ["DEFAULT_BUDGET", "ReadBudget", "read_document"]
