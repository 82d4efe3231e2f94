"""`current_time` (`/time`): the time now in an IANA time zone.

Reading the clock is this tool's purpose; everything else takes `now` as an argument.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Collection
from datetime import UTC, datetime

from bot.tools.errors import ToolFailed
from bot.tools.registry import ToolContext, ToolRegistry

HOW_TO_WRITE_A_ZONE = (
    "Write it as an IANA time zone name such as Europe/Paris, America/New_York, Asia/Tokyo or UTC "
    "(a city of the zone's name alone, like Tokyo, works too)."
)


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def resolve_zone_name(name: str, zones: Collection[str]) -> str | None:
    """The zone `name` means: exact, then ignoring case and spaces, then by its last part ("tokyo")."""
    wanted = name.strip().replace(" ", "_")
    if wanted in zones:
        return wanted
    folded = wanted.casefold()
    by_name = [zone for zone in zones if zone.casefold() == folded]
    if len(by_name) == 1:
        return by_name[0]
    by_city = sorted(zone for zone in zones if "/" in zone and zone.rsplit("/", 1)[1].casefold() == folded)
    return by_city[0] if len(by_city) == 1 else None


def describe_time(now: datetime, zone_name: str) -> str:
    """`now` (timezone-aware) as a sentence in the zone `zone_name`, which must exist."""
    local = now.astimezone(zoneinfo.ZoneInfo(zone_name))
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}"
    abbreviation = local.tzname()
    if not abbreviation or abbreviation.startswith(("+", "-")) or abbreviation == "UTC":
        zone_words = offset
    else:
        zone_words = f"{abbreviation}, {offset}"
    return (
        f"It is {local:%H:%M} on {local:%A}, {local.day} {local:%B %Y} in {zone_name} ({zone_words}). "
        f"ISO 8601: {local.isoformat(timespec='seconds')}"
    )


def time_in_zone(now: datetime, name: str, zones: Collection[str]) -> str:
    zone = resolve_zone_name(name, zones)
    if zone is None:
        raise ToolFailed(f"I don't know the time zone {name.strip()!r}. {HOW_TO_WRITE_A_ZONE}")
    return describe_time(now, zone)


def register(registry: ToolRegistry) -> None:
    registry.add(current_time, command="time", usage="/time [time zone, e.g. Europe/Paris]", timeout=5.0)


def current_time(ctx: ToolContext, timezone: str = "UTC") -> str:
    """The current date and time in a time zone.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris" or "America/New_York".
    """
    return time_in_zone(datetime.now(UTC), timezone, known_zones())
