"""The comparison: what a plain SDK-style client does with the same burst.

Every request goes out at once from a thread pool, straight to the server, and a 429 is
retried the way the OpenAI Python SDK does by default: at most 2 retries; wait the
server's Retry-After when it is given and between 0 and 60 s, else
min(0.5 * 2**retry, 8) s; either way multiplied by a jitter factor in (0.75, 1].
A request still refused after its retries is lost.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


def sdk_retry_delay(retry: int, retry_after_header: str | None, jitter: float) -> float:
    """The SDK's wait before retry number ``retry`` (0-based); ``jitter`` in [0, 1)."""
    if retry_after_header is not None:
        try:
            retry_after = float(retry_after_header)
        except ValueError:
            retry_after = None
        if retry_after is not None and 0 < retry_after <= 60:
            return retry_after
    delay = min(INITIAL_RETRY_DELAY * 2**retry, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * jitter)


@dataclass(frozen=True)
class NaiveResult:
    succeeded: int
    failed: int  # still refused (or broken) after every retry: lost
    responses_429: int
    wall_seconds: float


def run_naive(url: str, api_key: str, bodies: list[dict], *, concurrency: int, timeout: float = 60.0) -> NaiveResult:
    endpoint = url.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counts = {"429": 0}
    counts_lock = threading.Lock()

    with httpx.Client(timeout=timeout, limits=limits) as http:

        def send(body: dict) -> bool:
            for retry in range(MAX_RETRIES + 1):
                try:
                    response = http.post(endpoint, json=body, headers=headers)
                except httpx.HTTPError:
                    return False
                if response.status_code != 429:
                    return response.is_success
                with counts_lock:
                    counts["429"] += 1
                if retry == MAX_RETRIES:
                    return False
                time.sleep(sdk_retry_delay(retry, response.headers.get("retry-after"), random.random()))
            return False

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            outcomes = list(pool.map(send, bodies))
        wall = time.monotonic() - started
    succeeded = sum(outcomes)
    return NaiveResult(succeeded, len(outcomes) - succeeded, counts["429"], wall)
