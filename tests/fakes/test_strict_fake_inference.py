"""The strict fake inference server: the rules it enforces, what it can send, and the suite's
check that fails a test during which it refused a request."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.inference import (
    MAX_BODY_BYTES,
    MAX_IMAGE_BASE64_BYTES,
    FakeInference,
    request_problem,
)

MODEL = "claude-4-5-haiku"
REPO_ROOT = Path(__file__).resolve().parents[2]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def body(**fields) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1024, **fields}


def image(media_type: str = "image/png", payload: str = PNG) -> dict:
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{payload}"}}


TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]
CALL = {"id": "toolu_1", "type": "function", "function": {"name": "calc", "arguments": "{}"}}
THINKING = {"enabled": True, "budget_tokens": 1024}


@pytest.mark.parametrize(
    "request_body",
    [
        body(),
        body(max_tokens=4096),
        body(model="claude-4-5-sonnet", max_tokens=8192),
        body(tools=TOOLS, tool_choice="required", temperature=0),
        body(
            tools=TOOLS, tool_choice="auto", max_tokens=4096, extended_thinking={**THINKING, "include_reasoning": True}
        ),
        body(extended_thinking={"enabled": True, "budget_tokens": 4095}, max_tokens=4096),
        body(
            messages=[{"role": "system", "content": "s"}, {"role": "user", "content": [image(), image("image/webp")]}]
        ),
        body(
            tools=TOOLS,
            messages=[
                {"role": "user", "content": "add"},
                {"role": "assistant", "content": "(using tools)", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "2"},
            ],
        ),
        # Thinking again once the tool loop has ended with a user message.
        body(
            tools=TOOLS,
            extended_thinking=THINKING,
            max_tokens=2048,
            messages=[
                {"role": "user", "content": "add"},
                {"role": "assistant", "content": "(using tools)", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "2"},
                {"role": "assistant", "content": "It is 2."},
                {"role": "user", "content": "thanks"},
            ],
        ),
    ],
)
def test_valid_requests_pass(request_body: dict) -> None:
    assert request_problem(request_body) is None


@pytest.mark.parametrize(
    ("request_body", "status", "words"),
    [
        (body(max_tokens=4097), 400, "4097 > 4096"),
        (body(model="claude-4-5-sonnet", max_tokens=8193), 400, "8193 > 8192"),
        (body(temperature=1.5), 400, "temperature"),
        (body(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "calc"}}), 400, "tool_choice"),
        (body(tools=TOOLS, tool_choice="any"), 400, "tool_choice"),
        (body(extended_thinking={"enabled": True, "budget_tokens": 1023}), 400, "at least 1024"),
        (body(extended_thinking={"enabled": True, "budget_tokens": 4096}, max_tokens=4096), 400, "greater than"),
        (body(extended_thinking=THINKING, max_tokens=2048, temperature=0), 400, "temperature"),
        (body(extended_thinking=THINKING, max_tokens=2048, top_k=5), 400, "top_k"),
        (body(extended_thinking=THINKING, max_tokens=2048, tools=TOOLS, tool_choice="required"), 400, "forces"),
        (
            body(
                extended_thinking=THINKING,
                max_tokens=2048,
                tools=TOOLS,
                messages=[
                    {"role": "user", "content": "add"},
                    {"role": "assistant", "content": "(using tools)", "tool_calls": [CALL]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "2"},
                ],
            ),
            400,
            "thinking block",
        ),
        (body(messages=[{"role": "user", "content": ""}]), 400, "empty"),
        (body(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]), 400, "empty"),
        (body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), 400, "non-empty"),
        (body(messages=[{"role": "robot", "content": "hi"}]), 400, "role"),
        (body(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b "}]), 400, "trailing"),
        (
            body(
                messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "", "tool_calls": [CALL]}]
            ),
            400,
            "empty",
        ),
        (
            body(
                messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "x", "tool_calls": [CALL]}]
            ),
            400,
            "not answered",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "x", "tool_calls": [CALL]},
                    {"role": "user", "content": "b"},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "2"},
                ]
            ),
            400,
            "not answered",
        ),
        (
            body(messages=[{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "x", "content": "2"}]),
            400,
            "does not answer",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "x", "tool_calls": [CALL]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "2"},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "2"},
                ]
            ),
            400,
            "does not answer",
        ),
        (body(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": [image()]}]), 400, "user"),
        (body(messages=[{"role": "system", "content": [image()]}, {"role": "user", "content": "a"}]), 400, "user"),
        (
            body(
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]
            ),
            400,
            "data URL",
        ),
        (body(messages=[{"role": "user", "content": [image("image/bmp")]}]), 400, "data URL"),
        (
            body(messages=[{"role": "user", "content": [image(payload="A" * (MAX_IMAGE_BASE64_BYTES + 4))]}]),
            400,
            "5 MB",
        ),
    ],
)
def test_invalid_requests_are_refused(request_body: dict, status: int, words: str) -> None:
    problem = request_problem(request_body)
    assert problem is not None
    assert problem.status == status
    assert words in problem.message


@pytest.fixture
def fake() -> Iterator[FakeInference]:
    with FakeInference() as server:
        yield server


def post(fake: FakeInference, document: dict | bytes, **headers: str) -> httpx.Response:
    content = document if isinstance(document, bytes) else json.dumps(document).encode()
    return httpx.post(
        f"{fake.url}/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {fake.api_key}", "Content-Type": "application/json", **headers},
        timeout=30,
    )


@pytest.mark.invalid_inference_requests
def test_refusals_have_herokus_error_shape_and_are_recorded(fake: FakeInference) -> None:
    response = post(fake, body(max_tokens=5000))

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "max_tokens: 5000 > 4096, which is the maximum allowed for claude-4-5-haiku",
            "type": "invalid_request_error",
            "code": 400,
        }
    }
    assert [r.status for r in fake.rejections] == [400]
    assert fake.admitted == 0


@pytest.mark.invalid_inference_requests
def test_a_body_over_32_mb_gets_413(fake: FakeInference) -> None:
    padding = "x" * (MAX_BODY_BYTES + 10)
    response = post(fake, json.dumps(body(messages=[{"role": "user", "content": padding}])).encode())

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert fake.rejections[-1].status == 413


def sse_chunks(response: httpx.Response) -> list[dict]:
    return [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_usage_can_come_split_across_chunks(fake: FakeInference) -> None:
    fake.usage_split = True
    response = post(fake, body(stream=True, stream_options={"include_usage": True}))

    usages = [chunk["usage"] for chunk in sse_chunks(response) if chunk.get("usage")]
    assert len(usages) == 2
    assert set(usages[0]) == {"prompt_tokens"}
    assert "prompt_tokens" not in usages[1] and usages[1]["completion_tokens"] > 0


def test_an_error_event_can_arrive_mid_stream(fake: FakeInference) -> None:
    fake.responder = lambda _body: {"content": "a long answer in several pieces"}
    fake.error_mid_stream_next(after_chunks=2)
    response = post(fake, body(stream=True))

    chunks = sse_chunks(response)
    assert "data: [DONE]" not in response.text
    assert chunks[-1] == {"error": {"message": "Overloaded", "type": "overloaded_error", "code": 529}}
    assert any(c.get("choices") and c["choices"][0]["delta"].get("content") for c in chunks[:-1])


def test_its_own_429s_can_come_without_retry_after() -> None:
    with FakeInference(max_requests=1, window=30) as fake:
        fake.retry_after_header = False
        assert post(fake, body()).status_code == 200
        refused = post(fake, body())

    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")


def test_reasoning_is_sent_only_when_asked_for(fake: FakeInference) -> None:
    fake.responder = lambda _body: {"content": "ok", "reasoning": "let me think"}
    plain = post(fake, body(extended_thinking={"enabled": True, "budget_tokens": 1024}, max_tokens=2048)).json()
    asked = post(
        fake,
        body(extended_thinking={"enabled": True, "budget_tokens": 1024, "include_reasoning": True}, max_tokens=2048),
    ).json()

    assert "reasoning" not in plain["choices"][0]["message"]
    assert asked["choices"][0]["message"]["reasoning"] == {"thinking": "let me think"}


def test_the_suite_fails_a_test_that_got_a_request_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself: an unmarked test whose request was refused errors; a marked one passes.
    (A subprocess, so the inner run's refusals stay out of this process's record.)"""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.support.strict_inference"]')
    pytester.makepyfile(
        textwrap.dedent(
            """
            import httpx
            import pytest

            from tests.fakes.inference import FakeInference

            def send_invalid():
                with FakeInference() as fake:
                    httpx.post(
                        fake.url + "/v1/chat/completions",
                        json={"model": "claude-4-5-haiku", "messages": [{"role": "user", "content": ""}]},
                        headers={"Authorization": "Bearer " + fake.api_key},
                    )

            def test_unmarked():
                send_invalid()

            @pytest.mark.invalid_inference_requests
            def test_marked():
                send_invalid()

            def test_valid():
                with FakeInference() as fake:
                    httpx.post(
                        fake.url + "/v1/chat/completions",
                        json={"model": "claude-4-5-haiku", "messages": [{"role": "user", "content": "hi"}]},
                        headers={"Authorization": "Bearer " + fake.api_key},
                    )
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=3, errors=1)  # the refused test passes its body, then errors at teardown
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*refused 1 request(s) during this test*content must not be empty*"])


@pytest.mark.parametrize("workers", ["0", "1"])
def test_the_suite_fails_on_a_request_refused_outside_any_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """A refusal in a module fixture's teardown fails the run, also when pytest-xdist runs it on a
    worker (whose own exit status the controller ignores)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.support.strict_inference"]')
    pytester.makepyfile(
        textwrap.dedent(
            """
            import httpx
            import pytest

            from tests.fakes.inference import FakeInference

            @pytest.fixture(scope="module")
            def refused_at_teardown():
                yield
                with FakeInference() as fake:
                    httpx.post(
                        fake.url + "/v1/chat/completions",
                        json={"model": "claude-4-5-haiku", "messages": [{"role": "user", "content": ""}]},
                        headers={"Authorization": "Bearer " + fake.api_key},
                    )

            def test_one(refused_at_teardown):
                pass

            def test_two():
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", workers)

    result.assert_outcomes(passed=2)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*refused 1 request(s) outside any test*content must not be empty*"])
