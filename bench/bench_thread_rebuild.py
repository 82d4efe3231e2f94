"""Time rebuilding a request from a stored thread: ``fit_to_budget`` then ``thread_to_messages``,
recounting every entry's tokens, and with the estimates stored with the rows (as the reply job
loads them).

Synthetic threads of 100, 1,000 and 10,000 messages: three people and the bot, realistic
text lengths, a tool call every 20 replies, five images of about 150 kB each. The budget is a
200k-token context minus a 6k fixed part, so the long threads are cut down.

    python -m bench.bench_thread_rebuild
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from bot.conversation.budget import fit_to_budget, stored_tokens
from bot.history.messages import thread_to_messages
from bot.history.thread import ImagePart, ThreadEntry, ToolCall

SIZES = (100, 1_000, 10_000)
RUNS = 7
BUDGET_TOKENS = 194_000
FIXED_TOKENS = 6_000
IMAGES_PER_THREAD = 5
SYSTEM_PROMPT = "You are a helpful assistant in a Slack workspace."
VOCABULARY = (
    "the deploy failed because worker dyno memory quota was exceeded after release phase "
    "could you check logs please thanks postgres connection pool timeout slack thread "
    "answer question model tokens limit retry queue budget image file python function"
).split()


def _text(rng: random.Random, low: int, high: int) -> str:
    words, length = [], rng.randint(low, high)
    while sum(len(word) + 1 for word in words) < length:
        words.append(rng.choice(VOCABULARY))
    return " ".join(words)


def synthetic_thread(size: int, seed: int = 7) -> list[ThreadEntry]:
    rng = random.Random(seed)
    image_at = set(rng.sample(range(0, size, 2), min(IMAGES_PER_THREAD, size // 2)))
    people = [("U0AAA1", "Alice"), ("U0BBB2", "Bob"), ("U0CCC3", "Chen")]
    entries: list[ThreadEntry] = []
    index = 0
    while len(entries) < size:
        ts = f"1764000000.{index:06d}"
        index += 1
        if len(entries) % 2 == 0:
            user_id, name = rng.choice(people)
            images = ()
            if len(entries) in image_at:
                images = (ImagePart("image/jpeg", rng.randbytes(150_000), 1568, 1176),)
            entries.append(ThreadEntry(ts, "user", _text(rng, 20, 400), user_id, name, images=images))
        elif len(entries) % 40 == 1 and len(entries) + 2 < size:
            call = ToolCall(f"call_{index}", "search_docs", json.dumps({"query": _text(rng, 10, 40)}))
            entries.append(ThreadEntry(ts, "assistant", "", tool_calls=(call,)))
            entries.append(ThreadEntry(ts, "tool", _text(rng, 500, 3000), tool_call_id=call.id))
            entries.append(ThreadEntry(ts, "assistant", _text(rng, 200, 2000)))
        else:
            entries.append(ThreadEntry(ts, "assistant", _text(rng, 200, 2000)))
    return entries


def median_ms(action: Callable[[], object], runs: int = RUNS) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure(size: int) -> str:
    """One table row for a thread of ``size`` messages."""
    entries = synthetic_thread(size)
    # As loaded from the database: each entry carries the estimate stored with its row.
    stored = [replace(entry, tokens=stored_tokens(entry)) for entry in entries]

    def fit(thread):
        return fit_to_budget(thread, budget_tokens=BUDGET_TOKENS, fixed_tokens=FIXED_TOKENS)

    fitted = fit(stored)
    recount_ms = median_ms(lambda: fit(entries))
    fit_ms = median_ms(lambda: fit(stored))
    messages_ms = median_ms(lambda: thread_to_messages(fitted.entries, system_prompt=SYSTEM_PROMPT))
    total_ms = median_ms(lambda: thread_to_messages(fit(stored).entries, system_prompt=SYSTEM_PROMPT))
    return (
        f"| {size:,} | {len(fitted.entries):,} | {fitted.left_out:,} | {fitted.estimated_tokens:,} "
        f"| {recount_ms:.1f} ms | {fit_ms:.1f} ms | {messages_ms:.1f} ms | {total_ms:.1f} ms |"
    )


def main() -> None:
    print(f"Median of {RUNS} runs; budget {BUDGET_TOKENS:,} tokens, fixed part {FIXED_TOKENS:,}.\n")
    print(
        "| messages | sent | left out | est. tokens | fit_to_budget, recounting | fit_to_budget, stored estimates "
        "| thread_to_messages | total (stored) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        print(measure(size))


if __name__ == "__main__":
    main()
