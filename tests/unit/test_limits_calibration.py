"""Prompt estimates are scaled by what the server reported for recent calls (pure)."""

from __future__ import annotations

import pytest

from bot.limits.calibration import MARGIN, counted_tokens, prompt_scale


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([], 1.0),  # nothing reported yet: the raw estimate
        ([(1000, 480)], 0.48 * MARGIN),  # one answer is enough (views correct an estimate that was low)
        ([(1000, 480), (1000, 500), (2000, 900)], 0.5 * MARGIN),  # the largest ratio, with the margin
        ([(1000, 480), (1000, 500), (1000, 700)], 0.7 * MARGIN),  # one prompt counted higher decides
        ([(100, 150), (100, 160), (100, 120)], 1.6 * MARGIN),  # estimates that were low are scaled up
        ([(100, 1), (100, 1), (100, 2)], 0.25),  # never below a quarter of the estimate
        ([(100, 900), (100, 900), (100, 900)], 2.0),  # never above twice the estimate
        ([(0, 50), (-5, 50), (100, -1)], 1.0),  # unusable samples do not count
    ],
)
def test_prompt_scale(samples, expected):
    assert prompt_scale(samples) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("total", "prompt", "scale", "expected"),
    [
        (3347, 2323, 1.0, 3347),  # no calibration: the estimate as it is
        (3347, 2323, 0.5, 1024 + 1162),  # the output cap is charged whole, the prompt scaled (rounded up)
        (3347, 0, 0.5, 3347),  # no prompt part given: nothing to scale
        (1000, 5000, 0.5, 500),  # a prompt part larger than the total is the total
        (1000, -3, 0.5, 1000),
        (1200, 200, 2.0, 1400),
    ],
)
def test_counted_tokens(total, prompt, scale, expected):
    assert counted_tokens(total, prompt, scale) == expected
