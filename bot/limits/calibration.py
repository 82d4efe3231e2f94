"""How much of a prompt estimate the server actually counts (pure).

Our prompt estimates are deliberately high (:mod:`bot.limits.tokens` has no copy of Claude's
tokenizer), and every answer's ``usage.prompt_tokens`` says what the server counted. Under an
accounting that keeps charging ``prompt + max_tokens`` for the whole window, a call admitted
at twice its real prompt keeps a whole answer's room unused. So a new call's prompt estimate
is scaled by the largest ratio of counted to estimated prompt tokens among the calls of the
last window, with a margin; the output cap (``max_tokens``) is charged as it is.

The scale comes from the answers of the last two windows (before the first: the raw estimate),
and it is bounded both ways: an estimate that turned out low is scaled up, which is safer. A
prompt counted higher than its calibrated estimate shows in the provider's view as someone
else's use (bot.limits.slots.others_from_views) until it leaves the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MIN_SAMPLES = 1
# Above the largest ratio seen: a prompt unlike the recent ones may be counted a little higher.
MARGIN = 1.02
MIN_SCALE = 0.25
MAX_SCALE = 2.0


def prompt_scale(samples: Iterable[tuple[int, int]]) -> float:
    """The factor for new prompt estimates, from (estimated, counted) prompt tokens of recent calls."""
    ratios = [counted / estimated for estimated, counted in samples if estimated > 0 and counted >= 0]
    if len(ratios) < MIN_SAMPLES:
        return 1.0
    return min(MAX_SCALE, max(MIN_SCALE, max(ratios) * MARGIN))


def counted_tokens(total: int, prompt: int, scale: float) -> int:
    """What one call counts against the window: ``total`` (prompt estimate + output cap) with its
    ``prompt`` part scaled."""
    prompt = min(max(0, prompt), max(0, total))
    return total - prompt + math.ceil(prompt * scale)


__all__ = ["MARGIN", "MIN_SAMPLES", "counted_tokens", "prompt_scale"]
