"""A real MCP server for tests: the `mcp` SDK's MCPServer over streamable HTTP on 127.0.0.1,
requiring a bearer token, run as its own process so a test can kill it.

    server = McpTestServer(token="t0ken", record=tmp_path / "calls.jsonl").start()
    server.url      # http://127.0.0.1:PORT/mcp
    server.calls()  # the state-changing calls it ran, in order
    server.stop()   # or server.kill(): the server is down, its port refuses connections

Its tools, an order desk:
* ``lookup_order`` (readOnlyHint): an order's status, with a link to it;
* ``cancel_order`` (destructiveHint): cancels an order; every run is appended to the record file;
* ``slow_lookup`` (readOnlyHint): sleeps ``seconds`` first (the client's timeout is tested on it);
* ``export_orders`` (readOnlyHint): ``size`` characters of text (the result cap is tested on it);
* ``find_orders``: its input schema has a top-level ``anyOf``, which Anthropic's API refuses
  ("input_schema does not support oneOf, allOf, or anyOf at the top level");
* ``count_orders``: its input schema's root is a ``oneOf`` of ``$ref`` branches (what pydantic
  makes of a discriminated union), refused by Anthropic's API the same way and not foldable.

Run directly: ``python -m tests.fakes.mcp_server --token T --record FILE`` prints its URL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build_server(record: Path):
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ToolAnnotations

    server = MCPServer("order-desk", **_auth())

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def lookup_order(order_id: str) -> str:
        """Look up an order's status by its id."""
        return f"Order {order_id} is shipped. Details: https://orders.example.com/orders/{order_id}"

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    def cancel_order(order_id: str, reason: str = "") -> str:
        """Cancel an order. This cannot be undone."""
        with record.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"tool": "cancel_order", "order_id": order_id, "reason": reason}) + "\n")
        return f"Order {order_id} is cancelled."

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def slow_lookup(order_id: str, seconds: float = 30.0) -> str:
        """Look up an order slowly."""
        time.sleep(seconds)
        return f"Order {order_id} is late."

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def export_orders(size: int = 1_000_000) -> str:
        """Export every order as text."""
        line = "order 123456 shipped to somewhere far away\n"
        return (line * (size // len(line) + 1))[:size]

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def find_orders(customer: str = "", email: str = "") -> str:
        """Find orders by customer name or email."""
        return f"2 orders for {customer or email}."

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def count_orders(status: str = "open") -> str:
        """Count orders in a status."""
        return "7"

    # Schemas the provider would refuse, as some servers send them.
    manager = server._tool_manager
    manager.get_tool("find_orders").parameters = {
        "type": "object",
        "properties": {"customer": {"type": "string"}, "email": {"type": "string"}},
        "anyOf": [{"required": ["customer"]}, {"required": ["email"]}],
    }
    # A root union of references (what pydantic makes of a discriminated union): not foldable.
    manager.get_tool("count_orders").parameters = {
        "type": "object",
        "$defs": {
            "Open": {"type": "object", "properties": {"status": {"const": "open"}}},
            "Closed": {"type": "object", "properties": {"status": {"const": "closed"}, "since": {"type": "string"}}},
        },
        "oneOf": [{"$ref": "#/$defs/Open"}, {"$ref": "#/$defs/Closed"}],
    }
    return server


def _auth() -> dict:
    """Bearer-token auth through the SDK's own resource-server machinery (MCP_TEST_TOKEN)."""
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings

    expected = os.environ["MCP_TEST_TOKEN"]
    port = os.environ["MCP_TEST_PORT"]

    class StaticTokenVerifier:
        async def verify_token(self, token: str) -> AccessToken | None:
            if token != expected:
                return None
            return AccessToken(token=token, client_id="bot", scopes=[])

    return {
        "token_verifier": StaticTokenVerifier(),
        "auth": AuthSettings(
            issuer_url="http://127.0.0.1:1/",  # nobody logs in: the token is static
            resource_server_url=f"http://127.0.0.1:{port}/mcp",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--transport", choices=("streamable_http", "sse"), default="streamable_http")
    args = parser.parse_args(argv)
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    os.environ["MCP_TEST_TOKEN"], os.environ["MCP_TEST_PORT"] = args.token, str(port)
    server = build_server(Path(args.record))
    if args.transport == "sse":
        app, path = server.sse_app(host="127.0.0.1"), "/sse"
    else:
        app, path = server.streamable_http_app(host="127.0.0.1"), "/mcp"
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    print(f"http://127.0.0.1:{port}{path}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


class McpTestServer:
    """The server above in a subprocess (so it can be killed like a crashed host)."""

    def __init__(self, *, token: str, record: Path, port: int = 0, transport: str = "streamable_http"):
        self.token, self.record, self.port, self.transport = token, Path(record), port, transport
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> McpTestServer:
        self.record.touch()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.mcp_server",
                "--port",
                str(self.port),
                "--token",
                self.token,
                "--record",
                str(self.record),
                "--transport",
                self.transport,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.url = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        if not self.url:
            raise RuntimeError("the MCP test server did not start")
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # up once it accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the MCP test server does not accept connections")

    def calls(self) -> list[dict]:
        text = self.record.read_text(encoding="utf-8") if self.record.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def kill(self) -> None:
        """Down at once, as a crashed host: its port refuses connections afterwards."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
