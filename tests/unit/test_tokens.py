import base64
import json
import math
import random
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.limits.tokens import (
    DEFAULT_MAX_TOKENS,
    MAX_IMAGE_TOKENS,
    estimate_image_tokens,
    estimate_messages_tokens,
    estimate_request,
    estimate_request_tokens,
    estimate_text_tokens,
    estimate_tools_tokens,
    image_size_from_data_url,
)


def data_url(width: int, height: int, fmt: str = "PNG") -> str:
    buffer = BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format=fmt)
    mime = {"PNG": "png", "JPEG": "jpeg", "GIF": "gif", "WEBP": "webp"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


# --- text -------------------------------------------------------------------------------------

ENGLISH = "The quick brown fox jumps over the lazy dog, then naps in the afternoon sun."
CODE = 'def add(a, b):\n    """Sum."""\n    return {"total": a + b, "ok": True}\n'


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("", 0),
        ("a", 1),
        ("hello", 2),  # ceil(5 / 3.5)
        (ENGLISH, math.ceil(len(ENGLISH) / 3.5)),
        ("x" * 700, 200),
        # Code is denser than prose: hold it to about 3 characters per token.
        (CODE, math.ceil(len(CODE) / 3)),
        ("if (a[i] != b[j]) { x++; }", math.ceil(len("if (a[i] != b[j]) { x++; }") / 2)),
        # One token per CJK character at least, and one per emoji.
        ("日本語のテキストです", 10),
        ("😀😀😀😀", 4),
    ],
)
def test_text_estimate_is_at_least(text, at_least):
    assert estimate_text_tokens(text) >= at_least


def test_empty_text_costs_nothing():
    assert estimate_text_tokens("") == 0


def test_non_ascii_counts_heavier_than_ascii_of_the_same_length():
    assert estimate_text_tokens("é" * 40) > estimate_text_tokens("e" * 40)
    assert estimate_text_tokens("中" * 40) > estimate_text_tokens("é" * 40)


def test_prose_estimate_is_not_wildly_pessimistic():
    # Over-counting wastes window capacity: English should stay near 3.5 chars/token.
    prose = ENGLISH * 20
    assert estimate_text_tokens(prose) <= math.ceil(len(prose) / 3.0)


@given(st.text(max_size=400))
def test_text_estimate_never_below_the_length_rule(text):
    assert estimate_text_tokens(text) >= math.ceil(len(text) / 3.5)


@given(st.text(max_size=200), st.text(max_size=200))
def test_text_estimate_grows_with_more_text_roughly(a, b):
    # Joining can merge a boundary piece, but never loses more than one token per side.
    assert estimate_text_tokens(a + b) >= max(estimate_text_tokens(a), estimate_text_tokens(b)) - 1


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (0, 0, 0),
        (200, 200, 54),  # 40,000 / 750 = 53.3
        (750, 1, 1),
        (751, 1, 2),
        (1092, 1092, 1590),  # Anthropic's own example: about 1,590 tokens
        (1568, 1568, 3279),  # 2,458,624 / 750 = 3278.2
        (3136, 3136, 3279),  # scaled down to 1568 x 1568
        (3136, 1000, 1046),  # scaled to 1568 x 500: 784,000 / 750 = 1045.3
        (1000, 3136, 1046),
        (1569, 10, 21),  # 1568 x 9.99..: 15,670 / 750 = 20.9
    ],
)
def test_image_tokens(width, height, expected):
    assert estimate_image_tokens(width, height) == expected


def test_negative_image_dimensions_are_rejected():
    with pytest.raises(ValueError):
        estimate_image_tokens(-1, 10)


def test_max_image_tokens_is_the_largest_image():
    assert MAX_IMAGE_TOKENS == estimate_image_tokens(1568, 1568)
    assert MAX_IMAGE_TOKENS >= estimate_image_tokens(10_000, 10_000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_image_size_is_read_from_the_header(fmt):
    assert image_size_from_data_url(data_url(321, 123, fmt)) == (321, 123)


def test_jpeg_with_large_metadata_before_the_frame_header_is_still_measured():
    buffer = BytesIO()
    profile = random.Random(3).randbytes(200_000)  # written as APP2 segments before SOF
    Image.new("RGB", (640, 480)).save(buffer, format="JPEG", icc_profile=profile)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(url) > 200_000
    assert image_size_from_data_url(url) == (640, 480)


@pytest.mark.parametrize(
    "url",
    [
        "https://files.slack.com/img.png",
        "data:image/png;base64,",
        "data:image/png;base64,!!!not base64!!!",
        "data:image/png;base64," + base64.b64encode(b"not an image at all").decode(),
        "data:image/png,rawbytes",
        "data:image/png;base64",
    ],
)
def test_unreadable_images_have_no_size(url):
    assert image_size_from_data_url(url) is None


# --- tools ------------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        },
    }
]


def test_no_tools_cost_nothing():
    assert estimate_tools_tokens([]) == 0


def test_tools_cost_at_least_their_json_text():
    schema_text = json.dumps(TOOLS)
    assert estimate_tools_tokens(TOOLS) >= estimate_text_tokens(schema_text)
    assert estimate_tools_tokens(TOOLS * 2) > estimate_tools_tokens(TOOLS)


# --- messages ---------------------------------------------------------------------------------


def test_each_message_has_an_overhead():
    one = estimate_messages_tokens([{"role": "user", "content": ""}])
    two = estimate_messages_tokens([{"role": "user", "content": ""}] * 2)
    assert one > 0
    assert two == 2 * one


def test_string_content_and_a_text_part_cost_the_same():
    as_string = [{"role": "user", "content": ENGLISH}]
    as_parts = [{"role": "user", "content": [{"type": "text", "text": ENGLISH}]}]
    assert estimate_messages_tokens(as_string) == estimate_messages_tokens(as_parts)
    assert estimate_messages_tokens(as_string) >= estimate_text_tokens(ENGLISH)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (data_url(300, 200), estimate_image_tokens(300, 200)),
        (data_url(4000, 1000, "JPEG"), estimate_image_tokens(4000, 1000)),
        ("data:image/png;base64,AAAA", MAX_IMAGE_TOKENS),
        ("https://example.com/cat.png", MAX_IMAGE_TOKENS),
    ],
)
def test_image_parts_cost_their_image_tokens(url, expected):
    text_only = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}]}]
    with_image = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image_part(url)]}]
    assert estimate_messages_tokens(with_image) - estimate_messages_tokens(text_only) == expected


def test_image_data_is_not_counted_as_text():
    noise = Image.frombytes("RGB", (64, 64), random.Random(7).randbytes(64 * 64 * 3))
    buffer = BytesIO()
    noise.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    cost = estimate_messages_tokens([{"role": "user", "content": [image_part(url)]}])
    assert estimate_text_tokens(url) > 1000
    assert cost < 50


def test_tool_calls_and_tool_results_are_counted():
    arguments = json.dumps({"city": "Lisbon", "units": "metric"})
    plain = {"role": "assistant", "content": "Checking."}
    with_call = {
        **plain,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ],
    }
    added = estimate_messages_tokens([with_call]) - estimate_messages_tokens([plain])
    assert added >= estimate_text_tokens(arguments) + estimate_text_tokens("get_weather")

    result = {"role": "tool", "tool_call_id": "call_1", "content": "21 C and sunny"}
    assert estimate_messages_tokens([result]) >= estimate_text_tokens("21 C and sunny") + 1


def test_missing_or_null_content_is_allowed():
    assert estimate_messages_tokens([{"role": "assistant", "content": None}]) > 0
    assert estimate_messages_tokens([{"role": "assistant"}]) > 0


# --- whole requests ---------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": ENGLISH}]


def test_request_reserves_the_default_max_tokens_when_absent():
    without = estimate_request_tokens({"messages": MESSAGES})
    with_zero = estimate_request_tokens({"messages": MESSAGES, "max_tokens": 0})
    assert without - with_zero == DEFAULT_MAX_TOKENS == 1024


def test_request_reserves_max_tokens():
    small = estimate_request_tokens({"messages": MESSAGES, "max_tokens": 100})
    large = estimate_request_tokens({"messages": MESSAGES, "max_tokens": 4100})
    assert large - small == 4000
    assert small >= estimate_messages_tokens(MESSAGES) + 100


@pytest.mark.parametrize(
    "thinking",
    [{"enabled": True, "budget_tokens": 2048}, {"enabled": False, "budget_tokens": 2048}, {"enabled": True}],
)
def test_thinking_is_not_counted_twice(thinking):
    # Thinking tokens come out of max_tokens (the budget must be below it): max_tokens covers them.
    body = {"messages": MESSAGES, "max_tokens": 4096}
    assert estimate_request_tokens({**body, "extended_thinking": thinking}) == estimate_request_tokens(body)


@pytest.mark.parametrize("max_tokens", [None, 0, 300])
def test_request_estimate_splits_prompt_and_output_cap(max_tokens):
    body = {"messages": MESSAGES, "tools": TOOLS}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    estimate = estimate_request(body)
    assert estimate.output == (DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens)
    assert estimate.prompt >= estimate_messages_tokens(MESSAGES) + estimate_tools_tokens(TOOLS)
    assert estimate.total == estimate.prompt + estimate.output == estimate_request_tokens(body)


def test_request_counts_tools_and_images():
    body = {"messages": MESSAGES, "max_tokens": 10}
    with_tools = {**body, "tools": TOOLS}
    assert estimate_request_tokens(with_tools) - estimate_request_tokens(body) == estimate_tools_tokens(TOOLS)

    picture = [{"role": "user", "content": [image_part(data_url(1500, 1500))]}]
    with_image = {**body, "messages": MESSAGES + picture}
    image_cost = estimate_request_tokens(with_image) - estimate_request_tokens(body)
    assert image_cost >= estimate_image_tokens(1500, 1500)
