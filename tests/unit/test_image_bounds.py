"""Bounded image decoding: the header's pixels against the cap and the memory budget, and how
many images a process decodes at once (bot.images.processing)."""

from __future__ import annotations

import threading
import time

import pytest

from bot.images import processing
from bot.images.processing import (
    DECODE_BUDGET_BYTES,
    DEFAULT_MAX_EDGE,
    ImageRejected,
    decode_cost,
    draft_scale,
    prepare_image,
    set_decode_concurrency,
)


@pytest.mark.parametrize(
    ("size", "scale"),
    [((6000, 4000), 4), ((4000, 3000), 2), ((1600, 1200), 1), ((12800, 9600), 8), ((7000, 3000), 4), ((800, 600), 1)],
)
def test_jpeg_draft_scale_keeps_the_target_covered(size, scale):
    assert draft_scale(size, DEFAULT_MAX_EDGE) == scale


@pytest.mark.parametrize(
    ("fmt", "size", "fits"),
    [
        ("JPEG", (6000, 4000), True),  # a 24 MP camera photo, decoded at half size
        ("PNG", (5120, 2880), True),  # a 5K screenshot
        ("PNG", (6016, 3384), False),  # a 6K one: 20 MP decoded at full size
        ("PNG", (7000, 7000), False),
        ("GIF", (3000, 3000), True),
        ("WEBP", (2400, 2400), True),
        ("WEBP", (3000, 3000), False),
        ("TIFF", (4000, 4000), True),
    ],
)
def test_decode_cost_against_the_budget(fmt, size, fits):
    assert (decode_cost(fmt, size, DEFAULT_MAX_EDGE) <= DECODE_BUDGET_BYTES) is fits


def test_no_more_decodes_at_once_than_the_slots(monkeypatch):
    running, peak, lock = 0, 0, threading.Lock()

    def slow_prepare(data, **_):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        raise ImageRejected("stub")

    monkeypatch.setattr(processing, "_prepare", slow_prepare)
    set_decode_concurrency(2)
    try:

        def one():
            with pytest.raises(ImageRejected):
                prepare_image(b"\x89PNG not really")

        threads = [threading.Thread(target=one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert peak == 2
    finally:
        set_decode_concurrency(processing.DEFAULT_DECODE_CONCURRENCY)
