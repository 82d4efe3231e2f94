"""One TLS context for the httpx clients of a process.

httpx builds a new ``ssl.SSLContext`` for each client it creates and loads the whole CA bundle
into it: 15-30 ms of CPU every time. A worker creates clients as it starts (one per model
attachment, one for files, one for tools), so they pass ``verify=tls_context()`` instead:
httpx's own default context (the certifi bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when
set), built once. An ``SSLContext`` may be shared by clients and threads; nothing here changes
it after it is built.

The MCP client (its own httpx2, one client per operation) does not use it yet: without the
client's start-up cost, its read timeout and the operation's deadline, both the server's
timeout, end at the same moment, and which one speaks (tests/integration/test_mcp_tools.py's
slow server) is then a race.
"""

from __future__ import annotations

import ssl
import threading

import httpx

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The process's TLS context for HTTPS clients (verifying certificates, as httpx does by default)."""
    global _context
    with _lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context
