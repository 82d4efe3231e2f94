"""Trimming a request to the provider's size limit (bot.conversation.request_size, pure)."""

from __future__ import annotations

import pytest

from bot.conversation.request_size import RequestTooBig, fit_request_size, request_bytes
from bot.history.messages import thread_to_messages
from bot.history.thread import ImagePart, ThreadEntry


def entry(ts: str, text: str = "", images: int = 0, size: int = 1000) -> ThreadEntry:
    parts = tuple(ImagePart("image/png", b"\x89PNG" + bytes(size), 10, 10) for _ in range(images))
    return ThreadEntry(ts=ts, role="user", text=text or f"message {ts}", user_id="U1", images=parts)


def build(entries, images):
    return {"model": "m", "messages": thread_to_messages(entries, system_prompt="s", max_images=images)}


def test_a_request_within_the_limit_is_left_alone():
    history = [entry("1", images=2), entry("2", images=1)]
    body, left_out = fit_request_size(history, [], max_images=10, build=build, limit=10**6)
    assert left_out == 0 and body == build(history, 3)


def test_the_oldest_images_go_first():
    history = [entry("1", images=2, size=30_000), entry("2", images=1, size=30_000)]
    limit = request_bytes(build(history, 1)) + 10
    body, left_out = fit_request_size(history, [], max_images=10, build=build, limit=limit)
    assert left_out == 2 and body == build(history, 1)
    assert request_bytes(body) <= limit


def test_then_the_oldest_history_but_never_the_newest_message_or_the_turn():
    history = [entry("1", "x" * 50_000), entry("2", "y" * 50_000), entry("3", "the question")]
    turn = [ThreadEntry(ts="3", role="assistant", text="partial")]
    limit = request_bytes(build([history[-1], *turn], 0)) + 10
    body, _ = fit_request_size(history, turn, max_images=10, build=build, limit=limit)
    assert body == build([history[-1], *turn], 0)


def test_nothing_fits_is_an_error_not_a_request_sent_to_fail():
    with pytest.raises(RequestTooBig):
        fit_request_size([entry("1", "z" * 10_000)], [], max_images=0, build=build, limit=100)
