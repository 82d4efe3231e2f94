"""The fake inference server's rate limit: a sliding window with a choice of token accounting.

Providers do not document how a call's tokens are charged against the per-window limit, so the
fake can play each way the limiter must survive:

- ``"actual"``: the call is charged its real usage (prompt + completion) when it arrives, as if
  the server knew the answer's length in advance (the fake's historical behaviour);
- ``"corrected"``: charged ``prompt + max_tokens`` when it arrives, corrected to the real usage
  when the answer is complete (what Anthropic documents);
- ``"reserved"``: charged ``prompt + max_tokens`` for the whole window, never corrected.

:meth:`WindowLimit.use_external` charges usage by "another app on the same add-on" (a CLI call,
a second bot), which our limiter never sees except through the headers.

Every answer, 200 or 429, carries ``x-ratelimit-limit-*``, ``-remaining-*`` (room left, counting
the request just admitted) and ``-reset-*``: on a 429 the wait until the refused request would
fit; otherwise, as ``reset=`` says (Heroku's API reference documents the header but the meaning
of a reset while there is room is open to reading):

- ``"oldest"``: when the oldest entry expires in the sliding window (Heroku's words);
- ``"replenished"``: when the window is fully replenished (its newest charge expires, OpenAI's);
- ``"zero"``: 0 while there is room.

A refused request is not charged.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

ACCOUNTINGS = ("actual", "corrected", "reserved")
RESETS = ("oldest", "replenished", "zero")
DEFAULT_MAX_TOKENS = 4096  # what a request without max_tokens is charged for


@dataclass
class Charge:
    arrival: float
    tokens: int
    external: bool = False


class Refusal(NamedTuple):
    retry_after: int
    headers: dict[str, str]


class WindowLimit:
    """Thread-safe; every method takes ``now`` (time.monotonic())."""

    def __init__(
        self,
        *,
        max_requests: int | None,
        max_tokens: int | None,
        window: float,
        accounting: str = "actual",
        reset: str = "oldest",
    ) -> None:
        if accounting not in ACCOUNTINGS:
            raise ValueError(f"accounting must be one of {ACCOUNTINGS}, got {accounting!r}")
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        self.reset = reset
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.window = window
        self.accounting = accounting
        self.admitted = 0
        self.rejected_429 = 0
        self.tokens_charged = 0  # final charges of our admitted requests (after corrections)
        self.external_requests = 0
        self.external_tokens = 0
        self._lock = threading.Lock()
        self._charges: deque[Charge] = deque()

    # --- charging ------------------------------------------------------------------------

    def admit(
        self, now: float, *, actual_tokens: int, reserved_tokens: int
    ) -> tuple[Refusal | None, dict, Charge | None]:
        """Charge an arriving request, or refuse it. ``actual_tokens``: its real usage;
        ``reserved_tokens``: prompt + max_tokens. Returns (refusal, headers, charge)."""
        tokens = actual_tokens if self.accounting == "actual" else reserved_tokens
        with self._lock:
            self._prune(now)
            request_wait, token_wait = self._waits(now, tokens)
            waits = [w for w in (request_wait, token_wait) if w is not None]
            if waits:
                self.rejected_429 += 1
                headers = self._headers(now, request_wait, token_wait)
                return Refusal(max(1, math.ceil(max(waits))), headers), headers, None
            charge = Charge(now, tokens)
            self._charges.append(charge)
            self.admitted += 1
            self.tokens_charged += tokens
            return None, self._headers(now, None, None), charge

    def settle(self, charge: Charge | None, actual_tokens: int) -> None:
        """The answer is complete: under "corrected", the charge becomes the real usage."""
        if charge is None or self.accounting != "corrected":
            return
        with self._lock:
            self.tokens_charged += actual_tokens - charge.tokens
            charge.tokens = actual_tokens

    def use_external(self, now: float, *, requests: int = 1, tokens: int = 0) -> None:
        """Another app on the same add-on: charged whatever the limits say (it is not ours to refuse)."""
        with self._lock:
            for index in range(requests):
                self._charges.append(Charge(now, tokens if index == 0 else 0, external=True))
            self.external_requests += requests
            self.external_tokens += tokens

    def charges(self) -> list[tuple[float, int, bool]]:
        with self._lock:
            return [(c.arrival, c.tokens, c.external) for c in self._charges]

    # --- arithmetic ------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        while self._charges and self._charges[0].arrival <= now - self.window:
            self._charges.popleft()

    def _waits(self, now: float, tokens: int) -> tuple[float | None, float | None]:
        charges = self._charges
        request_wait: float | None = None
        token_wait: float | None = None
        if self.max_requests is not None and len(charges) + 1 > self.max_requests:
            must_leave = len(charges) + 1 - self.max_requests
            request_wait = charges[must_leave - 1].arrival + self.window - now
        if self.max_tokens is not None:
            used = sum(c.tokens for c in charges)
            if tokens > self.max_tokens:
                token_wait = self.window
            elif used + tokens > self.max_tokens:
                excess, freed = used + tokens - self.max_tokens, 0
                for charge in charges:
                    freed += charge.tokens
                    if freed >= excess:
                        token_wait = charge.arrival + self.window - now
                        break
        return request_wait, token_wait

    def _headers(self, now: float, request_wait: float | None, token_wait: float | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not self._charges or self.reset == "zero":
            room = 0.0
        elif self.reset == "oldest":
            room = self._charges[0].arrival + self.window - now
        else:
            room = self._charges[-1].arrival + self.window - now
        if self.max_requests is not None:
            reset = request_wait if request_wait is not None else room
            headers["x-ratelimit-limit-requests"] = str(self.max_requests)
            headers["x-ratelimit-remaining-requests"] = str(max(0, self.max_requests - len(self._charges)))
            headers["x-ratelimit-reset-requests"] = f"{math.ceil(max(0.0, reset) * 1000)}ms"
        if self.max_tokens is not None:
            reset = token_wait if token_wait is not None else room
            used = sum(c.tokens for c in self._charges)
            headers["x-ratelimit-limit-tokens"] = str(self.max_tokens)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, self.max_tokens - used))
            headers["x-ratelimit-reset-tokens"] = f"{math.ceil(max(0.0, reset) * 1000)}ms"
        return headers
