"""Which URLs may receive the bot token when downloading a Slack file (pure).

The token goes only to:

- ``https`` URLs whose host is ``slack.com`` or ends with ``.slack.com`` (``files.slack.com``,
  ``files-origin.slack.com``, …), on any port;
- the exact scheme, host and port of the configured ``SLACK_API_URL`` (so a local fake Web API
  at ``http://127.0.0.1:PORT/api/`` in tests, or a proxy an operator configured on purpose).

Everything else gets no token, including ``http://files.slack.com`` (a downgrade) and hosts that
merely contain "slack.com" (``evilslack.com``, ``slack.com.example.net``). URLs whose authority is
anything but a plain host and optional port (user info, backslashes, percent escapes, spaces) are
refused outright: parsers disagree on those, and a disagreement is how tokens leak.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

SLACK_DOMAIN = "slack.com"
DEFAULT_PORTS = {"http": 80, "https": 443}

# A registered name or IPv4 address, or a bracketed IPv6 address, then an optional port.
_PLAIN_AUTHORITY = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def token_allowed(url: str, api_url: str) -> bool:
    """True when `url` may be sent `Authorization: Bearer <bot token>` (see the module docstring)."""
    target = _parse(url)
    if target is None:
        return False
    scheme, host, port = target
    if scheme == "https" and (host == SLACK_DOMAIN or host.endswith("." + SLACK_DOMAIN)):
        return True
    api = _parse(api_url)
    return api is not None and api == (scheme, host, port)


def _parse(url: str) -> tuple[str, str, int] | None:
    """(scheme, lower-case host without a trailing dot, effective port), or None when unusable."""
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        return None
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not _PLAIN_AUTHORITY.match(parts.netloc):
        return None
    host = (parts.hostname or "").removesuffix(".")
    if not host:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]
