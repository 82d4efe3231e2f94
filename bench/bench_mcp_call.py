"""What an MCP tool costs the answer: the catalog's listing and one call through the shared runner,
against the real SDK test server (tests/fakes/mcp_server.py) on 127.0.0.1.

    python -m bench.bench_mcp_call [--runs 50]

Each listing and each call opens its own session (bot.mcp.client: one bounded event loop per
operation), so the figures include the connection and the protocol's handshake. Also times a
call to a server that was killed (the call fails fast: connection refused) and the runner's
bookkeeping alone (a built-in tool doing nothing), for scale. Prints medians and p90s in ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from bot.config import load_settings
from bot.mcp.catalog import McpCatalog
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import run_tool
from tests.fakes.mcp_server import McpTestServer

TOKEN = "bench-token"
CTX = ToolContext(team_id="T1", user_id="U1")


def timed(action, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def line(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return f"{label:<40} median {statistics.median(samples):7.1f} ms   p90 {p90:7.1f} ms   (n={len(samples)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the catalog's warnings are expected here (a killed server)
    with tempfile.TemporaryDirectory() as folder:
        server = McpTestServer(token=TOKEN, record=Path(folder) / "calls.jsonl").start()
        try:
            servers = {"orders": {"url": server.url, "headers": {"Authorization": "Bearer ${T}"}}}
            settings = load_settings({"MCP_SERVERS": json.dumps(servers), "T": TOKEN})
            catalog = McpCatalog(settings.mcp_servers, timeout=10, refresh_seconds=300)
            registry = ToolRegistry()
            registry.add_source(catalog)

            def noop(ctx: ToolContext) -> str:
                """Nothing."""
                return "ok"

            registry.add(noop)
            catalog.refresh()
            print(line("listing one server's tools", timed(catalog.refresh, args.runs)))
            call = lambda: run_tool(registry, "orders__lookup_order", '{"order_id": "42"}', CTX)  # noqa: E731
            assert call().ok
            print(line("one MCP call through the runner", timed(call, args.runs)))
            print(
                line(
                    "a built-in tool through the runner",
                    timed(lambda: run_tool(registry, "noop", "{}", CTX), args.runs),
                )
            )
            server.kill()
            down = lambda: run_tool(registry, "orders__lookup_order", '{"order_id": "42"}', CTX)  # noqa: E731
            print(line("the first call after the server died", timed(down, 1)))
            print(line("calls while it is known to be down", timed(down, args.runs)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
