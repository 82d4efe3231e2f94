"""Queue feedback in the thread's status: the words (pure) and the throttle (bounded calls)."""

import threading

import pytest

from bot.agent.waiting import waiting_message
from bot.slack.status_board import StatusBoard


@pytest.mark.parametrize(
    ("ahead", "text"),
    [
        (0, "Waiting for the model: yours is next"),
        (1, "Waiting for the model: 1 request ahead of yours"),
        (12, "Waiting for the model: 12 requests ahead of yours"),
    ],
)
def test_waiting_message(ahead, text):
    assert waiting_message(ahead) == text


def test_the_board_sends_changes_at_most_every_interval_and_a_bounded_number_of_times():
    board = StatusBoard(interval=5.0, max_updates=3)
    sent: list[str] = []
    done = threading.Semaphore(0)

    def sender(text):
        def send():
            sent.append(text)
            done.release()

        return send

    assert board.offer("job", "12 ahead", sender("12 ahead"), now=0.0)
    assert not board.offer("job", "11 ahead", sender("11 ahead"), now=2.0)  # too soon
    assert not board.offer("job", "12 ahead", sender("12 ahead"), now=6.0)  # unchanged
    assert board.offer("job", "10 ahead", sender("10 ahead"), now=6.0)
    assert board.offer("other", "3 ahead", sender("3 ahead"), now=6.0)  # per thread
    assert board.offer("job", "9 ahead", sender("9 ahead"), now=11.0)
    assert not board.offer("job", "1 ahead", sender("1 ahead"), now=100.0)  # the third was the last
    for _ in range(4):
        assert done.acquire(timeout=5)
    assert sorted(sent) == sorted(["12 ahead", "10 ahead", "3 ahead", "9 ahead"])
    board.forget("job")
    assert board.offer("job", "a new job", sender("a new job"), now=200.0)
    assert done.acquire(timeout=5)
    board.close()
