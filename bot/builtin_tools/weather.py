"""`get_weather` (`/weather`): Open-Meteo geocoding, then the forecast for the best match.

Base URLs come from the settings given to `register` (`open_meteo_geocoding_url`,
`open_meteo_forecast_url`), so tests and self-hosters can point them elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bot.http import tls_context
from bot.tools.errors import ToolFailed
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.weather_logic import UnreadableAnswer, describe_forecast, place_from_geocoding

DEFAULT_GEOCODING_URL = "https://geocoding-api.open-meteo.com"
DEFAULT_FORECAST_URL = "https://api.open-meteo.com"
# Two requests must fit in the tool's 10 s.
REQUEST_TIMEOUT = httpx.Timeout(4.0)
MAX_CITY_CHARS = 100


@dataclass(frozen=True)
class OpenMeteoEndpoints:
    geocoding_url: str = DEFAULT_GEOCODING_URL
    forecast_url: str = DEFAULT_FORECAST_URL

    @classmethod
    def from_settings(cls, settings: Any) -> OpenMeteoEndpoints:
        return cls(
            geocoding_url=getattr(settings, "open_meteo_geocoding_url", None) or DEFAULT_GEOCODING_URL,
            forecast_url=getattr(settings, "open_meteo_forecast_url", None) or DEFAULT_FORECAST_URL,
        )


def fetch_weather(http: httpx.Client | None, endpoints: OpenMeteoEndpoints, city: str) -> str:
    """The weather in `city` as a sentence; ToolFailed with a plain sentence when it cannot be had."""
    city = city.strip()
    if not city:
        raise ToolFailed("Tell me which city.")
    if len(city) > MAX_CITY_CHARS:
        raise ToolFailed(f"A city name longer than {MAX_CITY_CHARS} characters is not one I can look up.")
    if http is None:
        with httpx.Client(timeout=REQUEST_TIMEOUT, verify=tls_context()) as client:
            return _fetch(client, endpoints, city)
    return _fetch(http, endpoints, city)


def _fetch(http: httpx.Client, endpoints: OpenMeteoEndpoints, city: str) -> str:
    try:
        place = place_from_geocoding(
            _get_json(
                http,
                f"{endpoints.geocoding_url.rstrip('/')}/v1/search",
                {"name": city, "count": 1, "language": "en", "format": "json"},
            )
        )
        if place is None:
            raise ToolFailed(f"I could not find a place called {city!r}. Check the spelling or add the country.")
        forecast = _get_json(
            http,
            f"{endpoints.forecast_url.rstrip('/')}/v1/forecast",
            {
                "latitude": place.latitude,
                "longitude": place.longitude,
                "current": "temperature_2m,weather_code,wind_speed_10m",
                "daily": "temperature_2m_max,temperature_2m_min",
                "timezone": "auto",
                "forecast_days": 1,
            },
        )
        return describe_forecast(place, forecast)
    except httpx.HTTPStatusError as exc:
        raise ToolFailed(
            f"The weather service answered with an error (HTTP {exc.response.status_code}); try again later."
        ) from None
    except httpx.RequestError:
        raise ToolFailed("The weather service could not be reached; try again later.") from None
    except UnreadableAnswer:
        raise ToolFailed("The weather service sent an answer I could not read; try again later.") from None


def _get_json(http: httpx.Client, url: str, params: dict[str, Any]) -> Any:
    response = http.get(url, params=params, timeout=REQUEST_TIMEOUT)
    response.raise_for_status()
    try:
        return response.json()
    except ValueError:
        raise UnreadableAnswer("not JSON") from None


def register(registry: ToolRegistry, settings: Any = None) -> None:
    endpoints = OpenMeteoEndpoints.from_settings(settings)

    @registry.tool(command="weather", usage="/weather <city>", timeout=10.0)
    def get_weather(ctx: ToolContext, city: str) -> str:
        """Current weather and today's low and high temperatures for a city, from Open-Meteo.

        Args:
            city: The city to look up, optionally followed by its country, e.g. "Paris, France".
        """
        return fetch_weather(ctx.http, endpoints, city)
