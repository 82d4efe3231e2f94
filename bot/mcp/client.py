"""One MCP server over streamable HTTP (or the older HTTP+SSE transport, which Heroku's toolkit
URL serves), with the official `mcp` SDK, for blocking callers.

The SDK is async; the worker's handlers are threads. Each operation opens a session, does its
work and closes it inside its own ``asyncio.run``, bounded by a timeout, in the caller's thread
(a tool call already runs in a thread of its own; a refresh in the catalog's). Nothing is
shared between event loops, so a server that hangs costs one thread until the timeout and
never the worker's main loop.

Errors (`McpError` and its kinds) carry a sentence naming the server, never a header value.

The SDK (and its httpx2) is imported when a server is first reached, not with this module: it
costs a second of CPU at every process start, and most processes configure no MCP server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import McpServerConfig

if TYPE_CHECKING:
    import httpx2
    from mcp import Client

log = logging.getLogger(__name__)

T = TypeVar("T")
CONNECT_TIMEOUT_SECONDS = 5.0
# One SSE event (one JSON-RPC answer) at most this big, and a plain JSON answer announcing more
# is refused: a result is cut to the tool's character cap anyway, so more only costs memory.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_TOOL_PAGES = 20


class McpError(Exception):
    """Root of the client's errors; str() is a sentence for a log line or `bot check`."""


class McpUnreachable(McpError):
    """No connection (refused, DNS, TLS, connect timeout): the server is down for us."""


class McpUnauthorized(McpError):
    """The server answered 401 or 403: the headers (token) are wrong or missing."""


class McpTimedOut(McpError):
    """The server did not finish within the timeout."""


class McpFailed(McpError):
    """Anything else: a protocol error, a malformed answer, an answer too large."""


class _TooLarge(Exception):
    pass


class McpClient:
    def __init__(self, server: McpServerConfig, *, timeout: float, max_response_bytes: int = MAX_RESPONSE_BYTES):
        self.server = server
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    def list_tools(self) -> list[Any]:
        """Every tool the server offers (`mcp_types.Tool`), all pages."""

        async def fetch(client: Client) -> list[Any]:
            tools, cursor = [], None
            for _ in range(MAX_TOOL_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools

        return self._run(fetch, "listing its tools")

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """The `CallToolResult` of one call (`is_error` True when the tool itself failed)."""
        return self._run(lambda client: client.call_tool(name, arguments), f"running {name}")

    def _run(self, operation: Callable[[Client], Awaitable[T]], doing: str) -> T:
        # The first import of the SDK takes a second or more: before the timeout starts, not in it.
        import httpx2
        import mcp.client.sse
        import mcp.client.streamable_http  # noqa: F401

        statuses: list[int] = []
        try:
            return asyncio.run(asyncio.wait_for(self._session(operation, statuses), self.timeout))
        except TimeoutError:
            raise McpTimedOut(
                f"MCP server {self.server.name} did not finish {doing} within {self.timeout:g} seconds."
            ) from None
        except BaseException as exc:
            leaves = list(_leaves(exc))
            if any(status in (401, 403) for status in statuses):
                raise McpUnauthorized(
                    f"MCP server {self.server.name} refused our credentials (HTTP {statuses[-1]}): "
                    "check its headers in MCP_SERVERS and the variables they name."
                ) from None
            if any(isinstance(leaf, httpx2.ConnectError | httpx2.ConnectTimeout) for leaf in leaves):
                raise McpUnreachable(
                    f"MCP server {self.server.name} is not reachable ({type(leaves[0]).__name__})."
                ) from None
            if any(isinstance(leaf, _TooLarge) for leaf in leaves):
                raise McpFailed(f"MCP server {self.server.name} sent an answer too large to use.") from None
            if any(isinstance(leaf, httpx2.TimeoutException) for leaf in leaves):
                raise McpTimedOut(f"MCP server {self.server.name} stopped answering while {doing}.") from None
            if not isinstance(exc, Exception):
                raise
            names = ", ".join(sorted({type(leaf).__name__ for leaf in leaves})) or type(exc).__name__
            log.info("mcp server=%s failed while %s: %s", self.server.name, doing, names)
            raise McpFailed(f"MCP server {self.server.name} failed while {doing} ({names}).") from None

    async def _session(self, operation: Callable[[Client], Awaitable[T]], statuses: list[int]) -> T:
        import httpx2
        from mcp import Client
        from mcp.client.sse import sse_client
        from mcp.client.streamable_http import streamable_http_client

        async def seen(response: httpx2.Response) -> None:
            statuses.append(response.status_code)
            length = response.headers.get("content-length")
            if length and length.isdigit() and int(length) > self.max_response_bytes:
                raise _TooLarge()

        def http_client(headers: Any = None, auth: Any = None, timeout: Any = None) -> httpx2.AsyncClient:
            return httpx2.AsyncClient(
                headers=dict(self.server.headers),
                timeout=httpx2.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_SECONDS, self.timeout)),
                event_hooks={"response": [seen]},
            )

        if self.server.transport == "sse":
            # The older HTTP+SSE transport (Heroku's toolkit URL, `$INFERENCE_URL/mcp/sse`).
            transport = sse_client(self.server.url, httpx_client_factory=http_client)
            async with Client(transport, cache=None) as client:
                return await operation(client)
        async with http_client() as http:
            transport = streamable_http_client(
                self.server.url, http_client=http, max_sse_event_size=self.max_response_bytes
            )
            async with Client(transport, cache=None) as client:
                return await operation(client)


def _leaves(exc: BaseException):
    """The exceptions inside (nested) exception groups, and their causes' kinds."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
        return
    yield exc
    if exc.__cause__ is not None and exc.__cause__ is not exc:
        yield from _leaves(exc.__cause__)
