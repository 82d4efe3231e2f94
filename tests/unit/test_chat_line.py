import pytest

from bot.chat.line import ChatLine, parse_line


@pytest.mark.parametrize(
    "line, expected",
    [
        ("", ChatLine("empty")),
        ("   \n", ChatLine("empty")),
        ("/exit", ChatLine("exit")),
        ("/quit\n", ChatLine("exit")),
        ("/new", ChatLine("new")),
        ("hello there\n", ChatLine("message", "hello there")),
        ("/image shot.png what is this?", ChatLine("message", "what is this?", ("shot.png",))),
        ("/image 'my shot.png' why", ChatLine("message", "why", ("my shot.png",))),
        ("/image a.png", ChatLine("message", "", ("a.png",))),
        ("/image", ChatLine("error", "usage: /image PATH [question]")),
        ("/image 'unclosed", ChatLine("error", "could not read the path (unbalanced quotes?)")),
        ("compare @a.PNG and @b.jpg please", ChatLine("message", "compare and please", ("a.PNG", "b.jpg"))),
        ("ask @alice about it", ChatLine("message", "ask @alice about it")),  # not an image path
        ("email me @ noon", ChatLine("message", "email me @ noon")),
    ],
)
def test_parse_line(line, expected):
    assert parse_line(line) == expected


def test_settings_lines_go_to_the_settings():
    from bot.chat.line import parse_line

    assert parse_line("/settings tools calculate ").kind == "settings"
    assert parse_line("/settings tools calculate").text == "tools calculate"
    assert parse_line("/settings").text == ""
