"""Download a private Slack file (``url_private_download``) with the bot token, safely.

Redirects are followed by hand, because httpx drops the ``Authorization`` header on a
cross-origin redirect (files.slack.com → files-origin.slack.com) and we must re-attach it.
On every hop the token is attached only when `bot.images.hosts.token_allowed` says so (https
Slack hosts and the configured SLACK_API_URL host). A redirect to any other http(s) host is
still followed, *without* the token: the file may legitimately live on a CDN, and the token
cannot leak because it is never sent there. Redirects to other schemes are refused.

Slack does not fail loudly when it will not hand over a file (no token, or a token without
the ``files:read`` scope): it answers 200 with its HTML login page. We recognise that from the
Content-Type or the first bytes and raise DownloadLooksLikeLoginPage, naming the likely cause.

Errors, all carrying a short message that is safe to log and show (never the token, never the
URL's query string, never file content)::

    DownloadError                   root: catch this to handle every download failure
    ├── DownloadTooLarge            Content-Length or the streamed body exceeds max_bytes
    ├── DownloadLooksLikeLoginPage  HTML instead of the file; `cause` is one of LOGIN_PAGE_CAUSES
    ├── DownloadForbiddenRedirect   a redirect to a non-http(s) URL
    └── DownloadFailed              HTTP error status (`status`), timeout, connection failure,
                                    too many redirects (`status` is None when there was no answer)
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

import httpx

from bot.images.hosts import token_allowed
from bot.images.processing import ImageRejected, is_probably_html

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SNIFF_BYTES = 1024

CAUSE_NOT_CONFIGURED = "no_token"
CAUSE_NOT_SENT = "token_not_sent"
CAUSE_NOT_ACCEPTED = "files_read_scope"
LOGIN_PAGE_CAUSES = {
    CAUSE_NOT_CONFIGURED: "no bot token was configured for this workspace",
    CAUSE_NOT_SENT: "the file URL (or a redirect) pointed at a host that is not Slack's, so the token was not sent",
    CAUSE_NOT_ACCEPTED: (
        "Slack did not accept the bot token for this file: the app probably lacks the files:read scope "
        "(reinstall it after adding the scope), or the token was revoked"
    ),
}


class DownloadError(Exception):
    """Root of every download failure; `message` is short and safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DownloadTooLarge(DownloadError):
    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(f"the file is larger than {_megabytes(limit)}")
        self.limit = limit
        self.declared = declared


class DownloadLooksLikeLoginPage(DownloadError):
    def __init__(self, cause: str) -> None:
        super().__init__(f"Slack answered with a login page instead of the file: {LOGIN_PAGE_CAUSES[cause]}")
        self.cause = cause


class DownloadForbiddenRedirect(DownloadError):
    def __init__(self, scheme: str) -> None:
        super().__init__(f"the download was redirected to an unsupported {scheme or 'relative'} URL")
        self.scheme = scheme


class DownloadFailed(DownloadError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def download_slack_file(
    url: str,
    *,
    token: str,
    api_url: str,
    http: httpx.Client,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
) -> bytes:
    """The file's bytes, at most `max_bytes`; raises a DownloadError (see the module docstring)."""
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise DownloadFailed("the file URL is not valid") from exc
    for _hop in range(max_redirects + 1):
        send_token = bool(token) and token_allowed(str(current), api_url)
        headers = {"Accept-Encoding": "identity"}  # so Content-Length is the real size
        if send_token:
            headers["Authorization"] = f"Bearer {token}"
        request = http.build_request("GET", current, headers=headers)
        if not send_token:
            request.headers.pop("Authorization", None)  # in case the shared client carries a default one
        try:
            # auth=None: client-level auth must not follow us to hosts token_allowed refused.
            response = http.send(request, stream=True, follow_redirects=False, auth=None)
        except httpx.TimeoutException as exc:
            raise DownloadFailed(f"timed out talking to {current.host}") from exc
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"could not reach {current.host} ({type(exc).__name__})") from exc
        try:
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                current = _redirect_target(current, response.headers["location"])
                continue
            if response.status_code != 200:  # 4xx/5xx, and 204/206/3xx-without-Location are no file either
                status = response.status_code
                raise DownloadFailed(f"{current.host} answered HTTP {status}", status=status)
            cause = _login_page_cause(token, send_token)
            if _is_html_content_type(response.headers.get("content-type", "")):
                raise _login_page(cause, current)
            _check_declared_length(response, max_bytes)
            body = _read_capped(response, max_bytes, current)
            if is_probably_html(body[:SNIFF_BYTES]):
                raise _login_page(cause, current)
            return body
        finally:
            response.close()
    raise DownloadFailed(f"too many redirects (more than {max_redirects})")


def describe_download_problem(exc: BaseException) -> str:
    """One short sentence for the model about an image it cannot see."""
    if isinstance(exc, DownloadError):
        detail = exc.message
    elif isinstance(exc, ImageRejected):
        detail = exc.reason
    else:
        detail = "an unexpected error occurred"
    return f"the image could not be read: {detail}."


def reset_login_page_warnings() -> None:
    """Forget which login-page causes were logged (for tests)."""
    with _warned_lock:
        _warned_causes.clear()


# The login page is a configuration problem, not a per-file one: say it once per process.
_warned_causes: set[str] = set()
_warned_lock = threading.Lock()


def _login_page(cause: str, url: httpx.URL) -> DownloadLooksLikeLoginPage:
    with _warned_lock:
        first_time = cause not in _warned_causes
        _warned_causes.add(cause)
    if first_time:
        log.warning("slack_file login_page cause=%s host=%s hint=%r", cause, url.host, LOGIN_PAGE_CAUSES[cause])
    return DownloadLooksLikeLoginPage(cause)


def _login_page_cause(token: str, sent_token: bool) -> str:
    if not token:
        return CAUSE_NOT_CONFIGURED
    return CAUSE_NOT_ACCEPTED if sent_token else CAUSE_NOT_SENT


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise DownloadFailed("the download was redirected to an invalid URL") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise DownloadForbiddenRedirect(urlsplit(location).scheme)
    return target


def _is_html_content_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in ("text/html", "application/xhtml+xml")


def _check_declared_length(response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length")
    if declared is None or not declared.strip().isdigit():
        return  # absent or malformed: the streaming count below still holds the line
    if int(declared) > max_bytes:
        raise DownloadTooLarge(max_bytes, declared=int(declared))


def _read_capped(response: httpx.Response, max_bytes: int, url: httpx.URL) -> bytes:
    chunks: list[bytes] = []
    received = 0
    try:
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > max_bytes:
                raise DownloadTooLarge(max_bytes)
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise DownloadFailed(f"timed out reading from {url.host}") from exc
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"the download from {url.host} broke off ({type(exc).__name__})") from exc
    return b"".join(chunks)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"
