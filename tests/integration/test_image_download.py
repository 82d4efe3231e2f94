"""download_slack_file against two real local HTTP servers: one plays Slack (its host is the
configured SLACK_API_URL host), the other a foreign host that must never see the token."""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from bot.images.download import (
    CAUSE_NOT_ACCEPTED,
    CAUSE_NOT_CONFIGURED,
    CAUSE_NOT_SENT,
    DownloadError,
    DownloadFailed,
    DownloadForbiddenRedirect,
    DownloadLooksLikeLoginPage,
    DownloadTooLarge,
    describe_download_problem,
    download_slack_file,
    reset_login_page_warnings,
)
from bot.images.processing import ImageRejected

TOKEN = "xoxb-1111-2222-testtoken"
LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Slack</title></head>"
    b"<body><form action='/signin'>Sign in to your workspace</form></body></html>"
)
HUGE = 64 * 1024 * 1024
CHUNK = 64 * 1024


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (12, 34, 56)).save(buffer, "PNG")
    return buffer.getvalue()


IMAGE = png_bytes()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: dict[str, str]  # lower-case names


@dataclass
class StreamRecord:
    sent: int = 0
    finished: bool = False


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # The client hangs up on answers it does not want (login pages, oversized files): expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeHost:
    """A real HTTP/1.1 server on 127.0.0.1 (port 0). `routes` maps a path to a function that
    answers through the handler; every request is recorded with its headers."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.requests: list[SeenRequest] = []
        self.streams: dict[str, StreamRecord] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen = SeenRequest(self.path, {name.lower(): value for name, value in self.headers.items()})
                with host._lock:
                    host.requests.append(seen)
                route = host.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    answer(self, 404, b"not found", "text/plain")
                else:
                    route(self)

            def log_message(self, format, *args) -> None:
                pass

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def authorizations(self) -> list[str | None]:
        with self._lock:
            return [seen.headers.get("authorization") for seen in self.requests]

    def __enter__(self) -> FakeHost:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def answer(handler, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (extra or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302):
    return lambda handler: answer(handler, status, b"", "text/plain", {"Location": location})


def slack_file(handler) -> None:
    """Like Slack: the file with the right token, the login page (200) without it."""
    if handler.headers.get("Authorization") == f"Bearer {TOKEN}":
        answer(handler, 200, IMAGE, "image/png")
    else:
        answer(handler, 200, LOGIN_PAGE, "text/html; charset=utf-8")


def endless(host: FakeHost, key: str, *, chunked: bool):
    """Offers HUGE bytes (declared up front unless chunked) and records how many got out."""

    def route(handler) -> None:
        record = host.streams.setdefault(key, StreamRecord())
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(HUGE))
        handler.end_headers()
        block = IMAGE + bytes(CHUNK - len(IMAGE))
        try:
            while record.sent < HUGE:
                if chunked:
                    handler.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                else:
                    handler.wfile.write(block)
                record.sent += len(block)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            handler.close_connection = True
        finally:
            record.finished = True

    return route


@pytest.fixture
def foreign():
    with FakeHost() as host:
        host.routes["/cdn/ok.png"] = lambda handler: answer(handler, 200, IMAGE, "image/png")
        host.routes["/cdn/login"] = lambda handler: answer(handler, 200, LOGIN_PAGE, "text/html")
        yield host


@pytest.fixture
def slack(foreign):
    with FakeHost() as host:
        host.routes.update(
            {
                "/files-pri/T1-F1/ok.png": slack_file,
                "/files-origin/T1-F1/ok.png": slack_file,
                "/files-pri/T1-F2/no-scope.png": lambda h: answer(h, 200, LOGIN_PAGE, "text/html; charset=utf-8"),
                "/files-pri/T1-F3/disguised.png": lambda h: answer(h, 200, b"\n\n" + LOGIN_PAGE, "image/png"),
                "/redirect/internal": redirect("/files-origin/T1-F1/ok.png?t=xoxe-123"),
                "/redirect/foreign": redirect(foreign.url("/cdn/ok.png?sig=abc")),
                "/redirect/foreign-login": redirect(foreign.url("/cdn/login")),
                "/redirect/loop": redirect("/redirect/loop", 307),
                "/redirect/ftp": redirect("ftp://files.slack.com/secret.png"),
                "/big/declared": endless(host, "declared", chunked=False),
                "/big/chunked": endless(host, "chunked", chunked=True),
                "/broken": lambda h: answer(h, 500, b"oops", "text/plain"),
                "/slow": lambda h: host.release.wait(10),
            }
        )
        foreign.routes["/cdn/back"] = redirect(host.url("/files-origin/T1-F1/ok.png"))
        yield host


@pytest.fixture
def http():
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_warnings():
    reset_login_page_warnings()
    yield
    reset_login_page_warnings()


def download(slack: FakeHost, path: str, http: httpx.Client, **options) -> bytes:
    options.setdefault("token", TOKEN)
    return download_slack_file(slack.url(path), api_url=slack.url("/api/"), http=http, **options)


def test_downloads_with_the_token(slack, http):
    assert download(slack, "/files-pri/T1-F1/ok.png", http) == IMAGE
    assert slack.authorizations() == [f"Bearer {TOKEN}"]


def test_no_token_outside_the_configured_api_host(slack, foreign, http):
    # The same Slack fake, but the configured API host is another port: the token stays home.
    with pytest.raises(DownloadLooksLikeLoginPage) as caught:
        download_slack_file(slack.url("/files-pri/T1-F1/ok.png"), token=TOKEN, api_url=foreign.url("/api/"), http=http)
    assert caught.value.cause == CAUSE_NOT_SENT
    assert slack.authorizations() == [None]


def test_login_page_without_files_read_names_the_scope(slack, http):
    with pytest.raises(DownloadLooksLikeLoginPage) as caught:
        download(slack, "/files-pri/T1-F2/no-scope.png", http)
    assert caught.value.cause == CAUSE_NOT_ACCEPTED
    assert "files:read" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_login_page_is_recognised_even_with_an_image_content_type(slack, http):
    with pytest.raises(DownloadLooksLikeLoginPage):
        download(slack, "/files-pri/T1-F3/disguised.png", http)


def test_missing_token_gives_the_login_page_and_says_so(slack, http):
    with pytest.raises(DownloadLooksLikeLoginPage) as caught:
        download(slack, "/files-pri/T1-F1/ok.png", http, token="")
    assert caught.value.cause == CAUSE_NOT_CONFIGURED
    assert slack.authorizations() == [None]


def test_login_page_is_logged_once_per_cause_without_secrets(slack, http, caplog):
    caplog.set_level(logging.WARNING, logger="bot.images.download")
    for _ in range(3):
        with pytest.raises(DownloadLooksLikeLoginPage):
            download(slack, "/files-pri/T1-F2/no-scope.png?t=query-secret", http)
    with pytest.raises(DownloadLooksLikeLoginPage):
        download(slack, "/files-pri/T1-F1/ok.png?t=query-secret", http, token="")
    records = [r for r in caplog.records if r.name == "bot.images.download"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert f"cause={CAUSE_NOT_ACCEPTED}" in records[0].getMessage()
    assert "files:read" in records[0].getMessage()
    assert f"cause={CAUSE_NOT_CONFIGURED}" in records[1].getMessage()
    for record in records:
        text = record.getMessage()
        assert "xoxb" not in text and "query-secret" not in text and "Sign in" not in text


def test_redirect_within_slack_keeps_the_token(slack, http):
    assert download(slack, "/redirect/internal", http) == IMAGE
    assert [seen.path for seen in slack.requests] == ["/redirect/internal", "/files-origin/T1-F1/ok.png?t=xoxe-123"]
    assert slack.authorizations() == [f"Bearer {TOKEN}", f"Bearer {TOKEN}"]


def test_redirect_to_a_foreign_host_is_followed_without_the_token(slack, foreign, http):
    assert download(slack, "/redirect/foreign", http) == IMAGE
    assert slack.authorizations() == [f"Bearer {TOKEN}"]
    assert [seen.path for seen in foreign.requests] == ["/cdn/ok.png?sig=abc"]
    assert foreign.authorizations() == [None]
    assert all("xoxb" not in value for seen in foreign.requests for value in seen.headers.values())


def test_a_client_with_default_credentials_still_sends_none_abroad(slack, foreign):
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, auth=("user", "secret")) as http:
        assert download(slack, "/redirect/foreign", http) == IMAGE
    assert foreign.authorizations() == [None]


def test_back_from_a_foreign_host_to_slack_the_token_returns(slack, foreign, http):
    url = foreign.url("/cdn/back")
    assert download_slack_file(url, token=TOKEN, api_url=slack.url("/api/"), http=http) == IMAGE
    assert foreign.authorizations() == [None]
    assert slack.authorizations() == [f"Bearer {TOKEN}"]


def test_login_page_from_a_foreign_host_blames_the_dropped_token(slack, foreign, http):
    with pytest.raises(DownloadLooksLikeLoginPage) as caught:
        download(slack, "/redirect/foreign-login", http)
    assert caught.value.cause == CAUSE_NOT_SENT
    assert foreign.authorizations() == [None]


def test_redirect_to_another_scheme_is_refused(slack, http):
    with pytest.raises(DownloadForbiddenRedirect):
        download(slack, "/redirect/ftp", http)


def test_redirect_loops_stop(slack, http):
    with pytest.raises(DownloadFailed, match="too many redirects"):
        download(slack, "/redirect/loop", http, max_redirects=3)
    assert len(slack.requests) == 4


@pytest.mark.parametrize(("path", "key"), [("/big/declared", "declared"), ("/big/chunked", "chunked")])
def test_too_large_stops_without_reading_everything(slack, http, path, key):
    started = time.monotonic()
    with pytest.raises(DownloadTooLarge) as caught:
        download(slack, path, http, max_bytes=1024 * 1024)
    assert caught.value.limit == 1024 * 1024
    assert caught.value.declared == (HUGE if key == "declared" else None)
    wait_for(lambda: slack.streams[key].finished)
    assert slack.streams[key].sent < HUGE // 2, "the client kept reading"
    assert time.monotonic() - started < 5


def test_a_file_of_exactly_the_limit_is_fine(slack, http):
    assert download(slack, "/files-pri/T1-F1/ok.png", http, max_bytes=len(IMAGE)) == IMAGE
    with pytest.raises(DownloadTooLarge):
        download(slack, "/files-pri/T1-F1/ok.png", http, max_bytes=len(IMAGE) - 1)


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 500)])
def test_http_errors(slack, http, path, status):
    with pytest.raises(DownloadFailed) as caught:
        download(slack, path, http)
    assert caught.value.status == status
    assert str(status) in caught.value.message


def test_timeout(slack):
    with httpx.Client(timeout=0.3) as http, pytest.raises(DownloadFailed, match="timed out") as caught:
        download(slack, "/slow", http)
    assert caught.value.status is None


def test_connection_refused(http):
    with FakeHost() as gone:
        url = gone.url("/files-pri/T1-F1/ok.png")
    with pytest.raises(DownloadFailed, match="could not reach") as caught:
        download_slack_file(url, token=TOKEN, api_url=url, http=http)
    assert caught.value.status is None


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (DownloadTooLarge(20 * 1024 * 1024), "the image could not be read: the file is larger than 20 MB."),
        (DownloadFailed("files.slack.com answered HTTP 404", status=404), "files.slack.com answered HTTP 404"),
        (DownloadLooksLikeLoginPage(CAUSE_NOT_ACCEPTED), "files:read"),
        (ImageRejected("the image is corrupt or truncated"), "could not be read: the image is corrupt or truncated."),
        (RuntimeError("internal detail xoxb-1"), "the image could not be read: an unexpected error occurred."),
    ],
)
def test_describe_download_problem(problem, expected):
    sentence = describe_download_problem(problem)
    assert sentence.startswith("the image could not be read: ")
    assert expected in sentence
    assert "xoxb" not in sentence


def test_every_download_error_shares_the_root():
    for error in (DownloadTooLarge, DownloadLooksLikeLoginPage, DownloadForbiddenRedirect, DownloadFailed):
        assert issubclass(error, DownloadError)
