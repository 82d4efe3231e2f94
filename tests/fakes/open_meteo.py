"""A local, real-HTTP fake of Open-Meteo's geocoding (`/v1/search`) and forecast (`/v1/forecast`).

One server answers both paths, so point both base URLs at `fake.url`. It knows CITIES, checks
that the forecast request asks for what the bot needs (400 with Open-Meteo's error shape if
not), records every request, and can be told to fail with `fail_with(status)`.

    with FakeOpenMeteo() as fake:
        settings = SimpleNamespace(open_meteo_geocoding_url=fake.url, open_meteo_forecast_url=fake.url)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class FakeCity:
    name: str
    admin1: str
    country: str
    latitude: float
    longitude: float
    timezone: str
    temperature: float
    weather_code: int
    wind_speed: float
    low: float
    high: float


CITIES = (
    FakeCity("Berlin", "Land Berlin", "Germany", 52.52437, 13.41053, "Europe/Berlin", 7.4, 3, 14.2, 3.1, 9.8),
    FakeCity("Tokyo", "Tokyo", "Japan", 35.6895, 139.69171, "Asia/Tokyo", 16.0, 61, 9.0, 11.5, 17.25),
    FakeCity("São Paulo", "São Paulo", "Brazil", -23.5475, -46.63611, "America/Sao_Paulo", 24.5, 95, 5.5, 19.0, 28.0),
)

REQUIRED_CURRENT = {"temperature_2m", "weather_code", "wind_speed_10m"}
REQUIRED_DAILY = {"temperature_2m_max", "temperature_2m_min"}


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, str]


class FakeOpenMeteo:
    def __init__(self, cities: tuple[FakeCity, ...] = CITIES):
        self.cities = cities
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._fail_status: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_with(self, status: int | None) -> None:
        """Answer every request with `status` from now on (None: answer normally again)."""
        self._fail_status = status

    def start(self) -> FakeOpenMeteo:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-open-meteo", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenMeteo:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- answers ---

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, object]:
        with self._lock:
            self.requests.append(RecordedRequest(path, query))
        if self._fail_status is not None:
            return self._fail_status, {"error": True, "reason": "the fake was told to fail"}
        if path == "/v1/search":
            return self._search(query)
        if path == "/v1/forecast":
            return self._forecast(query)
        return 404, {"error": True, "reason": f"no such endpoint {path}"}

    def _search(self, query: dict[str, str]) -> tuple[int, object]:
        if "name" not in query:
            return 400, {"error": True, "reason": "Parameter 'name' is required"}
        wanted = query["name"].split(",")[0].strip().casefold()
        found = [city for city in self.cities if city.name.casefold() == wanted]
        found = found[: int(query.get("count", "10"))]
        if not found:
            return 200, {"generationtime_ms": 0.4}
        return 200, {
            "results": [
                {
                    "id": index + 1,
                    "name": city.name,
                    "latitude": city.latitude,
                    "longitude": city.longitude,
                    "country": city.country,
                    "admin1": city.admin1,
                    "timezone": city.timezone,
                }
                for index, city in enumerate(found)
            ],
            "generationtime_ms": 0.7,
        }

    def _forecast(self, query: dict[str, str]) -> tuple[int, object]:
        missing = [name for name in ("latitude", "longitude", "current", "daily", "timezone") if name not in query]
        if missing:
            return 400, {"error": True, "reason": f"missing parameters: {', '.join(missing)}"}
        if not REQUIRED_CURRENT <= set(query["current"].split(",")):
            return 400, {"error": True, "reason": "current must list " + ",".join(sorted(REQUIRED_CURRENT))}
        if not REQUIRED_DAILY <= set(query["daily"].split(",")):
            return 400, {"error": True, "reason": "daily must list " + ",".join(sorted(REQUIRED_DAILY))}
        try:
            latitude, longitude = float(query["latitude"]), float(query["longitude"])
        except ValueError:
            return 400, {"error": True, "reason": "latitude and longitude must be numbers"}
        city = next(
            (c for c in self.cities if abs(c.latitude - latitude) < 1e-3 and abs(c.longitude - longitude) < 1e-3),
            None,
        )
        if city is None:
            return 400, {"error": True, "reason": "the fake has no data for that place"}
        return 200, {
            "latitude": city.latitude,
            "longitude": city.longitude,
            "timezone": city.timezone,
            "current_units": {"time": "iso8601", "temperature_2m": "°C", "wind_speed_10m": "km/h"},
            "current": {
                "time": "2026-01-15T12:00",
                "interval": 900,
                "temperature_2m": city.temperature,
                "weather_code": city.weather_code,
                "wind_speed_10m": city.wind_speed,
            },
            "daily_units": {"temperature_2m_max": "°C", "temperature_2m_min": "°C"},
            "daily": {
                "time": ["2026-01-15"],
                "temperature_2m_max": [city.high],
                "temperature_2m_min": [city.low],
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                status, body = fake.answer(parts.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
