import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.limits.headers import parse_duration, retry_after_seconds
from bot.queue.retry import backoff_delay, retry_delay, should_retry

# --- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "jitter", "kwargs", "expected"),
    [
        (1, 0.0, {}, 1.0),  # step 2: half fixed
        (1, 0.5, {}, 1.5),
        (2, 0.0, {}, 2.0),  # step 4
        (3, 0.0, {}, 4.0),  # step 8
        (3, 0.75, {}, 7.0),
        (9, 0.0, {}, 150.0),  # step 512 capped at 300
        (10_000, 0.0, {}, 150.0),  # no overflow
        (1, 0.0, {"base": 0.5}, 0.25),
        (4, 0.5, {"base": 1.0, "cap": 5.0}, 3.75),
    ],
)
def test_backoff_delay(attempt, jitter, kwargs, expected):
    assert backoff_delay(attempt, jitter=jitter, **kwargs) == pytest.approx(expected)


@given(st.integers(1, 200), st.floats(0.0, 1.0, exclude_max=True))
def test_backoff_is_equal_jitter_within_half_step_and_step(attempt, jitter):
    step = min(300.0, 2.0 * 2.0 ** min(attempt - 1, 100))
    delay = backoff_delay(attempt, jitter=jitter)
    assert step / 2 <= delay <= step  # never immediate, never past the step


@given(st.integers(1, 30), st.floats(0.0, 1.0, exclude_max=True))
def test_backoff_never_shrinks_with_more_attempts(attempt, jitter):
    assert backoff_delay(attempt + 1, jitter=jitter) >= backoff_delay(attempt, jitter=jitter)


@pytest.mark.parametrize(("attempt", "jitter"), [(0, 0.5), (-1, 0.5), (1, 1.0), (1, -0.1)])
def test_backoff_rejects_bad_arguments(attempt, jitter):
    with pytest.raises(ValueError):
        backoff_delay(attempt, jitter=jitter)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"), [(0, 3, True), (2, 3, True), (3, 3, False), (4, 3, False)]
)
def test_should_retry(attempts, max_attempts, expected):
    assert should_retry(attempts, max_attempts) is expected


def test_retry_delay_prefers_the_servers_hint():
    assert retry_delay(1, jitter=0.5, retry_after=42.0) == 42.0
    assert retry_delay(1, jitter=0.5, retry_after=0.0) == 0.0
    assert retry_delay(3, jitter=0.5) == backoff_delay(3, jitter=0.5)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("51s", 51.0),
        ("1m30s", 90.0),
        ("6m0s", 360.0),
        ("200ms", 0.2),
        ("0.5s", 0.5),
        (".5s", 0.5),
        ("2", 2.0),
        ("2.25", 2.25),
        ("1h", 3600.0),
        ("1h2m3.5s", 3723.5),
        ("1m500ms", 60.5),
        ("1500us", 0.0015),
        ("  7s ", 7.0),
        ("7S", 7.0),
        ("0", 0.0),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("-5", None),
        ("-5s", None),
        ("5 s", None),
        ("5x", None),
        ("s", None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
        ("9" * 400, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_duration(text, expected):
    result = parse_duration(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


# --- server hints -----------------------------------------------------------------------------

NOW = 1_445_412_400.0  # Wed, 21 Oct 2015 07:26:40 GMT


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"content-type": "application/json"}, None),
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": "30"}, 30.0),
        ({"RETRY-AFTER": "0"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 80.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:00:00 GMT"}, 0.0),  # already past
        ({"Retry-After": "whenever"}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500ms"}, None),
        ({"x-ratelimit-reset-requests": "51s"}, 51.0),
        ({"X-RateLimit-Reset-Tokens": "1m30s"}, 90.0),
        ({"x-ratelimit-reset-requests": "51s", "x-ratelimit-reset-tokens": "200ms"}, 51.0),
        ({"Retry-After": "10", "x-ratelimit-reset-tokens": "1m"}, 60.0),
        ({"Retry-After": "120", "x-ratelimit-reset-tokens": "1m"}, 120.0),
        # Unusable values are skipped, not fatal.
        ({"Retry-After": "garbage", "x-ratelimit-reset-tokens": "12s"}, 12.0),
        ({"x-ratelimit-reset-requests": "??", "x-ratelimit-reset-tokens": ""}, None),
        # A reset given as a unix time.
        ({"x-ratelimit-reset-requests": str(int(NOW) + 25)}, 25.0),
        ({"x-ratelimit-reset-requests": str(int(NOW) - 25)}, 0.0),
    ],
)
def test_retry_after_seconds(headers, expected):
    result = retry_after_seconds(headers, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)
