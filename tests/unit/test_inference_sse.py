"""Pure tests of SSE framing, chunk assembly and completion parsing (bot.inference.sse),
plus the status → error classification of bot.inference.errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.inference.errors import (
    PayloadTooLargeError,
    RateLimitedError,
    RejectedError,
    RetryableError,
    error_for_status,
    error_for_stream_event,
    safe_message,
)
from bot.inference.sse import (
    MalformedResponseError,
    SseChunkReader,
    SseEventDecoder,
    SseLineSplitter,
    StreamAssembler,
    StreamErrorEvent,
    ToolCallOut,
    Usage,
    assemble_chunks,
    message_from_completion,
    parse_event_data,
    parse_sse_lines,
    parse_usage,
    reasoning_text,
)


def delta_chunk(delta: dict, finish_reason: str | None = None, index: int = 0) -> dict:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}],
    }


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


# --- line splitting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feeds", "lines", "rest"),
    [
        ([b"a\nb\n"], ["a", "b"], []),
        ([b"a\r\nb\r\n"], ["a", "b"], []),
        ([b"a\rb\r"], ["a", "b"], []),
        ([b"a\r", b"\nb\n"], ["a", "b"], []),  # CRLF cut between feeds is one line end
        ([b"a\r", b"\r\nb"], ["a", ""], ["b"]),  # CR then CRLF: two line ends
        ([b"\n\n"], ["", ""], []),
        ([b"partial"], [], ["partial"]),
        ([b"x\xe2\x80", b"\xa8y\n"], ["x\u2028y"], []),  # U+2028 split across feeds, not a line end
        ([b"x\xc2\x85y\n"], ["x\x85y"], []),  # NEL is not a line end either
        ([b"x\x0by\x0cz\n"], ["x\x0by\x0cz"], []),
    ],
)
def test_line_splitter(feeds: list[bytes], lines: list[str], rest: list[str]) -> None:
    splitter = SseLineSplitter()
    got = [line for data in feeds for line in splitter.feed(data)]
    assert got == lines
    assert splitter.flush() == rest


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))), max_size=8),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_line_splitter_ignores_how_bytes_are_chunked(lines: list[str], ending: str, cuts: list[int]) -> None:
    data = "".join(line + ending for line in lines).encode()
    splitter = SseLineSplitter()
    got = [line for piece in split_at(data, cuts) for line in splitter.feed(piece)]
    got += splitter.flush()
    assert got == lines


# --- events --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        (["data: {}", ""], ["{}"]),
        (["data:{}", ""], ["{}"]),  # the space after the colon is optional
        (["data:  x", ""], [" x"]),  # only one space is removed
        (["data: a", "data: b", ""], ["a\nb"]),
        ([": keep-alive", "", "data: x", ""], ["x"]),
        (["event: message", "id: 7", "retry: 10", "data: x", ""], ["x"]),
        (["", "", "data: x", ""], ["x"]),  # blank lines with no data dispatch nothing
        (["data", ""], [""]),  # a field name alone means empty data
        (["data: x"], []),  # not dispatched until the blank line
    ],
)
def test_event_decoder(lines: list[str], events: list[str]) -> None:
    decoder = SseEventDecoder()
    got = [data for line in lines if (data := decoder.feed_line(line)) is not None]
    assert got == events


def test_parse_event_data() -> None:
    assert parse_event_data("[DONE]") is None
    assert parse_event_data(" [DONE] ") is None
    assert parse_event_data('{"a": 1}') == {"a": 1}
    with pytest.raises(MalformedResponseError):
        parse_event_data("{not json")
    with pytest.raises(MalformedResponseError):
        parse_event_data("[1, 2]")


def test_chunk_reader_stops_at_done_and_flushes_a_last_event() -> None:
    reader = SseChunkReader()
    assert reader.feed(b'data: {"n": 1}\n\ndata: {"n"') == [{"n": 1}]
    assert reader.feed(b": 2}\n\n") == [{"n": 2}]
    assert reader.feed(b'data: [DONE]\n\ndata: {"n": 3}\n\n') == []
    assert reader.done
    assert reader.close() == []

    unterminated = SseChunkReader()
    assert unterminated.feed(b'data: {"n": 1}') == []
    assert unterminated.close() == [{"n": 1}]
    assert not unterminated.done


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_chunk_reader_ignores_how_bytes_are_chunked(cuts: list[int]) -> None:
    chunks = [{"text": "héllo\u2028wörld"}, {"text": "🙂"}, {"n": 3}]
    body = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\r\n\r\n" for c in chunks) + "data: [DONE]\r\n\r\n"
    reader = SseChunkReader()
    got = [chunk for piece in split_at(body.encode(), cuts) for chunk in reader.feed(piece)]
    got += reader.close()
    assert got == chunks
    assert reader.done


def test_parse_sse_lines_stops_at_done() -> None:
    lines = ['data: {"a": 1}', "", "data: [DONE]", "", 'data: {"b": 2}', ""]
    assert list(parse_sse_lines(lines)) == [{"a": 1}]
    assert list(parse_sse_lines(['data: {"a": 1}'])) == [{"a": 1}]  # last event without blank line


# --- assembling a stream -----------------------------------------------------------------


def test_assembler_returns_each_text_delta_and_joins_content() -> None:
    assembler = StreamAssembler()
    returned = [
        assembler.add(delta_chunk({"role": "assistant", "content": ""})),
        assembler.add(delta_chunk({"content": "Hel"})),
        assembler.add(delta_chunk({"content": "lo"})),
        assembler.add(delta_chunk({}, "stop")),
    ]
    assert returned == ["", "Hel", "lo", ""]
    message = assembler.result()
    assert message.content == "Hello"
    assert message.finish_reason == "stop"
    assert message.tool_calls == []
    assert message.usage is None
    assert message.reasoning is None


def test_assembler_orders_tool_calls_by_index_and_concatenates_arguments() -> None:
    chunks = [
        delta_chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "second", "arguments": ""}}]}),
        delta_chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "first", "arguments": '{"q"'}}]}),
        delta_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"x": '}}]}),
        delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "hi"}'}}]}),
        delta_chunk({"tool_calls": [{"index": 1, "function": {"name": "second", "arguments": "2}"}}]}),
        delta_chunk({}, "tool_calls"),
    ]
    message = assemble_chunks(chunks)
    assert message.tool_calls == [
        ToolCallOut(id="a", name="first", arguments='{"q": "hi"}'),
        ToolCallOut(id="b", name="second", arguments='{"x": 2}'),
    ]
    assert message.finish_reason == "tool_calls"


def test_assembler_tool_calls_without_index_follow_their_id() -> None:
    chunks = [
        delta_chunk({"tool_calls": [{"id": "a", "function": {"name": "one", "arguments": "{"}}]}),
        delta_chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),  # no id: continues the last call
        delta_chunk({"tool_calls": [{"id": "b", "function": {"name": "two"}}]}),
        delta_chunk({"tool_calls": [{"id": "a", "function": {"arguments": ""}}]}),
    ]
    message = assemble_chunks(chunks)
    assert message.tool_calls == [
        ToolCallOut(id="a", name="one", arguments="{}"),
        ToolCallOut(id="b", name="two", arguments="{}"),  # no arguments at all → "{}"
    ]


def test_assembler_fills_missing_tool_call_id_and_accepts_object_arguments() -> None:
    chunks = [delta_chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]})]
    assert assemble_chunks(chunks).tool_calls == [ToolCallOut(id="call_0", name="f", arguments='{"a":1}')]


@pytest.mark.parametrize(
    ("deltas", "reasoning"),
    [
        ([{"reasoning": "I think"}, {"reasoning": " so"}], "I think so"),
        ([{"reasoning_content": "a"}, {"reasoning_content": "b"}], "ab"),
        ([{"reasoning": {"thinking": "obj"}}], "obj"),
        ([{"reasoning": None}, {"content": "x"}], None),
        ([{"reasoning": ""}], None),
    ],
)
def test_assembler_reasoning(deltas: list[dict], reasoning: str | None) -> None:
    assert assemble_chunks([delta_chunk(d) for d in deltas]).reasoning == reasoning


def test_assembler_takes_usage_from_a_late_chunk_and_ignores_other_choices() -> None:
    chunks = [
        delta_chunk({"content": "A"}),
        delta_chunk({"content": "B"}, index=1),
        delta_chunk({}, "length"),
        {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}},
    ]
    message = assemble_chunks(chunks)
    assert message.content == "A"
    assert message.finish_reason == "length"
    assert message.usage == Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13)


def test_assembler_raises_on_an_error_chunk() -> None:
    assembler = StreamAssembler()
    assembler.add(delta_chunk({"content": "A"}))
    with pytest.raises(StreamErrorEvent) as raised:
        assembler.add({"error": {"message": "Overloaded", "type": "overloaded_error"}})
    assert raised.value.error["type"] == "overloaded_error"


@given(st.text(max_size=60), st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_assembled_content_is_the_concatenation_of_deltas(text: str, cuts: list[int]) -> None:
    chunks = [delta_chunk({"content": piece}) for piece in _text_pieces(text, cuts)]
    assert assemble_chunks(chunks).content == text


def _text_pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(cut, len(text)) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(text)]:
        pieces.append(text[start:point])
        start = point
    return pieces


# --- non-streaming completion ------------------------------------------------------------


def test_message_from_completion() -> None:
    document = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me look.",
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "search", "arguments": '{"q":"x"}'}},
                        {"id": "t2", "type": "function", "function": {"name": "now", "arguments": ""}},
                    ],
                    "reasoning": {"thinking": "need data", "signature": "sig"},
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7},
    }
    message = message_from_completion(document)
    assert message.content == "Let me look."
    assert message.tool_calls == [
        ToolCallOut(id="t1", name="search", arguments='{"q":"x"}'),
        ToolCallOut(id="t2", name="now", arguments="{}"),
    ]
    assert message.reasoning == "need data"
    assert message.finish_reason == "tool_calls"
    assert message.usage == Usage(prompt_tokens=5, completion_tokens=7, total_tokens=12)


def test_message_from_completion_with_content_parts_and_null_content() -> None:
    parts = {
        "choices": [
            {"message": {"content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}}
        ]
    }
    assert message_from_completion(parts).content == "ab"
    empty = {"choices": [{"message": {"content": None}, "finish_reason": "stop"}]}
    assert message_from_completion(empty).content == ""


@pytest.mark.parametrize(
    "document",
    [None, [], {}, {"choices": []}, {"choices": [{"index": 0}]}, {"choices": "x"}],
)
def test_message_from_completion_rejects_malformed_documents(document: object) -> None:
    with pytest.raises(MalformedResponseError):
        message_from_completion(document)


def test_message_from_completion_raises_on_error_document() -> None:
    with pytest.raises(StreamErrorEvent):
        message_from_completion({"error": {"message": "nope"}})


def test_tool_call_to_message_dict() -> None:
    call = ToolCallOut(id="t", name="f", arguments="{}")
    assert call.to_message_dict() == {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("value", "usage"),
    [
        ({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}, Usage(1, 2, 3)),
        ({"prompt_tokens": 1, "completion_tokens": 2}, Usage(1, 2, 3)),
        ({"prompt_tokens": None, "completion_tokens": 2}, Usage(0, 2, 2)),
        ({"prompt_tokens": "x"}, None),
        (None, None),
        ("usage", None),
    ],
)
def test_parse_usage(value: object, usage: Usage | None) -> None:
    assert parse_usage(value) == usage


@pytest.mark.parametrize(
    ("value", "text"),
    [("t", "t"), ({"thinking": "t"}, "t"), ({"text": "t"}, "t"), ({"content": "t"}, "t"), ({"x": 1}, ""), (3, "")],
)
def test_reasoning_text(value: object, text: str) -> None:
    assert reasoning_text(value) == text


# --- error classification ----------------------------------------------------------------

ERROR_BODY = json.dumps({"error": {"message": "prompt is too long", "type": "invalid_request_error", "code": 400}})


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, RejectedError),
        (401, RejectedError),
        (403, RejectedError),
        (404, RejectedError),
        (413, PayloadTooLargeError),
        (422, RejectedError),
        (408, RetryableError),
        (429, RateLimitedError),
        (500, RetryableError),
        (502, RetryableError),
        (503, RetryableError),
        (529, RetryableError),
    ],
)
def test_error_for_status_classes(status: int, error_class: type) -> None:
    error = error_for_status(status, {}, ERROR_BODY, now=0.0)
    assert type(error) is error_class
    assert error.status == status
    assert "prompt is too long" in error.message
    assert error.error_type == "invalid_request_error"
    assert error.code == "400"


def test_error_for_status_429_reads_retry_headers() -> None:
    headers = {
        "Retry-After": "7",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-tokens": "3s",
        "Server": "x",
    }
    error = error_for_status(429, headers, "", now=1_700_000_000.0)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 7.0
    assert error.headers == {
        "retry-after": "7",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-tokens": "3s",
    }
    assert error_for_status(429, {}, "", now=0.0).retry_after is None


def test_error_messages_are_short_single_line_and_never_show_the_key() -> None:
    body = json.dumps({"error": {"message": "bad key sk-SECRET\n" + "x" * 1000}})
    error = error_for_status(401, {}, body, now=0.0, secrets=("sk-SECRET",))
    assert "sk-SECRET" not in error.message
    assert "\n" not in error.message
    assert len(error.message) < 400
    html = error_for_status(502, {}, "<html><body>Bad gateway</body></html>", now=0.0)
    assert "Bad gateway" in html.message
    assert safe_message("a  b\n c", secrets=("",)) == "a b c"


@pytest.mark.parametrize(
    ("event", "error_class", "status"),
    [
        ({"message": "Overloaded", "type": "overloaded_error"}, RetryableError, None),
        ({"message": "slow down", "type": "rate_limit_error"}, RateLimitedError, None),
        ({"message": "slow down", "code": 429}, RateLimitedError, 429),
        ({"message": "bad", "code": "400"}, RejectedError, 400),
        ({"message": "oops", "status": 500}, RetryableError, 500),
        ({"message": "x", "code": "context_length_exceeded"}, RetryableError, None),
        ({"message": "too long", "type": "invalid_request_error"}, RejectedError, None),
        ({"message": "who?", "type": "authentication_error"}, RejectedError, None),
    ],
)
def test_error_for_stream_event(event: dict, error_class: type, status: int | None) -> None:
    error = error_for_stream_event(event)
    assert type(error) is error_class
    assert error.status == status


# --- usage in parts, tool-call ids reusing an index -----------------------------------------


@pytest.mark.parametrize(
    ("usages", "expected"),
    [
        # Split: the prompt in the first chunk, the rest at the end; neither part may be lost.
        ([{"prompt_tokens": 10}, {"completion_tokens": 3, "total_tokens": 13}], Usage(10, 3, 13)),
        ([{"prompt_tokens": 10, "completion_tokens": 0}, {"completion_tokens": 3}], Usage(10, 3, 13)),
        # Only at the end.
        ([None, {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}], Usage(4, 2, 6)),
        # A later value of the same field replaces the earlier one.
        ([{"prompt_tokens": 10, "completion_tokens": 1}, {"completion_tokens": 5}], Usage(10, 5, 15)),
        ([None, None], None),
    ],
)
def test_usage_is_merged_field_by_field(usages: list[dict | None], expected: Usage | None) -> None:
    chunks = []
    for number, usage in enumerate(usages):
        chunk = delta_chunk({"content": f"p{number}"})
        if usage is not None:
            chunk["usage"] = usage
        chunks.append(chunk)
    assert assemble_chunks(chunks).usage == expected


def test_a_new_tool_call_id_at_an_index_in_use_starts_a_new_call() -> None:
    def call(index: int, call_id: str | None, name: str | None, arguments: str) -> dict:
        delta: dict = {"index": index, "function": {"arguments": arguments}}
        if call_id:
            delta["id"] = call_id
        if name:
            delta["function"]["name"] = name
        return delta_chunk({"tool_calls": [delta]})

    message = assemble_chunks(
        [
            call(0, "toolu_a", "get_time", '{"tz": '),
            call(0, None, None, '"UTC"}'),
            call(0, "toolu_b", "calculate", '{"expression": '),
            call(0, None, None, '"1+1"}'),
            call(1, "toolu_c", "get_time", "{}"),
        ]
    )
    assert [(c.id, c.name, json.loads(c.arguments)) for c in message.tool_calls] == [
        ("toolu_a", "get_time", {"tz": "UTC"}),
        ("toolu_b", "calculate", {"expression": "1+1"}),
        ("toolu_c", "get_time", {}),
    ]
