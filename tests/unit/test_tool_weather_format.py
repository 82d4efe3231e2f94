import pytest

from bot.tools.weather_logic import (
    Place,
    UnreadableAnswer,
    describe_forecast,
    describe_weather_code,
    place_from_geocoding,
)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "clear sky"),
        (3, "overcast"),
        (45.0, "fog"),
        (99, "thunderstorm with heavy hail"),
        (42, "unknown conditions (code 42)"),
        (None, "unknown conditions (code None)"),
    ],
)
def test_weather_codes_in_words(code, words):
    assert describe_weather_code(code) == words


@pytest.mark.parametrize(
    ("payload", "place"),
    [
        ({"generationtime_ms": 0.5}, None),
        ({"results": []}, None),
        (
            {
                "results": [
                    {
                        "name": "Paris",
                        "latitude": 48.85,
                        "longitude": 2.35,
                        "country": "France",
                        "admin1": "Île-de-France",
                    },
                    {"name": "Paris", "latitude": 33.6, "longitude": -95.5},
                ]
            },
            Place("Paris", 48.85, 2.35, "Île-de-France", "France"),
        ),
        ({"results": [{"name": "Nowhere", "latitude": 1, "longitude": 2}]}, Place("Nowhere", 1.0, 2.0)),
    ],
)
def test_place_from_geocoding(payload, place):
    assert place_from_geocoding(payload) == place


@pytest.mark.parametrize("payload", [[], "x", {"results": [{"name": "Paris"}]}, {"results": [{"latitude": 1}]}])
def test_malformed_geocoding_answers(payload):
    with pytest.raises(UnreadableAnswer):
        place_from_geocoding(payload)


@pytest.mark.parametrize(
    ("place", "label"),
    [
        (Place("Berlin", 0, 0, "Berlin", "Germany"), "Berlin, Germany"),
        (Place("Springfield", 0, 0, "Illinois", "United States"), "Springfield, Illinois, United States"),
        (Place("Atlantis", 0, 0), "Atlantis"),
    ],
)
def test_place_label(place, label):
    assert place.label == label


FORECAST = {
    "current_units": {"temperature_2m": "°F", "wind_speed_10m": "mp/h"},
    "current": {"time": "2026-03-01T09:15", "temperature_2m": 41.04, "weather_code": 61, "wind_speed_10m": 12},
    "daily_units": {"temperature_2m_max": "°F"},
    "daily": {"temperature_2m_max": [45.5], "temperature_2m_min": [-0.04]},
}


def test_forecast_in_words_uses_the_answer_units():
    assert describe_forecast(Place("Chicago", 0, 0, "Illinois", "United States"), FORECAST) == (
        "Chicago, Illinois, United States: 41°F, slight rain, wind 12 mp/h (local time 2026-03-01 09:15). "
        "Today: low 0°F, high 45.5°F."
    )


def test_forecast_without_daily_block_still_answers():
    payload = {"current": {"temperature_2m": 20.25, "weather_code": 0, "wind_speed_10m": 3.5}}
    assert describe_forecast(Place("Lima", 0, 0), payload) == "Lima: 20.2°C, clear sky, wind 3.5 km/h."


@pytest.mark.parametrize(
    "payload",
    [{}, {"current": {}}, {"current": {"temperature_2m": "warm", "wind_speed_10m": 1}}, None, {"current": []}],
)
def test_malformed_forecast_answers(payload):
    with pytest.raises(UnreadableAnswer):
        describe_forecast(Place("X", 0, 0), payload)
