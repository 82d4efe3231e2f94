import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.slack.message_split import (
    MARKDOWN_BLOCK_MAX_CHARS,
    MESSAGE_TEXT_MAX_CHARS,
    SECTION_TEXT_MAX_CHARS,
    fallback_text,
    markdown_pieces,
    split_markdown,
    split_section_text,
    to_blocks,
)


def assert_invariant(text: str, max_chars: int) -> list[str]:
    """The invariant of split_markdown's docstring, checked piece by piece."""
    pieces = markdown_pieces(text, max_chars=max_chars)
    chunks = split_markdown(text, max_chars=max_chars)
    assert chunks == [piece.reopen + piece.body + piece.close for piece in pieces]
    position = 0
    for piece, chunk in zip(pieces, chunks, strict=True):
        assert len(chunk) <= max_chars
        body = piece.body
        assert body.strip(), "a body has something visible"
        assert body == body.rstrip(), "a body does not end in whitespace"
        indentation = body[: len(body) - len(body.lstrip())]
        assert "\n" not in indentation, "a body does not start with a line break"
        # Everything between the previous body and this one is whitespace; the body is the text.
        run_end = position
        while run_end < len(text) and text[run_end].isspace():
            run_end += 1
        start = run_end - len(indentation)
        assert start >= position
        assert text[start : start + len(body)] == body
        position = start + len(body)
        if piece.reopen:
            assert re.fullmatch(r" {0,3}(`{3,}|~{3,})[^\n]*\n", piece.reopen)
        if piece.close:
            assert re.fullmatch(r"\n {0,3}(`{3,}|~{3,})", piece.close)
    assert text[position:].strip() == ""
    assert bool(chunks) == bool(text.strip())
    return chunks


def fences_balanced(chunk: str) -> bool:
    open_fence = False
    for line in chunk.split("\n"):
        if line.startswith("```"):
            open_fence = not open_fence
    return not open_fence


# --- table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("", 10, []),
        (" \n\n\t ", 10, []),
        ("short", 10, ["short"]),
        ("exactly10!", 10, ["exactly10!"]),
        ("\n\n  indented start\n\n", 100, ["  indented start"]),
        # A paragraph break beats a later line break.
        ("aaaa bbbb\n\ncccc\ndddd eeee", 18, ["aaaa bbbb", "cccc\ndddd eeee"]),
        # A line break beats a later space.
        ("aaaa bbbb\ncccc dddd eeee", 18, ["aaaa bbbb", "cccc dddd eeee"]),
        # Then a space.
        ("aaaa bbbb cccc dddd", 10, ["aaaa bbbb", "cccc dddd"]),
        # A word longer than the limit is cut.
        ("x" * 25, 10, ["x" * 10, "x" * 10, "x" * 5]),
        # An early paragraph break loses to a late space: chunks are not needlessly short.
        ("ab\n\n" + "word " * 8, 30, ["ab\n\nword word word word word", "word word word"]),
    ],
)
def test_split_table(text, max_chars, expected):
    assert assert_invariant(text, max_chars) == expected


def test_a_code_block_that_fits_is_not_split():
    code = "```python\n" + "\n".join(f"print({i})" for i in range(8)) + "\n```"
    text = "Intro paragraph here.\n\n" + code + "\n\nOutro."
    chunks = assert_invariant(text, len(code) + 5)
    assert code in chunks
    assert all(fences_balanced(chunk) for chunk in chunks)


def test_a_long_code_block_is_closed_and_reopened_with_its_language():
    lines = [f"value_{i} = compute({i})  # step {i}" for i in range(300)]
    text = "Here is the script:\n\n```python\n" + "\n".join(lines) + "\n```\n\nRun it with `python x.py`."
    chunks = assert_invariant(text, 1000)
    assert len(chunks) > 5
    assert chunks[0].startswith("Here is the script:\n\n```python\nvalue_0")  # no lonely intro chunk
    assert all(fences_balanced(chunk) for chunk in chunks)
    assert all(chunk.startswith("```python\n") for chunk in chunks[1:])
    assert all(chunk.endswith("\n```") for chunk in chunks[:-1])
    assert chunks[-1].endswith("Run it with `python x.py`.")
    # No code line is cut in two: the splits fall on line breaks.
    code_lines = [line for chunk in chunks for line in chunk.split("\n") if line.startswith("value_")]
    assert code_lines == lines


def test_tilde_fences_and_longer_markers_are_reopened_as_they_were():
    text = "~~~~ js\n" + "let a = 1;\n" * 50 + "~~~~"
    chunks = assert_invariant(text, 120)
    assert all(chunk.startswith("~~~~ js\n") for chunk in chunks)
    assert all(chunk.endswith("~~~~") for chunk in chunks)


def test_an_unclosed_code_block_is_closed_only_where_it_was_split():
    text = "```\n" + "line\n" * 40
    chunks = assert_invariant(text, 60)
    assert all(chunk.endswith("\n```") for chunk in chunks[:-1])
    assert not chunks[-1].endswith("```")


def test_a_long_line_inside_code_is_cut_within_the_fence():
    text = "```sh\n" + "a" * 300 + "\n```"
    chunks = assert_invariant(text, 100)
    assert all(fences_balanced(chunk) for chunk in chunks)
    assert "".join(chunk.removeprefix("```sh\n").removesuffix("\n```") for chunk in chunks) == "a" * 300


def test_a_combining_mark_stays_with_its_letter():
    text = "e\u0301" * 30  # é written as e + combining acute
    chunks = assert_invariant(text, 11)
    assert all(not chunk.startswith("\u0301") for chunk in chunks)


def test_slack_sized_answer_splits_between_paragraphs_and_fills_each_chunk():
    paragraph = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 12).strip()
    text = "\n\n".join([paragraph] * 60)
    chunks = assert_invariant(text, MARKDOWN_BLOCK_MAX_CHARS)
    per_chunk = (MARKDOWN_BLOCK_MAX_CHARS + 2) // (len(paragraph) + 2)  # whole paragraphs that fit
    assert len(chunks) == -(-60 // per_chunk)
    assert all(set(chunk.split("\n\n")) == {paragraph} for chunk in chunks)


def test_limits_are_validated():
    with pytest.raises(ValueError):
        split_markdown("text", max_chars=0)


# --- blocks and fallback text -----------------------------------------------------------------


def test_to_blocks():
    assert to_blocks("**hi**") == [{"type": "markdown", "text": "**hi**"}]
    with pytest.raises(ValueError):
        to_blocks("x" * (MARKDOWN_BLOCK_MAX_CHARS + 1))
    with pytest.raises(ValueError):
        to_blocks("  ")


@pytest.mark.parametrize(
    ("chunk", "max_chars", "expected"),
    [("short", MESSAGE_TEXT_MAX_CHARS, "short"), ("abcdef", 4, "abc…"), ("abcd", 4, "abcd")],
)
def test_fallback_text(chunk, max_chars, expected):
    assert fallback_text(chunk, max_chars) == expected


def test_fallback_text_default_limit():
    assert len(fallback_text("y" * 50_000)) == MESSAGE_TEXT_MAX_CHARS


def test_section_text_uses_the_section_limit():
    text = "word " * 2000
    chunks = split_section_text(text)
    assert len(chunks) == 4 and all(len(chunk) <= SECTION_TEXT_MAX_CHARS for chunk in chunks)


# --- properties -------------------------------------------------------------------------------

markdownish = st.lists(
    st.sampled_from(
        [
            "word",
            " ",
            "  ",
            "\n",
            "\n\n",
            "\t",
            "```",
            "```py\n",
            "\n```\n",
            "~~~",
            "`",
            "é",
            "😀",
            "\u0301",
            "\u200d",
            "日本",
        ]
    )
    | st.text(max_size=5),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), markdownish), st.integers(1, 80))
@example("a" + " " * 50 + "\n" + " " * 50 + "b", 10)
@example("```" + "x" * 100, 20)
@example("x" * 100 + "\n```\n" + "y" * 100, 12)
def test_never_exceeds_the_limit_and_never_loses_text(text, max_chars):
    assert_invariant(text, max_chars)


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n "), min_size=1, max_size=2000)
)
def test_very_long_lines_without_spaces(text):
    assert_invariant(text, 97)


code_line = st.text(alphabet="abcdefgh(){}=;: ", max_size=50)
block = st.builds(
    lambda language, lines: f"```{language}\n" + "\n".join(lines) + "\n```",
    st.sampled_from(["", "python", "js"]),
    st.lists(code_line, max_size=30),
)
prose = st.text(alphabet="abcdefgh ,.\n", min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(block, prose), min_size=1, max_size=8).map("\n\n".join), st.integers(60, 400))
def test_well_formed_code_blocks_stay_balanced_in_every_chunk(text, max_chars):
    chunks = assert_invariant(text, max_chars)
    assert all(fences_balanced(chunk) for chunk in chunks)
