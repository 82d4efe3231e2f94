"""The sandbox (bot.sandbox): work the operating system can stop, and the bounded PDF reader
that runs in it (issue 22). Real child processes."""

from __future__ import annotations

import time

import pytest

from bot.documents.bounded import ReadBudget
from bot.documents.extract import Limits
from bot.documents.reader import DocumentReader
from bot.sandbox import Bounds, Sandbox, SandboxCrashed, SandboxExceeded
from tests.support import sandbox_work
from tests.support.pdfs import make_pdf, make_pdf_bomb

QUICK = Bounds(cpu_seconds=2, memory_bytes=64 * 1024 * 1024, wall_seconds=20)


def test_a_result_comes_back():
    assert Sandbox().run(sandbox_work.add, 2, 3, bounds=QUICK) == 5


def test_endless_work_is_stopped_by_the_kernel_and_says_how_far_it_got():
    started = time.monotonic()
    with pytest.raises(SandboxExceeded) as info:
        Sandbox().run(sandbox_work.burn_cpu, 7, bounds=QUICK)
    assert info.value.what == "time" and info.value.progress == 7
    assert time.monotonic() - started < 20


def test_the_wall_clock_deadline_stops_it_too():
    with pytest.raises(SandboxExceeded):
        Sandbox().run(sandbox_work.burn_cpu, 0, bounds=Bounds(cpu_seconds=60, wall_seconds=1.0))


def test_memory_beyond_the_bound_is_refused_inside_the_child():
    with pytest.raises(SandboxExceeded) as info:
        Sandbox().run(sandbox_work.eat_memory, 500, bounds=QUICK)
    assert info.value.what == "memory"
    assert Sandbox().run(sandbox_work.eat_memory, 16, bounds=QUICK) == 16


def test_the_child_sees_no_secret_and_errors_come_back_by_type(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret")
    env = Sandbox().run(sandbox_work.environment, bounds=QUICK)
    assert "SLACK_BOT_TOKEN" not in env and "DATABASE_URL" not in env
    with pytest.raises(SandboxCrashed) as info:
        Sandbox().run(sandbox_work.fail, bounds=QUICK)
    assert info.value.error_type == "KeyError"


def test_the_pdf_bomb_is_stopped_at_the_decompression_cap():
    bomb = make_pdf_bomb()
    assert 80_000 < len(bomb) < 95_000  # 40 pages sharing one stream that inflates to 30 MB
    started = time.monotonic()
    extracted = DocumentReader(Sandbox()).read("pdf", bomb, "bomb.pdf")
    assert extracted.text is None
    assert extracted.note == "bomb.pdf is too costly to read (stopped after 0 pages)"
    assert time.monotonic() - started < 15


def test_pages_past_the_time_budget_are_not_read_and_the_note_says_how_far_it_got():
    # Under the decompression caps (6 MB), but every page costs ~0.6 s of CPU to parse.
    bomb = make_pdf_bomb(inflated_bytes=6_000_000)
    reader = DocumentReader(Sandbox(), budget=ReadBudget(page_cpu_seconds=0.2, file_cpu_seconds=5))
    extracted = reader.read("pdf", bomb, "slow.pdf")
    assert extracted.text is None
    assert extracted.note == "slow.pdf is too costly to read (stopped after 0 pages)"
    # The file's budget: the pages read before it ran out are kept.
    reader = DocumentReader(Sandbox(), budget=ReadBudget(page_cpu_seconds=5, file_cpu_seconds=1.5))
    extracted = reader.read("pdf", bomb, "slow.pdf")
    assert extracted.note.startswith("slow.pdf is too costly to read (stopped after ")
    assert extracted.note != "slow.pdf is too costly to read (stopped after 0 pages)"


def test_an_ordinary_pdf_is_read_in_full():
    pdf = make_pdf([f"Page {n} says hello" for n in range(1, 61)])
    extracted = DocumentReader(Sandbox(), limits=Limits(max_pages=100)).read("pdf", pdf, "ok.pdf")
    assert extracted.note is None and "[page 60]\nPage 60 says hello" in extracted.text
