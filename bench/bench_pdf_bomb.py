"""The PDF bomb of issue 22: 85 KB, 40 pages sharing one Flate stream that inflates to 30 MB of
text operators drawing nothing.

Before: pypdf read it inside the reply job, in the worker's own process. Measured here on one
page in a child of this script (so the figure does not include this process): CPU seconds and
peak memory for that page; the 40 pages cost that 40 times.

After: `DocumentReader` (bot.documents.reader) reads it in a sandboxed child: the decompression
cap stops it. Measured per run: wall time to the stored note, this process's peak RSS growth
(the worker's side) and the child's own peak RSS (its VmHWM, reported by the child).

    python -m bench.bench_pdf_bomb [--runs 7] [--skip-before]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

from bot.documents.reader import DocumentReader
from bot.sandbox import Sandbox
from tests.support.pdfs import make_pdf_bomb

ONE_PAGE_IN_PROCESS = """
import io, resource, sys, time
from pypdf import PdfReader
data = sys.stdin.buffer.read()
reader = PdfReader(io.BytesIO(data))
started = time.process_time()
reader.pages[0].extract_text()
print(time.process_time() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def megabytes(value: float) -> str:
    return f"{value / 1024 / 1024:.0f} MB"


def before(bomb: bytes) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ONE_PAGE_IN_PROCESS], input=bomb, capture_output=True, check=True, timeout=600
    )
    cpu, peak = done.stdout.decode().split()
    print(f"before, pypdf in process: one page {float(cpu):.2f} s CPU, peak RSS {megabytes(int(peak))}")
    print(f"  so the 40 pages: ~{40 * float(cpu):.0f} s of CPU, every time a mention asks")


def after(bomb: bytes, runs: int) -> None:
    sandbox = Sandbox(slots=1)
    reader = DocumentReader(sandbox)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    walls, notes = [], set()
    for _ in range(runs):
        started = time.monotonic()
        extracted = reader.read("pdf", bomb, "bomb.pdf")
        walls.append(time.monotonic() - started)
        notes.add(extracted.note)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    child_peak = sandbox.peak_rss_bytes
    median, worst = statistics.median(walls), max(walls)
    print(f"after, sandboxed: median {median:.2f} s to the note (max {worst:.2f} s), {runs} runs")
    print(f"  this process's peak RSS growth {megabytes(growth)}; the largest child's peak RSS {megabytes(child_peak)}")
    print(f"  note: {' | '.join(sorted(notes))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-before", action="store_true")
    args = parser.parse_args()
    bomb = make_pdf_bomb()
    print(f"the bomb: {len(bomb) / 1000:.0f} KB, 40 pages, one shared stream inflating to 30 MB")
    after(bomb, args.runs)
    if not args.skip_before:
        before(bomb)


if __name__ == "__main__":
    main()
