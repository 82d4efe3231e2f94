import pytest

from bot.slack.replies import cut_to_fit, open_fence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", None),
        ("```python\nx = 1\n", "```python"),
        ("```python\nx = 1\n```\nafter", None),
        ("~~~\ncode\n", "~~~"),
        ("````\n```\nstill inside\n", "````"),
        ("```\na\n```\n```js\nb", "```js"),
    ],
)
def test_open_fence(text, expected):
    assert open_fence(text) == expected


@pytest.mark.parametrize(
    ("text", "room", "expected"),
    [
        ("short", 10, 5),
        ("aaaa bbbb cccc", 11, 10),  # after the last space within the room
        ("para one\n\npara two", 15, 10),  # a paragraph break is preferred
        ("x" * 50, 20, 20),  # nothing to cut at: hard cut
    ],
)
def test_cut_to_fit(text, room, expected):
    assert cut_to_fit(text, room) == expected
    assert cut_to_fit(text, room) <= max(room, 0) or len(text) <= room
