"""Reading Open-Meteo answers and putting the weather into words. Pure.

Geocoding (`/v1/search`) answers `{"results": [{"name", "latitude", "longitude", "country",
"admin1", "timezone", ...}]}`, without `results` when nothing matches. The forecast
(`/v1/forecast`) answers `current` and `daily` blocks, with units in `current_units`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# WMO weather interpretation codes, as Open-Meteo documents them.
WEATHER_CODES: dict[int, str] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snowfall",
    73: "moderate snowfall",
    75: "heavy snowfall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


class UnreadableAnswer(ValueError):
    """The service answered, but not in the shape documented above."""


@dataclass(frozen=True)
class Place:
    name: str
    latitude: float
    longitude: float
    region: str | None = None
    country: str | None = None

    @property
    def label(self) -> str:
        parts = [self.name]
        if self.region and self.region != self.name:
            parts.append(self.region)
        if self.country:
            parts.append(self.country)
        return ", ".join(parts)


def describe_weather_code(code: Any) -> str:
    if isinstance(code, int | float) and int(code) in WEATHER_CODES:
        return WEATHER_CODES[int(code)]
    return f"unknown conditions (code {code})"


def place_from_geocoding(payload: Any) -> Place | None:
    """The best match of a geocoding answer, or None when nothing matched."""
    if not isinstance(payload, dict):
        raise UnreadableAnswer("geocoding answer is not an object")
    results = payload.get("results") or []
    if not results:
        return None
    best = results[0]
    try:
        return Place(
            name=str(best["name"]),
            latitude=float(best["latitude"]),
            longitude=float(best["longitude"]),
            region=best.get("admin1"),
            country=best.get("country"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableAnswer(f"geocoding result lacks {exc}") from None


def describe_forecast(place: Place, payload: Any) -> str:
    """One or two sentences: current conditions, then today's low and high."""
    try:
        current = payload["current"]
        units = payload.get("current_units") or {}
        temperature_unit = units.get("temperature_2m", "°C")
        wind_unit = units.get("wind_speed_10m", "km/h")
        text = (
            f"{place.label}: {_number(current['temperature_2m'])}{temperature_unit}, "
            f"{describe_weather_code(current.get('weather_code'))}, "
            f"wind {_number(current['wind_speed_10m'])} {wind_unit}"
        )
        if current.get("time"):
            text += f" (local time {str(current['time']).replace('T', ' ')})"
        daily = payload.get("daily") or {}
        lows, highs = daily.get("temperature_2m_min") or [], daily.get("temperature_2m_max") or []
        if lows and highs and lows[0] is not None and highs[0] is not None:
            daily_unit = (payload.get("daily_units") or {}).get("temperature_2m_max", temperature_unit)
            text += f". Today: low {_number(lows[0])}{daily_unit}, high {_number(highs[0])}{daily_unit}"
    except (KeyError, TypeError, AttributeError) as exc:
        raise UnreadableAnswer(f"forecast answer lacks {exc}") from None
    return text + "."


def _number(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError("not a number")
    if isinstance(value, int):
        return str(value)
    shown = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if shown == "-0" else shown
