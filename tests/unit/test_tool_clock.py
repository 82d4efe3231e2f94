from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.builtin_tools.clock import describe_time, known_zones, resolve_zone_name, time_in_zone
from bot.tools.errors import ToolFailed

ZONES = frozenset(
    {
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "America/Argentina/Buenos_Aires",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Europe/London",
        "Etc/GMT+5",
        "Australia/Perth",
        "Antarctica/Perth_Like",
    }
)


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("  europe/paris ", "Europe/Paris"),
        ("utc", "UTC"),
        ("tokyo", "Asia/Tokyo"),
        ("New York", "America/New_York"),
        ("buenos aires", "America/Argentina/Buenos_Aires"),
        ("Mars/Olympus", None),
        ("Paris", "Europe/Paris"),
        ("", None),
        ("../../etc/passwd", None),
    ],
)
def test_resolve_zone_name(name, zone):
    assert resolve_zone_name(name, ZONES) == zone


def test_an_ambiguous_city_is_not_guessed():
    assert resolve_zone_name("perth", {"Australia/Perth", "Europe/Perth"}) is None


NOW = datetime(2026, 7, 4, 18, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "zone", "text"),
    [
        (NOW, "UTC", "It is 18:30 on Saturday, 4 July 2026 in UTC (UTC+00:00). ISO 8601: 2026-07-04T18:30:05+00:00"),
        (
            NOW,
            "Europe/Paris",
            "It is 20:30 on Saturday, 4 July 2026 in Europe/Paris (CEST, UTC+02:00). "
            "ISO 8601: 2026-07-04T20:30:05+02:00",
        ),
        (
            NOW,
            "America/New_York",
            "It is 14:30 on Saturday, 4 July 2026 in America/New_York (EDT, UTC-04:00). "
            "ISO 8601: 2026-07-04T14:30:05-04:00",
        ),
        (
            datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
            "Asia/Kolkata",
            "It is 05:40 on Thursday, 1 January 2026 in Asia/Kolkata (IST, UTC+05:30). "
            "ISO 8601: 2026-01-01T05:40:00+05:30",
        ),
        (
            datetime(2026, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=3))),
            "Europe/London",
            "It is 00:00 on Thursday, 1 January 2026 in Europe/London (GMT, UTC+00:00). "
            "ISO 8601: 2026-01-01T00:00:00+00:00",
        ),
        (
            NOW,
            "Etc/GMT+5",
            "It is 13:30 on Saturday, 4 July 2026 in Etc/GMT+5 (UTC-05:00). ISO 8601: 2026-07-04T13:30:05-05:00",
        ),
    ],
)
def test_describe_time(now, zone, text):
    assert describe_time(now, zone) == text


def test_unknown_zone_says_how_to_write_one():
    with pytest.raises(ToolFailed) as info:
        time_in_zone(NOW, "Narnia", known_zones())
    assert "I don't know the time zone 'Narnia'" in str(info.value)
    assert "Europe/Paris" in str(info.value)


def test_the_system_zone_database_is_used():
    assert "Asia/Tokyo" in known_zones()
    assert time_in_zone(NOW, "tokyo", known_zones()).startswith("It is 03:30 on Sunday, 5 July 2026 in Asia/Tokyo")
