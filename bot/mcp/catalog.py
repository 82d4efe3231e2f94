"""Every configured MCP server's tools, kept fresh, offered to the tool registry as a source.

`refresh()` lists each server's tools (all servers at once, each bounded by the timeout) and
turns the allowed ones into ordinary registry entries (`Tool`): named by server and tool within
the provider's rules (bot.mcp.names), with the server's description and a schema the provider
accepts (bot.mcp.schema; a tool whose schema cannot be made acceptable is left out, with a log
line). A server that cannot be reached, or refuses our credentials, offers no tools until a later
refresh finds it back; a call that finds it gone marks it down at once. So an answer never
waits on a server that is down: its tools are simply not offered.

A tool runs without approval when MCP_SERVERS says it is read-only (`read_only`), or, when
the server's entry has no `read_only`, when the server annotates it `readOnlyHint`. Every other
tool waits for the asker's Approve (bot.tools.approval_logic), like built-in state-changing tools.

`start()` runs the refreshes on a schedule in a thread of its own (the worker's main loop never
touches the network): every MCP_REFRESH_SECONDS, and a server that is down every
`retry_down_seconds`. Each refresh is reported to `on_refresh` (bot.mcp.status records it).
With `recorded` (bot.mcp.status.recorded_views), the thread also reads every
`watch_seconds` what others recorded (`bot check`, another worker): a server whose recorded
status or tools differ from ours is fetched again at once, so `bot check` refreshes the workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.config import McpServerConfig
from bot.mcp.client import McpClient, McpError, McpUnauthorized, McpUnreachable
from bot.mcp.names import function_name
from bot.mcp.results import error_sentence, result_text
from bot.mcp.schema import SchemaRefused, provider_schema
from bot.mcp.state import DOWN, UNAUTHORIZED, UNKNOWN, UP, McpTool, ServerState
from bot.tools.errors import ToolFailed
from bot.tools.registry import DEFAULT_MAX_RESULT_CHARS, Permission, Tool, ToolContext
from bot.tools.schema import FunctionSpec

log = logging.getLogger(__name__)

RETRY_DOWN_SECONDS = 30.0
WATCH_SECONDS = 5.0
# At most one refresh a server for what others recorded in this long (two views may disagree).
FOLLOW_SECONDS = 10.0
# The runner's own timer is a backstop behind the client's timeout, which says more.
RUNNER_GRACE_SECONDS = 2.0
MAX_DESCRIPTION_CHARS = 1024


def is_read_only(server: McpServerConfig, remote_name: str, annotations: Any) -> bool:
    """MCP_SERVERS' `read_only` decides when present; otherwise the server's readOnlyHint."""
    if server.read_only is True:
        return True
    if server.read_only not in (None, False):
        return remote_name in server.read_only  # type: ignore[operator]
    if server.read_only is False:
        return False
    return bool(annotations is not None and getattr(annotations, "read_only_hint", None) is True)


def offered_tools(
    server: McpServerConfig, listed: Sequence[Any], taken: Iterable[str] = ()
) -> tuple[list[McpTool], list[str]]:
    """The server's listed tools (`mcp_types.Tool`) the model is offered, and one sentence per
    tool left out (not allowed, or a schema the provider would refuse)."""
    names = set(taken)
    offered, left_out = [], []
    allowed = set(server.tools) if server.tools is not None else None
    for tool in listed:
        if allowed is not None and tool.name not in allowed:
            continue
        try:
            parameters, changes = provider_schema(tool.input_schema)
        except SchemaRefused as exc:
            left_out.append(f"{server.name}/{tool.name} left out: {exc}.")
            continue
        name = function_name(server.name, tool.name, names)
        names.add(name)
        for change in changes:
            log.info("mcp server=%s tool=%s schema converted: %s", server.name, tool.name, change)
        description = (tool.description or getattr(tool, "title", None) or tool.name).strip()
        if len(description) > MAX_DESCRIPTION_CHARS:
            description = description[: MAX_DESCRIPTION_CHARS - 1] + "…"
        offered.append(
            McpTool(
                server=server.name,
                remote_name=tool.name,
                name=name,
                description=description,
                parameters=parameters,
                read_only=is_read_only(server, tool.name, tool.annotations),
            )
        )
    if allowed is not None:
        missing = sorted(allowed - {tool.name for tool in listed})
        if missing:
            left_out.append(f'{server.name} does not offer {", ".join(missing)} (named in its "tools").')
    return offered, left_out


class McpCatalog:
    def __init__(
        self,
        servers: Sequence[McpServerConfig],
        *,
        timeout: float,
        refresh_seconds: float,
        retry_down_seconds: float = RETRY_DOWN_SECONDS,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        on_refresh: Callable[[list[ServerState]], None] | None = None,
        recorded: Callable[[], dict[str, tuple[str, frozenset[str]]]] | None = None,
        watch_seconds: float = WATCH_SECONDS,
        client_factory: Callable[..., McpClient] = McpClient,
    ):
        self.servers = {server.name: server for server in servers}
        self.timeout = timeout
        self.refresh_seconds = refresh_seconds
        self.retry_down_seconds = min(retry_down_seconds, refresh_seconds)
        self.max_result_chars = max_result_chars
        self.on_refresh = on_refresh
        self.recorded = recorded
        self.watch_seconds = watch_seconds
        self._followed: dict[str, float] = {}
        self._next_watch = 0.0
        self._clients = {name: client_factory(server, timeout=timeout) for name, server in self.servers.items()}
        self._states: dict[str, ServerState] = {name: ServerState(name) for name in self.servers}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the registry reads ------------------------------------------------------------

    def tools(self) -> list[Tool]:
        """The entries of the servers that are up now (a ToolSource for the registry)."""
        with self._lock:
            states = list(self._states.values())
        return [entry for state in states if state.is_up for entry in state.entries]

    def states(self) -> list[ServerState]:
        with self._lock:
            return [self._states[name] for name in self.servers]

    def down_count(self) -> int:
        return sum(1 for state in self.states() if state.status not in (UP, UNKNOWN))

    # -- refreshing ---------------------------------------------------------------------------

    def refresh(self, names: Iterable[str] | None = None) -> list[ServerState]:
        """List the tools of `names` (default: every server) at once; returns every state."""
        chosen = [name for name in (names if names is not None else self.servers) if name in self.servers]
        if chosen:
            with ThreadPoolExecutor(max_workers=min(8, len(chosen)), thread_name_prefix="mcp-refresh") as pool:
                fresh = list(pool.map(self._refresh_one, chosen))
            with self._lock:
                for state in fresh:
                    self._states[state.name] = state
        states = self.states()
        if self.on_refresh and chosen:
            try:
                self.on_refresh([state for state in states if state.name in chosen])
            except Exception as exc:  # the record is for operators; the tools are fresh anyway
                log.warning("mcp status_record_failed error=%s", type(exc).__name__)
        return states

    def _refresh_one(self, name: str) -> ServerState:
        server, now = self.servers[name], time.monotonic()
        try:
            listed = self._clients[name].list_tools()
        except McpError as exc:
            status = UNAUTHORIZED if isinstance(exc, McpUnauthorized) else DOWN
            log.warning("mcp server=%s status=%s: %s", name, status, exc)
            return ServerState(name, status, str(exc), checked_at=now)
        taken = {tool.name for other, state in self._states.items() if other != name for tool in state.tools}
        offered, left_out = offered_tools(server, listed, taken)
        seen = set(self._states[name].left_out)
        for sentence in left_out:  # once, not at every refresh
            (log.debug if sentence in seen else log.warning)("mcp server=%s %s", name, sentence)
        entries = tuple(self._entry(tool) for tool in offered)
        log.info(
            "mcp server=%s status=up tools=%d need_approval=%d left_out=%d",
            name,
            len(offered),
            sum(1 for tool in offered if tool.needs_approval),
            len(left_out),
        )
        return ServerState(name, UP, "", tuple(offered), tuple(left_out), now, entries)

    def start(self) -> None:
        """Refresh on a schedule in a daemon thread until `stop()`."""
        if self._thread is None and self.servers:
            self._thread = threading.Thread(target=self._loop, name="mcp-catalog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._seconds_to_next()):
            due = self._due(time.monotonic()) + self._differing_from_record(time.monotonic())
            if due:
                try:
                    self.refresh(due)
                except Exception as exc:  # keep refreshing: one bad round must not end the schedule
                    log.warning("mcp refresh_failed error=%s", type(exc).__name__)

    def _due(self, now: float) -> list[str]:
        return [state.name for state in self.states() if now >= state.checked_at + self._interval(state)]

    def _differing_from_record(self, now: float) -> list[str]:
        """Servers whose recorded view differs from ours (read every `watch_seconds`)."""
        if self.recorded is None or now < self._next_watch:
            return []
        self._next_watch = now + self.watch_seconds
        try:
            views = self.recorded()
        except Exception as exc:
            log.warning("mcp record_read_failed error=%s", type(exc).__name__)
            return []
        differing = []
        for state in self.states():
            view = views.get(state.name)
            ours = (state.status, frozenset(tool.name for tool in state.tools))
            if view is None or state.status == UNKNOWN or view == ours:
                continue
            if now - self._followed.get(state.name, -FOLLOW_SECONDS) >= FOLLOW_SECONDS:
                self._followed[state.name] = now
                log.info("mcp server=%s recorded view differs: fetching its tools again", state.name)
                differing.append(state.name)
        return differing

    def _interval(self, state: ServerState) -> float:
        return self.refresh_seconds if state.is_up else self.retry_down_seconds

    def _seconds_to_next(self) -> float:
        now = time.monotonic()
        waits = [state.checked_at + self._interval(state) - now for state in self.states()]
        if self.recorded is not None:
            waits.append(self._next_watch - now)
        return max(0.05, min(waits, default=self.refresh_seconds))

    # -- calling ------------------------------------------------------------------------------

    def _entry(self, tool: McpTool) -> Tool:
        def call(ctx: ToolContext, **arguments: Any) -> str:
            return self.call(tool, arguments)

        call.__name__ = tool.name
        return Tool(
            func=call,
            spec=FunctionSpec(name=tool.name, description=tool.description, json_schema=tool.parameters),
            command=None,
            usage="",
            permission=Permission.EVERYONE,
            timeout=self.timeout + RUNNER_GRACE_SECONDS,
            max_result_chars=self.max_result_chars,
            changes_state=tool.needs_approval,
        )

    def call(self, tool: McpTool, arguments: dict[str, Any]) -> str:
        """Run one call (the runner's thread); raise ToolFailed with a sentence for the model."""
        with self._lock:
            state = self._states.get(tool.server)
        if state is None or not state.is_up:
            raise ToolFailed(f"The {tool.server} tools are unavailable right now; answer without them.")
        try:
            result = self._clients[tool.server].call_tool(tool.remote_name, arguments)
        except McpUnreachable as exc:
            self._mark_down(tool.server, str(exc))
            raise ToolFailed(f"The {tool.server} server is not reachable right now; answer without it.") from None
        except McpError as exc:
            log.warning("mcp server=%s tool=%s call_failed: %s", tool.server, tool.remote_name, exc)
            raise ToolFailed(str(exc).replace("MCP server ", "The server ", 1)) from None
        if getattr(result, "is_error", False):
            raise ToolFailed(error_sentence(tool.name, result))
        return result_text(result)

    def _mark_down(self, name: str, detail: str) -> None:
        log.warning("mcp server=%s status=down: %s", name, detail)
        with self._lock:
            self._states[name] = state = ServerState(name, DOWN, detail, checked_at=time.monotonic())
        if self.on_refresh:
            try:
                self.on_refresh([state])
            except Exception as exc:
                log.warning("mcp status_record_failed error=%s", type(exc).__name__)
