"""The provider's readings, pure: every error shape, the refused argument, the plain sentence,
the estimated usage and the smaller request after a 413 (DESIGN-NOTES, Heroku Managed Inference)."""

from __future__ import annotations

import json

import pytest

from bot.conversation.request_size import bytes_limit, limit_after_413
from bot.failures import user_sentence
from bot.inference.errors import (
    ErrorFields,
    PayloadTooLargeError,
    RejectedError,
    RetryableError,
    UnknownArgumentError,
    error_fields,
    error_for_status,
    error_for_stream_event,
    plain_sentence,
    refused_argument,
)
from bot.inference.sse import ToolCallOut
from bot.inference.usage import estimated_usage

OBJECT = {"message": "max_tokens: 9000 > 4096", "type": "invalid_request_error", "code": 400}
EXPECTED = ErrorFields("max_tokens: 9000 > 4096", "invalid_request_error", "400")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"error": OBJECT}),  # OpenAI's shape
        json.dumps({"error": json.dumps(OBJECT)}),  # Heroku, 2025: the object as a JSON string
        json.dumps(OBJECT),  # Heroku's API reference: top-level code, message, type
        {"error": OBJECT},  # already parsed
        {"message": json.dumps(OBJECT)},  # a string error event kept as {"message": text}
    ],
)
def test_every_error_shape_gives_the_same_fields(body) -> None:
    assert error_fields(body) == EXPECTED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Bad gateway", ErrorFields("Bad gateway")),
        ("", ErrorFields()),
        ("{not json", ErrorFields("{not json")),
        (json.dumps({"error": "plain words"}), ErrorFields("plain words")),
        (json.dumps({"error": "plain words", "code": 400}), ErrorFields("plain words", None, "400")),
        (json.dumps([1, 2]), ErrorFields()),
    ],
)
def test_plain_text_and_odd_bodies(body, expected) -> None:
    assert error_fields(body) == expected


@pytest.mark.parametrize("shape", ["openai", "string", "top_level", "text"])
def test_a_400_is_rejected_in_every_shape_with_the_providers_reason(shape) -> None:
    document = {
        "openai": {"error": OBJECT},
        "string": {"error": json.dumps(OBJECT)},
        "top_level": OBJECT,
    }.get(shape)
    body = OBJECT["message"] if shape == "text" else json.dumps(document)
    error = error_for_status(400, {}, body, now=0.0)
    assert type(error) is RejectedError and error.status == 400
    assert error.detail == "max_tokens: 9000 > 4096."
    assert user_sentence(error) == "Sorry, the model could not answer this: max_tokens: 9000 > 4096."


@pytest.mark.parametrize(
    ("event", "error_class"),
    [
        ({"message": "bad", "type": "invalid_request_error", "code": 400}, RejectedError),
        ({"message": json.dumps({"message": "bad", "code": 400})}, RejectedError),  # a string error
        ({"message": "bad", "code": "400"}, RejectedError),
        ({"message": "too big", "code": 413}, PayloadTooLargeError),
        ({"message": "Overloaded", "type": "overloaded_error", "code": 529}, RetryableError),
        ({"message": "no code at all"}, RetryableError),
    ],
)
def test_a_400_inside_a_stream_is_never_retryable(event, error_class) -> None:
    assert type(error_for_stream_event(event)) is error_class


@pytest.mark.parametrize(
    ("message", "sent", "expected"),
    [
        ("unrecognized request argument supplied: stream_options", {"stream_options"}, "stream_options"),
        ("Unrecognized request argument supplied: stream_options", set(), "stream_options"),
        ("Unknown parameter: 'stream_options.include_usage'.", {"stream_options"}, "stream_options"),
        ("stream_options: Extra inputs are not permitted", {"stream_options"}, "stream_options"),
        ("unrecognized request argument supplied: top_k", {"stream_options"}, None),  # not ours to drop
        ("max_tokens: 9000 > 4096", {"max_tokens"}, None),
        (None, {"stream_options"}, None),
    ],
)
def test_the_refused_argument_is_read_from_the_message(message, sent, expected) -> None:
    assert refused_argument(message, sent) == expected


def test_a_400_naming_an_argument_we_sent_is_an_unknown_argument() -> None:
    body = json.dumps({"error": json.dumps({"message": "unrecognized request argument supplied: stream_options"})})
    error = error_for_status(400, {}, body, now=0.0, sent={"stream_options", "max_tokens"})
    assert isinstance(error, UnknownArgumentError) and error.argument == "stream_options"
    assert type(error_for_status(400, {}, body, now=0.0, sent={"max_tokens"})) is RejectedError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prompt is   too long\n: 210000 tokens", "prompt is too long : 210000 tokens."),
        ("Done.", "Done."),
        ("`code` and *bold*", "'code' and bold."),
        ("", "it gave no reason."),
    ],
)
def test_plain_sentence(text, expected) -> None:
    assert plain_sentence(text) == expected


def test_estimated_usage_counts_the_prompt_estimate_and_every_output_part() -> None:
    call = ToolCallOut(id="c1", name="calculate", arguments='{"expression": "6*7"}')
    usage = estimated_usage(120, "Forty-two.", [call], reasoning="I multiplied.")
    text_only = estimated_usage(120, "Forty-two.")
    assert usage.estimated and usage.prompt_tokens == 120
    assert usage.completion_tokens > text_only.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize(
    ("refused", "limit", "expected"),
    [(19_000_000, 19_900_000, 9_500_000), (40_000_000, 19_900_000, 19_900_000), (1, 10, 1)],
)
def test_after_a_413_the_limit_shrinks(refused, limit, expected) -> None:
    assert limit_after_413(refused, limit) == expected


def test_the_default_cap_is_bedrocks_20_mb() -> None:
    from bot.config import Settings

    assert Settings().inference_max_request_bytes == 20_000_000
    assert bytes_limit(20_000_000) < 20_000_000
