"""bot.http: one TLS context per process, verifying certificates as httpx's default does."""

from __future__ import annotations

import ssl
import threading

from bot.http import tls_context


def test_every_client_gets_the_same_context():
    seen: list[ssl.SSLContext] = []
    threads = [threading.Thread(target=lambda: seen.append(tls_context())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(context) for context in [*seen, tls_context()]}) == 1


def test_the_context_verifies_certificates_and_host_names():
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded
