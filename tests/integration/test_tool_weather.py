"""get_weather against a local real-HTTP fake of Open-Meteo."""

from types import SimpleNamespace

import httpx
import pytest

from bot.builtin_tools import default_registry
from bot.builtin_tools.weather import DEFAULT_FORECAST_URL, DEFAULT_GEOCODING_URL, OpenMeteoEndpoints
from bot.tools.registry import ToolContext
from bot.tools.runner import run_slash_command, run_tool
from tests.fakes.open_meteo import FakeOpenMeteo


@pytest.fixture
def fake():
    with FakeOpenMeteo() as server:
        yield server


def registry_for(url: str):
    return default_registry(SimpleNamespace(open_meteo_geocoding_url=url, open_meteo_forecast_url=url + "/"))


@pytest.fixture
def http():
    with httpx.Client() as client:
        yield client


def test_weather_for_a_known_city(fake, http):
    result = run_tool(registry_for(fake.url), "get_weather", '{"city": "Berlin"}', ToolContext(http=http))
    assert result.ok, result.content
    assert result.content == (
        "Berlin, Land Berlin, Germany: 7.4°C, overcast, wind 14.2 km/h (local time 2026-01-15 12:00). "
        "Today: low 3.1°C, high 9.8°C."
    )
    search, forecast = fake.requests
    assert search.path == "/v1/search"
    assert (search.query["name"], search.query["count"]) == ("Berlin", "1")
    assert forecast.path == "/v1/forecast"
    assert (float(forecast.query["latitude"]), float(forecast.query["longitude"])) == (52.52437, 13.41053)
    assert forecast.query["current"] == "temperature_2m,weather_code,wind_speed_10m"
    assert forecast.query["daily"] == "temperature_2m_max,temperature_2m_min"
    assert forecast.query["timezone"] == "auto"


def test_without_a_shared_client_the_tool_makes_its_own(fake):
    result = run_tool(registry_for(fake.url), "get_weather", '{"city": "São Paulo, Brazil"}', ToolContext())
    assert result.ok, result.content
    assert result.content.startswith("São Paulo, Brazil: 24.5°C, thunderstorm, wind 5.5 km/h")
    assert fake.requests[0].query["name"] == "São Paulo, Brazil"


def test_slash_command(fake, http):
    outcome = run_slash_command(registry_for(fake.url), "/weather", "tokyo --public", ToolContext(http=http))
    assert outcome.public
    assert outcome.result.ok and outcome.result.content.startswith("Tokyo, Japan: 16°C, slight rain")


def test_unknown_city_is_a_plain_sentence(fake, http):
    result = run_tool(registry_for(fake.url), "get_weather", '{"city": "Atlantis"}', ToolContext(http=http))
    assert not result.ok
    assert result.content == "I could not find a place called 'Atlantis'. Check the spelling or add the country."
    assert [r.path for r in fake.requests] == ["/v1/search"]


def test_blank_city_is_refused_before_any_request(fake, http):
    result = run_tool(registry_for(fake.url), "get_weather", '{"city": "   "}', ToolContext(http=http))
    assert result.content == "Tell me which city." and fake.requests == []


def test_service_error_is_a_clear_message(fake, http):
    fake.fail_with(503)
    result = run_tool(registry_for(fake.url), "get_weather", '{"city": "Berlin"}', ToolContext(http=http))
    assert not result.ok
    assert result.content == "The weather service answered with an error (HTTP 503); try again later."


def test_service_down_is_a_clear_message(http):
    with FakeOpenMeteo() as stopped:
        url = stopped.url
    result = run_tool(registry_for(url), "get_weather", '{"city": "Berlin"}', ToolContext(http=http))
    assert not result.ok
    assert result.content == "The weather service could not be reached; try again later."


def test_endpoints_default_to_open_meteo():
    assert OpenMeteoEndpoints.from_settings(None) == OpenMeteoEndpoints(DEFAULT_GEOCODING_URL, DEFAULT_FORECAST_URL)
    assert OpenMeteoEndpoints.from_settings(SimpleNamespace(open_meteo_forecast_url="http://f")) == (
        OpenMeteoEndpoints(DEFAULT_GEOCODING_URL, "http://f")
    )
