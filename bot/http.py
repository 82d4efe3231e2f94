"""One TLS context for every HTTP client of a process.

httpx (and the MCP SDK's httpx2) builds a new ``ssl.SSLContext`` for each client it creates and
loads the whole CA bundle into it: 15-60 ms of CPU every time. A worker creates clients as it
starts (one per model attachment, one for files, one for tools) and the MCP client one per
operation, so they all pass ``verify=tls_context()`` instead: httpx's own default context (the
certifi bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), built once. An
``SSLContext`` may be shared by clients and threads; nothing here changes it after it is built.
"""

from __future__ import annotations

import ssl
import threading

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The process's TLS context for HTTPS clients (verifying certificates, as httpx does by default)."""
    global _context
    with _lock:
        if _context is None:
            import httpx

            _context = httpx.create_ssl_context()
        return _context
